"""Does the dashboard hold up with several people clicking at once while a model trains?

Run from the repository root (no install needed; about two to four minutes with the defaults)::

    python benchmarks/load.py                               # prints the table, exit 0
    python benchmarks/load.py --sessions 8 --clicks 20 --json load.json --strict

What it does, against one real ``streamlit run dashboard.py`` on a free port of 127.0.0.1 (a fresh
``VAE_CACHE_DIR`` in a temporary folder, ``VAE_MODELS_DIR=models``, ``OMP_WAIT_POLICY=PASSIVE``), driven by
Debian's Chromium (``/usr/bin/chromium``, the flags of ``benchmarks/_browser.py``) through Playwright's *async* API
(one browser, one context per session, all driven from one event loop with ``asyncio.gather``; the sync API
is not safe across threads):

1. ``--sessions`` browser contexts (default 8) open ``/explorer`` at once and wait for both latent plots.
2. One more context opens ``/train``, sets small but real settings for both models (hidden layers
   ``--train-hidden``, ``--train-epochs`` epochs, batch ``--train-batch``) and clicks "Train both", so the
   server-wide training queue is busy while the sessions click. Its completion is watched (both "completed"
   notices) and timed from the click on "Train both".
3. Every session clicks ``--clicks`` times (default 20), alternating between the two planes, three clicks on
   empty space (points of the click grid) for one on a data point. The spots are planned once and dealt out
   so that no two sessions ever click the same place. Before each click the mouse glides to the spot and the
   benchmark reads the point plotly.js hovers (the one it will select); after the click it waits for the
   new decoded image captioned "<model> decodes (x, y)" and checks that (x, y) is *this* session's click.
   Latency is measured in the browser's own clock, from the ``mousedown`` to the new ``<img>`` loaded, with
   the instrumentation of ``benchmarks/click_latency.py`` (``INIT_SCRIPT``'s ``__armImage``).
4. After every click, every "decodes (x, y)" caption on the page is compared with the spots this session
   and all the others clicked: a caption naming another session's spot is a *foreign selection* (state
   leaking between sessions). Errors are: a click without a new image within ``--timeout`` s, a caption
   not at the clicked spot, page errors (``pageerror``), and Streamlit exception boxes
   (``[data-testid="stException"]``).
5. The server's resident memory (``VmRSS`` of ``/proc/<pid>/status``) is sampled every 0.5 s by a
   background thread: idle, once the sessions have loaded, at its peak, and after the run (all sessions
   closed, a few seconds later).

PASS/FAIL rows: zero errors, zero foreign selections, every click answered, and RSS after the run below
``--rss-limit-mb`` (default 3072). Exit code 0 unless ``--strict`` is given and a row fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import platform
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if not __package__ and str(REPO_ROOT) not in sys.path:  # run as a plain script from a checkout
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks._browser import StreamlitServer, launch_chromium, require_chromium
from benchmarks._report import Table, load_text, save_json, summary
from benchmarks.click_latency import (
    INIT_SCRIPT,
    PAIR_2D,
    TO_PAGE,
    VIEWPORT,
    WS_QUIET,
    parse_decoded,
    plan_clicks,
    require_models,
)

CAPTION_RE = re.compile(r"(\S+) decodes \((-?\d+\.\d+), (-?\d+\.\d+)\)")
# Every "<model> decodes (x, y)" caption on the page.
CAPTIONS = """() => [...document.querySelectorAll('[data-testid="stImage"]')]
    .map((f) => f.textContent || '').filter((t) => t.includes(' decodes ('))"""
# The point plotly.js hovers in plot n nearest to (px, py) within tol px: {x, y, curve} or null.
HOVERED = """([n, px, py, tol]) => {
    const gd = window.__plots()[n];
    if (!gd || !gd._fullLayout) return null;
    const box = gd.querySelector('.nsewdrag').getBoundingClientRect();
    let best = null;
    for (const h of gd._hoverdata || []) {
        if (typeof h.x !== 'number' || typeof h.y !== 'number') continue;
        const d = Math.hypot(box.left + gd._fullLayout.xaxis.l2p(h.x) - px, box.top + gd._fullLayout.yaxis.l2p(h.y) - py);
        if (d <= tol && (best === null || d < best.d)) best = {x: h.x, y: h.y, curve: h.curveNumber, d};
    }
    return best;
}"""
# PLANE of click_latency.py, but its data points only: overlays (prior contours with None gaps, ellipses, rings)
# are not clickable (hoverinfo "skip") and their gaps would be NaN.
DATA_PLANE = """(n) => {
    const gd = window.__plots()[n];
    const fl = gd._fullLayout;
    const grid = gd._fullData.find((t) => t.legendgroup === '__click_grid__' || t.name === 'grid');
    const data = gd._fullData.filter((t) => t.type === 'scattergl' && t !== grid && t.hoverinfo !== 'skip'
                                     && t.visible !== false && t.customdata);
    const xs = [], ys = [];
    for (const t of data) for (let i = 0; i < t.x.length; i++) {
        if (Number.isFinite(t.x[i]) && Number.isFinite(t.y[i])) { xs.push(t.x[i]); ys.push(t.y[i]); }
    }
    return {x: fl.xaxis.range.slice(), y: fl.yaxis.range.slice(), xlen: fl.xaxis._length, ylen: fl.yaxis._length,
            title: String((fl.title || {}).text || ''),
            gx: grid ? Array.from(grid.x) : [], gy: grid ? Array.from(grid.y) : [], dx: xs, dy: ys};
}"""
ROUND = 0.0051  # captions print two decimals
DATA_EVERY = 4  # one click in this many is on a data point, the rest on empty space


# ---------------------------------------------------------------------------------------------
# Server memory


def rss_mb(pid: int) -> float | None:
    """Resident set size of ``pid`` in MB, from /proc/<pid>/status (None once the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        return None
    return None


class RssSampler(threading.Thread):
    """Samples a process's RSS every ``period`` s; ``peak`` is the largest value seen."""

    def __init__(self, pid: int, period: float = 0.5) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.pid, self.period = pid, period
        self.samples: list[tuple[float, float]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        t0 = time.monotonic()
        while not self._stop_event.is_set():
            value = rss_mb(self.pid)
            if value is not None:
                self.samples.append((time.monotonic() - t0, value))
            self._stop_event.wait(self.period)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)

    @property
    def peak(self) -> float | None:
        return max((v for _, v in self.samples), default=None)


# ---------------------------------------------------------------------------------------------
# Planning: spots no two sessions share


@dataclass
class Spot:
    plot: int
    kind: str  # "empty" or "point"
    x: float
    y: float


def isolated_points(plane: dict[str, Any], count: int, min_px: float = 6.0, seed: int = 0) -> list[tuple[float, float]]:
    """``count`` data points of the visible plane, each at least ``min_px`` from any other, spread out."""
    import numpy as np

    (x0, x1), (y0, y1) = plane["x"], plane["y"]
    sx, sy = plane["xlen"] / (x1 - x0), plane["ylen"] / (y1 - y0)
    xs, ys = np.asarray(plane["dx"], np.float64), np.asarray(plane["dy"], np.float64)
    fx, fy = (xs - x0) / (x1 - x0), (ys - y0) / (y1 - y0)
    inside = np.flatnonzero((fx > 0.1) & (fx < 0.9) & (fy > 0.1) & (fy < 0.9))
    rng = np.random.default_rng(seed)
    sample = rng.choice(inside, size=min(len(inside), 3000), replace=False)
    pts = np.stack([xs * sx, ys * sy], 1)
    nn = np.empty(len(sample))
    for i in range(0, len(sample), 200):
        chunk = pts[sample[i : i + 200]]
        d = np.sqrt(((chunk[:, None, :] - pts[None]) ** 2).sum(-1))
        d[d == 0] = np.inf  # itself (and exact duplicates)
        nn[i : i + 200] = d.min(1)
    for need in (min_px, 4.0, 2.5, 0.0):
        good = sample[nn >= need]
        if len(good) >= count:
            break
    picks = [int(good[0])] if len(good) else []
    while picks and len(picks) < min(count, len(good)):  # farthest-point sampling
        gaps = np.sqrt(((pts[good][:, None, :] - pts[picks][None]) ** 2).sum(-1)).min(1)
        picks.append(int(good[np.argmax(gaps)]))
    return [(float(xs[p]), float(ys[p])) for p in picks]


def plan_sessions(planes: list[dict[str, Any]], sessions: int, clicks: int) -> tuple[list[list[Spot]], list[tuple]]:
    """Per session, its ``clicks`` spots (alternating plots, one in DATA_EVERY on a data point); all distinct.

    Also returns the grid step (x, y) of each plot, the tolerance for a click whose hover was not seen.
    """
    kinds = [["point" if k % DATA_EVERY == DATA_EVERY - 1 else "empty" for k in range(clicks)] for _ in range(sessions)]
    plots = [[(k + s) % 2 for k in range(clicks)] for s in range(sessions)]
    need = {
        (n, kind): sum(1 for s in range(sessions) for k in range(clicks) if plots[s][k] == n and kinds[s][k] == kind)
        for n in range(2)
        for kind in ("empty", "point")
    }
    pools: dict[tuple[int, str], list[tuple[float, float]]] = {}
    steps = []
    for n, plane in enumerate(planes):
        spots, step_x, step_y = plan_clicks(plane, max(need[(n, "empty")], 1))
        steps.append((step_x, step_y))
        pools[(n, "empty")] = [(s["x"], s["y"]) for s in spots[4:]]  # the four corners would be shared
        pools[(n, "point")] = isolated_points(plane, max(need[(n, "point")], 1), seed=n)
    cursor = {key: 0 for key in pools}
    plan = []
    for s in range(sessions):
        mine = []
        for k in range(clicks):
            key = (plots[s][k], kinds[s][k])
            pool = pools[key]
            if not pool:  # nothing suitable: fall back to empty space
                key = (plots[s][k], "empty")
                pool = pools[key]
            if not pool:
                raise RuntimeError(f"no spot to click in plot {key[0]}: {planes[key[0]]['title']!r}")
            x, y = pool[cursor[key] % len(pool)]
            cursor[key] += 1
            mine.append(Spot(key[0], key[1], x, y))
        plan.append(mine)
    return plan, steps


# ---------------------------------------------------------------------------------------------
# Sessions


@dataclass
class Session:
    index: int
    page: Any = None
    clicked: list[tuple[str, float, float]] = field(default_factory=list)  # (model, x, y) as expected
    results: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    foreign: list[dict[str, Any]] = field(default_factory=list)
    exceptions_seen: int = 0
    load_s: float | None = None


def _close(a: tuple[str, float, float], b: tuple[str, float, float], tol: float = ROUND) -> bool:
    return a[0] == b[0] and abs(a[1] - b[1]) <= tol and abs(a[2] - b[2]) <= tol


def classify_caption(model: str, x: float, y: float, me: Session, everyone: list[Session]) -> str:
    """ "own", "foreign" (another session's spot, never this one's) or "unknown"."""
    seen = (model, x, y)
    if any(_close(seen, mine) for mine in me.clicked):
        return "own"
    if any(_close(seen, theirs) for other in everyone if other is not me for theirs in other.clicked):
        return "foreign"
    return "unknown"


async def open_session(context, url: str, session: Session, timeout_s: float) -> None:
    page = await context.new_page()
    session.page = page
    page.on("pageerror", lambda exc: session.page_errors.append(str(exc)[:300]))
    t = time.monotonic()
    await page.goto(f"{url}/explorer", timeout=timeout_s * 1000)
    await page.wait_for_function("() => window.__plotsReady(2)", polling=100, timeout=timeout_s * 1000)
    session.load_s = time.monotonic() - t


async def check_page(session: Session, everyone: list[Session], where: str) -> None:
    """Foreign captions and Streamlit exception boxes on the page right now."""
    page = session.page
    for text in await page.evaluate(CAPTIONS):
        for model, xs, ys in CAPTION_RE.findall(text):
            verdict = classify_caption(model, float(xs), float(ys), session, everyone)
            if verdict == "foreign":
                owners = [
                    o.index
                    for o in everyone
                    if o is not session and any(_close((model, float(xs), float(ys)), c) for c in o.clicked)
                ]
                session.foreign.append({"where": where, "caption": text.strip(), "owners": owners})
    count = await page.locator('[data-testid="stException"]').count()
    if count > session.exceptions_seen:
        texts = await page.locator('[data-testid="stException"]').all_inner_texts()
        session.errors.append(f"{where}: Streamlit exception box: {' | '.join(t[:300] for t in texts)}")
        session.exceptions_seen = count


async def click_once(
    session: Session, everyone: list[Session], spot: Spot, k: int, steps: list[tuple], timeout_s: float
) -> dict[str, Any]:
    page, n, model = session.page, spot.plot, PAIR_2D[spot.plot]
    with contextlib.suppress(Exception):
        await page.wait_for_function(WS_QUIET, arg=150, polling=50, timeout=15_000)
    px, py = await page.evaluate(TO_PAGE, [n, spot.x, spot.y])
    await page.mouse.move(px, py, steps=6)
    hovered = None
    with contextlib.suppress(Exception):
        handle = await page.wait_for_function(HOVERED, arg=[n, px, py, 14], polling=30, timeout=5000)
        hovered = await handle.json_value()
    # What the server will decode: the hovered point (plotly selects it), else the planned spot.
    expected = (model, hovered["x"], hovered["y"]) if hovered else (model, spot.x, spot.y)
    session.clicked.append(expected)
    await page.wait_for_timeout(60)
    await page.evaluate("(text) => window.__armImage(text)", f"{model} decodes")
    wall0 = time.perf_counter()
    await page.mouse.click(px, py)
    result: dict[str, Any] = {
        "session": session.index,
        "click": k,
        "plot": n,
        "model": model,
        "kind": spot.kind,
        "x": expected[1],
        "y": expected[2],
        "hover_confirmed": hovered is not None,
        "latency_ms": None,
        "error": None,
    }
    try:
        await page.wait_for_function(
            "() => window.__armed && window.__armed.t1 !== null", polling=20, timeout=timeout_s * 1000
        )
    except Exception as exc:  # noqa: BLE001 - recorded, the session goes on
        result["error"] = (
            f"click {k} ({model}, {spot.kind}): no new decoded image within {timeout_s:.0f} s ({type(exc).__name__})"
        )
    result["wall_ms"] = (time.perf_counter() - wall0) * 1000
    armed = await page.evaluate(
        "() => { const s = window.__armed; s.stop(); return {t0: s.t0, t1: s.t1, info: s.info}; }"
    )
    if result["error"] is None and armed["t0"] is not None and armed["t1"] is not None:
        result["latency_ms"] = armed["t1"] - armed["t0"]
        decoded = parse_decoded((armed["info"] or {}).get("caption", ""), model)
        result["decoded"] = decoded
        tol = ROUND if hovered else max(steps[n]) + 0.011
        if decoded is None or not _close((model, *decoded), expected, tol):
            verdict = "no caption" if decoded is None else classify_caption(model, *decoded, session, everyone)
            result["error"] = (
                f"click {k} ({model}, {spot.kind}): clicked ({expected[1]:.2f}, {expected[2]:.2f}), "
                f"caption shows {decoded} ({verdict})"
            )
    elif result["error"] is None:
        result["error"] = f"click {k} ({model}): the click was not registered"
    if result["error"]:
        session.errors.append(result["error"])
    await check_page(session, everyone, f"after click {k}")
    session.results.append(result)
    return result


async def run_session(
    session: Session, everyone: list[Session], spots: list[Spot], steps: list[tuple], timeout_s: float, verbose: bool
) -> None:
    await session.page.bring_to_front()
    for k, spot in enumerate(spots):
        try:
            r = await click_once(session, everyone, spot, k, steps, timeout_s)
        except Exception as exc:  # noqa: BLE001 - a broken page ends this session, not the run
            session.errors.append(f"click {k}: {type(exc).__name__}: {str(exc)[:300]}")
            break
        if verbose:
            lat = "   n/a" if r["latency_ms"] is None else f"{r['latency_ms']:6.0f}"
            print(
                f"  session {session.index} click {k:2d} {r['model']:6s} {r['kind']:5s} {lat} ms"
                f"{'  ' + r['error'] if r['error'] else ''}",
                flush=True,
            )


# ---------------------------------------------------------------------------------------------
# Training in its own context


async def start_training(context, url: str, hidden: str, epochs: int, batch: int, timeout_s: float) -> Any:
    """Open /train, set both models' hidden layers, epochs and batch size, click "Train both"."""
    page = await context.new_page()
    await page.goto(f"{url}/train", timeout=timeout_s * 1000)
    button = page.get_by_role("button", name="Train both")
    await button.wait_for(state="visible", timeout=timeout_s * 1000)

    async def settle() -> None:
        with contextlib.suppress(Exception):
            await page.wait_for_function(WS_QUIET, arg=300, polling=50, timeout=20_000)

    for label, value in (("Hidden layers", hidden), ("Epochs", str(epochs)), ("Batch size", str(batch))):
        fields = page.get_by_label(label, exact=True)
        for i in range(2):
            await fields.nth(i).fill(value)
            await fields.nth(i).press("Enter")
            await settle()
    for label, value in (("Hidden layers", hidden), ("Epochs", str(epochs)), ("Batch size", str(batch))):
        for i in range(2):
            got = await page.get_by_label(label, exact=True).nth(i).input_value()
            if got != value:
                raise RuntimeError(f"/train: {label!r} #{i} shows {got!r}, not {value!r}")
    await button.click()
    # Both jobs are on the queue once their progress bars show up.
    await page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=\"stProgress\"]').length >= 2",
        polling=100,
        timeout=timeout_s * 1000,
    )
    return page


