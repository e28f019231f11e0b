"""The brief's open questions as experiments: train what each needs, measure it on the test set, save it.

Four studies, each a list of model variants trained with the project's own trainer and measured alike:

- ``"pca_vs_ae"``: does a dense AE learn something like PCA? PCA, a linear AE, the dense AE, the same AE
  with tied (transposed) decoder weights, and the VAE at each latent size; the linear AE's decoder
  subspace is compared with PCA's by principal angles (Baldi & Hornik, 1989, predict they coincide).
- ``"conv"``: what does a convolutional AE change? The dense and the conv AE/VAE pair in 2-D.
- ``"beta"``: what does the KL term do? 2-D VAEs with the KL weighted by each beta (0 is a noisy AE).
- ``"class_aware"``: a loss that rewards dense, non-overlapping classes. 2-D AEs and VAEs with the
  class-aware term (:func:`vae.models.soft_nearest_neighbour_loss`, which uses the labels) at several weights.
- ``"invertible"``: can the decoder be the encoder's inverse? PCA, the untied, the tied and the invertible
  dense AE (orthogonal weights, leaky ReLU, the decoder their exact inverse) at each latent size, with how
  far E(D(z)) lands from z.
- ``"conv_filters"``: what does a conv AE's first layer learn, local PCAs of its patches? The conv AE and
  a linear conv AE, their 4 x 4 filters (and what training changed in them) against the principal
  components of the patches they see (:mod:`vae.patches`).
- ``"decoupled"``: an encoder trained without its decoder and without labels: Parametric UMAP's graph loss
  with a stop-gradient decoder, and jointly with reconstruction, beside PCA, the AE, the VAE and the
  class-aware AE, on Parametric UMAP's protocol (50,000 training images).

A result is small (a table of numbers, 2-D maps of a few thousand test points, a few decoded images)
and is saved as ``<study>.json`` + ``<study>.npz`` (read back with ``allow_pickle=False``), so the
Experiments page opens instantly from the shipped copies in ``experiments/`` and can recompute any study.

CLI: ``python -m vae.experiments run [--study NAME ...] [--quick] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vae.metrics import embed_images, overlap_report
from vae.models import (
    CONV_KERNEL,
    AutoEncoder,
    LatentModel,
    ModelConfig,
    build_model,
    count_parameters,
    fit_pca,
    to_float_images,
)
from vae.files import write_atomically
from vae.training.saving import evaluate_for_metadata
from vae.training.trainer import train, TrainSettings

STUDIES: dict[str, str] = {
    "pca_vs_ae": "Does a dense AE learn something like PCA?",
    "conv": "What does a convolutional AE change?",
    "beta": "What does the KL term do?",
    "class_aware": "Can a loss reward dense, non-overlapping classes?",
    "invertible": "Can the decoder be the inverse of the encoder?",
    "conv_filters": "What does a convolutional AE's first layer learn: local PCAs of its patches?",
    "decoupled": "Can an encoder be trained without its decoder (and without labels)?",
}
# Bump when the files' layout changes; older files are then refused with a message, not misread.
RESULT_FORMAT = 1
MAX_RESULT_BYTES = 64 * 1024 * 1024
# The manifold grids drawn for 2-D models: GRID x GRID decodes over the middle 98 % of the map.
GRID = 10

Progress = Callable[[float, str], None]  # (fraction of the study done, what is happening)


class ExperimentFileError(ValueError):
    """A saved result that is missing, damaged, or from another format version."""


class StudyStopped(RuntimeError):
    """``should_stop`` asked the study to end before it was complete."""


@dataclass(frozen=True)
class StudySettings:
    """What a study trains and how long; the defaults made the shipped results (``--quick`` is smaller)."""

    dataset: str = "mnist"
    epochs: int = 10
    batch_size: int = 128
    # Train on the first N training images only (None: all 60,000); tests and quick recomputes use it.
    train_limit: int | None = None
    # One hidden layer of 400 is Kingma & Welling's MNIST set-up; every dense variant shares it.
    hidden: tuple[int, ...] = (400,)
    conv_hidden: tuple[int, ...] = (256,)
    dims: tuple[int, ...] = (2, 4, 8, 16, 32)
    betas: tuple[float, ...] = (0.0, 0.1, 0.5, 1.0, 2.0, 4.0)
    class_weights: tuple[float, ...] = (0.0, 10.0, 100.0)
    # The decoupled study follows Parametric UMAP's protocol: the first 50,000 training images (the last
    # 10,000 are held out: the settings below were chosen on them, never on the test set), kNN-5 fitted
    # on their embeddings. Its models are the shipped 2-D pair's size, its AE, VAE and class-aware AE
    # trained with that pair's recipe (30 epochs of batches of 128 images) ...
    graph_train_images: int = 50_000
    graph_hidden: tuple[int, ...] = (512, 256)
    long_epochs: int = 30
    long_batch_size: int = 128
    # ... and its UMAP models on 240 passes of 50,000 edges in batches of 512: 12 million edges. On the held-out
    # images the decoupled encoder's kNN-5 was 0.929 after a 120-pass schedule, and 0.940, 0.943, 0.943 after
    # 120, 160 and 240 passes of this one: flat by the end, where its own training images (leave-one-out)
    # reached 0.959. Parametric UMAP draws about 65 million edges for MNIST, more than this CPU can spend.
    graph_epochs: int = 240
    graph_batch_size: int = 512
    # Weight of the UMAP term in the joint model: about 784 x Parametric UMAP's 1 : 1 balance of its
    # per-pixel BCE with the mean edge cross-entropy, since recon here sums 784 pixels.
    umap_weight: float = 784.0
    # Test points kept for each 2-D map (a seeded sample): enough to see the shape, small to ship.
    map_points: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("hidden", "conv_hidden", "dims", "betas", "class_weights", "graph_hidden"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.train_limit is not None and self.train_limit < self.batch_size:
            raise ValueError(f"train_limit must be at least batch_size ({self.batch_size}), got {self.train_limit}")
        if not self.dims or 2 not in self.dims:
            raise ValueError(f"dims must include 2 (the maps are 2-D), got {self.dims}")
        if not 100 <= self.map_points <= 10_000:
            raise ValueError(f"map_points must be from 100 to 10000, got {self.map_points}")
        if not self.betas or not self.class_weights:
            raise ValueError("betas and class_weights must each list at least one value")
        if 0.0 not in self.class_weights:
            raise ValueError("class_weights must include 0, the baseline the others are compared with")
        if self.graph_train_images < max(self.batch_size, self.graph_batch_size, self.long_batch_size):
            raise ValueError(f"graph_train_images must be at least one batch, got {self.graph_train_images}")
        for name in ("graph_epochs", "graph_batch_size", "long_epochs", "long_batch_size"):  # named for the message
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        # The rest (epochs, dims, betas, weights) is checked by TrainSettings and ModelConfig when built.
        self.train_settings()

    def train_settings(self) -> TrainSettings:
        return TrainSettings(epochs=self.epochs, batch_size=self.batch_size, seed=self.seed)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudySettings:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# A minute-scale version for the page's "quick" recompute and the tests: same models, less of everything.
QUICK = StudySettings(epochs=2, train_limit=10_000, dims=(2, 8, 32), betas=(0.0, 1.0, 4.0), class_weights=(0.0, 100.0),
                      long_epochs=3, graph_epochs=12)  # fmt: skip


@dataclass(frozen=True)
class Variant:
    """One model of a study: ``key`` names it in the result, ``family`` groups it in plots."""

    key: str
    family: str
    config: ModelConfig
    # Per-variant optimiser changes, e.g. {"batch_size": 32}; empty means the study's settings.
    overrides: tuple[tuple[str, Any], ...] = ()


@dataclass
class StudyResult:
    study: str
    settings: StudySettings
    rows: list[dict[str, Any]]  # one per variant: key, family, config, metrics
    labels: np.ndarray  # int64 [M]: classes of the map points
    maps: dict[str, np.ndarray] = field(default_factory=dict)  # key -> float32 [M, 2], 2-D variants only
    images: dict[str, np.ndarray] = field(default_factory=dict)  # name -> uint8 [K, 28, 28]
    extras: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    seconds: float = 0.0

    def row(self, key: str) -> dict[str, Any]:
        for row in self.rows:
            if row["key"] == key:
                return row
        raise KeyError(f"{self.study} has no variant {key!r}")

    def rows_of(self, family: str) -> list[dict[str, Any]]:
        return [row for row in self.rows if row["family"] == family]


# ---------------------------------------------------------------------------------------------
# Which models each study trains.


# Gradient descent finds PCA's subspace slowly along directions whose eigenvalues are close (the rate is
# set by the eigengap): with batch 128 and lr 1e-3 a 2-D linear AE ends 30-85 degrees off after 10 epochs;
# with batch 32 and lr 3e-3 it ends within 2 degrees (measured on MNIST).
LINEAR_AE = (("batch_size", 32), ("learning_rate", 3e-3))


def variants(study: str, settings: StudySettings) -> list[Variant]:
    """The models behind ``study``, in the order they are trained."""
    hidden = settings.hidden
    if study == "pca_vs_ae":
        out = []
        for d in settings.dims:
            out += [
                Variant(f"pca-{d}", "PCA", ModelConfig(kind="pca", latent_dim=d, hidden=(), recon_loss="mse")),
                Variant(f"linear-{d}", "linear AE",
                        ModelConfig(kind="ae", latent_dim=d, hidden=(), linear=True, recon_loss="mse"), LINEAR_AE),
                Variant(f"dense-{d}", "dense AE", ModelConfig(kind="ae", latent_dim=d, hidden=hidden)),
                Variant(f"tied-{d}", "tied AE", ModelConfig(kind="ae", latent_dim=d, hidden=hidden, tied=True)),
                Variant(f"vae-{d}", "VAE", ModelConfig(kind="vae", latent_dim=d, hidden=hidden)),
            ]  # fmt: skip
        return out
    if study == "conv":
        conv = settings.conv_hidden
        return [
            Variant("dense-ae", "dense", ModelConfig(kind="ae", hidden=hidden)),
            Variant("dense-vae", "dense", ModelConfig(kind="vae", hidden=hidden)),
            Variant("conv-ae", "conv", ModelConfig(kind="ae", arch="conv", hidden=conv)),
            Variant("conv-vae", "conv", ModelConfig(kind="vae", arch="conv", hidden=conv)),
        ]
    if study == "beta":
        return [Variant(f"beta-{b:g}", "VAE", ModelConfig(kind="vae", hidden=hidden, beta=b)) for b in settings.betas]
    if study == "class_aware":
        return [
            Variant(f"{kind}-class-{w:g}", kind.upper(), ModelConfig(kind=kind, hidden=hidden, class_weight=w))
            for kind in ("ae", "vae")
            for w in settings.class_weights
        ]
    if study == "invertible":
        out = []
        for d in settings.dims:
            out += [
                Variant(f"pca-{d}", "PCA", ModelConfig(kind="pca", latent_dim=d, hidden=(), recon_loss="mse")),
                Variant(f"dense-{d}", "dense AE", ModelConfig(kind="ae", latent_dim=d, hidden=hidden)),
                Variant(f"tied-{d}", "tied AE", ModelConfig(kind="ae", latent_dim=d, hidden=hidden, tied=True)),
                Variant(f"invertible-{d}", "invertible AE",
                        ModelConfig(kind="ae", latent_dim=d, hidden=hidden, invertible=True, recon_loss="mse")),
            ]  # fmt: skip
        return out
    if study == "conv_filters":
        conv = settings.conv_hidden
        return [
            Variant("conv-ae", "conv AE", ModelConfig(kind="ae", arch="conv", hidden=conv)),
            Variant("linear-conv-ae", "linear conv AE",
                    ModelConfig(kind="ae", arch="conv", hidden=conv, linear=True, recon_loss="mse")),
        ]  # fmt: skip
    if study == "decoupled":
        graph = settings.graph_hidden
        longer = (("epochs", settings.long_epochs), ("batch_size", settings.long_batch_size))
        edges = (("epochs", settings.graph_epochs), ("batch_size", settings.graph_batch_size))
        return [
            Variant("pca", "PCA", ModelConfig(kind="pca", hidden=(), recon_loss="mse")),
            Variant("ae", "AE", ModelConfig(kind="ae", hidden=graph), longer),
            Variant("vae", "VAE", ModelConfig(kind="vae", hidden=graph), longer),
            Variant("class-ae", "class-aware AE (labels)",
                    ModelConfig(kind="ae", hidden=graph, class_weight=100.0), longer),
            Variant("umap-decoupled", "UMAP encoder, decoupled decoder",
                    ModelConfig(kind="ae", hidden=graph, umap_weight=1.0, decoupled=True), edges),
            Variant("umap-joint", "UMAP + AE, joint",
                    ModelConfig(kind="ae", hidden=graph, umap_weight=settings.umap_weight), edges),
        ]  # fmt: skip
    raise ValueError(f"study must be one of {list(STUDIES)}, got {study!r}")


# ---------------------------------------------------------------------------------------------
# Running a study.


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    """float ``[K, 1, 28, 28]`` in [0, 1] -> uint8 ``[K, 28, 28]``."""
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).reshape(-1, 28, 28).cpu().numpy()


@torch.no_grad()
def manifold_grid(model: LatentModel, points: np.ndarray, size: int = GRID) -> tuple[np.ndarray, list[float]]:
    """Decode a ``size x size`` grid spanning the middle 98 % of ``points [M, 2]``.

    Returns uint8 ``[size * size, 28, 28]`` (row-major, top row = largest z2, as a plot shows it) and the
    box ``[x0, x1, y0, y1]`` it covers.
    """
    (x0, y0), (x1, y1) = np.percentile(points, 1, axis=0), np.percentile(points, 99, axis=0)
    xs, ys = np.linspace(x0, x1, size), np.linspace(y1, y0, size)
    grid = np.array([(x, y) for y in ys for x in xs], dtype=np.float32)  # [size*size, 2]
    decoded = model.decode(torch.from_numpy(grid).to(model.device))
    return _to_uint8(decoded), [float(x0), float(x1), float(y0), float(y1)]


def principal_angles_degrees(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Principal angles between the column spaces of ``a [P, D]`` and ``b [P, D]``, largest first, in degrees.

    0 everywhere means the two span the same subspace, whatever basis each uses.
    """
    from scipy.linalg import subspace_angles

    return np.degrees(subspace_angles(np.asarray(a, np.float64), np.asarray(b, np.float64)))


