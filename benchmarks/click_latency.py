"""How quickly does the dashboard start, answer a click on empty space, and switch a 16-D pair to UMAP?

Run from the repository root (no install needed; it takes several minutes, most of it fitting UMAP)::

    python benchmarks/click_latency.py                      # prints the tables, exit 0
    python benchmarks/click_latency.py --clicks 40 --json results.json --strict
    python benchmarks/click_latency.py --skip-umap          # start-up and clicks only (about a minute)

It drives Debian's Chromium (``/usr/bin/chromium``, headless, the flags of ``benchmarks/_browser.py``) through
Playwright against real ``streamlit run`` servers on free ports of 127.0.0.1, each stopped afterwards, and
measures, in one run:

1. **Start-up** (target <= 10 s): from launching ``streamlit run dashboard.py`` (a fresh process, a fresh
   ``VAE_CACHE_DIR`` in a temporary folder, ``VAE_MODELS_DIR=models``) to both latent plots drawn on
   ``/explorer`` in a fresh page (both ``.js-plotly-plot`` have ``_fullLayout``, eleven scattergl traces
   and a scattergl scene that is no longer dirty). Chromium is launched before the server, so its own
   start is not counted. Also reported: port open, first byte and first contentful paint of the page.
2. **Click on empty space -> decoded image** on the explorer's default pair (ae-2d, vae-2d; 10,000 points
   per plot), alternating between the two plots, at 6 % in from each of the four corners of the visible
   plane and at interior grid points that are empty space (nearest data point >= 12 px away, spread out by
   farthest-point sampling). Each click is checked: the caption "<model> decodes (x, y)" must name the
   clicked spot within one click-grid step (a corner must decode at the corner). The time runs, in the
   browser's own clock (``performance.now()``), from the ``mousedown`` of ``page.mouse.click`` to the load
   of the new decoded ``<img>`` (new ``src``, ``complete`` and ``naturalWidth > 0``), caught by a
   MutationObserver, a capturing ``load`` listener and a 10 ms poll installed before the click; so no
   Playwright round trip is counted. A WebSocket hook splits it into click -> rerun request sent -> first
   reply -> new ``src`` in the DOM -> image loaded, and counts the bytes the server sent. Before each click
   the mouse glides to the spot and the benchmark waits until plotly.js hovers the expected point (plotly
   selects the hovered point on click), then for 250 ms without WebSocket traffic. One untimed warm-up
   click per plot comes first. Target: median <= 200 ms.
3. **Baseline**: a bare two-plot Streamlit page written to a temporary folder: the same two models
   (``vae.store.load_model``), the 10,000 test images embedded once (``st.cache_resource``), and on every
   run two fresh ``vae.plots.scatter.latent_scatter(..., grid=ClickGrid.square(points))`` figures passed to
   ``st.plotly_chart(on_select="rerun", selection_mode="points")``, the clicked (x, y) decoded and shown
   with ``st.image`` captioned "<model> decodes (x, y)". No fragments, no cached figures, and Streamlit's
   default configuration (it runs from its own folder, so the project's ``.streamlit/config.toml`` is not
   read; ``--baseline-config project`` runs it with the project's). Same clicks, same measurement; the dashboard's and the baseline's clicks are interleaved (two of one, then two of the
   other) so load from other jobs hits both alike. Target: dashboard median / baseline median <= 1.0.
4. **UMAP view switch** on the 16-D pair, driving the real widgets (sidebar "Left model" = ae-16d, "Right
   model" = vae-16d, then the "2-D view (D > 2)" select box): UMAP (first time: two fits, reported, up to
   ``--umap-timeout``), back to PCA, then UMAP again, timed from the ``mousedown`` on the option to both plot
   titles containing "UMAP view" with their scenes drawn. Target <= 1 s. Then, unless ``--skip-cold``,
   the server is restarted on the same ``VAE_CACHE_DIR`` and the first UMAP switch of the new process (a
   disk-cache hit) is timed too (reported, no target).

The load average is printed first; above 1.5 other jobs are competing for the two cores and absolute times
are inflated (trust the ratio more than the milliseconds). Exit code 0 whether targets pass or fail, unless
``--strict`` is given (then 1 on any FAIL). ``--json PATH`` saves every number, per click too.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
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
from benchmarks._report import LOAD_WARNING, Table, check_load, load_text, save_json, summary, verdict

VIEWPORT = {"width": 1600, "height": 1300}
PAIR_2D = ("ae-2d", "vae-2d")
PAIR_16D = ("ae-16d", "vae-16d")
CORNER_INSET = 0.06  # corners are clicked this fraction of the visible plane in from each edge
EMPTY_PX = 12.0  # an interior spot is "empty" when no data point is nearer than this on screen
QUIET_MS = 250  # before each click: this long without WebSocket traffic

TARGETS = {
    "startup_s": 10.0,
    "click_median_ms": 200.0,
    "ratio": 1.0,
    "umap_switch_s": 1.0,
}

# ---------------------------------------------------------------------------------------------
# In-page instrumentation, installed before any page script runs.

INIT_SCRIPT = r"""
(() => {
  // Every WebSocket frame, sent ('s') or received ('r'), with its time and size.
  const log = window.__wslog = [];
  const Native = window.WebSocket;
  const size = (d) => (d == null ? 0 : (d.byteLength ?? d.size ?? d.length ?? 0));
  class Logged extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (e) => {
        log.push(['r', performance.now(), size(e.data)]);
        if (log.length > 20000) log.splice(0, 10000);
      });
    }
    send(data) { log.push(['s', performance.now(), size(data)]); return super.send(data); }
  }
  window.WebSocket = Logged;

  const plots = () => [...document.querySelectorAll('.js-plotly-plot')];
  window.__plots = plots;
  // A plot is drawn when plotly.js has laid it out and its scattergl scene has rendered every trace.
  window.__drawn = (gd) => {
    const fl = gd && gd._fullLayout;
    if (!fl || !gd._fullData || !fl._plots || !fl._plots.xy) return false;
    const scene = fl._plots.xy._scene;
    const gl = gd._fullData.filter((t) => t.type === 'scattergl' && t.visible !== false);
    return gl.length >= 11 && !!scene && !!scene.scatter2d && scene.dirty === false;
  };
  window.__plotsReady = (n) => { const p = plots(); return p.length >= n && p.slice(0, n).every(window.__drawn); };
  window.__titlesAll = (text) => {
    const p = plots();
    return p.length >= 2 && p.every((gd) => window.__drawn(gd) && String((gd._fullLayout.title || {}).text || '').includes(text));
  };
  // The decoded image whose caption contains `text`: {src, caption, img} or null.
  window.__findImage = (text) => {
    for (const fig of document.querySelectorAll('[data-testid="stImage"]')) {
      const caption = fig.textContent || '';  // textContent: no forced layout while timing
      if (caption.includes(text)) { const img = fig.querySelector('img'); if (img) return {src: img.src, caption, img}; }
    }
    return null;
  };
  // Arm a timer: t0 at the next mousedown (capturing, so before plotly.js sees it), t1 when done() holds.
  window.__arm = (done, onProgress) => {
    if (window.__armed && window.__armed.stop) window.__armed.stop();
    const s = window.__armed = {t0: null, t1: null, tFrame: null, info: null, marks: {}};
    const check = () => {
      if (s.t0 === null || s.t1 !== null) return;
      if (onProgress) onProgress(s);
      const info = done();
      if (info) {
        s.t1 = performance.now(); s.info = info; s.stop();
        requestAnimationFrame((ts) => { s.tFrame = performance.now(); });
      }
    };
    const down = () => { if (s.t0 === null) { s.t0 = performance.now(); check(); } };
    const observer = new MutationObserver(check);
    observer.observe(document.documentElement, {subtree: true, childList: true, attributes: true, characterData: true});
    window.addEventListener('mousedown', down, true);
    document.addEventListener('load', check, true);
    const poll = setInterval(check, 10);
    s.stop = () => {
      observer.disconnect(); clearInterval(poll);
      window.removeEventListener('mousedown', down, true); document.removeEventListener('load', check, true);
    };
    return true;
  };
  window.__armImage = (text) => {
    const current = window.__findImage(text);
    const old = current ? current.src : null;
    return window.__arm(() => {
      const f = window.__findImage(text);
      if (!f || f.src === old) return null;
      if (!(f.img.complete && f.img.naturalWidth > 0)) return null;
      const entry = performance.getEntriesByName(f.src).slice(-1)[0];
      return {caption: f.caption, src: f.src,
              fetchStart: entry ? entry.startTime : null, responseEnd: entry ? entry.responseEnd : null};
    }, (s) => {
      if (s.marks.src == null) { const f = window.__findImage(text); if (f && f.src !== old) s.marks.src = performance.now(); }
    });
  };
  window.__armTitles = (text) => window.__arm(() => (window.__titlesAll(text) ? {text} : null));
})();
"""

# Page coordinates of latent point (x, y) in plot n, from plotly.js's own axis mapping (as tests/test_browser.py).
TO_PAGE = """([n, x, y]) => {
    const gd = window.__plots()[n];
    const box = gd.querySelector('.nsewdrag').getBoundingClientRect();
    return [box.left + gd._fullLayout.xaxis.l2p(x), box.top + gd._fullLayout.yaxis.l2p(y)];
}"""

# Everything needed to plan clicks on plot n: visible ranges, pixel size, the click grid and the data.
PLANE = """(n) => {
    const gd = window.__plots()[n];
    const fl = gd._fullLayout;
    const grid = gd._fullData.find((t) => t.legendgroup === '__click_grid__' || t.name === 'grid');
    const data = gd._fullData.filter((t) => t.type === 'scattergl' && t !== grid);
    return {x: fl.xaxis.range.slice(), y: fl.yaxis.range.slice(), xlen: fl.xaxis._length, ylen: fl.yaxis._length,
            title: String((fl.title || {}).text || ''),
            gx: grid ? Array.from(grid.x) : [], gy: grid ? Array.from(grid.y) : [],
            dx: data.flatMap((t) => Array.from(t.x)), dy: data.flatMap((t) => Array.from(t.y))};
}"""

# Is plotly.js hovering a point within `tol` px of (px, py) in plot n? (It selects the hovered point.)
HOVER_NEAR = """([n, px, py, tol]) => {
    const gd = window.__plots()[n];
    const hover = gd._hoverdata || [];
    const box = gd.querySelector('.nsewdrag').getBoundingClientRect();
    return hover.some((h) => {
        if (typeof h.x !== 'number' || typeof h.y !== 'number') return false;
        const hx = box.left + gd._fullLayout.xaxis.l2p(h.x), hy = box.top + gd._fullLayout.yaxis.l2p(h.y);
        return Math.hypot(hx - px, hy - py) <= tol;
    });
}"""

WS_QUIET = (
    "(ms) => { const log = window.__wslog || []; const last = log.length ? log[log.length - 1][1] : 0; "
    "return performance.now() - last >= ms; }"
)

BASELINE_PAGE = '''\
"""Bare two-plot page for benchmarks/click_latency.py: no fragments, no cached figures."""

import sys

sys.path.insert(0, {repo!r})

import numpy as np
import streamlit as st

from vae.data import load_mnist
from vae.explore import decode_codes
from vae.metrics import embed_images
from vae.images import to_uint8_image, upscale
from vae.plots.scatter import ClickGrid, latent_scatter, parse_selection
from vae.store import load_model

MODELS = {models!r}
DATA = {data!r}

st.set_page_config(page_title="bare two-plot page", layout="wide")


@st.cache_resource
def loaded():
    images, labels = load_mnist("test", DATA)
    planes = []
    for name, path in MODELS:
        model, stored = load_model(path)
        planes.append((name, stored.config.kind.upper(), model, embed_images(model, images).numpy()))
    return planes, labels.numpy()


planes, labels = loaded()
for column, (name, kind, model, codes) in zip(st.columns(2), planes):
    with column:
        fig = latent_scatter(codes, labels, title=f"{{name}} ({{kind}})", grid=ClickGrid.square(codes))
        event = st.plotly_chart(fig, on_select="rerun", selection_mode="points", key=f"plane_{{name}}",
                                width="stretch", theme=None)
        click = parse_selection(event)
        if click is not None:
            st.session_state[f"last_{{name}}"] = (click.x, click.y)
        last = st.session_state.get(f"last_{{name}}")
        if last is None:
            st.caption("Click anywhere in this plane to decode a digit there.")
            continue
        x, y = last
        image = decode_codes(model, np.array([[x, y]], dtype=np.float32))[0]
        st.image(upscale(to_uint8_image(image), 7), output_format="PNG", caption=f"{{name}} decodes ({{x:.2f}}, {{y:.2f}})")
'''


# ---------------------------------------------------------------------------------------------
# Pages and servers


def require_models(names: Sequence[str]) -> None:
    models_dir = REPO_ROOT / "models"
    for name in names:
        if not (models_dir / name).is_dir():
            raise SystemExit(f"model {name!r} not found in {models_dir}")


def baseline_server(folder: Path, log: Path, cwd: Path | None = None) -> StreamlitServer:
    """BASELINE_PAGE over the shipped 2-D pair, written to ``folder``, as a server not yet started. It runs
    from ``folder`` unless ``cwd`` says otherwise: there Streamlit reads no ``.streamlit/config.toml``."""
    folder.mkdir()
    script = folder / "bare_two_plots.py"
    script.write_text(
        BASELINE_PAGE.format(
            repo=str(REPO_ROOT),
            data=str(REPO_ROOT / "data"),
            models=[(m, str(REPO_ROOT / "models" / m)) for m in PAIR_2D],
        )
    )
    return StreamlitServer(script, log=log, cwd=cwd)


def new_page(browser):
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(INIT_SCRIPT)
    return context.new_page()


def close_page(page) -> None:
    with contextlib.suppress(Exception):
        page.context.close()


def wait_plots(page, n: int = 2, timeout_s: float = 180) -> None:
    page.wait_for_function("(n) => window.__plotsReady(n)", arg=n, polling=20, timeout=timeout_s * 1000)


def open_plots(browser, url: str, timeout_s: float = 180):
    """A fresh instrumented page on ``url``, returned once its two plots are drawn."""
    page = new_page(browser)
    page.goto(url, timeout=timeout_s * 1000)
    wait_plots(page, 2, timeout_s)
    return page


def wait_quiet(page, ms: int = QUIET_MS, timeout_s: float = 30) -> None:
    with contextlib.suppress(Exception):
        page.wait_for_function(WS_QUIET, arg=ms, polling=25, timeout=timeout_s * 1000)


# ---------------------------------------------------------------------------------------------
# 1. Start-up


def measure_startup(browser, server: StreamlitServer, timeout_s: float) -> dict[str, Any]:
    """Start ``server`` (not yet running) and open /explorer in a fresh page; times relative to launch."""
    page = new_page(browser)
    server.start(timeout=timeout_s)
    goto_at = time.monotonic()
    page.goto(f"{server.url}/explorer", timeout=timeout_s * 1000)
    page.wait_for_function("() => window.__plotsReady(2)", polling=20, timeout=timeout_s * 1000)
    ready_at = time.monotonic()
    nav = page.evaluate("""() => {
        const n = performance.getEntriesByType('navigation')[0] || {};
        const paint = Object.fromEntries(performance.getEntriesByType('paint').map((e) => [e.name, e.startTime]));
        return {responseStart: n.responseStart ?? null, domContentLoaded: n.domContentLoadedEventEnd ?? null,
                fcp: paint['first-contentful-paint'] ?? null, fp: paint['first-paint'] ?? null, now: performance.now()};
    }""")
    offset = goto_at - server.launched

    def since_launch(ms):
        return None if ms is None else offset + ms / 1000.0

    return {
        "page": page,
        "port_open_s": server.port_open - server.launched,
        "first_byte_s": since_launch(nav["responseStart"]),
        "first_contentful_paint_s": since_launch(nav["fcp"]),
        "plots_drawn_s": ready_at - server.launched,
    }


# ---------------------------------------------------------------------------------------------
# 2./3. Clicks


def plan_clicks(plane: dict[str, Any], n_interior: int) -> tuple[list[dict[str, Any]], float, float]:
    """Corners (6 % in) and ``n_interior`` empty interior grid points, in latent coordinates.

    Returns (spots, grid step x, grid step y). Each spot: label, x, y, nearest data point in px.
    """
    import numpy as np

    (x0, x1), (y0, y1) = plane["x"], plane["y"]
    sx, sy = plane["xlen"] / (x1 - x0), plane["ylen"] / (y1 - y0)  # px per latent unit
    gx, gy = np.asarray(plane["gx"], dtype=np.float64), np.asarray(plane["gy"], dtype=np.float64)
    data = np.stack([np.asarray(plane["dx"], np.float64) * sx, np.asarray(plane["dy"], np.float64) * sy], 1)
    n = round(math.sqrt(len(gx))) if len(gx) else 0
    step_x = (gx.max() - gx.min()) / (n - 1) if n > 1 else (x1 - x0) / 59
    step_y = (gy.max() - gy.min()) / (n - 1) if n > 1 else (y1 - y0) / 59

    def nearest_px(points_px: np.ndarray) -> np.ndarray:
        out = np.empty(len(points_px))
        for i in range(0, len(points_px), 256):
            chunk = points_px[i : i + 256]
            d2 = ((chunk[:, None, :] - data[None, :, :]) ** 2).sum(-1)
            out[i : i + 256] = np.sqrt(d2.min(1))
        return out

    spots = []
    for label, fx, fy in (
        ("corner top-left", CORNER_INSET, 1 - CORNER_INSET),
        ("corner top-right", 1 - CORNER_INSET, 1 - CORNER_INSET),
        ("corner bottom-right", 1 - CORNER_INSET, CORNER_INSET),
        ("corner bottom-left", CORNER_INSET, CORNER_INSET),
    ):
        x, y = x0 + fx * (x1 - x0), y0 + fy * (y1 - y0)
        spots.append({"label": label, "x": x, "y": y, "data_px": float(nearest_px(np.array([[x * sx, y * sy]]))[0])})

    if n > 1 and n_interior > 0:
        grid_px = np.stack([gx * sx, gy * sy], 1)
        fx, fy = (gx - x0) / (x1 - x0), (gy - y0) / (y1 - y0)
        inside = (fx > 0.15) & (fx < 0.85) & (fy > 0.15) & (fy < 0.85)
        dist = nearest_px(grid_px)
        for need in (EMPTY_PX, 9.0, 7.0, 0.0):
            candidates = np.flatnonzero(inside & (dist >= need))
            if len(candidates) >= n_interior:
                break
        chosen_px = [np.array([s["x"] * sx, s["y"] * sy]) for s in spots]
        centre = np.array([(x0 + x1) / 2 * sx, (y0 + y1) / 2 * sy])
        # Farthest-point sampling, from the empty spot nearest the centre.
        picks = [int(candidates[np.argmin(((grid_px[candidates] - centre) ** 2).sum(1))])] if len(candidates) else []
        while picks and len(picks) < min(n_interior, len(candidates)):
            taken = np.stack(chosen_px + [grid_px[p] for p in picks])
            gaps = np.sqrt(((grid_px[candidates][:, None, :] - taken[None]) ** 2).sum(-1)).min(1)
            picks.append(int(candidates[np.argmax(gaps)]))
        for k, p in enumerate(picks):
            spots.append(
                {"label": f"interior {k + 1}", "x": float(gx[p]), "y": float(gy[p]), "data_px": float(dist[p])}
            )
    return spots, float(step_x), float(step_y)


def parse_decoded(caption: str, name: str) -> tuple[float, float] | None:
    marker = f"{name} decodes ("
    start = caption.find(marker)
    if start < 0:
        return None
    inner = caption[start + len(marker) :].split(")", 1)[0]
    try:
        x, y = (float(v) for v in inner.split(","))
    except ValueError:
        return None
    return x, y


class ClickTarget:
    """One page (dashboard or baseline) with two plots to click, and its planned spots."""

    def __init__(self, name: str, page, models: Sequence[str], n_spots: int) -> None:
        self.name, self.page, self.models = name, page, list(models)
        self.planes, self.spots, self.steps = [], [], []
        for n in range(2):
            plane = self.page.evaluate(PLANE, n)
            spots, step_x, step_y = plan_clicks(plane, max(n_spots - 4, 1) + 1)  # +1: the warm-up spot
            self.planes.append({k: plane[k] for k in ("x", "y", "xlen", "ylen", "title")})
            # The warm-up takes the last interior spot; the timed clicks cycle through the rest.
            self.spots.append(spots)
            self.steps.append((step_x, step_y))
        self.cursor = [0, 0]
        self.results: list[dict[str, Any]] = []

    def next_spot(self, n: int, warmup: bool) -> dict[str, Any]:
        spots = self.spots[n]
        if warmup:
            return spots[-1]
        timed = spots[:-1] if len(spots) > 2 else spots
        order = self._interleave(timed)
        spot = order[self.cursor[n] % len(order)]
        self.cursor[n] += 1
        return spot

    @staticmethod
    def _interleave(timed: list[dict[str, Any]]) -> list[dict[str, Any]]:
        corners, interior = timed[:4], timed[4:]
        out = []
        for i in range(max(len(corners), len(interior))):
            out += corners[i : i + 1] + interior[i : i + 1]
        return out

    def click(self, n: int, warmup: bool = False, timeout_s: float = 60) -> dict[str, Any]:
        page, model = self.page, self.models[n]
        spot = self.next_spot(n, warmup)
        wait_quiet(page)
        px, py = page.evaluate(TO_PAGE, [n, spot["x"], spot["y"]])
        step_x, step_y = self.steps[n]
        plane = self.planes[n]
        tol = (
            0.75
            * math.hypot(
                step_x * plane["xlen"] / (plane["x"][1] - plane["x"][0]),
                step_y * plane["ylen"] / (plane["y"][1] - plane["y"][0]),
            )
            + 1.0
        )
        # plotly.js selects the point it is hovering: glide in and let the hover settle before clicking.
        page.mouse.move(px, py, steps=6)
        hovered = True
        try:
            page.wait_for_function(HOVER_NEAR, arg=[n, px, py, tol], polling=20, timeout=3000)
        except Exception:  # noqa: BLE001 - a hover not seen is recorded with the click, not fatal
            hovered = False
        page.wait_for_timeout(60)
        wait_quiet(page, ms=150)
        page.evaluate("(text) => window.__armImage(text)", f"{model} decodes")
        wall0 = time.perf_counter()
        page.mouse.click(px, py)
        error = None
        try:
            page.wait_for_function(
                "() => window.__armed && window.__armed.t1 !== null", polling=10, timeout=timeout_s * 1000
            )
        except Exception as exc:  # noqa: BLE001 - reported, the run goes on
            error = f"no new decoded image within {timeout_s:.0f} s ({type(exc).__name__})"
        wall = (time.perf_counter() - wall0) * 1000
        page.wait_for_timeout(30)  # let the rAF after the load land
        armed = page.evaluate("""() => { const s = window.__armed; s.stop();
            return {t0: s.t0, t1: s.t1, tFrame: s.tFrame, info: s.info, marks: s.marks,
                    ws: (window.__wslog || []).filter((e) => s.t0 !== null && e[1] >= s.t0 - 1)}; }""")
        result = {
            "page": self.name,
            "plot": n,
            "model": model,
            "spot": spot["label"],
            "warmup": warmup,
            "x": spot["x"],
            "y": spot["y"],
            "data_px": spot["data_px"],
            "hover_confirmed": hovered,
            "wall_ms": wall,
            "error": error,
        }
        t0, t1 = armed["t0"], armed["t1"]
        if t0 is not None and t1 is not None:
            result["latency_ms"] = t1 - t0
            result["frame_ms"] = (armed["tFrame"] - t0) if armed["tFrame"] is not None else None
            ws = [e for e in armed["ws"] if e[1] <= t1]
            sends = [e for e in ws if e[0] == "s" and e[1] >= t0]
            if sends:
                result["send_ms"] = sends[0][1] - t0
                replies = [e for e in ws if e[0] == "r" and e[1] >= sends[0][1]]
                if replies:
                    result["first_reply_ms"] = replies[0][1] - t0
                    result["last_reply_ms"] = replies[-1][1] - t0
                result["received_kb"] = sum(e[2] for e in ws if e[0] == "r" and e[1] >= t0) / 1024
            if armed["marks"].get("src") is not None:
                result["src_ms"] = armed["marks"]["src"] - t0
            info = armed["info"] or {}
            if info.get("fetchStart") is not None:
                result["img_fetch_ms"] = info["fetchStart"] - t0
                result["img_fetched_ms"] = info["responseEnd"] - t0
            decoded = parse_decoded(info.get("caption", ""), model)
            result["decoded"] = decoded
            if decoded is not None:
                # The caption rounds to 0.01; one grid step is the most a click can move to its grid point.
                result["match"] = (
                    abs(decoded[0] - spot["x"]) <= step_x + 0.011 and abs(decoded[1] - spot["y"]) <= step_y + 0.011
                )
            else:
                result["match"] = False
        else:
            result["latency_ms"] = None
            result["match"] = False
            result["error"] = error or "the click was not registered"
        self.results.append(result)
        return result


def click_targets(dash_page, base_page, clicks: int) -> list[ClickTarget]:
    """The dashboard's and the bare page's 2-D planes, each with spots planned for ``clicks`` clicks."""
    spots = math.ceil(clicks / 2)
    return [ClickTarget("dashboard", dash_page, PAIR_2D, spots), ClickTarget("baseline", base_page, PAIR_2D, spots)]


def run_clicks(targets: list[ClickTarget], clicks: int, timeout_s: float) -> None:
    """One warm-up click per plot, then ``clicks`` per target, two at a time (one per plot), interleaved."""
    for target in targets:
        target.page.bring_to_front()
        for n in range(2):
            target.click(n, warmup=True, timeout_s=timeout_s)
    done = {t.name: 0 for t in targets}
    while any(done[t.name] < clicks for t in targets):
        for target in targets:
            if done[target.name] >= clicks:
                continue
            target.page.bring_to_front()
            for _ in range(2):
                if done[target.name] >= clicks:
                    break
                n = done[target.name] % 2
                r = target.click(n, timeout_s=timeout_s)
                done[target.name] += 1
                lat = "   n/a" if r["latency_ms"] is None else f"{r['latency_ms']:6.0f}"
                print(
                    f"  {target.name:9s} {r['model']:7s} {r['spot']:20s} {lat} ms"
                    f"{'' if r['match'] else '  MISMATCH'}{'  ' + r['error'] if r['error'] else ''}",
                    flush=True,
                )


def click_stats(target: ClickTarget) -> dict[str, Any]:
    timed = [r for r in target.results if not r["warmup"]]
    keys = (
        "latency_ms",
        "frame_ms",
        "send_ms",
        "first_reply_ms",
        "last_reply_ms",
        "src_ms",
        "img_fetch_ms",
        "img_fetched_ms",
        "received_kb",
        "wall_ms",
    )
    return {
        "clicks": len(timed),
        "failed": sum(r["latency_ms"] is None for r in timed),
        "mismatches": [r for r in timed if not r["match"]],
        "hover_unconfirmed": sum(not r["hover_confirmed"] for r in timed),
        **{k: summary([r.get(k) for r in timed if r.get(k) is not None]) for k in keys},
        "warmup_ms": [r["latency_ms"] for r in target.results if r["warmup"]],
        "per_model": {
            m: summary([r["latency_ms"] for r in timed if r["model"] == m and r["latency_ms"] is not None])
            for m in target.models
        },
    }


# ---------------------------------------------------------------------------------------------
# 4. UMAP


def choose(page, label: str, option: str, *, arm: str | None = None, timeout_s: float = 60) -> None:
    """Pick ``option`` in the select box labelled ``label``; with ``arm``, arm the title timer just before."""
    # Streamlit 1.67 draws a select box as a react-aria combobox named by its label, with an "Open" button.
    combo = page.get_by_role("combobox", name=label, exact=True)
    box = page.locator('[data-testid="stSelectbox"]').filter(has=combo).first
    box.get_by_role("button", name="Open").click()
    choice = page.get_by_role("option").filter(has_text=option).first
    choice.wait_for(state="visible", timeout=timeout_s * 1000)
    if arm is not None:
        page.evaluate("(text) => window.__armTitles(text)", arm)
    choice.click()


def wait_armed(page, timeout_s: float) -> float:
    page.wait_for_function("() => window.__armed && window.__armed.t1 !== null", polling=20, timeout=timeout_s * 1000)
    armed = page.evaluate("() => { const s = window.__armed; s.stop(); return [s.t0, s.t1]; }")
    return (armed[1] - armed[0]) / 1000.0


def set_view(page, view: str, timeout_s: float) -> float:
    """Switch "2-D view (D > 2)" to ``view`` ("PCA"/"UMAP"); seconds until both titles say "<view> view"."""
    wait_quiet(page)
    choose(page, "2-D view (D > 2)", view, arm=f"{view} view")
    return wait_armed(page, timeout_s)


def open_16d_pair(page, timeout_s: float) -> float:
    """Pick the 16-D pair in the sidebar; seconds from the second pick to both planes drawn in PCA view."""
    wait_quiet(page)
    choose(page, "Left model", PAIR_16D[0])
    page.wait_for_function(
        "(t) => window.__drawn(window.__plots()[0]) && window.__plots()[0]._fullLayout.title.text.includes(t)",
        arg=f"{PAIR_16D[0]} ",
        polling=50,
        timeout=timeout_s * 1000,
    )
    wait_quiet(page)
    choose(page, "Right model", PAIR_16D[1], arm="PCA view")
    return wait_armed(page, timeout_s)


def measure_umap(page, timeout_s: float, umap_timeout_s: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    out["pair_16d_s"] = open_16d_pair(page, timeout_s)
    print(f"  16-D pair in PCA view after {out['pair_16d_s']:.2f} s; fitting UMAP (two models)…", flush=True)
    out["umap_first_s"] = set_view(page, "UMAP", umap_timeout_s)
    print(f"  first UMAP switch (fits): {out['umap_first_s']:.1f} s", flush=True)
    out["back_to_pca_s"] = set_view(page, "PCA", timeout_s)
    out["umap_again_s"] = set_view(page, "UMAP", timeout_s)
    print(f"  back to PCA {out['back_to_pca_s']:.2f} s, UMAP again {out['umap_again_s']:.2f} s", flush=True)
    out["titles"] = page.evaluate("() => window.__plots().map((gd) => gd._fullLayout.title.text)")
    return out


# ---------------------------------------------------------------------------------------------
# Report


def fmt_s(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f} s"


def fmt_ms(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.0f} ms"


def print_clicks(targets: list[ClickTarget]) -> None:
    print(
        "\nClicks (in-browser ms from mousedown; send = rerun request on the WebSocket, reply = first message"
        " back,\n src = new <img> src in the DOM, load = image loaded (the measured latency); KB = bytes received)"
    )
    head = (
        f"  {'page':9s} {'model':7s} {'spot':20s} {'clicked':>17s} {'decoded':>15s} {'px':>4s} "
        f"{'send':>5s} {'reply':>6s} {'src':>6s} {'load':>6s} {'KB':>6s}"
    )
    print(head)

    def cell(r: dict[str, Any], key: str) -> str:
        return "" if r.get(key) is None else f"{r[key]:.0f}"

    for target in targets:
        for r in target.results:
            dec = r.get("decoded")
            print(
                f"  {r['page']:9s} {r['model']:7s} {(r['spot'] + (' (warm-up)' if r['warmup'] else ''))[:20]:20s} "
                f"({r['x']:6.2f},{r['y']:6.2f}) {'' if dec is None else f'({dec[0]:5.2f},{dec[1]:5.2f})':>15s} "
                f"{r['data_px']:4.0f} {cell(r, 'send_ms'):>5s} {cell(r, 'first_reply_ms'):>6s} {cell(r, 'src_ms'):>6s} "
                f"{cell(r, 'latency_ms'):>6s} {cell(r, 'received_kb'):>6s}"
                f"{'' if r['match'] else '  MISMATCH'}{'' if r['hover_confirmed'] else '  (hover not seen)'}"
            )


# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clicks", type=int, default=20, help="timed clicks per page (default 20)")
    parser.add_argument("--json", type=Path, help="save every result to this JSON file")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any target fails")
    parser.add_argument("--umap-timeout", type=float, default=900, help="seconds allowed for the first UMAP fits")
    parser.add_argument("--skip-umap", action="store_true", help="skip the UMAP view switch (section 4)")
    parser.add_argument("--skip-cold", action="store_true", help="skip the restarted-server UMAP switch")
    parser.add_argument(
        "--baseline-config",
        choices=("default", "project"),
        default="default",
        help="Streamlit configuration of the bare page: Streamlit's defaults (default) or the project's "
        ".streamlit/config.toml",
    )
    parser.add_argument("--keep-tmp", action="store_true", help="keep the temporary folder (logs, cache, page)")
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    if args.clicks < 1:
        raise SystemExit("--clicks must be at least 1")
    return args


# ---------------------------------------------------------------------------------------------
# The run, section by section


def startup_step(browser, dash: StreamlitServer, results: dict[str, Any]):
    """Section 1; returns the page it opened, the dashboard's page for the clicks. An error ends the run."""
    print("\n1. Start-up: streamlit run dashboard.py -> both plots drawn on /explorer", flush=True)
    try:
        startup = measure_startup(browser, dash, timeout_s=180)
        page = startup.pop("page")
        results["startup"] = startup
        print("  " + ", ".join(f"{k} {v:.2f} s" for k, v in startup.items() if v is not None), flush=True)
    except Exception as exc:
        results["errors"]["startup"] = repr(exc)
        print(f"  ERROR: {exc!r}\n{dash.tail()}", flush=True)
        raise
    return page


