"""A drawing canvas for the "Your digit" page: a small Streamlit custom component (components v2).

Its files are ``static/components/digit_canvas/`` (see ``app.frontend``). Why not
``streamlit-drawable-canvas``: its 0.13.0 release declares file-backed assets that Streamlit 1.67 refuses to
register unless the app's own ``pyproject.toml`` declares them, and older releases rely on Streamlit
internals that have moved. Fifty lines of canvas code (``static/lib/pen.js``, shared with the live pad) have
no such dependency.

The component draws white strokes on a black 280 x 280 canvas (MNIST's polarity, ten times its size) and,
at the end of each stroke, reports the picture as a PNG data URL; "Clear" reports ``None``.
"""

from __future__ import annotations

import base64

from app import frontend

SIZE = 280
_PNG_PREFIX = "data:image/png;base64,"
# A 280 x 280 PNG of strokes is a few kB; anything far larger did not come from this canvas.
MAX_DATA_URL = 2_000_000


def png_from_data_url(url: object) -> bytes | None:
    """The PNG bytes inside the canvas's data URL; None for no drawing or anything that is not one."""
    if not isinstance(url, str) or not url.startswith(_PNG_PREFIX) or len(url) > MAX_DATA_URL:
        return None
    try:
        return base64.b64decode(url[len(_PNG_PREFIX) :], validate=True)
    except ValueError:
        return None


def draw(key: str, brush: int = 18) -> bytes | None:
    """Show the canvas; returns the last finished drawing as PNG bytes, or None before the first stroke."""
    data = {"brush": brush, "modules": {"pen": frontend.module_url("lib/pen.js")}}
    result = frontend.component("digit_canvas")(
        key=key, data=data, default={"drawing": None}, on_drawing_change=lambda: None
    )
    return png_from_data_url(getattr(result, "drawing", None))