def _fit(
    variant: Variant,
    settings: StudySettings,
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    should_stop: Callable[[], bool] | None,
    graph: Any = None,
) -> tuple[LatentModel, dict[str, Any], list[dict[str, Any]]]:
    """Train (or fit) one variant -> (model, its timing and status, its per-epoch history)."""
    train_images, train_labels, test_images, test_labels = data
    started = time.perf_counter()
    if variant.config.kind == "pca":
        return fit_pca(train_images, variant.config.latent_dim), {"train_seconds": time.perf_counter() - started}, []
    train_settings = dataclasses.replace(settings.train_settings(), **dict(variant.overrides))
    result = train(
        variant.config, train_images, test_images, train_settings, should_stop=should_stop,
        train_labels=train_labels, test_labels=test_labels, device="cpu", graph=graph,
    )  # fmt: skip
    if result.status == "stopped":
        raise StudyStopped("stopped on request")
    timing = {"train_seconds": time.perf_counter() - started, "status": result.status}
    return result.model, timing, [record.to_dict() for record in result.history]


def _measure(
    model: LatentModel, data: tuple[torch.Tensor, ...], test_codes: torch.Tensor, seed: int
) -> dict[str, float]:
    """The row's numbers; ``test_codes`` ``[N, D]`` is the model's embedding of the test images."""
    train_images, train_labels, test_images, test_labels = data
    metrics = evaluate_for_metadata(model, train_images, train_labels, test_images, test_labels, seed=seed)
    overlap = overlap_report(test_codes, test_labels, seed=seed)
    metrics["silhouette"] = overlap["silhouette"]
    # Share of each test point's 5 nearest neighbours from another class, averaged over the classes.
    metrics["overlap"] = 1.0 - overlap["mean_purity"]
    metrics["parameters"] = count_parameters(model)
    return metrics