def print_spots(targets: list[ClickTarget]) -> None:
    for target in targets:
        for n in range(2):
            print(
                f"  {target.name} plot {n} ({target.planes[n]['title']}): "
                + ", ".join(
                    f"{s['label']} ({s['x']:.2f}, {s['y']:.2f}; data {s['data_px']:.0f} px)" for s in target.spots[n]
                ),
                flush=True,
            )


def clicks_step(browser, base: StreamlitServer, dash_page, clicks: int, results: dict[str, Any]) -> list[ClickTarget]:
    """Sections 2 and 3, with the bare page's server up only for them; returns the targets (none if the bare
    page never came up). An error is recorded and the run goes on."""
    print("\n2./3. Clicks on empty space: dashboard vs bare two-plot page (interleaved)", flush=True)
    check_load("clicks")
    targets: list[ClickTarget] = []
    try:
        base.start(timeout=60)
        base_page = new_page(browser)
        t = time.monotonic()
        base_page.goto(base.url, timeout=180_000)
        wait_plots(base_page, 2, 180)
        results["baseline_first_load_s"] = time.monotonic() - t
        targets = click_targets(dash_page, base_page, clicks)
        print_spots(targets)
        run_clicks(targets, clicks, timeout_s=60)
    except Exception as exc:  # noqa: BLE001
        results["errors"]["clicks"] = repr(exc)
        print(f"  ERROR: {exc!r}", flush=True)
    finally:
        base.stop()
        if targets:
            close_page(targets[1].page)
    results["clicks"] = {t.name: {"stats": click_stats(t), "per_click": t.results} for t in targets}
    return targets


