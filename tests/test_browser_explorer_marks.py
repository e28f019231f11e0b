"""The explorer's marks in Chromium (issue 24, items 3, 5, 6 and 7): nothing of the old model left after a
model change, clicked images become the interpolation's ends and stay ringed, the strip's slider steps image
by image from the keyboard, and posterior ellipses are seen at the default zoom with what their size means.

Driven as tests/test_browser_planes.py drives the page (its ``Explorer``), through globalThis.latentExplorer.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.browser import chromium_browser, shipped_dashboard
from tests.test_browser_planes import OUTPUT, Explorer


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with shipped_dashboard(tmp_path_factory.mktemp("marks")) as url:
        yield url


@pytest.fixture(scope="module")
def browser(server):
    with chromium_browser() as browser:
        yield browser


@pytest.fixture
def explorer(browser, server):
    page = Explorer(browser, server).ready()
    yield page
    assert page.errors == [], page.errors
    page.close()


def strip_title(explorer: Explorer) -> str:
    return explorer.page.locator(".strip-title").inner_text()


def wait_strip_title(explorer: Explorer, text: str, timeout: float = 60) -> None:
    """Poll: the component lives in a shadow root, where document.querySelector does not look."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and text not in strip_title(explorer):
        explorer.page.wait_for_timeout(100)
    assert text in strip_title(explorer)


def click_point(explorer: Explorer, side: str, index: int) -> None:
    """Click data point ``index`` of ``side``'s plane and wait for the rerun it causes to reach the page."""
    x, y = explorer.probe("point", side, index)
    explorer.hover(side, x, y)
    explorer.wait_caption(side, f"reconstructs #{index}")
    px, py = explorer.probe("client", side, x, y)
    explorer.page.mouse.click(px, py)


def press(explorer: Explorer, key: str, times: int = 1) -> None:
    slider = explorer.page.locator("input[data-testid=scrub]")
    slider.focus()
    for _ in range(times):
        slider.press(key)


def test_the_slider_steps_image_by_image_from_the_keyboard(explorer) -> None:
    assert explorer.page.locator("input[data-testid=scrub]").get_attribute("max") == "9"  # ten images, one step each
    label = explorer.page.locator("[data-testid=scrub-value]")
    press(explorer, "ArrowRight", 3)
    assert label.inner_text() == "t = 0.33 (image 4 of 10)"
    explorer.wait_caption("left", "at t = 0.33 on the path")
    explorer.wait_caption("right", "at t = 0.33 on the path")
    press(explorer, "End")
    assert label.inner_text() == "t = 1.00 (image 10 of 10)"
    explorer.wait_caption("right", "at t = 1.00 on the path")
    press(explorer, "ArrowLeft")
    assert label.inner_text().startswith("t = 0.89")
    # The dot sits on the path's own point for that image.
    path = explorer.page.evaluate("globalThis.latentExplorer.probe.markers('left')")
    assert [m["kind"] for m in path] == ["dot"]


def test_a_model_change_leaves_no_marks_of_the_old_model(explorer) -> None:
    press(explorer, "ArrowRight", 3)
    explorer.wait_caption("left", "at t = 0.33 on the path")
    assert [m["kind"] for m in explorer.probe("markers", "left")] == ["dot"]
    assert explorer.pixels("decoded-left").max() > 100  # a digit is shown
    page = explorer.page
    combo = page.get_by_role("combobox", name="Left model", exact=True)
    page.locator('[data-testid="stSelectbox"]').filter(has=combo).first.get_by_role("button", name="Open").click()
    page.get_by_role("option").filter(has_text="ae-16d").first.click()
    page.wait_for_function(
        "globalThis.latentExplorer.ready && globalThis.latentExplorer.probe.titles().join(' ').includes('ae-16d')",
        timeout=240_000,
    )
    page.mouse.move(5, 990)  # off the planes, as after picking in the sidebar
    page.wait_for_timeout(500)
    assert page.locator("input[data-testid=scrub]").input_value() == "0"
    assert page.locator("[data-testid=scrub-value]").inner_text().startswith("t = 0.00")
    for side in ("left", "right"):
        assert explorer.probe("markers", side) == [], side  # no dot left off the new path
        assert explorer.caption(side) == "Hover anywhere in the plane to decode there."
        assert explorer.pixels(f"decoded-{side}").max() == 0, side  # and no old digit under that caption
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "issue24-item3.png"))


