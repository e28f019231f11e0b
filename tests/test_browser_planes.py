"""The explorer's in-page planes in Chromium: hover decodes in the page and sends nothing, a point shows its
original and both reconstructions, a click reaches Python and pins, zoom moves the grid, and the page needs
nothing but the local server. Pixels are compared with what Python computes for the same codes and images.
"""

from __future__ import annotations

import base64
import io
import time

import numpy as np
import pytest
import torch
from PIL import Image

from tests.browser import chromium_browser, shipped_dashboard
from tests.conftest import REPO
from vae.data import load_mnist
from vae.images import to_uint8_image
from vae.metrics import embed_images
from vae.store import load_model

OUTPUT = REPO / "test-output"
VIEWPORT = {"width": 1600, "height": 1000}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with shipped_dashboard(tmp_path_factory.mktemp("planes")) as url:
        yield url


@pytest.fixture(scope="module")
def browser(server):
    with chromium_browser() as browser:
        yield browser


class Explorer:
    """One page on /explorer with its WebSocket frames counted from the start."""

    def __init__(self, browser, server, context_setup=None) -> None:
        self.context = browser.new_context(viewport=VIEWPORT)
        if context_setup:
            context_setup(self.context)
        self.page = self.context.new_page()
        self.sent: list[float] = []
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("websocket", lambda ws: ws.on("framesent", lambda _: self.sent.append(time.monotonic())))
        self.page.goto(f"{server}/explorer")

    def ready(self, timeout: float = 180_000) -> Explorer:
        self.page.wait_for_function("globalThis.latentExplorer && globalThis.latentExplorer.ready", timeout=timeout)
        self.page.wait_for_timeout(300)
        return self

    def probe(self, method: str, *args):
        return self.page.evaluate(f"(args) => globalThis.latentExplorer.probe.{method}(...args)", list(args))

    def hover(self, side: str, x: float, y: float) -> None:
        px, py = self.probe("client", side, x, y)
        self.page.mouse.move(px, py, steps=4)

    def caption(self, side: str) -> str:
        return self.page.locator(f"[data-testid=plane-{side}] ~ .readout .caption").first.inner_text()

    def wait_caption(self, side: str, text: str, timeout: float = 10_000) -> str:
        deadline = time.monotonic() + timeout / 1000
        while time.monotonic() < deadline:
            caption = self.caption(side)
            if text in caption:
                return caption
            self.page.wait_for_timeout(30)
        pytest.fail(f"{side}: no caption with {text!r} (last: {self.caption(side)!r})")

    def pixels(self, testid: str) -> np.ndarray:
        """The grey levels of a 28 x 28 canvas of the page, as uint8 [28, 28]."""
        url = self.page.locator(f"canvas[data-testid={testid}]").evaluate("c => c.toDataURL('image/png')")
        image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")
        return np.asarray(image)[:, :, 0].copy()

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def explorer(browser, server):
    page = Explorer(browser, server).ready()
    yield page
    assert page.errors == [], page.errors
    page.close()


def test_hovering_empty_space_decodes_in_the_page_and_sends_nothing(explorer) -> None:
    model_left, _ = load_model(REPO / "models" / "ae-2d")
    explorer.page.wait_for_timeout(1000)
    sent_before = len(explorer.sent)
    seen = {}
    for side in ("left", "right"):
        for corner in ((0.1, 0.12), (0.88, 0.85)):
            x, y = explorer.probe("empty", side, *corner)
            explorer.hover(side, x, y)
            caption = explorer.wait_caption(side, f"decodes ({x:.2f}, {y:.2f})")
            assert "(approximate)" not in caption  # a 2-D latent decodes exactly where the pointer is
            seen[(side, corner)] = (explorer.pixels(f"decoded-{side}"), (x, y))
        (a, _), (b, _) = seen[(side, (0.1, 0.12))], seen[(side, (0.88, 0.85))]
        assert np.abs(a.astype(int) - b.astype(int)).max() > 60  # two places, two different digits
    assert len(explorer.sent) == sent_before, "hovering sent messages to the server"
    # What the page drew is what the model decodes there (the same float32 code, rounded alike).
    pixels, (x, y) = seen[("left", (0.88, 0.85))]
    with torch.no_grad():
        expected = to_uint8_image(model_left.decode(torch.tensor([[x, y]], dtype=torch.float32))[0, 0].numpy())
    assert np.abs(pixels.astype(int) - expected.astype(int)).max() <= 2


