// The static site's entry (vae/site.py writes it beside manifest.json): the dashboard's own explorer with
// nothing but files behind it (components/latent_planes/standalone.js stands in for Streamlit), and a table
// of the models' shipped metrics in place of what needs Python (training, new images, the server's measures).

import { StandalonePlanes } from "../components/latent_planes/standalone.js";

const data = await (await fetch("manifest.json")).json();
const planes = new StandalonePlanes(data, document.getElementById("planes"));

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

// The dashboard's Manifold grid toggle, with its default size (app/explorer.py's slider: 15 of 5-30).
const GRID_N = 15;

function gridToggle() {
  const label = document.createElement("label");
  label.className = "grid-toggle";
  const box = label.appendChild(document.createElement("input"));
  box.type = "checkbox";
  box.dataset.testid = "grid-toggle";
  label.append(` Manifold grid (${GRID_N} x ${GRID_N} digits decoded over each plane's visible region)`);
  box.addEventListener("change", () => planes.showGrid(box.checked ? GRID_N : 0));
  document.getElementById("planes").before(label);
}

window.__site = { data, planes };
gridToggle();
metricsTable();
planes.render();
