"""A selection in the explorer, in Chromium, as a person makes it: a Shift + drag lasso in the AE's plane
selects exactly the points a point-in-polygon on the same embedding finds (matplotlib's Path), both planes
draw it, nothing goes to the server while the lasso is drawn and one message when it ends; the server's
neighbourhood figures come back; the CSV made in the page parses and matches; select() and selection()
round trip; Escape and a click on empty space clear; zooming in turns dots into images; a link keeps the zoom.
"""

from __future__ import annotations

import csv
import io
import math
import time

import numpy as np
import pytest
from matplotlib.path import Path as PolygonPath

from tests.browser import chromium_browser, shipped_dashboard
from tests.conftest import REPO
from vae.data import load_mnist

OUTPUT = REPO / "test-output"
VIEWPORT = {"width": 1600, "height": 1000}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with shipped_dashboard(tmp_path_factory.mktemp("selection")) as url:
        yield url


@pytest.fixture(scope="module")
def browser(server):
    with chromium_browser() as browser:
        yield browser


class Page:
    def __init__(self, browser, url: str) -> None:
        self.context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
        self.page = self.context.new_page()
        self.sent: list[float] = []
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("websocket", lambda ws: ws.on("framesent", lambda _: self.sent.append(time.monotonic())))
        self.page.goto(url)
        self.page.wait_for_function("globalThis.latentExplorer && globalThis.latentExplorer.ready", timeout=180_000)
        self.page.wait_for_timeout(300)

    def probe(self, method: str, *args):
        return self.page.evaluate(f"(args) => globalThis.latentExplorer.probe.{method}(...args)", list(args))

    def selection(self) -> list[int]:
        return self.page.evaluate("globalThis.latentExplorer.selection()")

    def lasso(self, side: str, vertices: list[tuple[float, float]], modifier: str = "Shift") -> None:
        """Drag the pointer through ``vertices`` (data units) with ``modifier`` held, closing the loop."""
        mouse, keyboard = self.page.mouse, self.page.keyboard
        points = [self.probe("client", side, x, y) for x, y in vertices]
        mouse.move(*points[0])
        keyboard.down(modifier)
        mouse.down()
        for px, py in points[1:] + points[:1]:
            mouse.move(px, py, steps=4)
        mouse.up()
        keyboard.up(modifier)

    def wait_sent(self, above: int, timeout: float = 10) -> int:
        """Wait until more than ``above`` WebSocket frames were sent (the page's message to the server)."""
        deadline = time.monotonic() + timeout
        while len(self.sent) <= above and time.monotonic() < deadline:
            self.page.wait_for_timeout(100)
        return len(self.sent)

    def close(self) -> None:
        assert not self.errors, self.errors
        self.context.close()


@pytest.fixture()
def explorer(browser, server):
    page = Page(browser, f"{server}/explorer")
    yield page
    page.close()


def circle(cx: float, cy: float, r: float, n: int = 14) -> list[tuple[float, float]]:
    return [(cx + r * math.cos(2 * math.pi * k / n), cy + r * math.sin(2 * math.pi * k / n)) for k in range(n)]


