// What a selection shows, in the page: above the planes its size and per-class counts (one bar per class in
// the palette); below them, per model, how spread the group is in that plane, how mixed its neighbourhood
// is in all D dimensions (computed by the server, vae/selection.py), and its centroid decoded by that
// model; a grid of the selected originals (hover one: both reconstructions, ringed in both planes); the
// pinned image's nearest neighbours in each model; and the selection as CSV and as a PNG sheet, made here
// and downloaded as a Blob (no round trip).

import { element } from "../../lib/dom.js";
import { greyToRgba, PIXELS } from "../../lib/image.js";
import { centroid, classCounts, evenSample, nearestByCode, packMask, selectionCsv, spread } from "../../lib/selection.js";

const GRID_LIMIT = 100; // originals shown and put on the sheet, sampled evenly
const GRID_COLUMNS = 20;
const NEIGHBOURS = 8;

// The inverse of lib/selection.js packMask: base64 of a bit per point -> Uint8Array [count].
export function unpackMask(text, count) {
  const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  const mask = new Uint8Array(count);
  for (let i = 0; i < count; i++) mask[i] = (bytes[i >> 3] >> (7 - (i & 7))) & 1;
  return mask;
}

function drawDigits(canvas, pixels, count, columns, bytes = false, offsets = null) {
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(28, 28);
  for (let j = 0; j < count; j++) {
    greyToRgba(pixels, (offsets ? offsets[j] : j) * PIXELS, image.data, bytes);
    ctx.putImageData(image, 28 * (j % columns), 28 * Math.floor(j / columns));
  }
}

function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function percent(value) {
  return `${(100 * value).toFixed(value < 0.1 ? 1 : 0)} %`;
}

export class SelectionPanel {
  // before.bar: the element the counts go above (the planes); before.body: the element the details go above.
  constructor(explorer, before) {
    this.explorer = explorer;
    const root = explorer.root;
    this.bar = element("div", "selection-bar");
    root.insertBefore(this.bar, before.bar);
    this.summary = element("span", "selection-summary", this.bar);
    this.summary.dataset.testid = "selection-summary";
    this.bars = element("span", "class-bars", this.bar);
    this.bars.dataset.testid = "class-bars";
    const actions = element("span", "selection-actions", this.bar);
    this.buttons = {};
    for (const [name, text, title, fn] of [
      ["csv", "CSV", "Download the selection: index, label, both models' codes and both planes' coordinates.", () => this.exportCsv()],
      ["sheet", "PNG sheet", "Download a sheet of up to 100 selected originals, each beside both models' reconstructions.", () => this.exportSheet()],
      ["clear", "Clear", "Clear the selection (Esc, or a click on empty space).", () => explorer.clearSelection()],
    ]) {
      const b = element("button", `selection-${name}`, actions, text);
      b.type = "button";
      b.title = title;
      b.dataset.testid = `selection-${name}`;
      b.addEventListener("click", fn);
      this.buttons[name] = b;
    }
    this.body = element("div", "selection-panel");
    root.insertBefore(this.body, before.body);
    this.body.dataset.testid = "selection-panel";
    this.stats = null;
    this.render();
  }

  // After a rerun: the server's neighbourhood figures for the selection it holds, and the pinned image.
  update(data) {
    this.data = data;
    this.stats = data.selection?.stats ?? null;
    this.statsFor = data.selection?.mask ?? null;
    this.render();
    this.renderNeighbours();
  }

  render() {
    const e = this.explorer;
    const indices = e.selectedIndices;
    const count = e.count;
    const has = Boolean(indices && indices.length);
    for (const b of [this.buttons.csv, this.buttons.sheet, this.buttons.clear]) b.disabled = !has;
    this.bars.replaceChildren();
    if (!has) {
      this.summary.textContent = "No selection: Shift + drag in either plane to lasso a group (or Box select, or Alt + click a class).";
      this.body.replaceChildren();
      this.body.hidden = true;
      return;
    }
    const labels = e.sides.left.labels;
    const counts = classCounts(indices, labels, e.data.classes.length);
    const largest = Math.max(...counts);
    this.summary.textContent = `Selected ${indices.length.toLocaleString("en")} of ${count.toLocaleString("en")} (${percent(indices.length / count)})`;
    counts.forEach((n, k) => {
      const item = element("span", "class-bar", this.bars);
      item.title = `${e.data.classes[k]}: ${n.toLocaleString("en")}`;
      item.dataset.count = String(n);
      const fill = element("span", "class-bar-fill", item);
      fill.style.height = `${largest ? (100 * n) / largest : 0}%`;
      fill.style.background = e.data.palette[k];
      element("span", "class-bar-label", item, e.data.classes[k]);
    });
    this.body.hidden = false;
    // The details (spread, centroids, grid) after the frame that shows the highlight, and once per frame.
    cancelAnimationFrame(this.detailsFrame);
    this.detailsFrame = requestAnimationFrame(() => setTimeout(() => {
      if (this.explorer.selectedIndices === indices) this.#renderDetails(indices);
    }, 0));
  }