def umap_step(browser, dash: StreamlitServer, dash_page, umap_timeout_s: float, results: dict[str, Any]) -> None:
    """Section 4 in a fresh page (the clicks' page is closed once it is up); an error is recorded."""
    print("\n4. UMAP view switch on the 16-D pair", flush=True)
    check_load("UMAP")
    try:
        page = open_plots(browser, f"{dash.url}/explorer")
        close_page(dash_page)
        results["umap"] = measure_umap(page, 120, umap_timeout_s)
        close_page(page)
    except Exception as exc:  # noqa: BLE001
        results["errors"]["umap"] = repr(exc)
        print(f"  ERROR: {exc!r}\n{dash.tail()}", flush=True)


def cold_umap_step(browser, dash: StreamlitServer, umap_timeout_s: float, results: dict[str, Any]) -> None:
    """The stopped dashboard started again on the same VAE_CACHE_DIR: its first UMAP switch hits the disk
    cache of the fits section 4 made. An error is recorded."""
    print("  restarting the server on the same VAE_CACHE_DIR for a cold-process switch…", flush=True)
    try:
        dash.start(timeout=60)
        page = open_plots(browser, f"{dash.url}/explorer")
        cold = {"pair_16d_s": open_16d_pair(page, 180)}
        cold["umap_first_s"] = set_view(page, "UMAP", umap_timeout_s)
        results["umap_cold"] = cold
        print(
            f"  cold process: 16-D pair {cold['pair_16d_s']:.2f} s, first UMAP switch {cold['umap_first_s']:.2f} s",
            flush=True,
        )
        close_page(page)
    except Exception as exc:  # noqa: BLE001
        results["errors"]["umap_cold"] = repr(exc)
        print(f"  ERROR: {exc!r}\n{dash.tail()}", flush=True)


