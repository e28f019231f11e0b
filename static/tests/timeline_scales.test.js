// node --test static/tests/timeline_scales.test.js: the timeline player's pure helpers (its ticks are
// lib/ticks.js's, tested in ticks.test.js).
import assert from "node:assert/strict";
import test from "node:test";

import { finiteExtent, formatEpoch, latestAtOrBefore, squareFit } from "../components/timeline/scales.js";

test("a square fit keeps one scale on both axes and inverts exactly", () => {
  const fit = squareFit([-10, 10], [-2, 2], { left: 40, top: 10, width: 400, height: 400 });
  assert.equal(fit.scale, 20); // the wider axis decides: 400 px over 20 units
  assert.deepEqual(fit.x, [-10, 10]);
  assert.deepEqual(fit.y, [-10, 10]); // the taller room shows more of y, centred
  assert.deepEqual(fit.toPx(0, 0), [240, 210]);
  assert.deepEqual(fit.toPx(10, 10), [440, 10]); // y points up
  const [x, y] = fit.toData(...fit.toPx(3.5, -1.25));
  assert.ok(Math.abs(x - 3.5) < 1e-12 && Math.abs(y + 1.25) < 1e-12);
});

test("the latest kept frame at or before a frame", () => {
  const kept = [0, 6, 9, 16, 44];
  assert.equal(latestAtOrBefore(kept, 0), 0);
  assert.equal(latestAtOrBefore(kept, 8), 1);
  assert.equal(latestAtOrBefore(kept, 43), 3);
  assert.equal(latestAtOrBefore(kept, 44), 4);
  assert.equal(latestAtOrBefore([5, 9], 2), -1);
});

test("extents skip gaps and, on a log axis, non-positive values", () => {
  assert.deepEqual(finiteExtent([[3, null, 1], [NaN, 7]]), [1, 7]);
  assert.deepEqual(finiteExtent([[0, 0.5, -2]], true), [0.5, 0.5]);
  assert.equal(finiteExtent([[null]]), null);
});

test("epochs read as people write them", () => {
  assert.equal(formatEpoch(0), "0");
  assert.equal(formatEpoch(256 / 469), "0.55");
  assert.equal(formatEpoch(30), "30");
  assert.equal(formatEpoch(1 / 469), "0.0021");
});
