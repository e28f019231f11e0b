// A plane's points file as the page reads it (lib/assets.js) against the file app/web_planes.py writes.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { unpackPoints } from "../lib/assets.js";

// Written by tests/test_frontend_js.py, which also fails on a skipped test.
const fixtures = process.env.FRONTEND_FIXTURES ? JSON.parse(readFileSync(process.env.FRONTEND_FIXTURES, "utf8")) : null;
const needsFixtures = { skip: !fixtures && "no FRONTEND_FIXTURES (tests/test_frontend_js.py writes them)" };

test("the points file unpacks to the server's embedding, codes and labels", needsFixtures, () => {
  const { count, dim, pack, embedding, codes, labels } = fixtures.points;
  const bytes = Uint8Array.from(Buffer.from(pack, "base64")).buffer;
  const points = unpackPoints(bytes, count, dim);
  assert.deepEqual(Array.from(points.embedding), Array.from(Float32Array.from(embedding)));
  assert.deepEqual(Array.from(points.codes), Array.from(Float32Array.from(codes)));
  assert.deepEqual(Array.from(points.labels), labels);
  assert.equal(points.embedding.buffer, bytes); // views on the fetched bytes, not copies
});

test("a points file of the wrong size is refused, not read past its end", () => {
  assert.throws(() => unpackPoints(new ArrayBuffer(10), 1, 2), /expected 17 bytes, got 10/);
  assert.equal(unpackPoints(new ArrayBuffer(0), 0, 4).labels.length, 0);
});
