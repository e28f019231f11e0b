// The latent explorer in the page: two planes side by side, each model's decoder running here, so hovering
// anywhere decodes on the next frame and sends nothing to the server. Two things go to Python, each one
// rerun: a click (a trigger) pins a point for what needs the server (interpolation ends, posterior ellipses,
// exports), and a selection when its lasso or box ends (state), for the neighbourhoods in all D dimensions
// and the Exports page. Drawing a lasso sends nothing.
//
// Data from Python (app/web_planes.py) holds URLs and small JSON only: palette, class names, per plane its
// decoder, its points (embedding, codes, labels), its view and overlays.

import { fetchBytes, unpackPoints } from "../../lib/assets.js";
import { element, mountOnce } from "../../lib/dom.js";
import { explorerHooks, record } from "../../lib/hooks.js";
import { greyToRgba, PIXELS } from "../../lib/image.js";
import { DECODER_FENCE, LatestDecoder, loadGraph } from "../../lib/runtime.js";
import { LatentPlane } from "../../lib/scatter.js";
import { combine, maskIndices, packMask, pointsInPolygon } from "../../lib/selection.js";
import { missingSupport } from "../../lib/support.js";
import { createView } from "../../lib/views.js";
import { SelectionPanel, unpackMask } from "./selection_panel.js";
import { readZoom, writeZoom } from "./zoom_link.js";

const SIDES = ["left", "right"];
// The holes layer decodes a square grid of this many cells a side over the visible region, then the judge
// reads each image: 576 decodes and judgements per view (README: its cost per view, measured).
const HOLES_CELLS = 24;
const HOLES_CHUNK = 48;
// For the browser tests and benchmarks only (lib/hooks.js says what each field is).
const hooks = explorerHooks();

// Where things are, for tests and benchmarks: data -> page coordinates, a data point's place, and a spot of
// empty space (no point within `clear` pixels) near a fraction (fx, fy) of the visible plane.
function probe(explorer) {
  const side = (name) => explorer.sides[name];
  return {
    client(name, x, y) {
      const s = side(name), box = s.plane.hover.getBoundingClientRect();
      const [px, py] = s.plane.toPixel(x, y);
      return [box.left + px, box.top + py];
    },
    point(name, index) {
      const s = side(name);
      return [s.embedding[2 * index], s.embedding[2 * index + 1]];
    },
    label(name, index) { return side(name).labels[index]; },
    // The hover layer's markers (scrub dot, rings) in plane coordinates, and each ellipse's on-screen radii.
    markers(name) { return side(name).plane.markers.map((m) => ({ kind: m.kind, point: [...m.point], label: m.label ?? "" })); },
    rings(name) { return (side(name).plane.decorations.rings || []).map((r) => ({ point: [...r.point], label: r.label })); },
    // The pins drawn in the plane ([x, y] each) and the caption under its decoded digit.
    pins(name) { return (side(name).plane.decorations.pins || []).map((p) => [...p.point]); },
    caption(name) { return side(name).caption.textContent; },
    ellipses(name) {
      const plane = side(name).plane;
      return { magnification: plane.ellipseMagnification ?? 1, radii: plane.ellipseRadii ?? [], note: side(name).decorNote.textContent };
    },
    titles() { return Object.values(explorer.sides).map((s) => s.spec?.name ?? null); },
    // What each plane draws of the selection, and how many thumbnails are in view.
    holes(name) {
      const s = side(name);
      return { drawn: s.holesDrawn ?? 0, extent: s.holesExtent ?? null, note: s.holesNote.textContent, classes: s.holesClasses ?? null };
    },
    drawnSelection(name) { return Array.from(side(name).plane.selected ?? []); },
    embedding(name) { return Array.from(side(name).embedding); },
    labels(name) { return Array.from(side(name).labels); },
    redraw() { return explorer.redrawBoth(); },
    lastPolygon() { return explorer.lastPolygon ? Array.from(explorer.lastPolygon) : null; },
    thumbnails(name) { return side(name).plane.thumbnailsShown; },
    view(name) { return { ...side(name).plane.view }; },
    count(name) { return side(name).spec.count; },
    box(name) {
      const r = side(name).plane.hover.getBoundingClientRect();
      return { x: r.left, y: r.top, width: r.width, height: r.height };
    },
    empty(name, fx, fy, clear = 14) {
      const s = side(name), size = s.plane.size;
      for (let r = 0; r < size / 2; r += 3) {
        for (let a = 0; a < 24; a++) {
          const px = fx * size + r * Math.cos((a * Math.PI) / 12), py = fy * size + r * Math.sin((a * Math.PI) / 12);
          if (px < 4 || py < 4 || px > size - 4 || py > size - 4) continue;
          const [x, y] = s.plane.toData(px, py);
          if (s.plane.pick(x, y, clear) < 0) return [x, y];
        }
      }
      return null;
    },
  };
}

