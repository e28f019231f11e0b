"""The timeline player: a Streamlit component (``static/components/timeline/``) and what it is fed.

Python prepares each model's frames once (cached): the final frame's 2-D view applied to every frame, the
axes that frame spans, kNN-5 and class overlap per frame. The points of both models, ``[F, N, 2]`` float32
each, are published as one gzip file (``app.frontend.publish``) that the page fetches once; everything
small (loss terms, metrics, labels, palette, the pinned drawings) travels in the component's JSON data.

Playing and scrubbing happen in the page, with no rerun. A click on a plane is a trigger: Python then
decodes the clicked point with every kept decoder of that model (``vae.training.timeline.decode_with_snapshots``)
and sends the drawings back, which the page shows frame by frame.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from app import cache, frontend
from app.views import plane_title
from vae.data import class_names
from vae.images import to_uint8_image
from vae.jobs import JobSnapshot
from vae.models import LatentModel
from vae.plots.palette import DIGIT_COLORS, TERM_COLORS
from vae.plots.scatter import latent_scatter
from vae.projections import LatentView, make_view
from vae.store import StoredModel, load_timeline
from vae.training.timeline import (
    Timeline,
    common_steps,
    decode_with_snapshots,
    frame_at,
    frame_metrics,
    plane_range,
    view_of_frames,
    with_decoder,
)

COMPONENT = "timeline"
# Per-frame metrics are drawn in neutral tones: the colours of DIGIT_COLORS mean classes, TERM_COLORS loss terms.
METRIC_COLORS = {"knn": "#333333", "overlap": "#9a9a9a"}
METRIC_LABELS = {"knn": "kNN-5 leave-one-out", "overlap": "class overlap"}


def knn_note(points: int) -> str:
    """What the timeline's kNN-5 counts, for ``points`` recorded images: not Home's, nor Class overlap's."""
    return (
        f"kNN-5 leave-one-out: the share of the timeline's {points:,} recorded test images whose five nearest other "
        "recorded images, in the latent space at that frame, vote for their own digit. Home's kNN-5 fits the vote on "
        "the 60,000 training codes and Class overlap's uses all 10,000 test codes, so the last frame's number "
        "differs a little from theirs."
    )


FRAME_MS = 400  # one frame per 0.4 s at 1x: the 45 frames of a 30-epoch training play in 18 s
# The order in which the models emit their loss terms, so each term gets the colour the Train page's curves give it.
TERM_ORDER = ("loss", "recon", "kl", "sparsity", "class")


@dataclass(frozen=True)
class Side:
    """One model's timeline, ready to draw. Shared by every session: read-only."""

    stored: StoredModel
    timeline: Timeline
    points: np.ndarray  # float32 [F, N, 2]: every frame through the final frame's view
    view: LatentView
    labels: np.ndarray  # int64 [N]: the class of each recorded image
    metrics: dict[str, np.ndarray]  # "knn", "overlap" -> [F]
    x_range: tuple[float, float]
    y_range: tuple[float, float]

    @property
    def title(self) -> str:
        return plane_title(self.stored, "PCA", self.timeline.latent_dim, note=" (the final frame's)")


@st.cache_resource(max_entries=8, show_spinner="Reading the timeline…")
def side(path: str, weights_sha256: str, timeline_sha256: str, directory: str) -> Side:
    """The timeline of the model in ``path``, prepared for the player; raises ``StoreError`` if it cannot be
    read (not cached then, so a repaired file is read on the next run)."""
    _, stored = cache.model(path, weights_sha256)
    timeline = load_timeline(path)
    _, labels = cache.dataset(stored.dataset_name, "test", directory)
    if timeline.image_index.max() >= len(labels):
        raise ValueError(
            f"the timeline of {stored.name} points at test image {timeline.image_index.max()}, "
            f"beyond the {len(labels):,} of {stored.dataset_name}"
        )
    image_labels = labels.numpy()[timeline.image_index].astype(np.int64)
    view, points = view_of_frames(timeline.codes)
    points.setflags(write=False)
    x_range, y_range = plane_range(points[-1])
    return Side(
        stored, timeline, points, view, image_labels, frame_metrics(timeline.codes, image_labels), x_range, y_range
    )


@st.cache_resource(max_entries=8, show_spinner=False)
def snapshot_models(path: str, weights_sha256: str, timeline_sha256: str, directory: str) -> dict[int, LatentModel]:
    """Frame -> the model with the decoder kept at that frame (the encoder plays no part in a drawing)."""
    model, _ = cache.model(path, weights_sha256)
    timeline = side(path, weights_sha256, timeline_sha256, directory).timeline
    return {frame: with_decoder(model, state) for frame, state in timeline.decoders.items()}


