// Pure helpers of the timeline player: axes, ticks and frame lookups. No DOM, so `node --test` runs them
// (static/tests/timeline_scales.test.js).

// The smallest round step (1, 2 or 5 times a power of ten) that cuts `span` into at most `count` intervals.
export function niceStep(span, count = 5) {
  if (!(span > 0) || !Number.isFinite(span)) return 1;
  const raw = span / Math.max(count, 1);
  const power = 10 ** Math.floor(Math.log10(raw));
  const scaled = raw / power; // in [1, 10)
  return (scaled <= 1 ? 1 : scaled <= 2 ? 2 : scaled <= 5 ? 5 : 10) * power;
}

// Multiples of a nice step inside [lo, hi], rounded so that 0.30000000000000004 prints as 0.3.
export function niceTicks(lo, hi, count = 5) {
  const step = niceStep(hi - lo, count);
  const digits = Math.max(0, -Math.floor(Math.log10(step)));
  const ticks = [];
  // "+ 0" turns -0 into 0, which would otherwise print as "-0".
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(Number(t.toFixed(digits)) + 0);
  return ticks;
}

// Ticks of a log axis over [lo, hi] (lo > 0): 1, 2 and 5 times each power of ten, thinned to at most `max`.
export function logTicks(lo, hi, max = 6) {
  if (!(lo > 0) || !(hi >= lo)) return [];
  const out = [];
  for (let p = Math.floor(Math.log10(lo)); p <= Math.ceil(Math.log10(hi)); p++) {
    for (const m of [1, 2, 5]) {
      const t = m * 10 ** p;
      if (t >= lo * (1 - 1e-9) && t <= hi * (1 + 1e-9)) out.push(Number(t.toPrecision(3)));
    }
  }
  if (out.length <= max) return out;
  const decades = out.filter((t) => Number(t.toPrecision(1)) === 10 ** Math.round(Math.log10(t)));
  return decades.length >= 2 ? decades : [out[0], out[out.length - 1]];
}

// The data -> pixel map of a plane that shows `xRange` x `yRange` in a `box` {left, top, width, height} with
// the same data units per pixel on both axes (the box's spare room is split evenly), y pointing up.
export function squareFit(xRange, yRange, box) {
  const spanX = Math.max(xRange[1] - xRange[0], 1e-9);
  const spanY = Math.max(yRange[1] - yRange[0], 1e-9);
  const scale = Math.min(box.width / spanX, box.height / spanY); // pixels per data unit
  const cx = (xRange[0] + xRange[1]) / 2, cy = (yRange[0] + yRange[1]) / 2;
  const px = box.left + box.width / 2, py = box.top + box.height / 2;
  return {
    scale,
    // What the box shows, wider than the ranges along the axis that has room to spare.
    x: [cx - box.width / 2 / scale, cx + box.width / 2 / scale],
    y: [cy - box.height / 2 / scale, cy + box.height / 2 / scale],
    toPx: (x, y) => [px + (x - cx) * scale, py - (y - cy) * scale],
    toData: (u, v) => [cx + (u - px) / scale, cy - (v - py) / scale],
  };
}

// The largest of `sorted` (increasing) that is <= `value`, or -1 when every one is larger.
export function latestAtOrBefore(sorted, value) {
  let lo = 0, hi = sorted.length - 1, found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] <= value) { found = mid; lo = mid + 1; } else { hi = mid - 1; }
  }
  return found;
}

// "12,345" for counts, "0.55" / "12" for epochs: what the labels under the slider say.
export function formatCount(n) {
  return Math.round(n).toLocaleString("en-US");
}

export function formatEpoch(epoch) {
  if (epoch === 0) return "0";
  if (epoch < 1) return epoch.toFixed(epoch < 0.01 ? 4 : epoch < 0.1 ? 3 : 2);
  return Number.isInteger(epoch) ? String(epoch) : epoch.toFixed(2);
}

// The finite values of several series (arrays with nulls for gaps), for an axis range.
export function finiteExtent(seriesList, positiveOnly = false) {
  let lo = Infinity, hi = -Infinity;
  for (const series of seriesList) {
    for (const v of series) {
      if (v === null || !Number.isFinite(v) || (positiveOnly && v <= 0)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  return lo <= hi ? [lo, hi] : null;
}
