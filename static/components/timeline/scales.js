// Pure helpers of the timeline player: the square fit of a plane, frame lookups and labels (its ticks are
// lib/ticks.js's, shared with every plane). No DOM, so `node --test` runs them
// (static/tests/timeline_scales.test.js).

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
