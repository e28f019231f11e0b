"""What every study shares: its settings, its variants, running them, its result and the result's files.

A study (one module of :mod:`vae.studies`, named in :mod:`vae.studies.registry`) subclasses :class:`Study`:
it lists its :class:`Variant` models and may add measurements, a training subset and extras; :func:`run`
trains each variant with the project's own trainer, measures it on the test set alike (a row of numbers,
a 2-D map and a decoded grid for 2-D models, a reconstruction strip) and returns a :class:`StudyResult`.

A result is small (a table of numbers, 2-D maps of a few thousand test points, a few decoded images)
and is saved as ``<study>.json`` + ``<study>.npz`` (read back with ``allow_pickle=False``), so the
Experiments page opens instantly from the shipped copies in ``experiments/`` and can recompute any study.
Nothing here knows which studies exist; the registry's ``run_study``, ``save_result`` and ``load_result``
take a study's name.
"""

from __future__ import annotations

import dataclasses
import io
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from vae.files import write_atomically
from vae.images import tile_grid
from vae.metrics import embed_images, knn_accuracy, overlap_report, reconstruction_mse
from vae.models import LatentModel, ModelConfig, count_parameters, fit_pca, to_float_images
from vae.training.saving import evaluate_for_metadata
from vae.training.trainer import EpochRecord, TrainSettings, bfloat16_supported, train

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
QUICK = StudySettings(
    epochs=2,
    train_limit=10_000,
    dims=(2, 8, 32),
    betas=(0.0, 1.0, 4.0),
    class_weights=(0.0, 100.0),
    long_epochs=3,
    graph_epochs=12,
)


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
# What a study declares.


class Study(ABC):
    """One question: the models that answer it, what it measures beyond the shared row, the answer in words.

    Each study is one subclass in its own module; the defaults suit a study that trains every variant on
    the same images and measures only the shared row.
    """

    name: ClassVar[str]  # the result's file name (``<name>.json``) and the command line's ``--study``
    question: ClassVar[str]
    # The method in the page's words (Markdown with LaTeX), shown beside the answer; "" when the page needs none.
    intro: ClassVar[str] = ""
    # Variant key -> model store name: the variants worth exploring beyond the study, saved by ``--save-models``.
    store_names: ClassVar[Mapping[str, str]] = {}

    @abstractmethod
    def variants(self, settings: StudySettings) -> list[Variant]:
        """The models behind the study, in the order they are trained."""

    @abstractmethod
    def summarise(self, result: StudyResult) -> list[str]:
        """One or more sentences answering the study's question with the measured numbers."""

    def training_subset(self, settings: StudySettings) -> int | None:
        """Train on the first this-many training images of the data given (None: all of them)."""
        return None

    def training_images(self, settings: StudySettings) -> int:
        """How many of the 60,000 training images the study trains on with ``settings``."""
        n = settings.train_limit or 60_000
        subset = self.training_subset(settings)
        return n if subset is None else min(n, subset)

    def recipe(self, settings: StudySettings, images: int) -> str:
        """How long each model trains, in words (``images`` training images)."""
        return f"{settings.epochs} epochs per model, batch {settings.batch_size}"

    def describe_training(self, settings: StudySettings) -> str:
        """How the study's models were trained, in words: images, epochs (or edges) and batches, seed."""
        n = self.training_images(settings)
        images = f"first {n:,}" if n < 60_000 else "all"
        return f"{images} training images, {self.recipe(settings, n)}, seed {settings.seed}"

    def measure(self, model: LatentModel, test_codes: torch.Tensor, settings: StudySettings) -> dict[str, float]:
        """Numbers added to a variant's row; ``test_codes`` ``[N, D]`` is its embedding of the test images."""
        return {}

    def keeps(self, variant: Variant) -> bool:
        """Whether :meth:`extras` needs this variant's trained model (the others are let go once measured)."""
        return False

    def extras(
        self,
        models: dict[str, LatentModel],
        variants: list[Variant],
        train_images: torch.Tensor,
        settings: StudySettings,
    ) -> dict[str, Any]:
        """What the study records beyond the rows, from the models :meth:`keeps` kept (key -> model)."""
        return {}


