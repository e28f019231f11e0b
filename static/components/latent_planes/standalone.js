// The explorer with no Streamlit behind it: the static site (static/site/main.js) and the notebook widget
// (static/widget/widget.js) hand it the manifest vae/site.py's payload wrote and an element to draw in. It
// stands in for Streamlit's component object: what the explorer would send Python is answered here, then it
// is rendered again as after a rerun.
// - A click pins what it hit: an image (its reconstruction shown in both planes, the image ringed in both)
//   or a spot (decoded in its own plane). One pin at a time, as `widget.pinned` holds one.
// - The last two pinned images are the interpolation's ends: a straight line between their codes, decoded
//   in the page by the explorer's strips, as the dashboard's Interpolation is.
// - A selection (lasso, box, Alt + click on a class) is handed on as ascending indices.
// - The manifold grid is shown or hidden (showGrid), decoded in the page as the view moves.

import { fetchBytes, unpackPoints } from "../../lib/assets.js";
import { maskFrom, maskIndices, packMask } from "../../lib/selection.js";
import { render } from "./explorer.js";
import { unpackMask } from "./selection_panel.js";

const STEPS = 10; // images per strip

// codes Float32Array [N * D] -> [STEPS][D]: a straight line from row a to row b.
function line(flat, dim, a, b) {
  return Array.from({ length: STEPS }, (_, i) => {
    const t = i / (STEPS - 1);
    return Array.from({ length: dim }, (_, k) => (1 - t) * flat[a * dim + k] + t * flat[b * dim + k]);
  });
}

const samePin = (a, b) =>
  (a ?? null) === (b ?? null) ||
  (a && b && a.side === b.side && (a.index ?? null) === (b.index ?? null) && a.point[0] === b.point[0] && a.point[1] === b.point[1]);

export class StandalonePlanes {
  // data: the manifest (its URLs as the page can fetch them); parent: the element to draw in;
  // onPin({side, point: [x, y], index | null}) after a click pins; onSelection(indices) after a selection.
  constructor(data, parent, { onPin = () => {}, onSelection = () => {} } = {}) {
    this.data = data;
    this.parent = parent;
    this.onPin = onPin;
    this.onSelection = onSelection;
    this.state = {}; // what the explorer set as state (support, holes): kept, nothing reads it back
    this.pinned = null;
    this.ends = []; // pinned image indices, newest last
  }

  render() {
    render({
      data: this.data,
      parentElement: this.parent,
      setStateValue: (name, value) => this.setStateValue(name, value),
      setTriggerValue: (name, value) => this.setTriggerValue(name, value),
    });
  }

  setStateValue(name, value) {
    this.state[name] = value;
    if (name !== "selection") return;
    const count = this.data.planes[0].count;
    this.data.selection = value?.mask ? { count, mask: value.mask } : null;
    this.onSelection(value?.mask ? Array.from(maskIndices(unpackMask(value.mask, count))) : []);
  }

  async setTriggerValue(name, value) {
    if (name !== "click" || !value) return;
    const pin = { side: value.side, point: [value.x, value.y], index: value.index ?? null };
    await this.pin(pin);
    this.onPin(pin);
  }

  // Pin {side, point: [x, y], index: an image's index or null for a spot}, or nothing (null); the same pin
  // again changes nothing (the widget echoes back what a click set).
  async pin(pin) {
    if (samePin(pin, this.pinned)) return;
    this.pinned = pin;
    const image = pin && pin.index !== null;
    const pins = Object.fromEntries(this.data.planes.map((p) => [p.side, null]));
    if (image) for (const side in pins) pins[side] = { kind: "image", index: pin.index, point: pin.point };
    else if (pin) pins[pin.side] = { kind: "spot", point: pin.point };
    this.data.pins = pins;
    this.data.planes = this.data.planes.map((p) => ({ ...p, decor: { ...p.decor, pin: pin && !image && p.side === pin.side ? pin.point : null } }));
    this.data.selected = image ? pin.index : null;
    if (image) {
      this.ends.push(pin.index);
      if (this.ends.length >= 2) await this.interpolate(this.ends.at(-2), this.ends.at(-1));
    }
    this.render();
  }

  // The manifold grid: each decoder over its plane's visible region, n x n digits (0: none).
  showGrid(n) {
    this.data.grid = n ? { n } : null;
    this.render();
  }

  // The selection as ascending indices, set as a lasso would set it ([] clears it).
  select(indices) {
    const count = this.data.planes[0].count;
    this.data.selection = indices.length ? { count, mask: packMask(maskFrom(indices, count)) } : null;
    this.render();
  }

  async interpolate(a, b) {
    this.data.planes = await Promise.all(this.data.planes.map(async (p) => {
      const { embedding, codes } = unpackPoints(await fetchBytes(p.points), p.count, p.dim);
      // Identity and PCA views are linear, so the line's place in the plane is the line between its ends'.
      const path = p.view.kind === "neighbours" ? null : line(embedding, 2, a, b);
      return { ...p, interpolation: { codes: line(codes, p.dim, a, b) }, decor: { ...p.decor, path } };
    }));
    this.data.interpolation = { from: `#${a}`, to: `#${b}`, images: [{ end: "From", index: a }, { end: "To", index: b }] };
  }
}
