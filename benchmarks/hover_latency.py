"""How fast do the explorer's in-page planes answer the pointer, against the server's click path?

Run from the repository root (about ten minutes; it needs the shipped models and Chromium)::

    python benchmarks/hover_latency.py                 # prints the tables, exit 0
    python benchmarks/hover_latency.py --moves 400 --json results.json --strict

It drives Debian's Chromium (headless, the flags of ``benchmarks/_browser.py``) through Playwright against real
``streamlit run`` servers on free ports of 127.0.0.1, and measures, in one run:

1. **Cold start** (target <= 10 s): from launching ``streamlit run dashboard.py`` to both planes drawn on
   ``/explorer`` in a fresh page, with nothing in memory and an empty ``VAE_CACHE_DIR``, and the shipped
   models' ONNX exports where ``make setup`` puts them (``.cache/onnx``, made first if missing). Also reported:
   the same start when the two models were never exported (a model just trained, say): the export is then
   part of the first view.
2. **Bytes** the default page (``/``) and ``/explorer`` download on a first load (goal <= 20 MB for the
   explorer), and again when the browser has them cached; from the browser's own network log (CDP
   ``encodedDataLength``), WebSocket frames counted apart.
3. **Hover -> decoded pixels**, timed in the page with ``performance.now()`` from the ``pointermove``
   event's time stamp to the decoded digit written to its canvas ("drawn") and to the start of the next
   animation frame ("frame", the frame that shows it): p50 and p95 over ``--moves`` pointer moves spread
   over both planes (random spots, empty space and points alike), for the dense 2-D pair (ae-2d, vae-2d),
   the conv pair (ae-2d-conv, vae-2d-conv) and the 16-D pair (ae-16d, vae-16d, PCA view). Targets: p95 <= 16
   ms for the dense pair, <= 33 ms for conv and 16-D. The WebSocket frames sent while hovering are counted
   (target 0).
4. **Beside the server's click path**: the same dashboard with ``VAE_PLANES=server`` (Plotly planes, a
   rerun per click) and a bare two-plot Streamlit page, clicked on empty space (``benchmarks/
   click_latency.py``'s own measurement, interleaved): click -> decoded image. Target: hover p95 at
   least 5x faster than the bare page's median click.
5. **Eight sessions hovering at once** (eight browser contexts, each moving over both planes), against one
   session measured just before in the same way, and the server's CPU over the window (from ``/proc``,
   target near idle: < 10 % of one core). Twice: each session at one session's pointer rate (a move per 25 ms:
   eight headless browsers then share the machine's two cores, and Chromium alone spends ~5 ms of CPU per
   pointer move even on a bare page, so this measures the client machine), and the eight sharing that rate
   (a move per 200 ms each: the same work for the machine as one session), whose p95 is the one held to
   within 2x of one session's: what more sessions cost each other through the server.

The load average is printed before each part: the two cores are shared, and a busy machine inflates every
absolute time; ratios measured in the same run hold up better. ``--strict`` exits 1 on any FAIL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if not __package__ and str(REPO_ROOT) not in sys.path:  # run as a plain script from a checkout
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks._browser import StreamlitServer, launch_chromium, require_chromium
from benchmarks._report import Table, check_load, percentile
from benchmarks.click_latency import (
    baseline_server,
    choose,
    click_stats,
    click_targets,
    close_page,
    new_page,
    open_plots,
    run_clicks,
)

VIEWPORT = {"width": 1600, "height": 1000}
PAIRS = {
    "dense 2-D": ("ae-2d", "vae-2d"),
    "conv 2-D": ("ae-2d-conv", "vae-2d-conv"),
    "16-D (PCA view)": ("ae-16d", "vae-16d"),
}
TARGETS = {
    "cold_start_s": 10.0,
    "bytes_mb": 20.0,
    "dense 2-D": 16.0,
    "conv 2-D": 33.0,
    "16-D (PCA view)": 33.0,
    "speedup": 5.0,
    "sessions_ratio": 2.0,
    "server_cpu": 0.10,
}
READY = "globalThis.latentExplorer && globalThis.latentExplorer.ready"


def stats(values: Sequence[float]) -> dict[str, float] | None:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return None
    return {"n": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95), "max": max(values)}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its threads so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------
# In the page


def choose_pair(page, left: str, right: str, timeout_s: float = 300) -> None:
    """Pick the pair in the sidebar, then wait until the page's planes show it and can decode."""
    for label, name in (("Left model", left), ("Right model", right)):
        choose(page, label, name)
        page.wait_for_timeout(300)
    page.wait_for_function(
        """([l, r]) => { const e = globalThis.latentExplorer; if (!e || !e.ready || !e.probe) return false;
                        const names = e.probe.titles(); return names[0] === l && names[1] === r; }""",
        arg=[left, right],
        polling=100,
        timeout=timeout_s * 1000,
    )
    page.wait_for_timeout(1500)  # let both sessions and points settle