# ---------------------------------------------------------------------------------------------
# Running a study.


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    """float ``[K, 1, 28, 28]`` in [0, 1] -> uint8 ``[K, 28, 28]``."""
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).reshape(-1, 28, 28).cpu().numpy()


@torch.no_grad()
def map_grid(model: LatentModel, points: np.ndarray, size: int = GRID) -> tuple[np.ndarray, list[float]]:
    """Decode a ``size x size`` grid of a 2-D model's own codes spanning the middle 98 % of ``points [M, 2]``.

    Returns uint8 ``[size * size, 28, 28]`` (row-major, top row = largest z2, as a plot shows it) and the
    box ``[x0, x1, y0, y1]`` it covers. Saved beside each 2-D map as ``grid/<key>``, in this order in the
    shipped files. Not :func:`vae.explore.manifold_grid`, which decodes a lattice of any 2-D *view* through
    its inverse, lowest y first (:meth:`vae.plots.scatter.ClickGrid.points` order).
    """
    (x0, y0), (x1, y1) = np.percentile(points, 1, axis=0), np.percentile(points, 99, axis=0)
    xs, ys = np.linspace(x0, x1, size), np.linspace(y1, y0, size)
    grid = np.array([(x, y) for y in ys for x in xs], dtype=np.float32)  # [size*size, 2]
    decoded = model.decode(torch.from_numpy(grid).to(model.device))
    return _to_uint8(decoded), [float(x0), float(x1), float(y0), float(y1)]


def map_grid_image(images: np.ndarray, size: int = GRID) -> np.ndarray:
    """A :func:`map_grid` (top row first) -> one uint8 image with that top row on top, beside its map.

    :func:`vae.images.tile_grid` expects the lowest y first (it flips the rows), so the rows are reversed
    into that order before tiling.
    """
    tiles = np.asarray(images)
    if len(tiles) != size * size:
        raise ValueError(f"need {size} * {size} images, got {len(tiles)}")
    bottom_first = tiles.reshape(size, size, *tiles.shape[1:])[::-1].reshape(tiles.shape)
    return tile_grid(bottom_first, size)


def _fit(
    variant: Variant,
    settings: StudySettings,
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    should_stop: Callable[[], bool] | None,
    graph: Any = None,
    on_epoch: Callable[[EpochRecord, int], None] | None = None,
) -> tuple[LatentModel, dict[str, Any], list[dict[str, Any]]]:
    """Train (or fit) one variant -> (model, its timing and status, its per-epoch history).

    on_epoch(record, epochs) sees each finished epoch and how many the variant trains.
    """
    train_images, train_labels, test_images, test_labels = data
    started = time.perf_counter()
    if variant.config.kind == "pca":
        return fit_pca(train_images, variant.config.latent_dim), {"train_seconds": time.perf_counter() - started}, []
    train_settings = dataclasses.replace(settings.train_settings(), **dict(variant.overrides))
    if train_settings.precision == "bfloat16" and not bfloat16_supported():
        # A study asks for bfloat16 where it pays; a CPU without it trains the same model, only slower.
        train_settings = dataclasses.replace(train_settings, precision="float32")
    result = train(
        variant.config,
        train_images,
        test_images,
        train_settings,
        should_stop=should_stop,
        on_epoch=None if on_epoch is None else lambda record: on_epoch(record, train_settings.epochs),
        train_labels=train_labels,
        test_labels=test_labels,
        device="cpu",
        graph=graph,
    )
    if result.status == "stopped":
        raise StudyStopped("stopped on request")
    timing = {
        "train_seconds": time.perf_counter() - started,
        "status": result.status,
        "precision": train_settings.precision,
    }
    return result.model, timing, [record.to_dict() for record in result.history]


