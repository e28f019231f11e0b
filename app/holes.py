"""The holes layer's server side: the judge as a graph for the page, and each plane's confident share.

The page draws the layer itself (its decoder over a grid of the visible region, then the judge, both in the
browser); what it needs from here is the judge's graph (exported once per weights, published like the
decoders) and, once the layer is switched on, one number per plane from ``vae.metrics.holes_share``, computed
with torch over the plane's data region (not the visible one, so it does not change as you zoom).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from app import cache, frontend, inside
from vae import judge as judges
from vae.explore import decode_codes
from vae.metrics import holes_share
from vae.onnx.export import export_judge


@st.cache_resource(max_entries=2, show_spinner="Preparing the judge for the page (once)…")
def judge_graph(dataset: str) -> dict[str, Any] | None:
    """``{"url", "files"}`` of the judge's graph for the page, or None when the dataset has no judge."""
    try:
        record = judges.read_record(judges.JUDGES_DIR / dataset)
        judge = inside.judge(dataset)
    except judges.JudgeError:
        return None
    path = cache.onnx_dir() / f"judge-{dataset}-{record.weights_sha256[:16]}.onnx"
    if not path.is_file():
        export_judge(judge, path)
    url, file = frontend.publish(path.read_bytes(), "onnx")
    return {"url": url, "files": [str(file)]}


@st.cache_data(max_entries=32, show_spinner="The judge reads each plane's data region…")
def share(path: str, weights_sha256: str, subset: str, directory: str, method: str) -> dict[str, Any] | None:
    """One plane's :class:`vae.metrics.HolesShare` as JSON for the page, or None without a judge."""
    model, stored = cache.model(path, weights_sha256)
    try:
        judge = inside.judge(stored.dataset_name)
    except judges.JudgeError:
        return None
    view = cache.view(path, weights_sha256, subset, directory, method)
    found = holes_share(
        lambda codes: decode_codes(model, codes),
        view.inverse_transform,
        view.embedding_,
        judge,
        approximate=not (stored.config.latent_dim == 2 and method == "identity"),
    )
    return {"share": found.share, "grid": found.grid, "box": list(found.box), "approximate": found.approximate}
