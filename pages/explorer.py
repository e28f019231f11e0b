"""Latent explorer: both models' latent planes side by side. Click anywhere to decode; interpolate; grid.

Each plane is a fragment: a click on empty space reruns that plane alone and leaves both figures as they
were, so the browser only swaps one image. A click on a data point reruns the page, because the same
image must then be ringed in the other plane and reconstructed by both models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from app import cache, state
from vae.data import class_names
from vae.explore import decode_at, interpolate, manifold_grid, posterior_2d, reconstruct, step_changes
from vae.models import LatentModel
from vae.plots import ClickGrid, overlay_traces, parse_box, parse_selection, strip, tile_grid, to_uint8_image, upscale, with_overlays
from vae.projections import LatentView, available_views
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
        dim = self.codes.shape[1]
        view = "" if dim == 2 else f" · {self.view.label} view of {dim}-D"
        return f"{self.stored.name} ({self.stored.config.kind.upper()}){view}"

    @property
    def exact(self) -> bool:
        return self.codes.shape[1] == 2 and self.view.name == "identity"


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
    method = options.method if options.method in available_views(codes.shape[1]) else "identity"
    return Plane(side, stored, model, codes, cache.view(path, sha, options.subset, data, method))


def init_state() -> None:
    defaults = {"ex_decoded": {}, "ex_selected": None, "ex_history": [], "ex_seen": {}, "ex_paths": {}}
    for key, value in defaults.items():
        if key not in st.session_state:
            st.session_state[key] = value


def take_new_click(side: str) -> str | None:
    """Record a new click on ``side``'s chart; returns "grid", "point" or None (nothing new)."""
    event = st.session_state.get(f"plane_{side}")
    selection = event.get("selection") if event else None
    signature = json.dumps(selection, sort_keys=True, default=str)
    if st.session_state["ex_seen"].get(side) == signature:
        return None
    st.session_state["ex_seen"][side] = signature
    if parse_box(selection) is not None:
        return None  # a box sets the manifold grid's region; the points inside it are not a click
    click = parse_selection(selection)
    if click is None:
        return None  # a cleared selection keeps the last decoded digit on screen
    st.session_state["ex_decoded"][side] = (click.x, click.y)
    if click.index is None:
        return "grid"
    st.session_state["ex_selected"] = click.index
    history = [i for i in st.session_state["ex_history"] if i != click.index] + [click.index]
    st.session_state["ex_history"] = history[-HISTORY:]
    return "point"


def figure(plane: Plane, options: Options, images) -> go.Figure:
    base = cache.base_figure(
        str(plane.stored.path), plane.stored.weights_sha256, options.subset, str(cache.data_dir()),
        plane.view.name, plane.title,
    )  # fmt: skip
    selected = st.session_state["ex_selected"]
    marks = []
    if selected is not None and selected < len(plane.view.embedding_):
        x, y = plane.view.embedding_[selected]
        marks.append({"point": (float(x), float(y)), "label": f"#{selected}", "kind": "ring"})
    is_2d_vae = plane.stored.config.kind == "vae" and plane.exact
    ellipses = None
    if options.ellipses and is_2d_vae and st.session_state["ex_history"]:
        ellipses = posterior_2d(plane.model, images[st.session_state["ex_history"]])
    overlays = overlay_traces(
        highlight=marks or None,
        path=st.session_state["ex_paths"].get(plane.side),
        ellipses=ellipses,
        prior_contours=options.prior and is_2d_vae,
    )
    return with_overlays(base, overlays)


def big(image: np.ndarray, scale: int) -> np.ndarray:
    return upscale(to_uint8_image(image), scale)


@st.fragment
def plane_fragment(side: str, stored: StoredModel, options: Options) -> None:
    """One plane and the digit decoded where it was last clicked."""
    if take_new_click(side) == "point":
        st.rerun(scope="app")  # the other plane must ring the same image
    with state.guard():  # a fragment rerun is not inside the page's guard
        plane_body(side, stored, options)


def plane_body(side: str, stored: StoredModel, options: Options) -> None:
    plane = load_plane(side, stored, options)
    images, _ = cache.dataset(stored.dataset_name, options.subset, str(cache.data_dir()))
    st.plotly_chart(
        figure(plane, options, images), key=f"plane_{side}", on_select="rerun", selection_mode=("points", "box"),
        width="stretch", theme=None,
    )  # fmt: skip
    decoded = st.session_state["ex_decoded"].get(side)
    if decoded is None:
        st.caption("Click anywhere in this plane, on a point or on empty space, to decode an image there.")
        return
    x, y = decoded
    code, image = decode_at(plane.model, plane.view, x, y)
    left, right = st.columns([1, 1.4])
    left.image(big(image, 7), output_format="PNG", caption=f"{stored.name} decodes ({x:.2f}, {y:.2f})")
    notes = []
    if plane.codes.shape[1] > 2:
        notes.append("z = " + np.array2string(code, precision=2, max_line_width=48, suppress_small=True))
    if not plane.exact:
        notes.append(
            f"Approximate: the {plane.codes.shape[1]}-D code comes from the {plane.view.label} view's "
            "inverse, so it is one of many codes that land here."
        )
    for note in notes:
        right.caption(note)


def selected_image(planes: dict[str, Plane], images) -> None:
    index = st.session_state["ex_selected"]
    if index is None or index >= len(images):
        return
    original = images[index : index + 1]
    columns = st.columns([1, 1, 1, 3])
    columns[0].image(big(original[0].numpy() / 255.0, 5), output_format="PNG", caption=f"image #{index}")
    for column, plane in zip(columns[1:], planes.values()):
        column.image(big(reconstruct(plane.model, original)[0], 5), output_format="PNG",
                     caption=f"{plane.stored.name} reconstruction")  # fmt: skip
    columns[3].markdown(
        f"**Image #{index}** is ringed in both planes. Where it lies in each says how each model files it; "
        "the reconstructions show what each bottleneck kept."
    )