def _measure(
    model: LatentModel,
    data: tuple[torch.Tensor, ...],
    test_codes: torch.Tensor,
    seed: int,
    held_out: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> dict[str, float]:
    """The row's numbers; ``test_codes`` ``[N, D]`` is the model's embedding of the test images.

    held_out: the training images a study left out of its training subset (uint8 ``[H, 28, 28]``, labels ``[H]``),
    on which its settings were chosen: their kNN-5 (fitted on the training embeddings) and MSE per pixel are
    recorded as ``heldout_*`` beside the test set's, so the choice can be checked without the test set.
    """
    train_images, train_labels, test_images, test_labels = data
    metrics = evaluate_for_metadata(model, train_images, train_labels, test_images, test_labels, seed=seed)
    if held_out is not None:
        images, labels = held_out
        metrics["heldout_knn5_accuracy"] = knn_accuracy(
            embed_images(model, train_images), train_labels, embed_images(model, images), labels, k=5
        )
        metrics["heldout_mse_per_pixel"] = reconstruction_mse(model, images)
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


def _same_class_share(graph: Any, labels: torch.Tensor) -> float:
    """Share of the graph's edge weight joining two images of one class (the labels only measure it)."""
    same = (labels[graph.heads] == labels[graph.tails]).double()
    return float((same * graph.weights).sum() / graph.weights.sum())


# What one variant gives the study: its model, row, images (name -> uint8 array), map points float32 [M, 2] (2-D
# models only) and per-epoch history.
Outcome = tuple[LatentModel, dict[str, Any], dict[str, np.ndarray], "np.ndarray | None", list[dict[str, Any]]]
# map_variants(fn, shared, variants) -> [fn(variant, **shared) for each variant], in order, however it runs them.
VariantMapper = Callable[[Callable[..., Outcome], dict[str, Any], list[Variant]], list[Outcome]]


def _variant_outcome(
    variant: Variant,
    *,
    study: Study,
    settings: StudySettings,
    data: tuple[torch.Tensor, ...],
    graph: Any,
    map_index: np.ndarray,
    strip: torch.Tensor,
    held_out: tuple[torch.Tensor, torch.Tensor] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_epoch: Callable[[EpochRecord, int], None] | None = None,
) -> Outcome:
    """Train and measure one variant; seeded by ``settings`` alone, so it gives the same outcome wherever it runs.

    map_index: int ``[M]`` of the test images on the 2-D maps; strip: float ``[C, 1, 28, 28]``, one image per class;
    held_out: the training images left out of the study's subset, with their labels (:func:`_measure`).
    """
    test_images = data[2]
    model_graph = graph if variant.config.umap_weight else None
    model, timing, history = _fit(variant, settings, data, should_stop, model_graph, on_epoch)
    model.eval()
    test_codes = embed_images(model, test_images)  # [N, D], for the overlap numbers and the map
    row = {
        "key": variant.key,
        "family": variant.family,
        "label": variant.config.describe(),
        **variant.config.to_dict(),
        **timing,
        **_measure(model, data, test_codes, settings.seed, held_out),
    }
    row |= study.measure(model, test_codes, settings)
    images: dict[str, np.ndarray] = {}
    points = None
    with torch.no_grad():
        images[f"recon/{variant.key}"] = _to_uint8(model.reconstruct(strip.to(model.device)))
        if variant.config.latent_dim == 2:
            points = test_codes[map_index].numpy().astype(np.float32)
            images[f"grid/{variant.key}"], row["grid_box"] = map_grid(model, points)
    return model, row, images, points, history


def _in_turn(
    todo: list[Variant], shared: dict[str, Any], progress: Progress | None, should_stop: Callable[[], bool] | None
):
    """The variants one after another in this process, with progress and a stop check before each."""
    for i, variant in enumerate(todo):
        if should_stop is not None and should_stop():
            raise StudyStopped("stopped on request")
        if progress is not None:
            progress(i / len(todo), f"{i + 1}/{len(todo)}: {variant.config.describe()}")
        on_epoch = None
        if progress is not None:

            def on_epoch(record: EpochRecord, epochs: int, i: int = i, name: str = variant.config.describe()) -> None:
                # A long variant (the conv UMAP encoder: an hour) reports each epoch, not only its start.
                terms = ", ".join(f"{k} {v:.4g}" for k, v in record.train.items())
                progress(
                    (i + record.epoch / epochs) / len(todo),
                    f"{i + 1}/{len(todo)}: {name} · epoch {record.epoch}/{epochs} · {terms}",
                )

        yield _variant_outcome(variant, should_stop=should_stop, on_epoch=on_epoch, **shared)


def run(
    study: Study,
    settings: StudySettings = StudySettings(),
    data_dir: str | None = None,
    *,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    on_model: Callable[[Variant, LatentModel, dict[str, Any], list[dict[str, Any]]], None] | None = None,
    map_variants: VariantMapper | None = None,
    only: Collection[str] | None = None,
) -> StudyResult:
    """Train and measure every variant of ``study``; raises :class:`StudyStopped` if ``should_stop`` fires.

    ``only`` names the variants to run (keys; default all): a result of some of them, to be merged into a saved
    one by :func:`merge_results`. A study that trains on a subset measures each model on the training images it
    left out too (``heldout_*`` in its row).

    ``map_variants`` runs the independent variants some other way (e.g. as parallel Ray tasks,
    :func:`vae.ray_jobs.variant_mapper`); by default they run in turn here, with ``progress`` and ``should_stop``
    before each (a mapper gets neither: it reports nothing until every variant is done).

    ``data`` (train images, train labels, test images, test labels) replaces loading ``settings.dataset``.
    ``on_model(variant, model, row, history)`` sees each trained model, its measured row and its per-epoch
    history (e.g. to save it).
    """
    todo = study.variants(settings)
    if only is not None:
        unknown = sorted(set(only) - {v.key for v in todo})
        if unknown or not only:
            raise ValueError(f"{study.name} has the variants {[v.key for v in todo]}, not {unknown or 'none'}")
        todo = [v for v in todo if v.key in only]
        if any(study.keeps(v) for v in todo):
            raise ValueError(f"{study.name}'s extras are measured across its variants: run the whole study")
    data = data if data is not None else _load_data(settings, data_dir)
    subset = study.training_subset(settings)
    held_out = None
    if subset is not None:
        if len(data[0]) > subset:
            held_out = (data[0][subset:], data[1][subset:])
        data = (data[0][:subset], data[1][:subset], data[2], data[3])
    train_images, train_labels, test_images, test_labels = data
    picker = np.random.default_rng(settings.seed)
    map_index = np.sort(picker.choice(len(test_images), min(settings.map_points, len(test_images)), replace=False))
    # One test image per class, the same for every model, for the reconstruction strips.
    strip_index = [int(torch.nonzero(test_labels == c)[0]) for c in torch.unique(test_labels).tolist()]
    strip = to_float_images(test_images[strip_index])
    result = StudyResult(study.name, settings, rows=[], labels=test_labels[map_index].numpy().astype(np.int64))
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
            "seconds": time.perf_counter() - graph_started,
            "points": len(train_images),
            "edges": len(graph.heads),
            "same_class_share": _same_class_share(graph, train_labels),
        }
    models: dict[str, LatentModel] = {}
    shared = {
        "study": study,
        "settings": settings,
        "data": data,
        "graph": graph,
        "map_index": map_index,
        "strip": strip,
        "held_out": held_out,
    }
    if map_variants is None:
        outcomes = _in_turn(todo, shared, progress, should_stop)
    else:
        outcomes = map_variants(_variant_outcome, shared, todo)
    for variant, outcome in zip(todo, outcomes, strict=True):
        model, row, images, points, history = outcome
        result.rows.append(row)
        result.images |= images
        if points is not None:
            result.maps[variant.key] = points
        if on_model is not None:
            on_model(variant, model, row, history)
        if study.keeps(variant):
            models[variant.key] = model
    result.extras |= study.extras(models, todo, train_images, settings)
    result.seconds = time.perf_counter() - started
    result.created = datetime.now(UTC).isoformat(timespec="seconds")
    if progress is not None:
        progress(1.0, "done")
    return result


