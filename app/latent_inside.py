"""The Inside page's traversals, sliders and samples in the browser: each model's decoder runs in the page,
so moving a slider, changing a traversal's base or range, or drawing new samples redraws at once and sends
the server nothing.

Python hands the page, per model, the decoder and the test points (``app.web_planes.plane_files``: the same
published files as the explorer's), the dimensions in the order the page shows them, each one's 1st and
99th percentile over the test codes, the mean code, and how to sample: the prior for a VAE, the mean and a
Cholesky factor of the training codes' covariance for an AE or PCA (``vae.metrics.sample_codes``'s
Gaussian). The server's own figures (the judge's verdict on 10,000 samples) stay on the page around it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from app import cache, frontend, inside, web_planes
from vae.data import class_names
from vae.store import StoredModel

COMPONENT = "latent_inside"
MAX_SLIDERS = 32  # shown at once; the rest behind the page's "all dimensions" control
TRAVERSAL_STEPS = 9


@st.cache_data(max_entries=16, show_spinner=False)
def side_numbers(path: str, sha: str, directory: str) -> dict[str, Any]:
    """Per model: the dimensions' order and figures, their percentile ranges, the mean code and the sampler."""
    model, stored = cache.model(path, sha)
    codes = np.asarray(cache.embedding(path, sha, "test", directory), dtype=np.float64)  # [N, D]
    table = inside.dimensions(path, sha, directory)
    low, high = np.percentile(codes, [1, 99], axis=0)
    sampler: dict[str, Any] = {"kind": "prior"}
    fit = inside.training_codes(path, sha, directory)
    if fit is not None:
        fit = np.asarray(fit, dtype=np.float64)
        covariance = np.cov(fit.T).reshape(codes.shape[1], codes.shape[1]) + 1e-9 * np.eye(codes.shape[1])
        sampler = {
            "kind": "gaussian",
            "mean": fit.mean(0).tolist(),
            "cholesky": np.linalg.cholesky(covariance).tolist(),
        }
    by_dim = table.sort_values("dim")  # the figures are indexed by dimension; "order" is the showing order
    return {
        "order": [int(d) for d in table["dim"]],
        "active": [bool(a) for a in by_dim["active"]],
        "kl": [None if np.isnan(v) else float(v) for v in by_dim["kl"]],
        "variance": [float(v) for v in by_dim["variance"]],
        "low": low.tolist(),
        "high": high.tolist(),
        "mean": codes.mean(0).tolist(),
        "sampler": sampler,
    }


def side_payload(side: str, stored: StoredModel) -> dict[str, Any]:
    path, sha, directory = str(stored.path), stored.weights_sha256, str(cache.data_dir())
    view = "identity" if stored.config.latent_dim == 2 else "pca"
    assets = web_planes.plane_files(path, sha, "test", directory, view)
    return {
        "side": side,
        "name": stored.name,
        "kind": stored.config.kind,
        "dim": int(stored.config.latent_dim),
        "decoder": assets["decoder"],
        "points": assets["points"],
        "count": assets["count"],
        **side_numbers(path, sha, directory),
    }


def show(mode: str, left: StoredModel, right: StoredModel, key: str) -> None:
    """Both models' ``mode`` ("dimensions": traversals and sliders; "samples": 64 draws and Resample)."""
    if mode not in ("dimensions", "samples"):
        raise ValueError(f"mode must be 'dimensions' or 'samples', got {mode!r}")
    directory = str(cache.data_dir())
    images = web_planes.images_files(left.dataset_name, "test", directory)
    pinned = st.session_state.get("ex_selected")
    data = {
        "modules": {"inside": frontend.module_url("components/latent_inside/inside.js")},
        "runtime": web_planes.runtime_urls(),
        "mode": mode,
        "classes": list(class_names(left.dataset_name)),
        "images": {"url": images["url"], "count": images["count"]},
        "pinned": int(pinned) if isinstance(pinned, int) and 0 <= pinned < images["count"] else None,
        "steps": TRAVERSAL_STEPS,
        "max_sliders": MAX_SLIDERS,
        "sides": [side_payload(s, stored) for s, stored in (("left", left), ("right", right))],
    }
    frontend.component(COMPONENT)(key=key, data=data)