  #renderDetails(indices) {
    const e = this.explorer;
    this.body.replaceChildren();
    element("div", "selection-heading", this.body, "Where the selection went in each model");
    const columns = element("div", "selection-models", this.body);
    const current = packMask(e.mask);
    for (const side of Object.values(e.sides)) {
      if (!side.spec) continue;
      const box = element("div", "selection-model", columns);
      box.dataset.testid = `selection-${side.name}`;
      const digit = element("canvas", "selection-centroid", box);
      digit.width = digit.height = 28;
      digit.title = `The centroid of the selected codes in ${side.spec.name}'s ${side.spec.dim}-D latent space, decoded`;
      const text = element("div", "selection-figures", box);
      element("div", "selection-model-name", text, side.spec.name);
      const s = spread(side.embedding, side.spec.count, indices);
      const spreadLine = element("div", "", text, `spread ${s.toFixed(2)} of the plane's`);
      spreadLine.dataset.testid = `spread-${side.name}`;
      spreadLine.title = "Mean distance of the selected points to their own centroid in this plane, over the same for all points (1: as spread as the whole plane).";
      const mix = this.stats && this.statsFor === current ? this.stats[side.name] : null;
      const mixLine = element(
        "div",
        "",
        text,
        mix
          ? `of their 5 nearest codes (${side.spec.dim}-D): ${percent(mix.share_selected)} selected too, ${percent(mix.share_other_class)} another class` +
            (mix.measured_on < indices.length ? ` (from ${mix.measured_on.toLocaleString("en")} of them, sampled evenly)` : "")
          : "neighbourhood: computing on the server…",
      );
      mixLine.dataset.testid = `mix-${side.name}`;
      mixLine.title = "For each selected image, its 5 nearest images in this model's latent space (all dimensions): the share that are selected too, and the share of another class.";
      element("div", "selection-caption", text, "centroid, decoded");
      const code = centroid(side.codes, side.spec.dim, indices);
      side.graph
        .run(code, 1, [side.spec.dim])
        .then((out) => drawDigits(digit, out.image ?? Object.values(out)[0], 1, 1))
        .catch((error) => e.failed(side, error));
    }
    this.#renderGrid(indices);
  }

  #renderGrid(indices) {
    const e = this.explorer;
    const sample = evenSample(indices, GRID_LIMIT);
    const labels = e.sides.left.labels;
    const box = element("div", "selection-grid-box", this.body);
    element(
      "div",
      "selection-caption",
      box,
      sample.length < indices.length
        ? `${sample.length} of the ${indices.length.toLocaleString("en")} selected originals, sampled evenly; hover one for both reconstructions`
        : "The selected originals; hover one for both reconstructions",
    );
    const canvas = element("canvas", "selection-grid", box);
    canvas.dataset.testid = "selection-grid";
    const columns = Math.min(GRID_COLUMNS, sample.length);
    canvas.width = 28 * columns;
    canvas.height = 28 * Math.ceil(sample.length / columns);
    canvas.style.width = `${42 * columns}px`;
    const draw = () => e.images && drawDigits(canvas, e.images, sample.length, columns, true, sample);
    if (e.images) draw();
    else e.imagesReady?.then(draw);
    canvas.addEventListener("pointermove", (event) => {
      const r = canvas.getBoundingClientRect();
      const col = Math.floor(((event.clientX - r.left) / r.width) * columns);
      const row = Math.floor(((event.clientY - r.top) / r.height) * (canvas.height / 28));
      const j = row * columns + col;
      if (j < 0 || j >= sample.length) return;
      canvas.title = `#${sample[j]} (${e.data.classes[labels[sample[j]]]})`;
      e.hoverPoint(e.sides.left, sample[j]);
    });
    canvas.addEventListener("pointerleave", () => e.leave());
    this.sample = sample;
  }

  // The pinned image's nearest images in each model's latent space (all D dimensions), side by side.
  renderNeighbours() {
    const e = this.explorer;
    this.neighbours?.remove();
    const index = this.data?.selected;
    if (index === null || index === undefined || !e.images) return;
    this.neighbours = element("div", "neighbours");
    e.root.insertBefore(this.neighbours, this.body.nextSibling);
    this.neighbours.dataset.testid = "neighbours";
    element("div", "selection-heading", this.neighbours, `Nearest neighbours of the pinned image #${index}`);
    const labels = e.sides.left.labels;
    for (const side of Object.values(e.sides)) {
      if (!side.spec || index >= side.spec.count) continue;
      const row = element("div", "neighbour-row", this.neighbours);
      row.dataset.testid = `neighbours-${side.name}`;
      element("div", "neighbour-model", row, `${side.spec.name} (${side.spec.dim}-D)`);
      const { indices, distances } = nearestByCode(side.codes, side.spec.dim, side.spec.count, index, NEIGHBOURS);
      row.dataset.indices = indices.join(",");
      row.dataset.pinned = String(index);
      indices.forEach((i, j) => {
        const cell = element("div", "neighbour", row);
        const canvas = element("canvas", "neighbour-image", cell);
        canvas.width = canvas.height = 28;
        drawDigits(canvas, e.images, 1, 1, true, [i]);
        element("div", "neighbour-caption", cell, `#${i} · ${e.data.classes[labels[i]]} · ${distances[j].toFixed(2)}`);
        cell.addEventListener("pointerenter", () => e.hoverPoint(side, i));
        cell.addEventListener("pointerleave", () => e.leave());
      });
    }
  }

  #names() {
    return Object.values(this.explorer.sides).map((s) => s.spec.name);
  }

  exportCsv() {
    const e = this.explorer;
    if (!e.selectedIndices) return;
    const sides = Object.values(e.sides).map((s) => ({ codes: s.codes, dim: s.spec.dim, embedding: s.embedding }));
    const text = selectionCsv(e.selectedIndices, e.sides.left.labels, sides);
    download(new Blob([text], { type: "text/csv" }), `selection-${this.#names().join("-vs-")}.csv`);
  }

  // Up to 100 originals sampled evenly, each as three tiles: original, left reconstruction, right one.
  async exportSheet() {
    try {
      await this.#sheet();
    } catch (error) {
      this.explorer.status.textContent = `The PNG sheet could not be made: ${error?.message ?? error}`;
    }
  }

  async #sheet() {
    const e = this.explorer;
    if (!e.selectedIndices) return;
    const sample = evenSample(e.selectedIndices, GRID_LIMIT);
    const sides = Object.values(e.sides);
    const recon = await Promise.all(
      sides.map((s) => {
        const codes = new Float32Array(sample.length * s.spec.dim);
        sample.forEach((i, j) => codes.set(s.codeOfPoint(i), j * s.spec.dim));
        return s.graph.run(codes, sample.length, [s.spec.dim]).then((out) => out.image ?? Object.values(out)[0]);
      }),
    );
    const per = 10, cell = 3 * 28 + 6, header = 16, labelRow = 12;
    const rows = Math.ceil(sample.length / per);
    const canvas = document.createElement("canvas");
    canvas.width = per * cell;
    canvas.height = header + rows * (28 + labelRow);
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = "#000";
    ctx.font = "11px sans-serif";
    ctx.fillText(`original · ${this.#names().join(" · ")}`, 2, 12);
    const image = ctx.createImageData(28, 28);
    sample.forEach((i, j) => {
      const x = (j % per) * cell, y = header + Math.floor(j / per) * (28 + labelRow);
      ctx.fillStyle = "#000";
      ctx.fillText(`#${i} ${e.data.classes[e.sides.left.labels[i]]}`, x + 1, y + 10);
      greyToRgba(e.images, i * PIXELS, image.data, true);
      ctx.putImageData(image, x, y + labelRow);
      recon.forEach((pixels, s) => {
        greyToRgba(pixels, j * PIXELS, image.data);
        ctx.putImageData(image, x + 28 * (s + 1), y + labelRow);
      });
    });
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    download(blob, `selection-${this.#names().join("-vs-")}.png`);
  }
}
