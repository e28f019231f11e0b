// Each plane's zoom in the page's URL, after the '#' (zoom_left, zoom_right = "cx,cy,half" in the view's
// units), so a copied link reopens the same region. Written here, in the page, with history.replaceState: a
// zoom costs no rerun. In the fragment rather than the query: Streamlit sends the server only the query it
// set itself (app/links.py's keys: models, view, subset, pins) and rewrites the query from it, so a
// parameter the page added there would be dropped at the next rerun; it leaves the fragment alone except
// when it rewrites the query, after which the page writes the zoom again (rememberZoom, after each update).

const restored = new Set();
const timers = {};

function parse(text) {
  const parts = (text ?? "").split(",").map(Number);
  if (parts.length !== 3 || !parts.every(Number.isFinite) || !(parts[2] > 0)) return null;
  return { cx: parts[0], cy: parts[1], half: parts[2] };
}

function fragment() {
  return new URLSearchParams(window.location.hash.replace(/^#/, ""));
}

// The fragment the page was opened with: Streamlit may have rewritten the address (and dropped the fragment)
// before this module loads, when a link's query differs from what the server writes back; the navigation's
// own entry keeps the URL as it was opened.
function openedFragment() {
  const opened = performance.getEntriesByType?.("navigation")?.[0]?.name ?? "";
  return new URLSearchParams(opened.includes("#") ? opened.slice(opened.indexOf("#") + 1) : "");
}

// The zoom a link gives this side, once per page and side (later loads of other views start at home).
export function readZoom(side) {
  if (restored.has(side)) return null;
  restored.add(side);
  const key = `zoom_${side}`;
  return parse(fragment().get(key) ?? openedFragment().get(key));
}

// Keep the URL's zoom for this side in step with the view, a quarter second after it stops moving; the
// home view leaves no parameter. Nothing is written before the link's own zoom has been read.
export function writeZoom(side, view, home) {
  if (!restored.has(side)) return;
  clearTimeout(timers[side]);
  timers[side] = setTimeout(() => {
    const params = fragment();
    const key = `zoom_${side}`;
    const atHome = view.cx === home.cx && view.cy === home.cy && view.half === home.half;
    if (atHome) params.delete(key);
    else params.set(key, [view.cx, view.cy, view.half].map((v) => Number(v.toPrecision(6))).join(","));
    const hash = params.toString().replaceAll("%2C", ",");
    const url = window.location.pathname + window.location.search + (hash ? `#${hash}` : "");
    if (url !== window.location.pathname + window.location.search + window.location.hash) {
      window.history.replaceState(window.history.state, "", url);
    }
  }, 250);
}
