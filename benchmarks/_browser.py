"""Chromium and ``streamlit run`` for the benchmarks and the browser tests (``tests/browser.py``).

Only the standard library: a benchmark runs without pytest, and the tests build their skips and fixtures on
this rather than keeping a copy of the flags and of the server's start and stop.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# No sandbox as root; no GPU, QUIC, sync or background fetches: the machine has no network to give them.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_chromium() -> None:
    """A benchmark's check: exit with the way to get Chromium when it is missing."""
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is missing (scripts/setup.sh --browser installs it)")


def launch_chromium(playwright, extra_args: tuple[str, ...] | list[str] = ()):
    """Debian's Chromium with the project's flags (then ``extra_args``) from a Playwright instance: a browser
    from the sync API, an awaitable of one from the async API (Playwright has no browser build here)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *extra_args])


class StreamlitServer:
    """``streamlit run script`` on a free port of 127.0.0.1 that stays the same across restarts.

    ``launched`` and ``port_open`` are ``time.monotonic()`` at the start and when the port first accepted a
    connection, so start-up can be timed from the launch. The process runs in ``cwd`` (default: the script's
    folder, which decides whether Streamlit reads a ``.streamlit/config.toml``) with ``env`` over
    ``os.environ``; its output goes to ``log`` (appended, so a restart keeps the first run's) or nowhere.
    """

    def __init__(
        self, script: Path, env: dict[str, str] | None = None, log: Path | None = None, cwd: Path | None = None
    ) -> None:
        self.script, self.env, self.log = script, dict(env or {}), log
        self.cwd = cwd or script.parent
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.launched = self.port_open = float("nan")

    def start(self, timeout: float = 60) -> None:
        """Launch and wait for the port; RuntimeError (with the log's tail) if it exits or is not up in time."""
        # Closed once the child has started: it keeps a descriptor of its own.
        with open(self.log, "a") if self.log else nullcontext(subprocess.DEVNULL) as output:
            self.launched = time.monotonic()
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "streamlit",
                    "run",
                    str(self.script),
                    "--server.headless=true",
                    f"--server.port={self.port}",
                    "--server.address=127.0.0.1",
                    "--browser.gatherUsageStats=false",
                    "--server.fileWatcherType=none",
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env={**os.environ, **self.env},
            )
        deadline = self.launched + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                self.port_open = time.monotonic()
                return
            except OSError:
                code = self.proc.poll()
                if time.monotonic() > deadline or code is not None:
                    self.stop()
                    raise RuntimeError(f"streamlit did not start (exit code {code}):\n{self.tail()}") from None
                time.sleep(0.02)  # fine-grained: the benchmarks report when the port opened

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def tail(self, lines: int = 30) -> str:
        if self.log is None:
            return "(no log)"
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