def merge_results(saved: StudyResult, fresh: StudyResult, order: list[str]) -> StudyResult:
    """``saved`` with the variants of ``fresh`` (a run of some of them, ``run(only=...)``) put in or replaced.

    Rows follow ``order`` (the study's variant keys); each variant's map and images come from the result its
    row comes from. The two must share their settings: numbers of differently trained studies are not one table.
    ``seconds`` is the whole study's, as if run at once: the replaced rows' training time out, the fresh run's in.
    """
    same_points = saved.labels.shape == fresh.labels.shape and bool((saved.labels == fresh.labels).all())
    if saved.study != fresh.study or saved.settings != fresh.settings or not same_points:
        raise ValueError(
            f"a fresh run of {fresh.study} with other settings cannot be merged into the saved {saved.study}: "
            "run the whole study"
        )
    fresh_keys = {row["key"] for row in fresh.rows}
    rows = {row["key"]: row for row in saved.rows} | {row["key"]: row for row in fresh.rows}
    replaced = sum(row.get("train_seconds", 0.0) for row in saved.rows if row["key"] in fresh_keys)

    def variant_of(image: str) -> str | None:  # "grid/<key>", "recon/<key>"; None for the shared "originals"
        return image.split("/", 1)[1] if "/" in image else None

    return StudyResult(
        study=saved.study,
        settings=saved.settings,
        rows=[rows[key] for key in order if key in rows],
        labels=saved.labels,
        maps={k: v for k, v in saved.maps.items() if k not in fresh_keys} | fresh.maps,
        images={k: v for k, v in saved.images.items() if variant_of(k) not in fresh_keys}
        | {k: v for k, v in fresh.images.items() if variant_of(k) in fresh_keys},
        extras=saved.extras | fresh.extras,
        created=fresh.created,
        seconds=saved.seconds - replaced + fresh.seconds,
    )


