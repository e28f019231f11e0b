"""An imported model's graphs run fenced in the page (static/lib/fence.js): in a Web Worker with a watchdog.

A store holds a shipped model and imported ones whose decoder passes the import (its codes lie near the
origin) but does harm for codes far out (tests/onnx_graphs.py): a Loop that never ends, a ConstantOfShape of
3 GiB, no image at all. In Chromium, hovering near the origin decodes; hovering far out is stopped by the watchdog (or the
worker's memory cap, or refused for its size), that side says so where the digit was, the page stays responsive meanwhile and the
other plane keeps decoding. From Python's side (AppTest): only the imported model's specs say `fenced`.
"""

from __future__ import annotations

import json
import shutil
import time

import pytest

from tests.browser import chromium_browser, require_browser, streamlit_server
from tests.conftest import REAL_RAW, REPO, open_dashboard, planes_data
from tests.onnx_graphs import far_loop_decoder, far_memory_decoder, far_shape_decoder, for_the_page, mlp_encoder

DATA = REPO / "data"
VIEWPORT = {"width": 1600, "height": 1000}
# lib/fence.js: RUN_SECONDS, the watchdog's limit for one request of one code (2 s + 8 ms per further code).
RUN_SECONDS = 2.0
MARGIN_SECONDS = 2.0
# The far-out decoders turn hostile past max |z_i| = RADIUS; the imported encoder's test codes reach 6.0.
RADIUS = 10.0
# Each fenced plane opens zoomed out to a half-width of ZOOM around the origin, so (FAR, FAR) is in view.
ZOOM, FAR = 40.0, 30.0
STOPPED = "this imported decoder took more than 2 s on one request (1 code) and was stopped"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store: the shipped ae-2d, and an MLP encoder imported with each far-out hostile decoder."""
    if not (REAL_RAW / "t10k-images-idx3-ubyte").is_file():
        pytest.skip("MNIST not fetched")
    from vae.onnx.importer import import_onnx

    folder = tmp_path_factory.mktemp("fence_store")
    shutil.copytree(REPO / "models" / "ae-2d", folder / "ae-2d")
    encoder = for_the_page(mlp_encoder()).model.SerializeToString()
    decoders = {
        "far-loop": far_loop_decoder(RADIUS),
        "far-memory": far_memory_decoder(RADIUS),
        "far-shape": far_shape_decoder(RADIUS),
    }
    for name, decoder in decoders.items():
        import_onnx(encoder, decoder.model.SerializeToString(), folder / name, data_dir=DATA)
    return folder


@pytest.fixture(scope="module")
def server(store, tmp_path_factory):
    require_browser()
    cache = tmp_path_factory.mktemp("fence_cache")
    env = {"VAE_MODELS_DIR": str(store), "VAE_CACHE_DIR": str(cache / "cache")}
    with streamlit_server(REPO / "dashboard.py", env=env, log=cache / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser(server):
    with chromium_browser() as browser:
        yield browser


class Explorer:
    def __init__(self, browser, url: str) -> None:
        self.context = browser.new_context(viewport=VIEWPORT)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.console_errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        self.page.goto(url)
        self.page.wait_for_function("globalThis.latentExplorer && globalThis.latentExplorer.ready", timeout=180_000)
        self.page.wait_for_timeout(300)

    def probe(self, method: str, *args):
        return self.page.evaluate(f"(args) => globalThis.latentExplorer.probe.{method}(...args)", list(args))

    def hover(self, side: str, x: float, y: float) -> str:
        """Move the pointer to (x, y) of ``side``'s plane -> the caption its decode will have."""
        self.page.mouse.move(*self.probe("client", side, x, y), steps=2)
        return f"decodes ({x:.2f}, {y:.2f})"

    def hover_empty(self, side: str, fx: float, fy: float) -> tuple[str, tuple[float, float]]:
        """Hover the empty space nearest the fraction (fx, fy) of the plane -> (caption to come, point)."""
        x, y = self.probe("empty", side, fx, fy)
        return self.hover(side, x, y), (x, y)

    def caption(self, side: str) -> str:
        return self.page.locator(f"[data-testid=plane-{side}] ~ .readout .caption").first.inner_text()

    def wait_caption(self, side: str, text: str, timeout: float) -> float:
        """Seconds until ``side``'s caption holds ``text``; fails past ``timeout`` seconds."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if text in self.caption(side):
                return time.monotonic() - started
            self.page.wait_for_timeout(20)
        pytest.fail(f"{side}: no caption with {text!r} within {timeout} s (last: {self.caption(side)!r})")

    def wait_status(self, text: str, timeout: float) -> None:
        """Wait until the line above the planes holds ``text``; fails past ``timeout`` seconds."""
        status = self.page.locator(".explorer > .status")
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if text in status.inner_text():
                return
            self.page.wait_for_timeout(20)
        pytest.fail(f"no status with {text!r} within {timeout} s (last: {status.inner_text()!r})")

    def answer_seconds(self) -> float:
        """How long the page's main thread takes to answer a trivial evaluate."""
        started = time.monotonic()
        assert self.page.evaluate("() => 1 + 1") == 2
        return time.monotonic() - started

    def close(self) -> None:
        self.context.close()