def measure(args: argparse.Namespace, tmp: Path, results: dict[str, Any]) -> list[ClickTarget]:
    """Every section against servers of their own in ``tmp``, all stopped on return; fills ``results`` and
    returns the click targets for the per-click report."""
    from playwright.sync_api import sync_playwright

    dash_env = {"VAE_MODELS_DIR": "models", "VAE_CACHE_DIR": str(tmp / "cache"), "VAE_PLANES": "server"}
    dash = StreamlitServer(REPO_ROOT / "dashboard.py", dash_env, tmp / "dashboard.log")
    base = baseline_server(
        tmp / "baseline", tmp / "baseline.log", cwd=None if args.baseline_config == "default" else REPO_ROOT
    )
    targets: list[ClickTarget] = []
    try:
        with sync_playwright() as p:
            t = time.monotonic()
            browser = launch_chromium(p)
            results["browser_launch_s"] = time.monotonic() - t
            try:
                dash_page = startup_step(browser, dash, results)
                targets = clicks_step(browser, base, dash_page, args.clicks, results)
                if not args.skip_umap:
                    umap_step(browser, dash, dash_page, args.umap_timeout, results)
                    dash.stop()
                    if not args.skip_cold and "umap" in results:
                        cold_umap_step(browser, dash, args.umap_timeout, results)
            finally:
                browser.close()
    finally:
        dash.stop()
        base.stop()
    return targets


