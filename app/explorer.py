"""What the Latent explorer page keeps and computes, whichever way its planes are drawn.

The planes run in the browser (``app.web_planes``: the decoders in the page, hover anywhere) or, where the
browser lacks WebGL or WebAssembly, on the server (``app.server_planes``: Plotly and a click per decode).
Both share this module: the session's pins and clicked images, the interpolation between two points, and
the controls in the sidebar.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from app import cache, state
from app.views import chosen_view, plane_title
from vae.data import SUBSETS, class_names
from vae.explore import interpolate, step_changes
from vae.models import LatentModel
from vae.projections import LatentView
from vae.store import StoredModel

SIDES = ("left", "right")
HISTORY = 5  # clicked images remembered as interpolation end points


@dataclass(frozen=True)
class Plane:
    """One side: a stored model, its loaded weights, its codes and the 2-D view that is plotted."""

    side: str
    stored: StoredModel
    model: LatentModel
    codes: np.ndarray  # [N, D]
    view: LatentView

    @property
    def title(self) -> str:
        return plane_title(self.stored, self.view.label, self.codes.shape[1])

    @property
    def exact(self) -> bool:
        return self.codes.shape[1] == 2 and self.view.name == "identity"

    @property
    def approximate_note(self) -> str:
        return (
            f"Approximate: the {self.codes.shape[1]}-D code comes from the {self.view.label} view's inverse, so it "
            "is one of many codes that land here."
        )


@dataclass(frozen=True)
class Options:
    subset: str
    method: str
    prior: bool
    ellipses: bool
    grid: bool
    grid_n: int


def load_plane(side: str, stored: StoredModel, options: Options) -> Plane:
    path, sha, data = str(stored.path), stored.weights_sha256, str(cache.data_dir())
    model, _ = cache.model(path, sha)
    codes = cache.embedding(path, sha, options.subset, data)
    method = chosen_view(options.method, codes.shape[1])
    return Plane(side, stored, model, codes, cache.view(path, sha, options.subset, data, method))


def init_state() -> None:
    """The session's explorer state: per side the last decoded spot and what is pinned, the selected image
    and its history."""
    defaults = {"ex_decoded": {}, "ex_pins": {}, "ex_selected": None, "ex_history": [], "ex_seen": {}, "ex_paths": {}}
    for key, value in defaults.items():
        if key not in st.session_state:
            st.session_state[key] = value


def record_click(side: str, x: float, y: float, index: int | None) -> str:
    """A click at (x, y) of ``side``'s plane, on data point ``index`` or on empty space -> "point" or "grid"."""
    init_state()
    # What the Exports page decodes by default: the last click, its side and its image.
    st.session_state["ex_click"] = {"side": side, "x": float(x), "y": float(y), "index": index}
    st.session_state["ex_decoded"][side] = (float(x), float(y))
    if index is None:
        st.session_state["ex_pins"][side] = {"kind": "spot", "point": [float(x), float(y)]}
        return "grid"
    # An image shows in both planes at once, so it is what both sides pin.
    for each in SIDES:
        st.session_state["ex_pins"][each] = {"kind": "image", "index": int(index)}
    st.session_state["ex_selected"] = int(index)
    history = [i for i in st.session_state["ex_history"] if i != index] + [int(index)]
    st.session_state["ex_history"] = history[-HISTORY:]
    # The last two clicked images are the interpolation's ends (the first click alone is its To); the sidebar's
    # From and To show them and can pick others. Set before those widgets are drawn in the coming run.
    if len(history) >= 2:
        st.session_state["ex_from"] = image_option(history[-2])
    st.session_state["ex_to"] = image_option(history[-1])
    return "point"


def image_option(index: int) -> str:
    """The From / To option of clicked image ``index``: the same words however many clicks follow."""
    return f"clicked image #{index}"


def endpoint_options() -> dict[str, tuple[str, int]]:
    options = {f"centroid of {name}": ("centroid", c) for c, name in enumerate(class_names(state.dataset()))}
    for index in reversed(st.session_state["ex_history"]):
        options[image_option(index)] = ("image", index)
    return options