def test_hovering_a_point_shows_its_image_both_reconstructions_and_its_place_in_the_other_plane(explorer) -> None:
    images, labels = load_mnist("test", REPO / "data")
    index = 0
    explorer.hover("left", *explorer.probe("point", "left", index))
    explorer.wait_caption("left", f"reconstructs #{index}")
    explorer.wait_caption("right", f"reconstructs #{index}")
    original = explorer.page.locator("[data-testid=plane-left] ~ .readout .original-box").first
    assert f"image #{index} ({labels[index].item()})" in original.inner_text()
    np.testing.assert_array_equal(explorer.pixels("original-left"), images[index].numpy())
    for side, name in (("left", "ae-2d"), ("right", "vae-2d")):
        model, _ = load_model(REPO / "models" / name)
        with torch.no_grad():
            x = images[index : index + 1].float().div(255).unsqueeze(1)
            expected = to_uint8_image(model.reconstruct(x)[0, 0].numpy())
        assert np.abs(explorer.pixels(f"decoded-{side}").astype(int) - expected.astype(int)).max() <= 2
    # The other plane rings the same image, at that image's own code there.
    ring = explorer.page.locator("[data-testid=plane-right] canvas.plane-hover").evaluate(
        "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; }"
    )
    assert ring > 20


def test_a_click_reaches_python_and_pins_the_point(explorer) -> None:
    index = 5
    x, y = explorer.probe("point", "right", index)
    explorer.hover("right", x, y)
    explorer.wait_caption("right", f"reconstructs #{index}")
    explorer.page.wait_for_timeout(500)
    sent = len(explorer.sent)
    px, py = explorer.probe("client", "right", x, y)
    explorer.page.mouse.click(px, py)
    explorer.page.wait_for_function("globalThis.latentExplorer.ready")
    deadline = time.monotonic() + 30
    # Move off the planes: each side then shows what Python says is pinned.
    explorer.page.mouse.move(5, 990)
    while time.monotonic() < deadline and "(pinned)" not in explorer.caption("left"):
        explorer.page.wait_for_timeout(100)
    assert len(explorer.sent) > sent  # the click went to the server
    assert f"reconstructs #{index} (pinned)" in explorer.caption("left")
    assert f"reconstructs #{index} (pinned)" in explorer.caption("right")
    sidebar = explorer.page.locator("[data-testid=stSidebar]").inner_text()
    assert "Interpolate between" in sidebar


def test_zoom_moves_the_manifold_grid_and_the_legend_hides_a_class(explorer) -> None:
    explorer.page.get_by_text("Manifold grid", exact=True).click()
    grid = explorer.page.locator("canvas[data-testid=grid-left]")
    grid.wait_for(timeout=60_000)
    explorer.page.wait_for_function("() => true")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and int(grid.get_attribute("data-drawn") or 0) < 1:
        explorer.page.wait_for_timeout(100)
    before_count = int(grid.get_attribute("data-drawn"))
    before = grid.evaluate("c => c.toDataURL()")
    box = explorer.page.locator("[data-testid=plane-left] canvas.plane-hover").bounding_box()
    explorer.page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.6)
    for _ in range(4):
        explorer.page.mouse.wheel(0, -300)  # zoom in
        explorer.page.wait_for_timeout(120)
    while time.monotonic() < deadline and int(grid.get_attribute("data-drawn")) == before_count:
        explorer.page.wait_for_timeout(100)
    explorer.page.wait_for_timeout(500)
    assert int(grid.get_attribute("data-drawn")) > before_count
    assert grid.evaluate("c => c.toDataURL()") != before
    points = explorer.page.locator("[data-testid=plane-right] canvas.plane-points")
    shown = points.screenshot()
    explorer.page.locator("button.legend-item[data-class='1']").click()
    explorer.page.wait_for_timeout(400)
    assert "off" in explorer.page.locator("button.legend-item[data-class='1']").get_attribute("class")
    assert points.screenshot() != shown  # the 1s are gone from the plane


def test_the_interpolation_strip_scrubs_in_the_page(explorer) -> None:
    sent = len(explorer.sent)
    slider = explorer.page.locator("input[data-testid=scrub]")
    # One slider step per strip image (ten by default): image 4 is t = 3/9.
    slider.evaluate("s => { s.value = '3'; s.dispatchEvent(new Event('input')); }")
    explorer.wait_caption("left", "at t = 0.33 on the path")
    middle = explorer.pixels("decoded-right")
    slider.evaluate("s => { s.value = '9'; s.dispatchEvent(new Event('input')); }")
    explorer.wait_caption("right", "at t = 1.00 on the path")
    assert np.abs(middle.astype(int) - explorer.pixels("decoded-right").astype(int)).max() > 30
    assert len(explorer.sent) == sent


