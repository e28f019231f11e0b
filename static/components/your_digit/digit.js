// Your digit, live: draw on the pad and, at every frame the pen moves, the drawing is prepared as MNIST's
// digits were, encoded by both models in the page, marked where each encoder puts it, and redrawn by each
// decoder. At the end of a stroke the drawing also goes to Python (a state value), for what needs the server.
//
// The same component shows an uploaded picture (data.digit: the server prepared it, 784 grey levels in [0, 1]):
// no pad, the same planes, cross, redraws and captions, so drawing and uploading look alike.
//
// The cross is a decoration of the plane in data coordinates (scatter.js's pins), so it follows zoom and pan.

import { fetchBytes, unpackPoints } from "../../lib/assets.js";
import { element, mountOnce } from "../../lib/dom.js";
import { digitHooks } from "../../lib/hooks.js";
import { attachPen } from "../../lib/pen.js";
import { greyToRgba, rgbaToGrey, toMnist } from "../../lib/image.js";
import { DECODER_FENCE, encoderFence, LatestDecoder, loadGraph } from "../../lib/runtime.js";
import { LatentPlane } from "../../lib/scatter.js";
import { missingSupport } from "../../lib/support.js";
import { createView } from "../../lib/views.js";

// For the browser tests only (lib/hooks.js says what each field is).
const hooks = digitHooks();

export const render = mountOnce((component) => new DigitPad(component));

function digitCanvas(parent, testId) {
  const canvas = element("canvas", "digit", parent);
  canvas.width = canvas.height = 28;
  canvas.dataset.testid = testId;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(28, 28);
  const clear = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, 28, 28); };
  clear();
  return {
    canvas,
    draw(values) { greyToRgba(values, 0, image.data); ctx.putImageData(image, 0, 0); },
    clear,
  };
}

// The caption under a redraw: the code itself for D > 2 (the plane shows a view of it), its place for D = 2.
// Python's app/your_digit.py code_caption says the same for the server's planes.
function codeCaption(code, point, dim) {
  return dim > 2 ? `code: [${Array.from(code, (v) => v.toFixed(2)).join(", ")}]` : `code (${point[0].toFixed(2)}, ${point[1].toFixed(2)})`;
}

class DigitPad {
  constructor(component) {
    this.component = component;
    this.mode = component.data.digit ? "upload" : "draw";
    this.hooks = this.mode === "upload" ? hooks.upload : hooks;
    this.root = element("div", "your-digit", component.parentElement);
    this.status = element("div", "status", this.root, "Loading the encoders and decoders…");
    const missing = missingSupport();
    if (missing.length) {
      this.unsupported = true;
      this.status.textContent = `This browser lacks ${missing.join(" and ")}: the server prepares and places the drawing instead.`;
      component.setStateValue("support", { ok: false, missing });
      return;
    }
    const row = element("div", "pad-row", this.root);
    const pad = element("div", "pad", row);
    this.sides = {};
    if (this.mode === "upload") {
      const prepared = element("div", "prepared", pad);
      this.prepared = digitCanvas(prepared, "prepared");
      element("div", "caption", prepared, "as MNIST would store it (prepared on the server)");
      this.sidesRoot = element("div", "sides", row);
      return;
    }
    this.canvas = element("canvas", "", pad);
    this.canvas.width = this.canvas.height = 280;
    this.canvas.setAttribute("aria-label", "drawing canvas: draw one digit");
    this.ctx = this.canvas.getContext("2d", { willReadFrequently: true });
    this.clearPen = attachPen(this.canvas, {
      onMove: (timeStamp) => this.schedule(timeStamp),
      onStroke: (url) => this.component.setStateValue("drawing", url),
    });
    const clear = element("button", "", pad, "Clear");
    clear.type = "button";
    clear.addEventListener("click", () => this.clear());
    const prepared = element("div", "prepared", pad);
    this.prepared = digitCanvas(prepared, "prepared");
    element("div", "caption", prepared, "as MNIST would store it (prepared in the page)");
    this.sidesRoot = element("div", "sides", row);
    this.clear(false);
  }

  clear(notify = true) {
    this.clearPen(this.component.data?.brush || 18);
    this.prepared.clear();
    for (const side of Object.values(this.sides)) {
      side.plane.setDecor({});
      side.where.textContent = "";
      side.redrawn.clear();
      side.caption.textContent = `${side.spec.name}: draw a digit to see where it lands`;
    }
    if (notify) this.component.setStateValue("drawing", null);
  }

