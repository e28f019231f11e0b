// The 2-D views of a D-dimensional latent space, both ways, computed as vae/projections.py computes them, so
// a point of the plane decodes in the page to the code the server would decode.
//
//   identity: the first two dims; back: the point in dims 1-2, the mean of the fitted codes in dims 3..D.
//   pca:      (z - mean) @ components^T; back: p @ components + mean (the point on the principal plane).
//   neighbours (UMAP, and any view given by its points only): back, the inverse-distance-weighted mean of the
//             codes of the k nearest embedded points; forward, the same weighting of the embedded positions
//             of the k nearest codes. A query on a point gets that point's value exactly. k comes from
//             Python in the spec (vae.projections.NEIGHBOUR_K), so both sides average the same neighbours.
//
// Arrays are flat and row-major: embedding Float32Array [N * 2], codes Float32Array [N * D].

// Nearest embedded points of a 2-D query, from a uniform grid of cells holding about four points each:
// a query visits rings of cells around its own until no unvisited cell can hold a nearer point.
export class PointIndex {
  constructor(embedding, count) {
    this.xy = embedding;
    this.count = count;
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (let i = 0; i < count; i++) {
      const x = embedding[2 * i], y = embedding[2 * i + 1];
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
    if (!(x1 > x0)) { x0 -= 0.5; x1 += 0.5; }
    if (!(y1 > y0)) { y0 -= 0.5; y1 += 0.5; }
    const side = Math.max(1, Math.ceil(Math.sqrt(count / 4)));
    Object.assign(this, { x0, y0, x1, y1, columns: side, rows: side });
    this.cellWidth = (x1 - x0) / side;
    this.cellHeight = (y1 - y0) / side;
    // Counting sort of the points by cell: cellStart[c] .. cellStart[c + 1] index into `order`.
    const cells = side * side;
    const cellOf = new Int32Array(count);
    this.cellStart = new Int32Array(cells + 1);
    for (let i = 0; i < count; i++) {
      const c = this.#cell(embedding[2 * i], embedding[2 * i + 1]);
      cellOf[i] = c;
      this.cellStart[c + 1]++;
    }
    for (let c = 0; c < cells; c++) this.cellStart[c + 1] += this.cellStart[c];
    const fill = this.cellStart.slice(0, cells);
    this.order = new Int32Array(count);
    for (let i = 0; i < count; i++) this.order[fill[cellOf[i]]++] = i;
  }

  #column(x) { return Math.min(this.columns - 1, Math.max(0, Math.floor((x - this.x0) / this.cellWidth))); }
  #row(y) { return Math.min(this.rows - 1, Math.max(0, Math.floor((y - this.y0) / this.cellHeight))); }
  #cell(x, y) { return this.#row(y) * this.columns + this.#column(x); }

  // The k nearest points of (x, y): indices into outIndex and distances into outDistance, nearest first.
  // Returns how many were found (k, unless there are fewer points).
  nearest(x, y, k, outIndex, outDistance) {
    let found = 0;
    const cx = this.#column(x), cy = this.#row(y);
    // A query outside the grid is first projected onto it: every point is at least that far away more.
    const px = Math.min(this.x1, Math.max(this.x0, x)), py = Math.min(this.y1, Math.max(this.y0, y));
    const outside2 = (px - x) ** 2 + (py - y) ** 2;
    const step = Math.min(this.cellWidth, this.cellHeight);
    const maxRing = Math.max(cx, cy, this.columns - 1 - cx, this.rows - 1 - cy);
    for (let ring = 0; ring <= maxRing; ring++) {
      for (let row = cy - ring; row <= cy + ring; row++) {
        if (row < 0 || row >= this.rows) continue;
        const edge = row === cy - ring || row === cy + ring;
        for (let column = cx - ring; column <= cx + ring; column += edge ? 1 : 2 * ring) {
          if (column >= 0 && column < this.columns) found = this.#visit(row * this.columns + column, x, y, k, found, outIndex, outDistance);
          if (ring === 0) break;
        }
      }
      // Every unvisited point lies beyond this ring: at least ring cells from the projected query.
      const bound = Math.sqrt((ring * step) ** 2 + outside2);
      if (found === k && outDistance[k - 1] < bound) break;
    }
    return found;
  }

  // fn(i) for every point in the cells that overlap the box [x0, x1] x [y0, y1] (a superset of the points
  // inside it; the caller tests each). Returns how many were visited.
  forEachInBox(x0, x1, y0, y1, fn) {
    if (!(x1 >= this.x0 && x0 <= this.x1 && y1 >= this.y0 && y0 <= this.y1)) return 0;
    const c0 = this.#column(x0), c1 = this.#column(x1), r0 = this.#row(y0), r1 = this.#row(y1);
    let visited = 0;
    for (let row = r0; row <= r1; row++) {
      const first = this.cellStart[row * this.columns + c0], last = this.cellStart[row * this.columns + c1 + 1];
      // The cells of one row are consecutive in `order`.
      for (let j = first; j < last; j++) fn(this.order[j]);
      visited += last - first;
    }
    return visited;
  }

  // How many points lie inside the box (exactly).
  countInBox(x0, x1, y0, y1) {
    let n = 0;
    const xy = this.xy;
    this.forEachInBox(x0, x1, y0, y1, (i) => {
      const x = xy[2 * i], y = xy[2 * i + 1];
      if (x >= x0 && x <= x1 && y >= y0 && y <= y1) n++;
    });
    return n;
  }

  #visit(cell, x, y, k, found, outIndex, outDistance) {
    for (let j = this.cellStart[cell]; j < this.cellStart[cell + 1]; j++) {
      const i = this.order[j];
      const d = Math.hypot(this.xy[2 * i] - x, this.xy[2 * i + 1] - y);
      if (found === k && d >= outDistance[k - 1]) continue;
      // Insertion into the sorted short list; ties keep the lower index first, as a stable search would.
      let at = found < k ? found++ : k - 1;
      while (at > 0 && (outDistance[at - 1] > d || (outDistance[at - 1] === d && outIndex[at - 1] > i))) {
        outDistance[at] = outDistance[at - 1];
        outIndex[at] = outIndex[at - 1];
        at--;
      }
      outDistance[at] = d;
      outIndex[at] = i;
    }
    return found;
  }
}

