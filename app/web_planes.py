"""The explorer's planes in the browser: each model's decoder runs in the page, so hovering decodes there.

Python hands the page small JSON and a few URLs (``app.frontend.publish``: content-addressed files), once
per model, view and subset:

- the decoder as ONNX (``vae.onnx.export.pair_for``: exported once per weights and checked against torch);
- the points: the view's embedding float32 ``[N, 2]``, the codes float32 ``[N, D]`` (for the view's inverse
  and the reconstructions of data points), the labels uint8 ``[N]``, in one file;
- the images uint8 ``[N, 784]`` of the subset, once per dataset, for the originals of hovered points;
- for an imported model, ``fenced: true`` (:func:`fence_spec`): the page runs its graphs in a worker with a
  watchdog (``static/lib/fence.js``), not on its own thread as it runs the project's exports.

The page sends Python two things, each one rerun: a click (a trigger), which pins a point, and the
selection when a lasso or box ends (state: a bit per point, ``pack_mask``), which the session keeps for the
neighbourhoods in all D dimensions and the Exports page (``app.selection``).
"""

from __future__ import annotations

import base64
import functools
import os
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from app import cache, frontend, holes, selection, vendor
from app.explorer import SIDES, Interpolation, Options, Plane, end_images, record_click, smoothness_caption
from vae.data import class_names
from vae.explore import posterior_2d
from vae.models import to_float_images
from vae.onnx.export import CHECK_BATCH, pair_for
from vae.plots.palette import DIGIT_COLORS
from vae.plots.scatter import ClickGrid
from vae.web import fence_spec, pack_points, view_spec

COMPONENT = "latent_planes"
KEY = "planes"
SUPPORT_KEY = "web_planes_support"  # what the page reported when it could not run the planes
# VAE_PLANES=server starts every session on the server's planes (the toggle still switches): for the
# benchmarks and tests of that path.
PLANES_ENV = "VAE_PLANES"


@functools.cache
def _vendor_checked() -> bool:
    """Checked once per process: hashing 14 MB on every rerun would cost more than the decode it enables."""
    return all(vendor.is_current(item) for item in vendor.FILES)


def enabled(container=st.sidebar) -> bool:
    """Whether this run draws the planes in the browser; says why not where it cannot."""
    support = st.session_state.get(SUPPORT_KEY)
    if support is not None and not support.get("ok", True):
        missing = " and ".join(support.get("missing") or ["what the planes need"])
        container.warning(f"This browser lacks {missing}, so the server draws the planes and decodes each click.")
        return False
    if not _vendor_checked():
        container.warning(
            "The in-page decoders' runtime (onnxruntime-web) is missing from static/vendor: run `make setup`. "
            "Until then the server draws the planes and decodes each click."
        )
        return False
    # The session holds the choice (dashboard.py re-assigns it on every run, so it survives page switches); a
    # default passed to the widget as well would make Streamlit warn that two sources set it.
    if "ex_browser" not in st.session_state:
        st.session_state["ex_browser"] = os.environ.get(PLANES_ENV, "browser") != "server"
    return container.toggle(
        "Decode in the browser",
        key="ex_browser",
        help="On: each model's decoder runs in this page, so hovering decodes at once and sends nothing to the "
        "server. Off: the server draws the planes (Plotly) and decodes each click.",
    )


@st.cache_resource(max_entries=16, show_spinner="Preparing the decoder for the page (once per model)…")
def plane_assets(path: str, weights_sha256: str, subset: str, directory: str, method: str) -> dict[str, Any]:
    """The files and numbers the page needs for one plane; the export happens once per weights."""
    model, stored = cache.model(path, weights_sha256)
    test_images, _ = cache.dataset(stored.dataset_name, "test", directory)
    pair = pair_for(stored, model, cache.onnx_exports(), images=to_float_images(test_images[:CHECK_BATCH]))
    decoder_url, decoder_file = frontend.publish(pair.decoder.read_bytes(), "onnx")
    encoder_url, encoder_file = frontend.publish(pair.encoder.read_bytes(), "onnx")
    view = cache.view(path, weights_sha256, subset, directory, method)
    codes = cache.embedding(path, weights_sha256, subset, directory)
    _, labels = cache.model_data(path, weights_sha256, subset, directory)
    points_url, points_file = frontend.publish(pack_points(view.embedding_, codes, labels.numpy()), "points")
    extent = ClickGrid.square(view.embedding_, n=2)
    return {
        "decoder": decoder_url,
        "encoder": encoder_url,
        "points": points_url,
        "count": int(codes.shape[0]),
        "dim": int(codes.shape[1]),
        "view": view_spec(view),
        "extent": [*extent.x_range, *extent.y_range],
        "axis_labels": list(view.axis_labels()),
        "files": [str(decoder_file), str(encoder_file), str(points_file)],
    }