  // One at a time, in order (lib/dom.js mountOnce queues them).
  async update(component) {
    if (this.unsupported) return;
    this.component = component;
    const data = component.data;
    this.runtime = data.runtime;
    try {
      await Promise.all(data.planes.map((spec) => this.#side(spec, data)));
    } catch (error) {
      this.status.textContent = `The models could not be loaded: ${error.message}. Reload the page to try again.`;
      this.status.classList.add("error");
      console.error(error);
      return;
    }
    const where = "Each cross marks where that model's encoder puts it among the test images (wheel to zoom, drag " +
      "to pan, double-click to go back); below each plane, what its decoder draws from that code";
    this.status.textContent = this.mode === "upload"
      ? `${where}, in this page.`
      : `Draw one digit with the mouse (or a finger). ${where}. Both follow the pen, in this page.`;
    this.#layout();
    if (this.mode === "upload") {
      const digit = Float32Array.from(data.digit);
      this.prepared.draw(digit);
      await this.#place(digit);
      this.root.dataset.placed = "1";
    }
    const own = this.hooks;
    // For tests: the classes of the k test images nearest to where a side's marker is.
    own.nearestLabels = (name, k) => {
      const side = this.sides[name], mark = own.marks[name];
      const index = new Int32Array(k), distance = new Float64Array(k);
      const found = side.plane.index.nearest(mark[0], mark[1], k, index, distance);
      return Array.from(index.subarray(0, found), (i) => side.labels[i]);
    };
    // For tests: where a point of a side's plane (data coordinates) is in the window (CSS pixels).
    own.toClient = (name, x, y) => {
      const plane = this.sides[name].plane, box = plane.decor.getBoundingClientRect();
      const [px, py] = plane.toPixel(x, y);
      return [box.left + px, box.top + py];
    };
    own.ready = true;
    this.root.dataset.ready = "1";
  }

  async #side(spec, data) {
    let side = this.sides[spec.side];
    if (side && side.spec.points === spec.points && side.spec.encoder === spec.encoder) return;
    if (!side) {
      const root = element("div", "side", this.sidesRoot);
      const title = element("div", "plane-title", root);
      const body = element("div", "side-body", root);
      const host = element("div", "plane-host", body);
      host.dataset.testid = `digit-plane-${spec.side}`;
      const readout = element("div", "readout", body);
      side = { root, title, host, plane: new LatentPlane(host, {}) };
      side.redrawn = digitCanvas(readout, `redrawn-${spec.side}`);
      const captions = element("div", "captions", readout);
      side.caption = element("div", "caption", captions);
      side.where = element("div", "caption", captions);
      this.sides[spec.side] = side;
    }
    side.spec = spec;
    side.title.textContent = spec.title;
    side.plane.setPalette(data.palette);
    const [bytes, encoder, decoder] = await Promise.all([
      fetchBytes(spec.points),
      // An imported model's graphs run fenced (lib/fence.js): each in a worker with a watchdog.
      loadGraph(this.runtime, spec.encoder, spec.fenced ? encoderFence(spec.dim) : null),
      loadGraph(this.runtime, spec.decoder, spec.fenced ? DECODER_FENCE : null),
    ]);
    const n = spec.count, d = spec.dim;
    ({ embedding: side.embedding, codes: side.codes, labels: side.labels } = unpackPoints(bytes, n, d));
    side.plane.setPoints(side.embedding, side.labels, n, spec.extent);
    side.view = createView(spec.view, side.embedding, side.codes, n, d, side.plane.index);
    side.encoder = encoder;
    side.decoder = new LatestDecoder(decoder, d);
    side.point = new Float64Array(2);
    side.caption.textContent = this.mode === "upload" ? `${spec.name}: placing it…` : `${spec.name}: draw a digit to see where it lands`;
  }

  #layout() {
    const width = this.sidesRoot.clientWidth || 800;
    const top = this.sidesRoot.getBoundingClientRect().top;
    const room = window.innerHeight - Math.max(0, top) - 170;
    const size = Math.max(240, Math.min(520, (width - 24) / 2, Math.max(room, 280)));
    for (const side of Object.values(this.sides)) side.plane.resize(size);
  }

  // One update per animation frame, for the latest state of the pad.
  schedule(started) {
    this.started ??= started;
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      const began = this.started;
      this.started = undefined;
      this.#encode(began).catch((error) => console.error(error));
    });
  }

  async #encode(started) {
    if (this.busy) {
      // A pen faster than the encoders: pick up the latest pad when this update ends.
      this.again = started;
      return;
    }
    this.busy = true;
    try {
      const pixels = this.ctx.getImageData(0, 0, 280, 280).data;
      const digit = toMnist(rgbaToGrey(pixels, 280, 280), 280, 280);
      if (!digit) return;
      this.prepared.draw(digit);
      await this.#place(digit);
      hooks.updates++;
      if (started !== undefined) hooks.timings.push(performance.now() - started);
    } finally {
      this.busy = false;
      if (this.again !== undefined) {
        const next = this.again;
        this.again = undefined;
        this.#encode(next);
      }
    }
  }

  // Encode `digit` (Float32Array [784], grey levels in [0, 1]) with both models, cross it on both planes and
  // redraw it with both decoders.
  async #place(digit) {
    const marks = this.hooks.marks;
    const sides = Object.values(this.sides).filter((s) => s.encoder);
    await Promise.all(sides.map((side) => this.#placeOn(side, digit, marks).catch((error) => {
      // A fenced graph stopped (or refused): said on its side; the other side carries on.
      side.caption.textContent = `${side.spec.name}: ${error.message}`;
    })));
  }

  // One side of #place; rejects when that side's graph fails.
  async #placeOn(side, digit, marks) {
    const out = await side.encoder.run(digit, 1, [1, 28, 28]);
    const code = out.embedding ?? Object.values(out)[0];
    side.view.toPlane(code, side.point);
    const point = [side.point[0], side.point[1]];
    side.plane.setDecor({ pins: [{ point, label: "your digit" }] });  // redrawn at every zoom and pan
    marks[side.spec.side] = point;
    side.where.textContent = codeCaption(code, point, side.spec.dim);
    await new Promise((done, failed) => side.decoder.request(code, (image) => { side.redrawn.draw(image); done(); }, failed));
    side.caption.textContent = `${side.spec.name} redraws it`;
  }

  dispose() {
    if (this.frame) cancelAnimationFrame(this.frame);
    for (const side of Object.values(this.sides)) side.plane.dispose();
    this.root.remove();
  }
}