# ---------------------------------------------------------------------------------------------
# The table


def startup_rows(table: Table, startup: dict[str, Any] | None) -> None:
    if not startup:
        table.add("start-up", "error", f"<= {TARGETS['startup_s']:.0f} s", "FAIL")
        return
    table.add("start-up: launch -> port open", fmt_s(startup["port_open_s"]))
    table.add("start-up: launch -> first byte of /explorer", fmt_s(startup["first_byte_s"]))
    table.add("start-up: launch -> first contentful paint", fmt_s(startup["first_contentful_paint_s"]))
    table.add(
        "start-up: launch -> both plots drawn",
        fmt_s(startup["plots_drawn_s"]),
        f"<= {TARGETS['startup_s']:.0f} s",
        verdict(startup["plots_drawn_s"], TARGETS["startup_s"]),
    )


CLICK_PARTS = (
    ("send_ms", "click -> rerun request sent"),
    ("first_reply_ms", "click -> first reply"),
    ("src_ms", "click -> new <img> src"),
    ("received_kb", "KB received per click"),
    ("wall_ms", "Playwright wall time (click .. detected)"),
)


def page_click_rows(table: Table, name: str, stats: dict[str, Any]) -> None:
    """One page's clicks: latency (held to the target on the dashboard only), its parts, and the checks."""
    lat = stats["latency_ms"]
    target = f"<= {TARGETS['click_median_ms']:.0f} ms" if name == "dashboard" else ""
    res = verdict(lat["median"], TARGETS["click_median_ms"]) if name == "dashboard" else ""
    table.add(f"click -> image, {name}: median ({lat['n']} clicks)", fmt_ms(lat["median"]), target, res)
    table.add(f"click -> image, {name}: p95", fmt_ms(lat["p95"]))
    table.add(f"click -> image, {name}: mean", fmt_ms(lat["mean"]))
    table.add(f"click -> image, {name}: min / max", f"{lat['min']:.0f} / {lat['max']:.0f} ms")
    for model, per in stats["per_model"].items():
        if per:
            table.add(f"  {name}: {model} plot, median / p95", f"{per['median']:.0f} / {per['p95']:.0f} ms")
    for key, label in CLICK_PARTS:
        if stats.get(key):
            unit = " KB" if key == "received_kb" else " ms"
            table.add(f"  {name}: {label}, median", f"{stats[key]['median']:.0f}{unit}")
    ok = stats["clicks"] - len(stats["mismatches"])
    table.add(
        f"decoded where clicked, {name} (corners incl.)",
        f"{ok}/{stats['clicks']}",
        "all",
        "PASS" if ok == stats["clicks"] and stats["clicks"] else "FAIL",
    )