@st.cache_resource(max_entries=4, show_spinner="Packing the images for the page…")
def images_asset(dataset: str, subset: str, directory: str) -> dict[str, Any]:
    images, _ = cache.dataset(dataset, subset, directory)
    url, file = frontend.publish(images.numpy().astype(np.uint8).tobytes(), "images")
    return {"url": url, "count": int(len(images)), "files": [str(file)]}


def _published(cached, *args) -> dict[str, Any]:
    """``cached(*args)``, made again when one of its published files has gone (``static/cache`` cleaned)."""
    assets = cached(*args)
    if not all(Path(f).is_file() for f in assets["files"]):
        cached.clear(*args)
        assets = cached(*args)
    return assets


def plane_files(path: str, weights_sha256: str, subset: str, directory: str, method: str) -> dict[str, Any]:
    """:func:`plane_assets`, with every file it names on disk."""
    return _published(plane_assets, path, weights_sha256, subset, directory, method)


def images_files(dataset: str, subset: str, directory: str) -> dict[str, Any]:
    """:func:`images_asset`, with its file on disk."""
    return _published(images_asset, dataset, subset, directory)


def page_can_decode() -> bool:
    """Whether this session's pages may decode in the browser: the runtime is vendored, the browser reported
    nothing missing, and the person has not switched "Decode in the browser" off (on the explorer)."""
    support = st.session_state.get(SUPPORT_KEY)
    if support is not None and not support.get("ok", True):
        return False
    return _vendor_checked() and st.session_state.get("ex_browser", os.environ.get(PLANES_ENV, "browser") != "server")


def runtime_urls() -> dict[str, str]:
    module, wasm = (frontend.static_url(f"vendor/{item.dest}") for item in vendor.FILES)
    return {"module": module, "wasm": wasm}


def plane_payload(plane: Plane, options: Options, images, path: Interpolation | None) -> dict[str, Any]:
    assets = plane_files(
        str(plane.stored.path), plane.stored.weights_sha256, options.subset, str(cache.data_dir()), plane.view.name
    )
    is_2d_vae = plane.stored.config.kind == "vae" and plane.exact
    history = st.session_state["ex_history"]
    ellipses = []
    if options.ellipses and is_2d_vae and history:
        means, sigmas = posterior_2d(plane.model, images[history])
        ellipses = np.concatenate([means, sigmas], axis=1).astype(float).tolist()
    pin = st.session_state["ex_pins"].get(plane.side)
    decor = {
        "prior": bool(options.prior and is_2d_vae),
        "ellipses": ellipses,
        "path": path.path.astype(float).tolist() if path is not None else None,
        "pin": pin["point"] if pin and pin["kind"] == "spot" else None,
    }
    return {
        "side": plane.side,
        "name": plane.stored.name,
        "title": plane.title,
        "kind": plane.stored.config.kind,
        "exact": plane.exact,
        "approximate": plane.approximate_note,
        **{k: v for k, v in assets.items() if k != "files"},
        **fence_spec(plane.stored),
        "decor": decor,
        "interpolation": {"codes": path.codes.astype(float).tolist()} if path is not None else None,
    }


def _on_click() -> None:
    event = (st.session_state.get(KEY) or {}).get("click")
    if not isinstance(event, dict) or event.get("side") not in SIDES:
        return
    try:
        x, y = float(event["x"]), float(event["y"])
        index = event.get("index")
        index = None if index is None else int(index)
    except (KeyError, TypeError, ValueError):
        return  # not what the page sends: ignore rather than fail the run
    if not (np.isfinite(x) and np.isfinite(y)) or (index is not None and index < 0):
        return
    record_click(event["side"], x, y, index)


def pack_mask(indices: np.ndarray, count: int) -> str:
    """Selected indices ``[S]`` of ``count`` points -> the page's form: a bit per point, most significant
    first (``np.packbits``), base64 (``static/lib/selection.js`` ``packMask``); '' for none."""
    if len(indices) == 0:
        return ""
    mask = np.zeros(count, dtype=bool)
    mask[np.asarray(indices, dtype=np.int64)] = True
    return base64.b64encode(np.packbits(mask).tobytes()).decode("ascii")


