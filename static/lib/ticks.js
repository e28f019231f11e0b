// Axis ticks for every plane and chart of the page (lib/scatter.js's planes, the timeline's planes and loss
// chart): one rule, so the same range gets the same ticks wherever it is drawn. No DOM: `node --test` runs it
// (static/tests/ticks.test.js).

// The smallest round step (1, 2 or 5 times a power of ten) that cuts `span` into at most `count` intervals.
export function niceStep(span, count = 5) {
  if (!(span > 0) || !Number.isFinite(span)) return 1;
  const raw = span / Math.max(count, 1);
  const power = 10 ** Math.floor(Math.log10(raw));
  const scaled = raw / power; // in [1, 10)
  return (scaled <= 1 ? 1 : scaled <= 2 ? 2 : scaled <= 5 ? 5 : 10) * power;
}

// Multiples of niceStep(hi - lo, count) inside [lo, hi], rounded to the step's decimals so that
// 0.30000000000000004 prints as 0.3 and -0 as 0; none for an empty or non-finite range.
export function ticks(lo, hi, count = 5) {
  if (!(hi > lo) || !Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  const step = niceStep(hi - lo, count);
  // toFixed takes at most 100 decimals; a step that small is beyond any plane we draw.
  const digits = Math.min(100, Math.max(0, -Math.floor(Math.log10(step))));
  const out = [];
  // "+ 0" turns -0 into 0, which would otherwise print as "-0".
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(Number(t.toFixed(digits)) + 0);
  return out;
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
