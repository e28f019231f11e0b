"""Shared helpers for the tests that drive a real browser: Debian's Chromium through Playwright."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import REAL_RAW, REPO

CHROMIUM = Path("/usr/bin/chromium")
# No sandbox as root; no GPU, QUIC, sync or background fetches: the machine has no network to give them.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def require_browser() -> None:
    """Skip without Chromium, unless REQUIRE_BROWSER=1 (CI), where a missing browser is a failure."""
    if not CHROMIUM.exists():
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail("REQUIRE_BROWSER=1 but /usr/bin/chromium is missing (apt-get install chromium)")
        pytest.skip("no /usr/bin/chromium (make test installs it)")
    pytest.importorskip("playwright")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def streamlit_server(script: Path, env: dict[str, str] | None = None, log: Path | None = None,
                     timeout: float = 60) -> Iterator[str]:
    """Run ``streamlit run script`` on a free localhost port; yields its URL, stops it afterwards."""
    port = free_port()
    output = open(log, "w") if log else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless=true",
         f"--server.port={port}", "--server.address=127.0.0.1", "--browser.gatherUsageStats=false",
         "--server.fileWatcherType=none"],
        stdout=output, stderr=subprocess.STDOUT, cwd=script.parent, env={**os.environ, **(env or {})},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail(f"streamlit did not start (exit code {proc.poll()})")
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log:
            output.close()


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