def load_side(stored: StoredModel) -> Side:
    return side(str(stored.path), stored.weights_sha256, stored.timeline_sha256, str(cache.data_dir()))


def default_pin(entry: Side) -> dict[str, Any]:
    """Where the first recorded test image ends up: its final code itself (exact, whatever D), a point with a
    digit under it, on both planes alike."""
    x, y = entry.points[-1, 0]
    index = int(entry.timeline.image_index[0])
    name = class_names(entry.stored.dataset_name)[int(entry.labels[0])]
    code = [float(v) for v in entry.timeline.codes[-1, 0]]
    return {
        "x": float(x),
        "y": float(y),
        "code": code,
        "approximate": False,
        "label": f"the final code of test image #{index} (a {name})",
    }


def clicked_pin(entry: Side, x: float, y: float) -> dict[str, Any]:
    """A point clicked on the plane: for D > 2 its code is the view's inverse, one of many codes that land there."""
    code = entry.view.inverse_transform(np.array([[x, y]], dtype=np.float32))[0]  # [D]
    return {
        "x": x,
        "y": y,
        "code": [float(v) for v in code],
        "approximate": entry.timeline.latent_dim > 2,
        "label": f"the point you pinned, ({x:.2f}, {y:.2f})",
    }


@st.cache_data(max_entries=64, show_spinner=False)
def drawings(
    path: str, weights_sha256: str, timeline_sha256: str, directory: str, code: tuple[float, ...]
) -> list[dict]:
    """What each kept decoder, and the final one, draws at ``code`` (D numbers): [{"frame", "step", "pixels"}],
    pixels as base64 of 784 grey levels (row by row), for the page to paint."""
    entry = side(path, weights_sha256, timeline_sha256, directory)
    model, _ = cache.model(path, weights_sha256)
    snapshots = snapshot_models(path, weights_sha256, timeline_sha256, directory)
    out = []
    for frame, image in decode_with_snapshots(model, snapshots, np.array(code), final_frame=entry.timeline.frames - 1):
        pixels = base64.b64encode(to_uint8_image(image).tobytes()).decode("ascii")
        out.append({"frame": frame, "step": int(entry.timeline.steps[frame]), "pixels": pixels})
    return out


def term_colors(terms) -> dict[str, str]:
    """Term -> colour, as ``vae.plots.charts.loss_curves`` assigns them (in the order the loss emits its terms)."""
    ordered = sorted(terms, key=lambda t: (TERM_ORDER.index(t) if t in TERM_ORDER else len(TERM_ORDER), t))
    return {term: TERM_COLORS[i % len(TERM_COLORS)] for i, term in enumerate(ordered)}


def _series(values: np.ndarray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in values]


def side_data(entry: Side, position: str, union: np.ndarray, offset: int, pin: dict[str, Any]) -> dict[str, Any]:
    """The JSON the page needs for one side (its points are at ``offset`` floats in the published pack)."""
    timeline, stored = entry.timeline, entry.stored
    path, sha, data = str(stored.path), stored.weights_sha256, str(cache.data_dir())
    exact = timeline.latent_dim == 2
    kept = sorted(timeline.decoders)
    if kept:
        note = f"decoders kept at batch {', '.join(f'{int(timeline.steps[f]):,}' for f in kept)} and the end"
    else:
        note = "no earlier decoder was kept for this model: every frame shows the final decoder's drawing"
    order = list(term_colors(set(timeline.train_terms) | set(timeline.test_terms)))  # "loss" first, as emitted
    return {
        "side": position,
        "title": entry.title,
        "kind": stored.config.kind,
        "offset": offset,
        "frames": timeline.frames,
        "points": timeline.points,
        "steps": timeline.steps.tolist(),
        "epochs": [round(float(e), 4) for e in timeline.epochs],
        "frameOfStep": frame_at(timeline.steps, union).tolist(),
        "positionOfFrame": np.searchsorted(union, timeline.steps).tolist(),
        "labels": entry.labels.tolist(),
        "xRange": list(entry.x_range),
        "yRange": list(entry.y_range),
        "axisLabels": list(entry.view.axis_labels()) if not exact else ["z₁", "z₂"],
        "prior": stored.config.kind == "vae" and exact,
        "losses": {
            split: {term: _series(terms[term]) for term in order if term in terms}
            for split, terms in (("train", timeline.train_terms), ("test", timeline.test_terms))
        },
        "lossImages": timeline.loss_images,
        "termColors": term_colors(set(timeline.train_terms) | set(timeline.test_terms)),
        "metrics": {name: _series(values) for name, values in entry.metrics.items()},
        "pin": {key: pin[key] for key in ("x", "y", "label", "approximate")},
        "drawings": drawings(path, sha, stored.timeline_sha256, data, tuple(pin["code"])),
        "decodersNote": note,
    }


