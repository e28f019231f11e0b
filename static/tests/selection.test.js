// The page's selection against the server's references, on fixtures tests/test_frontend_js.py writes:
// which points a lasso or a box holds (matplotlib's Path), the packed form Python reads, the spread and
// nearest neighbours (NumPy).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import {
  classCounts, combine, evenSample, maskFrom, maskIndices, nearestByCode, packMask, pointInPolygon, pointsInPolygon,
  selectionCsv, spread,
} from "../lib/selection.js";
import { PointIndex } from "../lib/views.js";

const fixtures = process.env.FRONTEND_FIXTURES ? JSON.parse(readFileSync(process.env.FRONTEND_FIXTURES, "utf8")) : null;
const selection = fixtures?.selection;

if (!selection) test("the selection against the server's", { skip: "no FRONTEND_FIXTURES (tests/test_frontend_js.py writes them)" }, () => {});
for (const c of selection?.cases ?? []) {
  test(`a ${c.name} selects the points matplotlib's Path finds inside it, packed as the server packs them`, () => {
    const points = Float32Array.from(selection.points);
    const index = new PointIndex(points, selection.count);
    const inside = pointsInPolygon(index, c.polygon, new Uint8Array(selection.count), [true]);
    assert.deepEqual(Array.from(inside), c.inside);
    assert.ok(c.inside.length > 20 && c.inside.length < selection.count - 20, "the fixture selects some, not all");
    assert.equal(packMask(maskFrom(inside, selection.count)), c.packed);
  });
}

if (selection) {
  test("the spread and the nearest neighbours are NumPy's", () => {
    const codes = Float32Array.from(selection.codes), dim = 5, n = 300;
    const view = new Float32Array(2 * n);
    for (let i = 0; i < n; i++) { view[2 * i] = codes[i * dim]; view[2 * i + 1] = codes[i * dim + 1]; }
    assert.ok(Math.abs(spread(view, n, selection.chosen) - selection.spread) < 1e-5);
    const { indices, distances } = nearestByCode(codes, dim, n, 7, 8);
    assert.deepEqual(indices, selection.nearest);
    distances.forEach((d, j) => assert.ok(Math.abs(d - selection.nearest_distances[j]) < 1e-5));
  });
}

test("a lasso leaves out the classes hidden in the legend", () => {
  const points = Float32Array.from([0, 0, 0.1, 0.1, 0.2, 0.2, 5, 5]);
  const index = new PointIndex(points, 4);
  const square = [-1, -1, 1, -1, 1, 1, -1, 1];
  const labels = Uint8Array.from([0, 1, 0, 0]);
  assert.deepEqual(Array.from(pointsInPolygon(index, square, labels, [true, true])), [0, 1, 2]);
  assert.deepEqual(Array.from(pointsInPolygon(index, square, labels, [true, false])), [0, 2]);
  assert.deepEqual(Array.from(pointsInPolygon(index, [0, 0, 1, 1], labels, null)), []); // not a polygon
});

test("Shift adds, Alt removes, a plain gesture replaces", () => {
  const mask = Uint8Array.from([1, 1, 0, 0, 0]);
  assert.deepEqual(Array.from(combine(mask, [3], "add")), [1, 1, 0, 1, 0]);
  assert.deepEqual(Array.from(combine(mask, [0, 4], "remove")), [0, 1, 0, 0, 0]);
  assert.deepEqual(Array.from(combine(mask, [4], "replace")), [0, 0, 0, 0, 1]);
  assert.deepEqual(Array.from(mask), [1, 1, 0, 0, 0]); // the old mask is left as it was
  assert.deepEqual(Array.from(maskIndices(Uint8Array.from([0, 1, 1, 0, 1]))), [1, 2, 4]);
});

test("a selection set from code refuses an index that is not a point", () => {
  assert.throws(() => maskFrom([3], 3), /index 3 is not one of the 3 points/);
  assert.throws(() => maskFrom([1.5], 3), /index 1.5/);
  assert.throws(() => maskFrom([-1], 3), /index -1/);
});

test("pointInPolygon uses the even-odd rule", () => {
  const c = [-2, -2, 2, -2, 2, -1, -1, -1, -1, 1, 2, 1, 2, 2, -2, 2];
  assert.equal(pointInPolygon(-1.5, 0, c), true);
  assert.equal(pointInPolygon(1, 0, c), false); // in the C's mouth
  assert.equal(pointInPolygon(1, 1.5, c), true);
  assert.equal(pointInPolygon(3, 0, c), false);
});

test("class counts, an even sample and the CSV", () => {
  const labels = Uint8Array.from([3, 3, 1, 9]);
  assert.deepEqual(Array.from(classCounts([0, 1, 3], labels)), [0, 0, 0, 2, 0, 0, 0, 0, 0, 1]);
  const many = Array.from({ length: 250 }, (_, i) => 2 * i);
  const sample = evenSample(many, 100);
  assert.equal(sample.length, 100);
  assert.equal(sample[0], 0);
  assert.equal(sample[1], 6); // floor(1 * 249 / 99 + 1/2) = 3rd -> 2 * 3
  assert.equal(sample[99], 498); // the last is kept
  assert.deepEqual(evenSample([5, 6], 100), [5, 6]);
  const left = { codes: Float32Array.from([0.5, 1, 2, 3, 4, 5, 6, 7]), dim: 2, embedding: Float32Array.from([0.5, 1, 2, 3, 4, 5, 6, 7]) };
  const right = { codes: Float32Array.from([1 / 3, 0, 0, 0]), dim: 1, embedding: Float32Array.from([9, 8, 7, 6, 5, 4, 3, 2]) };
  const csv = selectionCsv([0, 2], labels, [left, right]).trim().split("\n");
  assert.equal(csv[0], "index,label,left_z1,left_z2,right_z1,left_x,left_y,right_x,right_y");
  assert.equal(csv[1], "0,3,0.5,1,0.3333333,0.5,1,9,8");
  assert.equal(csv.length, 3);
});