def test_a_lasso_selects_what_point_in_polygon_finds_and_both_planes_follow(explorer) -> None:
    embedding = np.asarray(explorer.probe("embedding", "left"), dtype=np.float64).reshape(-1, 2)
    centre = np.median(embedding, axis=0)
    spread = np.median(np.linalg.norm(embedding - centre, axis=1))
    vertices = circle(*centre, 0.8 * spread)
    explorer.page.wait_for_timeout(500)
    before = len(explorer.sent)
    # A first lasso that half overlaps the second, for the Shift-adds check below.
    explorer.lasso("left", circle(centre[0] + 0.8 * spread, centre[1], 0.5 * spread, n=8))
    first = explorer.selection()
    assert explorer.wait_sent(before) > before  # the lasso's end reached the server
    explorer.page.wait_for_timeout(1000)  # and its rerun came back

    # The drawing itself sends nothing: count frames between the press and the last move.
    mouse, keyboard = explorer.page.mouse, explorer.page.keyboard
    points = [explorer.probe("client", "left", x, y) for x, y in vertices]
    mouse.move(*points[0])
    keyboard.down("Shift")
    mouse.down()
    during = len(explorer.sent)
    for px, py in points[1:] + points[:1]:
        mouse.move(px, py, steps=4)
    explorer.page.wait_for_timeout(300)
    assert len(explorer.sent) == during, "frames were sent while the lasso was drawn"
    mouse.up()
    keyboard.up("Shift")
    assert explorer.wait_sent(during) > during

    polygon = np.asarray(explorer.probe("lastPolygon"), dtype=np.float64).reshape(-1, 2)
    # The page's polygon is where the pointer went: within a pixel of the drawn vertices.
    pixel = 2 * explorer.probe("view", "left")["half"] / explorer.probe("box", "left")["width"]
    for x, y in vertices:
        assert np.min(np.hypot(polygon[:, 0] - x, polygon[:, 1] - y)) < 1.5 * pixel
    inside = set(np.flatnonzero(PolygonPath(polygon).contains_points(embedding)).tolist())
    selected = explorer.selection()
    assert len(inside) > 200
    assert set(selected) == inside | set(first)  # Shift adds to what the first lasso selected
    assert set(first) - inside, "the first lasso should reach outside the second, or the union proves nothing"
    assert explorer.probe("drawnSelection", "left") == selected
    assert explorer.probe("drawnSelection", "right") == selected

    # The counts above the planes and the server's neighbourhood figures for each model.
    summary = explorer.page.get_by_test_id("selection-summary").inner_text()
    assert f"Selected {len(selected):,} of 10,000" in summary
    bars = explorer.page.locator("[data-testid=class-bars] .class-bar")
    counts = [int(bars.nth(k).get_attribute("data-count")) for k in range(10)]
    labels = np.asarray(explorer.probe("labels", "left"))
    assert counts == np.bincount(labels[selected], minlength=10).tolist()
    for side in ("left", "right"):
        mix = explorer.page.get_by_test_id(f"mix-{side}")
        mix.wait_for(timeout=30_000)
        deadline = time.monotonic() + 30
        while "selected too" not in mix.inner_text() and time.monotonic() < deadline:
            explorer.page.wait_for_timeout(200)
        assert "selected too" in mix.inner_text()
    OUTPUT.mkdir(exist_ok=True)
    explorer.page.screenshot(path=str(OUTPUT / "selection.png"))

    # The CSV made in the page: one row per selected image, its label, the AE's 2-D code is its plane position.
    with explorer.page.expect_download() as download:
        explorer.page.get_by_test_id("selection-csv").click()
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    assert [int(r["index"]) for r in rows] == selected
    for r in rows[:: max(1, len(rows) // 40)]:
        i = int(r["index"])
        assert int(r["label"]) == explorer.probe("label", "left", i)
        x, y = explorer.probe("point", "left", i)
        assert float(r["left_x"]) == pytest.approx(x, rel=1e-6, abs=1e-6)
        assert float(r["left_z1"]) == pytest.approx(x, rel=1e-6, abs=1e-6)  # ae-2d's view is its code
        assert float(r["right_y"]) == pytest.approx(explorer.probe("point", "right", i)[1], rel=1e-6, abs=1e-6)

    # Alt + drag takes the same region away again, leaving the first lasso's part outside it.
    explorer.lasso("left", vertices, modifier="Alt")
    explorer.page.wait_for_timeout(300)
    remaining = set(explorer.selection())
    polygon = np.asarray(explorer.probe("lastPolygon"), dtype=np.float64).reshape(-1, 2)
    removed = set(np.flatnonzero(PolygonPath(polygon).contains_points(embedding)).tolist())
    assert remaining == (inside | set(first)) - removed
    # Escape clears.
    explorer.page.keyboard.press("Escape")
    assert explorer.selection() == []
    assert explorer.probe("drawnSelection", "right") == []


def test_select_and_selection_round_trip_and_a_click_on_empty_space_clears(explorer) -> None:
    explorer.page.evaluate("globalThis.latentExplorer.select([5, 17, 300, 9999])")
    assert explorer.selection() == [5, 17, 300, 9999]
    assert explorer.probe("drawnSelection", "left") == [5, 17, 300, 9999]
    with pytest.raises(Exception, match="not one of the 10000 images"):
        explorer.page.evaluate("globalThis.latentExplorer.select([10000])")
    assert explorer.selection() == [5, 17, 300, 9999]  # a refused call changes nothing
    empty = explorer.probe("empty", "left", 0.95, 0.05)
    assert empty is not None
    sent = len(explorer.sent)
    explorer.page.mouse.click(*explorer.probe("client", "left", *empty))
    assert explorer.selection() == []
    assert explorer.wait_sent(sent) > sent  # the server learns the selection is gone


def test_a_legend_chip_with_alt_selects_its_class(explorer) -> None:
    explorer.page.locator(".legend-item[data-class='3']").click(modifiers=["Alt"])
    selected = explorer.selection()
    assert len(selected) > 500
    assert {explorer.probe("label", "left", i) for i in selected[::20]} == {3}


def test_zoomed_in_the_points_become_images_and_the_link_keeps_the_zoom(explorer, browser, server) -> None:
    assert explorer.probe("thumbnails", "left") == 0
    embedding = np.asarray(explorer.probe("embedding", "left"), dtype=np.float64).reshape(-1, 2)
    target = np.median(embedding, axis=0)
    explorer.page.mouse.move(*explorer.probe("client", "left", *target))
    for _ in range(14):
        explorer.page.mouse.wheel(0, -400)
        explorer.page.wait_for_timeout(60)
    explorer.page.wait_for_timeout(400)
    shown = explorer.probe("thumbnails", "left")
    assert 0 < shown <= 600
    view = explorer.probe("view", "left")
    x0, x1, y0, y1 = (
        view["cx"] - view["half"],
        view["cx"] + view["half"],
        view["cy"] - view["half"],
        view["cy"] + view["half"],
    )
    visible = np.sum(
        (embedding[:, 0] >= x0) & (embedding[:, 0] <= x1) & (embedding[:, 1] >= y0) & (embedding[:, 1] <= y1)
    )
    assert shown == visible  # every point in view is drawn as its image
    assert explorer.probe("thumbnails", "right") == 0  # the other plane was not zoomed
    explorer.page.wait_for_timeout(500)
    url = explorer.page.url
    assert "#zoom_left=" in url and "zoom_right=" not in url  # in the fragment: see zoom_link.js
    again = Page(browser, url)
    try:
        restored = again.probe("view", "left")
        for key in ("cx", "cy", "half"):
            assert restored[key] == pytest.approx(view[key], rel=1e-4, abs=1e-6)
        assert again.probe("thumbnails", "left") == shown
    finally:
        again.close()


def test_a_link_reopens_the_models_view_pin_and_zoom_in_a_new_browser(explorer, browser, server) -> None:
    link = f"{server}/explorer?left=ae-16d&right=vae-16d&view=pca&pin_left=5&pin_right=5#zoom_right=0.5,-0.25,1.5"
    again = Page(browser, link)
    try:
        assert again.probe("titles") == ["ae-16d", "vae-16d"]
        assert "PCA view of 16-D" in again.page.locator(".plane-title").first.inner_text()
        assert again.probe("view", "right") == {"cx": 0.5, "cy": -0.25, "half": 1.5}
        captions = again.page.locator(".readout .caption")
        assert "reconstructs #5 (pinned)" in captions.first.inner_text()
        # The address keeps naming what is shown, the zoom after the '#'.
        again.page.wait_for_timeout(600)
        assert "left=ae-16d" in again.page.url and "#zoom_right=" in again.page.url
    finally:
        again.close()


def test_the_pinned_images_neighbours_and_the_png_sheet(explorer) -> None:
    from PIL import Image

    from vae.selection import even_sample, nearest

    # Pin image 42 by clicking it; both 2-D models' planes are their codes, so the neighbours are checkable.
    explorer.page.mouse.click(*explorer.probe("client", "left", *explorer.probe("point", "left", 42)))
    explorer.page.get_by_test_id("neighbours-left").wait_for(timeout=30_000)
    for side in ("left", "right"):
        row = explorer.page.get_by_test_id(f"neighbours-{side}")
        codes = np.asarray(explorer.probe("embedding", side), dtype=np.float64).reshape(-1, 2)
        pinned = int(row.get_attribute("data-pinned"))
        expected, _ = nearest(codes, pinned, k=8)
        assert [int(i) for i in row.get_attribute("data-indices").split(",")] == expected.tolist()
    explorer.page.evaluate("globalThis.latentExplorer.select(Array.from({length: 150}, (_, i) => 11 * i))")
    with explorer.page.expect_download() as download:
        explorer.page.get_by_test_id("selection-sheet").click()
    sheet = Image.open(download.value.path())
    # 100 of the 150, ten to a row, each as the original and both reconstructions.
    assert sheet.size == (10 * (3 * 28 + 6), 16 + 10 * (28 + 12))
    pixels = np.asarray(sheet.convert("L"))
    images, _ = load_mnist("test", REPO / "data")
    np.testing.assert_array_equal(pixels[28:56, 0:28], images[0].numpy())  # the first original, image 0
    eleventh = int(even_sample(11 * np.arange(150), 100)[10])  # the second row's first: the server's pick too
    np.testing.assert_array_equal(pixels[16 + 40 + 12 : 16 + 40 + 40, 0:28], images[eleventh].numpy())
    assert pixels[28:56, 28:84].std() > 20  # the reconstructions are drawn, not blank