def _load_data(settings: StudySettings, data_dir: str | None) -> tuple[torch.Tensor, ...]:
    from vae.data import load_dataset

    train_images, train_labels = load_dataset(settings.dataset, "train", data_dir)
    test_images, test_labels = load_dataset(settings.dataset, "test", data_dir)
    if settings.train_limit is not None:
        train_images, train_labels = train_images[: settings.train_limit], train_labels[: settings.train_limit]
    return train_images, train_labels, test_images, test_labels


def run_study(
    study: str,
    settings: StudySettings = StudySettings(),
    data_dir: str | None = None,
    *,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    on_model: Callable[[Variant, LatentModel, dict[str, Any], list[dict[str, Any]]], None] | None = None,
) -> StudyResult:
    """Train and measure every variant of ``study``; raises :class:`StudyStopped` if ``should_stop`` fires.

    ``data`` (train images, train labels, test images, test labels) replaces loading ``settings.dataset``.
    ``on_model(variant, model, row, history)`` sees each trained model, its measured row and its per-epoch
    history (e.g. to save it).
    """
    todo = variants(study, settings)
    data = data if data is not None else _load_data(settings, data_dir)
    if study == "decoupled":  # Parametric UMAP's protocol: the first 50,000 training images only
        n = settings.graph_train_images
        data = (data[0][:n], data[1][:n], data[2], data[3])
    train_images, train_labels, test_images, test_labels = data
    picker = np.random.default_rng(settings.seed)
    map_index = np.sort(picker.choice(len(test_images), min(settings.map_points, len(test_images)), replace=False))
    # One test image per class, the same for every model, for the reconstruction strips.
    strip_index = [int(torch.nonzero(test_labels == c)[0]) for c in torch.unique(test_labels).tolist()]
    strip = to_float_images(test_images[strip_index])
    result = StudyResult(study, settings, rows=[], labels=test_labels[map_index].numpy().astype(np.int64))
    result.images["originals"] = _to_uint8(strip)
    started = time.perf_counter()
    graph = None
    if any(v.config.umap_weight for v in todo):  # built once, shared by every model with a UMAP term
        from vae.training.graph import fuzzy_graph

        if progress is not None:
            progress(0.0, f"the neighbour graph of the {len(train_images):,} training images")
        graph_started = time.perf_counter()
        graph = fuzzy_graph(train_images, seed=settings.seed)
        result.extras["graph"] = {
            "seconds": time.perf_counter() - graph_started, "points": len(train_images), "edges": len(graph.heads),
            "same_class_share": _same_class_share(graph, train_labels),
        }  # fmt: skip
    models: dict[str, LatentModel] = {}
    for i, variant in enumerate(todo):
        if should_stop is not None and should_stop():
            raise StudyStopped("stopped on request")
        if progress is not None:
            progress(i / len(todo), f"{i + 1}/{len(todo)}: {variant.config.describe()}")
        model_graph = graph if variant.config.umap_weight else None
        model, timing, history = _fit(variant, settings, data, should_stop, model_graph)
        model.eval()
        test_codes = embed_images(model, test_images)  # [N, D], for the overlap numbers and the map
        row = {"key": variant.key, "family": variant.family, "label": variant.config.describe(),
               **variant.config.to_dict(), **timing, **_measure(model, data, test_codes, settings.seed)}  # fmt: skip
        if study == "invertible":
            row |= right_inverse_errors(model, test_codes, settings.seed)
        result.rows.append(row)
        with torch.no_grad():
            result.images[f"recon/{variant.key}"] = _to_uint8(model.reconstruct(strip.to(model.device)))
            if variant.config.latent_dim == 2:
                points = test_codes[map_index].numpy().astype(np.float32)
                result.maps[variant.key] = points
                result.images[f"grid/{variant.key}"], row["grid_box"] = manifold_grid(model, points)
        if on_model is not None:
            on_model(variant, model, row, history)
        if variant.config.kind == "pca" or variant.config.linear or study == "conv_filters":  # kept for extras
            models[variant.key] = model
    if study == "pca_vs_ae":
        result.extras["angles"] = _linear_ae_angles(models, settings.dims)
    if study == "conv_filters":
        result.extras |= _conv_filter_extras(models, {v.key: v.config for v in todo}, train_images, settings.seed)
    result.seconds = time.perf_counter() - started
    result.created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if progress is not None:
        progress(1.0, "done")
    return result


