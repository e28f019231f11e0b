"""Experiments: the brief's open questions, each answered with numbers measured on the test set."""

from __future__ import annotations

import streamlit as st

from app import state
from app.experiments import (
    MAPS_HELP,
    answer,
    chart,
    load,
    maps,
    recompute,
    reconstructions,
    table,
    yardstick_dimensions,
)
from vae.plots.studies import active_units_figure, filter_banks, metric_curves, tradeoff_scatter
from vae.studies.beta import active_units_by_beta, active_units_sentence
from vae.studies.conv_filters import filter_bank_images, filter_rows
from vae.studies.decoupled import PAPER_DECOUPLED, TARGET_KNN, TARGET_MSE
from vae.studies.pca_vs_ae import TIED_INTRO, angle_rows, summarise_tied
from vae.studies.registry import get_study, summarise
from vae.studies.runner import StudyResult, map_grid_image


def pca_section() -> None:
    result = load("pca_vs_ae")
    if result is not None:
        answer(summarise(result))
        metrics = {
            "test_mse_per_pixel": "reconstruction MSE per pixel (test)",
            "knn5_accuracy": "kNN-5 accuracy in the latent space",
        }
        chart(metric_curves(result.rows, "latent_dim", metrics, log_x=True, x_title="latent dimension D"), "pca_curves")
        angles = angle_rows(result)
        if angles:
            st.markdown(
                "**Principal angles** between PCA's top-D subspace and the linear AE's (its decoder's columns, its "
                "encoder's rows). 0° means the same subspace: the linear AE finds PCA's subspace, not its axes."
            )
            metrics = {"largest": "largest angle (°)", "mean": "mean angle (°)"}
            chart(metric_curves(angles, "latent_dim", metrics, log_x=True, x_title="latent dimension D"), "pca_angles")
        keys = [k for k in ("pca-2", "linear-2", "dense-2", "vae-2") if k in result.maps]
        titles = {k: result.row(k)["family"] + " (2-D)" for k in keys}
        st.markdown("**The 2-D maps side by side.** " + MAPS_HELP)
        chart(maps(result, keys, titles, columns=4), "pca_maps")
        d = st.select_slider("Reconstructions at latent dimension", result.settings.dims, key="pca_recon_dim")
        family_keys = [f"{f}-{d}" for f in ("pca", "linear", "dense", "tied", "vae")]
        reconstructions(result, family_keys, {k: result.row(k)["label"] for k in family_keys})
        with st.expander("All numbers"):
            table(result.rows)
    recompute("pca_vs_ae")


def conv_section() -> None:
    result = load("conv")
    if result is not None:
        answer(summarise(result))
        titles = {row["key"]: row["label"] for row in result.rows}
        chart(maps(result, list(result.maps), titles, columns=4), "conv_maps")
        st.caption(
            MAPS_HELP + " The conv pair is also shipped as models (ae-2d-conv, vae-2d-conv): pick them in "
            "the sidebar to explore them in the Latent explorer."
        )
        table(result.rows)
        reconstructions(result, list(titles), titles)
    recompute("conv")


def beta_section() -> None:
    result = load("beta")
    if result is not None:
        answer(summarise(result))
        st.markdown(get_study("beta").intro)
        betas = sorted(row["beta"] for row in result.rows)
        beta = st.select_slider("β", betas, value=1.0 if 1.0 in betas else betas[0], key="beta_pick")
        key = f"beta-{beta:g}"
        left, right = st.columns([3, 2])
        with left:
            chart(maps(result, [key], {key: f"β = {beta:g}"}, columns=1, height_per_row=420), "beta_map")
        with right:
            x0, x1, y0, y1 = result.row(key)["grid_box"]
            st.image(
                map_grid_image(result.images[f"grid/{key}"]),
                output_format="PNG",
                caption=f"decoded on a 10 x 10 grid over z₁ {x0:.1f}..{x1:.1f}, z₂ {y0:.1f}..{y1:.1f}",
            )
        st.markdown("**Every β** (small multiples). " + MAPS_HELP)
        titles = {k: f"β = {result.row(k)['beta']:g}" for k in result.maps}
        chart(maps(result, list(result.maps), titles, columns=len(result.maps), height_per_row=240), "beta_maps")
        metrics = {
            "test_recon": "reconstruction (nats)",
            "test_kl": "KL (nats)",
            "knn5_accuracy": "kNN-5 accuracy",
            "silhouette": "silhouette",
        }
        chart(metric_curves(result.rows, "beta", metrics, x_title="β"), "beta_curves")
        active_units_section(result)
        with st.expander("All numbers"):
            table(result.rows)
    recompute("beta")


