"""Your digit: draw a digit or upload a picture of one, see it prepared as MNIST was, where it lands, and
how each model redraws it."""

from __future__ import annotations

import numpy as np
import streamlit as st

from app import cache, canvas, state, web_planes, your_digit
from app.views import chosen_view, plane_title
from vae.digits import MAX_BYTES, ImageRejected, digit_from_upload
from vae.explore import embed_and_redraw
from vae.export import digit_png
from vae.images import to_uint8_image, upscale
from vae.plots.scatter import overlay_traces, with_overlays

ACCEPTED = ["png", "jpg", "jpeg", "gif", "bmp", "webp"]


@st.cache_data(max_entries=16, show_spinner=False)
def prepared(data: bytes) -> np.ndarray:
    """Uploaded bytes -> MNIST-style float32 ``[28, 28]``; raises ImageRejected with the reason."""
    return digit_from_upload(data)


def where_it_lands(pair: state.Pair, digit: np.ndarray, source: str) -> None:
    subset, data = "test", str(cache.data_dir())
    method = st.session_state.get("ex_view", "pca")
    columns = st.columns(2)
    for column, stored in zip(columns, (pair.left, pair.right), strict=True):
        model, _ = cache.model(str(stored.path), stored.weights_sha256)
        code, redrawn = embed_and_redraw(model, digit)
        view_name = chosen_view(method, code.shape[0])
        view = cache.view(str(stored.path), stored.weights_sha256, subset, data, view_name)
        point = view.transform(code[None])[0]
        title = plane_title(stored, view.label, code.shape[0])
        base = cache.base_figure(str(stored.path), stored.weights_sha256, subset, data, view_name, title)
        mark = {"point": (float(point[0]), float(point[1])), "label": "your digit", "kind": "cross"}
        with column:
            st.plotly_chart(
                with_overlays(base, overlay_traces(highlight=mark)),
                key=f"{source}_{stored.name}",
                theme=None,
                width="stretch",
            )
            st.image(
                upscale(to_uint8_image(redrawn), 6),
                output_format="PNG",
                caption=f"{stored.name} redraws it · {your_digit.code_caption(code, point)}",
            )


def show(pair: state.Pair, data: bytes, name: str, source: str, in_browser: bool = False) -> None:
    """Prepare ``data`` (image file bytes) as MNIST was, then show where it lands and both redraws: in the
    page as a drawing is (``in_browser``), or on the server's planes."""
    try:
        digit = prepared(data)
    except ImageRejected as reason:
        st.error(f"{name} cannot be used: {reason}.")
        return
    if in_browser:
        your_digit.place(pair, digit)
        return
    left, right = st.columns([1, 3])
    left.image(upscale(to_uint8_image(digit), 6), output_format="PNG", caption="as MNIST would store it")
    right.markdown(
        "The cross marks where each model's encoder puts it among the 10,000 test images; below each plane, what "
        "its decoder draws from that code. A digit that lands inside its class's cloud and comes back "
        "recognisable looks like MNIST to the model."
    )
    where_it_lands(pair, digit, source)


def live(pair: state.Pair) -> None:
    """The pad in the page: both markers and redraws follow the pen; the server keeps the finished drawing."""
    drawing = your_digit.draw(pair)
    if drawing is None:
        return
    try:
        digit = prepared(drawing)
    except ImageRejected as reason:
        st.error(f"The drawing cannot be used: {reason}.")
        return
    st.download_button(
        "Download it as MNIST would store it (28 x 28 PNG)",
        digit_png(digit, scale=1),
        "my-digit.png",
        mime="image/png",
        key="digit_download",
    )


def render() -> None:
    state.page_frame()
    st.title("Your digit")
    st.caption(
        "Draw a digit, or upload a photo, scan or drawing of one. It is prepared as MNIST's digits were: grey "
        "levels, cropped, scaled into a 20 x 20 box and centred by its centre of mass in 28 x 28, light ink on black."
    )
    pair = state.pair_or_explain()
    if pair is None:
        return
    in_browser = web_planes.enabled()
    draw_tab, upload_tab = st.tabs(["Draw", "Upload"])
    with draw_tab:
        if in_browser:
            live(pair)
        else:
            drawing = canvas.draw("digit_canvas")
            if drawing is None:
                st.info("Draw one digit with the mouse (or a finger): it lands in both planes when you lift it.")
            else:
                show(pair, drawing, "The drawing", "drawn")
    with upload_tab:
        upload = st.file_uploader(
            f"A picture of a digit ({', '.join(ACCEPTED)}; up to {MAX_BYTES // 2**20} MB)",
            type=ACCEPTED,
            key="digit_upload",
            max_upload_size=MAX_BYTES // 2**20,
        )
        if upload is None:
            st.info("Dark ink on light paper or light ink on dark both work; transparent backgrounds count as paper.")
        else:
            show(pair, upload.getvalue(), upload.name, "uploaded", in_browser)


with state.guard():
    render()
