"""Streamlit caches for the class-overlap numbers and the export files, keyed by explicit arguments.

Like ``app/cache.py``: a model is identified by (folder, weights SHA-256), so a re-saved model is measured
afresh, and the data by (subset, data dir). The embeddings and views come from ``app.cache`` (one shared
copy per server); what is cached here is small and plain (floats, ``[C]`` / ``[C, C]`` arrays, bytes), so
it is ``cache_data``: every caller gets its own copy and may modify it.

Measured on 2 shared CPU cores for the 10,000 test images (details in ``app_pages/overlap.py``): the report
takes 1-2 s per model, the matrix and the per-class density well under a second each.
"""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from app import cache
from vae import export, metrics
from vae.models import LatentModel, to_float_images
from vae.onnx.export import CHECK_BATCH


def _labels(path: str, weights_sha256: str, subset: str, data_dir: str) -> np.ndarray:
    _, labels = cache.model_data(path, weights_sha256, subset, data_dir)
    return labels.numpy()


@st.cache_data(max_entries=64, show_spinner=False)
def report(path: str, weights_sha256: str, subset: str, data_dir: str, method: str) -> dict[str, float]:
    """:func:`vae.metrics.overlap_report` of the model's embedding and its ``method`` 2-D view.

    Keys are :data:`vae.metrics.REPORT_KEYS`. For a 2-D model pass ``method="identity"`` (the view is the
    latent itself, so trustworthiness is 1 and both kNN accuracies agree).
    """
    codes = cache.embedding(path, weights_sha256, subset, data_dir)
    view = cache.view(path, weights_sha256, subset, data_dir, method)
    return metrics.overlap_report(codes, _labels(path, weights_sha256, subset, data_dir), view.embedding_, k=5)


@st.cache_data(max_entries=64, show_spinner=False)
def overlap(path: str, weights_sha256: str, subset: str, data_dir: str, k: int = 5) -> np.ndarray:
    """``[10, 10]`` :func:`vae.metrics.overlap_matrix` in the latent space: row c = where class c's
    k nearest neighbours fall. Independent of the 2-D view."""
    codes = cache.embedding(path, weights_sha256, subset, data_dir)
    return metrics.overlap_matrix(codes, _labels(path, weights_sha256, subset, data_dir), k=k, n_classes=10)


@st.cache_data(max_entries=64, show_spinner=False)
def density(path: str, weights_sha256: str, subset: str, data_dir: str) -> dict[str, np.ndarray]:
    """Per-class :func:`vae.metrics.class_density` (``[10]`` arrays) in the latent space, plus the size of
    the whole cloud: ``norm_median`` and ``norm_p99``, the median and 99th percentile of ``|z|`` over all
    points, and ``centre_norm``, the distance of the mean code from the origin (0-d arrays)."""
    codes = cache.embedding(path, weights_sha256, subset, data_dir)
    out = metrics.class_density(codes, _labels(path, weights_sha256, subset, data_dir), n_classes=10)
    norms = np.linalg.norm(np.asarray(codes, dtype=np.float64), axis=1)
    out["norm_median"] = np.asarray(np.median(norms))
    out["norm_p99"] = np.asarray(np.percentile(norms, 99))
    out["centre_norm"] = np.asarray(np.linalg.norm(np.asarray(codes, dtype=np.float64).mean(axis=0)))
    return out


# Holes in the 2-D picture: a grid of this many cells a side over the middle 98 % of the points.
COVERAGE_CELLS = 20


def view_coverage(points: np.ndarray, cells: int = COVERAGE_CELLS) -> float:
    """Share of a ``cells`` x ``cells`` grid over the 1st-99th percentile box of ``points [N, 2]`` that
    holds at least one point: near 1 for a plane without holes, low for classes strung out with empty
    space between them. Percentiles, not the extremes, so a few outliers cannot stretch the box."""
    xy = np.asarray(points, dtype=np.float64)
    lo, hi = np.percentile(xy, 1, axis=0), np.percentile(xy, 99, axis=0)
    if not np.all(hi > lo):
        return float("nan")  # a degenerate (collapsed) view has no area to fill
    inside = np.all((xy >= lo) & (xy <= hi), axis=1)
    counts, _, _ = np.histogram2d(xy[inside, 0], xy[inside, 1], bins=cells, range=[[lo[0], hi[0]], [lo[1], hi[1]]])
    return float(np.mean(counts > 0))


@st.cache_data(max_entries=64, show_spinner=False)
def coverage(path: str, weights_sha256: str, subset: str, data_dir: str, method: str) -> float:
    """:func:`view_coverage` of the model's ``method`` 2-D view (its latent plane itself when D == 2)."""
    return view_coverage(cache.view(path, weights_sha256, subset, data_dir, method).embedding_)


@st.cache_data(max_entries=8, show_spinner=False)
def model_zip(path: str, weights_sha256: str) -> bytes:
    """:func:`vae.export.model_zip` of the folder; the SHA-256 keys it, so a re-save makes a new zip."""
    return export.model_zip(path)


def onnx_zip(model: LatentModel, name: str, weights_sha256: str, test_images: torch.Tensor) -> bytes:
    """The model's ONNX pair as a zip (``decoder.onnx``, ``encoder.onnx``, ``onnx.json``), exported once per
    weights into ``cache.onnx_exports()`` and checked against the model on real test images (uint8 ``[N, 28, 28]``).

    Plain (no Streamlit call): the Exports page hands it to a download button, which runs it on click.
    """
    pair = cache.onnx_exports().get(model, weights_sha256, to_float_images(test_images[:CHECK_BATCH]))
    return export.pair_zip(pair.directory, name)
