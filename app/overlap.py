"""The Class overlap page's numbers and the paragraph that reads them (``app_pages/overlap.py`` lays them out).

:func:`measure` gathers one model's cached numbers (``app/analysis.py``) on the test set; :func:`story`
words what they show, each claim conditional on the measured values and their tolerances.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st
from plotly.colors import qualitative

from app import analysis, cache
from app.views import chosen_view
from vae.plots.palette import CLASS_NAMES, MODEL_COLORS
from vae.projections import view_label
from vae.store import StoredModel

SUBSET = "test"  # 10,000 points: every metric here is a few seconds at most

METRICS = {
    "knn_accuracy": "kNN-5 leave-one-out, test codes (latent)",
    "knn_accuracy_2d": "kNN-5 leave-one-out, test codes (2-D view)",
    "silhouette": "silhouette (latent)",
    "trustworthiness": "trustworthiness of the 2-D view",
    "mean_purity": "mean purity",
    "separation": "median separation ratio",
    "coverage": "filled cells of the 2-D view",
}
# Shorter names for the bar chart's panel titles, which have a seventh of the page's width each.
BAR_LABELS = {
    "knn_accuracy": "kNN-5 LOO (latent)",
    "knn_accuracy_2d": "kNN-5 LOO (2-D view)",
    "silhouette": "silhouette",
    "trustworthiness": "trustworthiness",
    "mean_purity": "mean purity",
    "separation": "separation ratio",
    "coverage": "filled cells",
}
DENSITY = {
    "separation_ratio": "separation ratio (gap to nearest class ÷ own radius)",
    "spread": "spread (mean distance to the class centroid)",
    "nn_distance": "median distance to the nearest same-class point",
}
# Differences smaller than these are reported as "about the same" in the text.
KNN_TOLERANCE = 0.01  # one point: about two standard errors of a difference at 80 % on 10,000 images
RATIO_TOLERANCE = 0.05  # relative
COVERAGE_TOLERANCE = 0.02


@dataclass(frozen=True)
class Measured:
    """One model's numbers on the test set."""

    role: str  # "left", "right" or "baseline"
    stored: StoredModel
    label: str  # column name: the model's name, plus the role if both sides show the same model
    method: str  # the 2-D view the view-based numbers use
    report: dict[str, float]
    matrix: np.ndarray  # [10, 10]
    density: dict[str, np.ndarray]

    @property
    def kind(self) -> str:
        return self.stored.config.kind

    @property
    def dim(self) -> int:
        return self.stored.config.latent_dim

    @property
    def separation(self) -> float:
        return float(np.nanmedian(self.density["separation_ratio"]))

    @property
    def view_text(self) -> str:
        if self.dim == 2:
            return "its own 2-D latent"
        return f"{view_label(self.method)} view of its {self.dim}-D latent"


def measure(role: str, stored: StoredModel, label: str, method: str) -> Measured:
    path, sha, data = str(stored.path), stored.weights_sha256, str(cache.data_dir())
    chosen = chosen_view(method, stored.config.latent_dim)
    with st.spinner(f"Measuring class overlap of {stored.name} on the 10,000 test images…"):
        cache.view(path, sha, SUBSET, data, chosen)  # fitted here (with its own spinner), not in a cached call
        report = dict(analysis.report(path, sha, SUBSET, data, chosen))
        report["coverage"] = analysis.coverage(path, sha, SUBSET, data, chosen)
        matrix = analysis.overlap(path, sha, SUBSET, data)
        density = analysis.density(path, sha, SUBSET, data)
    report["separation"] = float(np.nanmedian(density["separation_ratio"]))
    return Measured(role, stored, label, chosen, report, matrix, density)


def colours(measured: list[Measured]) -> dict[str, str]:
    """The usual AE / VAE / PCA colours when the kinds differ, else distinct colours per model."""
    kinds = [m.kind for m in measured]
    if len(set(kinds)) == len(kinds):
        return {m.label: MODEL_COLORS[m.kind.upper()] for m in measured}
    return {m.label: colour for m, colour in zip(measured, qualitative.Safe)}


def metrics_table(measured: list[Measured], left: Measured, right: Measured) -> pd.DataFrame:
    table = pd.DataFrame({m.label: [m.report[key] for key in METRICS] for m in measured}, index=list(METRICS.values()))
    table[f"Δ {left.label} − {right.label}"] = table[left.label] - table[right.label]
    table.index.name = "metric"
    return table


