"""Auto-encoder, variational auto-encoder and PCA baseline behind one interface.

Every model maps images ``x`` float ``[B, 1, 28, 28]`` in [0, 1] to a latent code and back:

- ``embed(x)``  -> ``[B, D]``: the point a page plots (AE code, VAE posterior mean, PCA projection).
- ``encode(x)`` -> ``(mean [B, D], logvar [B, D] | None)``: the full posterior (``None`` where there is none).
- ``decode(z)`` -> ``[B, 1, 28, 28]`` in [0, 1].
- ``loss(x, labels=None)`` -> named terms, each a scalar averaged over the batch, i.e. *per image*; BCE
  terms are in nats (summed over the 784 pixels), which is the unit papers report for MNIST. Labels are
  read only by the optional class-aware term (``config.class_weight``).
- ``config``    -> the :class:`ModelConfig` that rebuilds the model.

The models know nothing of data loading, optimisers or logging (see ``vae.train``).
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
ARCHS = ("dense", "conv")  # the architectures build_model makes and vae.train trains
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
        for name in ("beta", "sparsity", "class_weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1000:
                raise ValueError(f"{name} must be a number from 0 to 1000, got {value!r}")
        if self.arch == IMPORTED_ARCH or self.onnx is not None:
            self._check_imported()
            return
        if self.kind != "pca" and not self.linear and not self.hidden:
            raise ValueError("hidden must list at least one layer for an AE or a VAE (or set linear)")
        if self.linear and (self.kind != "ae" or self.arch != "dense" or self.hidden or self.recon_loss != "mse"):
            raise ValueError("linear applies to a dense AE with hidden=() and recon_loss='mse' only")
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
                              ("class_weight", 0.0)):  # fmt: skip
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
    def loss(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """x ``[B, 1, 28, 28]`` -> {"loss", "recon", ...}: scalars, mean over the batch of per-image sums.

        labels ``[B]`` (int64) are needed only when ``config.class_weight`` > 0; the term is then "class".
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


def _mlp(sizes: list[int]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
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


class ConvEncoder(nn.Module):
    def __init__(self, hidden: tuple[int, ...], out_dim: int) -> None:
        super().__init__()
        c1, c2 = CONV_CHANNELS
        sizes = [c2 * 7 * 7, *hidden]
        self.body = nn.Sequential(
            nn.Conv2d(1, c1, 4, stride=2, padding=1), nn.ReLU(),  # [B, c1, 14, 14]
            nn.Conv2d(c1, c2, 4, stride=2, padding=1), nn.ReLU(),  # [B, c2, 7, 7]
            nn.Flatten(), *_mlp(sizes),
        )  # fmt: skip
        self.head = nn.Linear(sizes[-1], out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 1, 28, 28] -> [B, out_dim]
        return self.head(self.body(x))


class ConvDecoder(nn.Module):
    def __init__(self, hidden: tuple[int, ...], latent_dim: int) -> None:
        super().__init__()
        c1, c2 = CONV_CHANNELS
        sizes = [latent_dim, *reversed(hidden), c2 * 7 * 7]
        self.body = nn.Sequential(
            *_mlp(sizes), nn.Unflatten(1, (c2, 7, 7)),
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1), nn.ReLU(),  # [B, c1, 14, 14]
            nn.ConvTranspose2d(c1, 1, 4, stride=2, padding=1),  # [B, 1, 28, 28]
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
        encoder_cls, decoder_cls = (DenseEncoder, DenseDecoder) if config.arch == "dense" else (ConvEncoder, ConvDecoder)
        self.encoder = encoder_cls(config.hidden, config.latent_dim)
        self.decoder = TiedDenseDecoder(self.encoder) if config.tied else decoder_cls(config.hidden, config.latent_dim)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.encoder(x), None

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if self.config.linear:  # no squashing: clamped for display only, as PCA's decode is
            return self.decoder(z).clamp(0, 1)
        return torch.sigmoid(self.decoder(z))

    def loss(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        z = self.encoder(x)  # [B, D]
        output = self.decoder(z)  # logits, or the image itself for a linear AE
        if self.config.linear:
            recon = (output - x).pow(2).flatten(1).sum(1).mean()
        else:
            recon = _reconstruction_error(output, x, self.config.recon_loss)
        terms = {"loss": recon, "recon": recon}
        if self.config.sparsity:
            terms["sparsity"] = z.abs().sum(1).mean()
            terms["loss"] = terms["loss"] + self.config.sparsity * terms["sparsity"]
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

    def loss(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
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

    def loss(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
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


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def to_float_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[N, 28, 28]`` -> float ``[N, 1, 28, 28]`` in [0, 1], the models' input format."""
    if images.dtype == torch.uint8:
        images = images.float().div_(255.0)
    return images.reshape(-1, *IMAGE_SHAPE)