# The planes live in the component's shadow root: the page's own probe says where they are.
BOXES = "() => Object.fromEntries(['left', 'right'].map((s) => [s, globalThis.latentExplorer.probe.box(s)]))"


def plan_moves(boxes: dict[str, dict[str, float]], moves: int, seed: int) -> list[tuple[str, float, float]]:
    """``moves`` page positions alternating between the planes, uniformly over each plane's visible square."""
    rng = random.Random(seed)
    out = []
    for i in range(moves):
        side = ("left", "right")[i % 2]
        box = boxes[side]
        out.append(
            (side, box["x"] + 4 + rng.random() * (box["width"] - 8), box["y"] + 4 + rng.random() * (box["height"] - 8))
        )
    return out


RESET = "globalThis.latentExplorer.timings.length = 0; globalThis.latentExplorer.drawnTimings.length = 0"
READ = "[globalThis.latentExplorer.drawnTimings.slice(), globalThis.latentExplorer.timings.slice()]"


def measure_hover(page, moves: int, seed: int = 0, pause_ms: int = 25) -> dict[str, Any]:
    """Move over both planes; the page's own timings of each decode (ms)."""
    page.evaluate(RESET)
    for _, x, y in plan_moves(page.evaluate(BOXES), moves, seed):
        page.mouse.move(x, y)
        page.wait_for_timeout(pause_ms)
    page.wait_for_timeout(200)
    page.mouse.move(2, VIEWPORT["height"] - 2)  # off the planes
    drawn, frame = page.evaluate(READ)
    return {"drawn_ms": stats(drawn), "frame_ms": stats(frame), "moves": moves}


async def hover_session(context, url: str, moves: int, seed: int, ready_timeout_s: float) -> dict[str, Any]:
    page = await context.new_page()
    await page.goto(f"{url}/explorer", timeout=ready_timeout_s * 1000)
    await page.wait_for_function(READY, polling=100, timeout=ready_timeout_s * 1000)
    await page.wait_for_timeout(1000)
    return {"page": page, "moves": plan_moves(await page.evaluate(BOXES), moves, seed)}


async def run_sessions(
    url: str, sessions: int, moves: int, ready_timeout_s: float, pid: int, pause_ms: int = 25
) -> dict[str, Any]:
    """``sessions`` contexts open the explorer, then all hover at once; their timings and the server's CPU."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await launch_chromium(p)
        try:
            contexts = [await browser.new_context(viewport=VIEWPORT) for _ in range(sessions)]
            opened = await asyncio.gather(
                *(hover_session(c, url, moves, 100 + i, ready_timeout_s) for i, c in enumerate(contexts))
            )
            for s in opened:
                await s["page"].evaluate(RESET)
            cpu0, wall0 = cpu_seconds(pid), time.monotonic()

            async def hover(s):
                for _, x, y in s["moves"]:
                    await s["page"].mouse.move(x, y)
                    await asyncio.sleep(pause_ms / 1000)

            await asyncio.gather(*(hover(s) for s in opened))
            wall = time.monotonic() - wall0
            cpu = cpu_seconds(pid) - cpu0
            await asyncio.sleep(0.3)
            drawn, frame = [], []
            for s in opened:
                d, f = await s["page"].evaluate(READ)
                drawn += d
                frame += f
            return {
                "sessions": sessions,
                "drawn_ms": stats(drawn),
                "frame_ms": stats(frame),
                "server_cpu_s": cpu,
                "wall_s": wall,
                "server_cpu_share": cpu / wall if wall > 0 else None,
            }
        finally:
            await browser.close()


def measure_bytes(browser, url: str, path: str, ready: str | None) -> dict[str, Any]:
    """Bytes over the network for a first load of ``path`` in a fresh context, then for a reload."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    totals = {"http": 0, "ws": 0, "requests": 0}
    cdp.on(
        "Network.loadingFinished", lambda e: totals.__setitem__("http", totals["http"] + e.get("encodedDataLength", 0))
    )
    cdp.on("Network.requestWillBeSent", lambda e: totals.__setitem__("requests", totals["requests"] + 1))
    cdp.on(
        "Network.webSocketFrameReceived",
        lambda e: totals.__setitem__("ws", totals["ws"] + len(e["response"]["payloadData"])),
    )
    out = {}
    try:
        for visit in ("first", "cached"):
            for key in totals:
                totals[key] = 0
            page.goto(f"{url}{path}", timeout=300_000)
            if ready:
                page.wait_for_function(ready, polling=100, timeout=300_000)
            else:
                page.wait_for_load_state("networkidle")
            page.wait_for_timeout(2500)
            out[visit] = {
                "http_mb": totals["http"] / 1e6,
                "websocket_mb": totals["ws"] / 1e6,
                "requests": totals["requests"],
            }
            if visit == "first":
                page.evaluate("globalThis.latentExplorer && (globalThis.latentExplorer.ready = false)")
    finally:
        context.close()
    return out


