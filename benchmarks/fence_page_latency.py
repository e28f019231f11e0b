"""What the page's fence costs a decode: the same decoder run on the page's thread and in a fenced worker.

Run from the repository root (about a minute; it needs the shipped models and Chromium)::

    python benchmarks/fence_page_latency.py                # prints the table
    python benchmarks/fence_page_latency.py --requests 500 --json results.json

The shipped ae-2d's decoder (784-512-256-2, exported as the page gets it) is loaded twice in one headless
Chromium page served by ``streamlit run dashboard.py``: by ``lib/runtime.js``'s ``loadGraph`` as the
project's own exports run (main thread, graph optimisation "all"), and fenced as an imported model's
(``lib/fence.js``: a module worker with a watchdog, optimisation "disabled", no memory arena). Interleaved,
``--requests`` times each: one code (a hover's decode, posted to the worker and back) and, every tenth
time, a 30 x 30 grid (900 codes). Times are from the call to the outputs in hand, p50 / p95, in ms; also
each graph's load (for the fenced one: a worker started and the runtime compiled in it).

The two cores are shared with other work: the load average is printed first; compare the two columns of
one run rather than runs.
"""

from __future__ import annotations

import argparse
import base64
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks._browser import StreamlitServer, launch_chromium, require_chromium  # noqa: E402
from benchmarks._report import Table, check_load, save_json, summary  # noqa: E402

MEASURE = """
async ([model, vendor, requests]) => {
  const rt = await import("/app/static/lib/runtime.js");
  const bytes = Uint8Array.from(atob(model), (c) => c.charCodeAt(0));
  // Two URLs for the same bytes: loadGraph keeps one session per URL.
  const urls = [0, 1].map(() => URL.createObjectURL(new Blob([bytes])));
  const loads = {};
  let t = performance.now();
  const plain = await rt.loadGraph(vendor, urls[0]);
  loads.plain = performance.now() - t;
  t = performance.now();
  const fenced = await rt.loadGraph(vendor, urls[1], rt.DECODER_FENCE);
  loads.fenced = performance.now() - t;
  const one = { plain: [], fenced: [] }, grid = { plain: [], fenced: [] };
  const code = new Float32Array(2), codes = new Float32Array(900 * 2);
  for (let i = 0; i < codes.length; i++) codes[i] = Math.sin(i) * 3;
  for (const graph of [plain, fenced]) await graph.run(code, 1, [2]); // warm-up
  for (let i = 0; i < requests; i++) {
    code[0] = Math.cos(i) * 3;
    code[1] = Math.sin(i * 0.7) * 3;
    for (const [name, graph] of [["plain", plain], ["fenced", fenced]]) {
      t = performance.now();
      const out = await graph.run(code, 1, [2]);
      one[name].push(performance.now() - t);
      if (out.image.length !== 784) throw new Error("not one image");
      if (i % 10 === 0) {
        t = performance.now();
        await graph.run(codes, 900, [2]);
        grid[name].push(performance.now() - t);
      }
    }
  }
  return { loads, one, grid };
}
"""


def decoder_bytes(folder: Path) -> bytes:
    """The shipped ae-2d's decoder as the page runs it (vae.onnx.export, checked against torch)."""
    from vae.data import load_mnist
    from vae.models import to_float_images
    from vae.onnx.export import export_pair
    from vae.store import load_model

    model, stored = load_model(REPO_ROOT / "models" / "ae-2d")
    images, _ = load_mnist("test", REPO_ROOT / "data")
    pair = export_pair(model, folder / "pair", stored.weights_sha256, images=to_float_images(images[:64]))
    return pair.decoder.read_bytes()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="one-code decodes per graph (default 300)")
    parser.add_argument("--json", type=Path, help="also save the numbers here")
    args = parser.parse_args(argv)
    require_chromium()
    from playwright.sync_api import sync_playwright

    from app import vendor

    check_load("fence page latency")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = base64.b64encode(decoder_bytes(folder)).decode("ascii")
        module, wasm = (f"/app/static/vendor/{item.dest}" for item in vendor.FILES)
        env = {"VAE_MODELS_DIR": str(REPO_ROOT / "models"), "VAE_CACHE_DIR": str(folder / "cache")}
        server = StreamlitServer(REPO_ROOT / "dashboard.py", env, folder / "streamlit.log")
        server.start(90)
        try:
            with sync_playwright() as p:
                browser = launch_chromium(p)
                page = browser.new_page()
                page.goto(server.url)
                page.wait_for_selector("text=Home", timeout=90_000)
                result = page.evaluate(MEASURE, [model, {"module": module, "wasm": wasm}, args.requests])
                browser.close()
        finally:
            server.stop()
    table = Table()
    for name in ("plain", "fenced"):
        label = "main thread" if name == "plain" else "fenced worker"
        table.add(f"load, {label}", f"{result['loads'][name]:.0f} ms")
        one, grid = summary(result["one"][name]), summary(result["grid"][name])
        table.add(f"1 code, {label} (p50 / p95)", f"{one['median']:.2f} / {one['p95']:.2f} ms")
        table.add(f"900 codes, {label} (p50 / p95)", f"{grid['median']:.1f} / {grid['p95']:.1f} ms")
    table.print()
    if args.json:
        save_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