def end_images() -> list[dict[str, int | str]]:
    """The clicked images that are the interpolation's ends now: ``[{"end": "from" | "to", "index": i}]``, for
    the planes to ring them while they are ends."""
    options = endpoint_options()
    ends = []
    for end, key in (("from", "ex_from"), ("to", "ex_to")):
        kind, value = options.get(st.session_state.get(key), ("centroid", 0))
        if kind == "image":
            ends.append({"end": end, "index": int(value)})
    return ends


@dataclass(frozen=True)
class Interpolation:
    """A straight line between two codes of one model: the codes, their decodes, their place in the view."""

    start: str
    end: str
    codes: np.ndarray  # [steps, D]
    frames: np.ndarray  # [steps, 28, 28]
    path: np.ndarray  # [steps, 2], in the plane's view
    # Largest step over mean step: 1 when every step changes the image equally, large when it jumps.
    ratio: float


def interpolation_choice(container=st.sidebar) -> tuple[str, str, int]:
    """From, To and Steps; the first two classes' centroids by default, the last two clicked images after clicks."""
    options = endpoint_options()
    names = list(options)
    latest = image_option(st.session_state["ex_history"][-1]) if st.session_state["ex_history"] else None
    # Defaults through the session state, not `index`: clicks set these keys too, and a widget given both a
    # default and a session-state value warns. A choice gone from the options (another dataset) starts over.
    for key, default in (("ex_from", names[0]), ("ex_to", names[1])):
        if st.session_state.get(key) not in options:
            st.session_state[key] = default
    container.markdown(
        "**Interpolate between**",
        help="Clicking two images in a plane makes them From and To; the lists pick class centroids or earlier clicks.",
    )

    def label(name: str) -> str:
        return name + (" (latest)" if name == latest else "")

    start = container.selectbox("From", names, key="ex_from", format_func=label)
    end = container.selectbox("To", names, key="ex_to", format_func=label)
    steps = int(container.number_input("Steps", 3, 20, 10, key="ex_steps"))
    return start, end, steps


def interpolations(planes: dict[str, Plane], subset: str, start: str, end: str, steps: int) -> dict[str, Interpolation]:
    """Each side's line between the chosen end points, in its own latent space; stores the paths for the planes."""
    options = endpoint_options()
    out = {}
    for side, plane in planes.items():
        means = cache.centroids(str(plane.stored.path), plane.stored.weights_sha256, subset, str(cache.data_dir()))
        ends = []
        for choice in (start, end):
            kind, value = options.get(choice, ("centroid", 0))
            ends.append(means[value] if kind == "centroid" else plane.codes[value])
        codes, frames = interpolate(plane.model, ends[0], ends[1], steps)
        path = plane.view.transform(codes)
        st.session_state["ex_paths"][side] = path
        changes = step_changes(frames)
        out[side] = Interpolation(start, end, codes, frames, path, float(changes.max() / max(changes.mean(), 1e-9)))
    return out


def smoothness_caption(planes: dict[str, Plane], paths: dict[str, Interpolation]) -> str:
    smoother = min(paths, key=lambda side: paths[side].ratio)
    ratios = ", ".join(f"{planes[s].stored.name} {p.ratio:.2f}" for s, p in paths.items())
    return (
        "Straight lines in each model's own latent space, decoded. A smooth path changes the image a little at "
        f"every step (largest step / mean step near 1); a jumpy one holds still, then flips. Ratios: {ratios}; "
        f"evenest here: **{planes[smoother].stored.name}**."
    )


def controls(high_dim: bool, container=st.sidebar) -> Options:
    """The explorer's options, in the sidebar so the planes can take the page."""
    container.subheader("Explorer")
    subset = container.radio("Points", list(SUBSETS), format_func=SUBSETS.get, key="ex_subset")
    method = state.view_picker(container, high_dim, help="How models with more than two latent dimensions are drawn.")
    return Options(
        subset=subset,
        method=method,
        prior=container.checkbox("N(0, I) prior contours (2-D VAE)", value=True, key="ex_prior"),
        ellipses=container.checkbox("Posterior ellipses of clicked images (2-D VAE)", value=True, key="ex_ellipses"),
        grid=container.checkbox("Manifold grid", key="ex_grid"),
        grid_n=container.slider("Grid size", 5, 30, 15, key="ex_grid_n"),
    )