def measure_cold_start(browser, server: StreamlitServer, timeout_s: float) -> float:
    """Seconds from ``streamlit run`` to both planes drawn in a fresh page on /explorer."""
    page = new_page(browser)
    try:
        server.start(timeout=timeout_s)
        page.goto(f"{server.url}/explorer", timeout=timeout_s * 1000)
        page.wait_for_function(READY, polling=20, timeout=timeout_s * 1000)
        page.evaluate("new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
        return time.monotonic() - server.launched
    finally:
        close_page(page)


# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=200, help="pointer moves per pair (default 200)")
    parser.add_argument("--clicks", type=int, default=20, help="timed clicks per server page (default 20)")
    parser.add_argument("--sessions", type=int, default=8, help="sessions hovering at once (default 8)")
    parser.add_argument("--session-moves", type=int, default=100, help="moves per session when several hover")
    parser.add_argument("--skip-clicks", action="store_true", help="skip the server click path")
    parser.add_argument("--skip-sessions", action="store_true", help="skip the many-sessions part")
    parser.add_argument("--pairs", nargs="*", default=list(PAIRS), help=f"pairs to hover (default: {', '.join(PAIRS)})")
    parser.add_argument("--json", type=Path, help="save every number here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    return parser


def cold_start_step(
    browser, dash: StreamlitServer, unexported: StreamlitServer, setup_exports: Path, results: dict[str, Any]
) -> None:
    """Part 1: the never-exported start first (then stopped), then the dashboard, which stays up."""
    print("\n1. Cold start: streamlit run -> both planes drawn on /explorer", flush=True)
    from vae.onnx.export import ExportCache, cache_store

    cache_store(REPO_ROOT / "models", ExportCache(setup_exports))  # what make setup does; quick when done
    check_load("cold start")
    results["cold_start_unexported_s"] = measure_cold_start(browser, unexported, 300)
    unexported.stop()
    results["cold_start_s"] = measure_cold_start(browser, dash, 300)
    print(
        f"  after make setup: {results['cold_start_s']:.1f} s; models never exported (exports made "
        f"on the way): {results['cold_start_unexported_s']:.1f} s",
        flush=True,
    )


def bytes_step(browser, dash: StreamlitServer, results: dict[str, Any]) -> None:
    print("\n2. Bytes downloaded", flush=True)
    results["bytes"] = {
        "home": measure_bytes(browser, dash.url, "/", None),
        "explorer": measure_bytes(browser, dash.url, "/explorer", READY),
    }
    for page_name, visits in results["bytes"].items():
        print(
            f"  {page_name}: "
            + "; ".join(
                f"{v}: {d['http_mb']:.2f} MB over HTTP ({d['requests']} requests) + {d['websocket_mb']:.2f} MB WebSocket"
                for v, d in visits.items()
            ),
            flush=True,
        )


def hover_step(browser, dash: StreamlitServer, pairs: Sequence[str], moves: int, results: dict[str, Any]) -> None:
    """Part 3: every pair in one page, counting the WebSocket frames the page sends while hovering."""
    print("\n3. Hover -> decoded pixels, in the page", flush=True)
    page = browser.new_context(viewport=VIEWPORT).new_page()
    sent = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda _: sent.append(1)))
    page.goto(f"{dash.url}/explorer", timeout=300_000)
    page.wait_for_function(READY, polling=100, timeout=300_000)
    results["hover"] = {}
    for name in pairs:
        left, right = PAIRS[name]
        check_load(f"hovering the {name} pair")
        choose_pair(page, left, right)
        before = len(sent)
        out = measure_hover(page, moves)
        out["frames_sent"] = len(sent) - before
        results["hover"][name] = out
        d, f = out["drawn_ms"], out["frame_ms"]
        print(
            f"  {name:16s} drawn p50 {d['p50']:5.1f} / p95 {d['p95']:5.1f} ms; frame p50 {f['p50']:5.1f} "
            f"/ p95 {f['p95']:5.1f} ms ({d['n']} decodes); frames sent while hovering: {out['frames_sent']}",
            flush=True,
        )
    close_page(page)


