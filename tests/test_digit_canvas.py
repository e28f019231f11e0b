"""Drawing a digit: the canvas component's output, the page that uses it (AppTest), and real strokes in
Chromium, on the live pad (encoders and decoders in the page) and on the server's canvas."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from app import canvas, your_digit
from tests.browser import launch_chromium, shipped_dashboard
from tests.conftest import REPO, image_captions, open_dashboard
from vae.digits import digit_from_upload


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
    captions = image_captions(at)
    assert [c.split(" · ")[0] for c in captions] == ["as MNIST would store it", "ae-2d redraws it", "vae-2d redraws it"]
    charts = at.get("plotly_chart")
    assert len(charts) == 2
    for chart, caption in zip(charts, captions[1:], strict=True):
        marks = [t for t in json.loads(chart.proto.spec)["data"] if "your digit" in json.dumps(t)]
        assert len(marks) == 1
        # The caption names the code as the page's pad does: "code (x, y)" at the cross.
        x, y = marks[0]["x"][0], marks[0]["y"][0]
        assert caption.endswith(f" · code ({x:.2f}, {y:.2f})"), caption


def test_an_upload_is_shown_by_the_pads_component_in_the_page(page) -> None:
    """With the in-page planes, an upload gets the drawing's look: the same component (no pad) with the
    picture the server prepared, not the server's Plotly planes."""
    at = open_dashboard("app_pages/digit.py")
    at.file_uploader(key="digit_upload").set_value(("one.png", drawn_one(), "image/png")).run()
    assert not at.exception and not at.error
    components = {e.proto.component_name: e for e in at.main if getattr(e, "type", None) == "bidi_component"}
    pads = [e for e in at.main if getattr(e, "type", None) == "bidi_component"]
    assert len(pads) == 2 and not at.get("plotly_chart")
    data = json.loads(pads[1].proto.json)
    assert set(components) == {"your_digit"} and [p["name"] for p in data["planes"]] == ["ae-2d", "vae-2d"]
    digit = np.array(data["digit"]).reshape(28, 28)
    assert 0 <= digit.min() and digit.max() <= 1
    assert np.abs(digit - digit_from_upload(drawn_one())).max() < 1e-3  # the server's preparation, as sent


def test_a_digit_for_the_page_must_be_28_by_28() -> None:
    with pytest.raises(ValueError, match=r"digit must be \[28, 28\]"):
        your_digit.place(None, np.zeros((20, 20), np.float32))


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


# Opaque near-black pixels of a side's 2-D layers (decor and hover: the cross's strokes; tick labels are
# translucent grey) within `r` CSS pixels of the window point (x, y).
DARK_NEAR = """(host, [x, y, r]) => {
    let dark = 0;
    for (const canvas of host.querySelectorAll("canvas.plane-decor, canvas.plane-hover")) {
        const box = canvas.getBoundingClientRect(), ratio = canvas.width / box.width;
        const cx = Math.round((x - box.left) * ratio), cy = Math.round((y - box.top) * ratio);
        const rr = Math.round(r * ratio);
        const data = canvas.getContext("2d").getImageData(cx - rr, cy - rr, 2 * rr + 1, 2 * rr + 1).data;
        for (let i = 0; i < data.length; i += 4) {
            if (data[i + 3] > 250 && data[i] + data[i + 1] + data[i + 2] < 60) dark++;
        }
    }
    return dark;
}"""


def cross_on_screen(tab, side: str, hooks: str = "globalThis.yourDigit") -> tuple[list, int, int]:
    """Where the page's current view puts the side's mark, the dark pixels there, and at the old place."""
    mark = tab.evaluate(f"(side) => {hooks}.marks[side]", side)
    at = tab.evaluate(f"([side, x, y]) => {hooks}.toClient(side, x, y)", [side, *mark])
    return at, dark_near(tab, side, at, 5), 0


def dark_near(tab, side: str, at: list, r: int) -> int:
    # Playwright's locator reaches into the component's shadow root; document.querySelector would not.
    return tab.locator(f"[data-testid=digit-plane-{side}]").first.evaluate(DARK_NEAR, [*at, r])


