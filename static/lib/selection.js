// A selection of images, drawn as a lasso or a box in one plane and shared by both: which points fall
// inside a polygon, and what the selected group looks like in each model (class counts, spread, nearest
// neighbours, a CSV). Computed in the page; vae/selection.py holds the same definitions for the server and
// the tests, which compare the two on the same embedding.
//
// A selection is a mask Uint8Array [N] (1 = selected) over the plane's points, the same N in both planes
// (the same images of the same subset); a polygon is a flat array [x0, y0, x1, y1, ...] in data units.

// Even-odd rule: a point is inside when a ray from it crosses the outline an odd number of times.
export function pointInPolygon(x, y, polygon) {
  let inside = false;
  const n = polygon.length / 2;
  for (let i = 0, j = n - 1; i < n; j = i++) {
    const xi = polygon[2 * i], yi = polygon[2 * i + 1], xj = polygon[2 * j], yj = polygon[2 * j + 1];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

// The bounding box of a polygon: [x0, x1, y0, y1].
export function polygonBox(polygon) {
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (let i = 0; i < polygon.length; i += 2) {
    x0 = Math.min(x0, polygon[i]); x1 = Math.max(x1, polygon[i]);
    y0 = Math.min(y0, polygon[i + 1]); y1 = Math.max(y1, polygon[i + 1]);
  }
  return [x0, x1, y0, y1];
}

// The four corners of the box spanned by two corners, as a polygon.
export function boxPolygon(ax, ay, bx, by) {
  return [ax, ay, bx, ay, bx, by, ax, by];
}

// The points of `index` (lib/views.js PointIndex) inside `polygon` whose class is visible: Int32Array of
// indices, ascending. Only the grid cells under the polygon's box are visited, so a small lasso over
// 70,000 points looks at a few hundred.
export function pointsInPolygon(index, polygon, labels, visible) {
  if (polygon.length < 6) return new Int32Array(0);
  const [x0, x1, y0, y1] = polygonBox(polygon);
  const found = [];
  const xy = index.xy;
  index.forEachInBox(x0, x1, y0, y1, (i) => {
    if (visible && !visible[labels[i]]) return;
    if (pointInPolygon(xy[2 * i], xy[2 * i + 1], polygon)) found.push(i);
  });
  return Int32Array.from(found).sort();
}

// The mask after a gesture: "replace" (only these), "add" (Shift) or "remove" (Alt).
export function combine(mask, indices, mode) {
  const out = mode === "replace" ? new Uint8Array(mask.length) : Uint8Array.from(mask);
  const value = mode === "remove" ? 0 : 1;
  for (const i of indices) out[i] = value;
  return out;
}

// Indices set in a mask, ascending.
export function maskIndices(mask) {
  let n = 0;
  for (let i = 0; i < mask.length; i++) n += mask[i];
  const out = new Int32Array(n);
  for (let i = 0, j = 0; i < mask.length; i++) if (mask[i]) out[j++] = i;
  return out;
}

// A mask of `count` points from a list of indices; out-of-range or non-integer entries are an error, so a
// caller learns of a wrong index rather than selecting something else.
export function maskFrom(indices, count) {
  const mask = new Uint8Array(count);
  for (const i of indices) {
    if (!Number.isInteger(i) || i < 0 || i >= count) throw new RangeError(`index ${i} is not one of the ${count} points`);
    mask[i] = 1;
  }
  return mask;
}

// Per-class counts of the selected images: Int32Array [classes].
export function classCounts(indices, labels, classes = 10) {
  const counts = new Int32Array(classes);
  for (const i of indices) counts[labels[i]]++;
  return counts;
}

// How spread the selection is in a plane: the mean distance of its points to their own centroid, over the
// mean distance of all points to the overall centroid (1: as spread as the whole plane). NaN when empty.
export function spread(embedding, count, indices) {
  const meanDistance = (each, n) => {
    let cx = 0, cy = 0;
    each((i) => { cx += embedding[2 * i]; cy += embedding[2 * i + 1]; });
    cx /= n; cy /= n;
    let total = 0;
    each((i) => { total += Math.hypot(embedding[2 * i] - cx, embedding[2 * i + 1] - cy); });
    return total / n;
  };
  if (!indices.length) return NaN;
  const all = meanDistance((fn) => { for (let i = 0; i < count; i++) fn(i); }, count);
  return meanDistance((fn) => indices.forEach(fn), indices.length) / all;
}

// The mean of the selected codes: Float32Array [D], the group's centroid in that model's latent space.
export function centroid(codes, dim, indices) {
  const out = new Float64Array(dim);
  for (const i of indices) for (let d = 0; d < dim; d++) out[d] += codes[i * dim + d];
  return Float32Array.from(out, (v) => v / indices.length);
}

// The k images nearest image `index` in the D-dimensional codes (itself left out), nearest first; ties go
// to the lower index. Brute force: 70,000 x 16 is a few milliseconds, once per pin.
export function nearestByCode(codes, dim, count, index, k) {
  return nearestToCode(codes, dim, count, codes.subarray(index * dim, (index + 1) * dim), k, index);
}

// The k images whose codes are nearest `code` (Float32Array [D]), nearest first, ties to the lower index;
// `skip` (an index) is left out.
export function nearestToCode(codes, dim, count, code, k, skip = -1) {
  const best = [];
  for (let i = 0; i < count; i++) {
    if (i === skip) continue;
    let s = 0;
    for (let d = 0; d < dim; d++) s += (codes[i * dim + d] - code[d]) ** 2;
    if (best.length === k && s >= best[k - 1][1]) continue;
    let at = best.length < k ? best.push(null) - 1 : k - 1;
    while (at > 0 && best[at - 1][1] > s) { best[at] = best[at - 1]; at--; }
    best[at] = [i, s];
  }
  return { indices: best.map(([i]) => i), distances: best.map(([, s]) => Math.sqrt(s)) };
}

// At most `limit` of the (ascending) indices, spread evenly over them, the picks of vae/selection.py's
// even_sample: positions floor(i * (n - 1) / (limit - 1) + 1/2), in integers, so the first and last are kept.
export function evenSample(indices, limit = 100) {
  const n = indices.length;
  if (n <= limit) return Array.from(indices);
  if (limit === 1) return [indices[0]];
  return Array.from({ length: limit }, (_, i) => indices[Math.floor((2 * i * (n - 1) + (limit - 1)) / (2 * (limit - 1)))]);
}

// 7 significant digits, as '%.7g' writes them on the server (the text may differ, the number does not).
function g7(value) {
  return String(Number(value.toPrecision(7)));
}

// The selection as CSV, the format vae/selection.py's selection_csv documents: index,label, both models'
// codes (left_z1..., right_z1...), both planes' view coordinates; one row per image in ascending order.
// sides: [{codes, dim, embedding}, {codes, dim, embedding}] for left and right.
export function selectionCsv(indices, labels, [left, right]) {
  const header = ["index", "label"];
  for (const [name, side] of [["left", left], ["right", right]]) {
    for (let d = 1; d <= side.dim; d++) header.push(`${name}_z${d}`);
  }
  header.push("left_x", "left_y", "right_x", "right_y");
  const rows = [header.join(",")];
  for (const i of indices) {
    const row = [String(i), String(labels[i])];
    for (const side of [left, right]) for (let d = 0; d < side.dim; d++) row.push(g7(side.codes[i * side.dim + d]));
    for (const side of [left, right]) row.push(g7(side.embedding[2 * i]), g7(side.embedding[2 * i + 1]));
    rows.push(row.join(","));
  }
  return rows.join("\n") + "\n";
}

// The selection for Python: a bit per point, packed most significant bit first (numpy's unpackbits order)
// and base64-encoded, so 70,000 points travel as 12 kB rather than a list of numbers.
export function packMask(mask) {
  const bytes = new Uint8Array(Math.ceil(mask.length / 8));
  for (let i = 0; i < mask.length; i++) if (mask[i]) bytes[i >> 3] |= 128 >> (i & 7);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}