def clicks_step(browser, env: dict[str, str], tmp: Path, clicks: int, results: dict[str, Any]) -> None:
    """Part 4 against servers of its own, stopped after; an error is recorded and the run goes on."""
    print("\n4. The server's click path: dashboard (VAE_PLANES=server) vs a bare two-plot page", flush=True)
    check_load("clicks")
    plotly_dash = StreamlitServer(REPO_ROOT / "dashboard.py", {**env, "VAE_PLANES": "server"}, tmp / "server-path.log")
    base = baseline_server(tmp / "baseline", tmp / "baseline.log")
    try:
        plotly_dash.start(60)
        base.start(60)
        pages = [open_plots(browser, f"{plotly_dash.url}/explorer", 300), open_plots(browser, base.url, 300)]
        targets = click_targets(*pages, clicks)
        run_clicks(targets, clicks, timeout_s=60)
        results["clicks"] = {t.name: click_stats(t)["latency_ms"] for t in targets}
        for pg in pages:
            close_page(pg)
    except Exception as exc:  # noqa: BLE001 - reported, the run goes on
        results["errors"]["clicks"] = repr(exc)
        print(f"  ERROR: {exc!r}", flush=True)
    finally:
        plotly_dash.stop()
        base.stop()


def sessions_step(dash: StreamlitServer, sessions: int, session_moves: int, results: dict[str, Any]) -> None:
    """Part 5, each round in a browser of its own (the async API): one session, then ``sessions`` at one
    session's rate each, then ``sessions`` sharing that rate."""
    print(f"\n5. One session, then {sessions} sessions hovering at once (dense 2-D pair)", flush=True)
    check_load("sessions")
    pid = dash.proc.pid
    results["one_session"] = asyncio.run(run_sessions(dash.url, 1, session_moves, 300, pid))
    results["many_sessions"] = asyncio.run(run_sessions(dash.url, sessions, session_moves, 600, pid))
    results["many_sessions_shared_rate"] = asyncio.run(
        run_sessions(dash.url, sessions, session_moves, 600, pid, pause_ms=25 * sessions)
    )
    for key in ("one_session", "many_sessions", "many_sessions_shared_rate"):
        r = results[key]
        print(
            f"  {r['sessions']} session(s): frame p50 {r['frame_ms']['p50']:.1f} / p95 {r['frame_ms']['p95']:.1f} ms, "
            f"drawn p95 {r['drawn_ms']['p95']:.1f} ms; server CPU {r['server_cpu_s']:.2f} s over {r['wall_s']:.1f} s "
            f"({100 * r['server_cpu_share']:.1f} % of a core)",
            flush=True,
        )


def measure(args: argparse.Namespace, tmp: Path, results: dict[str, Any]) -> None:
    """Every part against servers in ``tmp``, all stopped on return; fills ``results``."""
    from playwright.sync_api import sync_playwright

    setup_exports = REPO_ROOT / ".cache" / "onnx"
    env = {"VAE_MODELS_DIR": "models", "VAE_CACHE_DIR": str(tmp / "cache"), "VAE_ONNX_DIR": str(setup_exports)}
    dash = StreamlitServer(REPO_ROOT / "dashboard.py", env, tmp / "dashboard.log")
    unexported = StreamlitServer(
        REPO_ROOT / "dashboard.py",
        {**env, "VAE_CACHE_DIR": str(tmp / "cache-2"), "VAE_ONNX_DIR": str(tmp / "onnx")},
        tmp / "unexported.log",
    )
    try:
        with sync_playwright() as p:
            browser = launch_chromium(p)
            try:
                cold_start_step(browser, dash, unexported, setup_exports, results)
                bytes_step(browser, dash, results)
                hover_step(browser, dash, args.pairs, args.moves, results)
                if not args.skip_clicks:
                    clicks_step(browser, env, tmp, args.clicks, results)
            finally:
                browser.close()
        if not args.skip_sessions:
            sessions_step(dash, args.sessions, args.session_moves, results)
    finally:
        dash.stop()
        unexported.stop()