def _linear_ae_angles(models: dict[str, LatentModel], dims: Sequence[int]) -> dict[str, dict[str, list[float]]]:
    """Per latent size, the principal angles (degrees) between PCA's subspace and the linear AE's.

    The decoder's columns span the images it can draw; the encoder's rows, the directions it reads.
    """
    out = {}
    for d in dims:
        pca, linear = models.get(f"pca-{d}"), models.get(f"linear-{d}")
        if pca is None or linear is None:
            continue
        components = pca.components.t().numpy()  # [784, D]
        out[str(d)] = {
            "decoder": principal_angles_degrees(components, linear.decoder.head.weight.detach().numpy()).tolist(),
            "encoder": principal_angles_degrees(components, linear.encoder.head.weight.detach().t().numpy()).tolist(),
        }
    return out


def _same_class_share(graph: Any, labels: torch.Tensor) -> float:
    """Share of the graph's edge weight joining two images of one class (the labels only measure it)."""
    same = (labels[graph.heads] == labels[graph.tails]).double()
    return float((same * graph.weights).sum() / graph.weights.sum())


@torch.no_grad()
def right_inverse_error(model: LatentModel, codes: torch.Tensor, through_pixels: bool = False) -> float:
    """How far the encoder lands from the code the decoder drew: mean |E(D(z)) - z|^2 / mean |z - mean z|^2.

    codes ``[N, D]``. 0 when the encoder inverts the decoder exactly; 1 is as far as the codes' own spread.
    D is ``decode`` (the [0, 1] images the page draws) unless ``through_pixels``: then an invertible or
    linear AE's unclamped decoder output, the exact inverse of its encoder.
    """
    decoded = model.decoder(codes) if through_pixels else model.decode(codes)
    again = model.embed(decoded)
    spread = (codes - codes.mean(0)).pow(2).sum(1).mean().clamp_min(1e-12)
    return float((again - codes).pow(2).sum(1).mean() / spread)


def right_inverse_errors(model: LatentModel, test_codes: torch.Tensor, seed: int, n: int = 2000) -> dict[str, float]:
    """:func:`right_inverse_error` on ``n`` test codes and on ``n`` codes drawn from a Gaussian with the test
    codes' mean and covariance (codes no image was encoded to: the decoder has never been trained there)."""
    generator = torch.Generator().manual_seed(seed)
    on_data = test_codes[torch.randperm(len(test_codes), generator=generator)[:n]].double()
    mean, covariance = on_data.mean(0), torch.cov(on_data.t())  # [D], [D, D]
    factor = torch.linalg.cholesky(covariance + 1e-9 * torch.eye(len(mean), dtype=torch.float64))
    random = (mean + torch.randn(n, len(mean), generator=generator, dtype=torch.float64) @ factor.t()).float()
    on_data = on_data.float()
    out = {"inverse_error": right_inverse_error(model, on_data),
           "inverse_error_random": right_inverse_error(model, random)}  # fmt: skip
    if isinstance(model, AutoEncoder) and model.draws_pixels:
        out["inverse_error_exact"] = max(right_inverse_error(model, z, through_pixels=True) for z in (on_data, random))
    return out


def first_layer_filters(model: LatentModel) -> np.ndarray:
    """A conv model's first-layer filters, float64 ``[C, k * k]``."""
    weight = model.encoder.body[0].weight.detach().cpu()  # [C, 1, k, k]
    return weight.reshape(len(weight), -1).double().numpy()


def initial_model(config: ModelConfig, seed: int) -> LatentModel:
    """The untrained model :func:`vae.training.trainer.train` starts from with this seed (it seeds, then builds)."""
    torch.manual_seed(seed)
    return build_model(config)


def _conv_filter_extras(
    models: dict[str, LatentModel], configs: dict[str, ModelConfig], train_images: torch.Tensor, seed: int
) -> dict[str, Any]:
    """The patch PCA the first layers are compared with, and per model its filters' angles and energies:
    the trained filters, the ones it started from, and what training changed (trained - initial)."""
    from vae.patches import filter_energy, filter_subspace_angles, patch_pca

    pca = patch_pca(train_images, CONV_KERNEL, stride=2, padding=1)  # the conv stack's first layer's patches
    out: dict[str, Any] = {
        "patch_pca": {"components": pca.components.tolist(), "explained_variance": pca.explained_variance.tolist(),
                      "mean": pca.mean.tolist(), "kernel": pca.kernel, "n_patches": pca.n_patches},
        "filters": {},
    }  # fmt: skip
    for key, model in models.items():
        trained = first_layer_filters(model)
        initial = first_layer_filters(initial_model(configs[key], seed))
        banks = {"trained": trained, "initial": initial, "change": trained - initial}
        out["filters"][key] = {
            "weights": {name: bank.tolist() for name, bank in banks.items()},
            "angles": {name: filter_subspace_angles(bank, pca) for name, bank in banks.items()},
            "energy": {name: filter_energy(bank, pca).tolist() for name, bank in banks.items()},
            "change_norm_ratio": float(np.linalg.norm(trained - initial) / np.linalg.norm(initial)),
        }
    return out


# ---------------------------------------------------------------------------------------------
# The answers in words, from the numbers (the page shows these; the closing note quotes them).


def _pct(new: float, old: float) -> str:
    return f"{100 * (new - old) / old:+.0f} %"


