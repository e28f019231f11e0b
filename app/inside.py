"""What the Inside page computes, cached per (model folder, weights SHA-256): which dimensions each model
uses, traversals along them, samples and what the judge (``vae.judge``) calls them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from app import cache
from vae import judge as judges
from vae.explore import decode_codes, traversals
from vae.metrics import latent_dimensions, reconstruction_quality, sample_codes, sample_quality

N_TEST = 10_000  # the test images every number here is measured on
N_SAMPLES = 10_000  # samples the judge measures (seeded: the same for every visit)
SHOWN_SAMPLES = 64  # decodes shown per model, drawn again by Resample
MAX_TRAVERSALS = 8  # the dimensions with the most KL (or variance) get a row each


@dataclass(frozen=True)
class Verdict:
    """The judge's figures for one model's samples and, as their ceiling, its test reconstructions."""

    sample_confident: float
    sample_shares: tuple[float, ...]
    sample_entropy: float
    recon_confident: float
    recon_entropy: float


def training_codes(path: str, sha: str, directory: str) -> np.ndarray | None:
    """The codes of the 60,000 training images ``[60000, D]`` for a model without a prior (AE, PCA), else None."""
    model, stored = cache.model(path, sha)
    if stored.config.kind == "vae":
        return None
    return cache.embedding(path, sha, "all", directory)[N_TEST:]


@st.cache_data(max_entries=16, show_spinner="Measuring each dimension on the 10,000 test images…")
def dimensions(path: str, sha: str, directory: str) -> pd.DataFrame:
    """``vae.metrics.latent_dimensions`` over the test images, sorted by KL (VAE) or variance (AE, PCA)."""
    model, stored = cache.model(path, sha)
    images, _ = cache.model_data(path, sha, "test", directory)
    table = latent_dimensions(model, images)
    key = "kl" if stored.config.kind == "vae" else "variance"
    return table.sort_values(key, ascending=False, kind="stable").reset_index(drop=True)


@st.cache_data(max_entries=16, show_spinner=False)
def traversal_rows(path: str, sha: str, directory: str, dims: tuple[int, ...], steps: int = 9) -> np.ndarray:
    """``[len(dims), steps, 28, 28]``: each dimension swept from the mean test code (``vae.explore.traversals``)."""
    model, _ = cache.model(path, sha)
    return traversals(model, cache.embedding(path, sha, "test", directory), list(dims), steps)


@st.cache_data(max_entries=32, show_spinner=False)
def shown_samples(path: str, sha: str, directory: str, seed: int) -> np.ndarray:
    """:data:`SHOWN_SAMPLES` decoded samples ``[64, 28, 28]`` for ``seed`` (``vae.metrics.sample_codes``)."""
    model, _ = cache.model(path, sha)
    codes = sample_codes(model, SHOWN_SAMPLES, seed, training_codes(path, sha, directory))
    return decode_codes(model, codes.numpy())


@st.cache_resource(max_entries=2, show_spinner="Loading the judge…")
def judge(dataset: str) -> judges.Judge:
    """The shipped judge of ``dataset``; raises ``vae.judge.JudgeError`` when it is missing or damaged."""
    return judges.load(dataset)


@st.cache_data(max_entries=16, show_spinner="The judge reads 10,000 samples and the test reconstructions…")
def verdict(path: str, sha: str, directory: str) -> Verdict:
    model, stored = cache.model(path, sha)
    judged_by = judge(stored.dataset_name)
    samples = sample_quality(model, judged_by, N_SAMPLES, seed=0, fit_codes=training_codes(path, sha, directory))
    images, _ = cache.model_data(path, sha, "test", directory)
    recon = reconstruction_quality(model, judged_by, images)
    return Verdict(
        samples.confident_share,
        tuple(float(s) for s in samples.class_shares),
        samples.entropy,
        recon.confident_share,
        recon.entropy,
    )


def collapse_note(table: pd.DataFrame, kind: str) -> str | None:
    """In words, for a VAE with inactive dimensions: which and how many (posterior collapse)."""
    if kind != "vae" or table["active"].all():
        return None
    dead = sorted(int(d) for d in table.loc[~table["active"], "dim"])
    return (
        f"{len(dead)} of {len(table)} dimensions are inactive (z{', z'.join(map(str, dead))}): their posterior "
        "mean hardly changes from image to image, so the KL term pushed them back to the prior and the decoder "
        "ignores them. This is posterior collapse; a smaller beta or a smaller latent keeps more of them."
    )
