"""Exports: the pair's embeddings as CSV, the explorer's last selection as CSV and PNG, a decoded digit and a
manifold grid as PNG, the models as zip, and each model's ONNX encoder and decoder.

The files are built by plain functions in ``vae/export.py``. The CSVs (up to 70,000 rows) are generated
only when their button is clicked (a callable ``data``), as are the ONNX pairs (exported once per weights into
``.cache/onnx/``); the PNGs are small and the zips cached per (folder, weights SHA-256), so the page itself
stays quick.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from app import analysis, cache, selection, state
from app.views import chosen_view
from vae import export, site
from vae.data import SUBSETS
from vae.explore import decode_at, manifold_grid
from vae.plots.scatter import ClickGrid
from vae.projections import LatentView
from vae.store import StoredModel

# Widget keys shared with the explorer; copied forward so a page switch does not reset them.
SCALES = (1, 2, 4, 8, 10, 16)
GRID_TARGET_PIXELS = 900  # the grid PNG is enlarged to about this width, at most 4 times


def load(stored: StoredModel, subset: str, method: str) -> tuple[object, np.ndarray, LatentView]:
    """(model, codes ``[N, D]``, fitted 2-D view) for ``subset``, through the shared caches."""
    path, sha, data = str(stored.path), stored.weights_sha256, str(cache.data_dir())
    model, _ = cache.model(path, sha)
    codes = cache.embedding(path, sha, subset, data)
    return model, codes, cache.view(path, sha, subset, data, chosen_view(method, stored.config.latent_dim))


def embeddings(pair: state.Pair, subset: str, method: str) -> None:
    st.subheader("Embeddings (CSV)")
    _, labels_t = cache.dataset(pair.left.dataset_name, subset, str(cache.data_dir()))
    labels = labels_t.numpy()
    indices = np.arange(len(labels))
    columns = st.columns(2)
    for column, side, stored in zip(columns, ("left", "right"), (pair.left, pair.right)):
        _, codes, view = load(stored, subset, method)
        dim = codes.shape[1]
        names = [f"z{i + 1}" for i in range(dim)]
        coords = codes
        file_name = f"{stored.name}-embedding-{subset}.csv"
        if dim > 2:
            coords = np.concatenate([codes, view.embedding_], axis=1)
            names += ["x", "y"]
            file_name = f"{stored.name}-embedding-{subset}-{view.name}.csv"
        with column:
            st.download_button(
                f"Download {stored.name} embedding (CSV)",
                # Built on click, on a separate thread: only numpy work, on arrays captured now.
                data=lambda c=coords, n=tuple(names): export.embedding_csv(indices, labels, c, n),
                file_name=file_name,
                mime="text/csv",
                on_click="ignore",
                key=f"exp_csv_{side}",
                icon=":material/table:",
            )
            extra = f", then x, y of the {view.label} view" if dim > 2 else ""
            st.caption(f"`{file_name}`: {len(codes):,} rows; columns index, label, z1…z{dim}{extra}.")
    st.caption(
        "`index` is the image's position in the points shown: for the test set, its index in the MNIST test "
        "file; for all 70,000, 0–9,999 are the test images and 10,000–69,999 the training images in file order. "
        "The same indices as in the Latent explorer. Values are float32, written so they read back exactly."
    )


def last_selection(method: str) -> None:
    st.subheader("Last selection")
    chosen = selection.last()
    if chosen is None:
        st.caption(
            "No selection yet: in the Latent explorer, Shift + drag in either plane to lasso images (or draw a box "
            "with the box tool beside Reset zoom). The last selection is offered here as CSV and as a PNG sheet."
        )
        return
    models = selection.models_of(chosen)
    if isinstance(models, str):
        st.warning(f"The last selection cannot be exported: {models}.")
        return
    left, right = models
    count, subset = len(chosen["indices"]), chosen["subset"]
    stem = f"selection-{left.name}-{right.name}-{subset}-{count}"
    a, b = st.columns(2)
    a.download_button(
        "Download the selection (CSV)",
        data=lambda: selection.selection_csv(chosen, method),  # built on click: up to 70,000 rows
        file_name=f"{stem}.csv",
        mime="text/csv",
        on_click="ignore",
        key="exp_sel_csv",
        icon=":material/table:",
    )
    b.download_button(
        "Download the selection sheet (PNG)",
        selection.selection_sheet(chosen),
        file_name=f"{stem}.png",
        mime="image/png",
        on_click="ignore",
        key="exp_sel_png",
        icon=":material/image:",
    )
    st.caption(
        f"{count:,} of the {SUBSETS[subset]}, lassoed in the Latent explorer with {left.name} (left) and "
        f"{right.name} (right). CSV: index, label, left_z…, right_z…, then each plane's x, y (a D > 2 model in the "
        "view chosen above); the same file as the explorer's own download. Sheet: up to 100 of them sampled evenly, "
        "each as original | left decode | right decode of its code."
    )


def default_point(side: str, view: LatentView) -> tuple[float, float, str]:
    """Where to decode by default: the explorer's last click on this side, else the clicked image's point in
    this model's view, else test image #0."""
    click = st.session_state.get("ex_click")
    if isinstance(click, dict) and click.get("side") == side and click.get("x") is not None:
        return float(click["x"]), float(click["y"]), "the Latent explorer's last click"
    index = click.get("index") if isinstance(click, dict) else None
    if isinstance(index, int) and 0 <= index < len(view.embedding_):
        x, y = view.embedding_[index]
        return float(x), float(y), f"image #{index}, last clicked in the Latent explorer"
    x, y = view.embedding_[0]
    return float(x), float(y), "test image #0 (click in the Latent explorer to change it)"


