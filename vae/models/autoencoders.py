"""The models: :class:`AutoEncoder`, :class:`VariationalAutoEncoder` and the :class:`PCAModel` baseline,
and :func:`build_model`, which makes the right one from a :class:`~vae.models.config.ModelConfig`."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vae.models.config import IMAGE_SHAPE, IMPORTED_ARCH, N_PIXELS, ModelConfig
from vae.models.interface import LatentModel
from vae.models.layers import (
    ConvDecoder,
    ConvEncoder,
    DenseDecoder,
    DenseEncoder,
    InvertedDenseDecoder,
    InvertibleDenseEncoder,
    TiedDenseDecoder,
)
from vae.models.losses import (
    add_class_term,
    reconstruction_error,
    umap_cross_entropy,
    umap_negatives,
)


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
            recon = reconstruction_error(output, x, self.config.recon_loss)
        terms = {"loss": recon, "recon": recon}
        if self.config.sparsity:
            terms["sparsity"] = z.abs().sum(1).mean()
            terms["loss"] = terms["loss"] + self.config.sparsity * terms["sparsity"]
        if with_graph:
            negatives = umap_negatives(len(z), device=z.device)
            terms["umap"] = umap_cross_entropy(z, z_neighbours, negatives)
            terms["loss"] = terms["loss"] + self.config.umap_weight * terms["umap"]
        return add_class_term(terms, z, labels, self.config.class_weight)


class VariationalAutoEncoder(LatentModel):
    """Kingma & Welling (2013): Gaussian posterior q(z|x) = N(mean, diag(exp(logvar))), prior N(0, I)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.kind != "vae":
            raise ValueError(f"VariationalAutoEncoder needs kind='vae', got {config.kind!r}")
        self.config = config
        encoder_cls, decoder_cls = (
            (DenseEncoder, DenseDecoder) if config.arch == "dense" else (ConvEncoder, ConvDecoder)
        )
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
        recon = reconstruction_error(self.decoder(z), x, self.config.recon_loss)
        kl = self.kl_to_standard_normal(mean, logvar).mean()
        terms = {"loss": recon + self.config.beta * kl, "recon": recon, "kl": kl}
        # On the posterior means, the points the maps show: the sampling noise is the KL's business.
        return add_class_term(terms, mean, labels, self.config.class_weight)


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