def summarise(result: StudyResult) -> list[str]:
    """One or more sentences answering the study's question with the measured numbers."""
    rows = {row["key"]: row for row in result.rows}
    mse = lambda key: rows[key]["test_mse_per_pixel"]  # noqa: E731
    if result.study == "pca_vs_ae":
        dims = [d for d in result.settings.dims if f"pca-{d}" in rows]
        lo, hi = dims[0], dims[-1]
        gain = {d: 1 - mse(f"dense-{d}") / mse(f"pca-{d}") for d in dims}
        best = max(gain, key=gain.get)
        angles = result.extras.get("angles", {})
        decoder = {d: max(angles[str(d)]["decoder"]) for d in dims if str(d) in angles}
        encoder = [a for d in dims if str(d) in angles for a in angles[str(d)]["encoder"]]
        vae_worse = sum(mse(f"vae-{d}") > mse(f"dense-{d}") for d in dims)
        off = max(abs(mse(f"linear-{d}") / mse(f"pca-{d}") - 1) for d in dims)
        # "Learned" needs both: reconstructions as good as PCA's and a decoder spanning nearly its subspace.
        learned = off < 0.05 and max(decoder.values(), default=0.0) < 20
        return [
            f"Dense AE vs PCA, MSE per pixel: {mse(f'dense-{lo}'):.4f} vs {mse(f'pca-{lo}'):.4f} at D={lo}, "
            f"{mse(f'dense-{hi}'):.4f} vs {mse(f'pca-{hi}'):.4f} at D={hi}; the non-linear AE is better than PCA "
            f"at {sum(g > 0 for g in gain.values())} of {len(dims)} sizes, by {gain[best]:.0%} at best (D={best}).",
            (
                f"The linear AE learns PCA's subspace: its MSE is within {off:.1%} of PCA's at every size, and "
                if learned else
                f"The linear AE reconstructs as well as PCA (MSE within {off:.1%} at every size) and spans nearly "
                "its subspace, except along directions of almost equal variance, which gradient descent finds "
                "slowly: "
                if off < 0.05 else
                f"In this run the linear AE has not reached PCA's subspace yet (its MSE is up to {off:.0%} off "
                "PCA's; it needs more training steps), and "
            )
            + "the largest principal angle between its decoder's columns and PCA's axes is "
            + ", ".join(f"{a:.1f}° (D={d})" for d, a in decoder.items())
            + (
                f". Its encoder's rows stray further ({min(encoder):.0f}-{max(encoder):.0f}°): along directions "
                "in which the images barely vary, misreading costs almost nothing, so gradient descent never "
                "corrects it." if learned and encoder else "."
            ),
            f"The VAE reconstructs worse than the AE at {vae_worse} of {len(dims)} sizes ({mse(f'vae-{lo}'):.4f} at "
            f"D={lo}, {mse(f'vae-{hi}'):.4f} at D={hi}): the price of its sampling noise and its KL term.",
        ]
    if result.study == "conv":
        r = rows
        return [
            f"Conv vs dense, MSE per pixel: AE {r['conv-ae']['test_mse_per_pixel']:.4f} vs "
            f"{r['dense-ae']['test_mse_per_pixel']:.4f}, VAE {r['conv-vae']['test_mse_per_pixel']:.4f} vs "
            f"{r['dense-vae']['test_mse_per_pixel']:.4f}; kNN-5 accuracy AE {r['conv-ae']['knn5_accuracy']:.3f} vs "
            f"{r['dense-ae']['knn5_accuracy']:.3f}, VAE {r['conv-vae']['knn5_accuracy']:.3f} vs "
            f"{r['dense-vae']['knn5_accuracy']:.3f}; silhouette AE {r['conv-ae']['silhouette']:+.3f} vs "
            f"{r['dense-ae']['silhouette']:+.3f}.",
            f"The price: {r['conv-ae']['parameters']:,} parameters instead of {r['dense-ae']['parameters']:,} (most "
            f"in the layer between the 64 x 7 x 7 feature maps and the code) and "
            f"{r['conv-ae']['train_seconds'] / r['dense-ae']['train_seconds']:.1f}x the training time on this CPU.",
        ]
    if result.study == "beta":
        ordered = sorted(result.rows, key=lambda row: row["beta"])
        a, b = ordered[0], ordered[-1]
        worst = max(ordered, key=lambda row: row["overlap"])
        kl_falls = all(x["test_kl"] >= y["test_kl"] for x, y in zip(ordered, ordered[1:]))
        return [
            f"From beta {a['beta']:g} to {b['beta']:g} the KL {'falls steadily' if kl_falls else 'moves'} from "
            f"{a['test_kl']:.1f} to {b['test_kl']:.1f} nats while reconstruction rises from {a['test_recon']:.1f} to "
            f"{b['test_recon']:.1f} nats: the codes are pulled into the prior's disc and carry less detail.",
            "Class overlap (share of 5 nearest neighbours from another class) by beta: "
            + ", ".join(f"{row['overlap']:.3f} (β={row['beta']:g})" for row in ordered)
            + f"; most at β={worst['beta']:g}. kNN-5 accuracy: "
            + ", ".join(f"{row['knn5_accuracy']:.3f}" for row in ordered) + ".",
        ]
    if result.study == "class_aware":
        lines = []
        for kind in ("ae", "vae"):
            weights = sorted(row["class_weight"] for row in result.rows if row["kind"] == kind)
            base, top = rows[f"{kind}-class-0"], rows[f"{kind}-class-{weights[-1]:g}"]
            lines.append(
                f"{kind.upper()}: class weight {weights[-1]:g} takes overlap {base['overlap']:.3f} -> "
                f"{top['overlap']:.3f}, silhouette {base['silhouette']:+.3f} -> {top['silhouette']:+.3f}, "
                f"kNN-5 {base['knn5_accuracy']:.3f} -> {top['knn5_accuracy']:.3f}, for MSE per pixel "
                f"{base['test_mse_per_pixel']:.4f} -> {top['test_mse_per_pixel']:.4f} "
                f"({_pct(top['test_mse_per_pixel'], base['test_mse_per_pixel'])})"
                + (
                    "; in between: " + ", ".join(
                        f"weight {w:g} overlap {rows[f'{kind}-class-{w:g}']['overlap']:.3f}, MSE "
                        f"{rows[f'{kind}-class-{w:g}']['test_mse_per_pixel']:.4f}" for w in weights[1:-1]
                    ) if len(weights) > 2 else ""
                ) + "."
            )
        return lines
    if result.study == "invertible":
        return _summarise_invertible(result)
    if result.study == "conv_filters":
        return _summarise_conv_filters(result)
    if result.study == "decoupled":
        return _summarise_decoupled(result)
    raise ValueError(f"no summary for study {result.study!r}")


def _summarise_invertible(result: StudyResult) -> list[str]:
    rows = {row["key"]: row for row in result.rows}
    dims = [d for d in result.settings.dims if f"invertible-{d}" in rows]
    lo, hi = dims[0], dims[-1]
    mse = lambda key: rows[key]["test_mse_per_pixel"]  # noqa: E731
    err = lambda key, where="inverse_error": rows[key][where]  # noqa: E731
    pair = lambda key: f"{err(key):.2g} / {err(key, 'inverse_error_random'):.2g}"  # noqa: E731
    exact = max(rows[f"invertible-{d}"]["inverse_error_exact"] for d in dims)
    closer = {where: sum(err(f"invertible-{d}", where) < err(f"dense-{d}", where) for d in dims)
              for where in ("inverse_error", "inverse_error_random")}  # fmt: skip
    ordinary = [err(f"{family}-{d}") for family in ("dense", "tied") for d in dims]
    ordinary_random = [err(f"{family}-{d}", "inverse_error_random") for family in ("dense", "tied") for d in dims]
    beats_pca = sum(mse(f"invertible-{d}") < mse(f"pca-{d}") for d in dims)
    behind_dense = sum(mse(f"invertible-{d}") > mse(f"dense-{d}") for d in dims)
    inverse, dense, tied = rows[f"invertible-{lo}"], rows[f"dense-{lo}"], rows[f"tied-{lo}"]
    exactness = "is an exact inverse" if exact < 1e-6 else "is not an exact inverse in this run"
    return [
        f"Through its unclamped decoder the invertible AE {exactness}: E(D(z)) returns z to a relative squared "
        f"error of {exact:.0e} or less at every size, on test codes and on random codes. Through the [0, 1] images "
        f"it draws (clamping moves the pixels it would draw below 0 or above 1), it lands {pair(f'invertible-{lo}')} "
        f"(test / random codes) from z at D={lo} and {pair(f'invertible-{hi}')} at D={hi}; the untied AE "
        f"{pair(f'dense-{lo}')} and {pair(f'dense-{hi}')}, the tied AE {pair(f'tied-{lo}')} and {pair(f'tied-{hi}')}. "
        f"It is closer than the untied AE at {closer['inverse_error']} of {len(dims)} sizes on test codes and "
        f"{closer['inverse_error_random']} of {len(dims)} on random codes: "
        + (f"ordinary AEs are nearly right inverses too where real images' codes lie (within {max(ordinary):.1%} of "
           f"the codes' spread)" if max(ordinary) < 0.05 else
           f"ordinary AEs land up to {max(ordinary):.1%} of the codes' spread away even on real images' codes")
        + f"; on random codes, away from the data, up to {max(ordinary_random):.0%}.",
        f"The price of an exact inverse, MSE per pixel: {mse(f'invertible-{lo}'):.4f} vs {mse(f'dense-{lo}'):.4f} "
        f"(untied), {mse(f'tied-{lo}'):.4f} (tied) and {mse(f'pca-{lo}'):.4f} (PCA) at D={lo}; "
        f"{mse(f'invertible-{hi}'):.4f} vs {mse(f'dense-{hi}'):.4f}, {mse(f'tied-{hi}'):.4f} and "
        f"{mse(f'pca-{hi}'):.4f} at D={hi}. It reconstructs better than PCA at {beats_pca} of {len(dims)} sizes "
        f"and worse than the untied AE at {behind_dense} of {len(dims)}; kNN-5 at D={lo} "
        f"{inverse['knn5_accuracy']:.3f} vs {dense['knn5_accuracy']:.3f} (untied), {tied['knn5_accuracy']:.3f} (tied), "
        f"{rows[f'pca-{lo}']['knn5_accuracy']:.3f} (PCA).",
        f"Parameters at D={lo}: {inverse['parameters']:,} (the encoder's orthonormal maps; its decoder has none of its "
        f"own) vs {dense['parameters']:,} untied and {tied['parameters']:,} tied.",
    ]