def images(pair: state.Pair, subset: str, method: str) -> None:
    st.subheader("Decoded digits (PNG)")
    options = {"left": pair.left, "right": pair.right}
    click = st.session_state.get("ex_click")
    default_side = click.get("side") if isinstance(click, dict) and click.get("side") in options else "left"
    side = st.radio(
        "Model",
        list(options),
        index=list(options).index(default_side),
        horizontal=True,
        key="exp_side",
        format_func=lambda s: f"{options[s].name} ({s})",
    )
    stored = options[side]
    model, codes, view = load(stored, subset, method)
    digit_column, grid_column = st.columns(2)
    with digit_column:
        x0, y0, source = default_point(side, view)
        a, b, c = st.columns([1, 1, 1.4])
        # No keys: when the default moves (a new click, another model), the inputs follow it.
        x = a.number_input("x", value=round(x0, 3), step=0.1, format="%.3f")
        y = b.number_input("y", value=round(y0, 3), step=0.1, format="%.3f")
        scale = c.select_slider("Pixel size", SCALES, value=10, key="exp_scale")
        _, image = decode_at(model, view, float(x), float(y))
        png = export.digit_png(image, scale)
        st.image(png, caption=f"{stored.name} decodes ({x:.3f}, {y:.3f}); {28 * scale} × {28 * scale} px")
        st.download_button(
            f"Download {stored.name} digit (PNG)",
            png,
            file_name=f"{stored.name}-digit-{x:.2f}_{y:.2f}.png",
            mime="image/png",
            on_click="ignore",
            key="exp_digit",
            icon=":material/image:",
        )
        note = f"Default point: {source}."
        if codes.shape[1] > 2:
            note += (
                f" The point is in the {view.label} view; its {codes.shape[1]}-D code comes from the "
                "view's inverse, so it is approximate."
            )
        st.caption(note)
    with grid_column:
        n = st.slider("Grid size n", 5, 30, 15, key="exp_grid_n")
        extent = ClickGrid.covering(view.embedding_, n=2, margin=0.0)
        grid = manifold_grid(model, view, extent.x_range, extent.y_range, n)
        grid_scale = max(1, min(4, GRID_TARGET_PIXELS // (n * 29)))
        grid_png = export.grid_png(grid, n, scale=grid_scale)
        (x_lo, x_hi), (y_lo, y_hi) = extent.x_range, extent.y_range
        st.image(
            grid_png,
            width="stretch",
            caption=f"{stored.name}: {n} × {n} digits over x {x_lo:.2f}…{x_hi:.2f}, y {y_lo:.2f}…{y_hi:.2f} "
            f"(the whole {'plane' if codes.shape[1] == 2 else view.label + ' view'}), highest y on top",
        )
        st.download_button(
            f"Download {stored.name} manifold grid (PNG)",
            grid_png,
            file_name=f"{stored.name}-manifold-{n}x{n}.png",
            mime="image/png",
            on_click="ignore",
            key="exp_grid",
            icon=":material/image:",
        )


def shown_models(pair: state.Pair) -> dict:
    models = {pair.left.path: ("left", pair.left), pair.right.path: ("right", pair.right)}
    if pair.baseline is not None:
        models[pair.baseline.path] = ("baseline", pair.baseline)
    return models


def model_files(pair: state.Pair) -> None:
    st.subheader("Model files (zip)")
    st.caption(
        "Each zip holds the model's folder: `model.json` (config, training history, metrics, the SHA-256 of every "
        "file) and the weights as `.safetensors` (an imported model: its ONNX graphs). Unzip it into a models folder "
        "and load it with `vae.store.load_model(folder)`: loading it back never unpickles anything (safetensors holds "
        "raw tensors only, the rest is JSON), and every file is checked against its recorded SHA-256."
    )
    models = shown_models(pair)
    for column, (role, stored) in zip(st.columns(len(models)), models.values()):
        with column:
            try:
                data = analysis.model_zip(str(stored.path), stored.weights_sha256)
            except (export.ExportError, OSError) as error:
                st.error(f"{stored.name} cannot be exported: {error}")
                continue
            st.download_button(
                f"Download {stored.name} model (zip)",
                data,
                file_name=f"{stored.name}.zip",
                mime="application/zip",
                on_click="ignore",
                key=f"exp_zip_{role}",
                icon=":material/folder_zip:",
            )
            st.caption(f"{stored.config.describe()} · {len(data) / 1024:,.0f} KB")


def onnx_pairs(pair: state.Pair) -> None:
    st.subheader("ONNX encoder and decoder (zip)")
    st.caption(
        "`decoder.onnx` (`z` [B, D] → `image` [B, 1, 28, 28] in [0, 1]), `encoder.onnx` (`x` [B, 1, 28, 28] → "
        "`embedding` [B, D], and `logvar` for a VAE) and `onnx.json`, checked against the model with onnxruntime "
        "before they are offered. Run them anywhere onnxruntime runs, or import them back with `python -m vae.onnx "
        "import NAME-onnx/encoder.onnx NAME-onnx/decoder.onnx --out models/NAME`. The first download of a model "
        "exports it (a few seconds); later ones are file reads."
    )
    images, _ = cache.dataset(pair.left.dataset_name, "test", str(cache.data_dir()))
    models = shown_models(pair)
    for column, (role, stored) in zip(st.columns(len(models)), models.values()):
        model, _ = cache.model(str(stored.path), stored.weights_sha256)
        column.download_button(
            f"Download {stored.name} ONNX pair (zip)",
            file_name=f"{stored.name}-onnx.zip",
            mime="application/zip",
            # Exported on click, on a separate thread: plain calls on objects captured now.
            data=lambda m=model, s=stored: analysis.onnx_zip(m, s.name, s.weights_sha256, images),
            on_click="ignore",
            key=f"exp_onnx_{role}",
            icon=":material/deployed_code:",
        )


def static_site(pair: state.Pair, subset: str, method: str) -> None:
    st.subheader("The planes as a web page (zip)")
    st.caption(
        "Both planes as static files: unzip, then `python -m http.server -d DIR` or put the folder on GitHub "
        "Pages. Hovering decodes in the page; nothing needs this server. The same as `python -m vae.site export`."
    )
    views = tuple(method if m.config.latent_dim > 2 else None for m in (pair.left, pair.right))
    st.download_button(
        "Download the planes' web page (zip)",
        file_name=f"{pair.left.name}-{pair.right.name}-site.zip",
        mime="application/zip",
        # Exported on click, on a separate thread: plain values captured now.
        data=lambda: site.site_zip(
            str(pair.left.path),
            str(pair.right.path),
            subset,
            data_dir=cache.data_dir(),
            onnx_dir=cache.onnx_dir(),
            views=views,
        ),
        on_click="ignore",
        key="exp_site",
        icon=":material/public:",
    )


def render() -> None:
    state.page_frame()
    st.title("Exports")
    st.caption("Take the embeddings, decoded digits and the models themselves away. Pick the pair in the sidebar.")
    pair = state.pair_or_explain("Nothing to export yet")
    if pair is None:
        return
    a, b = st.columns(2)
    subset = a.radio("Points", list(SUBSETS), format_func=SUBSETS.get, key="ex_subset", horizontal=True)
    high_dim = max(pair.left.config.latent_dim, pair.right.config.latent_dim) > 2
    method = state.view_picker(
        b,
        high_dim,
        help="The x, y columns of a D > 2 embedding and the plane the digits are decoded from. "
        "Shared with the Latent explorer.",
    )
    embeddings(pair, subset, method)
    last_selection(method)
    images(pair, subset, method)
    model_files(pair)
    onnx_pairs(pair)
    static_site(pair, subset, method)


with state.guard():
    render()
