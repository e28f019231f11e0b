// node --test static/tests/ticks.test.js: the axis ticks every plane and chart of the page draws.
import assert from "node:assert/strict";
import test from "node:test";

import { logTicks, niceStep, ticks } from "../lib/ticks.js";

test("nice steps are 1, 2 or 5 times a power of ten", () => {
  assert.equal(niceStep(10, 5), 2);
  assert.equal(niceStep(11, 5), 5);
  assert.equal(niceStep(72, 6), 20);
  assert.equal(niceStep(0.9, 5), 0.2);
  assert.equal(niceStep(0, 5), 1); // a flat range still gets a step
});

test("ticks fall inside the range on round numbers", () => {
  assert.deepEqual(ticks(-31.2, 40.5, 6), [-20, 0, 20, 40]);
  assert.deepEqual(ticks(-0.35, 0.35, 8), [-0.3, -0.2, -0.1, 0, 0.1, 0.2, 0.3]);
  assert.ok(ticks(-0.35, 0.35, 6).length <= 7); // at most `count` intervals
  assert.deepEqual(ticks(-4.2, 3.9), [-4, -2, 0, 2, 4].filter((t) => t <= 3.9)); // a plane's default of 5
});

test("ticks print as people write them: no float noise, no -0", () => {
  // Steps of 0.1 from -0.7 accumulate noise (0.2999999999999999, -1.39e-16 for zero) without the rounding.
  const got = ticks(-0.72, 0.41, 12);
  assert.deepEqual(got, [-0.7, -0.6, -0.5, -0.4, -0.3, -0.2, -0.1, 0, 0.1, 0.2, 0.3, 0.4]);
  assert.ok(got.every((t) => !Object.is(t, -0)));
  assert.deepEqual(ticks(-1.5e-7, 1.5e-7, 3), [-1e-7, 0, 1e-7]);
});

test("an empty, inverted or non-finite range has no ticks", () => {
  assert.deepEqual(ticks(2, 2), []);
  assert.deepEqual(ticks(3, -3), []);
  assert.deepEqual(ticks(-Infinity, 1), []);
  assert.deepEqual(ticks(0, NaN), []);
  assert.doesNotThrow(() => ticks(0, 1e-300)); // decimals beyond toFixed's 100 do not throw
});

test("log ticks thin out to decades over a wide range", () => {
  assert.deepEqual(logTicks(120, 600), [200, 500]);
  assert.deepEqual(logTicks(0.009, 600), [0.01, 0.1, 1, 10, 100]);
  assert.deepEqual(logTicks(-1, 10), []);
});
