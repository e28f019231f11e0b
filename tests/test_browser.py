"""The explorer's server path in a real browser (Plotly planes, a click per decode, for browsers without
WebGL or WebAssembly): click empty space and a data point in each plane. The in-page planes are tested by
tests/test_browser_planes.py."""

from __future__ import annotations

import time

import pytest

from tests.browser import launch_chromium, shipped_dashboard
from tests.conftest import REPO

OUTPUT = REPO / "test-output"

# Page coordinates of a latent point (x, y) in the n-th plot, from plotly.js's own axis mapping.
TO_PAGE = """([n, x, y]) => {
    const gd = document.querySelectorAll('.js-plotly-plot')[n];
    const box = gd.querySelector('.nsewdrag').getBoundingClientRect();
    return [box.left + gd._fullLayout.xaxis.l2p(x), box.top + gd._fullLayout.yaxis.l2p(y)];
}"""
# The visible plane of the n-th plot, and one data point of class 3 in it.
PLANE = """(n) => {
    const gd = document.querySelectorAll('.js-plotly-plot')[n];
    const three = gd._fullData.find(t => t.name === '3');
    return {x: gd._fullLayout.xaxis.range, y: gd._fullLayout.yaxis.range,
            point: [three.x[0], three.y[0]], index: three.customdata[0]};
}"""
# src of the image whose caption contains `text`, or null.
IMAGE_SRC = """(text) => {
    for (const fig of document.querySelectorAll('[data-testid="stImage"], .stImage')) {
        const caption = fig.innerText || '';
        if (caption.includes(text)) { const img = fig.querySelector('img'); if (img) return img.src; }
    }
    for (const img of document.querySelectorAll('img')) {
        const holder = img.closest('div');
        if (holder && holder.parentElement && holder.parentElement.innerText.includes(text)) return img.src;
    }
    return null;
}"""


def click(page, n: int, x: float, y: float) -> None:
    px, py = page.evaluate(TO_PAGE, [n, x, y])
    # plotly.js selects the point it is hovering: glide in and let the hover settle before clicking.
    page.mouse.move(px, py, steps=6)
    page.wait_for_timeout(250)
    page.mouse.click(px, py)


def wait_for_image(page, caption: str, not_src: str | None = None, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        src = page.evaluate(IMAGE_SRC, caption)
        if src and src != not_src:
            return src
        page.wait_for_timeout(100)
    pytest.fail(f"no new image captioned {caption!r} within {timeout} s")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with shipped_dashboard(tmp_path_factory.mktemp("browser"), VAE_PLANES="server") as url:
        yield url


def test_click_anywhere_decodes_and_a_point_links_both_planes(server) -> None:
    from playwright.sync_api import sync_playwright

    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1300})
            page.goto(f"{server}/explorer")
            page.wait_for_function(
                "document.querySelectorAll('.js-plotly-plot .nsewdrag').length >= 2", timeout=120_000
            )
            page.wait_for_function(
                "[...document.querySelectorAll('.js-plotly-plot')].filter(gd => gd._fullLayout).length >= 2"
            )
            for n, name in enumerate(("ae-2d", "vae-2d")):
                plane = page.evaluate(PLANE, n)
                (x0, x1), (y0, y1) = plane["x"], plane["y"]
                # Two spots of empty space near opposite corners of the visible plane.
                click(page, n, x0 + 0.06 * (x1 - x0), y1 - 0.06 * (y1 - y0))
                first = wait_for_image(page, f"{name} decodes")
                click(page, n, x1 - 0.08 * (x1 - x0), y0 + 0.08 * (y1 - y0))
                second = wait_for_image(page, f"{name} decodes", not_src=first)
                assert first != second  # two places in the plane decode to two different digits
            # A data point in the left plane: the original image and both reconstructions appear.
            plane = page.evaluate(PLANE, 0)
            click(page, 0, *plane["point"])
            wait_for_image(page, f"image #{plane['index']}")
            wait_for_image(page, "vae-2d reconstruction")
            # The same image is ringed in the right plane (linked selection).
            page.wait_for_function(
                """(label) => {
                    const gd = document.querySelectorAll('.js-plotly-plot')[1];  // absent mid-rerun
                    return !!(gd && gd._fullData) && gd._fullData.some(
                        t => t.name === label || (t.text && String(t.text).includes(label)));
                }""",
                arg=f"#{plane['index']}",
                timeout=30_000,
            )
            page.wait_for_timeout(500)
            page.screenshot(path=str(OUTPUT / "explorer-server.png"), full_page=True)
        finally:
            browser.close()
    assert (OUTPUT / "explorer-server.png").stat().st_size > 10_000