# The share of patch variance whose components the filters are compared with: the first few, which carry
# almost all of it (the rest is where the filters' random start can linger, Chowers & Weiss, 2023).
VARIANCE_SHARE = 0.8


def leading_components(explained_variance: Sequence[float], share: float = VARIANCE_SHARE) -> int:
    """The smallest k whose top-k components carry ``share`` of the variance."""
    ratio = np.cumsum(explained_variance) / np.sum(explained_variance)
    return int(np.searchsorted(ratio, share) + 1)


def derivative_likeness(components: np.ndarray, kernel: int) -> dict[str, float]:
    """How much patch components ``[P, P]`` look like a flat patch and the two first derivatives.

    ``flat``: |cosine| between the first component and a constant patch; ``gradients``: the largest principal
    angle (degrees) between the span of components 2-3 and the span of a horizontal and a vertical ramp.
    """
    from scipy.linalg import subspace_angles

    ramp = np.arange(kernel) - (kernel - 1) / 2
    flat = np.ones(kernel * kernel) / kernel
    ramps = np.stack([np.tile(ramp, kernel), np.repeat(ramp, kernel)], axis=1)  # [P, 2]: along x, along y
    return {
        "flat": float(abs(components[0] @ flat)),
        "gradients": float(np.degrees(subspace_angles(components[1:3].T, ramps)).max()),
    }


def _summarise_conv_filters(result: StudyResult) -> list[str]:
    pca = result.extras["patch_pca"]
    variance = np.asarray(pca["explained_variance"])
    k = leading_components(variance)
    size = len(variance)
    shape = derivative_likeness(np.asarray(pca["components"]), pca["kernel"])
    lines = [
        f"The {pca['kernel']} x {pca['kernel']} patches the first layer sees ({pca['n_patches']:,} of them) put "
        f"{variance[:k].sum() / variance.sum():.0%} of their variance in their top {k} principal components. "
        + (
            f"These are derivative-like: the first is the patch's mean level (cosine {shape['flat']:.2f} with a flat "
            f"patch), the next two span the horizontal and vertical gradients (largest angle "
            f"{shape['gradients']:.0f}° to the span of two ramps)."
            if shape["flat"] > 0.9 and shape["gradients"] < 20 else
            f"They are not simply a mean level and two gradients here: cosine {shape['flat']:.2f} between the first "
            f"and a flat patch, {shape['gradients']:.0f}° between the next two and the span of two ramps."
        )
    ]
    for row in result.rows:
        f = result.extras["filters"][row["key"]]
        top = {name: float(np.sum(f["energy"][name][:k])) for name in ("trained", "initial", "change")}
        angle = {name: max(f["angles"][name][k - 1]) for name in ("trained", "initial", "change")}
        mean = {name: float(np.mean(f["angles"][name][k - 1])) for name in ("trained", "initial", "change")}
        verdict = "are close to a local PCA" if angle["trained"] < 20 else "are not a local PCA"
        change = (
            "lies in those components" if angle["change"] < 20 else
            "lies mostly in those components" if top["change"] > 2 * k / size else "does not line up with them either"
        )
        family = row["family"][0].upper() + row["family"][1:]
        ratio = f["change_norm_ratio"]
        lines.append(
            f"{family}: the trained filters {verdict}: the principal angles between the span of their {k} "
            f"strongest directions and the top-{k} patch components are {angle['trained']:.0f}° (largest) and "
            f"{mean['trained']:.0f}° (mean) (the random filters they started from: {angle['initial']:.0f}° and "
            f"{mean['initial']:.0f}°), and they put {top['trained']:.0%} of their energy in those components (the "
            f"patches' variance: {variance[:k].sum() / variance.sum():.0%}; no preference: {k / size:.0%}). "
            f"What training changed {change}: {top['change']:.0%} of the change's energy, angles "
            f"{angle['change']:.0f}° (largest) and {mean['change']:.0f}° (mean); the change is {ratio:.0%} of the "
            f"starting filters' norm, so the random start {'still dominates' if ratio < 1 else 'no longer dominates'} "
            f"the filters."
        )
    return lines


# Parametric UMAP's numbers at D = 2 on MNIST's test set, kNN-5 fitted on 50,000 training embeddings
# (Sainburg, McInnes & Gentner, 2021), and the targets the issue set from them.
PAPER_DECOUPLED = {"UMAP + AE, joint": (0.9537, 0.0360), "UMAP, decoupled decoder": (0.9614, 0.0374),
                   "AE": (0.7926, 0.0369)}  # fmt: skip
TARGET_KNN, TARGET_MSE = 0.955, 0.036


def meets_targets(row: dict[str, Any]) -> bool:
    return row["knn5_accuracy"] >= TARGET_KNN and row["test_mse_per_pixel"] <= TARGET_MSE


