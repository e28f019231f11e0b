"""Streamlit caches around `vae/` functions, each keyed by explicit arguments.

Models are keyed by (folder, weights SHA-256), so re-saving a model under the same name can never serve
stale weights. Heavy shared objects (models, datasets, embeddings) are `cache_resource`: one copy per
server, never mutated by callers. Small results that pages may modify are `cache_data`.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from vae.data import class_names, load_dataset, load_subset
from vae.explore import class_centroids
from vae.jobs import StudyJob, TrainingQueue
from vae.metrics import embed_images
from vae.models import LatentModel
from vae.onnx.export import ExportCache
from vae.plots.scatter import ClickGrid, latent_scatter
from vae.projections import LatentView, ViewCache, expected_fit_seconds, make_view, view_cache_key
from vae.queues import make_queue
from vae.store import StoredModel, list_models, load_model
from vae.studies.registry import load_result
from vae.studies.runner import StudyResult

REPO = Path(__file__).resolve().parents[1]

# Points shown per plot: the test set by default; "all" adds the training images (70,000).


def models_dir() -> Path:
    return Path(os.environ.get("VAE_MODELS_DIR") or REPO / "models")


def data_dir() -> Path:
    return Path(os.environ.get("VAE_DATA_DIR") or REPO / "data")


@st.cache_data(ttl=3, show_spinner=False)
def model_list(directory: str) -> list[StoredModel]:
    """Valid models in ``directory``; a short TTL so models saved by another session show up soon."""
    return list_models(directory)


@st.cache_resource(max_entries=16, show_spinner="Loading model…")
def model(path: str, weights_sha256: str) -> tuple[LatentModel, StoredModel]:
    """The model in folder ``path``; ``weights_sha256`` is part of the key so a re-save reloads."""
    return load_model(path)


@st.cache_resource(max_entries=4, show_spinner="Loading the images…")
def dataset(name: str, subset: str, directory: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images uint8 ``[N, 28, 28]`` and labels ``[N]`` of dataset ``name`` ("mnist", "fashion-mnist"): the
    test set, or test then train for "all".

    Shared by every session: callers must not modify the tensors.
    """
    return load_subset(name, subset, directory)


def dataset_of(path: str, weights_sha256: str) -> str:
    """The dataset a model was trained on, from its saved metadata: its points are that dataset's images."""
    return model(path, weights_sha256)[1].dataset_name


def model_data(path: str, weights_sha256: str, subset: str, directory: str) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`dataset` for the model in ``path``: the images and labels its plane shows."""
    return dataset(dataset_of(path, weights_sha256), subset, directory)


@st.cache_resource(max_entries=12, show_spinner="Embedding images…")
def embedding(path: str, weights_sha256: str, subset: str, directory: str) -> np.ndarray:
    """float32 ``[N, D]``: every image of ``subset`` through the model's ``embed``. Read-only."""
    loaded, _ = model(path, weights_sha256)
    images, _ = model_data(path, weights_sha256, subset, directory)
    out = embed_images(loaded, images).numpy()
    out.setflags(write=False)
    return out


@st.cache_resource
def training_queue() -> TrainingQueue:
    """One queue per server: every session's jobs take turns on the CPU, or run as Ray tasks when ``VAE_JOBS``
    names a Ray (see :func:`vae.queues.make_queue`)."""
    return make_queue()


