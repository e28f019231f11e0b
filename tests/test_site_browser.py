"""The exported static site in Chromium, served by http.server with every other request blocked."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.browser import block_other_hosts, chromium_browser, require_browser
from tests.conftest import REAL_RAW, REPO
from vae import site

OUTPUT = REPO / "test-output"


@pytest.fixture(scope="module")
def browser():
    require_browser()
    if not (REAL_RAW / "t10k-images-idx3-ubyte").is_file():
        pytest.skip("MNIST not fetched")
    with chromium_browser() as b:
        yield b


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # the test's output is the asserts'
        pass


@functools.cache
def _served(folder: str):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=folder))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def open_site(browser, folder: Path):
    """A page on the site at ``folder``; returns (page, server, requests to other hosts)."""
    server = _served(str(folder))
    origin = f"127.0.0.1:{server.server_address[1]}"
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    outside = block_other_hosts(page, origin)
    page.goto(f"http://{origin}/index.html")
    page.wait_for_function("globalThis.latentExplorer && globalThis.latentExplorer.ready", timeout=60_000)
    return page, server, outside


def pixels(page, side: str) -> np.ndarray:
    raw = page.evaluate(
        """(id) => Array.from(document.querySelector(`canvas[data-testid=${id}]`)
              .getContext('2d').getImageData(0, 0, 28, 28).data)""",
        f"decoded-{side}",
    )
    return np.asarray(raw, dtype=np.uint8).reshape(28, 28, 4)[..., 0]


def hover_empty(page, side: str, fx: float, fy: float) -> None:
    spot = page.evaluate(f"globalThis.latentExplorer.probe.empty('{side}', {fx}, {fy})")
    assert spot is not None
    px, py = page.evaluate(f"globalThis.latentExplorer.probe.client('{side}', {spot[0]}, {spot[1]})")
    page.mouse.move(px, py, steps=4)
    page.wait_for_timeout(300)


@pytest.fixture(scope="module")
def pair_site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "pair"
    site.export("ae-2d", "vae-2d", out, onnx_dir=out.parent / "onnx")
    return out


def test_planes_draw_and_hover_decodes_offline(browser, pair_site):
    page, _, outside = open_site(browser, pair_site)
    try:
        for side in ("left", "right"):
            assert page.evaluate(f"globalThis.latentExplorer.probe.count('{side}')") == 10_000
        # Hovering empty space decodes there, in each plane: two spots, two different digits.
        for side in ("left", "right"):
            hover_empty(page, side, 0.25, 0.25)
            first = pixels(page, side)
            hover_empty(page, side, 0.75, 0.75)
            second = pixels(page, side)
            assert first.max() > 0 and second.max() > 0, side
            assert np.abs(first.astype(int) - second.astype(int)).max() > 30, side
        # The shipped metrics stand in for the server's: each model's epoch count, read from its model.json.
        rows = page.locator("table[data-testid=metrics] tr")
        assert rows.count() > 1
        manifest = json.loads((pair_site / "manifest.json").read_text())
        epochs = page.locator("table[data-testid=metrics] tr", has_text="epochs_completed").locator("td")
        assert epochs.all_inner_texts()[1:] == [str(p["metrics"]["epochs_completed"]) for p in manifest["planes"]]
        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUTPUT / "site.png"), full_page=True)
        assert outside == []
    finally:
        page.close()


def test_two_clicked_points_make_a_decoded_strip(browser, pair_site):
    page, _, outside = open_site(browser, pair_site)
    try:
        for index in (3, 11):
            x, y = page.evaluate(f"globalThis.latentExplorer.probe.point('left', {index})")
            px, py = page.evaluate(f"globalThis.latentExplorer.probe.client('left', {x}, {y})")
            page.mouse.click(px, py)
            page.wait_for_function("globalThis.latentExplorer.ready", timeout=20_000)
        strip = page.locator("canvas[data-testid=strip-right]")
        strip.wait_for(timeout=20_000)
        page.wait_for_timeout(500)
        grey = np.asarray(
            strip.evaluate("c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, 28).data)"), dtype=np.uint8
        ).reshape(28, -1, 4)[..., 0]
        assert grey.shape[1] == 28 * 10
        first, last = grey[:, :28].astype(int), grey[:, -28:].astype(int)
        assert grey.max() > 100 and np.abs(first - last).max() > 30
        assert outside == []
    finally:
        page.close()


def test_16d_models_decode_through_their_pca_view(browser, tmp_path):
    out = tmp_path / "d16"
    site.export("ae-16d", "vae-16d", out, onnx_dir=tmp_path / "onnx")
    page, _, outside = open_site(browser, out)
    try:
        hover_empty(page, "right", 0.3, 0.3)
        first = pixels(page, "right")
        hover_empty(page, "right", 0.7, 0.7)
        second = pixels(page, "right")
        assert np.abs(first.astype(int) - second.astype(int)).max() > 30
        assert "PC1" in page.locator(".axes").first.text_content()
        assert outside == []
    finally:
        page.close()


def test_the_manifold_grid_decodes_in_the_page(browser, pair_site):
    page, _, outside = open_site(browser, pair_site)
    try:
        page.get_by_test_id("grid-toggle").check()
        for side in ("left", "right"):
            grid = page.locator(f"canvas[data-testid=grid-{side}]")
            grid.wait_for(timeout=20_000)
            page.wait_for_function(
                "(id) => { const c = document.querySelector(`canvas[data-testid=${id}]`);"
                " return c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some((v, i) => i % 4 === 0 && v > 100); }",
                arg=f"grid-{side}",
                timeout=20_000,
            )
            # 15 x 15 digits of 28 x 28 pixels: the dashboard's default size.
            assert grid.evaluate("c => [c.width, c.height]") == [15 * 28, 15 * 28]
        page.get_by_test_id("grid-toggle").uncheck()
        page.locator("canvas[data-testid=grid-left]").wait_for(state="detached", timeout=20_000)
        assert outside == []
    finally:
        page.close()
