"""Plotly figures for the dashboard, built by plain functions so tests can call them; no Streamlit here.

- ``palette``: the colours every figure shares (one per class, per model, per loss term);
- ``scatter``: the latent plane as a Plotly scatter (the explorer's server path) with its overlays, and the
  reading of the selection that Plotly's click reports through ``st.plotly_chart``;
- ``charts``: loss curves, neighbour-class heatmaps, per-class and per-metric bars;
- ``studies``: the Experiments page's small multiples of maps and metric curves.

Images as arrays and PNG files (no Plotly) are :mod:`vae.images`.
"""