def _summarise_decoupled(result: StudyResult) -> list[str]:
    rows = {row["key"]: row for row in result.rows}
    knn = lambda key: rows[key]["knn5_accuracy"]  # noqa: E731
    mse = lambda key: rows[key]["test_mse_per_pixel"]  # noqa: E731
    unsupervised = [k for k in ("pca", "ae", "vae") if k in rows]
    best_plain = max(unsupervised, key=knn)
    ours = [k for k in ("umap-decoupled", "umap-joint") if k in rows]
    meeting = [rows[k]["family"] for k in ours if meets_targets(rows[k])]
    best_knn, best_mse = max(ours, key=knn), min(ours, key=mse)
    partly = "; ".join([
        f"kNN-5 {'met' if knn(best_knn) >= TARGET_KNN else 'missed'}: best {knn(best_knn):.3f}, {rows[best_knn]['family']}",
        f"MSE {'met' if mse(best_mse) <= TARGET_MSE else 'missed'}: best {mse(best_mse):.4f}, {rows[best_mse]['family']}",
    ])  # fmt: skip
    graph = result.extras.get("graph", {})
    gain = min(knn(k) for k in ours) - max(knn(k) for k in unsupervised)
    verdict = (
        f"separates the classes better than reconstruction does (by {gain:+.3f} kNN-5 at least)" if gain > 0 else
        "does not separate the classes better than reconstruction does in this run"
    )
    lines = [
        f"Without labels the graph loss {verdict}: kNN-5 "
        f"{knn('umap-decoupled'):.3f} (UMAP encoder, decoupled decoder) and {knn('umap-joint'):.3f} (UMAP + AE, "
        f"joint) against {knn('ae'):.3f} (AE), {knn('vae'):.3f} (VAE) and {knn('pca'):.3f} (PCA); the class-aware AE, "
        f"which is given the labels, reaches {knn('class-ae'):.3f}. The neighbour graph of the "
        f"{graph.get('points', 0):,} training images puts {graph.get('same_class_share', float('nan')):.1%} of its "
        f"edge weight between images of one class.",
        f"Reconstruction, MSE per pixel: {mse('umap-decoupled'):.4f} (decoupled: the decoder draws whatever map "
        f"it is given), {mse('umap-joint'):.4f} (joint), {mse('ae'):.4f} (AE), {mse('vae'):.4f} (VAE), "
        f"{mse('class-ae'):.4f} (class-aware), {mse('pca'):.4f} (PCA). Best kNN-5 without the graph: "
        f"{rows[best_plain]['family']} {knn(best_plain):.3f}.",
        f"Targets kNN-5 >= {TARGET_KNN} and MSE <= {TARGET_MSE}: "
        + (f"both met by {' and '.join(meeting)}" if meeting else f"not both met by either UMAP model here ({partly})")
        + ". Parametric UMAP reports (kNN-5 / MSE): "
        + ", ".join(f"{name} {k:.4f} / {m:.4f}" for name, (k, m) in PAPER_DECOUPLED.items())
        + f"; here: UMAP + AE {knn('umap-joint'):.4f} / {mse('umap-joint'):.4f}, decoupled "
        f"{knn('umap-decoupled'):.4f} / {mse('umap-decoupled'):.4f}, AE {knn('ae'):.4f} / {mse('ae'):.4f}.",
    ]
    return lines


def summarise_tied(result: StudyResult) -> list[str]:
    """Tied vs untied dense AE, from the ``pca_vs_ae`` study (which trains both at every size)."""
    rows = {row["key"]: row for row in result.rows}
    dims = [d for d in result.settings.dims if f"tied-{d}" in rows]
    lo, hi = dims[0], dims[-1]
    tied, dense = rows[f"tied-{lo}"], rows[f"dense-{lo}"]
    return [
        f"Tied decoder: {tied['parameters']:,} parameters instead of {dense['parameters']:,} at D={lo}; MSE per pixel "
        f"{tied['test_mse_per_pixel']:.4f} vs {dense['test_mse_per_pixel']:.4f} at D={lo} and "
        f"{rows[f'tied-{hi}']['test_mse_per_pixel']:.4f} vs {rows[f'dense-{hi}']['test_mse_per_pixel']:.4f} at D={hi}; "
        f"kNN-5 at D={lo} {tied['knn5_accuracy']:.3f} vs {dense['knn5_accuracy']:.3f}.",
    ]


def filter_rows(result: StudyResult) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The conv_filters study as rows for :func:`vae.plots.studies.metric_curves`: (energy share per patch
    component, with the patches' own variance share; largest principal angle per k), one family per bank."""
    pca = result.extras["patch_pca"]
    variance = np.asarray(pca["explained_variance"])
    energy = [{"family": "patches' variance", "component": j + 1, "share": float(v)}
              for j, v in enumerate(variance / variance.sum())]  # fmt: skip
    energy.append({"family": "no preference", "component": 1, "share": 1 / len(variance)})
    energy.append({"family": "no preference", "component": len(variance), "share": 1 / len(variance)})
    angles = []
    names = {"trained": "filters", "change": "change in training", "initial": "random start"}
    for row in result.rows:
        f = result.extras["filters"][row["key"]]
        for bank, name in names.items():
            if bank == "initial" and row is not result.rows[0]:
                continue  # one random start is enough to show the chance level
            family = f"{row['family']}: {name}" if bank != "initial" else f"random filters ({row['family']}'s start)"
            energy += [{"family": family, "component": j + 1, "share": e} for j, e in enumerate(f["energy"][bank])]
            angles += [{"family": family, "k": k + 1, "largest": max(a), "mean": float(np.mean(a))}
                       for k, a in enumerate(f["angles"][bank])]  # fmt: skip
    return energy, angles


def filter_bank_images(result: StudyResult) -> dict[str, Any]:
    """The conv_filters study's banks to draw, title -> ``[K, k, k]``: the patch components, then each model's
    trained filters and their change in training, then the random start they share."""
    banks = {"principal components of the patches, largest variance first": result.extras["patch_pca"]["components"]}
    for row in result.rows:
        weights = result.extras["filters"][row["key"]]["weights"]
        banks[f"{row['family']}: trained filters"] = weights["trained"]
        banks[f"{row['family']}: change in training"] = weights["change"]
    banks["random start (conv AE)"] = result.extras["filters"][result.rows[0]["key"]]["weights"]["initial"]
    return banks


def angle_rows(result: StudyResult) -> list[dict[str, Any]]:
    """The pca_vs_ae study's principal angles between PCA's subspace and the linear AE's, as rows for
    :func:`vae.plots.studies.metric_curves`: largest and mean angle per latent size and part."""
    return [
        {"family": f"linear AE {part}", "latent_dim": int(d), "largest": max(a), "mean": sum(a) / len(a)}
        for d, per_part in result.extras.get("angles", {}).items()
        for part, a in per_part.items()
    ]


# ---------------------------------------------------------------------------------------------
# Files: <study>.json (numbers) + <study>.npz (arrays), never pickled.


def result_paths(directory: str | Path, study: str) -> tuple[Path, Path]:
    if study not in STUDIES:
        raise ValueError(f"study must be one of {list(STUDIES)}, got {study!r}")
    directory = Path(directory)
    return directory / f"{study}.json", directory / f"{study}.npz"


def save_result(result: StudyResult, directory: str | Path) -> Path:
    """Write the pair of files atomically (arrays first: the JSON names them and is the commit point)."""
    json_path, npz_path = result_paths(directory, result.study)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"labels": result.labels}
    arrays |= {f"map/{k}": v.astype(np.float32) for k, v in result.maps.items()}
    arrays |= {f"image/{k}": v.astype(np.uint8) for k, v in result.images.items()}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    meta = {
        "format": RESULT_FORMAT, "study": result.study, "question": STUDIES[result.study],
        "settings": result.settings.to_dict(), "rows": result.rows, "extras": result.extras,
        "arrays": sorted(arrays), "created": result.created, "seconds": result.seconds,
    }  # fmt: skip
    write_atomically(npz_path, buffer.getvalue())
    write_atomically(json_path, json.dumps(meta, indent=1, allow_nan=True).encode())
    return json_path