export const render = mountOnce((component) => new Explorer(component));

// A 28 x 28 canvas shown large with square pixels, and the ImageData it is drawn from (reused).
class DigitView {
  constructor(parent, className, testId) {
    this.canvas = element("canvas", `digit ${className}`, parent);
    this.canvas.width = this.canvas.height = 28;
    this.canvas.dataset.testid = testId;
    this.ctx = this.canvas.getContext("2d");
    this.image = this.ctx.createImageData(28, 28);
    this.blank();
  }

  draw(values, offset = 0, bytes = false) {
    greyToRgba(values, offset, this.image.data, bytes);
    this.ctx.putImageData(this.image, 0, 0);
  }

  blank() {
    this.ctx.fillStyle = "#000";
    this.ctx.fillRect(0, 0, 28, 28);
  }
}

class Side {
  constructor(explorer, name, parent) {
    this.explorer = explorer;
    this.name = name;
    this.root = element("div", "side", parent);
    this.title = element("div", "plane-title", this.root);
    const body = element("div", "side-body", this.root);
    this.host = element("div", "plane-host", body);
    this.host.dataset.testid = `plane-${name}`;
    const readout = element("div", "readout", body);
    this.decoded = new DigitView(readout, "decoded", `decoded-${name}`);
    this.caption = element("div", "caption", readout);
    this.originalBox = element("div", "original-box", readout);
    this.original = new DigitView(this.originalBox, "original", `original-${name}`);
    this.originalCaption = element("div", "caption", this.originalBox);
    this.note = element("div", "note", readout);
    this.axes = element("div", "axes", this.root);
    this.decorNote = element("div", "decor-note", this.root);
    this.holesNote = element("div", "decor-note holes-note", this.root);
    this.holesNote.dataset.testid = `holes-note-${name}`;
    this.plane = new LatentPlane(this.host, {
      onHover: (x, y, index, event) => explorer.hover(this, x, y, index, event),
      onLeave: () => explorer.leave(this),
      onClick: (x, y, index, event) => explorer.click(this, x, y, index, event),
      onView: () => explorer.viewChanged(this),
      onSelect: (polygon, mode) => explorer.selectPolygon(this, polygon, mode),
      onDrawn: (ms) => record(hooks.drawTimings, ms),
    });
    this.spec = null;
    this.decoder = null;
    this.code = null;
    this.point = new Float64Array(2);
    // Bumped to drop a decode still under way when what it was for is gone (model changed, pointer left).
    this.token = 0;
  }

  // Nothing of the previous model, view or strip left on screen: markers, digits, captions.
  reset() {
    this.token++;
    this.plane.drawHover([]);
    this.decoded.blank();
    this.caption.textContent = "";
    this.note.textContent = "";
    this.originalBox.hidden = true;
    this.originalIndex = null;
  }

  // Load what changed: points, decoder. Resolves when this side can decode.
  async load(spec, palette) {
    const previous = this.spec;
    this.spec = spec;
    this.title.textContent = spec.title;
    this.axes.textContent = `x: ${spec.axis_labels[0]} · y: ${spec.axis_labels[1]}`;
    this.plane.setPalette(palette);
    const newPoints = !previous || previous.points !== spec.points;
    const newDecoder = !previous || previous.decoder !== spec.decoder;
    // Another model or view: what was drawn for the old one (scrub dot, rings, digits) would be off its plane.
    if (previous && (newPoints || newDecoder)) this.reset();
    // Points and decoder travel at once; the points are drawn as soon as they arrive.
    // An imported model's decoder runs fenced (lib/fence.js): a worker with a watchdog.
    const graph = newDecoder ? loadGraph(this.explorer.runtime, spec.decoder, spec.fenced ? DECODER_FENCE : null) : null;
    if (newPoints) {
      const bytes = await fetchBytes(spec.points);
      const n = spec.count, d = spec.dim;
      ({ embedding: this.embedding, codes: this.codes, labels: this.labels } = unpackPoints(bytes, n, d));
      this.plane.setPoints(this.embedding, this.labels, n, spec.extent);
      this.view = createView(spec.view, this.embedding, this.codes, n, d, this.plane.index);
      this.code = new Float32Array(d);
      // A link's zoom applies to the first points of this view; later loads start at home.
      const zoom = readZoom(this.name);
      if (zoom) this.plane.view = zoom;
      this.explorer.imagesReady?.then(() => this.plane.setImages(this.explorer.images));
    }
    if (graph) {
      this.graph = await graph;
      this.decoder = new LatestDecoder(this.graph, spec.dim);
    }
    this.plane.setDecor(this.decor());
    this.describeDecor();
  }