def confused_pairs(matrix: np.ndarray, top: int = 3, names: tuple[str, ...] = CLASS_NAMES) -> str:
    """The largest off-diagonal shares, e.g. "4→9 0.21, 9→4 0.18, 3→5 0.12"."""
    off = np.array(matrix, dtype=np.float64)
    np.fill_diagonal(off, np.nan)
    order = np.argsort(np.nan_to_num(off, nan=-1.0), axis=None)[::-1][:top]
    return ", ".join(f"{names[r]}→{names[c]} {off[r, c]:.2f}" for r, c in zip(*np.unravel_index(order, off.shape)))


# ---------------------------------------------------------------------------------------------
# The paragraph: every claim is conditional on the numbers measured above.


def _compare(a: float, b: float, tolerance: float, relative: bool = False) -> int:
    """-1 if a is clearly below b, 1 if clearly above, 0 if within ``tolerance`` (absolute or relative)."""
    if not (np.isfinite(a) and np.isfinite(b)):
        return 0
    margin = tolerance * max(abs(a), abs(b)) if relative else tolerance
    return -1 if a < b - margin else 1 if a > b + margin else 0


def prior_radius(dim: int, mass: float = 0.99) -> float:
    """Radius of the ball around the origin holding ``mass`` of N(0, I) in ``dim`` dimensions (chi quantile)."""
    from scipy.stats import chi2

    return float(np.sqrt(chi2.ppf(mass, dim)))


def _kl_story(vae: Measured, ae: Measured) -> str:
    v, a = f"**{vae.stored.name}**", f"**{ae.stored.name}**"
    p99_v, p99_a = float(vae.density["norm_p99"]), float(ae.density["norm_p99"])
    text = (
        f"The VAE's KL term charges every code for straying from N(0, I), which pushes {v} to fit all ten digits "
        f"into a few units around the origin, while the AE {a} may put them anywhere. Measured: 99 % of {v}'s "
        f"test codes lie within {p99_v:.1f} units of the origin (the prior itself puts 99 % within "
        f"{prior_radius(vae.dim):.1f}), against {p99_a:.1f} for {a}"
    )
    if vae.dim != ae.dim:
        text += f" (a {ae.dim}-D latent against a {vae.dim}-D one, so the radii are not directly comparable). "
    elif p99_v < p99_a:
        text += ": the VAE's space is the more compact one. "
    else:
        text += ": so here the VAE's codes are not the more compact ones. "
    r_v, r_a = vae.separation, ae.separation
    text += (
        f"Packing classes that close should cost separation: the median separation ratio (distance to the nearest "
        f"other class's centroid ÷ the class's own radius, free of the latent's scale) is {r_v:.2f} for {v} and "
        f"{r_a:.2f} for {a}"
    )
    text += {
        -1: ", so the VAE's classes do sit closer together for their size, as the KL term predicts. ",
        1: ", so, against the usual story, the VAE keeps its classes further apart for their size than the AE: "
        "the AE has blown its classes up at least as much as it has pushed them apart. ",
        0: ", about the same: here the KL term does not visibly crowd the classes. ",
    }[_compare(r_v, r_a, RATIO_TOLERANCE, relative=True)]
    k_v, k_a = vae.report["knn_accuracy"], ae.report["knn_accuracy"]
    text += f"kNN-5 accuracy in the latent space is {k_v:.1%} for {v} against {k_a:.1%} for {a}"
    text += {
        -1: ": a VAE code's nearest neighbours are more often another digit. ",
        1: ": even so, the VAE's neighbours agree more often, so the crowding does not cost it accuracy "
        "point by point. ",
        0: ": no real difference point by point. ",
    }[_compare(k_v, k_a, KNN_TOLERANCE)]
    if vae.dim != ae.dim:
        text += "(More latent dimensions leave more room between classes, which favours the larger latent here.) "
    c_v, c_a = vae.report["coverage"], ae.report["coverage"]
    grid = f"{analysis.COVERAGE_CELLS} × {analysis.COVERAGE_CELLS}"
    if "umap" in (vae.method, ae.method):
        text += (
            "In return the KL term should leave no holes, but a UMAP picture opens gaps between clusters by design, "
            "so holes are not compared through it: pick the PCA view for that. "
        )
        return text
    text += (
        f"In return the KL term should leave no holes: {c_v:.0%} of a {grid} grid over the middle of {v}'s "
        f"picture ({vae.view_text}) holds a test code, against {c_a:.0%} for {a}'s ({ae.view_text})"
    )
    text += {
        1: ", so between the VAE's classes there is less empty space whose decoding nobody trained. ",
        -1: ", so here it is the AE's picture that has fewer holes. ",
        0: ", about as full. ",
    }[_compare(c_v, c_a, COVERAGE_TOLERANCE)]
    return text