# ---------------------------------------------------------------------------------------------
# Files: <study>.json (numbers) + <study>.npz (arrays), never pickled.


def result_paths(directory: str | Path, name: str) -> tuple[Path, Path]:
    """Where study ``name``'s pair of files lives in ``directory`` (the registry checks the name first)."""
    directory = Path(directory)
    return directory / f"{name}.json", directory / f"{name}.npz"


def write_result(result: StudyResult, directory: str | Path, question: str) -> Path:
    """Write the pair of files atomically (arrays first: the JSON names them and is the commit point)."""
    json_path, npz_path = result_paths(directory, result.study)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"labels": result.labels}
    arrays |= {f"map/{k}": v.astype(np.float32) for k, v in result.maps.items()}
    arrays |= {f"image/{k}": v.astype(np.uint8) for k, v in result.images.items()}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    meta = {
        "format": RESULT_FORMAT,
        "study": result.study,
        "question": question,
        "settings": result.settings.to_dict(),
        "rows": result.rows,
        "extras": result.extras,
        "arrays": sorted(arrays),
        "created": result.created,
        "seconds": result.seconds,
    }
    write_atomically(npz_path, buffer.getvalue())
    write_atomically(json_path, json.dumps(meta, indent=1, allow_nan=True).encode())
    return json_path


def read_result(directory: str | Path, name: str) -> StudyResult:
    """Read study ``name``'s saved result; raises :class:`ExperimentFileError` saying what is wrong with the files."""
    json_path, npz_path = result_paths(directory, name)
    for path in (json_path, npz_path):
        if not path.is_file():
            raise ExperimentFileError(f"{path} is missing")
        if path.stat().st_size > MAX_RESULT_BYTES:
            raise ExperimentFileError(f"{path} is larger than {MAX_RESULT_BYTES // 2**20} MB")
    try:
        meta = json.loads(json_path.read_text())
        if meta.get("format") != RESULT_FORMAT or meta.get("study") != name:
            raise ExperimentFileError(
                f"{json_path}: format {meta.get('format')!r} of study {meta.get('study')!r}, "
                f"expected format {RESULT_FORMAT} of {name!r}"
            )
        with np.load(npz_path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except ExperimentFileError:
        raise
    except Exception as error:  # JSON, zip or array errors all mean the same thing to a reader
        raise ExperimentFileError(f"{json_path.name}/{npz_path.name} cannot be read: {error}") from None
    missing = sorted(set(meta.get("arrays", [])) - set(arrays))
    if missing:
        raise ExperimentFileError(f"{npz_path} lacks {', '.join(missing)} (written by another run?)")
    labels = arrays.pop("labels")
    return StudyResult(
        study=name,
        settings=StudySettings.from_dict(meta["settings"]),
        rows=meta["rows"],
        labels=labels,
        maps={k.removeprefix("map/"): v for k, v in arrays.items() if k.startswith("map/")},
        images={k.removeprefix("image/"): v for k, v in arrays.items() if k.startswith("image/")},
        extras=meta.get("extras", {}),
        created=meta.get("created", ""),
        seconds=float(meta.get("seconds", 0.0)),
    )