  // The selected image, and the clicked images that are interpolation ends, ringed: earlier clicks stay
  // marked for as long as they are From or To.
  decor() {
    const d = this.spec.decor || {};
    const labels = new Map();
    const selected = this.explorer.data.selected;
    if (selected !== null && selected !== undefined) labels.set(selected, `#${selected}`);
    for (const { end, index } of this.explorer.data.interpolation?.images || []) {
      labels.set(index, `#${index} (${end})`);
    }
    const rings = [];
    for (const [index, label] of labels) {
      if (index < this.spec.count) rings.push({ point: [this.embedding[2 * index], this.embedding[2 * index + 1]], label });
    }
    return { ...d, rings, pins: d.pin ? [{ point: d.pin, label: "pinned" }] : [] };
  }

  // What the posterior ellipses' size means, and how much they are magnified at this zoom.
  describeDecor() {
    const count = this.spec.decor?.ellipses?.length ?? 0;
    const k = this.plane.ellipseMagnification ?? 1;
    this.decorNote.textContent = count
      ? `Ellipses: each clicked image's posterior q(z|x), mean ± 1σ: the region its code is drawn from (small: the ` +
        `encoder is sure where it goes). ${k > 1 ? `Drawn ×${k} to be seen at this zoom; zoom in for their true size.` : "True size."}`
      : "";
  }

  // Decode `code` (Float32Array [D]) and show it with `caption`; `started` is when the pointer moved.
  show(code, caption, started) {
    if (!this.decoder) return;
    const token = this.token;
    this.decoder.request(code, (pixels) => {
      if (token !== this.token) return;
      this.decoded.draw(pixels);
      this.caption.textContent = caption;
      // Timed twice: to the pixels written, and to the start of the next frame, which shows them.
      if (started !== undefined) {
        record(hooks.drawnTimings, performance.now() - started);
        requestAnimationFrame(() => record(hooks.timings, performance.now() - started));
      }
    }, (error) => {
      // A fenced decoder stopped (or refused): said above the planes, where it stays when the pointer leaves,
      // and where the digit would be; the other plane carries on.
      this.explorer.status.textContent = `${this.spec.name}: ${error.message}`;
      if (token !== this.token) return;
      this.decoded.blank();
      this.caption.textContent = error.message;
    });
  }

  codeOfPoint(index) {
    return this.codes.subarray(index * this.spec.dim, (index + 1) * this.spec.dim);
  }

  describeCode(code) {
    if (this.spec.dim <= 2) return "";
    return "z = [" + Array.from(code, (v) => v.toFixed(2)).join(", ") + "]";
  }
}

class Explorer {
  constructor(component) {
    this.component = component;
    this.root = element("div", "explorer", component.parentElement);
    this.status = element("div", "status", this.root, "Loading the decoders…");
    const missing = missingSupport();
    if (missing.length) {
      this.unsupported = missing.join(" and ");
      this.status.textContent = `This browser lacks ${this.unsupported}: using the server's planes instead.`;
      component.setStateValue("support", { ok: false, missing });
      return;
    }
    this.legend = element("div", "legend", this.root);
    this.legend.dataset.testid = "legend";
    const sides = element("div", "sides", this.root);
    this.sides = Object.fromEntries(SIDES.map((name) => [name, new Side(this, name, sides)]));
    this.strips = element("div", "strips", this.root);
    this.grids = element("div", "grids", this.root);
    this.visible = new Array(10).fill(true);
    this.hovered = null;
    this.mask = null; // the selection, Uint8Array [N], shared by both planes
    this.panel = new SelectionPanel(this, { bar: sides, body: this.grids });
    this.onKey = (event) => {
      if (event.key === "Escape" && this.mask) this.clearSelection();
    };
    document.addEventListener("keydown", this.onKey);
    this.resizeObserver = new ResizeObserver(() => this.layout());
    this.resizeObserver.observe(this.root);
    this.onWindowResize = () => this.layout();
    window.addEventListener("resize", this.onWindowResize);
  }