def click_rows(table: Table, stats: dict[str, dict[str, Any]], results: dict[str, Any]) -> None:
    """Both pages' clicks and their ratio (also saved as ``results["ratio_median"]``)."""
    medians = {}
    for name in ("dashboard", "baseline"):
        page_stats = stats.get(name)
        if not page_stats or not page_stats["latency_ms"]:
            table.add(f"click -> image, {name}", "error", "", "FAIL")
            continue
        page_click_rows(table, name, page_stats)
        medians[name] = page_stats["latency_ms"]["median"]
    dm, bm = medians.get("dashboard"), medians.get("baseline")
    if dm is not None and bm:
        ratio = dm / bm
        results["ratio_median"] = ratio
        table.add(
            "dashboard / baseline, median",
            f"{ratio:.2f}",
            f"<= {TARGETS['ratio']:.1f}",
            verdict(ratio, TARGETS["ratio"]),
        )
        d95, b95 = stats["dashboard"]["latency_ms"]["p95"], stats["baseline"]["latency_ms"]["p95"]
        table.add("dashboard / baseline, p95", f"{d95 / b95:.2f}")
    else:
        table.add("dashboard / baseline, median", "n/a", f"<= {TARGETS['ratio']:.1f}", "FAIL")
    if "baseline_first_load_s" in results:
        table.add("baseline page: first load (models, embeddings)", fmt_s(results["baseline_first_load_s"]))


