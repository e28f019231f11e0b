"""How fast does a slider of the Inside page answer, for the 16-D pair?

Run from the repository root (about two minutes; the shipped models and Chromium)::

    python benchmarks/slider_latency.py              # prints the table, exit 0
    python benchmarks/slider_latency.py --moves 300 --json sliders.json --strict

Against a real ``streamlit run dashboard.py`` in headless Chromium: the explorer opened on a link to the
16-D pair (ae-16d, vae-16d; the sidebar's pair is shared by every page), then the Inside page by its menu
entry; each of ``--moves`` arrow-key presses on a slider (both models, the first eight dimensions in turn)
is timed in the page from the input event to the decoded pixels drawn (``sliderTimings``). Target: p95 <= 16
ms. The baseline in the same run: hovering empty space on the explorer's planes for the same pair, timed the
same way (``drawnTimings``). The WebSocket frames sent while the sliders move are counted (target 0).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks._browser import StreamlitServer, launch_chromium, require_chromium  # noqa: E402
from benchmarks._report import Table, check_load, save_json, summary, verdict  # noqa: E402

TARGET_MS = 16.0


def fmt(s) -> str:
    return "n/a" if s is None else f"{s['median']:.1f} / {s['p95']:.1f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--moves", type=int, default=200)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--strict", action="store_true")
    args = parser.parse_args(argv)
    require_chromium()
    from playwright.sync_api import sync_playwright

    table, results = Table(), {}
    with tempfile.TemporaryDirectory() as tmp:
        env = {"VAE_MODELS_DIR": str(REPO_ROOT / "models"), "VAE_CACHE_DIR": str(Path(tmp) / "cache")}
        server = StreamlitServer(REPO_ROOT / "dashboard.py", env, Path(tmp) / "streamlit.log")
        server.start(90)
        try:
            with sync_playwright() as p:
                browser = launch_chromium(p)
                page = browser.new_page(viewport={"width": 1600, "height": 1000})
                sent: list[float] = []
                page.on("websocket", lambda ws: ws.on("framesent", lambda _: sent.append(time.monotonic())))
                page.goto(f"{server.url}/explorer?left=ae-16d&right=vae-16d&view=pca")
                page.wait_for_function("globalThis.latentExplorer && globalThis.latentExplorer.ready", timeout=300_000)
                page.wait_for_timeout(500)
                check_load("hovering (baseline)")
                box = page.evaluate("globalThis.latentExplorer.probe.box('right')")
                for k in range(args.moves):
                    page.mouse.move(
                        box["x"] + box["width"] * (0.2 + 0.6 * (k % 20) / 20),
                        box["y"] + box["height"] * (0.3 + 0.02 * (k % 7)),
                    )
                    page.wait_for_timeout(15)
                hovers = summary(page.evaluate("globalThis.latentExplorer.drawnTimings.slice()"))
                page.get_by_role("link", name="Inside the latent space").click()
                page.wait_for_function("globalThis.latentInside?.probes?.dimensions", timeout=300_000)
                page.wait_for_timeout(800)
                check_load("the sliders")
                frames = len(sent)
                for k in range(args.moves):
                    side, dim = ("left", "right")[k % 2], (k // 2) % 8
                    if k % 25 == 0 or k < 2:
                        page.get_by_test_id(f"slider-{side}-{dim}").focus()
                    page.keyboard.press("ArrowRight" if (k // 50) % 2 == 0 else "ArrowLeft")
                page.wait_for_timeout(500)
                sliders = summary(page.evaluate("globalThis.latentInside.sliderTimings.slice()"))
                moved_frames = len(sent) - frames
                table.add(
                    "slider move -> decoded pixels, 16-D pair, p50 / p95",
                    fmt(sliders),
                    f"p95 <= {TARGET_MS:.0f} ms",
                    verdict(sliders and sliders["p95"], TARGET_MS),
                )
                table.add("  baseline: hover -> decoded pixels on the explorer, same pair, p50 / p95", fmt(hovers))
                table.add(
                    "WebSocket frames sent while the sliders moved",
                    str(moved_frames),
                    "0",
                    "PASS" if moved_frames == 0 else "FAIL",
                )
                results.update(sliders=sliders, hovers=hovers, frames=moved_frames)
                browser.close()
        finally:
            server.stop()
    table.print()
    print(table.outcome())
    if args.json:
        save_json(args.json, results)
    return 1 if args.strict and table.fails else 0


if __name__ == "__main__":
    raise SystemExit(main())
