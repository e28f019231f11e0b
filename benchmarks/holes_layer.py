"""What does the explorer's holes layer cost per view, for the dense and the conv 2-D pairs?

Run from the repository root (about three minutes; the shipped models and Chromium)::

    python benchmarks/holes_layer.py              # prints the table, exit 0
    python benchmarks/holes_layer.py --views 12 --json holes.json

Against a real ``streamlit run dashboard.py`` in headless Chromium (software WebGL, onnxruntime-web on one
WASM thread): the layer switched on, then ``--views`` wheel zooms in and out on the left plane; each new view
makes one map per plane (the decoder over a 24 x 24 grid of the visible region, then the judge on the 576
images, in chunks of 48). Timed in the page (``holesTimings``): from the map's start to its canvas, p50 / p95,
for the dense pair (ae-2d, vae-2d) and the conv pair (ae-2d-conv, vae-2d-conv). The baseline, in the same
run and page: one hover's decode (``drawnTimings``), the layer's cost in hover decodes.

The two cores are shared: the load average is printed first.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks._browser import StreamlitServer, launch_chromium, require_chromium  # noqa: E402
from benchmarks._report import Table, check_load, save_json, summary  # noqa: E402

PAIRS = {"dense": ("ae-2d", "vae-2d"), "conv": ("ae-2d-conv", "vae-2d-conv")}
VIEWPORT = {"width": 1600, "height": 1000}


def measure(page, url: str, views: int) -> tuple[list[float], list[float]]:
    page.goto(url)
    page.wait_for_function("globalThis.latentExplorer && globalThis.latentExplorer.ready", timeout=300_000)
    page.wait_for_timeout(500)
    box = page.evaluate("globalThis.latentExplorer.probe.box('left')")
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    # Hover decodes first, for the baseline.
    for k in range(40):
        page.mouse.move(x + (k % 10) * 9 - 45, y + (k // 10) * 9 - 18)
        page.wait_for_timeout(25)
    hovers = page.evaluate("globalThis.latentExplorer.drawnTimings.slice()")
    page.get_by_test_id("holes").click()
    for side in ("left", "right"):
        page.wait_for_function(f"globalThis.latentExplorer.probe.holes('{side}').drawn > 0", timeout=300_000)
    page.evaluate("globalThis.latentExplorer.holesTimings.length = 0")
    for k in range(views):
        drawn = page.evaluate("globalThis.latentExplorer.probe.holes('left').drawn")
        page.mouse.move(x, y)
        page.mouse.wheel(0, -300 if k % 2 == 0 else 300)
        page.wait_for_function(f"globalThis.latentExplorer.probe.holes('left').drawn > {drawn}", timeout=120_000)
        page.wait_for_timeout(300)
    return page.evaluate("globalThis.latentExplorer.holesTimings.slice()"), hovers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--json", type=Path)
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
                for name, (left, right) in PAIRS.items():
                    page = browser.new_page(viewport=VIEWPORT)
                    check_load(f"the {name} pair")
                    maps, hovers = measure(page, f"{server.url}/explorer?left={left}&right={right}", args.views)
                    m, h = summary(maps), summary(hovers)
                    table.add(f"holes map per view and plane, {name} pair ({left}, {right}), p50 / p95", fmt(m))
                    table.add("  baseline: one hover decode, p50 / p95", fmt(h))
                    if m and h:
                        table.add(
                            "  one map in hover decodes (p50 / p50)", f"{m['median'] / max(h['median'], 0.01):.0f}x"
                        )
                    results[name] = {"maps": m, "hovers": h}
                    page.close()
                browser.close()
        finally:
            server.stop()
    table.print()
    if args.json:
        save_json(args.json, results)
    return 0


def fmt(s) -> str:
    return "n/a" if s is None else f"{s['median']:.0f} / {s['p95']:.0f} ms"


if __name__ == "__main__":
    raise SystemExit(main())
