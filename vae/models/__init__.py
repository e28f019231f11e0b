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

The package, one job per module: ``config`` (:class:`ModelConfig` and the constants; no torch), ``interface``
(:class:`LatentModel` and helpers for any model), ``layers`` (encoder and decoder bodies), ``losses`` (the
terms beyond a model's own) and ``autoencoders`` (the three models and :func:`build_model`). Import from
``vae.models``: the names below are its public face.
"""

from __future__ import annotations

from vae.models.autoencoders import (
    AutoEncoder,
    PCAModel,
    VariationalAutoEncoder,
    build_model,
    fit_pca,
    materialised,
)
from vae.models.config import (
    ARCHS,
    IMAGE_SHAPE,
    IMPORTED_ARCH,
    KINDS,
    MAX_GRAPH_NAME,
    MAX_LATENT_DIM,
    MAX_UMAP_WEIGHT,
    MIN_LATENT_DIM,
    N_PIXELS,
    PIXEL_LAYOUTS,
    RECON_LOSSES,
    ModelConfig,
    OnnxInterface,
)
from vae.models.interface import (
    LatentModel,
    count_parameters,
    evaluating,
    to_float_images,
)
from vae.models.layers import (
    CONV_CHANNELS,
    CONV_KERNEL,
    INVERTIBLE_SLOPE,
    ConvDecoder,
    ConvEncoder,
    DenseDecoder,
    DenseEncoder,
    InvertedDenseDecoder,
    InvertibleDenseEncoder,
    OrthonormalRows,
    TiedDenseDecoder,
)
from vae.models.losses import (
    UMAP_A,
    UMAP_B,
    UMAP_EPS,
    UMAP_NEGATIVE_RATE,
    add_class_term,
    reconstruction_error,
    soft_nearest_neighbour_loss,
    umap_cross_entropy,
    umap_negatives,
)

__all__ = [
    "add_class_term",
    "ARCHS",
    "AutoEncoder",
    "build_model",
    "CONV_CHANNELS",
    "CONV_KERNEL",
    "ConvDecoder",
    "ConvEncoder",
    "count_parameters",
    "DenseDecoder",
    "DenseEncoder",
    "evaluating",
    "fit_pca",
    "IMAGE_SHAPE",
    "IMPORTED_ARCH",
    "InvertedDenseDecoder",
    "INVERTIBLE_SLOPE",
    "InvertibleDenseEncoder",
    "KINDS",
    "LatentModel",
    "materialised",
    "MAX_GRAPH_NAME",
    "MAX_LATENT_DIM",
    "MAX_UMAP_WEIGHT",
    "MIN_LATENT_DIM",
    "ModelConfig",
    "N_PIXELS",
    "OnnxInterface",
    "OrthonormalRows",
    "PCAModel",
    "PIXEL_LAYOUTS",
    "RECON_LOSSES",
    "reconstruction_error",
    "soft_nearest_neighbour_loss",
    "TiedDenseDecoder",
    "to_float_images",
    "UMAP_A",
    "UMAP_B",
    "umap_cross_entropy",
    "UMAP_EPS",
    "UMAP_NEGATIVE_RATE",
    "umap_negatives",
    "VariationalAutoEncoder",
]