def open_pair(browser, server, right: str) -> Explorer:
    return Explorer(browser, f"{server}/explorer?left=ae-2d&right={right}#zoom_right=0,0,{ZOOM:g}")


def test_a_decoder_that_loops_far_out_is_stopped_and_the_page_carries_on(browser, server) -> None:
    explorer = open_pair(browser, server, "far-loop")
    try:
        caption, point = explorer.hover_empty("right", 0.5, 0.46)
        assert max(map(abs, point)) < RADIUS - 1  # near the origin: the decoder is harmless there
        explorer.wait_caption("right", caption, timeout=10)
        explorer.wait_caption("left", explorer.hover_empty("left", 0.3, 0.3)[0], timeout=10)

        caption = explorer.hover("right", FAR, FAR)
        started = time.monotonic()
        # While the fenced decoder loops in its worker, the page answers and the other plane decodes.
        explorer.page.wait_for_timeout(300)
        assert explorer.answer_seconds() < 0.5
        explorer.wait_caption("left", explorer.hover_empty("left", 0.8, 0.7)[0], timeout=1.2)
        assert time.monotonic() - started < RUN_SECONDS, "the left plane decoded only once the watchdog fired"
        assert caption not in explorer.caption("right")

        # The pointer is on the left plane now: the message is above the planes.
        explorer.wait_status(f"far-loop: {STOPPED}", 10)
        stopped = time.monotonic() - started
        assert RUN_SECONDS - 0.1 <= stopped <= RUN_SECONDS + MARGIN_SECONDS, stopped

        # Dead: a later request fails at once, even near the origin, and says so where the digit would be.
        explorer.hover_empty("right", 0.5, 0.46)
        assert explorer.wait_caption("right", STOPPED, timeout=1) < 0.5
        explorer.wait_caption("left", explorer.hover_empty("left", 0.2, 0.8)[0], timeout=2)
        assert explorer.answer_seconds() < 0.5
        assert explorer.errors == [], explorer.errors
    finally:
        explorer.close()


def test_a_decoder_that_asks_for_3_gib_far_out_fails_in_its_worker(browser, server) -> None:
    explorer = open_pair(browser, server, "far-memory")
    try:
        explorer.wait_caption("right", explorer.hover_empty("right", 0.5, 0.46)[0], timeout=10)
        explorer.hover("right", FAR, FAR)
        explorer.wait_caption("right", "no longer runs in this page", timeout=RUN_SECONDS + MARGIN_SECONDS)
        # The worker's WebAssembly memory may grow to 1 GiB, not the runtime's 4: the allocation fails there.
        assert "may not have more than 1 GiB" in explorer.caption("right"), explorer.caption("right")
        explorer.wait_caption("left", explorer.hover_empty("left", 0.3, 0.3)[0], timeout=5)
        assert explorer.errors == [], explorer.errors
    finally:
        explorer.close()


def test_a_decoder_whose_output_is_the_wrong_size_far_out_is_refused(browser, server) -> None:
    explorer = open_pair(browser, server, "far-shape")
    try:
        explorer.wait_caption("right", explorer.hover_empty("right", 0.5, 0.46)[0], timeout=10)
        explorer.hover("right", FAR, FAR)
        explorer.wait_caption(
            "right", "this imported decoder gave 0 numbers [0,1,28,28] as image for 1 code, not 1 x 784: refused", 5
        )
        explorer.wait_caption("left", explorer.hover_empty("left", 0.3, 0.3)[0], timeout=5)
        assert explorer.errors == [], explorer.errors
    finally:
        explorer.close()


@pytest.fixture
def app(store, tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_MODELS_DIR", str(store))
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    at = open_dashboard(timeout=180)
    at.session_state["left_model"] = "ae-2d"
    at.session_state["right_model"] = "far-loop"
    return at


def test_only_the_imported_models_graphs_are_fenced_in_the_page(app) -> None:
    app.switch_page("app_pages/explorer.py").run()
    assert not app.exception
    planes = {plane["name"]: plane for plane in planes_data(app)["planes"]}
    assert planes["far-loop"]["fenced"] is True
    assert "fenced" not in planes["ae-2d"]  # the project's own export runs on the page's thread, as before

    app.switch_page("app_pages/digit.py").run()
    assert not app.exception
    (pad,) = [e for e in app.main if getattr(e, "type", None) == "bidi_component"]
    pads = {plane["name"]: plane for plane in json.loads(pad.proto.json)["planes"]}
    assert pads["far-loop"]["fenced"] is True and "fenced" not in pads["ae-2d"]
