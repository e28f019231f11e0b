// The page's pixels against the server's: to_uint8_image, Pillow's LANCZOS resize, MNIST's recipe.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { greyToRgba, resizeLanczos, rgbaToGrey, toByte, toMnist } from "../lib/image.js";

// Written by tests/test_frontend_js.py, which also fails on a skipped test; a bare `node --test static/tests/`
// skips the comparisons that need the server's numbers.
const fixtures = process.env.FRONTEND_FIXTURES ? JSON.parse(readFileSync(process.env.FRONTEND_FIXTURES, "utf8")) : null;
const needsFixtures = { skip: !fixtures && "no FRONTEND_FIXTURES (tests/test_frontend_js.py writes them)" };
const bytes = (b64) => Uint8Array.from(Buffer.from(b64, "base64"));

test("grey levels become bytes as to_uint8_image rounds them (halves to even, NaN to 0, clipped)", needsFixtures, () => {
  const { values, expected } = fixtures.bytes;
  const parsed = values.map((v) => (v === null ? NaN : v));
  assert.deepEqual(parsed.map(toByte), expected);
});

test("a decoded image fills an RGBA buffer, grey on every channel, opaque", () => {
  const values = new Float32Array(784).map((_, i) => i / 783);
  const out = greyToRgba(values, 0, new Uint8ClampedArray(784 * 4));
  assert.deepEqual(Array.from(out.subarray(4 * 783, 4 * 784)), [255, 255, 255, 255]);
  assert.deepEqual(Array.from(out.subarray(0, 4)), [0, 0, 0, 255]);
  assert.equal(out[4 * 400], toByte(400 / 783));
});

test("resizing matches Pillow's LANCZOS byte for byte", needsFixtures, () => {
  for (const c of fixtures.lanczos) {
    const out = resizeLanczos(bytes(c.input), c.width, c.height, c.out_width, c.out_height);
    const expected = bytes(c.output);
    let worst = 0;
    for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(out[i] - expected[i]));
    assert.equal(out.length, expected.length);
    assert.equal(worst, 0, `${c.width}x${c.height} -> ${c.out_width}x${c.out_height}: off by ${worst}`);
  }
});

test("a drawing becomes the MNIST digit the server makes of it", needsFixtures, () => {
  for (const c of fixtures.mnist) {
    const grey = rgbaToGrey(bytes(c.rgba), c.width, c.height);
    const digit = toMnist(grey, c.width, c.height);
    if (c.expected === null) {
      assert.equal(digit, null, `${c.name}: blank`);
      continue;
    }
    const expected = bytes(c.expected);
    let worst = 0;
    for (let i = 0; i < 784; i++) worst = Math.max(worst, Math.abs(Math.round(digit[i] * 255) - expected[i]));
    assert.equal(worst, 0, `${c.name}: off by ${worst} grey levels`);
  }
});