def unpack_mask(text: str, count: int) -> np.ndarray:
    """The page's selection -> ascending indices ``[S]`` (int64); ValueError when it is not ``count``
    points' worth of bits (a page of another subset, or not what the page sends)."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (ValueError, TypeError) as error:
        raise ValueError(f"a selection must be base64; {error}") from None
    if len(raw) != (count + 7) // 8:
        raise ValueError(f"a selection of {count} points needs {(count + 7) // 8} bytes, got {len(raw)}")
    return np.flatnonzero(np.unpackbits(np.frombuffer(raw, dtype=np.uint8), count=count)).astype(np.int64)


def page_selection(planes: dict[str, Plane], options: Options) -> dict[str, Any] | None:
    """Take what the page selected (when it changed there) into the session, and give the page what the
    session holds for these models and subset: ``{count, mask, stats}`` (the neighbourhoods per side)."""
    sent = (st.session_state.get(KEY) or {}).get("selection")
    left, right = planes["left"], planes["right"]
    count = int(left.codes.shape[0])
    dataset = left.stored.dataset_name
    if isinstance(sent, dict) and sent.get("mask") != st.session_state.get("ex_selection_sent"):
        st.session_state["ex_selection_sent"] = sent.get("mask")
        try:
            indices = unpack_mask(str(sent.get("mask") or ""), count) if sent.get("mask") else np.empty(0, np.int64)
        except ValueError:
            indices = None  # not for this subset (the page had other points): keep what the session has
        if indices is not None and len(indices):
            selection.remember(dataset, options.subset, left.stored.name, right.stored.name, indices.tolist())
        elif indices is not None:
            selection.clear()
    last = selection.last()
    if not last or last["dataset"] != dataset or last["subset"] != options.subset:
        return None
    indices = np.asarray(last["indices"], dtype=np.int64)
    if len(indices) == 0 or indices.max() >= count:
        return None
    return {
        "count": count,
        "mask": pack_mask(indices, count),
        "stats": selection.stats(planes, indices, options.subset),
    }


def _judge_url(dataset: str) -> str | None:
    graph = holes.judge_graph(dataset)
    if graph is not None and not all(Path(f).is_file() for f in graph["files"]):
        holes.judge_graph.clear(dataset)
        graph = holes.judge_graph(dataset)
    return graph["url"] if graph else None


def _holes(dataset: str, planes: dict[str, Plane], options: Options) -> dict[str, Any]:
    """Once the page has switched the holes layer on (its "holes" state): the judge's graph and each plane's
    confident share (``holes`` empty when the dataset has no judge); before that, neither (no export, no
    measuring for a layer nobody asked for)."""
    if not (st.session_state.get(KEY) or {}).get("holes"):
        return {"judge": None, "holes": None}
    url = _judge_url(dataset)
    if url is None:
        return {"judge": None, "holes": {}}
    directory = str(cache.data_dir())
    shares = {
        side: holes.share(str(p.stored.path), p.stored.weights_sha256, options.subset, directory, p.view.name)
        for side, p in planes.items()
    }
    return {"judge": url, "holes": shares}


def _declared() -> None:
    """A state the page sets and the run reads itself: nothing to do before the run."""


def _on_support() -> None:
    support = (st.session_state.get(KEY) or {}).get("support")
    if isinstance(support, dict):
        st.session_state[SUPPORT_KEY] = support


def explorer(planes: dict[str, Plane], options: Options, paths: dict[str, Interpolation], images) -> None:
    """Both planes in the page, the decoded digits beside them, the interpolation strips below."""
    dataset = next(iter(planes.values())).stored.dataset_name
    image_assets = images_files(dataset, options.subset, str(cache.data_dir()))
    selected = st.session_state["ex_selected"]
    pins = st.session_state["ex_pins"]
    first = next(iter(paths.values()), None)
    data = {
        "modules": {"explorer": frontend.module_url("components/latent_planes/explorer.js")},
        "runtime": runtime_urls(),
        "palette": list(DIGIT_COLORS),
        "classes": list(class_names(dataset)),
        "images": {"url": image_assets["url"], "count": image_assets["count"]},
        "planes": [plane_payload(plane, options, images, paths.get(side)) for side, plane in planes.items()],
        "selected": selected,
        "pins": {side: pins.get(side) for side in planes},
        "grid": {"n": options.grid_n} if options.grid else None,
        "selection": page_selection(planes, options),
        **_holes(dataset, planes, options),
        # The clicked images that are From and To: ringed in both planes while they are ends.
        "interpolation": {"from": first.start, "to": first.end, "images": end_images()} if first else None,
        "hint": "Hover anywhere: each plane's decoder runs in this page. Hover a point for its image and both "
        "reconstructions; click to pin it. The last two clicked images are the interpolation's ends (From and "
        "To in the sidebar pick others).",
    }
    frontend.component(COMPONENT)(
        key=KEY,
        data=data,
        default={"support": None, "selection": None, "holes": False},
        on_click_change=_on_click,
        on_support_change=_on_support,
        # Read during the run (page_selection, which knows the planes); declared so the page may set it.
        on_selection_change=_declared,
        on_holes_change=_declared,
    )
    if paths:
        st.caption(smoothness_caption(planes, paths))
