"""Inside the latent space: which dimensions each model of the pair uses, what moving along each one draws,
and what sampling the model gives, as the judge sees it."""

from __future__ import annotations

import numpy as np
import streamlit as st

from app import cache, inside, latent_inside, state, web_planes
from vae.data import class_names
from vae.images import strip, tile_grid, upscale
from vae.judge import JudgeError
from vae.store import StoredModel


def dimensions(stored: StoredModel, directory: str) -> list[int]:
    """The per-dimension table and bars; returns the dimensions in the order they are shown."""
    path, sha = str(stored.path), stored.weights_sha256
    table = inside.dimensions(path, sha, directory)
    active, total = int(table["active"].sum()), len(table)
    st.metric(
        "Active dimensions",
        f"{active} of {total}",
        help="Burda et al. (2016): a dimension is active when the variance over the test images of its code "
        "(the posterior mean for a VAE) exceeds 0.01.",
    )
    key = "kl" if stored.config.kind == "vae" else "variance"
    label = "KL per dimension (nats)" if key == "kl" else "variance of the code per dimension"
    bars = table.assign(dimension=[f"z{d}" for d in table["dim"]]).set_index("dimension")[[key]]
    st.caption(f"{label}, over the 10,000 test images, largest first")
    st.bar_chart(bars, height=180, sort=False)
    note = inside.collapse_note(table, stored.config.kind)
    if note:
        st.warning(note)
    elif stored.config.kind == "vae":
        total_kl = float(table["kl"].sum())
        st.caption(f"Every dimension is in use; their KLs sum to the model's KL term, {total_kl:.1f} nats per image.")
    return [int(d) for d in table["dim"]]


def traversal(stored: StoredModel, directory: str, order: list[int]) -> None:
    shown = tuple(order[: inside.MAX_TRAVERSALS])
    rows = inside.traversal_rows(str(stored.path), stored.weights_sha256, directory, shown)
    st.caption(
        "Each row moves one dimension from its 1st to its 99th percentile over the test codes, the others held at "
        "the mean code: a row that does not change is a dimension the decoder ignores."
    )
    for d, row in zip(shown, rows):
        st.image(upscale(strip(row), 2), caption=f"z{d}", output_format="PNG")


def samples(side: str, stored: StoredModel, directory: str, drawn_in_page: bool) -> None:
    path, sha = str(stored.path), stored.weights_sha256
    if not drawn_in_page:  # the server draws them: a browser that cannot decode, or decoding switched off
        seed_key = f"inside_seed_{side}"
        if st.button("Resample", key=f"inside_resample_{side}", icon=":material/casino:"):
            st.session_state[seed_key] = st.session_state.get(seed_key, 0) + 1
        seed = st.session_state.get(seed_key, 0)
        prior = "its prior N(0, I)" if stored.config.kind == "vae" else "a Gaussian fitted to its training codes"
        st.image(
            upscale(tile_grid(inside.shown_samples(path, sha, directory, seed), 8), 2),
            caption=f"64 decodes of random codes from {prior} (draw {seed + 1})",
            output_format="PNG",
        )
    try:
        verdict = inside.verdict(path, sha, directory)
    except JudgeError as error:
        st.info(
            f"No judge for this dataset ({error}): run `python -m vae.judge train --dataset {stored.dataset_name}`."
        )
        return
    st.metric(
        "Confident samples (the judge's)",
        f"{verdict.sample_confident:.0%}",
        help="Share of 10,000 seeded samples the judge, a digit classifier shipped with the project that only "
        f"measures, gives >= 90 % to one class. Its test reconstructions reach {verdict.recon_confident:.0%}: "
        "the ceiling.",
    )
    names = class_names(stored.dataset_name)
    st.bar_chart(
        {"share of samples": dict(zip(names, verdict.sample_shares))}, height=160, sort=False, horizontal=False
    )
    st.caption(
        f"Classes of the samples, as the judge reads them: entropy {verdict.sample_entropy:.2f} nats "
        f"(balanced = {np.log(len(names)):.2f}; the test reconstructions: {verdict.recon_entropy:.2f})."
    )


def render() -> None:
    state.page_frame()
    st.title("Inside the latent space")
    st.caption(
        "Which dimensions each model uses, what moving along each one draws, and what sampling each model "
        "gives. The judge is a classifier trained by the project on the same dataset; it only measures."
    )
    pair = state.pair_or_explain()
    if pair is None:
        return
    directory = str(cache.data_dir())
    in_page = web_planes.page_can_decode()
    dims_tab, samples_tab = st.tabs(["Dimensions", "Samples"])
    with dims_tab:
        for column, stored in zip(st.columns(2), (pair.left, pair.right), strict=True):
            with column:
                st.subheader(f"{stored.name} ({stored.config.kind.upper()})")
                order = dimensions(stored, directory)
                if not in_page:
                    traversal(stored, directory, order)
        if in_page:
            st.subheader("Traversals and sliders, decoded in this page")
            latent_inside.show("dimensions", pair.left, pair.right, key="inside_dimensions")
    with samples_tab:
        if in_page:
            latent_inside.show("samples", pair.left, pair.right, key="inside_samples")
        for column, (side, stored) in zip(st.columns(2), (("left", pair.left), ("right", pair.right)), strict=True):
            with column:
                st.subheader(f"{stored.name} ({stored.config.kind.upper()})")
                samples(side, stored, directory, in_page)


with state.guard():
    render()
