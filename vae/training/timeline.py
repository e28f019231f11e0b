"""Training timelines: where a fixed set of test images lands in the latent space as a model learns.

While :func:`vae.training.trainer.train` runs with ``timeline=TimelineSettings()``, it records a *frame* at geometric
steps in batches seen (0, 1, 2, 4, 8, ...) and at the end of every epoch (:func:`is_recording_step`):

- the codes (``embed``) of N = 2,000 test images, stratified by class and the same for every model of a
  dataset (:func:`stratified_sample` with a fixed seed), ``[N, D]``;
- the loss terms at that moment on 1,000 of those test images and on 1,000 training images (fixed sets,
  so the curves compare like with like from frame to frame; the full test set is scored once per epoch
  in the history, as before);
- at a few steps (``decoder_steps``), a copy of the decoder's weights, so the page can show what the
  decoder drew at that moment at any point a person pins.

A :class:`Timeline` holds the frames; :mod:`vae.store` saves it beside the weights. This module also holds
what the timeline page computes from one (per-frame class overlap, the fixed 2-D view, decodes at a pinned
point); it knows nothing of Streamlit, and nothing here runs at import.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from vae.models import LatentModel

if TYPE_CHECKING:
    from vae.projections import LatentView

# The seed of the stratified choice of images: a constant, not a training setting, so every model of a
# dataset records the same images and two timelines can be drawn in the same colours point for point.
SELECTION_SEED = 0
DEFAULT_POINTS = 2000
DEFAULT_LOSS_IMAGES = 1000
# Decoders kept: before training (grey noise), early (a blur of the mean digit), within the first epoch
# (shapes appear) and after some four epochs of batch 128 (close to the end). The final one is the model.
DEFAULT_DECODER_STEPS = (0, 32, 256, 2048)
TERM_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def stratified_sample(labels: torch.Tensor | np.ndarray, n: int, seed: int = SELECTION_SEED) -> np.ndarray:
    """``n`` indices into ``labels`` ``[M]``, as equal per class as the classes allow -> sorted int64 ``[n]``.

    Each class is shuffled with one seeded generator, then the classes are taken in turn (round robin), so
    a class with too few images gives its share to the others, and the first ``k`` picks of a larger
    sample are a smaller sample: ``stratified_sample(y, 1000)`` is a subset of ``stratified_sample(y, 2000)``.
    """
    y = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D [M], got shape {y.shape}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= len(y):
        raise ValueError(f"n must be an integer from 1 to the number of labels ({len(y)}), got {n!r}")
    rng = np.random.default_rng(seed)
    pools = [rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)]
    depth = max(len(pool) for pool in pools)
    # Round r takes the r-th image of every class that still has one: [depth, C] read row by row.
    table = np.full((depth, len(pools)), -1, dtype=np.int64)
    for c, pool in enumerate(pools):
        table[: len(pool), c] = pool
    order = table.ravel()
    return np.sort(order[order >= 0][:n]).astype(np.int64)


def is_recording_step(step: int, batches_per_epoch: int) -> bool:
    """True for 0, the powers of two and every multiple of ``batches_per_epoch`` (the end of an epoch)."""
    return step == 0 or (step & (step - 1)) == 0 or step % batches_per_epoch == 0


def recording_steps(batches_per_epoch: int, epochs: int) -> np.ndarray:
    """Every step a complete training of ``epochs`` records, increasing -> int64 ``[F]``."""
    total = batches_per_epoch * epochs
    powers = [0] + [2**k for k in range(int(math.log2(total)) + 1)] if total >= 1 else [0]
    ends = [batches_per_epoch * e for e in range(1, epochs + 1)]
    return np.array(sorted({s for s in powers + ends if s <= total}), dtype=np.int64)


@dataclass(frozen=True)
class TimelineSettings:
    """What a training records besides its weights (see the module docstring)."""

    # 2,000 points (200 per digit) draw a recognisable map in a 2-D canvas; 10,000 would cost 5x.
    points: int = DEFAULT_POINTS
    # The per-frame loss terms are measured on this many test images (a subset of the points) and as many
    # training images: enough for a smooth curve, cheap enough that recording stays under 5 % of training.
    loss_images: int = DEFAULT_LOSS_IMAGES
    # Batches seen at which the decoder's weights are kept (those the training reaches); () keeps none.
    decoder_steps: tuple[int, ...] = DEFAULT_DECODER_STEPS

    def __post_init__(self) -> None:
        object.__setattr__(self, "decoder_steps", tuple(self.decoder_steps))
        for name in ("points", "loss_images"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 10 <= value <= 100_000:
                raise ValueError(f"{name} must be an integer from 10 to 100000, got {value!r}")
        if self.loss_images > self.points:
            raise ValueError(f"loss_images ({self.loss_images}) cannot exceed points ({self.points})")
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in self.decoder_steps):
            raise ValueError(f"decoder_steps must be non-negative integers, got {self.decoder_steps!r}")
        if len(self.decoder_steps) > 16 or len(set(self.decoder_steps)) != len(self.decoder_steps):
            raise ValueError(f"decoder_steps must be at most 16 distinct steps, got {self.decoder_steps!r}")


@dataclass(frozen=True)
class Frame:
    """One recorded moment, as a training reports it (``on_frame``) while it goes on."""

    index: int  # 0-based position in the timeline
    step: int  # batches seen
    epoch: float  # step / batches per epoch
    codes: np.ndarray  # float32 [N, D], read-only
    train: dict[str, float]  # loss terms per image on the fixed training images
    test: dict[str, float]  # and on the fixed test images
    image_index: np.ndarray  # int64 [N]: the test images the codes are of (the same in every frame)


@dataclass
class Timeline:
    """The frames of one training. Arrays are numpy; ``decoders`` maps a frame index to the decoder's
    tensors at that frame (float32, the names of :func:`decoder_state_keys`)."""

    codes: np.ndarray  # float32 [F, N, D]
    steps: np.ndarray  # int64 [F], batches seen, strictly increasing
    epochs: np.ndarray  # float64 [F]
    image_index: np.ndarray  # int64 [N], indices into the test set
    train_terms: dict[str, np.ndarray]  # term -> float64 [F]
    test_terms: dict[str, np.ndarray]
    batches_per_epoch: int
    decoders: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    record_seconds: float = 0.0  # wall time spent recording, inside the training's
    loss_images: int = 0  # how many test (and training) images the per-frame loss terms were measured on

    @property
    def frames(self) -> int:
        return len(self.steps)

    @property
    def points(self) -> int:
        return self.codes.shape[1]

    @property
    def latent_dim(self) -> int:
        return self.codes.shape[2]

    def check(self, latent_dim: int | None = None) -> None:
        """Raise ValueError (saying what) unless the arrays fit together; the store calls it both ways."""
        codes, steps, epochs, index = self.codes, self.steps, self.epochs, self.image_index
        expected = (
            ("codes", codes, np.float32, 3),
            ("steps", steps, np.int64, 1),
            ("epochs", epochs, np.float64, 1),
            ("image_index", index, np.int64, 1),
        )
        for name, array, dtype, ndim in expected:
            if not isinstance(array, np.ndarray) or array.dtype != dtype or array.ndim != ndim:
                got = f"{array.dtype} with {array.ndim} dims" if isinstance(array, np.ndarray) else type(array).__name__
                raise ValueError(f"{name} must be {np.dtype(dtype).name} with {ndim} dims, got {got}")
        frames = len(steps)
        if frames < 1:
            raise ValueError("a timeline needs at least one frame")
        if codes.shape[:2] != (frames, len(index)) or len(epochs) != frames:
            raise ValueError(
                f"codes {list(codes.shape)}, steps [{frames}], epochs [{len(epochs)}] and image_index "
                f"[{len(index)}] do not fit together as [F, N, D], [F], [F], [N]"
            )
        if latent_dim is not None and codes.shape[2] != latent_dim:
            raise ValueError(f"codes have {codes.shape[2]} dimensions where the model has {latent_dim}")
        if steps[0] < 0 or np.any(np.diff(steps) <= 0):
            raise ValueError("steps must be non-negative and strictly increasing")
        if not np.isfinite(codes).all() or not np.isfinite(epochs).all():
            raise ValueError("codes and epochs must be finite")
        if np.any(index < 0) or len(np.unique(index)) != len(index):
            raise ValueError("image_index must hold distinct non-negative indices")
        batches = self.batches_per_epoch
        if isinstance(batches, bool) or not isinstance(batches, int) or batches < 1:
            raise ValueError(f"batches_per_epoch must be a positive integer, got {self.batches_per_epoch!r}")
        for split, terms in (("train", self.train_terms), ("test", self.test_terms)):
            for term, values in terms.items():
                if not TERM_PATTERN.fullmatch(term):
                    raise ValueError(f"invalid loss term name {term!r}")
                if not isinstance(values, np.ndarray) or values.dtype != np.float64 or values.shape != (frames,):
                    raise ValueError(f"{split} term {term!r} must be float64 [{frames}]")
        for frame in self.decoders:
            if isinstance(frame, bool) or not isinstance(frame, int) or not 0 <= frame < frames:
                raise ValueError(f"decoder snapshot for frame {frame!r}, which is not one of the {frames} frames")

    def until(self, step: int) -> Timeline:
        """The frames up to and including ``step`` (a training that went back to earlier weights)."""
        keep = int(np.searchsorted(self.steps, step, side="right"))
        return Timeline(
            self.codes[:keep],
            self.steps[:keep],
            self.epochs[:keep],
            self.image_index,
            {k: v[:keep] for k, v in self.train_terms.items()},
            {k: v[:keep] for k, v in self.test_terms.items()},
            self.batches_per_epoch,
            {f: s for f, s in self.decoders.items() if f < keep},
            self.record_seconds,
            self.loss_images,
        )


# ---------------------------------------------------------------------------------------------
# Decoder snapshots


def decoder_state_keys(model: LatentModel) -> list[str]:
    """The state-dict names a drawing depends on: the decoder's, or for a tied AE every tensor (its decoder
    draws with the encoder's weights transposed)."""
    names = list(model.state_dict())
    return names if model.config.tied else [k for k in names if k.startswith("decoder.")]


