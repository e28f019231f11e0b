"""What rebuilds a model: :class:`ModelConfig` (saved as JSON beside the weights), the image and
architecture constants, and :class:`OnnxInterface`, how an imported graph lays out its tensors."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

IMAGE_SHAPE = (1, 28, 28)
N_PIXELS = 28 * 28

KINDS = ("ae", "vae", "pca")
ARCHS = ("dense", "conv")  # the architectures build_model makes and vae.training.trainer trains
IMPORTED_ARCH = "onnx"  # an encoder/decoder pair imported as ONNX graphs (vae.onnx.importer), run by onnxruntime
RECON_LOSSES = ("bce", "mse")
MIN_LATENT_DIM, MAX_LATENT_DIM = 2, 128
# How a graph may lay out one image's 784 pixels after the batch axis. All four hold the pixels in the same
# (row-major) order, so one Reshape turns any of them into another.
PIXEL_LAYOUTS = {"nchw": (1, 28, 28), "nhwc": (28, 28, 1), "hw": (28, 28), "flat": (784,)}
MAX_GRAPH_NAME = 256  # characters in a tensor name recorded from a user's graph


@dataclass(frozen=True)
class OnnxInterface:
    """How an imported pair of ONNX graphs is wired to the standard interface (recorded at import).

    The names are the user's own graphs' tensor names; the layouts are keys of :data:`PIXEL_LAYOUTS`.
    """

    # The encoder's image input and its layout: PyTorch models take "nchw" or "flat", Keras ones "nhwc".
    encoder_input: str
    input_layout: str
    # The encoder's mean output, then the log-variance output for a VAE (one name for an AE).
    encoder_outputs: tuple[str, ...]
    decoder_input: str
    decoder_output: str
    output_layout: str
    # The decoder ends without a sigmoid: the standard decoder appends one.
    logits: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.encoder_outputs, list):  # from JSON; a tuple keeps the config hashable
            object.__setattr__(self, "encoder_outputs", tuple(self.encoder_outputs))
        for name in ("encoder_input", "decoder_input", "decoder_output"):
            _check_tensor_name(name, getattr(self, name))
        if not isinstance(self.encoder_outputs, tuple) or not 1 <= len(self.encoder_outputs) <= 2:
            raise ValueError(
                f"encoder_outputs must list 1 (AE) or 2 (VAE: mean, log-variance) names, got {self.encoder_outputs!r}"
            )
        for output in self.encoder_outputs:
            _check_tensor_name("encoder_outputs", output)
        if len(set(self.encoder_outputs)) != len(self.encoder_outputs):
            raise ValueError(f"encoder_outputs must name different tensors, got {self.encoder_outputs!r}")
        for name in ("input_layout", "output_layout"):
            if getattr(self, name) not in PIXEL_LAYOUTS:
                raise ValueError(f"{name} must be one of {tuple(PIXEL_LAYOUTS)}, got {getattr(self, name)!r}")
        if not isinstance(self.logits, bool):
            raise ValueError(f"logits must be true or false, got {self.logits!r}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["encoder_outputs"] = list(self.encoder_outputs)
        return out

    @classmethod
    def from_dict(cls, data: Any) -> OnnxInterface:
        if not isinstance(data, dict):
            raise ValueError(f"onnx must be a JSON object, got {type(data).__name__}")
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown onnx field(s): {', '.join(unknown)}")
        try:
            return cls(**data)
        except TypeError as error:  # a missing field
            raise ValueError(f"onnx: {error}") from None


def _check_tensor_name(field_name: str, value: Any) -> None:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_GRAPH_NAME or not value.isprintable():
        raise ValueError(
            f"{field_name} must be a tensor name of 1 to {MAX_GRAPH_NAME} printable characters, got {value!r}"
        )


# The UMAP term is a mean over edges (about 1 nat) where reconstruction sums 784 pixels: weights in the
# hundreds balance the two, so its range is wider than the other weights'.
MAX_UMAP_WEIGHT = 10_000


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model; saved as JSON beside its weights."""

    kind: Literal["ae", "vae", "pca"] = "vae"
    # "dense" is the brief's MLP; "conv" shares weights across positions, so it needs fewer parameters
    # for a better reconstruction.
    # "onnx": imported graphs (see ``onnx``), which nothing here builds or trains.
    arch: Literal["dense", "conv", "onnx"] = "dense"
    # 2 is the only size that can be looked at directly; larger codes go through a 2-D projection.
    latent_dim: int = 2
    # One 400-unit layer is Kingma & Welling's MNIST set-up; for "conv" these follow the conv stack.
    hidden: tuple[int, ...] = (400,)
    # BCE treats grey levels as Bernoulli means, the usual MNIST likelihood; MSE is a Gaussian one.
    recon_loss: Literal["bce", "mse"] = "bce"
    # Weight of KL(q(z|x) || N(0, I)); 1 gives the ELBO, 0 a noisy AE, > 1 a beta-VAE.
    beta: float = 1.0
    # L1 penalty on the AE code, per image: pushes codes towards zero and towards sparsity.
    sparsity: float = 0.0
    # Dense AE only: decoder layers reuse the encoder's weights transposed (half the parameters).
    tied: bool = False
    # Dense AE only: no hidden layers and no output squashing, trained on MSE. Baldi & Hornik (1989):
    # its optimum spans the same subspace as PCA, which the Experiments page checks.
    linear: bool = False
    # Weight of the class-aware term (uses labels): the soft nearest-neighbour loss of the codes in a batch
    # (Frosst et al., 2019), which is high where classes overlap and falls as they pull apart.
    class_weight: float = 0.0
    # Dense AE only: orthogonal encoder weights and leaky-ReLU activations, and a decoder that is the
    # encoder's exact inverse layer by layer (InvAuto, Teng & Choromanska, 2019), so E(D(z)) = z for every z.
    invertible: bool = False
    # AE only: weight of Parametric UMAP's cross-entropy between the training set's fuzzy neighbour graph and
    # the codes (Sainburg, McInnes & Gentner, 2021). No labels: the graph comes from the pixels (vae.training.graph).
    umap_weight: float = 0.0
    # AE with a UMAP term only: the decoder is trained on stop-gradient codes, so only the graph loss shapes
    # the map and the decoder learns to draw whatever map it is given.
    decoupled: bool = False
    # arch "onnx" only: how the imported graphs are wired (names, layouts, logits). None for every other model,
    # and then left out of the JSON, so model.json files from before imports existed read as they were.
    onnx: OnnxInterface | None = None

    def __post_init__(self) -> None:
        # JSON gives lists; a tuple keeps the config hashable (st.cache_* keys on it) and comparable.
        object.__setattr__(self, "hidden", tuple(self.hidden))
        if isinstance(self.onnx, dict):
            object.__setattr__(self, "onnx", OnnxInterface.from_dict(self.onnx))
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.arch not in (*ARCHS, IMPORTED_ARCH):
            raise ValueError(f"arch must be one of {(*ARCHS, IMPORTED_ARCH)}, got {self.arch!r}")
        if (
            isinstance(self.latent_dim, bool)
            or not isinstance(self.latent_dim, int)
            or not MIN_LATENT_DIM <= self.latent_dim <= MAX_LATENT_DIM
        ):
            raise ValueError(
                f"latent_dim must be an integer from {MIN_LATENT_DIM} to {MAX_LATENT_DIM}, got {self.latent_dim!r}"
            )
        if any(isinstance(h, bool) or not isinstance(h, int) or not 1 <= h <= 4096 for h in self.hidden):
            raise ValueError(f"hidden must hold integers from 1 to 4096, got {self.hidden!r}")
        if len(self.hidden) > 4:
            raise ValueError(f"hidden may list at most 4 layers, got {len(self.hidden)}")
        if self.recon_loss not in RECON_LOSSES:
            raise ValueError(f"recon_loss must be one of {RECON_LOSSES}, got {self.recon_loss!r}")
        for name, top in (("beta", 1000), ("sparsity", 1000), ("class_weight", 1000), ("umap_weight", MAX_UMAP_WEIGHT)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= top:
                raise ValueError(f"{name} must be a number from 0 to {top}, got {value!r}")
        if self.arch == IMPORTED_ARCH or self.onnx is not None:
            self._check_imported()
            return
        if self.kind != "pca" and not self.linear and not self.hidden:
            raise ValueError("hidden must list at least one layer for an AE or a VAE (or set linear)")
        if self.linear and (self.kind != "ae" or self.recon_loss != "mse" or (self.arch == "dense" and self.hidden)):
            raise ValueError("linear applies to an AE with recon_loss='mse' only, and to a dense one with hidden=()")
        if self.beta != 1.0 and self.kind != "vae":
            raise ValueError(f"beta applies to a VAE only (kind={self.kind!r})")
        if self.sparsity and self.kind != "ae":
            raise ValueError(f"sparsity applies to an AE only (kind={self.kind!r})")
        if self.tied and (self.kind != "ae" or self.arch != "dense"):
            raise ValueError("tied applies to a dense AE only")
        if self.class_weight and self.kind == "pca":
            raise ValueError("class_weight applies to an AE or a VAE only")
        if self.kind == "pca" and self.arch != "dense":
            raise ValueError("arch must be 'dense' for PCA")
        for name in ("invertible", "decoupled"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.invertible:
            if self.kind != "ae" or self.arch != "dense" or self.tied or self.linear:
                raise ValueError("invertible applies to a dense AE that is neither tied nor linear")
            if self.recon_loss != "mse":
                raise ValueError("invertible needs recon_loss='mse': its decoder ends in pixels, not in logits")
            sizes = [N_PIXELS, *self.hidden, self.latent_dim]
            if any(a < b for a, b in zip(sizes, sizes[1:])):
                # W W^T = I needs no more rows than columns: each layer may only narrow.
                raise ValueError(
                    f"invertible needs layer sizes that never grow (784 >= hidden >= latent_dim), got {sizes}"
                )
        if self.umap_weight and self.kind != "ae":
            raise ValueError(f"umap_weight applies to an AE only (kind={self.kind!r})")
        if self.decoupled and not self.umap_weight:
            raise ValueError("decoupled needs umap_weight > 0: without a graph loss nothing would train the encoder")

    def _check_imported(self) -> None:
        """An imported model is an AE or a VAE whose layers are its graphs: no torch-side options apply."""
        if self.arch != IMPORTED_ARCH:
            raise ValueError(f"onnx applies to arch={IMPORTED_ARCH!r} only (arch={self.arch!r})")
        if not isinstance(self.onnx, OnnxInterface):
            raise ValueError(f"onnx must describe the imported graphs for arch={IMPORTED_ARCH!r}, got {self.onnx!r}")
        if self.kind not in ("ae", "vae"):
            raise ValueError(f"kind must be 'ae' or 'vae' for an imported model, got {self.kind!r}")
        if len(self.onnx.encoder_outputs) != (2 if self.kind == "vae" else 1):
            wanted = "mean and log-variance" if self.kind == "vae" else "one code"
            raise ValueError(
                f"encoder_outputs must name {wanted} for kind={self.kind!r}, got {self.onnx.encoder_outputs!r}"
            )
        for name, default in (
            ("hidden", ()),
            ("beta", 1.0),
            ("sparsity", 0.0),
            ("tied", False),
            ("linear", False),
            ("class_weight", 0.0),
            ("invertible", False),
            ("umap_weight", 0.0),
            ("decoupled", False),
        ):
            if getattr(self, name) != default:
                raise ValueError(
                    f"{name} does not apply to an imported model (arch={IMPORTED_ARCH!r}): leave it at {default!r}"
                )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["hidden"] = list(self.hidden)
        if self.onnx is None:
            del out["onnx"]
        else:
            out["onnx"] = self.onnx.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build from JSON, refusing unknown fields so a typo never silently falls back to a default."""
        if not isinstance(data, dict):
            raise ValueError(f"config must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config field(s): {', '.join(unknown)}")
        return cls(**data)

    def describe(self) -> str:
        """Short human label, e.g. ``"VAE dense 784-400-2"``."""
        if self.kind == "pca":
            return f"PCA {self.latent_dim}-D"
        if self.arch == IMPORTED_ARCH:
            return f"{self.kind.upper()} onnx {self.latent_dim}-D (imported)"
        layers = "".join(f"{h}-" for h in self.hidden)
        body = f"784-{layers}{self.latent_dim}" if self.arch == "dense" else f"conv-{layers}{self.latent_dim}"
        extras = []
        if self.kind == "vae" and self.beta != 1.0:
            extras.append(f"beta={self.beta:g}")
        if self.sparsity:
            extras.append(f"L1={self.sparsity:g}")
        if self.tied:
            extras.append("tied")
        if self.linear:
            extras.append("linear")
        if self.class_weight:
            extras.append(f"class={self.class_weight:g}")
        if self.invertible:
            extras.append("invertible")
        if self.umap_weight:
            extras.append(f"UMAP={self.umap_weight:g}")
        if self.decoupled:
            extras.append("decoupled decoder")
        suffix = f" ({', '.join(extras)})" if extras else ""
        return f"{self.kind.upper()} {self.arch} {body}{suffix}"
