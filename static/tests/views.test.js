// The page's view maps against vae/projections.py's, on fixtures tests/test_frontend_js.py writes from Python.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { createView, PointIndex } from "../lib/views.js";

// Written by tests/test_frontend_js.py, which also fails on a skipped test; a bare `node --test static/tests/`
// skips the comparisons that need the server's numbers.
const fixtures = process.env.FRONTEND_FIXTURES ? JSON.parse(readFileSync(process.env.FRONTEND_FIXTURES, "utf8")) : null;

function close(actual, expected, tolerance, what) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tolerance, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

if (!fixtures) test("the views against the server's", { skip: "no FRONTEND_FIXTURES (tests/test_frontend_js.py writes them)" }, () => {});
for (const [name, f] of Object.entries(fixtures?.views ?? {})) {
  test(`${name}: plane -> code as the server's inverse_transform`, () => {
    const embedding = Float32Array.from(f.embedding.flat()), codes = Float32Array.from(f.codes.flat());
    const view = createView(f.spec, embedding, codes, f.embedding.length, f.dim);
    const out = new Float64Array(f.dim);
    f.points.forEach((p, i) => close(view.toCode(p[0], p[1], out), f.inverse[i], 1e-5, `${name} inverse of ${p}`));
  });
  test(`${name}: code -> plane as the server's transform`, () => {
    const embedding = Float32Array.from(f.embedding.flat()), codes = Float32Array.from(f.codes.flat());
    const view = createView(f.spec, embedding, codes, f.embedding.length, f.dim);
    const out = new Float64Array(2);
    f.queries.forEach((q, i) => close(view.toPlane(Float64Array.from(q), out), f.transform[i], 1e-5, `${name} transform`));
  });
}

test("the grid index finds the same neighbours as a full scan, inside and far outside the points", () => {
  const n = 3000, k = 8;
  let seed = 7;
  const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  const xy = new Float32Array(2 * n);
  // Clusters of very different density, and duplicates: the cases a uniform grid handles worst.
  for (let i = 0; i < n; i++) {
    const tight = i % 3 === 0;
    xy[2 * i] = tight ? 5 + random() * 0.01 : random() * 100 - 50;
    xy[2 * i + 1] = tight ? -5 + random() * 0.01 : random() * 40 - 20;
  }
  xy[2 * 10] = xy[2 * 11];
  xy[2 * 10 + 1] = xy[2 * 11 + 1];
  const index = new PointIndex(xy, n);
  const got = new Int32Array(k), dist = new Float64Array(k);
  for (const [x, y] of [[0, 0], [5.005, -4.995], [xy[20], xy[21]], [400, 300], [-1000, 3], [49.9, 19.9]]) {
    const found = index.nearest(x, y, k, got, dist);
    const all = Array.from({ length: n }, (_, i) => [Math.hypot(xy[2 * i] - x, xy[2 * i + 1] - y), i]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    assert.equal(found, k);
    close(Array.from(dist), all.slice(0, k).map((a) => a[0]), 1e-12, `distances near (${x}, ${y})`);
  }
});

test("fewer points than neighbours: every point is found", () => {
  const xy = Float32Array.from([0, 0, 1, 1, 2, 0]);
  const index = new PointIndex(xy, 3);
  const got = new Int32Array(8), dist = new Float64Array(8);
  assert.equal(index.nearest(0.1, 0.1, 8, got, dist), 3);
  assert.deepEqual(Array.from(got.subarray(0, 3)), [0, 1, 2]);
});

test("a neighbours view without its k from Python is refused", () => {
  for (const k of [undefined, 0, 2.5]) {
    assert.throws(() => createView({ kind: "neighbours", k }, new Float32Array(2), new Float32Array(2), 1, 2), /needs k > 0/);
  }
});

test("an unknown view kind is refused", () => {
  assert.throws(() => createView({ kind: "tsne" }, new Float32Array(2), new Float32Array(2), 1, 2), /unknown view kind/);
});