def test_the_cross_follows_zoom_and_pan_in_chromium(tmp_path) -> None:
    """The cross is drawn where the plane's view maps the code, after a wheel zoom and after a pan."""
    from playwright.sync_api import sync_playwright

    with shipped_dashboard(tmp_path) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            tab = browser.new_page(viewport={"width": 1600, "height": 1000})
            errors = []
            tab.on("pageerror", lambda error: errors.append(str(error)))
            tab.goto(f"{url}/digit")
            tab.wait_for_function("globalThis.yourDigit && globalThis.yourDigit.ready", timeout=120_000)
            stroke(tab, tab.locator("canvas[aria-label^='drawing canvas']").bounding_box(), SEVEN)
            tab.wait_for_function("Object.keys(globalThis.yourDigit.marks).length === 2", timeout=30_000)
            tab.wait_for_timeout(300)
            for side in ("left", "right"):
                plane = tab.locator(f"[data-testid=digit-plane-{side}]").bounding_box()
                before, dark, _ = cross_on_screen(tab, side)
                assert dark >= 6, (side, "no cross where its code is", before)
                cx, cy = plane["x"] + plane["width"] / 2, plane["y"] + plane["height"] / 2
                # One wheel step out, about the plane's centre: the cross moves towards it (and stays in sight).
                tab.mouse.move(cx, cy)
                tab.mouse.wheel(0, 400)
                tab.wait_for_timeout(300)
                zoomed, dark, _ = cross_on_screen(tab, side)
                assert abs(zoomed[0] - before[0]) + abs(zoomed[1] - before[1]) > 10  # the view did change
                assert dark >= 6, (side, "after zooming out the cross is not where its code is", zoomed)
                assert dark_near(tab, side, before, 3) == 0  # nor left behind
                # One wheel step in, 30 px beside the cross: it moves away from the pointer.
                tab.mouse.move(zoomed[0] + 30, zoomed[1])
                tab.mouse.wheel(0, -400)
                tab.wait_for_timeout(300)
                zoomed_in, dark, _ = cross_on_screen(tab, side)
                assert abs(zoomed_in[0] - zoomed[0]) > 10
                assert dark >= 6, (side, "after zooming in the cross is not where its code is", zoomed_in)
                # A pan: drag by 50 px towards the plane's centre, so the cross stays in sight.
                dx, dy = (50 if zoomed_in[0] < cx else -50), (50 if zoomed_in[1] < cy else -50)
                tab.mouse.move(cx, cy)
                tab.mouse.down()
                tab.mouse.move(cx + dx, cy + dy, steps=8)
                tab.mouse.up()
                tab.wait_for_timeout(300)
                panned, dark, _ = cross_on_screen(tab, side)
                assert abs(panned[0] - (zoomed_in[0] + dx)) < 2 and abs(panned[1] - (zoomed_in[1] + dy)) < 2
                assert dark >= 6, (side, "after the pan the cross is not where its code is", panned)
                assert dark_near(tab, side, zoomed_in, 3) == 0
            (REPO / "test-output").mkdir(exist_ok=True)
            tab.screenshot(path=str(REPO / "test-output" / "issue24-item2.png"))
            assert errors == []
        finally:
            browser.close()


def test_an_upload_looks_like_a_drawing_in_chromium(tmp_path) -> None:
    """Upload tab: the same in-page planes with the cross and "code (x, y)" captions as the Draw tab."""
    from playwright.sync_api import sync_playwright

    picture = tmp_path / "seven.png"
    image = Image.new("L", (140, 140), 255)  # dark ink on light paper, as a photo of a drawing is
    ImageDraw.Draw(image).line([(35, 28), (105, 28), (63, 119)], fill=0, width=14)
    image.save(picture)
    with shipped_dashboard(tmp_path) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            tab = browser.new_page(viewport={"width": 1600, "height": 1000})
            errors = []
            tab.on("pageerror", lambda error: errors.append(str(error)))
            tab.goto(f"{url}/digit")
            tab.wait_for_function("globalThis.yourDigit && globalThis.yourDigit.ready", timeout=120_000)
            tab.get_by_role("tab", name="Upload").click()
            tab.locator("input[type=file]").set_input_files(str(picture))
            tab.wait_for_function("globalThis.yourDigit.upload.ready", timeout=120_000)
            assert tab.locator(".js-plotly-plot").count() == 0  # no server charts
            upload = tab.locator(".your-digit[data-placed='1']")
            captions = upload.locator(".captions").all_inner_texts()
            assert len(captions) == 2 and all("redraws it" in c and "code (" in c for c in captions), captions
            for side in ("left", "right"):
                mark = tab.evaluate("(side) => globalThis.yourDigit.upload.marks[side]", side)
                assert f"code ({mark[0]:.2f}, {mark[1]:.2f})" in captions[0 if side == "left" else 1]
                labels = tab.evaluate("(side) => globalThis.yourDigit.upload.nearestLabels(side, 15)", side)
                assert max(set(labels), key=labels.count) == 7, (side, labels)
            (REPO / "test-output").mkdir(exist_ok=True)
            tab.screenshot(path=str(REPO / "test-output" / "issue24-item8.png"))
            assert errors == []
        finally:
            browser.close()
