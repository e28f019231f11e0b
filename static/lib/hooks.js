// Hooks for the browser tests and the benchmarks, and for nothing else: the page itself never reads them.
// A component that has some publishes one object on globalThis, under a fixed name made here, which
// Playwright reads with page.evaluate / wait_for_function:
//
//   globalThis.latentExplorer (components/latent_planes), read by tests/test_browser_planes.py, the site and
//     widget tests (tests/test_site_browser.py, tests/test_widget_browser.py) and
//     benchmarks/hover_latency.py: {ready, probe, timings, drawnTimings, selectTimings, drawTimings,
//     holesTimings, select, selection}. `ready` is false while new data loads; `probe` answers read-only
//     questions (where a point is on screen, where there is empty space); `timings` / `drawnTimings` are
//     hover -> frame shown / hover -> drawn, `selectTimings` a lasso's end -> the frame that shows it in
//     both planes, `drawTimings` each plane redraw's own cost, `holesTimings` one holes map (decode and
//     judge a grid), in ms, newest last. `select(indices)` sets the selection as a lasso would and
//     `selection()` returns it (ascending indices): the selection's API from code.
//   globalThis.yourDigit (components/your_digit), read by tests/test_digit_canvas.py: {ready, updates,
//     timings, marks, nearestLabels, toClient, upload}. `timings` are pen move -> both markers and redraws on
//     screen (ms), `marks` each side's marker in plane coordinates, `nearestLabels(side, k)` the classes
//     nearest to it, `toClient(side, x, y)` where the plane's current view puts (x, y) in the window (CSS px).
//     `upload` has {ready, marks, nearestLabels, toClient} of the uploaded picture's planes.
//
// The timeline player reports through data attributes on its root instead (tests/test_timeline_browser.py).
// Made when a component's module is first evaluated, so a test can wait on the name before the first mount.

// Timings kept per list: enough for a benchmark run, bounded for a page left open.
const KEPT = 2000;

export function explorerHooks() {
  return (globalThis.latentExplorer = {
    timings: [], drawnTimings: [], selectTimings: [], drawTimings: [], holesTimings: [], ready: false, probe: null, select: null,
    selection: null,
  });
}

// globalThis.latentInside (components/latent_inside), read by tests/test_browser_inside.py and
// benchmarks/slider_latency.py: {ready, probes: {dimensions, samples}, sliderTimings}: a probe per mode (the
// page shows both, one per tab), and slider input -> decoded pixels drawn, in ms.
export function insideHooks() {
  return (globalThis.latentInside = { ready: false, probes: {}, sliderTimings: [] });
}

export function digitHooks() {
  const pad = () => ({ ready: false, marks: {}, nearestLabels: null, toClient: null });
  return (globalThis.yourDigit = { timings: [], updates: 0, ...pad(), upload: pad() });
}

// Append a timing to a hook's list, dropping the oldest past KEPT.
export function record(list, milliseconds) {
  list.push(milliseconds);
  if (list.length > KEPT) list.splice(0, list.length - KEPT);
}
