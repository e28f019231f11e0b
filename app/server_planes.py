"""The explorer's planes drawn by the server: Plotly figures, a click per decode.

The path for browsers without WebGL or WebAssembly (``app.web_planes`` is the default). Each plane is a
fragment: a click on empty space reruns that plane alone and leaves both figures as they were, so the
browser only swaps one image. A click on a data point reruns the page, because the same image must then
be ringed in the other plane and reconstructed by both models.
"""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from app import cache, state
from app.explorer import Interpolation, Options, Plane, load_plane, record_click, smoothness_caption
from vae.explore import decode_at, manifold_grid, posterior_2d, reconstruct
from vae.images import strip, tile_grid, to_uint8_image, upscale
from vae.plots.scatter import ClickGrid, overlay_traces, parse_box, parse_selection, with_overlays
from vae.store import StoredModel


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
    return record_click(side, click.x, click.y, click.index)


def take_clicks(sides) -> None:
    """Clicks that reran the whole page, taken before anything that depends on them is drawn."""
    for side in sides:
        take_new_click(side)


def figure(plane: Plane, options: Options, images) -> go.Figure:
    base = cache.base_figure(
        str(plane.stored.path),
        plane.stored.weights_sha256,
        options.subset,
        str(cache.data_dir()),
        plane.view.name,
        plane.title,
    )
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
        figure(plane, options, images),
        key=f"plane_{side}",
        on_select="rerun",
        selection_mode=("points", "box"),
        width="stretch",
        theme=None,
    )
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
        notes.append(plane.approximate_note)
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
        column.image(
            big(reconstruct(plane.model, original)[0], 5),
            output_format="PNG",
            caption=f"{plane.stored.name} reconstruction",
        )
    columns[3].markdown(
        f"**Image #{index}** is ringed in both planes. Where it lies in each says how each model files it; "
        "the reconstructions show what each bottleneck kept."
    )


def strips(planes: dict[str, Plane], paths: dict[str, Interpolation]) -> None:
    for side, path in paths.items():
        st.image(
            upscale(strip([to_uint8_image(f) for f in path.frames]), 3),
            output_format="PNG",
            caption=f"{planes[side].stored.name}: largest step / mean step = {path.ratio:.2f}",
        )
    st.caption(smoothness_caption(planes, paths))


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
            tile_grid([to_uint8_image(i) for i in images], n),
            output_format="PNG",
            width="stretch",
            caption=f"{plane.stored.name}: x {x_range[0]:.2f}…{x_range[1]:.2f}, y {y_range[0]:.2f}…{y_range[1]:.2f} "
            f"({where})",
        )


def explorer(planes: dict[str, Plane], options: Options, paths: dict[str, Interpolation], images) -> None:
    """The planes, the selected image and the interpolation strips, as fragments over Plotly figures."""
    st.caption(
        "Click a point to see the image, both models' reconstructions and where it lies in the other plane; click "
        "empty space to see what the decoder draws there. Legend entries toggle classes."
    )
    plots, selection, details = st.container(), st.container(), st.container()
    with details.expander("Interpolation", expanded=True):
        strips(planes, paths)
    if options.grid:
        with details.expander("Manifold grid: decodes over the plane", expanded=True):
            grids(planes, options.grid_n)
    with selection:
        selected_image(planes, images)
    with plots:
        for column, side in zip(st.columns(2), planes):
            with column:
                plane_fragment(side, planes[side].stored, options)