@st.cache_resource(max_entries=2, show_spinner="Loading the images…")
def training_data(name: str, directory: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Train and test images and labels of dataset ``name``, uint8 ``[N, 28, 28]`` / ``[N]``; shared, read-only."""
    return (*load_dataset(name, "train", directory), *load_dataset(name, "test", directory))


# UMAP views of the shipped models with D > 2, fitted once by scripts/ship_views.py and committed, so a fresh
# clone's first UMAP view of them is a file read (each file is checked against the codes it is used for).
SHIPPED_VIEWS = REPO / "views"


def cache_dir() -> Path:
    return Path(os.environ.get("VAE_CACHE_DIR") or REPO / ".cache")


def onnx_dir() -> Path:
    """Where models exported to ONNX are kept, by weights SHA-256 (``VAE_ONNX_DIR``, else in the cache)."""
    return Path(os.environ.get("VAE_ONNX_DIR") or cache_dir() / "onnx")


def onnx_exports() -> ExportCache:
    """ONNX pairs of the store's models, exported once per weights (see :func:`onnx_dir`)."""
    return ExportCache(onnx_dir())


@st.cache_resource(max_entries=12, show_spinner=False)
def view(path: str, weights_sha256: str, subset: str, directory: str, method: str) -> LatentView:
    """The fitted 2-D view of a model's embedding; UMAP and PCA views are also kept on disk, so after a
    restart the second open is a file read, not a refit."""
    codes = embedding(path, weights_sha256, subset, directory)
    if method == "identity":
        return make_view("identity").fit(codes)
    key = view_cache_key(weights_sha256, method, len(codes))
    shipped = ViewCache(SHIPPED_VIEWS, read_only=True).load(key, codes)
    if shipped is not None:
        return shipped
    disk = ViewCache(cache_dir() / "views")
    fitted = disk.load(key, codes)
    if fitted is None:
        fresh = fit_with_progress(method, codes)
        try:
            disk.save(key, fresh)
        except OSError:
            return fresh  # a read-only cache directory costs a refit after a restart, nothing more
        # Serve the restored copy even now: its transform and inverse are the fast neighbour maps (a
        # freshly fitted UMAP would run umap-learn's, seconds per call), so the first open and every later
        # one behave the same.
        fitted = disk.load(key, codes) or fresh
    return fitted


def fit_with_progress(method: str, codes: np.ndarray) -> LatentView:
    """Fit a view of ``codes [N, D]`` in a worker thread while a progress bar counts against the expected time
    (``vae.projections.expected_fit_seconds``); the bar stops short of full until the fit really ends."""
    label = {"umap": "UMAP", "pca": "PCA"}.get(method, method)
    expected = expected_fit_seconds(method, len(codes), first_in_process=method not in _FITTED_IN_PROCESS)
    bar = st.progress(0.0, text=f"Fitting {label} on {len(codes):,} points (once per model): about {expected:.0f} s")
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(make_view(method).fit, codes)
        while not future.done():
            elapsed = time.monotonic() - started
            bar.progress(
                min(elapsed / expected, 0.99),
                text=f"Fitting {label} on {len(codes):,} points (once per model): {elapsed:.0f} s of about {expected:.0f} s",
            )
            wait([future], timeout=0.5)
    bar.empty()
    _FITTED_IN_PROCESS.add(method)
    return future.result()


_FITTED_IN_PROCESS: set[str] = set()  # numba compiles UMAP once per process: later fits skip that cost


@st.cache_resource(max_entries=12, show_spinner=False)
def base_figure(path: str, weights_sha256: str, subset: str, directory: str, method: str, title: str) -> go.Figure:
    """The scatter of a model's 2-D view with its click grid, built (and validated) once.

    Shared by every session and never modified: pages add their overlays with ``vae.plots.scatter.with_overlays``.
    """
    fitted = view(path, weights_sha256, subset, directory, method)
    _, labels = model_data(path, weights_sha256, subset, directory)
    return latent_scatter(
        fitted.embedding_,
        labels.numpy(),
        title=title,
        grid=ClickGrid.square(fitted.embedding_),
        class_names=class_names(dataset_of(path, weights_sha256)),
        uirevision=f"{path}|{weights_sha256}|{subset}|{method}",
    )


@st.cache_data(max_entries=24, show_spinner=False)
def centroids(path: str, weights_sha256: str, subset: str, directory: str) -> np.ndarray:
    """``[10, D]``: each class's mean code, the interpolation's default end points."""
    _, labels = model_data(path, weights_sha256, subset, directory)
    return class_centroids(embedding(path, weights_sha256, subset, directory), labels.numpy())


def experiment_dirs(dataset: str) -> dict[str, Path]:
    """Where study results on ``dataset`` live: shipped with the repository (MNIST's at the top of
    ``experiments/``, others in a folder of their name), and this machine's recomputes."""
    shipped = Path(os.environ.get("VAE_EXPERIMENTS_DIR") or REPO / "experiments")
    return {
        "shipped": shipped if dataset == "mnist" else shipped / dataset,
        "recomputed": cache_dir() / "experiments" / dataset,
    }


@st.cache_resource(max_entries=16, show_spinner=False)
def experiment(directory: str, study: str, stamp: int) -> StudyResult:
    """A saved study, read once per version: ``stamp`` (the JSON's mtime in ns) changes when it is rewritten.

    Shared by every session: callers must not modify the arrays.
    """
    return load_result(directory, study)


@st.cache_resource
def study_jobs() -> dict[tuple[str, str], StudyJob]:
    """The latest recompute of each (study, dataset), shared by every session (a second click joins it)."""
    return {}