def active_units_section(result: StudyResult) -> None:
    """Active units per beta, and beside the sweep the 20-D yardstick's dimensions: what beta = 1 keeps of 20."""
    by_beta = active_units_by_beta(result)
    if not by_beta:
        return
    found = yardstick_dimensions(state.dataset())
    dimensions, title = (None, "")
    if found is not None:
        stored, dimensions = found
        title = f"{stored.name} (β = {stored.config.beta:g}): each dimension, by KL"
    st.markdown(
        "**Active units** (Burda et al., 2016): a dimension is active when the variance over the test images of "
        "its posterior mean exceeds 0.01; an inactive one has collapsed to the prior and the decoder ignores it."
    )
    chart(active_units_figure(by_beta, dimensions, title), "beta_active")
    lines = [active_units_sentence(by_beta)]
    if found is not None:
        active, total = int(dimensions["active"].sum()), len(dimensions)
        line = (
            f"The 20-D yardstick ({stored.name}, the shipped VAE trained at β = {stored.config.beta:g}): "
            f"**{active} of {total}** dimensions active over the test images"
        )
        if active < total:
            most = float(dimensions.loc[~dimensions["active"], "kl"].max())
            line += f"; the other {total - active} carry at most {most:.2g} nats of KL each: collapsed to the prior"
        lines.append(line + ".")
    st.caption("  \n".join(lines))


def class_section() -> None:
    st.warning(
        "This term **uses the labels**: it is supervised, unlike every other model here, so its maps show what a "
        "loss *can* do with class information, not what an auto-encoder finds on its own."
    )
    st.markdown(get_study("class_aware").intro)
    result = load("class_aware")
    if result is not None:
        answer(summarise(result))
        weights = sorted({row["class_weight"] for row in result.rows})
        keys = [f"{kind}-class-{w:g}" for kind in ("ae", "vae") for w in weights]
        titles = {k: f"{result.row(k)['family']}, weight {result.row(k)['class_weight']:g}" for k in keys}
        chart(maps(result, keys, titles, columns=len(weights)), "class_maps")
        metrics = {
            "overlap": "overlap (5-NN from other classes)",
            "silhouette": "silhouette",
            "test_mse_per_pixel": "MSE per pixel (cost)",
        }
        chart(metric_curves(result.rows, "class_weight", metrics, x_title="class weight"), "class_curves")
        table(result.rows)
    recompute("class_aware")


def tied_section() -> None:
    st.markdown(TIED_INTRO)
    result = load("pca_vs_ae")
    if result is None:
        return
    rows = [row for row in result.rows if row["family"] in ("dense AE", "tied AE")]
    answer(summarise_tied(result))
    metrics = {"test_mse_per_pixel": "MSE per pixel", "knn5_accuracy": "kNN-5 accuracy", "parameters": "parameters"}
    chart(metric_curves(rows, "latent_dim", metrics, log_x=True, x_title="latent dimension D"), "tied_curves")
    keys = [k for k in ("dense-2", "tied-2") if k in result.maps]
    chart(maps(result, keys, {k: result.row(k)["label"] for k in keys}, columns=2), "tied_maps")