  // One at a time, in order (lib/dom.js mountOnce queues them).
  async update(component) {
    if (this.unsupported) return;
    this.component = component;
    const data = (this.data = component.data);
    this.runtime = data.runtime;
    // Not ready while this data is being loaded (tests and benchmarks wait for it).
    hooks.ready = false;
    this.root.dataset.ready = "0";
    this.buildLegend(data);
    this.layout();
    try {
      const loads = data.planes.map((spec) => this.sides[spec.side].load(spec, data.palette));
      this.imagesReady = data.images ? fetchBytes(data.images.url).then((b) => (this.images = new Uint8Array(b))) : null;
      await Promise.all(loads);
    } catch (error) {
      this.status.textContent = `The planes could not be loaded: ${error.message}. Reload the page to try again.`;
      this.status.classList.add("error");
      console.error(error);
      return;
    }
    this.status.textContent = data.hint || "";
    this.hovered = null;
    this.buildStrips(data);
    this.showPinned();
    this.refreshGrids();
    this.adoptSelection(data.selection);
    this.panel.update(data);
    if (this.holesOn && data.holes) this.startHoles();
    // A rerun may have rewritten the URL's query and with it dropped its fragment: the zoom goes back in.
    for (const side of Object.values(this.sides)) writeZoom(side.name, side.plane.view, side.plane.home);
    hooks.probe = probe(this);
    hooks.select = (indices) => this.select(indices);
    hooks.selection = () => Array.from(this.selectedIndices ?? []);
    hooks.ready = true;
    this.root.dataset.ready = "1";
  }

  buildLegend(data) {
    const key = JSON.stringify([data.classes, data.palette]);
    if (this.legendKey === key) return;
    this.legendKey = key;
    this.legend.replaceChildren();
    data.classes.forEach((name, k) => {
      const item = element("button", "legend-item", this.legend);
      item.type = "button";
      item.dataset.class = String(k);
      element("span", "swatch", item).style.background = data.palette[k];
      element("span", "", item, name);
      item.title = "Click: show or hide this class. Double-click: show only this class (again: all). Alt + click: select this class.";
      item.addEventListener("click", (event) => (event.altKey ? this.selectClass(k) : this.toggle(k)));
      item.addEventListener("dblclick", () => this.isolate(k));
    });
    const reset = element("button", "legend-reset", this.legend, "Reset zoom");
    reset.type = "button";
    reset.addEventListener("click", () => Object.values(this.sides).forEach((s) => s.plane.resetView()));
    const holes = element("button", "legend-holes", this.legend, "Holes");
    holes.type = "button";
    holes.dataset.testid = "holes";
    holes.title =
      "On: each plane's background shows the class a digit classifier (the judge) gives the image decoded there, " +
      "faded where it is unsure: pale regions decode to no digit. Redrawn after each zoom and pan.";
    holes.setAttribute("aria-pressed", "false");
    holes.addEventListener("click", () => {
      const on = holes.getAttribute("aria-pressed") !== "true";
      holes.setAttribute("aria-pressed", String(on));
      holes.classList.toggle("on", on);
      this.setHoles(on);
    });
    const box = element("button", "legend-box", this.legend, "Box select");
    box.type = "button";
    box.dataset.testid = "box-select";
    box.title = "On: a drag draws a box that selects the images in it (Shift adds, Alt removes). Off: a drag pans.";
    box.setAttribute("aria-pressed", "false");
    box.addEventListener("click", () => {
      const on = box.getAttribute("aria-pressed") !== "true";
      box.setAttribute("aria-pressed", String(on));
      box.classList.toggle("on", on);
      Object.values(this.sides).forEach((s) => s.plane.setBoxMode(on));
    });
    element("span", "legend-hint", this.legend, "Scroll to zoom, drag to pan, double-click to reset · Shift + drag: lasso a group (adds), Alt + drag: take away, Esc: clear.");
  }

  toggle(k) {
    this.visible[k] = !this.visible[k];
    this.applyVisible();
  }

  isolate(k) {
    const only = this.visible.every((on, j) => on === (j === k));
    this.visible = this.visible.map((_, j) => only || j === k);
    this.applyVisible();
  }

  applyVisible() {
    for (const item of this.legend.querySelectorAll(".legend-item")) {
      item.classList.toggle("off", !this.visible[Number(item.dataset.class)]);
    }
    Object.values(this.sides).forEach((s) => s.plane.setVisible(this.visible));
  }

  // The planes as large as the window allows: both sides and their digits side by side, and the whole
  // plane visible without scrolling from where the component starts.
  layout() {
    if (!this.sides) return;
    const width = this.root.clientWidth || 1000;
    const readout = Math.max(110, Math.min(170, width * 0.12));
    const perSide = (width - 24) / 2 - readout - 16;
    const top = this.root.getBoundingClientRect().top + window.scrollY;
    const room = window.innerHeight - Math.max(0, top - window.scrollY) - 110;
    const size = Math.max(260, Math.min(perSide, Math.max(room, 300), 900));
    for (const side of Object.values(this.sides)) {
      side.plane.resize(size);
      side.root.style.setProperty("--readout", `${readout}px`);
    }
  }