// Inverse-distance weights (1 / d) of the first `count` neighbours, normalised, into `weights`; where some
// neighbours coincide with the query, only those count, equally.
export function inverseDistanceWeights(distances, count, weights) {
  let exact = 0;
  for (let j = 0; j < count; j++) if (distances[j] === 0) exact++;
  let total = 0;
  for (let j = 0; j < count; j++) {
    weights[j] = exact ? (distances[j] === 0 ? 1 : 0) : 1 / distances[j];
    total += weights[j];
  }
  for (let j = 0; j < count; j++) weights[j] /= total;
}

// A view of N codes of D dimensions; `spec` comes from Python:
//   {kind: "identity", mean: [D]} | {kind: "pca", mean: [D], components: [[D], [D]]} | {kind: "neighbours", k}
export function createView(spec, embedding, codes, count, dim, index = null) {
  if (spec.kind === "identity") {
    const mean = Float64Array.from(spec.mean);
    return {
      kind: "identity", dim, exact: dim === 2,
      toCode(x, y, out) { out.set(mean); out[0] = x; out[1] = y; return out; },
      toPlane(code, out) { out[0] = code[0]; out[1] = code[1]; return out; },
    };
  }
  if (spec.kind === "pca") {
    const mean = Float64Array.from(spec.mean);
    const [first, second] = spec.components.map((row) => Float64Array.from(row));
    return {
      kind: "pca", dim, exact: false,
      toCode(x, y, out) {
        for (let d = 0; d < dim; d++) out[d] = x * first[d] + y * second[d] + mean[d];
        return out;
      },
      toPlane(code, out) {
        let a = 0, b = 0;
        for (let d = 0; d < dim; d++) { const c = code[d] - mean[d]; a += c * first[d]; b += c * second[d]; }
        out[0] = a; out[1] = b;
        return out;
      },
    };
  }
  if (spec.kind === "neighbours") {
    if (!(Number.isInteger(spec.k) && spec.k > 0)) throw new Error(`a neighbours view needs k > 0, got ${JSON.stringify(spec.k)}`);
    const k = Math.min(spec.k, count);
    const neighbourIndex = new Int32Array(k), neighbourDistance = new Float64Array(k), weights = new Float64Array(k);
    const codeDistance = new Float64Array(k);
    let points = index;
    const pointIndex = () => (points ??= new PointIndex(embedding, count));
    return {
      kind: "neighbours", dim, exact: false,
      toCode(x, y, out) {
        const found = pointIndex().nearest(x, y, k, neighbourIndex, neighbourDistance);
        inverseDistanceWeights(neighbourDistance, found, weights);
        out.fill(0);
        for (let j = 0; j < found; j++) {
          const base = neighbourIndex[j] * dim, w = weights[j];
          for (let d = 0; d < dim; d++) out[d] += w * codes[base + d];
        }
        return out;
      },
      toPlane(code, out) {
        // Brute force over N codes: 10,000 x 16 is 0.2 ms, and this runs once per stroke, not per frame.
        let found = 0;
        for (let i = 0; i < count; i++) {
          let s = 0;
          const base = i * dim;
          for (let d = 0; d < dim; d++) s += (codes[base + d] - code[d]) ** 2;
          const dist = Math.sqrt(s);
          if (found === k && dist >= codeDistance[k - 1]) continue;
          let at = found < k ? found++ : k - 1;
          while (at > 0 && codeDistance[at - 1] > dist) {
            codeDistance[at] = codeDistance[at - 1];
            neighbourIndex[at] = neighbourIndex[at - 1];
            at--;
          }
          codeDistance[at] = dist;
          neighbourIndex[at] = i;
        }
        inverseDistanceWeights(codeDistance, found, weights);
        out[0] = 0; out[1] = 0;
        for (let j = 0; j < found; j++) {
          out[0] += weights[j] * embedding[2 * neighbourIndex[j]];
          out[1] += weights[j] * embedding[2 * neighbourIndex[j] + 1];
        }
        return out;
      },
    };
  }
  throw new Error(`unknown view kind ${JSON.stringify(spec.kind)}`);
}