def invertible_section() -> None:
    st.markdown(get_study("invertible").intro)
    result = load("invertible")
    if result is not None:
        answer(summarise(result))
        metrics = {"test_mse_per_pixel": "MSE per pixel", "knn5_accuracy": "kNN-5 accuracy", "parameters": "parameters"}
        chart(metric_curves(result.rows, "latent_dim", metrics, log_x=True, x_title="latent dimension D"), "inv_curves")
        metrics = {
            "inverse_error": "|E(D(z)) - z|², test codes",
            "inverse_error_random": "|E(D(z)) - z|², random codes",
        }
        chart(
            metric_curves(result.rows, "latent_dim", metrics, log_x=True, log_y=True, x_title="latent dimension D"),
            "inv_errors",
        )
        keys = [k for k in ("pca-2", "dense-2", "tied-2", "invertible-2") if k in result.maps]
        chart(maps(result, keys, {k: result.row(k)["label"] for k in keys}, columns=4), "inv_maps")
        d = st.select_slider("Reconstructions at latent dimension", result.settings.dims, key="inv_recon_dim")
        family_keys = [f"{f}-{d}" for f in ("pca", "dense", "tied", "invertible")]
        reconstructions(result, family_keys, {k: result.row(k)["label"] for k in family_keys})
        with st.expander("All numbers"):
            table(result.rows)
    recompute("invertible")


def filters_section() -> None:
    st.markdown(get_study("conv_filters").intro)
    result = load("conv_filters")
    if result is not None:
        answer(summarise(result))
        chart(filter_banks(filter_bank_images(result)), "filter_banks")
        st.caption(
            "Each 4 x 4 tile is one filter (or component), scaled by its largest |weight|: red positive, blue negative."
        )
        energy, angles = filter_rows(result)
        chart(
            metric_curves(
                energy,
                "component",
                {"share": "share of the squared weights along each patch component"},
                log_y=True,
                x_title="patch component (by variance)",
            ),
            "filter_energy",
        )
        metrics = {"largest": "largest principal angle (°)", "mean": "mean principal angle (°)"}
        k_title = "k: top-k patch components vs the k strongest filter directions"
        chart(metric_curves(angles, "k", metrics, x_title=k_title), "filter_angles")
        table(result.rows)
    recompute("conv_filters")


def decoupled_section() -> None:
    st.markdown(get_study("decoupled").intro)
    result = load("decoupled")
    if result is not None:
        answer(summarise(result))
        # PCA sits far to the right (MSE 0.055): left out, so the models near the targets can be told apart.
        near = [row for row in result.rows if row["key"] != "pca"]
        chart(
            tradeoff_scatter(near, references=PAPER_DECOUPLED, targets=(TARGET_KNN, TARGET_MSE)), "decoupled_tradeoff"
        )
        shipped = get_study("decoupled").store_names
        pca = result.row("pca")
        st.caption(
            "Filled: this study's models; open circles, in the same colours: the numbers Parametric UMAP "
            f"reports; dotted: the targets. PCA, off the chart: MSE {pca['test_mse_per_pixel']:.4f}, kNN-5 "
            f"{pca['knn5_accuracy']:.3f}. "
            + " ".join(
                f"The {result.row(key)['family']} model is shipped as {name}: pick it in the sidebar to explore it."
                for key, name in shipped.items()
            )
        )
        titles = {row["key"]: row["family"] for row in result.rows}
        chart(maps(result, list(result.maps), titles, columns=3), "decoupled_maps")
        st.caption(MAPS_HELP)
        table(result.rows)
        reconstructions(result, list(titles), titles)
    recompute("decoupled")


SECTIONS = {
    "PCA vs AE": pca_section,
    "Dense vs conv": conv_section,
    "KL weight β": beta_section,
    "Class-aware loss": class_section,
    "Tied weights": tied_section,
    "Inverse weights": invertible_section,
    "Conv filters vs patch PCA": filters_section,
    "Encoder without decoder": decoupled_section,
}


def render() -> None:
    state.page_frame()
    st.title("Experiments")
    st.caption(
        "The questions the project started from, each answered by models trained with the project's own trainer "
        "and measured on the test set. Shipped results open instantly; each study can be recomputed here."
    )
    st.page_link(
        "app_pages/digit.py", label="Draw or upload your own digit and see where it lands", icon=":material/draw:"
    )
    for tab, section in zip(st.tabs(list(SECTIONS)), SECTIONS.values(), strict=True):
        with tab:
            section()


with state.guard():
    render()