  hover(side, x, y, index, event) {
    const started = event?.timeStamp ?? performance.now();
    if (index >= 0) {
      this.hoverPoint(side, index, started);
      return;
    }
    this.hovered = null;
    side.view.toCode(x, y, side.code);
    const approx = side.spec.exact ? "" : " (approximate)";
    side.show(side.code, `${side.spec.name} decodes (${x.toFixed(2)}, ${y.toFixed(2)})${approx}`, started);
    side.note.textContent = side.spec.exact ? "" : `${side.describeCode(side.code)} · ${side.spec.approximate}`;
    side.originalBox.hidden = true;
    for (const s of Object.values(this.sides)) if (s.plane.markers.length) s.plane.drawHover([]);
  }

  // A data point: its original beside both models' reconstructions (the decoders of its codes), and the
  // same image ringed in the other plane.
  hoverPoint(side, index, started) {
    if (this.hovered === index) return;
    this.hovered = index;
    const label = this.data.classes[side.labels[index]];
    for (const s of Object.values(this.sides)) {
      if (!s.codes || index >= s.spec.count) continue;
      const at = [s.embedding[2 * index], s.embedding[2 * index + 1]];
      s.plane.drawHover([{ point: at, kind: "ring", label: s === side ? "" : `#${index}`, colour: "#000" }]);
      s.show(s.codeOfPoint(index), `${s.spec.name} reconstructs #${index}`, s === side ? started : undefined);
      s.note.textContent = s.describeCode(s.codeOfPoint(index));
      this.showOriginal(s, index, label);
    }
  }

  async showOriginal(side, index, label) {
    side.originalBox.hidden = false;
    side.originalCaption.textContent = `image #${index} (${label})`;
    side.originalIndex = index;
    if (!this.images && this.imagesReady) await this.imagesReady;
    // Drawn unless the pointer moved on to another image while the images were arriving.
    if (this.images && index < this.data.images.count && side.originalIndex === index) {
      side.original.draw(this.images, index * PIXELS, true);
    }
  }

  leave(side) {
    this.hovered = null;
    for (const s of Object.values(this.sides)) s.plane.drawHover([]);
    this.showPinned();
  }

  click(side, x, y, index, event) {
    // A plain click on empty space clears a selection (and pins nothing); anything else pins, the message to
    // the server of what was pinned, and where.
    if (this.mask && index < 0 && !(event?.shiftKey || event?.altKey)) {
      this.clearSelection();
      return;
    }
    this.component.setTriggerValue("click", { side: side.name, x, y, index: index >= 0 ? index : null });
  }

  // --- the selection: one set of images, drawn in both planes ------------------------------------------

  get count() {
    return this.sides.left.spec?.count ?? 0;
  }

  selectPolygon(side, polygon, mode) {
    const started = performance.now();
    this.lastPolygon = polygon;
    const inside = pointsInPolygon(side.plane.index, polygon, side.labels, this.visible);
    this.setMask(combine(this.mask ?? new Uint8Array(this.count), inside, mode), started);
  }

  selectClass(k) {
    const labels = this.sides.left.labels, indices = [];
    for (let i = 0; i < this.count; i++) if (labels[i] === k) indices.push(i);
    this.setMask(combine(new Uint8Array(this.count), indices, "replace"), performance.now());
  }

  // From code (globalThis.latentExplorer.select): the same as a lasso that ends with these images.
  select(indices) {
    const mask = new Uint8Array(this.count);
    for (const i of indices) {
      if (!Number.isInteger(i) || i < 0 || i >= this.count) throw new RangeError(`index ${i} is not one of the ${this.count} images`);
      mask[i] = 1;
    }
    this.setMask(mask, performance.now());
  }

  clearSelection() {
    this.setMask(null, performance.now());
  }

  // A new selection: drawn in both planes on the next frame; the panel's details and the message to Python
  // (one rerun, whose answer keeps the main thread busy for a while) wait until that frame is on screen.
  setMask(mask, started) {
    this.showMask(mask && mask.some((v) => v) ? mask : null);
    const shown = this.mask;
    requestAnimationFrame(() => requestAnimationFrame(() => {
      // Timed as the hover is: to the start of the frame after both planes drew it.
      record(hooks.selectTimings, performance.now() - started);
      if (this.mask !== shown) return; // another gesture came first: it sends its own
      const packed = shown ? packMask(shown) : "";
      this.component.setStateValue("selection", { count: this.count, size: this.selectedIndices?.length ?? 0, mask: packed });
    }));
  }

  showMask(mask) {
    this.mask = mask;
    this.selectedIndices = mask ? maskIndices(mask) : null;
    for (const side of Object.values(this.sides)) side.plane.setSelection(this.selectedIndices);
    this.panel.render();
  }

