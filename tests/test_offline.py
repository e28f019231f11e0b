"""Nothing leaves the machine: every page of the dashboard, opened in Chromium with every request recorded,
asks no host but the local server (the favicon and the navigation's icons included)."""

from __future__ import annotations

from urllib.parse import urlsplit

from app.navigation import PAGES
from tests.browser import launch_chromium, shipped_dashboard

LOCAL = {"localhost", "127.0.0.1", "::1", "[::1]"}


def test_no_page_asks_any_host_but_the_local_server(tmp_path) -> None:
    from playwright.sync_api import sync_playwright

    outside: list[str] = []
    seen: list[str] = []

    def record(route) -> None:
        url = route.request.url
        seen.append(url)
        parts = urlsplit(url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname not in LOCAL:
            outside.append(url)
            route.abort()  # recorded, and never sent: the test itself leaks nothing
        else:
            route.continue_()

    with shipped_dashboard(tmp_path) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            context = browser.new_context(viewport={"width": 1600, "height": 1000})
            context.route("**/*", record)
            tab = context.new_page()
            for _, title, _, path in PAGES:
                tab.goto(f"{url}/{path}")
                tab.locator("h1").first.wait_for(timeout=180_000)
                tab.wait_for_timeout(3000)  # the favicon and lazy fonts are asked for after the first paint
                icon = tab.evaluate("document.querySelector(\"link[rel='shortcut icon']\").href")
                assert not icon.startswith("https://"), (title, icon)
        finally:
            browser.close()
    assert seen  # the route saw the page's own requests
    assert outside == [], outside