def decoder_snapshot(model: LatentModel) -> dict[str, torch.Tensor]:
    """A float32 CPU copy of the tensors of :func:`decoder_state_keys`."""
    state = model.state_dict()
    return {k: state[k].detach().to("cpu", torch.float32, copy=True) for k in decoder_state_keys(model)}


def with_decoder(model: LatentModel, snapshot: Mapping[str, torch.Tensor]) -> LatentModel:
    """A copy of ``model`` (eval mode) whose decoder is ``snapshot``: it draws as the decoder did then."""
    expected = set(decoder_state_keys(model))
    if set(snapshot) != expected:
        missing, extra = sorted(expected - set(snapshot)), sorted(set(snapshot) - expected)
        raise ValueError(f"decoder snapshot does not fit the model: missing {missing[:3]}, unexpected {extra[:3]}")
    copied = copy.deepcopy(model)
    state = copied.state_dict()
    state.update({k: v.to(state[k].device, state[k].dtype) for k, v in snapshot.items()})
    copied.load_state_dict(state, strict=True)
    return copied.eval()


def quantize_rows(tensor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """float ``[R, ...]`` -> (int8 of the same shape, float32 scale ``[R]``): each slice ``tensor[r]`` is
    ``q[r] * scale[r]`` to within half a step of its largest magnitude / 127.

    Per output unit (row), so one large weight only coarsens its own unit. A decoder kept this way is a
    quarter of its float32 size; its drawings differ from the exact decoder's by 0.1-0.2 % of the grey range
    on average (measured on the shipped 2-D decoders; a few per cent on the rarest pixels).
    """
    flat = tensor.detach().to(torch.float32).reshape(tensor.shape[0], -1)  # [R, K]
    scale = flat.abs().amax(dim=1) / 127.0
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero row: any scale is exact
    q = torch.round(flat / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q.reshape(tensor.shape), scale


def dequantize_rows(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`quantize_rows` -> float32 of ``q``'s shape."""
    return (q.reshape(q.shape[0], -1).to(torch.float32) * scale[:, None].to(torch.float32)).reshape(q.shape)


# ---------------------------------------------------------------------------------------------
# What the timeline page computes from a timeline


def frame_metrics(codes: np.ndarray, labels: np.ndarray, k: int = 5) -> dict[str, np.ndarray]:
    """Per frame of codes ``[F, N, D]`` with ``labels`` ``[N]``: ``knn`` (leave-one-out kNN-k accuracy
    inside the N points) and ``overlap`` (share of each point's k nearest neighbours from another class,
    averaged over the classes, as the Experiments page reports it), each float64 ``[F]``.

    Measured in the latent space itself, not in a 2-D view; the same numbers as
    ``vae.metrics.knn_accuracy_within`` and ``overlap_matrix``, from one neighbour search per frame (some
    40 ms for 2,000 points on a busy core, so a 45-frame timeline takes about 2 s, once per model).
    """
    from vae.metrics import knn_and_overlap_within

    n_classes = int(np.max(labels)) + 1
    knn, overlap = np.empty(len(codes)), np.empty(len(codes))
    for f, frame in enumerate(codes):
        knn[f], overlap[f] = knn_and_overlap_within(np.asarray(frame, dtype=np.float64), labels, k, n_classes)
    return {"knn": knn, "overlap": overlap}


def view_of_frames(codes: np.ndarray) -> tuple[LatentView, np.ndarray]:
    """The final frame's 2-D view applied to every frame: (view, points float32 ``[F, N, 2]``).

    A 2-D latent is shown as it is; a larger one through the PCA plane of the final frame's codes, so the
    axes mean the same at every frame and the picture converges to the explorer's PCA view.
    """
    from vae.projections import make_view

    frames, n, dim = codes.shape
    view = make_view("identity" if dim == 2 else "pca").fit(codes[-1])
    points = view.transform(codes.reshape(frames * n, dim)).reshape(frames, n, 2)
    return view, np.ascontiguousarray(points, dtype=np.float32)


def plane_range(points: np.ndarray, margin: float = 0.05) -> tuple[tuple[float, float], tuple[float, float]]:
    """Square-ish axis ranges around points ``[N, 2]`` with ``margin`` of the span on each side."""
    low, high = points.min(axis=0).astype(np.float64), points.max(axis=0).astype(np.float64)
    span = np.maximum(high - low, 1e-6)
    low, high = low - margin * span, high + margin * span
    return (float(low[0]), float(high[0])), (float(low[1]), float(high[1]))


def common_steps(*step_lists: Sequence[int] | np.ndarray) -> np.ndarray:
    """The union of several timelines' steps, increasing: what one slider over both models runs through."""
    return np.unique(np.concatenate([np.asarray(s, dtype=np.int64) for s in step_lists]))


def frame_at(steps: np.ndarray, at: np.ndarray) -> np.ndarray:
    """For each step of ``at``, the index of the latest frame of ``steps`` recorded by then (0 before)."""
    return np.maximum(np.searchsorted(np.asarray(steps), np.asarray(at), side="right") - 1, 0).astype(np.int64)


@torch.no_grad()
def decode_with_snapshots(
    model: LatentModel, snapshots: Mapping[int, LatentModel], code: np.ndarray, final_frame: int
) -> list[tuple[int, np.ndarray]]:
    """What each kept decoder draws at ``code`` ``[D]`` -> [(frame, image float32 ``[28, 28]``)], by frame,
    the final model last (as frame ``final_frame``)."""
    z = torch.as_tensor(np.asarray(code, dtype=np.float32).reshape(1, -1))
    out = []
    for frame, snapshot in sorted(snapshots.items()):
        if frame != final_frame:
            out.append((frame, snapshot.decode(z.to(snapshot.device))[0, 0].cpu().numpy()))
    out.append((final_frame, model.decode(z.to(model.device))[0, 0].cpu().numpy()))
    return out