def player_data(entries: dict[str, Side], pins: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Everything the component needs for ``entries`` (position -> side), with each side's pinned point."""
    union = common_steps(*(entry.timeline.steps for entry in entries.values()))
    pack, sides, offset = [], [], 0
    for position, entry in entries.items():
        pack.append(entry.points.tobytes())
        sides.append(side_data(entry, position, union, offset, pins[position]))
        offset += entry.points.size
    url, _ = frontend.publish(b"".join(pack), "f32")
    first = next(iter(entries.values()))
    batches = {entry.timeline.batches_per_epoch for entry in entries.values()}
    return {
        "pack": url,
        "steps": union.tolist(),
        "batchesPerEpoch": batches.pop() if len(batches) == 1 else None,
        "sides": sides,
        "colors": list(DIGIT_COLORS),
        "classNames": list(class_names(first.stored.dataset_name)),
        "metricColors": METRIC_COLORS,
        "metricLabels": METRIC_LABELS,
        "frameMs": FRAME_MS,
        "modules": {"player": frontend.module_url("components/timeline/player.js")},
    }


def show(key: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """Mount the player; returns the latest click on a plane, ``{"side", "x", "y"}`` in view coordinates,
    in the run that the click started (None otherwise)."""
    result = frontend.component(COMPONENT)(key=key, data=data, on_pin_change=lambda: None)
    pin = getattr(result, "pin", None)
    return pin if isinstance(pin, dict) else None


def parse_pin(pin: Any, sides: dict[str, Side]) -> tuple[str, float, float] | None:
    """A trigger from the page -> (side, x, y), or None for anything that is not a finite click on a shown side."""
    if not isinstance(pin, dict) or pin.get("side") not in sides:
        return None
    try:
        x, y = float(pin["x"]), float(pin["y"])
    except (KeyError, TypeError, ValueError):
        return None
    if not (np.isfinite(x) and np.isfinite(y)):
        return None
    return pin["side"], x, y


# ---------------------------------------------------------------------------------------------
# Session state: the point pinned on each side


def pins(entries: dict[str, Side]) -> dict[str, dict[str, Any]]:
    """Each side's pinned point, kept per model and timeline for the session (the default until a click)."""
    store = st.session_state.setdefault("tl_pins", {})
    out = {}
    for position, entry in entries.items():
        key = f"{position}|{entry.stored.path}|{entry.stored.timeline_sha256}"
        if key not in store:
            store[key] = default_pin(entry)
        out[position] = store[key]
    return out


def remember_click(click: dict[str, Any] | None, entries: dict[str, Side]) -> bool:
    """Pin a clicked point on its side; True if it is a new click (the page then reruns to draw it)."""
    parsed = parse_pin(click, entries)
    if parsed is None or st.session_state.get("tl_last_click") == click:
        return False
    st.session_state["tl_last_click"] = click
    position, x, y = parsed
    entry = entries[position]
    key = f"{position}|{entry.stored.path}|{entry.stored.timeline_sha256}"
    st.session_state.setdefault("tl_pins", {})[key] = clicked_pin(entry, x, y)
    return True


def recording_note(entry: Side) -> str:
    """How many frames, and what recording cost this model's training."""
    timeline, stored = entry.timeline, entry.stored
    trained = stored.metrics.get("train_seconds")
    note = (
        f"**{stored.name}**: {timeline.frames} frames over {timeline.epochs[-1]:g} epochs "
        f"({timeline.steps[-1]:,} batches)"
    )
    if isinstance(trained, (int, float)) and trained > 0 and timeline.record_seconds > 0:
        share = timeline.record_seconds / trained
        note += (
            f", recorded in {timeline.record_seconds:.1f} s ({share:.1%} of {trained:.0f} s of training passes; the "
            "Train page's clock also counted the test-set scoring after each epoch and the recording)"
        )
    return note + "."


def live_map(snapshot: JobSnapshot, dataset: str, key: str) -> go.Figure | None:
    """The map of a training job's latest frame (None before its first), for the Train page.

    Built once per frame and kept in session state under ``key``: the page refreshes every second, frames
    come at 0, 1, 2, 4, ... batches and at every epoch's end. D > 2 is drawn through this frame's PCA plane.
    """
    frame, labels = snapshot.frame, snapshot.frame_labels
    if frame is None or labels is None:
        return None
    held = st.session_state.get(key)
    if held is not None and held[0] == (snapshot.job_id, frame.index):
        return held[1]
    dim = frame.codes.shape[1]
    points = frame.codes if dim == 2 else make_view("pca").fit_transform(frame.codes)
    view = "" if dim == 2 else f" · PCA of {dim}-D"
    title = f"batch {frame.step:,} · epoch {frame.epoch:.2f}{view}"
    figure = latent_scatter(points, labels, title=title, class_names=class_names(dataset))
    # Half a column is too narrow for ten legend entries: the colours are those of every other map (and hover
    # names the class), so the page says so in a caption instead.
    figure.update_layout(showlegend=False, margin=dict(t=40))
    st.session_state[key] = ((snapshot.job_id, frame.index), figure)
    return figure


def intro(entries: dict[str, Side]) -> str:
    """The page's opening line, with the numbers of these timelines."""
    first = next(iter(entries.values()))
    counts = np.bincount(first.labels)
    counts = counts[counts > 0]
    each = f"{counts[0]:,} of each class" if (counts == counts[0]).all() else "stratified by class"
    return (
        f"Where {first.timeline.points:,} test images ({each}, the same for every model of a dataset) sat after 0, 1, "
        "2, 4, 8, … batches and at the end of every epoch, on the axes of the final frame. **Play** or drag the "
        "slider: it runs in the page. **Click a plane** to pin a point and see what that model's decoder drew there "
        "as it learned."
    )


def same_images(entries: dict[str, Side]) -> bool:
    """Whether every side recorded the same test images (true for any two models of one dataset)."""
    indices = [entry.timeline.image_index for entry in entries.values()]
    return all(np.array_equal(indices[0], other) for other in indices[1:])


WHAT_TO_LOOK_FOR = (
    "An AE is trained on reconstruction alone, so nothing keeps its codes anywhere in particular: it pushes the "
    "classes apart into arms with empty gaps between them, and goes on spreading them as it trains. A VAE's KL "
    "term charges for every code far from N(0, I): its codes stay packed around the origin (the dashed circles are "
    "1 and 2 σ of the prior) and its classes touch. Pin a point in a gap of the AE's plane to see its decoder draw "
    "something that is no digit in particular there; the thumbnails show each decoder going from grey noise to a "
    "blurred average digit to shapes within the first epoch."
)


def spread(codes: np.ndarray) -> float:
    """How far the codes ``[N, D]`` reach: the 95th percentile of their distances to their centre."""
    return float(np.percentile(np.linalg.norm(codes - codes.mean(axis=0), axis=1), 95))


def reading(entries: dict[str, Side]) -> str:
    """What these timelines show, in numbers measured on them (markdown, one line per model)."""
    lines = []
    for entry in entries.values():
        timeline, metrics = entry.timeline, entry.metrics
        spreads = np.array([spread(frame) for frame in timeline.codes])
        peak = int(np.argmax(spreads))
        line = f"**{entry.stored.name}**: from a spread of {spreads[0]:.2g} at frame 1 (every image in one spot) "
        if peak < timeline.frames - 1 and spreads[peak] > 1.15 * spreads[-1]:
            line += (
                f"to {spreads[peak]:.3g} at epoch {timeline.epochs[peak]:.2g}, then back to {spreads[-1]:.3g} "
                "by the end"
            )
        else:
            line += f"to {spreads[-1]:.3g} at the end"
        line += (
            f"; kNN-5 leave-one-out {metrics['knn'][0]:.2f} → {metrics['knn'][-1]:.2f}, class overlap "
            f"{metrics['overlap'][0]:.2f} → {metrics['overlap'][-1]:.2f}"
        )
        if "kl" in timeline.test_terms:
            line += f", KL {timeline.test_terms['kl'][-1]:.1f} nats at the end"
        lines.append(line + ".")
    return (
        "Spread: the 95th percentile of the codes' distances to their centre, in latent units. "
        + knn_note(next(iter(entries.values())).timeline.codes.shape[1])
        + "\n\n"
        + "\n\n".join(f"- {line}" for line in lines)
    )
