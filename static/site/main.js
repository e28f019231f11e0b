// The static site's entry (vae/site.py writes it beside manifest.json): a stand-in for Streamlit's component
// object, so the dashboard's own explorer (components/latent_planes/explorer.js) runs with no server. What
// the explorer would send Python is answered here, then it is rendered again as after a rerun:
// - a click pins the point (or the spot) on its plane and rings the clicked image in both;
// - the last two clicked images are the interpolation's ends: a straight line between their codes, decoded
//   in the page by the explorer's strips, as the dashboard's Interpolation is.

import { fetchBytes, unpackPoints } from "../lib/assets.js";
import { render } from "../components/latent_planes/explorer.js";

const STEPS = 10; // images per strip
const data = await (await fetch("manifest.json")).json();
const parent = document.getElementById("planes");
const state = {}; // what the explorer set as state (support, selection, holes): kept, nothing reads it back
const clicked = []; // image indices, newest last

function rerender() {
  render({ data, parentElement: parent, setStateValue, setTriggerValue });
}

function setStateValue(name, value) {
  state[name] = value;
}

// codes Float32Array [N * D] -> [STEPS][D]: a straight line from row a to row b.
function line(flat, dim, a, b) {
  return Array.from({ length: STEPS }, (_, i) => {
    const t = i / (STEPS - 1);
    return Array.from({ length: dim }, (_, k) => (1 - t) * flat[a * dim + k] + t * flat[b * dim + k]);
  });
}

async function interpolate(a, b) {
  data.planes = await Promise.all(data.planes.map(async (p) => {
    const { embedding, codes } = unpackPoints(await fetchBytes(p.points), p.count, p.dim);
    // Identity and PCA views are linear, so the line's place in the plane is the line between its ends'.
    const path = p.view.kind === "neighbours" ? null : line(embedding, 2, a, b);
    return { ...p, interpolation: { codes: line(codes, p.dim, a, b) }, decor: { ...p.decor, path } };
  }));
  data.interpolation = { from: `#${a}`, to: `#${b}`, images: [{ end: "From", index: a }, { end: "To", index: b }] };
}

async function setTriggerValue(name, value) {
  if (name !== "click" || !value) return;
  const { side, x, y, index } = value;
  const pin = index === null ? { kind: "spot", point: [x, y] } : { kind: "image", index, point: [x, y] };
  data.pins = { ...data.pins, [side]: pin };
  data.planes = data.planes.map((p) => (p.side === side ? { ...p, decor: { ...p.decor, pin: index === null ? [x, y] : null } } : p));
  if (index !== null) {
    data.selected = index;
    clicked.push(index);
    if (clicked.length >= 2) await interpolate(clicked.at(-2), clicked.at(-1));
  }
  rerender();
}

// What needs Python (training, new images, the server's measures) is absent here: the models' shipped
// metrics stand in for it.
function metricsTable() {
  const table = document.createElement("table");
  table.dataset.testid = "metrics";
  const names = [...new Set(data.planes.flatMap((p) => Object.keys(p.metrics || {})))];
  const head = table.insertRow();
  for (const text of ["metric", ...data.planes.map((p) => p.name)]) head.appendChild(document.createElement("th")).textContent = text;
  for (const name of names) {
    const row = table.insertRow();
    row.insertCell().textContent = name;
    for (const p of data.planes) {
      const v = p.metrics?.[name];
      // Counts (epochs) as they are; measures to four significant digits.
      const shown = typeof v !== "number" ? (v ?? "") : Number.isInteger(v) ? String(v) : v.toPrecision(4);
      row.insertCell().textContent = shown;
    }
  }
  document.getElementById("metrics").appendChild(table);
}

window.__site = { data, state };
metricsTable();
rerender();