def test_the_last_two_clicked_images_are_the_interpolation_ends(explorer) -> None:
    assert "centroid of 0 → centroid of 1" in strip_title(explorer)
    page = explorer.page
    click_point(explorer, "left", 5)
    wait_strip_title(explorer, "→ clicked image #5")
    assert "centroid of 0 → clicked image #5" in strip_title(explorer)  # one click: it is To
    explorer.ready()
    click_point(explorer, "left", 9)
    wait_strip_title(explorer, "clicked image #5 → clicked image #9")
    explorer.ready()
    for side in ("left", "right"):
        labels = [r["label"] for r in explorer.probe("rings", side)]
        assert "#5 (from)" in labels and "#9 (to)" in labels, (side, labels)  # the earlier pin stays ringed
    chosen = [
        page.locator('[data-testid="stSelectbox"]').filter(has=page.get_by_role("combobox", name=end, exact=True))
        for end in ("From", "To")
    ]
    assert [c.first.get_by_role("combobox").input_value() for c in chosen] == [
        "clicked image #5",
        "clicked image #9 (latest)",
    ]
    # The strip now runs from one image's code to the other's: its first and last images differ.
    strip = page.locator("canvas[data-testid=strip-left]").evaluate(
        "c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, 28).data)"
    )
    tiles = np.array(strip, dtype=int).reshape(28, -1, 4)[:, :, 0]
    first, last = tiles[:, :28], tiles[:, -28:]
    assert np.abs(first - last).max() > 60


def test_posterior_ellipses_are_seen_at_the_default_zoom(explorer) -> None:
    click_point(explorer, "right", 3)
    explorer.page.wait_for_function(
        "globalThis.latentExplorer.ready && globalThis.latentExplorer.probe.ellipses('right').radii.length > 0",
        timeout=60_000,
    )
    explorer.ready()
    click_point(explorer, "right", 9)  # a second image: both posteriors are drawn
    explorer.page.wait_for_function(
        "globalThis.latentExplorer.ready && globalThis.latentExplorer.probe.ellipses('right').radii.length > 1",
        timeout=60_000,
    )
    explorer.ready()
    ellipses = explorer.probe("ellipses", "right")
    assert min(min(r) for r in ellipses["radii"]) >= 12  # CSS pixels: seen without zooming, around the ring
    assert ellipses["magnification"] > 1  # the VAE's posteriors are a pixel or two across at true size
    assert f"Drawn ×{ellipses['magnification']}" in ellipses["note"] and "mean ± 1σ" in ellipses["note"]
    assert explorer.probe("ellipses", "left")["radii"] == []  # an AE has no posterior
    OUTPUT.mkdir(exist_ok=True)
    explorer.page.mouse.move(5, 990)
    explorer.page.wait_for_timeout(300)
    explorer.page.screenshot(path=str(OUTPUT / "issue24-item7.png"))
    # Zoomed in far enough, they are drawn at their true size and the note says so.
    box = explorer.probe("box", "right")
    cx, cy = explorer.probe("client", "right", *explorer.probe("point", "right", 3))
    explorer.page.mouse.move(cx, cy)
    for _ in range(12):
        explorer.page.mouse.wheel(0, -400)
        explorer.page.wait_for_timeout(80)
    explorer.page.wait_for_timeout(400)
    zoomed = explorer.probe("ellipses", "right")
    assert zoomed["magnification"] < ellipses["magnification"] and box["width"] > 0