def endpoint_options() -> dict[str, tuple[str, int]]:
    options = {f"centroid of {name}": ("centroid", c) for c, name in enumerate(class_names(state.dataset()))}
    for i, index in enumerate(reversed(st.session_state["ex_history"])):
        options[f"clicked image #{index}" + (" (latest)" if i == 0 else "")] = ("image", index)
    return options


def interpolation(planes: dict[str, Plane], subset: str) -> None:
    """Controls, decoded strips and a smoothness readout; stores each side's path for the planes."""
    options = endpoint_options()
    names = list(options)
    a, b, c = st.columns([2, 2, 1])
    start = a.selectbox("From", names, index=0, key="ex_from")  # the first two classes' centroids
    end = b.selectbox("To", names, index=1, key="ex_to")
    steps = int(c.number_input("Steps", 3, 20, 10, key="ex_steps"))
    ratios = {}
    for side, plane in planes.items():
        means = cache.centroids(str(plane.stored.path), plane.stored.weights_sha256, subset, str(cache.data_dir()))
        ends = []
        for choice in (start, end):
            kind, value = options.get(choice, ("centroid", 0))
            ends.append(means[value] if kind == "centroid" else plane.codes[value])
        codes, frames = interpolate(plane.model, ends[0], ends[1], steps)
        st.session_state["ex_paths"][side] = plane.view.transform(codes)
        changes = step_changes(frames)
        # Largest step over mean step: 1 when every step changes the image equally, large when it jumps.
        ratios[side] = float(changes.max() / max(changes.mean(), 1e-9))
        st.image(
            upscale(strip([to_uint8_image(f) for f in frames]), 3), output_format="PNG",
            caption=f"{plane.stored.name}: largest step / mean step = {ratios[side]:.2f}",
        )  # fmt: skip
    smoother = min(ratios, key=ratios.get)
    st.caption(
        "Straight lines in each model's own latent space, decoded. A smooth path changes the image a little at "
        "every step (ratio near 1); a jumpy one holds still, then flips. "
        f"Evenest here: **{planes[smoother].stored.name}**."
    )


def grids(planes: dict[str, Plane], n: int) -> None:
    columns = st.columns(2)
    for column, (side, plane) in zip(columns, planes.items()):
        event = st.session_state.get(f"plane_{side}")
        box = parse_box(event.get("selection") if event else None)
        extent = ClickGrid.covering(plane.view.embedding_, n=2, margin=0.0)
        x_range, y_range = box or (extent.x_range, extent.y_range)
        images = manifold_grid(plane.model, plane.view, x_range, y_range, n)
        where = "the box you drew" if box else "the whole plane; draw a box (box-select tool) to zoom the grid"
        column.image(
            tile_grid([to_uint8_image(i) for i in images], n), output_format="PNG", width="stretch",
            caption=f"{plane.stored.name}: x {x_range[0]:.2f}…{x_range[1]:.2f}, y {y_range[0]:.2f}…{y_range[1]:.2f} "
            f"({where})",
        )  # fmt: skip


def controls(high_dim: bool) -> Options:
    a, b, c, d = st.columns([1.2, 1, 1.4, 1.2])
    subset = a.radio("Points", list(cache.SUBSETS), format_func=cache.SUBSETS.get, key="ex_subset")
    method = state.view_picker(
        b, high_dim, help="How models with more than two latent dimensions are drawn in the plane."
    )
    return Options(
        subset=subset,
        method=method,
        prior=c.checkbox("N(0, I) prior contours (2-D VAE)", value=True, key="ex_prior"),
        ellipses=c.checkbox("Posterior ellipses of clicked images (2-D VAE)", value=True, key="ex_ellipses"),
        grid=d.checkbox("Manifold grid", key="ex_grid"),
        grid_n=d.slider("Grid size", 5, 30, 15, key="ex_grid_n"),
    )


def render() -> None:
    state.page_frame()
    st.title("Latent explorer")
    pair = state.pair()
    if pair is None:
        st.warning("No models to show: train a pair on the **Train** page (or run `make models`).")
        return
    init_state()
    options = controls(max(pair.left.config.latent_dim, pair.right.config.latent_dim) > 2)
    st.caption(
        "Click a point to see the image, both models' reconstructions and where it lies in the other plane; click "
        "empty space to see what the decoder draws there. Legend entries toggle classes."
    )
    stored = dict(zip(SIDES, (pair.left, pair.right)))
    for side in SIDES:  # a click that reran the whole page is taken here, before anything is drawn
        take_new_click(side)
    planes = {side: load_plane(side, stored[side], options) for side in SIDES}
    images, _ = cache.dataset(pair.left.dataset_name, options.subset, str(cache.data_dir()))
    # Fixed screen order; the interpolation runs first because the planes draw its path.
    plots, selection, details = st.container(), st.container(), st.container()
    with details.expander("Interpolate between two points", expanded=True):
        interpolation(planes, options.subset)
    if options.grid:
        with details.expander("Manifold grid: decodes over the plane", expanded=True):
            grids(planes, options.grid_n)
    with selection:
        selected_image(planes, images)
    with plots:
        for column, side in zip(st.columns(2), SIDES):
            with column:
                plane_fragment(side, stored[side], options)


with state.guard():
    render()