def report(results: dict[str, Any], sessions: int) -> Table:
    """The table's rows; a result of None (reported, no target) shows as n/a."""
    table = Table()

    def add(measure, value, target, ok):
        table.add(measure, value, target, "n/a" if ok is None else ("PASS" if ok else "FAIL"))

    cold = results["cold_start_s"]
    add("cold start: streamlit run -> both planes drawn", f"{cold:.1f} s", "<= 10 s", cold <= TARGETS["cold_start_s"])
    add("the same, models never exported", f"{results['cold_start_unexported_s']:.1f} s", "(reported)", None)
    explorer_mb = (
        results["bytes"]["explorer"]["first"]["http_mb"] + results["bytes"]["explorer"]["first"]["websocket_mb"]
    )
    add("/explorer first load, bytes", f"{explorer_mb:.1f} MB", "<= 20 MB", explorer_mb <= TARGETS["bytes_mb"])
    home_mb = results["bytes"]["home"]["first"]["http_mb"] + results["bytes"]["home"]["first"]["websocket_mb"]
    add("/ (Home) first load, bytes", f"{home_mb:.1f} MB", "<= 20 MB", home_mb <= TARGETS["bytes_mb"])
    for name, out in results.get("hover", {}).items():
        p95 = out["drawn_ms"]["p95"]
        add(
            f"hover {name}: drawn p50 / p95",
            f"{out['drawn_ms']['p50']:.1f} / {p95:.1f} ms",
            f"p95 <= {TARGETS[name]:g} ms",
            p95 <= TARGETS[name],
        )
        add(
            f"hover {name}: frame p50 / p95",
            f"{out['frame_ms']['p50']:.1f} / {out['frame_ms']['p95']:.1f} ms",
            "(reported)",
            None,
        )
        add(f"hover {name}: frames sent", str(out["frames_sent"]), "0", out["frames_sent"] == 0)
    clicks = results.get("clicks")
    if clicks and clicks.get("baseline") and results.get("hover", {}).get("dense 2-D"):
        bare = clicks["baseline"]["median"]
        dash_click = clicks["dashboard"]["median"] if clicks.get("dashboard") else math.nan
        hover_p95 = results["hover"]["dense 2-D"]["frame_ms"]["p95"]
        add(
            "server path click, dashboard median / p95",
            f"{dash_click:.0f} / {clicks['dashboard']['p95']:.0f} ms",
            "(reported)",
            None,
        )
        add(
            "server path click, bare page median / p95",
            f"{bare:.0f} / {clicks['baseline']['p95']:.0f} ms",
            "(reported)",
            None,
        )
        add(
            "bare click median / hover frame p95 (dense)",
            f"{bare / hover_p95:.1f}x",
            ">= 5x",
            bare / hover_p95 >= TARGETS["speedup"],
        )
    if "many_sessions" in results:
        one = results["one_session"]["frame_ms"]["p95"]
        many = results["many_sessions"]["frame_ms"]["p95"]
        shared = results["many_sessions_shared_rate"]["frame_ms"]["p95"]
        add(
            f"{sessions} sessions, each a move / 25 ms: frame p95",
            f"{many:.1f} vs {one:.1f} ms ({many / one:.1f}x)",
            "(client CPU)",
            None,
        )
        add(
            f"{sessions} sessions sharing that rate: frame p95",
            f"{shared:.1f} vs {one:.1f} ms ({shared / one:.2f}x)",
            "<= 2x",
            shared / one <= TARGETS["sessions_ratio"],
        )
        for key in ("many_sessions", "many_sessions_shared_rate"):
            share = results[key]["server_cpu_share"]
            add(
                f"server CPU while {sessions} sessions hover ({'full' if key == 'many_sessions' else 'shared'} rate)",
                f"{100 * share:.1f} % of a core",
                "< 10 %",
                share < TARGETS["server_cpu"],
            )
    return table


def print_rows(rows: list[tuple[str, str, str, str]]) -> None:
    """Every column left-aligned, a rule under each header: this benchmark's layout, kept as it was."""
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    print()
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    require_chromium()
    print(
        f"Hover latency: {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{args.moves} moves per pair"
    )
    tmp = Path(tempfile.mkdtemp(prefix="hover-latency-"))
    results: dict[str, Any] = {"load_at_start": list(os.getloadavg()), "errors": {}}
    try:
        measure(args, tmp, results)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    table = report(results, args.sessions)
    print_rows(table.rows)
    print(f"\nload average at the end: {' / '.join(f'{v:.2f}' for v in os.getloadavg())} (1/5/15 min)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 1 if (args.strict and table.fails) else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