  // Both planes redrawn as they are, timed like a selection (the benchmark's baseline): ms to the frame.
  redrawBoth() {
    const started = performance.now();
    for (const side of Object.values(this.sides)) side.plane.requestDraw();
    return new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - started))));
  }

  // What Python holds (after a rerun, or when the page is opened again): adopted when it changed there.
  adoptSelection(selection) {
    const packed = selection && selection.count === this.count ? selection.mask : "";
    if (packed === this.seenSelection) return;
    this.seenSelection = packed;
    if (packed === (this.mask ? packMask(this.mask) : "")) return;
    this.showMask(packed ? unpackMask(packed, this.count) : null);
  }

  // With the pointer elsewhere: each side shows what is pinned (a clicked image's reconstruction, or the
  // digit at a clicked spot), or nothing yet.
  showPinned() {
    for (const s of Object.values(this.sides)) {
      if (!s.spec || !s.decoder) continue;
      const pin = this.data?.pins?.[s.name];
      if (pin?.kind === "image" && pin.index < s.spec.count) {
        s.show(s.codeOfPoint(pin.index), `${s.spec.name} reconstructs #${pin.index} (pinned)`);
        s.note.textContent = s.describeCode(s.codeOfPoint(pin.index));
        this.showOriginal(s, pin.index, this.data.classes[s.labels[pin.index]]);
      } else if (pin?.kind === "spot") {
        const [x, y] = pin.point;
        s.view.toCode(x, y, s.code);
        s.show(s.code, `${s.spec.name} decodes (${x.toFixed(2)}, ${y.toFixed(2)}) (pinned)`);
        s.note.textContent = s.spec.exact ? "" : `${s.describeCode(s.code)} · ${s.spec.approximate}`;
        s.originalBox.hidden = true;
      } else {
        // Nothing pinned: no digit either, rather than the last one under a caption that no longer fits it.
        s.reset();
        s.caption.textContent = "Hover anywhere in the plane to decode there.";
      }
    }
  }

  // --- interpolation: decoded in the page, scrubbed with a slider -----------------------------------

  buildStrips(data) {
    const key = JSON.stringify(data.planes.map((p) => p.interpolation?.codes ?? null));
    if (this.stripKey === key) return;
    this.stripKey = key;
    this.strips.replaceChildren();
    // A new strip starts at t = 0: the old one's dot and digits go with it.
    for (const side of Object.values(this.sides)) if (side.spec) side.reset();
    const planes = data.planes.filter((p) => p.interpolation);
    if (!planes.length) return;
    const header = element("div", "strip-header", this.strips);
    element("span", "strip-title", header, `Interpolation: ${data.interpolation?.from ?? "start"} → ${data.interpolation?.to ?? "end"}`);
    // One slider step per image of the strip (both strips have as many), so an arrow key moves to the next
    // image and the dot lands on the path's own points.
    const steps = planes[0].interpolation.codes.length;
    const slider = element("input", "scrub", header);
    Object.assign(slider, { type: "range", min: "0", max: String(steps - 1), step: "1", value: "0" });
    slider.dataset.testid = "scrub";
    slider.setAttribute("aria-label", "position along the interpolation path (arrow keys: one image)");
    const value = element("span", "scrub-value", header);
    value.dataset.testid = "scrub-value";
    const cursors = [];
    for (const spec of planes) {
      const side = this.sides[spec.side];
      const row = element("div", "strip-row", this.strips);
      element("div", "strip-name", row, spec.name);
      const frame = element("div", "strip-frame", row);
      const canvas = element("canvas", "strip", frame);
      const cursor = element("div", "strip-cursor", frame);
      cursor.style.width = `${100 / steps}%`;
      cursors.push(cursor);
      canvas.dataset.testid = `strip-${spec.side}`;
      canvas.width = 28 * steps;
      canvas.height = 28;
      const flat = Float32Array.from(spec.interpolation.codes.flat());
      side.graph.run(flat, steps, [spec.dim]).catch((error) => this.failed(side, error)).then((out) => {
        if (!out) return;
        const pixels = out.image ?? Object.values(out)[0];
        const ctx = canvas.getContext("2d");
        const image = ctx.createImageData(28, 28);
        for (let i = 0; i < steps; i++) {
          greyToRgba(pixels, i * PIXELS, image.data);
          ctx.putImageData(image, 28 * i, 0);
        }
      });
      canvas.addEventListener("click", (event) => {
        const box = canvas.getBoundingClientRect();
        const i = Math.min(steps - 1, Math.floor(((event.clientX - box.left) / box.width) * steps));
        slider.value = String(i);
        slider.dispatchEvent(new Event("input"));
      });
    }
    const label = () => {
      const i = Number(slider.value), t = i / (steps - 1);
      value.textContent = `t = ${t.toFixed(2)} (image ${i + 1} of ${steps})`;
      slider.setAttribute("aria-valuetext", value.textContent);
      for (const cursor of cursors) cursor.style.left = `${(100 * i) / steps}%`;
      return t;
    };
    label();
    slider.addEventListener("input", () => {
      const t = label();
      for (const spec of planes) this.scrub(this.sides[spec.side], spec, t);
    });
  }

  scrub(side, spec, t) {
    const codes = spec.interpolation.codes, path = spec.decor?.path;
    const a = codes[0], b = codes[codes.length - 1];
    for (let d = 0; d < spec.dim; d++) side.code[d] = (1 - t) * a[d] + t * b[d];
    side.show(side.code, `${spec.name} at t = ${t.toFixed(2)} on the path`);
    side.originalBox.hidden = true;
    if (path && path.length > 1) {
      // The straight line in the latent space is drawn through the view as a polyline; place the marker on it.
      const u = t * (path.length - 1), i = Math.min(path.length - 2, Math.floor(u)), f = u - i;
      const point = [path[i][0] + f * (path[i + 1][0] - path[i][0]), path[i][1] + f * (path[i + 1][1] - path[i][1])];
      side.plane.drawHover([{ point, kind: "dot", colour: "#d62728" }]);
    }
  }

  // --- manifold grid: the decoders over the visible region, redone as the view moves ------------------

  // --- holes: the judge's verdict on what each place of the plane decodes to ------------------------------

  async setHoles(on) {
    this.holesOn = on;
    if (!on) {
      for (const side of Object.values(this.sides)) {
        side.plane.setHolesMap(null);
        side.holesNote.textContent = "";
        side.holesDrawn = 0;
      }
      return;
    }
    // The judge's graph and each plane's share of its data region come from the server once asked (one rerun;
    // update() carries on from there), then stay.
    if (!this.data.holes) {
      for (const side of Object.values(this.sides)) side.holesNote.textContent = "Holes: loading the judge…";
      this.component.setStateValue("holes", true);
      return;
    }
    await this.startHoles();
  }

  async startHoles() {
    if (!this.data.judge) {
      for (const side of Object.values(this.sides)) side.holesNote.textContent = "No judge for this dataset: the holes layer needs one.";
      return;
    }
    if (this.judgeUrl !== this.data.judge) {
      this.judge = await loadGraph(this.runtime, this.data.judge);
      this.judgeUrl = this.data.judge;
    }
    for (const side of Object.values(this.sides)) {
      this.describeHoles(side);
      this.refreshHoles(side);
    }
  }

  // One map at a time per side; a view change during one asks for one more when it ends.
  async refreshHoles(side) {
    if (!this.holesOn || !this.judge || !side.graph) return;
    if (side.holesBusy) {
      side.holesAgain = true;
      return;
    }
    side.holesBusy = true;
    try {
      do {
        side.holesAgain = false;
        if (side.graph.dead) return;
        const started = performance.now();
        const n = HOLES_CELLS, dim = side.spec.dim;
        const extent = side.plane.extent;
        const [x0, x1, y0, y1] = extent;
        const codes = new Float32Array(n * n * dim), code = new Float32Array(dim);
        for (let row = 0; row < n; row++) {
          const y = y1 - ((row + 0.5) / n) * (y1 - y0); // the top row is the top of the plane
          for (let col = 0; col < n; col++) {
            side.view.toCode(x0 + ((col + 0.5) / n) * (x1 - x0), y, code);
            codes.set(code, (row * n + col) * dim);
          }
        }
        const decoded = await side.graph.run(codes, n * n, [dim]);
        const pixels = decoded.image ?? Object.values(decoded)[0];
        // In chunks, so the pointer's decodes get the main thread between them rather than after all 576.
        const probabilities = new Float32Array(n * n * 10);
        for (let start = 0; start < n * n; start += HOLES_CHUNK) {
          const count = Math.min(HOLES_CHUNK, n * n - start);
          const judged = await this.judge.run(pixels.slice(start * 784, (start + count) * 784), count, [1, 28, 28]);
          probabilities.set(judged.probabilities ?? Object.values(judged)[0], start * 10);
          if (!this.holesOn) return;
        }
        side.plane.setHolesMap(this.holesMap(probabilities, n), extent);
        side.holesExtent = extent;
        side.holesDrawn = (side.holesDrawn ?? 0) + 1;
        record(hooks.holesTimings, performance.now() - started);
      } while (side.holesAgain);
    } catch (error) {
      this.failed(side, error);
      return;
    } finally {
      side.holesBusy = false;
    }
    this.describeHoles(side);
  }

  // Probabilities [n * n * 10] -> an n x n canvas: each cell the class colour, as opaque as the judge is sure
  // beyond one half (below that, nothing: a hole).
  holesMap(probabilities, n) {
    const map = document.createElement("canvas");
    map.width = map.height = n;
    const ctx = map.getContext("2d");
    const image = ctx.createImageData(n, n);
    const rgb = this.data.palette.map((hex) => {
      const v = parseInt(hex.slice(1), 16);
      return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
    });
    const classes = new Int32Array(10);
    for (let i = 0; i < n * n; i++) {
      let best = 0;
      for (let k = 1; k < 10; k++) if (probabilities[10 * i + k] > probabilities[10 * i + best]) best = k;
      const p = probabilities[10 * i + best];
      if (p >= 0.9) classes[best]++;
      image.data.set([...rgb[best], Math.round(255 * 0.55 * Math.min(1, Math.max(0, (p - 0.5) / 0.5)))], 4 * i);
    }
    ctx.putImageData(image, 0, 0);
    this.lastHolesClasses = Array.from(classes);
    return map;
  }

  describeHoles(side) {
    const share = this.data.holes?.[side.name];
    side.holesClasses = this.lastHolesClasses;
    side.holesNote.textContent = share
      ? `Holes: the judge (a digit classifier, used only to measure) calls ${(100 * share.share).toFixed(0)} % of ` +
        `this plane's data region a confident digit (≥ 0.9 on a ${share.grid} × ${share.grid} grid)` +
        `${share.approximate ? ", through the view's inverse: approximate" : ""}. Pale: decodes to no digit.`
      : "Holes: pale regions decode to no digit the judge is sure of (measuring the data region on the server…).";
  }

  viewChanged(side) {
    if (this.holesOn) {
      clearTimeout(side.holesTimer);
      side.holesTimer = setTimeout(() => this.refreshHoles(side), 150);
    }
    if (side.spec) {
      side.describeDecor();
      writeZoom(side.name, side.plane.view, side.plane.home);
    }
    if (this.data?.grid) this.refreshGrid(side);
  }

  refreshGrids() {
    const n = this.data.grid?.n;
    if (!n) {
      this.grids.replaceChildren();
      this.gridCanvases = null;
      return;
    }
    if (!this.gridCanvases || this.gridN !== n) {
      this.grids.replaceChildren();
      this.gridN = n;
      this.gridCanvases = {};
      for (const spec of this.data.planes) {
        const box = element("div", "grid-box", this.grids);
        element("div", "grid-title", box, `${spec.name}: decoded over the visible region (zoom and pan the plane)`);
        const canvas = element("canvas", "grid", box);
        canvas.dataset.testid = `grid-${spec.side}`;
        canvas.width = canvas.height = 28 * n;
        this.gridCanvases[spec.side] = canvas;
      }
    }
    for (const side of Object.values(this.sides)) this.refreshGrid(side);
  }

  // One grid decode at a time per side; a view change during one asks for one more when it ends.
  async refreshGrid(side) {
    const canvas = this.gridCanvases?.[side.name];
    if (!canvas || !side.decoder) return;
    if (side.gridBusy) {
      side.gridAgain = true;
      return;
    }
    side.gridBusy = true;
    try {
      do {
        side.gridAgain = false;
        const n = this.gridN, dim = side.spec.dim;
        const [x0, x1, y0, y1] = side.plane.extent;
        const codes = new Float32Array(n * n * dim);
        const code = new Float32Array(dim);
        for (let row = 0; row < n; row++) {
          // The top row of tiles is the top of the plane: highest y first.
          const y = y1 - ((row + 0.5) / n) * (y1 - y0);
          for (let col = 0; col < n; col++) {
            side.view.toCode(x0 + ((col + 0.5) / n) * (x1 - x0), y, code);
            codes.set(code, (row * n + col) * dim);
          }
        }
        const out = await side.graph.run(codes, n * n, [dim]);
        const pixels = out.image ?? Object.values(out)[0];
        const ctx = canvas.getContext("2d");
        const image = ctx.createImageData(28, 28);
        for (let i = 0; i < n * n; i++) {
          greyToRgba(pixels, i * PIXELS, image.data);
          ctx.putImageData(image, 28 * (i % n), 28 * Math.floor(i / n));
        }
        canvas.dataset.drawn = String(Number(canvas.dataset.drawn || 0) + 1);
      } while (side.gridAgain);
    } catch (error) {
      this.failed(side, error);
    } finally {
      side.gridBusy = false;
    }
  }

  // A decode of many codes at once (strip, grid, holes, the selection's centroid or sheet) failed: a fenced
  // graph stopped by its watchdog, say. Said above the planes; the rest of the page carries on.
  failed(side, error) {
    this.status.textContent = `${side.spec?.name ?? side.name}: ${error?.message ?? error}`;
  }

  dispose() {
    document.removeEventListener("keydown", this.onKey);
    this.resizeObserver?.disconnect();
    window.removeEventListener("resize", this.onWindowResize);
    for (const side of Object.values(this.sides || {})) side.plane.dispose();
    this.root.remove();
  }
}