def _same_kind_story(left: Measured, right: Measured) -> str:
    left_name, right_name = f"**{left.stored.name}**", f"**{right.stored.name}**"
    kind = left.kind.upper()
    text = (
        f"Both models are {kind}s, so the KL term alone cannot explain their difference. "
        if left.kind == "vae"
        else "Neither model has a KL term, so nothing pulls their codes towards the origin; any crowding comes "
        "from the architecture and the training. "
    )
    if left.kind == right.kind == "vae" and left.stored.config.beta != right.stored.config.beta:
        hi, lo = sorted((left, right), key=lambda m: m.stored.config.beta, reverse=True)
        text += (
            f"{hi.stored.name} has the larger β ({hi.stored.config.beta:g} against {lo.stored.config.beta:g}), "
            "which pulls harder towards N(0, I)"
        )
        text += {
            -1: ", and its classes are indeed closer together for their size "
            f"(median separation ratio {hi.separation:.2f} against {lo.separation:.2f}). ",
            1: f", yet its classes are further apart for their size ({hi.separation:.2f} against "
            f"{lo.separation:.2f}). ",
            0: f"; their separation ratios are about the same ({hi.separation:.2f} and {lo.separation:.2f}). ",
        }[_compare(hi.separation, lo.separation, RATIO_TOLERANCE, relative=True)]
    else:
        better = {
            -1: f"{right_name} keeps its classes further apart for their size",
            1: f"{left_name} keeps its classes further apart for their size",
            0: "they keep their classes about equally far apart for their size",
        }
        text += (
            f"Median separation ratio {left.separation:.2f} for {left_name} and {right.separation:.2f} for {right_name}: "
            f"{better[_compare(left.separation, right.separation, RATIO_TOLERANCE, relative=True)]}. "
        )
    k_l, k_r = left.report["knn_accuracy"], right.report["knn_accuracy"]
    text += f"kNN-5 accuracy in the latent space is {k_l:.1%} for {left_name} and {k_r:.1%} for {right_name}. "
    if left.dim != right.dim:
        text += (
            f"The latents differ in size ({left.dim}-D and {right.dim}-D): more dimensions leave more room between "
            "classes, so compare kNN accuracy in the 2-D views too. "
        )
    return text


def _baseline_story(baseline: Measured, left: Measured, right: Measured) -> str:
    p = f"**{baseline.stored.name}**"
    k_p = baseline.report["knn_accuracy"]
    text = (
        f"{p} shows what a linear map to {baseline.dim} dimensions gets: kNN-5 accuracy {k_p:.1%}, median "
        f"separation ratio "
        f"{baseline.separation:.2f}"
    )
    models = [m for m in {left.stored.path: left, right.stored.path: right}.values()]
    beat = [m for m in models if _compare(m.report["knn_accuracy"], k_p, KNN_TOLERANCE) > 0]
    if len(beat) == len(models):
        text += "; " + (" and ".join(f"**{m.stored.name}**" for m in models)) + " separate the digits better than that."
    elif beat:
        others = [m for m in models if m not in beat]
        text += (
            f"; **{beat[0].stored.name}** separates the digits better than that, **{others[0].stored.name}** does not."
        )
    else:
        text += "; neither non-linear model separates the digits better than that on kNN accuracy here."
    return text


def story(left: Measured, right: Measured, baseline: Measured | None) -> str:
    """One paragraph reading the measured numbers; it only claims what they show."""
    if left.stored.path == right.stored.path:
        text = f"Both sides show **{left.stored.name}**: pick two different models in the sidebar to compare them. "
    elif {left.kind, right.kind} == {"ae", "vae"}:
        vae, ae = (left, right) if left.kind == "vae" else (right, left)
        text = _kl_story(vae, ae)
    else:
        text = _same_kind_story(left, right)
    if baseline is not None:
        text += _baseline_story(baseline, left, right)
    return text.strip()
