"""Shared helpers for the tests that drive a real browser: Debian's Chromium through Playwright.

The browser's flags and the server's start and stop are ``benchmarks/_browser.py``'s, shared with the
benchmarks; here they get the tests' skips and failures.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import pytest

from benchmarks._browser import CHROMIUM, StreamlitServer, launch_chromium
from tests.conftest import REAL_RAW, REPO

__all__ = [
    "block_other_hosts",
    "chromium_browser",
    "launch_chromium",
    "require_browser",
    "shipped_dashboard",
    "streamlit_server",
]


def require_browser() -> None:
    """Skip without Chromium or Playwright, unless REQUIRE_BROWSER=1 (CI), where either missing is a failure."""
    required = os.environ.get("REQUIRE_BROWSER") == "1"
    if not CHROMIUM.exists():
        if required:
            pytest.fail("REQUIRE_BROWSER=1 but /usr/bin/chromium is missing (apt-get install chromium)")
        pytest.skip("no /usr/bin/chromium (make test installs it)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        if required:
            pytest.fail("REQUIRE_BROWSER=1 but playwright is not installed (pip install -r requirements.txt)")
        pytest.skip("playwright is not installed (make setup installs it)")


def block_other_hosts(page, origin: str) -> list[str]:
    """Let ``page`` reach only ``origin`` (``host:port``) and its own blob: and data: URLs; every other request
    is aborted and its URL appended to the returned list, which a test asserts stays empty.

    Playwright answers the route only while the test is inside a Playwright call: wait with
    ``page.wait_for_timeout``, not ``time.sleep``, or the page's own requests stall."""
    outside: list[str] = []

    def route(r):
        if urlparse(r.request.url).netloc == origin or r.request.url.startswith(("blob:", "data:")):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return outside


@contextmanager
def chromium_browser():
    """Debian's Chromium through Playwright's sync API for as long as the block runs (a module's fixture)."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def streamlit_server(
    script: Path, env: dict[str, str] | None = None, log: Path | None = None, timeout: float = 60
) -> Iterator[str]:
    """Run ``streamlit run script`` on a free localhost port; yields its URL, stops it afterwards."""
    server = StreamlitServer(script, env, log)
    try:
        server.start(timeout)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield server.url
    finally:
        server.stop()


@contextmanager
def shipped_dashboard(folder: Path, **env: str) -> Iterator[str]:
    """``dashboard.py`` over the shipped models with its own cache in ``folder`` (and ``env`` on top); yields
    its URL. Skips without Chromium (fails under REQUIRE_BROWSER=1) or without the MNIST test images."""
    require_browser()
    if not (REAL_RAW / "t10k-images-idx3-ubyte").is_file():
        pytest.skip("MNIST not fetched")
    env = {"VAE_MODELS_DIR": str(REPO / "models"), "VAE_CACHE_DIR": str(folder / "cache"), **env}
    with streamlit_server(REPO / "dashboard.py", env=env, log=folder / "streamlit.log") as url:
        yield url