def test_both_planes_and_digits_fit_a_1600_by_1000_window(explorer) -> None:
    explorer.hover("left", *explorer.probe("point", "left", 3))
    explorer.wait_caption("right", "reconstructs #3")
    for selector in (
        "[data-testid=plane-left]",
        "[data-testid=plane-right]",
        "canvas[data-testid=decoded-left]",
        "canvas[data-testid=decoded-right]",
        "canvas[data-testid=original-left]",
    ):
        box = explorer.page.locator(selector).bounding_box()
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= VIEWPORT["height"], selector
        assert box["x"] >= 0 and box["x"] + box["width"] <= VIEWPORT["width"], selector
    plane = explorer.page.locator("[data-testid=plane-left]").bounding_box()
    assert plane["width"] >= 380  # as large as the page allows, not a thumbnail
    OUTPUT.mkdir(exist_ok=True)
    explorer.page.screenshot(path=str(OUTPUT / "explorer.png"))


def test_the_page_needs_nothing_but_the_local_server(browser, server) -> None:
    blocked: list[str] = []

    def local_only(context) -> None:
        def route(route) -> None:
            host = route.request.url.split("/")[2].split(":")[0]
            if host in ("127.0.0.1", "localhost"):
                route.continue_()
            else:
                blocked.append(route.request.url)
                route.abort()

        context.route("**/*", route)

    page = Explorer(browser, server, local_only).ready()
    try:
        x, y = page.probe("empty", "left", 0.2, 0.2)
        page.hover("left", x, y)
        page.wait_caption("left", "decodes (")
        assert page.errors == []
        # Whatever was blocked was not needed (no page asks another host at all: tests/test_offline.py).
        assert all("127.0.0.1" not in url for url in blocked)
    finally:
        page.close()


def test_without_webassembly_the_server_draws_the_planes(browser, server) -> None:
    page = Explorer(browser, server, lambda context: context.add_init_script("delete globalThis.WebAssembly;"))
    try:
        page.page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 2", timeout=120_000)
        sidebar = page.page.locator("[data-testid=stSidebar]").inner_text()
        assert "lacks WebAssembly" in sidebar
    finally:
        page.close()


def test_all_70000_images_in_the_page(explorer) -> None:
    train_images, _ = load_mnist("train", REPO / "data")
    explorer.page.get_by_text("all 70,000 images").click()
    explorer.page.wait_for_function(
        "globalThis.latentExplorer.ready && globalThis.latentExplorer.probe.count('left') === 70000", timeout=300_000
    )
    index = 65_000  # a training image: 0-9,999 are the test set, then the training set in file order
    explorer.hover("right", *explorer.probe("point", "right", index))
    explorer.wait_caption("left", f"reconstructs #{index}")
    np.testing.assert_array_equal(explorer.pixels("original-right"), train_images[index - 10_000].numpy())


def test_embedded_points_match_python(explorer) -> None:
    """The page places test image #9 where the model's encoder puts it (the points file is the embedding)."""
    images, _ = load_mnist("test", REPO / "data")
    model, _ = load_model(REPO / "models" / "vae-2d")
    expected = embed_images(model, images[9:10]).numpy()[0]
    np.testing.assert_allclose(explorer.probe("point", "right", 9), expected, atol=1e-5)


def test_the_umap_trained_model_explores_beside_the_vae(explorer) -> None:
    """umap-ae-2d (the encoder trained on the neighbour graph alone) picked in the sidebar as the left model:
    its points are its encoder's, and hovering decodes with its stop-gradient decoder in the page."""
    page = explorer.page
    combo = page.get_by_role("combobox", name="Left model", exact=True)
    page.locator('[data-testid="stSelectbox"]').filter(has=combo).first.get_by_role("button", name="Open").click()
    page.get_by_role("option").filter(has_text="umap-ae-2d").first.click()
    page.wait_for_function(
        "globalThis.latentExplorer.ready && globalThis.latentExplorer.probe.titles().join(' ').includes('umap-ae-2d')",
        timeout=180_000,
    )
    assert "vae-2d" in " ".join(explorer.probe("titles"))  # the VAE stays on the right
    model, stored = load_model(REPO / "models" / "umap-ae-2d")
    assert stored.config.decoupled
    images, _ = load_mnist("test", REPO / "data")
    np.testing.assert_allclose(
        explorer.probe("point", "left", 9), embed_images(model, images[9:10]).numpy()[0], atol=1e-5
    )
    x, y = explorer.probe("empty", "left", 0.3, 0.3)
    explorer.hover("left", x, y)
    explorer.wait_caption("left", f"decodes ({x:.2f}, {y:.2f})")
    with torch.no_grad():
        expected = to_uint8_image(model.decode(torch.tensor([[x, y]], dtype=torch.float32))[0, 0].numpy())
    assert np.abs(explorer.pixels("decoded-left").astype(int) - expected.astype(int)).max() <= 2
    page.screenshot(path=str(OUTPUT / "explorer-umap.png"))
