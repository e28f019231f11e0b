"""Streamlit caches around `vae/` functions, each keyed by explicit arguments.

Models are keyed by (folder, weights SHA-256), so re-saving a model under the same name can never serve
stale weights. Heavy shared objects (models, datasets, embeddings) are `cache_resource`: one copy per
server, never mutated by callers. Small results that pages may modify are `cache_data`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from vae.data import load_mnist
from vae.explore import class_centroids
from vae.jobs import TrainingQueue
from vae.metrics import embed_images
from vae.models import LatentModel
from vae.plots import ClickGrid, latent_scatter
from vae.projections import LatentView, ViewCache, make_view, view_cache_key
from vae.store import StoredModel, list_models, load_model

REPO = Path(__file__).resolve().parents[1]

# Points shown per plot: the test set by default; "all" adds the training images (70,000).
SUBSETS = {"test": "10,000 test images", "all": "all 70,000 images"}


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


@st.cache_resource(max_entries=4, show_spinner="Loading MNIST…")
def dataset(subset: str, directory: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images uint8 ``[N, 28, 28]`` and labels ``[N]``: the test set, or test then train for "all".

    Shared by every session: callers must not modify the tensors.
    """
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {list(SUBSETS)}, got {subset!r}")
    images, labels = load_mnist("test", directory)
    if subset == "all":
        train_images, train_labels = load_mnist("train", directory)
        images, labels = torch.cat([images, train_images]), torch.cat([labels, train_labels])
    return images, labels


@st.cache_resource(max_entries=12, show_spinner="Embedding images…")
def embedding(path: str, weights_sha256: str, subset: str, directory: str) -> np.ndarray:
    """float32 ``[N, D]``: every image of ``subset`` through the model's ``embed``. Read-only."""
    loaded, _ = model(path, weights_sha256)
    images, _ = dataset(subset, directory)
    out = embed_images(loaded, images).numpy()
    out.setflags(write=False)
    return out


@st.cache_resource
def training_queue() -> TrainingQueue:
    """One queue per server: every session's jobs take turns on the CPU."""
    return TrainingQueue()


@st.cache_resource(max_entries=2, show_spinner="Loading MNIST…")
def training_data(directory: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Train and test images and labels, uint8 ``[N, 28, 28]`` / ``[N]``; shared, read-only."""
    return (*load_mnist("train", directory), *load_mnist("test", directory))


def cache_dir() -> Path:
    return Path(os.environ.get("VAE_CACHE_DIR") or REPO / ".cache")


@st.cache_resource(max_entries=12, show_spinner=False)
def view(path: str, weights_sha256: str, subset: str, directory: str, method: str) -> LatentView:
    """The fitted 2-D view of a model's embedding; UMAP and PCA views are also kept on disk, so after a
    restart the second open is a file read, not a refit."""
    codes = embedding(path, weights_sha256, subset, directory)
    if method == "identity":
        return make_view("identity").fit(codes)
    disk = ViewCache(cache_dir() / "views")
    key = view_cache_key(weights_sha256, method, len(codes))
    fitted = disk.load(key, codes)
    if fitted is None:
        label = {"umap": "UMAP", "pca": "PCA"}.get(method, method)
        with st.spinner(f"Fitting {label} on {len(codes):,} points (once per model; UMAP takes about a minute)…"):
            fresh = make_view(method).fit(codes)
        try:
            disk.save(key, fresh)
        except OSError:
            return fresh  # a read-only cache directory costs a refit after a restart, nothing more
        # Serve the restored copy even now: its transform and inverse are the fast neighbour maps (a
        # freshly fitted UMAP would run umap-learn's, seconds per call), so the first open and every later
        # one behave the same.
        fitted = disk.load(key, codes) or fresh
    return fitted


@st.cache_resource(max_entries=12, show_spinner=False)
def base_figure(path: str, weights_sha256: str, subset: str, directory: str, method: str, title: str) -> go.Figure:
    """The scatter of a model's 2-D view with its click grid, built (and validated) once.

    Shared by every session and never modified: pages add their overlays with ``vae.plots.with_overlays``.
    """
    fitted = view(path, weights_sha256, subset, directory, method)
    _, labels = dataset(subset, directory)
    return latent_scatter(
        fitted.embedding_, labels.numpy(), title=title, grid=ClickGrid.square(fitted.embedding_),
        uirevision=f"{path}|{weights_sha256}|{subset}|{method}",
    )  # fmt: skip


@st.cache_data(max_entries=24, show_spinner=False)
def centroids(path: str, weights_sha256: str, subset: str, directory: str) -> np.ndarray:
    """``[10, D]``: each digit's mean code, the interpolation's default end points."""
    _, labels = dataset(subset, directory)
    return class_centroids(embedding(path, weights_sha256, subset, directory), labels.numpy())
