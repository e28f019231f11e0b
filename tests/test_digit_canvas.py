"""Drawing a digit: the canvas component's output, the page that uses it (AppTest), and a real stroke in
Chromium."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image, ImageDraw

from app import canvas
from tests.browser import CHROMIUM, CHROMIUM_ARGS, require_browser, streamlit_server
from tests.conftest import REPO, image_captions, open_dashboard, run_pages_like_a_server


def drawn_one() -> bytes:
    """What the canvas sends for a "1": white strokes on an opaque black 280 x 280 PNG."""
    image = Image.new("RGBA", (canvas.SIZE, canvas.SIZE), (0, 0, 0, 255))
    ImageDraw.Draw(image).line([(150, 40), (135, 240)], fill=(255, 255, 255, 255), width=18)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_the_canvas_data_url_becomes_png_bytes_or_nothing() -> None:
    png = drawn_one()
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    assert canvas.png_from_data_url(url) == png
    for bad in (None, 42, "", "data:image/jpeg;base64,AAAA", "data:image/png;base64,@@not-base64@@",
                "data:image/png;base64," + "A" * canvas.MAX_DATA_URL):  # fmt: skip
        assert canvas.png_from_data_url(bad) is None


@pytest.fixture
def page(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    run_pages_like_a_server(monkeypatch)


def test_an_empty_canvas_asks_for_a_digit(page, monkeypatch) -> None:
    monkeypatch.setattr(canvas, "draw", lambda key, brush=18: None)
    at = open_dashboard("pages/digit.py")
    assert [tab.label for tab in at.tabs] == ["Draw", "Upload"]
    assert any("Draw one digit" in info.value for info in at.info)
    assert not at.error and image_captions(at) == []


def test_a_drawing_lands_on_both_planes_and_is_redrawn(page, monkeypatch) -> None:
    monkeypatch.setattr(canvas, "draw", lambda key, brush=18: drawn_one())
    at = open_dashboard("pages/digit.py")
    assert not at.exception and not at.error
    assert image_captions(at) == ["as MNIST would store it", "ae-2d redraws it", "vae-2d redraws it"]
    charts = at.get("plotly_chart")
    assert len(charts) == 2
    for chart in charts:
        marks = [t for t in json.loads(chart.proto.spec)["data"] if "your digit" in json.dumps(t)]
        assert len(marks) == 1


def test_a_blank_drawing_gets_the_reason(page, monkeypatch) -> None:
    blank = io.BytesIO()
    Image.new("RGBA", (canvas.SIZE, canvas.SIZE), (0, 0, 0, 255)).save(blank, format="PNG")
    monkeypatch.setattr(canvas, "draw", lambda key, brush=18: blank.getvalue())
    at = open_dashboard("pages/digit.py")
    assert not at.exception
    assert any(e.value.startswith("The drawing cannot be used") for e in at.error)


def test_drawing_with_the_mouse_in_chromium(tmp_path) -> None:
    require_browser()
    if not (REPO / "data" / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file():
        pytest.skip("MNIST not fetched")
    from playwright.sync_api import sync_playwright

    env = {"VAE_MODELS_DIR": str(REPO / "models"), "VAE_CACHE_DIR": str(tmp_path / "cache")}
    with streamlit_server(REPO / "dashboard.py", env=env, log=tmp_path / "streamlit.log") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 1200})
            tab.goto(f"{url}/digit")
            surface = tab.locator("canvas[aria-label^='drawing canvas']")  # Playwright pierces the shadow root
            surface.wait_for(timeout=120_000)
            box = surface.bounding_box()
            # A "7": a bar across the top, then down to the bottom left.
            path = [(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]
            tab.mouse.move(box["x"] + path[0][0] * box["width"], box["y"] + path[0][1] * box["height"])
            tab.mouse.down()
            for fx, fy in path[1:]:
                tab.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"], steps=15)
            tab.mouse.up()
            tab.get_by_text("as MNIST would store it").wait_for(timeout=60_000)
            tab.get_by_text("vae-2d redraws it").wait_for(timeout=60_000)
            assert tab.locator(".js-plotly-plot").count() == 2
            (REPO / "test-output").mkdir(exist_ok=True)
            tab.screenshot(path=str(REPO / "test-output" / "digit.png"), full_page=True)
            tab.get_by_role("button", name="Clear").click()
            tab.get_by_text("Draw one digit").wait_for(timeout=30_000)
        finally:
            browser.close()
