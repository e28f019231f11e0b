"""Inside the latent space, in Chromium: a slider move decodes in the page what torch decodes for the same
code and finds the nearest real test image the server would, a traversal's range redraws its rows, and
Resample draws new samples, none of it sending anything to the server.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from tests.browser import chromium_browser, shipped_dashboard
from tests.conftest import REPO
from vae.data import load_mnist
from vae.metrics import embed_images
from vae.store import load_model

OUTPUT = REPO / "test-output"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with shipped_dashboard(tmp_path_factory.mktemp("inside")) as url:
        yield url


@pytest.fixture(scope="module")
def browser(server):
    with chromium_browser() as browser:
        yield browser


def open_inside(browser, url: str):
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    sent: list[float] = []
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("websocket", lambda ws: ws.on("framesent", lambda _: sent.append(time.monotonic())))
    page.goto(url)
    page.wait_for_function("globalThis.latentInside?.probes?.dimensions", timeout=180_000)
    page.wait_for_timeout(500)
    return page, sent, errors


def probe(page, method: str, *args, mode: str = "dimensions"):
    return page.evaluate(f"(args) => globalThis.latentInside.probes.{mode}.{method}(...args)", list(args))


def wait_count(page, side: str, what: str, above: int, mode: str = "dimensions", timeout: float = 60_000) -> None:
    page.wait_for_function(f"globalThis.latentInside.probes.{mode}?.counts('{side}').{what} > {above}", timeout=timeout)


def test_sliders_and_traversals_decode_in_the_page_as_torch_does(browser, server) -> None:
    page, sent, errors = open_inside(browser, f"{server}/inside")
    before = probe(page, "counts", "left")
    assert before["traversals"] >= 1 and before["sliders"] >= 1
    frames = len(sent)
    slider = page.get_by_test_id("slider-left-0")
    slider.focus()
    for _ in range(25):
        page.keyboard.press("ArrowRight")
    wait_count(page, "left", "sliders", before["sliders"])
    page.wait_for_timeout(300)
    code = np.array(probe(page, "code", "left"), dtype=np.float32)
    pixels = np.array(probe(page, "pixels", "left"), dtype=np.float32)
    model, _ = load_model(REPO / "models" / "ae-2d")
    with torch.no_grad():
        expected = model.decode(torch.from_numpy(code[None])).numpy().reshape(-1)
    np.testing.assert_allclose(pixels, expected, atol=2e-3)
    # The nearest real test image in the latent space, as NumPy finds it on the model's own codes.
    images, _ = load_mnist("test", REPO / "data")
    codes = embed_images(model, images).numpy()
    assert probe(page, "nearest", "left") == int(np.argmin(np.linalg.norm(codes - code, axis=1)))
    # The traversal's range redraws every row.
    drawn = probe(page, "counts", "right")["traversals"]
    page.get_by_test_id("range").fill("0.5")
    wait_count(page, "right", "traversals", drawn)
    assert len(sent) == frames, "the page sent frames while sliders and traversals moved"
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "inside-dimensions.png"), full_page=True)
    assert not errors, errors
    page.close()


def test_resample_draws_new_samples_in_the_page(browser, server) -> None:
    page, sent, errors = open_inside(browser, f"{server}/inside")
    page.get_by_role("tab", name="Samples").click()
    page.get_by_test_id("resample").wait_for(timeout=60_000)
    wait_count(page, "left", "samples", 0, mode="samples")
    canvas = page.get_by_test_id("samples-left")
    shown = canvas.screenshot()
    frames = len(sent)
    page.get_by_test_id("resample").click()
    wait_count(page, "left", "samples", 1, mode="samples")
    assert canvas.screenshot() != shown
    assert len(sent) == frames
    # The VAE samples its prior: the page's draws have the spread of N(0, 1).
    draws = np.array(probe(page, "sampleCodes", "right", 7, mode="samples"))
    assert draws.shape == (8,) and np.all(np.abs(draws) < 6)
    assert not errors, errors
    page.close()


def test_the_16d_pair_has_a_slider_per_dimension_and_inactive_ones_marked(browser, server) -> None:
    from vae.metrics import latent_dimensions

    # The pair is the sidebar's, shared by every page: chosen by a link to the explorer, then the menu.
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{server}/explorer?left=ae-16d&right=vae-16d&view=pca")
    page.wait_for_function("globalThis.latentExplorer && globalThis.latentExplorer.ready", timeout=180_000)
    page.get_by_role("link", name="Inside the latent space").click()
    page.wait_for_function(
        "globalThis.latentInside?.probes?.dimensions?.counts('right').sliders > 0",
        timeout=180_000,
    )
    page.wait_for_timeout(800)
    for side in ("left", "right"):
        assert page.locator(f"[data-testid^='slider-{side}-']").count() == 16
    # The VAE's inactive dimensions (Burda et al.'s test on the test images) are the rows marked inactive.
    images, _ = load_mnist("test", REPO / "data")
    model, _ = load_model(REPO / "models" / "vae-16d")
    inactive = int((~latent_dimensions(model, images)["active"]).sum())
    marked = page.locator(".inside-side").nth(1).locator(".traversal-label.inactive")
    page.get_by_test_id("all-dimensions").check()
    page.wait_for_timeout(1500)
    assert marked.count() == inactive
    # Sorted by KL, largest first: the inactive ones (KL near 0) are the last rows.
    labels = page.locator(".inside-side").nth(1).locator(".traversal-label").all_inner_texts()
    assert all("inactive" in label for label in labels[-inactive:]) and "inactive" not in labels[0]
    OUTPUT.mkdir(exist_ok=True)
    page.locator(".inside").first.screenshot(path=str(OUTPUT / "inside-dimensions-16d.png"))
    assert not errors, errors
    page.close()
