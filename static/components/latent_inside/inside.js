// Inside the latent space, in the page: for both models side by side, traversals (one row per dimension, that
// dimension swept over its 1st..99th percentile from a base code), one slider per dimension with the decoded
// image and the nearest real test image, and 64 samples with Resample. Every decode runs here (the models'
// decoders in onnxruntime-web), so nothing is sent to the server while a person explores.
//
// Data from Python (app/latent_inside.py): per side the decoder and points URLs (codes [N, D], labels), the
// dimensions' order and figures, their ranges, the mean code and the sampler; the pinned image, if any.

import { fetchBytes, unpackPoints } from "../../lib/assets.js";
import { element, mountOnce } from "../../lib/dom.js";
import { insideHooks, record } from "../../lib/hooks.js";
import { greyToRgba, PIXELS } from "../../lib/image.js";
import { LatestDecoder, loadGraph } from "../../lib/runtime.js";
import { nearestToCode } from "../../lib/selection.js";

const hooks = insideHooks();
const SHOWN_ROWS = 8; // traversal rows shown before "all dimensions"
const SAMPLES = 64;

export const render = mountOnce((component) => new Inside(component));

function drawTiles(canvas, pixels, count, columns, bytes = false, offsets = null) {
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(28, 28);
  for (let j = 0; j < count; j++) {
    greyToRgba(pixels, (offsets ? offsets[j] : j) * PIXELS, image.data, bytes);
    ctx.putImageData(image, 28 * (j % columns), 28 * Math.floor(j / columns));
  }
}

// A seeded generator of standard normal numbers (mulberry32, then Box-Muller): the same draw for the same
// seed, so Resample's sequence can be replayed.
export function normals(seed, count) {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float64Array(count);
  for (let i = 0; i < count; i += 2) {
    const u = Math.max(uniform(), 1e-12), v = uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < count) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}

// n codes [n * D] from the sampler: the prior N(0, I), or mean + L eps (L the Cholesky factor of a covariance).
export function sampleCodes(sampler, dim, n, seed) {
  const eps = normals(seed, n * dim);
  if (sampler.kind === "prior") return Float32Array.from(eps);
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < dim; r++) {
      let v = sampler.mean[r];
      for (let c = 0; c <= r; c++) v += sampler.cholesky[r][c] * eps[i * dim + c];
      out[i * dim + r] = v;
    }
  }
  return out;
}

class Side {
  constructor(inside, parent) {
    this.inside = inside;
    this.root = element("div", "inside-side", parent);
  }

  async load(spec) {
    const fresh = !this.spec || this.spec.points !== spec.points || this.spec.decoder !== spec.decoder;
    this.spec = spec;
    if (!fresh) return;
    const [graph, bytes] = await Promise.all([loadGraph(this.inside.data.runtime, spec.decoder), fetchBytes(spec.points)]);
    this.graph = graph;
    ({ codes: this.codes, labels: this.labels } = unpackPoints(bytes, spec.count, spec.dim));
    this.decoder = new LatestDecoder(graph, spec.dim);
    this.base = null;
  }

  // The base code: the pinned image's code when one is pinned and chosen, else the mean code.
  baseCode() {
    const d = this.spec.dim, pinned = this.inside.data.pinned;
    if (this.inside.baseChoice === "pinned" && pinned !== null && pinned < this.spec.count) {
      return Float32Array.from(this.codes.subarray(pinned * d, (pinned + 1) * d));
    }
    return Float32Array.from(this.spec.mean);
  }

  title(parent) {
    const kind = this.spec.kind.toUpperCase();
    element("div", "inside-title", parent, `${this.spec.name} (${kind}, ${this.spec.dim}-D)`);
  }

  // --- dimensions: traversals and sliders ----------------------------------------------------------

  buildDimensions() {
    this.root.replaceChildren();
    this.title(this.root);
    const rowsBox = element("div", "traversals", this.root);
    element("div", "inside-caption", rowsBox,
      "Each row sweeps one dimension from its 1st to its 99th percentile over the test codes (narrowed by Range), " +
      "the others held at the base code: a row that does not change is a dimension the decoder ignores.");
    this.rows = element("div", "traversal-rows", rowsBox);
    const sliders = element("div", "sliders", this.root);
    const readout = element("div", "slider-readout", sliders);
    this.sliderImage = element("canvas", "slider-image", readout);
    this.sliderImage.width = this.sliderImage.height = 28;
    this.sliderImage.dataset.testid = `slider-image-${this.name}`;
    this.nearestImage = element("canvas", "nearest-image", readout);
    this.nearestImage.width = this.nearestImage.height = 28;
    this.nearestCaption = element("div", "inside-caption", readout);
    this.sliderBox = element("div", "slider-list", sliders);
    this.drawTraversals();
    this.buildSliders();
  }

