"""The Your digit page's drawing pad in the browser: both encoders and decoders run in the page, so while a
person draws, both markers move and both redraws follow each stroke.

The page sends Python the drawing at the end of each stroke (a PNG, as the server-side canvas does), for
what needs the server: the MNIST-style file to download.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from app import cache, canvas, frontend, state, web_planes
from app.views import chosen_view, plane_title
from vae.data import class_names
from vae.plots.palette import DIGIT_COLORS
from vae.web import fence_spec

COMPONENT = "your_digit"
KEY = "your_digit"
UPLOAD_KEY = "your_digit_upload"


def _on_support() -> None:
    support = (st.session_state.get(KEY) or {}).get("support")
    if isinstance(support, dict):
        st.session_state[web_planes.SUPPORT_KEY] = support


def plane(side: str, stored, method: str) -> dict[str, Any]:
    """What the pad needs of one model: its encoder, decoder, the test points and the view."""
    path, sha, data = str(stored.path), stored.weights_sha256, str(cache.data_dir())
    dim = stored.config.latent_dim
    view_name = chosen_view(method, dim)
    assets = web_planes.plane_files(path, sha, "test", data, view_name)
    title = plane_title(stored, cache.view(path, sha, "test", data, view_name).label, dim)
    return {
        "side": side,
        "name": stored.name,
        "title": title,
        **{k: v for k, v in assets.items() if k != "files"},
        **fence_spec(stored),
    }


def _data(pair: state.Pair, brush: int) -> dict[str, Any]:
    method = st.session_state.get("ex_view", "pca")
    return {
        "modules": {"digit": frontend.module_url("components/your_digit/digit.js")},
        "runtime": web_planes.runtime_urls(),
        "palette": list(DIGIT_COLORS),
        "classes": list(class_names(pair.left.dataset_name)),
        "brush": brush,
        "planes": [plane(side, stored, method) for side, stored in (("left", pair.left), ("right", pair.right))],
    }


def draw(pair: state.Pair, brush: int = 18) -> bytes | None:
    """The live pad for ``pair``; returns the last finished drawing as PNG bytes, or None before the first."""
    result = frontend.component(COMPONENT)(
        key=KEY,
        data=_data(pair, brush),
        default={"drawing": None, "support": None},
        on_drawing_change=lambda: None,
        on_support_change=_on_support,
    )
    return canvas.png_from_data_url(getattr(result, "drawing", None))


def place(pair: state.Pair, digit: np.ndarray) -> None:
    """An uploaded picture, prepared on the server (float32 ``[28, 28]`` in [0, 1]), shown as a drawing is:
    the same component without its pad, so both models encode and redraw it in the page."""
    if digit.shape != (28, 28):
        raise ValueError(f"digit must be [28, 28]; got {digit.shape}")
    data = {**_data(pair, 18), "digit": np.round(digit.astype(float).ravel(), 4).tolist()}
    frontend.component(COMPONENT)(
        key=UPLOAD_KEY,
        data=data,
        default={"drawing": None, "support": None},
        on_drawing_change=lambda: None,
        on_support_change=_on_support,
    )


def code_caption(code: np.ndarray, point: tuple[float, float]) -> str:
    """What the page's digit.js writes under a redraw: the code for D > 2 (the plane shows a view of it),
    the place in the plane for D = 2."""
    if code.shape[0] > 2:
        return "code: [" + ", ".join(f"{v:.2f}" for v in code) + "]"
    return f"code ({point[0]:.2f}, {point[1]:.2f})"