FINISHED = re.compile(r"^(completed|stopped|time_limit|diverged|failed)\b")


async def training_status(page) -> list[str]:
    texts = await page.locator('[data-testid="stAlert"]').all_inner_texts()
    return [t.strip() for t in texts if FINISHED.match(t.strip())] + [
        t.strip() for t in texts if t.strip().startswith("Training ")
    ]


async def watch_training(page, started: float, out: dict[str, Any], stop: asyncio.Event, timeout_s: float) -> None:
    """Poll the Train page until both jobs report a finished status (or ``stop`` + timeout)."""
    deadline = None
    while True:
        with contextlib.suppress(Exception):
            done = await training_status(page)
            if len(done) >= 2:
                out["finished"] = True
                out["duration_s"] = time.monotonic() - started
                out["status"] = done
                out["ok"] = all(t.startswith("completed") for t in done)
                return
        if stop.is_set() and deadline is None:
            deadline = time.monotonic() + timeout_s
        if deadline is not None and time.monotonic() > deadline:
            out["finished"] = False
            with contextlib.suppress(Exception):
                out["progress"] = await page.locator('[data-testid="stProgress"]').all_inner_texts()
            return
        await asyncio.sleep(0.5)


# ---------------------------------------------------------------------------------------------
# The run


@dataclass
class LoadConfig:
    sessions: int = 8
    clicks: int = 20
    timeout_s: float = 120.0
    load_timeout_s: float = 300.0
    train: bool = True
    train_hidden: str = "64"
    train_epochs: int = 2
    train_batch: int = 128
    train_timeout_s: float = 600.0
    verbose: bool = True


