"""The holes layer in Chromium: switched on, each plane's background is the judge's verdict on what the plane
decodes to over the visible region (the page's decoder, then the judge, both in the page), redrawn after a
zoom; its confident cells per class match torch's decoder and judge on the same grid; the server's share of
each plane's data region arrives beside it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.browser import chromium_browser, shipped_dashboard
from tests.conftest import REPO
from vae import judge as judges
from vae.explore import decode_codes
from vae.store import load_model

OUTPUT = REPO / "test-output"
CELLS = 24  # static/components/latent_planes/explorer.js HOLES_CELLS


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with shipped_dashboard(tmp_path_factory.mktemp("holes")) as url:
        yield url


@pytest.fixture(scope="module")
def browser(server):
    with chromium_browser() as browser:
        yield browser


def torch_classes(name: str, extent: list[float]) -> np.ndarray:
    """Confident cells per class of the same grid, decoded and judged by torch: ``[10]``."""
    model, _ = load_model(REPO / "models" / name)
    x0, x1, y0, y1 = extent
    xs = x0 + (np.arange(CELLS) + 0.5) / CELLS * (x1 - x0)
    ys = y1 - (np.arange(CELLS) + 0.5) / CELLS * (y1 - y0)
    codes = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype(np.float32)  # a 2-D model: the plane
    images = torch.from_numpy(decode_codes(model, codes)).unsqueeze(1)
    probabilities = judges.load("mnist").predict_proba(images).numpy()
    confident = probabilities.max(1) >= 0.9
    return np.bincount(probabilities.argmax(1)[confident], minlength=10)


def test_the_holes_layer_is_the_judges_verdict_and_follows_the_zoom(browser, server) -> None:
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{server}/explorer")
    page.wait_for_function("globalThis.latentExplorer && globalThis.latentExplorer.ready", timeout=180_000)
    probe = lambda method, *args: page.evaluate(  # noqa: E731
        f"(args) => globalThis.latentExplorer.probe.{method}(...args)", list(args)
    )
    assert probe("holes", "left")["drawn"] == 0
    page.get_by_test_id("holes").click()
    page.wait_for_function("globalThis.latentExplorer.probe.holes('left').drawn > 0", timeout=120_000)
    page.wait_for_function("globalThis.latentExplorer.probe.holes('right').drawn > 0", timeout=120_000)
    for side, name in (("left", "ae-2d"), ("right", "vae-2d")):
        holes = probe("holes", side)
        page_classes = np.array(holes["classes"])
        expected = torch_classes(name, holes["extent"])
        assert page_classes.sum() > 100  # most of the home view decodes to some digit
        assert np.abs(page_classes - expected).sum() <= 0.02 * CELLS * CELLS, (page_classes, expected)
    # The server's share of each data region, beside the layer.
    page.wait_for_function(
        "globalThis.latentExplorer.probe.holes('left').note.includes('% of this plane')", timeout=120_000
    )
    assert "confident digit" in probe("holes", "right")["note"]
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "holes.png"))
    # A zoom redraws the map over the new region.
    before = probe("holes", "left")
    box = probe("box", "left")
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    for _ in range(3):
        page.mouse.wheel(0, -400)
        page.wait_for_timeout(50)
    page.wait_for_function(f"globalThis.latentExplorer.probe.holes('left').drawn > {before['drawn']}", timeout=60_000)
    page.wait_for_timeout(1500)
    after = probe("holes", "left")
    assert after["extent"][1] - after["extent"][0] < 0.8 * (before["extent"][1] - before["extent"][0])
    # Off: the layer goes.
    page.get_by_test_id("holes").click()
    assert probe("holes", "left")["drawn"] == 0
    assert not errors, errors
    page.close()
