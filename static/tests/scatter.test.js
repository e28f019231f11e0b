// node --test static/tests/scatter.test.js: how much a plane magnifies posterior ellipses to make them seen.
import assert from "node:assert/strict";
import test from "node:test";

import { ELLIPSE_MIN_RADIUS, ellipseMagnification } from "../lib/scatter.js";

test("ellipses too small to see are magnified by a round factor until the smallest is seen", () => {
  assert.equal(ellipseMagnification(1.4), 10); // a 2-D VAE's sharpest posterior at the home zoom
  assert.equal(ellipseMagnification(0.05), 500);
  assert.ok(ellipseMagnification(2.9) * 2.9 >= ELLIPSE_MIN_RADIUS);
});

test("ellipses large enough, or none, are drawn at their true size", () => {
  assert.equal(ellipseMagnification(ELLIPSE_MIN_RADIUS), 1);
  assert.equal(ellipseMagnification(40), 1);
  assert.equal(ellipseMagnification(1e-4), 1000); // the largest factor, however small
  assert.equal(ellipseMagnification(Infinity), 1); // Math.min() of no ellipses
  assert.equal(ellipseMagnification(0), 1);
});