async def drive(url: str, cfg: LoadConfig, server_pid: int | None = None) -> dict[str, Any]:
    """Open the sessions, start the training, click; ``out["sessions"]`` holds every :class:`Session`."""
    from playwright.async_api import async_playwright

    out: dict[str, Any] = {"training": {"started": False}}
    sessions = [Session(i) for i in range(cfg.sessions)]
    async with async_playwright() as p:
        # Chromium keeps at most 16 WebGL contexts alive (the oldest is lost beyond that), and every explorer page
        # draws two scattergl plots: raise the limit so that eight sessions can all draw.
        browser = await launch_chromium(p, [f"--max-active-webgl-contexts={max(16, 4 * (cfg.sessions + 1))}"])
        try:
            contexts = []
            for _ in range(cfg.sessions):
                ctx = await browser.new_context(viewport=VIEWPORT)
                await ctx.add_init_script(INIT_SCRIPT)
                contexts.append(ctx)
            t = time.monotonic()
            loaded = await asyncio.gather(
                *(open_session(c, url, s, cfg.load_timeout_s) for c, s in zip(contexts, sessions)),
                return_exceptions=True,
            )
            out["sessions_loaded_s"] = time.monotonic() - t
            for s, res in zip(sessions, loaded):
                if isinstance(res, BaseException):
                    s.errors.append(f"/explorer did not load: {type(res).__name__}: {str(res)[:300]}")
            out["rss_loaded_mb"] = rss_mb(server_pid) if server_pid else None
            live = [s for s in sessions if s.load_s is not None]
            if not live:
                raise RuntimeError("no session loaded /explorer")
            planes = [await live[0].page.evaluate(DATA_PLANE, n) for n in range(2)]
            plan, steps = plan_sessions(planes, cfg.sessions, cfg.clicks)
            out["grid_steps"] = steps

            train_page = None
            stop = asyncio.Event()
            watcher = None
            if cfg.train:
                train_ctx = await browser.new_context(viewport=VIEWPORT)
                await train_ctx.add_init_script(INIT_SCRIPT)
                try:
                    train_page = await start_training(
                        train_ctx, url, cfg.train_hidden, cfg.train_epochs, cfg.train_batch, cfg.load_timeout_s
                    )
                    started = time.monotonic()
                    out["training"] = {
                        "started": True,
                        "hidden": cfg.train_hidden,
                        "epochs": cfg.train_epochs,
                        "batch": cfg.train_batch,
                    }
                    watcher = asyncio.create_task(
                        watch_training(train_page, started, out["training"], stop, cfg.train_timeout_s)
                    )
                except Exception as exc:  # noqa: BLE001
                    out["training"] = {"started": False, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
            if cfg.verbose:
                print(
                    f"  {len(live)} sessions loaded in {out['sessions_loaded_s']:.1f} s; training "
                    f"{'started' if out['training'].get('started') else 'NOT started'}; clicking…",
                    flush=True,
                )
            t = time.monotonic()
            clicks_started = t
            await asyncio.gather(
                *(run_session(s, sessions, plan[s.index], steps, cfg.timeout_s, cfg.verbose) for s in live)
            )
            out["clicks_s"] = time.monotonic() - t
            if watcher is not None:
                finished_before = watcher.done()
                stop.set()
                await watcher
                tr = out["training"]
                if tr.get("finished"):
                    tr["finished_during_clicks"] = finished_before
                    tr["overlap_s"] = min(tr["duration_s"] - (clicks_started - started), out["clicks_s"])
                if train_page is not None:
                    train_session = Session(-1, page=train_page)
                    with contextlib.suppress(Exception):
                        await check_page(train_session, [], "train page")  # exception boxes only
                    out["training"]["errors"] = train_session.errors
            # A last look at every page: late foreign captions or exception boxes.
            for s in live:
                with contextlib.suppress(Exception):
                    await check_page(s, sessions, "end of run")
        finally:
            await browser.close()
    out["sessions"] = sessions
    return out


def run_load(cfg: LoadConfig, log_dir: Path) -> dict[str, Any]:
    """Start the server, drive the load, stop the server; returns the raw results."""
    env = {
        "VAE_MODELS_DIR": "models",
        "VAE_CACHE_DIR": str(log_dir / "cache"),
        "OMP_WAIT_POLICY": "PASSIVE",
        "VAE_PLANES": "server",
    }
    server = StreamlitServer(REPO_ROOT / "dashboard.py", env, log_dir / "streamlit.log")
    server.start(timeout=60)
    pid = server.proc.pid
    time.sleep(1.0)
    results: dict[str, Any] = {"rss_idle_mb": rss_mb(pid), "server_pid": pid}
    sampler = RssSampler(pid)
    sampler.start()
    try:
        results.update(asyncio.run(drive(server.url, cfg, pid)))
        time.sleep(3.0)  # sessions closed: let the server notice and drop them
        results["rss_after_mb"] = rss_mb(pid)
    finally:
        sampler.stop()
        results["rss_peak_mb"] = sampler.peak
        results["rss_samples"] = len(sampler.samples)
        server.stop()
    log = server.log.read_text(errors="replace") if server.log.exists() else ""
    results["server_tracebacks"] = log.count("Traceback (most recent call last)")
    results["server_log_tail"] = server.tail(40)
    return results


def digest(results: dict[str, Any]) -> dict[str, Any]:
    """Counts and statistics from :func:`run_load`'s raw results (JSON-friendly)."""
    sessions: list[Session] = results["sessions"]
    clicks = [r for s in sessions for r in s.results]
    lat = [r["latency_ms"] for r in clicks if r["latency_ms"] is not None]
    errors = [f"session {s.index}: {e}" for s in sessions for e in s.errors]
    errors += [f"session {s.index}: page error: {e}" for s in sessions for e in s.page_errors]
    return {
        "clicks": len(clicks),
        "clicks_planned": None,
        "answered": len(lat),
        "errors": errors,
        "foreign_sessions": sorted({s.index for s in sessions if s.foreign}),
        "foreign": [{"session": s.index, **f} for s in sessions for f in s.foreign],
        "latency_ms": summary(lat),
        "latency_by_kind": {
            k: summary([r["latency_ms"] for r in clicks if r["kind"] == k and r["latency_ms"]])
            for k in ("empty", "point")
        },
        "hover_unconfirmed": sum(not r["hover_confirmed"] for r in clicks),
        "per_session": [
            {
                "session": s.index,
                "load_s": s.load_s,
                "clicks": len(s.results),
                "images": sum(r["latency_ms"] is not None and r["error"] is None for r in s.results),
                "errors": len(s.errors) + len(s.page_errors),
                "foreign": len(s.foreign),
                "median_ms": (summary([r["latency_ms"] for r in s.results if r["latency_ms"]]) or {}).get("median"),
            }
            for s in sessions
        ],
        "per_click": clicks,
    }


# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=8, help="concurrent explorer sessions (default 8)")
    parser.add_argument("--clicks", type=int, default=20, help="clicks per session (default 20)")
    parser.add_argument("--json", type=Path, help="save every number to this JSON file")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any row fails")
    parser.add_argument("--timeout", type=float, default=120, help="seconds a click may take (default 120)")
    parser.add_argument("--rss-limit-mb", type=float, default=3072, help="bound on RSS after the run (default 3072)")
    parser.add_argument("--no-train", action="store_true", help="no training during the load")
    parser.add_argument("--train-hidden", default="64", help='hidden layers of both models (default "64")')
    parser.add_argument("--train-epochs", type=int, default=2, help="epochs of both models (default 2)")
    parser.add_argument("--train-batch", type=int, default=128, help="batch size of both models (default 128)")
    parser.add_argument("--quiet", action="store_true", help="no line per click")
    parser.add_argument("--keep-tmp", action="store_true", help="keep the temporary folder (log, cache)")
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    if args.sessions < 1 or args.clicks < 1:
        raise SystemExit("--sessions and --clicks must be at least 1")
    return args


def mb(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.0f} MB"


def click_rows(table: Table, cfg: LoadConfig, raw: dict[str, Any], d: dict[str, Any]) -> None:
    """Loading, answers, errors, foreign captions and latency of the sessions' clicks."""
    table.add("sessions x clicks", f"{cfg.sessions} x {cfg.clicks}")
    table.add("sessions: all /explorer loaded after", f"{raw.get('sessions_loaded_s', math.nan):.1f} s")
    answered = sum(p["images"] for p in d["per_session"])
    table.add(
        "clicks answered (new image at the clicked spot)",
        f"{answered}/{d['clicks_planned']}",
        "all",
        "PASS" if answered == d["clicks_planned"] else "FAIL",
    )
    table.add(
        "errors (timeouts, wrong captions, page errors, exception boxes)",
        str(len(d["errors"])),
        "0",
        "PASS" if not d["errors"] else "FAIL",
    )
    table.add(
        "sessions showing another session's coordinates",
        str(len(d["foreign_sessions"])),
        "0",
        "PASS" if not d["foreign_sessions"] else "FAIL",
    )
    lat = d["latency_ms"]
    if lat:
        table.add("click -> image: median", f"{lat['median']:.0f} ms")
        table.add("click -> image: p95", f"{lat['p95']:.0f} ms")
        table.add("click -> image: min / max", f"{lat['min']:.0f} / {lat['max']:.0f} ms")
        for kind, label in (("empty", "empty space (plane fragment rerun)"), ("point", "data point (page rerun)")):
            k = d["latency_by_kind"].get(kind)
            if k:
                table.add(f"  {label}: median / p95 ({k['n']})", f"{k['median']:.0f} / {k['p95']:.0f} ms")
    else:
        table.add("click -> image: median", "n/a")
    table.add("hover not seen before the click (planned spot used)", str(d["hover_unconfirmed"]))
    table.add("all clicks done after", f"{raw.get('clicks_s', math.nan):.1f} s")


def training_rows(table: Table, cfg: LoadConfig, training: dict[str, Any]) -> None:
    if not cfg.train:
        table.add("training during the load", "off")
    elif not training.get("started"):
        table.add("training started", f"no: {training.get('error')}", "yes", "FAIL")
    else:
        done = training.get("finished")
        table.add(
            "training finished (both models)",
            f"yes, {training['duration_s']:.1f} s" if done else f"no: {training.get('progress')}",
            "yes",
            "PASS" if done and training.get("ok") else "FAIL",
        )
        if done:
            table.add("  status", " / ".join(s.split(":")[0].split()[0] for s in training.get("status", [])))
            table.add("  training overlapped the clicks for", f"{max(training.get('overlap_s', 0.0), 0.0):.1f} s")


def server_rows(table: Table, raw: dict[str, Any], rss_limit_mb: float) -> None:
    """The server's memory through the run (the one held to ``rss_limit_mb``: after it) and its tracebacks."""
    table.add("server RSS idle (server up, no session)", mb(raw.get("rss_idle_mb")))
    table.add("server RSS with all sessions loaded", mb(raw.get("rss_loaded_mb")))
    table.add("server RSS peak (0.5 s samples)", mb(raw.get("rss_peak_mb")))
    after = raw.get("rss_after_mb")
    table.add(
        "server RSS after the run (sessions closed)",
        mb(after),
        f"< {rss_limit_mb:.0f} MB",
        "PASS" if after is not None and after < rss_limit_mb else "FAIL",
    )
    table.add("tracebacks in the server log", str(raw.get("server_tracebacks")))


def print_sessions(raw: dict[str, Any], d: dict[str, Any]) -> None:
    """A line per session, then the first errors and foreign captions, and the server log if it raised."""
    print("\nPer session:")
    for p in d["per_session"]:
        med = "n/a" if p["median_ms"] is None else f"{p['median_ms']:.0f} ms"
        load_s = "n/a" if p["load_s"] is None else f"{p['load_s']:.1f} s"
        print(
            f"  session {p['session']}: loaded {load_s}, {p['images']}/{p['clicks']} images, median {med}, "
            f"{p['errors']} errors, {p['foreign']} foreign captions"
        )
    for e in d["errors"][:30]:
        print(f"  ERROR {e}")
    for f in d["foreign"][:30]:
        print(f"  FOREIGN session {f['session']} {f['where']}: {f['caption']!r} (clicked by sessions {f['owners']})")
    if raw.get("server_tracebacks"):
        print("\nServer log (tail):\n" + raw.get("server_log_tail", ""))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    require_chromium()
    require_models(PAIR_2D)
    cfg = LoadConfig(
        sessions=args.sessions,
        clicks=args.clicks,
        timeout_s=args.timeout,
        train=not args.no_train,
        train_hidden=args.train_hidden,
        train_epochs=args.train_epochs,
        train_batch=args.train_batch,
        verbose=not args.quiet,
    )
    print(
        f"Load: {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, load {load_text()}; "
        f"{cfg.sessions} sessions x {cfg.clicks} clicks, training "
        f"{'off' if not cfg.train else f'hidden {cfg.train_hidden}, {cfg.train_epochs} epochs'}",
        flush=True,
    )
    tmp = Path(tempfile.mkdtemp(prefix="load-"))
    t0 = time.monotonic()
    try:
        raw = run_load(cfg, tmp)
    finally:
        if args.keep_tmp:
            print(f"(temporary folder kept: {tmp})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    d = digest(raw)
    d["clicks_planned"] = cfg.sessions * cfg.clicks
    wall = time.monotonic() - t0

    table = Table()
    click_rows(table, cfg, raw, d)
    training_rows(table, cfg, raw.get("training", {}))
    server_rows(table, raw, args.rss_limit_mb)
    table.add("benchmark wall time", f"{wall:.0f} s")
    print_sessions(raw, d)
    print(f"\nResults (load now {load_text()}):")
    table.print()
    print(f"\n{table.outcome()}")
    if args.json:
        payload = {k: v for k, v in raw.items() if k != "sessions"}
        payload.update(d)
        payload["rows"] = table.rows
        payload["failures"] = table.fails
        save_json(args.json, payload)
    return 1 if (args.strict and table.fails) else 0


if __name__ == "__main__":
    sys.exit(main())
