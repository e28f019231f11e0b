"""Drawing a digit: the canvas component's output, the page that uses it (AppTest), and real strokes in
Chromium, on the live pad (encoders and decoders in the page) and on the server's canvas."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image, ImageDraw

from app import canvas, your_digit
from tests.browser import launch_chromium, shipped_dashboard
from tests.conftest import REPO, image_captions, open_dashboard


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
    for bad in (
        None,
        42,
        "",
        "data:image/jpeg;base64,AAAA",
        "data:image/png;base64,@@not-base64@@",
        "data:image/png;base64," + "A" * canvas.MAX_DATA_URL,
    ):
        assert canvas.png_from_data_url(bad) is None


@pytest.fixture
def page(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))


def server_digit_page():
    """The Your digit page with the server's canvas (the path for browsers without WebGL or WebAssembly)."""
    at = open_dashboard("app_pages/digit.py")
    at.sidebar.toggle(key="ex_browser").set_value(False).run()
    assert not at.exception
    return at


def test_the_live_pad_gets_both_encoders_and_decoders(page) -> None:
    at = open_dashboard("app_pages/digit.py")
    pads = [e for e in at.main if getattr(e, "type", None) == "bidi_component"]
    data = json.loads(pads[0].proto.json)
    assert pads[0].proto.component_name == "your_digit"
    assert [p["name"] for p in data["planes"]] == ["ae-2d", "vae-2d"]
    for plane in data["planes"]:
        assert plane["encoder"] != plane["decoder"] and plane["view"]["kind"] == "identity"
        path = REPO / "static" / plane["encoder"].split("/app/static/", 1)[1]
        assert path.is_file()
    assert not at.get("plotly_chart")  # the planes are drawn in the page


def test_a_finished_drawing_on_the_live_pad_can_be_downloaded(page, monkeypatch) -> None:
    monkeypatch.setattr(your_digit, "draw", lambda pair, brush=18: drawn_one())
    at = open_dashboard("app_pages/digit.py")
    assert not at.exception and not at.error
    downloads = [b for b in at.get("download_button") if "as MNIST would store it" in b.proto.label]
    assert len(downloads) == 1


def test_a_blank_drawing_on_the_live_pad_gets_the_reason(page, monkeypatch) -> None:
    blank = io.BytesIO()
    Image.new("RGBA", (canvas.SIZE, canvas.SIZE), (0, 0, 0, 255)).save(blank, format="PNG")
    monkeypatch.setattr(your_digit, "draw", lambda pair, brush=18: blank.getvalue())
    at = open_dashboard("app_pages/digit.py")
    assert any(e.value.startswith("The drawing cannot be used") for e in at.error)


def test_an_empty_canvas_asks_for_a_digit(page, monkeypatch) -> None:
    monkeypatch.setattr(canvas, "draw", lambda key, brush=18: None)
    at = server_digit_page()
    assert [tab.label for tab in at.tabs] == ["Draw", "Upload"]
    assert any("Draw one digit" in info.value for info in at.info)
    assert not at.error and image_captions(at) == []


def test_a_drawing_lands_on_both_planes_and_is_redrawn(page, monkeypatch) -> None:
    monkeypatch.setattr(canvas, "draw", lambda key, brush=18: drawn_one())
    at = server_digit_page()
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
    at = server_digit_page()
    assert not at.exception
    assert any(e.value.startswith("The drawing cannot be used") for e in at.error)


SEVEN = [(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]  # a bar across the top, then down to the bottom left


def stroke(tab, box, path, pause=None) -> list:
    """Draw ``path`` (fractions of the canvas) in one stroke; ``pause(i)`` runs after each segment."""
    tab.mouse.move(box["x"] + path[0][0] * box["width"], box["y"] + path[0][1] * box["height"])
    tab.mouse.down()
    seen = []
    for i, (fx, fy) in enumerate(path[1:]):
        tab.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"], steps=15)
        if pause:
            seen.append(pause(i))
    tab.mouse.up()
    return seen


def test_drawing_moves_both_markers_live_in_chromium(tmp_path) -> None:
    from playwright.sync_api import sync_playwright

    with shipped_dashboard(tmp_path) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            tab = browser.new_page(viewport={"width": 1600, "height": 1000})
            sent = []
            tab.on("websocket", lambda ws: ws.on("framesent", lambda _: sent.append(1)))
            tab.goto(f"{url}/digit")
            tab.wait_for_function("globalThis.yourDigit && globalThis.yourDigit.ready", timeout=120_000)
            box = tab.locator("canvas[aria-label^='drawing canvas']").bounding_box()
            tab.wait_for_timeout(500)
            before = len(sent)

            def checkpoint(i):
                tab.wait_for_timeout(400)  # while the pen is still down: nothing has gone to the server
                marks = tab.evaluate("JSON.stringify(globalThis.yourDigit.marks)")
                redrawn = tab.locator("canvas[data-testid=redrawn-right]").evaluate("c => c.toDataURL()")
                return json.loads(marks), redrawn, len(sent)

            (first, redrawn_first, sent_first), (second, redrawn_second, sent_second) = stroke(
                tab, box, SEVEN, checkpoint
            )
            assert sent_first == sent_second == before  # the markers moved with no message to the server
            for side in ("left", "right"):
                assert first[side] != second[side]  # both markers moved during the stroke
            assert redrawn_first != redrawn_second  # and both models redrew the digit as it grew
            assert tab.evaluate("globalThis.yourDigit.updates") >= 4
            # Lifting the pen sends the drawing to Python, which offers the MNIST-style file.
            tab.get_by_text("Download it as MNIST would store it").wait_for(timeout=60_000)
            # The 7 lands among the 7s in both planes: most of its 15 nearest test images are 7s.
            for side in ("left", "right"):
                labels = tab.evaluate("(side) => globalThis.yourDigit.nearestLabels(side, 15)", side)
                assert max(set(labels), key=labels.count) == 7, (side, labels)
            (REPO / "test-output").mkdir(exist_ok=True)
            tab.screenshot(path=str(REPO / "test-output" / "digit.png"))
            tab.get_by_role("button", name="Clear").click()
            tab.wait_for_timeout(300)
        finally:
            browser.close()


def test_drawing_with_the_mouse_on_the_servers_canvas_in_chromium(tmp_path) -> None:
    from playwright.sync_api import sync_playwright

    with shipped_dashboard(tmp_path, VAE_PLANES="server") as url, sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 1200})
            tab.goto(f"{url}/digit")
            surface = tab.locator("canvas[aria-label^='drawing canvas']")  # Playwright pierces the shadow root
            surface.wait_for(timeout=120_000)
            stroke(tab, surface.bounding_box(), SEVEN)
            tab.get_by_text("as MNIST would store it").wait_for(timeout=60_000)
            tab.get_by_text("vae-2d redraws it").wait_for(timeout=60_000)
            # Plotly draws its charts after their captions are in the page (its bundle loads lazily).
            tab.wait_for_function("document.querySelectorAll('.js-plotly-plot').length === 2", timeout=60_000)
            (REPO / "test-output").mkdir(exist_ok=True)
            tab.screenshot(path=str(REPO / "test-output" / "digit-server.png"), full_page=True)
            tab.get_by_role("button", name="Clear").click()
            tab.get_by_text("Draw one digit").wait_for(timeout=30_000)
        finally:
            browser.close()
