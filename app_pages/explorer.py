"""Latent explorer: both models' latent planes side by side. Hover anywhere to decode; interpolate; grid.

The planes run in the browser (each model's decoder in the page: hover decodes at once, a click pins a
point); browsers without WebGL or WebAssembly get the server's planes (Plotly, a click per decode).
"""

from __future__ import annotations

import streamlit as st

from app import cache, explorer, links, server_planes, state, web_planes


def render() -> None:
    state.page_frame()
    st.title("Latent explorer")
    for ignored in links.restore():  # before the page's widgets, so they open on the link's choices
        st.warning(f"The link's {ignored}.", icon=":material/link_off:")
    pair = state.pair_or_explain()
    if pair is None:
        return
    explorer.init_state()
    in_browser = web_planes.enabled()
    if not in_browser:
        server_planes.take_clicks(explorer.SIDES)  # before the end points and overlays that depend on them
    options = explorer.controls(max(pair.left.config.latent_dim, pair.right.config.latent_dim) > 2)
    start, end, steps = explorer.interpolation_choice()
    stored = dict(zip(explorer.SIDES, (pair.left, pair.right)))
    planes = {side: explorer.load_plane(side, stored[side], options) for side in explorer.SIDES}
    paths = explorer.interpolations(planes, options.subset, start, end, steps)
    images, _ = cache.dataset(pair.left.dataset_name, options.subset, str(cache.data_dir()))
    if in_browser:
        web_planes.explorer(planes, options, paths, images)
    else:
        server_planes.explorer(planes, options, paths, images)
    links.remember()


with state.guard():
    render()
