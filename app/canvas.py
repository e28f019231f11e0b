"""A drawing canvas for the "Your digit" page: a small Streamlit custom component (components v2, inline).

Why not ``streamlit-drawable-canvas``: its 0.13.0 release declares file-backed assets that Streamlit 1.67
refuses to register unless the app's own ``pyproject.toml`` declares them, and older releases rely on
Streamlit internals that have moved. Forty lines of canvas code have no such dependency.

The component draws white strokes on a black 280 x 280 canvas (MNIST's polarity, ten times its size) and,
at the end of each stroke, reports the picture as a PNG data URL; "Clear" reports ``None``.
"""

from __future__ import annotations

import base64
import functools

import streamlit as st

SIZE = 280
_PNG_PREFIX = "data:image/png;base64,"
# A 280 x 280 PNG of strokes is a few kB; anything far larger did not come from this canvas.
MAX_DATA_URL = 2_000_000

HTML = f"""
<div class="digit-canvas">
  <canvas width="{SIZE}" height="{SIZE}" aria-label="drawing canvas: draw one digit"></canvas>
  <button type="button">Clear</button>
</div>
"""

CSS = """
.digit-canvas { display: flex; flex-direction: column; align-items: flex-start; gap: 0.4rem; }
.digit-canvas canvas { background: #000; border-radius: 6px; cursor: crosshair; touch-action: none; }
.digit-canvas button { font: inherit; padding: 0.2rem 0.9rem; border-radius: 6px; border: 1px solid #bbb;
                       background: var(--st-background-color, #fff); color: var(--st-text-color, #000); cursor: pointer; }
"""

JS = """
export default function (component) {
  const { setStateValue, parentElement, data } = component;
  const canvas = parentElement.querySelector("canvas");
  // Called again on every rerun: set up once, or each rerun would wipe the drawing and add listeners.
  if (canvas.dataset.ready) return;
  canvas.dataset.ready = "1";
  const ctx = canvas.getContext("2d");
  const clear = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height); };
  clear();
  ctx.strokeStyle = "#fff";
  ctx.fillStyle = "#fff";
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.lineWidth = (data && data.brush) || 18;
  let last = null;
  const at = (event) => {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
  };
  canvas.addEventListener("pointerdown", (event) => {
    canvas.setPointerCapture(event.pointerId);
    last = at(event);
    ctx.beginPath();
    ctx.arc(last[0], last[1], ctx.lineWidth / 2, 0, 2 * Math.PI);
    ctx.fill();
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!last) return;
    const next = at(event);
    ctx.beginPath();
    ctx.moveTo(last[0], last[1]);
    ctx.lineTo(next[0], next[1]);
    ctx.stroke();
    last = next;
  });
  const finish = () => {
    if (!last) return;
    last = null;
    setStateValue("drawing", canvas.toDataURL("image/png"));
  };
  canvas.addEventListener("pointerup", finish);
  canvas.addEventListener("pointercancel", finish);
  parentElement.querySelector("button").addEventListener("click", () => {
    clear();
    ctx.fillStyle = "#fff";
    setStateValue("drawing", null);
  });
}
"""


@functools.cache
def _component():
    """Registered on first use, not at import: importing a module should not change Streamlit's registry."""
    return st.components.v2.component("digit_canvas", html=HTML, css=CSS, js=JS)


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
    result = _component()(key=key, data={"brush": brush}, default={"drawing": None}, on_drawing_change=lambda: None)
    return png_from_data_url(getattr(result, "drawing", None))
