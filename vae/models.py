"""Auto-encoder, variational auto-encoder and PCA baseline behind one interface.

Every model maps images ``x`` float ``[B, 1, 28, 28]`` in [0, 1] to a latent code and back:

- ``embed(x)``  -> ``[B, D]``: the point a page plots (AE code, VAE posterior mean, PCA projection).
- ``encode(x)`` -> ``(mean [B, D], logvar [B, D] | None)``: the full posterior (``None`` where there is none).
- ``decode(z)`` -> ``[B, 1, 28, 28]`` in [0, 1].
- ``loss(x, labels=None, neighbours=None)`` -> named terms, each a scalar averaged over the batch, i.e. *per
  image*; BCE terms are in nats (summed over the 784 pixels), which is the unit papers report for MNIST.
  Labels are read only by the optional class-aware term (``config.class_weight``), neighbours (images
  joined to ``x`` by edges of the training set's neighbour graph) only by the UMAP term (``config.umap_weight``).
- ``config``    -> the :class:`ModelConfig` that rebuilds the model.

The models know nothing of data loading, optimisers or logging (see ``vae.training.trainer``).
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

IMAGE_SHAPE = (1, 28, 28)
N_PIXELS = 28 * 28

KINDS = ("ae", "vae", "pca")
ARCHS = ("dense", "conv")  # the architectures build_model makes and vae.training.trainer trains
IMPORTED_ARCH = "onnx"  # an encoder/decoder pair imported as ONNX graphs (vae.onnx_import), run by onnxruntime
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
            raise ValueError(f"encoder_outputs must name {wanted} for kind={self.kind!r}, "
                             f"got {self.onnx.encoder_outputs!r}")  # fmt: skip
        for name, default in (("hidden", ()), ("beta", 1.0), ("sparsity", 0.0), ("tied", False), ("linear", False),
                              ("class_weight", 0.0), ("invertible", False), ("umap_weight", 0.0),
                              ("decoupled", False)):  # fmt: skip
            if getattr(self, name) != default:
                raise ValueError(f"{name} does not apply to an imported model (arch={IMPORTED_ARCH!r}): "
                                 f"leave it at {default!r}")  # fmt: skip

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


class LatentModel(nn.Module, ABC):
    """The interface every page and script relies on; see the module docstring for shapes."""

    config: ModelConfig

    @abstractmethod
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x ``[B, 1, 28, 28]`` -> (mean ``[B, D]``, log-variance ``[B, D]`` or None)."""

    @abstractmethod
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z ``[B, D]`` -> images ``[B, 1, 28, 28]`` in [0, 1]."""

    @abstractmethod
    def loss(
        self, x: torch.Tensor, labels: torch.Tensor | None = None, neighbours: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """x ``[B, 1, 28, 28]`` -> {"loss", "recon", ...}: scalars, mean over the batch of per-image sums.

        labels ``[B]`` (int64) are needed only when ``config.class_weight`` > 0; the term is then "class".
        neighbours ``[B, 1, 28, 28]``: image i is joined to ``x[i]`` by an edge of the training set's
        neighbour graph; read only when ``config.umap_weight`` > 0 (the term is then "umap"). Without them
        (e.g. on the test set, which is not in the graph) that term is left out.
        """

    @property
    def device(self) -> torch.device:
        """Where the weights live, so callers can move inputs there."""
        for tensor in (*self.parameters(), *self.buffers()):
            return tensor.device
        return torch.device("cpu")

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """x ``[B, 1, 28, 28]`` -> ``[B, D]``: the deterministic code that is plotted."""
        return self.encode(x)[0]

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """x ``[B, 1, 28, 28]`` -> ``[B, 1, 28, 28]`` through the deterministic code."""
        return self.decode(self.embed(x))


# ---------------------------------------------------------------------------------------------
# Encoder / decoder bodies. Each encoder ends in a ``[B, out_dim]`` linear head; each decoder returns
# logits ``[B, 1, 28, 28]`` so BCE can use the numerically stable ``*_with_logits`` form.


def _activation(linear: bool) -> nn.Module:
    # Identity keeps the layer indices (and so the weights' names) of the non-linear model.
    return nn.Identity() if linear else nn.ReLU()


def _mlp(sizes: list[int], linear: bool = False) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), _activation(linear)]
    return layers


class DenseEncoder(nn.Module):
    def __init__(self, hidden: tuple[int, ...], out_dim: int) -> None:
        super().__init__()
        sizes = [N_PIXELS, *hidden]
        self.body = nn.Sequential(nn.Flatten(), *_mlp(sizes))
        self.head = nn.Linear(sizes[-1], out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 1, 28, 28] -> [B, out_dim]
        return self.head(self.body(x))


class DenseDecoder(nn.Module):
    def __init__(self, hidden: tuple[int, ...], latent_dim: int) -> None:
        super().__init__()
        sizes = [latent_dim, *reversed(hidden)]
        self.body = nn.Sequential(*_mlp(sizes))
        self.head = nn.Linear(sizes[-1], N_PIXELS)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # [B, D] -> logits [B, 1, 28, 28]
        return self.head(self.body(z)).view(-1, *IMAGE_SHAPE)


class TiedDenseDecoder(nn.Module):
    """Decoder whose layers are the encoder's linear maps transposed, each with a bias of its own.

    Holding a reference to the encoder (not a copy) means one optimiser step moves both directions.
    """

    def __init__(self, encoder: DenseEncoder) -> None:
        super().__init__()
        # Registered as a plain attribute list, not a submodule, so the weights are saved once.
        self._linears = [m for m in [*encoder.body, encoder.head] if isinstance(m, nn.Linear)][::-1]
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(m.in_features)) for m in self._linears)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # [B, D] -> logits [B, 1, 28, 28]
        h = z
        for i, (linear, bias) in enumerate(zip(self._linears, self.biases)):
            h = F.linear(h, linear.weight.t(), bias)
            if i < len(self._linears) - 1:
                h = F.relu(h)
        return h.view(-1, *IMAGE_SHAPE)


# Two stride-2 convolutions take 28x28 to 7x7; the decoder mirrors them with transposed convolutions.
CONV_CHANNELS = (32, 64)
CONV_KERNEL = 4  # each first-layer filter sees a 4 x 4 patch: the patch size the Experiments page compares with


# Slope of the invertible AE's leaky ReLU for negative inputs; its inverse multiplies them by 1 / slope.
# Far from 0 so the inverse does not blow small differences up (InvAuto uses leaky ReLU too).
INVERTIBLE_SLOPE = 0.5


class OrthonormalRows(nn.Module):
    """A parametrization (``torch.nn.utils.parametrize``): any full-rank V ``[m, n]`` (m <= n) -> W with W W^T = I.

    W is the Q factor of V^T's QR decomposition, transposed, with each row's sign chosen so that R's
    diagonal is positive: unique and continuous in V, and W = V when V already has orthonormal rows.
    Exact to float rounding, like torch's ``parametrizations.orthogonal``, which builds these rectangular
    weights from 400 Householder reflections one after the other: 0.48 s per training step of a 784 x 400
    layer on this machine, against 0.04 s for one QR (Cayley's map: 0.29 s).
    """

    def forward(self, v: torch.Tensor) -> torch.Tensor:  # [m, n] -> [m, n], orthonormal rows
        q, r = torch.linalg.qr(v.t())  # q [n, m], r [m, m]
        signs = torch.where(torch.diagonal(r) < 0, -1.0, 1.0).to(q.dtype)
        return (q * signs).t()


class InvertibleDenseEncoder(nn.Module):
    """784 -> hidden... -> D, each linear map with orthonormal rows (W W^T = I), leaky ReLU in between.

    Every layer has an exact right inverse: h -> W^T (h - b) undoes h = W x + b on the image of W, and
    leaky ReLU with slope 1 / s undoes slope s. :meth:`inverse` chains them backwards (InvAuto, Teng &
    Choromanska, 2019, sec. 3: the decoder is the encoder's inverse, not a second network), so
    ``forward(inverse(z)) == z`` for every code z, up to float rounding. The code layer's bias cancels in
    D(E(x)), so reconstruction alone never moves it: it only places the map.

    The orthonormal rows are a parametrization (:class:`OrthonormalRows`), recomputed at each access;
    :func:`materialised` turns them into plain tensors for export.
    """

    def __init__(self, hidden: tuple[int, ...], latent_dim: int) -> None:
        super().__init__()
        from torch.nn.utils import parametrize

        sizes = [N_PIXELS, *hidden, latent_dim]
        self.linears = nn.ModuleList(nn.Linear(n_in, n_out) for n_in, n_out in zip(sizes[:-1], sizes[1:]))
        for linear in self.linears:
            # The layer's random initial weight becomes the unconstrained V; the weight used is its Q factor.
            parametrize.register_parametrization(linear, "weight", OrthonormalRows())

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 1, 28, 28] -> [B, D]
        h = x.flatten(1)
        last = len(self.linears) - 1
        for i, linear in enumerate(self.linears):
            h = linear(h)
            if i < last:
                h = F.leaky_relu(h, INVERTIBLE_SLOPE)
        return h

    def inverse(self, z: torch.Tensor) -> torch.Tensor:  # [B, D] -> pixels [B, 1, 28, 28], not squashed
        h = z
        last = len(self.linears) - 1
        for i in range(last, -1, -1):
            linear = self.linears[i]
            if i < last:
                h = F.leaky_relu(h, 1.0 / INVERTIBLE_SLOPE)  # the inverse of the slope-s leaky ReLU
            h = (h - linear.bias) @ linear.weight  # W^T (h - b): with W W^T = I, W of this is h - b again
        return h.view(-1, *IMAGE_SHAPE)


class InvertedDenseDecoder(nn.Module):
    """The decoder of an invertible AE: :meth:`InvertibleDenseEncoder.inverse`, with no weights of its own."""

    def __init__(self, encoder: InvertibleDenseEncoder) -> None:
        super().__init__()
        self._encoder = [encoder]  # a plain list, not a submodule: the weights are saved once, by the encoder

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # [B, D] -> pixels [B, 1, 28, 28]
        return self._encoder[0].inverse(z)


class ConvEncoder(nn.Module):
    """``linear``: every activation is the identity, so the whole encoder is one affine map."""

    def __init__(self, hidden: tuple[int, ...], out_dim: int, linear: bool = False) -> None:
        super().__init__()
        c1, c2 = CONV_CHANNELS
        sizes = [c2 * 7 * 7, *hidden]
        self.body = nn.Sequential(
            nn.Conv2d(1, c1, CONV_KERNEL, stride=2, padding=1), _activation(linear),  # [B, c1, 14, 14]
            nn.Conv2d(c1, c2, CONV_KERNEL, stride=2, padding=1), _activation(linear),  # [B, c2, 7, 7]
            nn.Flatten(), *_mlp(sizes, linear),
        )  # fmt: skip
        self.head = nn.Linear(sizes[-1], out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 1, 28, 28] -> [B, out_dim]
        return self.head(self.body(x))


class ConvDecoder(nn.Module):
    def __init__(self, hidden: tuple[int, ...], latent_dim: int, linear: bool = False) -> None:
        super().__init__()
        c1, c2 = CONV_CHANNELS
        sizes = [latent_dim, *reversed(hidden), c2 * 7 * 7]
        self.body = nn.Sequential(
            *_mlp(sizes, linear), nn.Unflatten(1, (c2, 7, 7)),
            nn.ConvTranspose2d(c2, c1, CONV_KERNEL, stride=2, padding=1), _activation(linear),  # [B, c1, 14, 14]
            nn.ConvTranspose2d(c1, 1, CONV_KERNEL, stride=2, padding=1),  # [B, 1, 28, 28]
        )  # fmt: skip

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # [B, D] -> logits [B, 1, 28, 28]
        return self.body(z)


def _reconstruction_error(logits: torch.Tensor, x: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-image reconstruction error summed over pixels, averaged over the batch -> scalar.

    BCE: -log p(x|z) for a Bernoulli decoder, in nats. MSE: squared error summed over the 784 pixels.
    """
    if kind == "bce":
        per_pixel = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    else:
        per_pixel = (torch.sigmoid(logits) - x) ** 2
    return per_pixel.flatten(1).sum(1).mean()


def soft_nearest_neighbour_loss(
    z: torch.Tensor, labels: torch.Tensor | None, temperature: float = 0.1
) -> torch.Tensor:
    """How entangled the classes of codes z ``[B, D]`` with labels ``[B]`` are -> scalar >= 0 (nats).

    Frosst, Papernot & Hinton (2019), eq. (1): for each point, minus the log of the share of its
    soft neighbours (weights exp(-d^2 / T)) that carry its own label, averaged over the batch. 0 when
    every point's near neighbours are its own class; log(C) when the classes are fully mixed.
    Distances are divided by their batch mean, so the term is blind to scale: an encoder cannot lower it
    by spreading every code further apart, only by separating the classes.
    """
    if labels is None:
        raise ValueError("this model's loss has a class-aware term (class_weight > 0): it needs the labels")
    if labels.shape != z.shape[:1]:
        raise ValueError(f"labels must have shape [{len(z)}], got {list(labels.shape)}")
    squared = torch.cdist(z, z).pow(2)  # [B, B]
    others = ~torch.eye(len(z), dtype=torch.bool, device=z.device)
    scaled = squared / squared[others].mean().clamp_min(1e-12)
    logits = (-scaled / temperature).masked_fill(~others, float("-inf"))
    same = (labels.unsqueeze(0) == labels.unsqueeze(1)) & others
    has_partner = same.any(1)  # a point alone in its class in this batch has no term
    # l_sn = -1/b sum_i log( sum_{j != i, y_j = y_i} e^{-d_ij / T} / sum_{k != i} e^{-d_ik / T} )
    log_same = torch.logsumexp(logits.masked_fill(~same, float("-inf")), dim=1)
    log_all = torch.logsumexp(logits, dim=1)
    return (log_all - log_same)[has_partner].mean()


# UMAP's q(d) = 1 / (1 + a d^(2b)) for its defaults spread = 1, min_dist = 0.1: the values
# umap.umap_.find_ab_params(1.0, 0.1) fits (tests check them against it; importing umap here would cost seconds).
UMAP_A, UMAP_B = 1.5769434604035554, 0.8950608781603632
# Negative samples per edge and the floor of probabilities inside the logs: Parametric UMAP's defaults.
UMAP_NEGATIVE_RATE = 5
UMAP_EPS = 1e-4


def umap_negatives(batch_size: int, rate: int = UMAP_NEGATIVE_RATE, generator: torch.Generator | None = None,
                   device: torch.device | str = "cpu") -> torch.Tensor:  # fmt: skip
    """``[B, rate]`` indices into a batch of edge tails: the tails each head is pushed away from.

    Parametric UMAP repeats the tails ``rate`` times and shuffles them, so every tail serves ``rate`` times.
    """
    return (torch.randperm(batch_size * rate, generator=generator, device=device) // rate).view(batch_size, rate)


def umap_cross_entropy(
    heads: torch.Tensor, tails: torch.Tensor, negatives: torch.Tensor, a: float = UMAP_A, b: float = UMAP_B
) -> torch.Tensor:
    """UMAP's fuzzy-set cross-entropy on a batch of graph edges -> scalar (nats per pair, mean).

    heads, tails ``[B, D]``: codes of the two ends of B edges drawn in proportion to their membership
    strength, so each counts with probability 1; negatives ``[B, R]``: for each head, R tails of other
    edges (:func:`umap_negatives`), counted with probability 0. With q(d) = 1 / (1 + a d^(2b)) (McInnes
    et al., 2018, sec. 3.2), the term is -log q for an edge and -log(1 - q) for a negative pair, each
    probability floored at 1e-4, averaged over the B (1 + R) pairs, as Parametric UMAP computes it
    (Sainburg, McInnes & Gentner, 2021, eq. 2 and umap-learn's ``umap_loss``).
    """
    if heads.shape != tails.shape or negatives.shape[0] != len(heads):
        raise ValueError(f"heads {list(heads.shape)}, tails {list(tails.shape)} and negatives "
                         f"{list(negatives.shape)} must describe the same B edges")  # fmt: skip
    # Squared distances, floored so that (d^2)^b has a finite gradient when two codes coincide.
    positive = (heads - tails).pow(2).sum(1).clamp_min(1e-12)  # [B]
    negative = (heads.unsqueeze(1) - tails[negatives]).pow(2).sum(2).clamp_min(1e-12)  # [B, R]
    q_positive = 1.0 / (1.0 + a * positive.pow(b))
    q_negative = 1.0 / (1.0 + a * negative.pow(b))
    attraction = -torch.log(q_positive.clamp(UMAP_EPS, 1.0))  # [B]
    repulsion = -torch.log((1.0 - q_negative).clamp(UMAP_EPS, 1.0))  # [B, R]
    return (attraction.sum() + repulsion.sum()) / (attraction.numel() + repulsion.numel())


def _add_class_term(terms: dict[str, torch.Tensor], z: torch.Tensor, labels: torch.Tensor | None,
                    weight: float) -> dict[str, torch.Tensor]:
    if weight:
        terms["class"] = soft_nearest_neighbour_loss(z, labels)
        terms["loss"] = terms["loss"] + weight * terms["class"]
    return terms


class AutoEncoder(LatentModel):
    """Deterministic AE: z = e(x), x' = d(z), loss = recon + sparsity * |z|_1."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.kind != "ae":
            raise ValueError(f"AutoEncoder needs kind='ae', got {config.kind!r}")
        self.config = config
        if config.invertible:
            self.encoder = InvertibleDenseEncoder(config.hidden, config.latent_dim)
            self.decoder = InvertedDenseDecoder(self.encoder)
            return
        if config.arch == "dense":
            self.encoder = DenseEncoder(config.hidden, config.latent_dim)
            tied = config.tied
            self.decoder = TiedDenseDecoder(self.encoder) if tied else DenseDecoder(config.hidden, config.latent_dim)
        else:
            self.encoder = ConvEncoder(config.hidden, config.latent_dim, linear=config.linear)
            self.decoder = ConvDecoder(config.hidden, config.latent_dim, linear=config.linear)

    @property
    def draws_pixels(self) -> bool:
        """True when the decoder's output is the image itself (linear and invertible AEs), not logits."""
        return self.config.linear or self.config.invertible

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.encoder(x), None

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if self.draws_pixels:  # no squashing: clamped for display only, as PCA's decode is
            return self.decoder(z).clamp(0, 1)
        return torch.sigmoid(self.decoder(z))

    def loss(
        self, x: torch.Tensor, labels: torch.Tensor | None = None, neighbours: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        with_graph = bool(self.config.umap_weight) and neighbours is not None
        if with_graph:  # one pass for both ends of the edges
            z, z_neighbours = self.encoder(torch.cat([x, neighbours])).split(len(x))  # [B, D] each
        else:
            z = self.encoder(x)  # [B, D]
        # The decoupled decoder learns from the codes without sending gradients back into the encoder
        # (Parametric UMAP's stop-gradient decoder): reconstruction cannot bend the map.
        output = self.decoder(z.detach() if self.config.decoupled else z)  # logits, or pixels (draws_pixels)
        if self.draws_pixels:
            recon = (output - x).pow(2).flatten(1).sum(1).mean()
        else:
            recon = _reconstruction_error(output, x, self.config.recon_loss)
        terms = {"loss": recon, "recon": recon}
        if self.config.sparsity:
            terms["sparsity"] = z.abs().sum(1).mean()
            terms["loss"] = terms["loss"] + self.config.sparsity * terms["sparsity"]
        if with_graph:
            negatives = umap_negatives(len(z), device=z.device)
            terms["umap"] = umap_cross_entropy(z, z_neighbours, negatives)
            terms["loss"] = terms["loss"] + self.config.umap_weight * terms["umap"]
        return _add_class_term(terms, z, labels, self.config.class_weight)


class VariationalAutoEncoder(LatentModel):
    """Kingma & Welling (2013): Gaussian posterior q(z|x) = N(mean, diag(exp(logvar))), prior N(0, I)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.kind != "vae":
            raise ValueError(f"VariationalAutoEncoder needs kind='vae', got {config.kind!r}")
        self.config = config
        encoder_cls, decoder_cls = (DenseEncoder, DenseDecoder) if config.arch == "dense" else (ConvEncoder, ConvDecoder)
        # One head emits mean and log-variance side by side: [B, 2D].
        self.encoder = encoder_cls(config.hidden, 2 * config.latent_dim)
        self.decoder = decoder_cls(config.hidden, config.latent_dim)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.encoder(x).chunk(2, dim=1)  # [B, D] each
        return mean, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))

    @staticmethod
    def reparameterize(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """Sample z ~ N(mean, exp(logvar)) so that gradients reach mean and logvar ([B, D] -> [B, D])."""
        eps = torch.randn_like(mean)
        return mean + torch.exp(0.5 * logvar) * eps  # z = mu + sigma * eps, Kingma & Welling eq. (10)

    @staticmethod
    def kl_to_standard_normal(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL(N(mean, exp(logvar)) || N(0, I)) per image, summed over D: ``[B, D]`` -> ``[B]``, in nats."""
        # -KL = 1/2 * sum(1 + log sigma^2 - mu^2 - sigma^2), Kingma & Welling (2013), appendix B.
        return -0.5 * torch.sum(1 + logvar - mean.pow(2) - logvar.exp(), dim=1)

    def loss(
        self, x: torch.Tensor, labels: torch.Tensor | None = None, neighbours: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Negative ELBO with a beta weight: recon + beta * KL (+ class term), per image (nats for BCE)."""
        mean, logvar = self.encode(x)
        z = self.reparameterize(mean, logvar)
        recon = _reconstruction_error(self.decoder(z), x, self.config.recon_loss)
        kl = self.kl_to_standard_normal(mean, logvar).mean()
        terms = {"loss": recon + self.config.beta * kl, "recon": recon, "kl": kl}
        # On the posterior means, the points the maps show: the sampling noise is the KL's business.
        return _add_class_term(terms, mean, labels, self.config.class_weight)


class PCAModel(LatentModel):
    """PCA as a linear auto-encoder with orthonormal weights: the baseline every AE should beat.

    ``embed`` projects onto the top-D principal axes; ``decode`` maps back (clamped to [0, 1]).
    Built by :func:`fit_pca`; the buffers make it save and load like any other model.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.kind != "pca":
            raise ValueError(f"PCAModel needs kind='pca', got {config.kind!r}")
        self.config = config
        self.register_buffer("mean", torch.zeros(N_PIXELS))  # [784]
        self.register_buffer("components", torch.zeros(config.latent_dim, N_PIXELS))  # [D, 784], orthonormal rows
        self.register_buffer("explained_variance", torch.zeros(config.latent_dim))  # [D]

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return (x.flatten(1) - self.mean) @ self.components.t(), None

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return (z @ self.components + self.mean).clamp(0, 1).view(-1, *IMAGE_SHAPE)

    def loss(
        self, x: torch.Tensor, labels: torch.Tensor | None = None, neighbours: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        x_hat = self.decode(self.embed(x)).clamp(1e-6, 1 - 1e-6)
        if self.config.recon_loss == "bce":
            recon = F.binary_cross_entropy(x_hat, x, reduction="none").flatten(1).sum(1).mean()
        else:
            recon = ((x_hat - x) ** 2).flatten(1).sum(1).mean()
        return {"loss": recon, "recon": recon}


@torch.no_grad()
def fit_pca(images: torch.Tensor, latent_dim: int, recon_loss: str = "mse") -> PCAModel:
    """Fit PCA on images ``[N, 1, 28, 28]`` (float in [0, 1]) or ``[N, 28, 28]`` (uint8 or float).

    Uses the eigendecomposition of the 784x784 covariance in float64: exact and about a second for
    60,000 images, where an SVD of the data matrix would cost far more memory.
    """
    x = images.reshape(len(images), N_PIXELS).to(torch.float64)
    if images.dtype == torch.uint8:
        x = x / 255.0
    if len(x) < 2:
        raise ValueError(f"PCA needs at least 2 images, got {len(x)}")
    model = PCAModel(ModelConfig(kind="pca", latent_dim=latent_dim, hidden=(), recon_loss=recon_loss))
    mean = x.mean(0)
    centred = x - mean
    covariance = centred.t() @ centred / (len(x) - 1)  # [784, 784]
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending order
    top = torch.argsort(eigenvalues, descending=True)[:latent_dim]
    components = eigenvectors[:, top].t()  # [D, 784]
    # Fix each axis's sign (largest |loading| positive) so refits give the same picture, as sklearn does.
    signs = torch.sign(components.gather(1, components.abs().argmax(1, keepdim=True)))
    model.mean.copy_(mean.float())
    model.components.copy_((components * signs).float())
    model.explained_variance.copy_(eigenvalues[top].float())
    return model


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode for the block, then the mode the model was in: safe in the middle of training."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def build_model(config: ModelConfig) -> LatentModel:
    """Config in, untrained model out (PCA comes from :func:`fit_pca` instead)."""
    if config.arch == IMPORTED_ARCH:
        raise ValueError("an imported ONNX model has no layers to build or train: load it with vae.load_model(folder)")
    if config.kind == "ae":
        return AutoEncoder(config)
    if config.kind == "vae":
        return VariationalAutoEncoder(config)
    return PCAModel(config)


def materialised(model: LatentModel) -> LatentModel:
    """A copy of ``model`` in eval mode whose parametrized weights are plain tensors, for export.

    The invertible AE's orthonormal weights are recomputed from their unconstrained factors (a QR
    decomposition, :class:`OrthonormalRows`) at every access; the copy holds their values
    instead, so ``encode``/``decode`` are plain matmuls and leaky ReLUs that ``torch.export`` and
    ``torch.onnx.export`` trace. Same outputs as ``model``. Its state dict has plain ``weight`` names, so
    save ``model`` itself, not the copy. Any other model comes back as a plain copy.
    """
    from torch.nn.utils import parametrize

    # Rebuilt, not deep-copied: a deep-copied parametrized layer shares its (generated) class with the original,
    # so removing the copy's parametrization would delete the original's weight property too.
    plain = build_model(model.config).to(model.device)
    plain.load_state_dict(model.state_dict())
    plain.eval()
    for module in plain.modules():
        if parametrize.is_parametrized(module):
            for name in list(module.parametrizations):
                parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    return plain


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def to_float_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[N, 28, 28]`` -> float ``[N, 1, 28, 28]`` in [0, 1], the models' input format."""
    if images.dtype == torch.uint8:
        images = images.float().div_(255.0)
    return images.reshape(-1, *IMAGE_SHAPE)