def umap_rows(table: Table, umap: dict[str, Any] | None, cold: dict[str, Any] | None) -> None:
    target = f"<= {TARGETS['umap_switch_s']:.0f} s"
    if umap:
        table.add("16-D pair picked -> both planes in PCA view", fmt_s(umap["pair_16d_s"]))
        table.add("UMAP, first time (fits both models)", fmt_s(umap["umap_first_s"]))
        table.add("UMAP -> PCA", fmt_s(umap["back_to_pca_s"]))
        table.add(
            "PCA -> UMAP again",
            fmt_s(umap["umap_again_s"]),
            target,
            verdict(umap["umap_again_s"], TARGETS["umap_switch_s"]),
        )
    else:
        table.add("PCA -> UMAP again", "error", target, "FAIL")
    if cold:
        table.add("restarted server: 16-D pair -> PCA view", fmt_s(cold["pair_16d_s"]))
        table.add("restarted server: first UMAP (disk cache)", fmt_s(cold["umap_first_s"]))


def print_results(
    results: dict[str, Any],
    table: Table,
    targets: list[ClickTarget],
    stats: dict[str, dict[str, Any]],
    initial_load: float,
) -> None:
    if targets:
        print_clicks(targets)
        for target in targets:
            for r in stats.get(target.name, {}).get("mismatches", []):
                print(
                    f"  MISMATCH {target.name} {r['model']} {r['spot']}: clicked ({r['x']:.2f}, {r['y']:.2f}), "
                    f"decoded {r.get('decoded')}, {r.get('error') or ''}"
                )
    print(f"\nResults (load at start {results['load_at_start'][0]:.2f}, now {load_text()}):")
    table.print()
    if initial_load > LOAD_WARNING or os.getloadavg()[0] > LOAD_WARNING:
        print(
            f"WARNING: load average above {LOAD_WARNING}: absolute times are inflated; the ratio is the fairer number."
        )
    for section, err in results["errors"].items():
        print(f"ERROR in {section}: {err}")
    print(f"\n{table.outcome()}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    require_chromium()
    require_models((*PAIR_2D, *([] if args.skip_umap else PAIR_16D)))
    print(
        f"Click latency: {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{args.clicks} timed clicks per page"
    )
    initial_load = check_load("measuring")
    results: dict[str, Any] = {
        "load_at_start": list(os.getloadavg()),
        "clicks_per_page": args.clicks,
        "baseline_config": args.baseline_config,
        "errors": {},
    }
    tmp = Path(tempfile.mkdtemp(prefix="click-latency-"))
    try:
        targets = measure(args, tmp, results)
    finally:
        if args.keep_tmp:
            print(f"\n(temporary folder kept: {tmp})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    table = Table()
    startup_rows(table, results.get("startup"))
    stats = {name: c["stats"] for name, c in results.get("clicks", {}).items()}
    click_rows(table, stats, results)
    if not args.skip_umap:
        umap_rows(table, results.get("umap"), results.get("umap_cold"))
    print_results(results, table, targets, stats, initial_load)
    results["rows"] = table.rows
    results["failures"] = table.fails
    results["load_at_end"] = list(os.getloadavg())
    if args.json:
        save_json(args.json, results)
    return 1 if (args.strict and table.fails) else 0


if __name__ == "__main__":
    sys.exit(main())
