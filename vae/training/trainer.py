"""Training: plain functions over tensors that stay in memory (the command line is :mod:`vae.training.cli`).

The whole of MNIST as float32 is 188 MB, so it lives in one tensor and a batch is an index_select:
no per-image Python transforms, no DataLoader workers. On a 2-core CPU this is about 3x faster per
epoch than the ToTensor + DataLoader recipe (``benchmarks/train_speed.py`` measures it).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from vae.models import LatentModel, ModelConfig, build_model, evaluating, to_float_images
from vae.training.timeline import (
    Frame,
    Timeline,
    TimelineSettings,
    decoder_snapshot,
    is_recording_step,
    stratified_sample,
)

if TYPE_CHECKING:
    from vae.training.graph import NeighbourGraph


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings: what changes how a model is trained, not what the model is."""

    epochs: int = 10
    # 128 is the classic MNIST recipe's batch; larger batches run faster per epoch on CPU but need
    # more epochs for the same loss.
    batch_size: int = 128
    learning_rate: float = 1e-3
    # "cosine" anneals the rate to zero over all epochs' batches: a cheap 1-2 nats at the end of a short
    # run. "constant" is the classic recipe.
    schedule: Literal["constant", "cosine"] = "cosine"
    # AdamW's decoupled weight decay; 0 keeps the classic recipe's plain Adam behaviour.
    weight_decay: float = 0.0
    seed: int = 0
    # Stop after this many seconds of training (checked between batches); None trains every epoch.
    max_seconds: float | None = None
    # "bfloat16" runs each batch's forward pass and loss under CPU autocast (matmuls and convolutions in
    # bfloat16, weights and optimiser state in float32); it needs a CPU with bfloat16 support (oneDNN's check,
    # made when training starts). "float32" is the exact path every test's numbers come from.
    precision: Literal["float32", "bfloat16"] = "float32"

    def __post_init__(self) -> None:
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or not 1 <= self.epochs <= 10_000:
            raise ValueError(f"epochs must be an integer from 1 to 10000, got {self.epochs!r}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if not (isinstance(self.learning_rate, (int, float)) and 0 < self.learning_rate <= 1):
            raise ValueError(f"learning_rate must be in (0, 1], got {self.learning_rate!r}")
        if not (isinstance(self.weight_decay, (int, float)) and 0 <= self.weight_decay <= 1):
            raise ValueError(f"weight_decay must be in [0, 1], got {self.weight_decay!r}")
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"schedule must be 'constant' or 'cosine', got {self.schedule!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.max_seconds is not None and not (isinstance(self.max_seconds, (int, float)) and self.max_seconds > 0):
            raise ValueError(f"max_seconds must be positive or None, got {self.max_seconds!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {self.precision!r}")


PRECISIONS = ("float32", "bfloat16")


def bfloat16_supported() -> bool:
    """Whether this CPU runs bfloat16 matmuls natively (oneDNN's check: AVX-512 BF16 or AMX on x86)."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def precision_context(precision: str) -> contextlib.AbstractContextManager:
    """The context a batch's forward pass and loss run in: nothing for float32 (the exact path, unchanged),
    CPU autocast to bfloat16 otherwise."""
    if precision == "float32":
        return contextlib.nullcontext()
    return torch.autocast("cpu", dtype=torch.bfloat16)


@dataclass(frozen=True)
class BatchProgress:
    epoch: int  # 1-based
    batch: int  # 1-based, within the epoch
    batches_per_epoch: int
    terms: dict[str, float]  # this batch's loss terms, per image


@dataclass(frozen=True)
class EpochRecord:
    epoch: int  # 1-based
    seconds: float  # wall time of the training pass alone (evaluation excluded)
    train: dict[str, float]  # loss terms averaged over the epoch's batches, per image
    test: dict[str, float]  # loss terms on the held-out images, per image

    def to_dict(self) -> dict:
        return {"epoch": self.epoch, "seconds": self.seconds, "train": self.train, "test": self.test}


Status = Literal["completed", "stopped", "time_limit", "diverged"]


@dataclass
class TrainResult:
    model: LatentModel  # holds the last good weights, whatever the status
    settings: TrainSettings
    history: list[EpochRecord] = field(default_factory=list)
    status: Status = "completed"
    message: str = ""
    timeline: Timeline | None = None  # when recorded: its last frame is ``model``'s codes


class TrainingDiverged(RuntimeError):
    """A loss term became NaN or infinite."""


def pick_device() -> torch.device:
    """CUDA, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _check_finite(terms: dict[str, torch.Tensor], where: str) -> None:
    bad = [name for name, value in terms.items() if not torch.isfinite(value).all()]
    if bad:
        raise TrainingDiverged(
            f"{', '.join(bad)} became NaN or infinite {where}; try a lower learning rate "
            "(the model keeps the weights from the last complete epoch)"
        )


def train_epoch(
    model: LatentModel,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    on_batch: Callable[[int, int, dict[str, float]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    labels: torch.Tensor | None = None,
    graph: NeighbourGraph | None = None,
    precision: str = "float32",
) -> tuple[dict[str, float], bool]:
    """One pass over ``images`` float ``[N, 1, 28, 28]`` (with ``labels`` ``[N]`` if the loss needs them)
    in a seeded random order, each batch's loss computed in ``precision`` (:func:`precision_context`; the
    backward pass and the step follow the forward's dtypes, as autocast intends).

    With a neighbour ``graph`` over the images (for the UMAP term) the batches are edges instead: N edges
    drawn in proportion to their weights, their heads as the batch and their tails as its neighbours.
    Returns (loss terms averaged over the batches that ran, whether it was cut short by ``should_stop``).
    Raises :class:`TrainingDiverged` on the first NaN or infinite term, before the optimiser steps on it.
    """
    model.train()
    if graph is None:
        order, partners = torch.randperm(len(images), generator=generator), None
    else:
        order, partners = graph.sample(len(images), generator)
    order = order.to(images.device)
    n_batches = math.ceil(len(images) / batch_size)
    sums: dict[str, torch.Tensor] = {}
    ran = 0
    for b in range(n_batches):
        if should_stop is not None and should_stop():
            break
        batch = order[b * batch_size : (b + 1) * batch_size]
        x = images.index_select(0, batch)
        y = labels.index_select(0, batch) if labels is not None else None
        with precision_context(precision):
            if partners is None:
                terms = model.loss(x, y)
            else:
                neighbours = images.index_select(0, partners[b * batch_size : (b + 1) * batch_size].to(images.device))
                terms = model.loss(x, y, neighbours)
        _check_finite(terms, f"in epoch batch {b + 1}")
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        ran += 1
        detached = {k: v.detach() for k, v in terms.items()}
        for k, v in detached.items():
            sums[k] = sums[k] + v if k in sums else v
        if on_batch is not None:
            on_batch(b + 1, n_batches, {k: float(v) for k, v in detached.items()})
    means = {k: float(v) / ran for k, v in sums.items()} if ran else {}
    return means, ran < n_batches


@torch.no_grad()
def evaluate(
    model: LatentModel, images: torch.Tensor, batch_size: int = 1000, labels: torch.Tensor | None = None
) -> dict[str, float]:
    """Loss terms on ``images`` float ``[N, 1, 28, 28]`` (and ``labels`` ``[N]``), per image, weighted by batch size.

    The model is put back into the mode it was in, so this can run in the middle of training.
    """
    sums: dict[str, float] = {}
    with evaluating(model):
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size]
            y = labels[start : start + batch_size] if labels is not None else None
            for k, v in model.loss(x, y).items():
                sums[k] = sums.get(k, 0.0) + float(v) * len(x)
    return {k: v / len(images) for k, v in sums.items()}


class TimelineRecorder:
    """Records a :class:`~vae.training.timeline.Timeline` while :func:`train` runs (what and when: ``vae.training.timeline``).

    Recording must not change the training: it runs in eval mode under ``no_grad`` and on a forked RNG
    (the VAE's loss samples noise), so a model trained with a recorder has the weights it has without.
    """

    def __init__(
        self,
        settings: TimelineSettings,
        batches_per_epoch: int,
        test_images: torch.Tensor,
        test_labels: torch.Tensor,
        train_images: torch.Tensor,
        train_labels: torch.Tensor,
        device: torch.device,
        with_labels: bool,
        on_frame: Callable[[Frame], None] | None = None,
    ) -> None:
        if settings.points > len(test_images):
            raise ValueError(f"the timeline records {settings.points} test images, but there are {len(test_images)}")
        if settings.loss_images > len(train_images):
            raise ValueError(
                f"the timeline scores {settings.loss_images} training images, but there are {len(train_images)}"
            )
        self.settings, self.batches_per_epoch = settings, batches_per_epoch
        self.device, self.on_frame = device, on_frame
        self.image_index = stratified_sample(test_labels, settings.points)  # int64 [N]
        test_pick = stratified_sample(test_labels, settings.loss_images)  # a subset of image_index
        train_pick = stratified_sample(train_labels, settings.loss_images)
        self.x_points = to_float_images(test_images[self.image_index]).to(device)  # [N, 1, 28, 28]
        # Every Frame gets this read-only view of it (the Timeline keeps the array itself).
        self.frame_index = self.image_index.view()
        self.frame_index.setflags(write=False)
        self.x_test = to_float_images(test_images[test_pick]).to(device)
        self.x_train = to_float_images(train_images[train_pick]).to(device)
        # Only a class-aware loss reads labels; passing them to another would change nothing but the cost.
        self.y_test = test_labels[test_pick].to(device) if with_labels else None
        self.y_train = train_labels[train_pick].to(device) if with_labels else None
        self.codes: list[np.ndarray] = []
        self.steps: list[int] = []
        self.train_terms: list[dict[str, float]] = []
        self.test_terms: list[dict[str, float]] = []
        self.decoders: dict[int, dict[str, torch.Tensor]] = {}
        self.seconds = 0.0

    def maybe_record(self, model: LatentModel, step: int) -> None:
        """Record a frame if ``step`` (batches seen) is one of the timeline's steps."""
        if is_recording_step(step, self.batches_per_epoch):
            self.record(model, step)

    @torch.no_grad()
    def record(self, model: LatentModel, step: int) -> None:
        """Record the frame of the model's weights now, after ``step`` batches."""
        if self.steps and step <= self.steps[-1]:
            return
        started = time.perf_counter()
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda), evaluating(model):
            torch.manual_seed(0)  # the VAE's test-loss noise: the same draw at every frame
            codes = torch.cat([model.embed(x) for x in self.x_points.split(2000)]).cpu().numpy()  # [N, D]
            test = evaluate(model, self.x_test, labels=self.y_test)
            train = evaluate(model, self.x_train, labels=self.y_train)
        # Weights that give non-finite codes are about to be refused as diverged; such a frame is not kept.
        if np.isfinite(codes).all():
            codes.setflags(write=False)
            index = len(self.steps)
            self.codes.append(codes)
            self.steps.append(step)
            self.train_terms.append(train)
            self.test_terms.append(test)
            if step in self.settings.decoder_steps:
                self.decoders[index] = decoder_snapshot(model)
            if self.on_frame is not None:
                self.on_frame(Frame(index, step, step / self.batches_per_epoch, codes, train, test, self.frame_index))
        self.seconds += time.perf_counter() - started

    def finish(self, model: LatentModel, step: int) -> Timeline:
        """The timeline of a training whose final weights (``model``) are those after ``step`` batches.

        Frames past ``step`` (a diverged epoch, whose weights were dropped) are dropped too; a final frame is
        recorded if the training ended between two recording steps, so the last frame is always the model's.
        """
        keep = sum(1 for s in self.steps if s <= step)
        del self.codes[keep:], self.steps[keep:], self.train_terms[keep:], self.test_terms[keep:]
        self.decoders = {f: d for f, d in self.decoders.items() if f < keep}
        if not self.steps or self.steps[-1] != step:
            self.record(model, step)
        last = len(self.steps) - 1
        self.decoders.pop(last, None)  # the final decoder is the model itself
        terms = sorted({t for frame in self.train_terms + self.test_terms for t in frame})
        return Timeline(
            codes=np.stack(self.codes).astype(np.float32),
            steps=np.array(self.steps, dtype=np.int64),
            epochs=np.array(self.steps, dtype=np.float64) / self.batches_per_epoch,
            image_index=self.image_index,
            train_terms={t: np.array([f.get(t, np.nan) for f in self.train_terms]) for t in terms},
            test_terms={t: np.array([f.get(t, np.nan) for f in self.test_terms]) for t in terms},
            batches_per_epoch=self.batches_per_epoch,
            decoders=self.decoders,
            record_seconds=self.seconds,
            loss_images=self.settings.loss_images,
        )


def train(
    config: ModelConfig,
    train_images: torch.Tensor,
    test_images: torch.Tensor | None = None,
    settings: TrainSettings = TrainSettings(),
    *,
    on_batch: Callable[[BatchProgress], None] | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    device: torch.device | str | None = None,
    train_labels: torch.Tensor | None = None,
    test_labels: torch.Tensor | None = None,
    timeline: TimelineSettings | None = None,
    on_frame: Callable[[Frame], None] | None = None,
    graph: NeighbourGraph | None = None,
) -> TrainResult:
    """Train a fresh model described by ``config``; seeded, so the same inputs give the same weights.

    train_images / test_images: uint8 ``[N, 28, 28]`` or float ``[N, 1, 28, 28]`` in [0, 1].
    on_batch / on_epoch: progress callbacks (every loss term, train and test, per image).
    should_stop: polled between batches; returning True ends training with status "stopped".
    train_labels / test_labels: int64 ``[N]``, required when ``config.class_weight`` > 0 (the class term)
    and when recording a timeline (its images are chosen per class).
    timeline: record one (``vae.training.timeline``) into ``result.timeline``; ``on_frame`` sees each frame as it
    is recorded. Recording changes no weight: the same seed trains the same model with or without it.
    graph: the training images' neighbour graph for the UMAP term (``config.umap_weight`` > 0); built from
    ``train_images`` by :func:`vae.training.graph.fuzzy_graph` when not given (about a minute for 60,000 images).
    The test set is not in the graph, so test terms leave the UMAP term out.
    Never raises on divergence: the result's status is "diverged", its message says what happened,
    and its model holds the weights of the last complete epoch.
    """
    if config.kind == "pca":
        raise ValueError("PCA is fitted, not trained: use vae.models.fit_pca")
    if settings.precision == "bfloat16" and not bfloat16_supported():
        raise ValueError("precision 'bfloat16' needs a CPU with bfloat16 support (oneDNN found none): use 'float32'")
    if len(train_images) < settings.batch_size:
        raise ValueError(
            f"batch_size ({settings.batch_size}) is larger than the training set ({len(train_images)} images)"
        )
    if config.class_weight and (train_labels is None or (test_images is not None and test_labels is None)):
        raise ValueError("class_weight > 0 trains on labels: pass train_labels (and test_labels with test_images)")
    for images, labels, split in ((train_images, train_labels, "train"), (test_images, test_labels, "test")):
        if labels is not None and (images is None or len(labels) != len(images)):
            raise ValueError(f"{split}_labels must have one label per {split} image")
    if config.umap_weight:
        if graph is None:
            from vae.training.graph import fuzzy_graph

            graph = fuzzy_graph(train_images, seed=settings.seed)
        if graph.n_points != len(train_images):
            raise ValueError(f"the graph joins {graph.n_points} images, the training set has {len(train_images)}")
    else:
        graph = None  # a plain model trains on shuffled images, whatever it is handed
    device = torch.device(device) if device is not None else pick_device()
    torch.manual_seed(settings.seed)  # weight init and the VAE's sampling noise
    generator = torch.Generator().manual_seed(settings.seed)  # batch order, independent of the above
    model = build_model(config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    n_batches = math.ceil(len(train_images) / settings.batch_size)
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.epochs * n_batches)
        if settings.schedule == "cosine"
        else None
    )
    x_train = to_float_images(train_images).to(device)
    x_test = to_float_images(test_images).to(device) if test_images is not None else None
    # Labels ride along only when the loss uses them, so plain models never see them.
    y_train = train_labels.to(device) if config.class_weight else None
    y_test = test_labels.to(device) if config.class_weight and test_labels is not None else None

    recorder = None
    if timeline is not None:
        if test_images is None or test_labels is None or train_labels is None:
            raise ValueError(
                "recording a timeline needs test_images, test_labels and train_labels (its images are chosen per class)"
            )
        recorder = TimelineRecorder(
            timeline,
            n_batches,
            test_images,
            test_labels,
            train_images,
            train_labels,
            device,
            with_labels=bool(config.class_weight),
            on_frame=on_frame,
        )

    result = TrainResult(model=model, settings=settings)
    last_good = {k: v.detach().clone() for k, v in model.state_dict().items()}
    steps_done = last_good_step = 0  # batches seen by the current weights and by last_good
    started = time.perf_counter()
    if recorder is not None:
        recorder.record(model, 0)  # the untrained model: where every map starts

    def stop_requested() -> bool:
        if should_stop is not None and should_stop():
            result.status, result.message = "stopped", "stopped on request"
            return True
        if settings.max_seconds is not None and time.perf_counter() - started > settings.max_seconds:
            result.status, result.message = "time_limit", f"reached the {settings.max_seconds:g} s time limit"
            return True
        return False

    def after_batch(b: int, n: int, terms: dict[str, float], epoch: int) -> None:
        nonlocal steps_done
        steps_done = (epoch - 1) * n_batches + b
        if recorder is not None:
            recorder.maybe_record(model, steps_done)
        if on_batch is not None:
            on_batch(BatchProgress(epoch, b, n, terms))

    for epoch in range(1, settings.epochs + 1):
        report = None
        if on_batch is not None or recorder is not None:
            report = lambda b, n, terms, epoch=epoch: after_batch(b, n, terms, epoch)  # noqa: E731
        epoch_start = time.perf_counter()
        recorded_before = recorder.seconds if recorder is not None else 0.0
        try:
            train_terms, cut_short = train_epoch(
                model,
                optimizer,
                x_train,
                settings.batch_size,
                generator,
                scheduler,
                report,
                stop_requested,
                y_train,
                graph,
                settings.precision,
            )
            # The epoch's training time, without the frames recorded in it (their cost is the timeline's).
            recorded = (recorder.seconds if recorder is not None else 0.0) - recorded_before
            train_seconds = time.perf_counter() - epoch_start - recorded
            test_terms = evaluate(model, x_test, labels=y_test) if x_test is not None else {}
            _check_finite({k: torch.tensor(v) for k, v in test_terms.items()}, "on the test set")
        except TrainingDiverged as error:
            model.load_state_dict(last_good)
            result.status, result.message = "diverged", f"epoch {epoch}: {error}"
            break
        if cut_short:
            # A partial epoch's weights are fine to keep; its averages are not comparable, so no record.
            break
        record = EpochRecord(epoch, train_seconds, train_terms, test_terms)
        result.history.append(record)
        last_good = {k: v.detach().clone() for k, v in model.state_dict().items()}
        last_good_step = steps_done
        if on_epoch is not None:
            on_epoch(record)
        if epoch < settings.epochs and stop_requested():
            break
    model.eval()
    if recorder is not None:
        # A diverged run went back to last_good; any other ended with the weights of its last batch.
        result.timeline = recorder.finish(model, last_good_step if result.status == "diverged" else steps_done)
    return result