def load_result(directory: str | Path, study: str) -> StudyResult:
    """Read a saved study; raises :class:`ExperimentFileError` saying what is wrong with the files."""
    json_path, npz_path = result_paths(directory, study)
    for path in (json_path, npz_path):
        if not path.is_file():
            raise ExperimentFileError(f"{path} is missing")
        if path.stat().st_size > MAX_RESULT_BYTES:
            raise ExperimentFileError(f"{path} is larger than {MAX_RESULT_BYTES // 2**20} MB")
    try:
        meta = json.loads(json_path.read_text())
        if meta.get("format") != RESULT_FORMAT or meta.get("study") != study:
            raise ExperimentFileError(f"{json_path}: format {meta.get('format')!r} of study {meta.get('study')!r}, "
                                      f"expected format {RESULT_FORMAT} of {study!r}")  # fmt: skip
        with np.load(npz_path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except ExperimentFileError:
        raise
    except Exception as error:  # JSON, zip or array errors all mean the same thing to a reader
        raise ExperimentFileError(f"{json_path.name}/{npz_path.name} cannot be read: {error}") from None
    missing = sorted(set(meta.get("arrays", [])) - set(arrays))
    if missing:
        raise ExperimentFileError(f"{npz_path} lacks {', '.join(missing)} (written by another run?)")
    labels = arrays.pop("labels")
    return StudyResult(
        study=study,
        settings=StudySettings.from_dict(meta["settings"]),
        rows=meta["rows"],
        labels=labels,
        maps={k.removeprefix("map/"): v for k, v in arrays.items() if k.startswith("map/")},
        images={k.removeprefix("image/"): v for k, v in arrays.items() if k.startswith("image/")},
        extras=meta.get("extras", {}),
        created=meta.get("created", ""),
        seconds=float(meta.get("seconds", 0.0)),
    )


# ---------------------------------------------------------------------------------------------
# Command line.


# Variants worth exploring beyond their study: saved to the model store by ``--save-models``.
# The decoupled study's UMAP encoder with its stop-gradient decoder is the one kept: on the held-out 10,000
# training images it beat the joint model on kNN-5 (0.929 vs 0.836, after 6 and 4 million edges) and on MSE
# (0.0353 vs 0.0364).
STORE_NAMES = {("conv", "conv-ae"): "ae-2d-conv", ("conv", "conv-vae"): "vae-2d-conv",
               ("decoupled", "umap-decoupled"): "umap-ae-2d"}  # fmt: skip


def training_images(study: str, settings: StudySettings) -> int:
    """How many of the 60,000 training images ``study`` trains on with ``settings``."""
    n = settings.train_limit or 60_000
    return min(n, settings.graph_train_images) if study == "decoupled" else n


def describe_training(study: str, settings: StudySettings) -> str:
    """How ``study``'s models were trained, in words: images, epochs (or edges) and batches, seed."""
    n = training_images(study, settings)
    images = f"first {n:,}" if n < 60_000 else "all"
    if study == "decoupled":
        edges = settings.graph_epochs * n
        total = f"{edges / 1e6:g} million" if edges >= 1e6 else f"{edges:,}"
        how = (f"AE, VAE and class-aware AE {settings.long_epochs} epochs, batch {settings.long_batch_size}; UMAP "
               f"models {settings.graph_epochs} passes of {n:,} edges ({total}), batch {settings.graph_batch_size}")  # fmt: skip
    else:
        how = f"{settings.epochs} epochs per model, batch {settings.batch_size}"
    return f"{images} training images, {how}, seed {settings.seed}"


def _model_saver(
    models_dir: str | None, study: str, settings: StudySettings, data_dir: str | None, arguments: str
) -> Callable[[Variant, LatentModel, dict[str, Any], list[dict[str, Any]]], None] | None:
    if models_dir is None:
        return None
    from vae.store import save_model
    from vae.training.saving import dataset_entry

    suffix = "" if settings.dataset == "mnist" else f"-{settings.dataset}"

    def save(variant: Variant, model: LatentModel, row: dict[str, Any], history: list[dict[str, Any]]) -> None:
        if (study, variant.key) not in STORE_NAMES:
            return
        metrics = {k: v for k, v in row.items() if k.startswith("test_") or k in ("knn5_accuracy", "train_seconds")}
        save_model(
            model, Path(models_dir) / f"{STORE_NAMES[study, variant.key]}{suffix}", metrics=metrics, history=history,
            dataset=dataset_entry(settings.dataset, data_dir, training_images(study, settings)),
            extra={"settings": settings.to_dict(), "study": study, "status": row.get("status", "completed"),
                   "command": f"python -m vae.experiments {arguments}"},
        )  # fmt: skip

    return save


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vae.experiments", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train and measure studies, saving each result")
    run.add_argument("--study", action="append", choices=list(STUDIES), help="repeatable; default: all")
    run.add_argument("--quick", action="store_true", help="the minute-scale settings the page's quick recompute uses")
    run.add_argument("--dataset", default="mnist")
    run.add_argument("--epochs", type=int, default=None, help="override the epochs per model")
    run.add_argument("--out", default="experiments", help="folder for <study>.json/.npz (default: experiments)")
    run.add_argument("--data-dir", default=None)
    run.add_argument("--save-models", metavar="DIR", default=None,
                     help="also save the conv study's conv AE and VAE and the decoupled study's UMAP encoder (with its "
                          "decoder) into the model store DIR, to explore them")
    args = parser.parse_args(argv)

    base = QUICK if args.quick else StudySettings()
    try:
        settings = dataclasses.replace(base, dataset=args.dataset, epochs=base.epochs if args.epochs is None else args.epochs)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for study in args.study or list(STUDIES):
        print(f"== {study}: {STUDIES[study]}")
        last = [0.0]

        def report(fraction: float, message: str) -> None:
            print(f"  [{fraction:4.0%}] {message} (+{time.perf_counter() - last[0]:.0f} s)" if last[0] else f"  {message}")
            last[0] = time.perf_counter()

        arguments = " ".join(sys.argv[1:] if argv is None else argv)
        keep = _model_saver(args.save_models, study, settings, args.data_dir, arguments)
        result = run_study(study, settings, args.data_dir, progress=report, on_model=keep)
        path = save_result(result, args.out)
        print(f"  saved {path} in {result.seconds:.0f} s")
        for row in result.rows:
            print(f"  {row['key']:>18}: mse {row['test_mse_per_pixel']:.4f}  kNN {row['knn5_accuracy']:.3f}  "
                  f"silhouette {row['silhouette']:+.3f}  overlap {row['overlap']:.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