  async drawTraversals() {
    const { dim, order, low, high } = this.spec, steps = this.inside.data.steps;
    const all = this.inside.allDimensions, rows = all ? order : order.slice(0, SHOWN_ROWS);
    const scale = this.inside.range;
    const base = this.baseCode();
    const codes = new Float32Array(rows.length * steps * dim);
    rows.forEach((d, r) => {
      const centre = (low[d] + high[d]) / 2, half = ((high[d] - low[d]) / 2) * scale;
      for (let s = 0; s < steps; s++) {
        const at = (r * steps + s) * dim;
        codes.set(base, at);
        codes[at + d] = centre - half + (2 * half * s) / (steps - 1);
      }
    });
    const token = (this.traversalToken = (this.traversalToken ?? 0) + 1);
    const out = await this.graph.run(codes, rows.length * steps, [dim]);
    if (token !== this.traversalToken) return; // a newer base or range came first
    const pixels = out.image ?? Object.values(out)[0];
    this.rows.replaceChildren();
    rows.forEach((d, r) => {
      const row = element("div", "traversal-row", this.rows);
      const figure = this.spec.kl[d] !== null ? `KL ${this.spec.kl[d].toFixed(2)}` : `var ${this.spec.variance[d].toFixed(2)}`;
      element("span", `traversal-label${this.spec.active[d] ? "" : " inactive"}`, row, `z${d} · ${figure}${this.spec.active[d] ? "" : " · inactive"}`);
      const canvas = element("canvas", "traversal", row);
      canvas.dataset.testid = `traversal-${this.name}-${d}`;
      canvas.width = 28 * steps;
      canvas.height = 28;
      const ctx = canvas.getContext("2d"), image = ctx.createImageData(28, 28);
      for (let s = 0; s < steps; s++) {
        greyToRgba(pixels, (r * steps + s) * PIXELS, image.data);
        ctx.putImageData(image, 28 * s, 0);
      }
    });
    this.traversalsDrawn = (this.traversalsDrawn ?? 0) + 1;
  }

  buildSliders() {
    const { dim, order, low, high } = this.spec;
    this.code = this.baseCode();
    this.sliderBox.replaceChildren();
    const shown = this.inside.allDimensions ? order : order.slice(0, this.inside.data.max_sliders);
    for (const d of shown) {
      const row = element("label", "slider-row", this.sliderBox);
      element("span", "slider-name", row, `z${d}`);
      const input = element("input", "slider", row);
      const lo = Math.min(low[d], this.code[d]), hi = Math.max(high[d], this.code[d]);
      Object.assign(input, { type: "range", min: String(lo), max: String(hi), step: String((hi - lo) / 200 || 0.01), value: String(this.code[d]) });
      input.dataset.testid = `slider-${this.name}-${d}`;
      input.dataset.dim = String(d);
      const value = element("span", "slider-value", row, this.code[d].toFixed(2));
      input.addEventListener("input", (event) => {
        this.code[d] = Number(input.value);
        value.textContent = this.code[d].toFixed(2);
        this.decodeSlider(event.timeStamp);
      });
    }
    this.decodeSlider();
  }

  decodeSlider(started) {
    const code = this.code;
    this.decoder.request(code, (pixels) => {
      drawTiles(this.sliderImage, pixels, 1, 1);
      this.sliderPixels = pixels;
      this.sliderCode = Float32Array.from(code);
      if (started !== undefined) record(hooks.sliderTimings, performance.now() - started);
      const { indices, distances } = nearestToCode(this.codes, this.spec.dim, this.spec.count, code, 1);
      this.nearest = indices[0];
      const images = this.inside.images;
      if (images) drawTiles(this.nearestImage, images, 1, 1, true, [indices[0]]);
      this.nearestCaption.textContent =
        `Left: the decoded code. Right: the nearest real test image in ${this.spec.name}'s latent space, ` +
        `#${indices[0]} (${this.inside.data.classes[this.labels[indices[0]]]}), distance ${distances[0].toFixed(2)}.`;
      this.slidersDrawn = (this.slidersDrawn ?? 0) + 1;
    });
  }

  // --- samples ---------------------------------------------------------------------------------------

  buildSamples() {
    this.root.replaceChildren();
    this.title(this.root);
    this.samplesCanvas = element("canvas", "samples", this.root);
    this.samplesCanvas.width = this.samplesCanvas.height = 28 * 8;
    this.samplesCanvas.dataset.testid = `samples-${this.name}`;
    this.samplesCaption = element("div", "inside-caption", this.root);
    this.drawSamples();
  }

