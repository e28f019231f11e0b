"""The timeline player in a real browser: scrub with the slider, play, pin a point; frames change in the page
without a single message to the server, and a click is the only thing that reruns Python."""

from __future__ import annotations

import time

import pytest

from tests.browser import launch_chromium, require_browser, shipped_dashboard
from tests.conftest import REPO

OUTPUT = REPO / "test-output"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require_browser()  # first: under REQUIRE_BROWSER=1 a missing browser fails before any skip
    for name in ("ae-2d", "vae-2d"):
        if not list((REPO / "models" / name).glob("timeline-*.npz")):
            pytest.skip(f"models/{name} has no timeline (run `make models`)")
    with shipped_dashboard(tmp_path_factory.mktemp("timeline-browser")) as url:
        yield url


def state(page) -> dict:
    """The player's own report of what it shows (data attributes on its root, inside the shadow root)."""
    return page.locator(".tl").evaluate(
        "el => ({frame: Number(el.dataset.frame), playing: el.dataset.playing, draws: Number(el.dataset.draws || 0)})"
    )


def plane_pixels(page, n: int) -> str:
    return page.locator("canvas.tl-plane").nth(n).evaluate("c => c.toDataURL()")


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_scrub_play_and_pin_in_the_page(server) -> None:
    from playwright.sync_api import sync_playwright

    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1750})
            sent: list[float] = []  # every message the page sends the server: a rerun request is one
            page.on("websocket", lambda ws: ws.on("framesent", lambda _: sent.append(time.monotonic())))
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{server}/timeline")
            page.locator(".tl[data-ready='1']").wait_for(timeout=120_000)  # Playwright pierces the shadow root
            page.locator(".tl-sub").nth(1).wait_for()
            slider = page.get_by_role("slider", name="frame")
            last = int(slider.get_attribute("max"))
            assert last + 1 >= 10 and state(page)["frame"] == last  # it opens on the finished map
            assert page.locator(".tl-title").all_inner_texts() == ["ae-2d (AE)", "vae-2d (VAE)"]
            assert page.locator(".tl-label").inner_text().startswith(f"frame {last + 1} / {last + 1}")
            final = [plane_pixels(page, 0), plane_pixels(page, 1)]
            page.wait_for_timeout(1500)  # let the first run's messages settle
            quiet_from = len(sent)

            # Scrub with the keyboard, as a person can: Home, then five steps right.
            slider.focus()
            page.keyboard.press("Home")
            wait_until(lambda: state(page)["frame"] == 0, 5, "frame 0")
            start = [plane_pixels(page, 0), plane_pixels(page, 1)]
            assert start[0] != final[0] and start[1] != final[1]  # the untrained map is another picture
            assert page.locator(".tl-sub").first.inner_text().startswith("frame 1 / ")
            for _ in range(5):
                page.keyboard.press("ArrowRight")
            wait_until(lambda: state(page)["frame"] == 5, 5, "frame 5")
            assert "16 batches seen" in page.locator(".tl-label").inner_text()  # steps 0, 1, 2, 4, 8, 16
            draws = state(page)["draws"]
            page.wait_for_timeout(600)
            assert state(page)["draws"] == draws  # nothing is drawn while the frame stays

            # Play at 4x from the start to the end.
            page.get_by_label("playback speed").select_option("4")
            page.keyboard.press("Home")
            page.get_by_role("button", name="Play").click()
            wait_until(lambda: state(page)["playing"] == "1" and state(page)["frame"] >= 3, 10, "playing")
            page.wait_for_timeout(600)
            page.locator(".tl").screenshot(path=str(OUTPUT / "timeline-playing.png"))
            wait_until(lambda: state(page)["frame"] == last and state(page)["playing"] == "0", 60, "the end of play")
            assert page.get_by_role("button", name="Play from the start").is_visible()  # the README's word, Play
            assert [plane_pixels(page, 0), plane_pixels(page, 1)] == final  # the last frame is the final map
            # Two planes, each drawn once per frame it moved to: the page only draws when a frame changes.
            assert state(page)["draws"] - draws <= 2 * (last + 1) + 4
            assert len(sent) == quiet_from, "scrubbing or playing sent a message to the server (a rerun)"
            assert not errors

            # A click on the VAE's plane pins a point there: the one thing that asks Python for something.
            box = page.locator("canvas.tl-plane").nth(1).bounding_box()
            page.mouse.click(box["x"] + box["width"] * 0.62, box["y"] + box["height"] * 0.35)
            caption = page.locator(".tl-draw-caption").nth(1)
            wait_until(lambda: "the point you pinned" in caption.inner_text(), 60, "the pinned drawings")
            assert len(sent) > quiet_from
            assert "the point you pinned" not in page.locator(".tl-draw-caption").first.inner_text()
            assert state(page)["frame"] == last  # the rerun kept the frame on screen
            slider.focus()  # earlier frames show what the kept decoders drew there
            page.keyboard.press("Home")
            wait_until(lambda: "after 0 batches" in caption.inner_text(), 5, "the first decoder's drawing")
            slider.focus()
            page.keyboard.press("End")
            wait_until(lambda: state(page)["frame"] == last, 5, "the last frame")
            page.wait_for_timeout(300)
            page.screenshot(path=str(OUTPUT / "timeline.png"), full_page=True)
            assert not errors
        finally:
            browser.close()
