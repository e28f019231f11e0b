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

window.__site = { data, planes };
metricsTable();
planes.render();