  async drawSamples() {
    const seed = this.inside.seed, dim = this.spec.dim;
    // One stream per side and draw: the two models' samples are independent.
    const codes = sampleCodes(this.spec.sampler, dim, SAMPLES, 1000 * seed + (this.name === "left" ? 1 : 2));
    const out = await this.graph.run(codes, SAMPLES, [dim]);
    if (seed !== this.inside.seed) return;
    drawTiles(this.samplesCanvas, out.image ?? Object.values(out)[0], SAMPLES, 8);
    const from = this.spec.sampler.kind === "prior" ? "its prior N(0, I)" : "a Gaussian fitted to its training codes";
    this.samplesCaption.textContent = `64 decodes of random codes from ${from} (draw ${seed + 1}), drawn in this page.`;
    this.samplesDrawn = (this.samplesDrawn ?? 0) + 1;
  }
}

class Inside {
  constructor(component) {
    this.root = element("div", "inside", component.parentElement);
    this.controls = element("div", "inside-controls", this.root);
    this.body = element("div", "inside-sides", this.root);
    this.sides = { left: new Side(this, this.body), right: new Side(this, this.body) };
    this.sides.left.name = "left";
    this.sides.right.name = "right";
    this.baseChoice = "mean";
    this.range = 1;
    this.seed = 0;
    this.allDimensions = false;
  }

  async update(component) {
    const data = (this.data = component.data);
    this.imagesReady ??= fetchBytes(data.images.url).then((b) => (this.images = new Uint8Array(b)));
    await Promise.all(data.sides.map((spec) => this.sides[spec.side].load(spec)));
    await this.imagesReady;
    if (data.pinned === null && this.baseChoice === "pinned") this.baseChoice = "mean";
    this.buildControls();
    for (const side of Object.values(this.sides)) {
      if (data.mode === "dimensions") side.buildDimensions();
      else side.buildSamples();
    }
    // Two of these can share a page (the Dimensions and the Samples tab): one probe per mode.
    hooks.probes[data.mode] = this.probe();
    hooks.ready = true;
  }

  buildControls() {
    this.controls.replaceChildren();
    if (this.data.mode === "samples") {
      const again = element("button", "inside-button", this.controls, "Resample");
      again.type = "button";
      again.dataset.testid = "resample";
      again.title = "Draw 64 new codes for each model and decode them in this page.";
      again.addEventListener("click", () => {
        this.seed += 1;
        for (const side of Object.values(this.sides)) side.drawSamples();
      });
      return;
    }
    const label = element("label", "inside-control", this.controls, "Base code ");
    const base = element("select", "", label);
    base.dataset.testid = "base";
    for (const [value, text] of [["mean", "the mean test code"], ["pinned", this.data.pinned !== null ? `image #${this.data.pinned} (pinned in the explorer)` : null]]) {
      if (!text) continue;
      const option = element("option", "", base, text);
      option.value = value;
    }
    base.value = this.baseChoice;
    base.addEventListener("change", () => {
      this.baseChoice = base.value;
      for (const side of Object.values(this.sides)) { side.drawTraversals(); side.buildSliders(); }
    });
    const rangeLabel = element("label", "inside-control", this.controls, "Range ");
    const range = element("input", "", rangeLabel);
    Object.assign(range, { type: "range", min: "0.1", max: "1", step: "0.05", value: String(this.range) });
    range.dataset.testid = "range";
    const rangeValue = element("span", "", rangeLabel, `${Math.round(100 * this.range)} % of the 1st–99th percentile span`);
    range.addEventListener("input", () => {
      this.range = Number(range.value);
      rangeValue.textContent = `${Math.round(100 * this.range)} % of the 1st–99th percentile span`;
      for (const side of Object.values(this.sides)) side.drawTraversals();
    });
    const most = Math.max(...Object.values(this.sides).map((s) => s.spec.dim));
    if (most > SHOWN_ROWS) {
      const all = element("label", "inside-control", this.controls);
      const box = element("input", "", all);
      box.type = "checkbox";
      box.checked = this.allDimensions;
      box.dataset.testid = "all-dimensions";
      all.append(` all ${most} dimensions (${SHOWN_ROWS} traversal rows and ${this.data.max_sliders} sliders otherwise)`);
      box.addEventListener("change", () => {
        this.allDimensions = box.checked;
        for (const side of Object.values(this.sides)) { side.drawTraversals(); side.buildSliders(); }
      });
    }
  }

  probe() {
    const side = (name) => this.sides[name];
    return {
      code: (name) => Array.from(side(name).sliderCode ?? []),
      pixels: (name) => Array.from(side(name).sliderPixels ?? []),
      nearest: (name) => side(name).nearest ?? null,
      counts: (name) => ({ traversals: side(name).traversalsDrawn ?? 0, sliders: side(name).slidersDrawn ?? 0, samples: side(name).samplesDrawn ?? 0 }),
      sampleCodes: (name, seed) => Array.from(sampleCodes(side(name).spec.sampler, side(name).spec.dim, 4, seed)),
    };
  }

  dispose() {
    this.root.remove();
  }
}
