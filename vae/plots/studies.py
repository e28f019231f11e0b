"""Figures for the Experiments page: small multiples of 2-D maps and metric curves across a study.

Plain functions over :class:`vae.studies.runner.StudyResult` rows and arrays, no Streamlit, so tests call them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from vae.plots.charts import finite_or_none
from vae.plots.palette import CLASS_NAMES, DIGIT_COLORS

# One colour per model family, the same in every curve of the page.
# PCA is drawn wide and pale under the others: the linear AE's line lies exactly on it, and both must show.
FAMILY_LINES: dict[str, dict[str, Any]] = {"PCA": {"width": 7}, "linear AE": {"dash": "dot", "width": 2.5}}
FAMILY_COLORS: dict[str, str] = {
    "PCA": "#7F7F7F",
    "linear AE": "#9467BD",
    "dense AE": "#4C78A8",
    "tied AE": "#72B7B2",
    "VAE": "#E45756",
    "AE": "#4C78A8",
    "dense": "#4C78A8",
    "conv": "#F58518",
    "invertible AE": "#54A24B",
    "class-aware AE (labels)": "#B279A2",
    "UMAP encoder, decoupled decoder": "#F58518",
    "UMAP + AE, joint": "#54A24B",
    "UMAP, decoupled decoder": "#F58518",  # the paper's name for it
}


# Room a vertical legend of marker traces takes in Plotly at its default font (measured in Chromium: 29 px
# an entry, its title and the top margin above the first), for the figure to be made tall enough.
LEGEND_ITEM = 30
LEGEND_TOP = 70


def maps_grid(
    maps: Mapping[str, np.ndarray],
    labels: np.ndarray,
    titles: Mapping[str, str] | None = None,
    *,
    columns: int = 3,
    class_names: Sequence[str] | None = None,
    height_per_row: int = 300,
) -> go.Figure:
    """Small multiples: one 2-D map ``[M, 2]`` per entry of ``maps``, coloured by ``labels [M]``.

    Each panel keeps its own axes (an AE's codes span +-30 where a VAE's stay within +-3: a shared scale
    would squash one of them) and an equal aspect, so shapes are not distorted. One legend entry per
    class toggles that class in every panel at once.
    """
    if not maps:
        raise ValueError("maps is empty")
    names = tuple(CLASS_NAMES if class_names is None else class_names)
    labels = np.asarray(labels)
    keys = list(maps)
    for key in keys:
        if np.asarray(maps[key]).shape != (len(labels), 2):
            raise ValueError(f"map {key!r} must have shape [{len(labels)}, 2], got {list(np.shape(maps[key]))}")
    columns = max(1, min(columns, len(keys)))
    rows = math.ceil(len(keys) / columns)
    titles = titles or {}
    fig = make_subplots(
        rows=rows,
        cols=columns,
        subplot_titles=[titles.get(k, k) for k in keys],
        horizontal_spacing=0.06,
        vertical_spacing=0.2 / rows,
    )
    for n, key in enumerate(keys):
        row, col = divmod(n, columns)
        points = np.asarray(maps[key], dtype=np.float32)
        for c, name in enumerate(names):
            mask = labels == c
            fig.add_trace(
                # SVG, not WebGL: plotly.js clips WebGL traces of lower subplot rows whose axes have an equal
                # aspect (seen in Chromium); a few thousand points per panel draw fast enough either way.
                go.Scatter(
                    x=points[mask, 0],
                    y=points[mask, 1],
                    mode="markers",
                    name=name,
                    legendgroup=name,
                    showlegend=n == 0,
                    marker=dict(size=3, opacity=0.6, color=DIGIT_COLORS[c % len(DIGIT_COLORS)]),
                    hovertemplate=f"{name}<br>(%{{x:.2f}}, %{{y:.2f}})<extra>{titles.get(key, key)}</extra>",
                ),
                row=row + 1,
                col=col + 1,
            )
        axis = "" if n == 0 else str(n + 1)
        fig.update_yaxes(scaleanchor=f"x{axis}", scaleratio=1, row=row + 1, col=col + 1)
    fig.update_xaxes(showticklabels=True, zeroline=False)
    fig.update_yaxes(zeroline=False)
    fig.update_layout(
        # The legend on the right, clear of the panels' titles along the top; the figure at least as tall as
        # the legend, which Plotly would otherwise cut (a single row of panels hid the last classes).
        template="plotly_white",
        height=max(height_per_row * rows + 40, LEGEND_TOP + LEGEND_ITEM * len(names) + 20),
        margin=dict(l=30, r=10, t=40, b=20),
        legend=dict(itemsizing="constant", title="class"),
    )
    return fig


def metric_curves(
    rows: Sequence[Mapping[str, Any]],
    x: str,
    metrics: Mapping[str, str],
    *,
    group: str = "family",
    log_x: bool = False,
    log_y: bool = False,
    title: str = "",
    x_title: str | None = None,
) -> go.Figure:
    """One panel per metric (``metrics``: row key -> panel title), one line per ``group`` value, against ``x``.

    Missing or non-finite values are left as gaps, not drawn as zero (and, with ``log_y``, so are values <= 0).
    """
    if not metrics:
        raise ValueError("metrics is empty")
    groups = list(dict.fromkeys(row[group] for row in rows))
    fallback = iter(qualitative.Safe)
    colors = {g: FAMILY_COLORS.get(g) or next(fallback, "#888888") for g in groups}
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=list(metrics.values()), horizontal_spacing=0.07)
    for col, metric in enumerate(metrics, start=1):
        for g in groups:
            members = sorted((row for row in rows if row[group] == g), key=lambda row: row[x])
            ys = [finite_or_none(row.get(metric)) for row in members]
            if log_y:
                ys = [y if y is not None and y > 0 else None for y in ys]
            if all(y is None for y in ys):
                continue
            fig.add_trace(
                go.Scatter(
                    x=[row[x] for row in members],
                    y=ys,
                    mode="lines+markers",
                    name=g,
                    legendgroup=g,
                    showlegend=col == 1,
                    line=dict(color=colors[g], **FAMILY_LINES.get(g, {})),
                    opacity=0.45 if g == "PCA" else 1.0,
                    hovertemplate=f"{g}<br>{x} %{{x}}<br>{metrics[metric]} %{{y:.4g}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(title=x_title or x, type="log" if log_x else "linear")
    if log_y:
        fig.update_yaxes(type="log", exponentformat="power")
    if log_x:  # label the measured sizes themselves, not 10^0.5
        values = sorted({row[x] for row in rows})
        fig.update_xaxes(tickvals=values, ticktext=[f"{v:g}" for v in values])
    fig.update_layout(
        template="plotly_white",
        title=title or None,
        height=330,
        margin=dict(l=40, r=10, t=70 if title else 45, b=40),
        legend=dict(orientation="h", x=0.0, y=-0.25, yanchor="top"),
    )
    return fig


def filter_mosaic(bank: Any, columns: int = 16, gap: int = 1) -> np.ndarray:
    """Filters ``[K, k, k]`` (or ``[K, k * k]`` with square k * k) -> one float ``[rows * (k + gap) - gap, ...]``
    image with NaN gaps, each filter divided by its largest |weight| so its sign pattern shows in [-1, 1]."""
    filters = np.asarray(bank, dtype=np.float64)
    if filters.ndim == 2:
        side = math.isqrt(filters.shape[1])
        if side * side != filters.shape[1]:
            raise ValueError(f"filters of {filters.shape[1]} weights are not square")
        filters = filters.reshape(len(filters), side, side)
    if filters.ndim != 3 or not len(filters):
        raise ValueError(f"filters must have shape [K, k, k], got {list(filters.shape)}")
    k = filters.shape[1]
    columns = max(1, min(columns, len(filters)))
    rows = math.ceil(len(filters) / columns)
    out = np.full((rows * (k + gap) - gap, columns * (k + gap) - gap), np.nan)
    for i, tile in enumerate(filters):
        r, c = divmod(i, columns)
        scale = np.abs(tile).max()
        out[r * (k + gap) : r * (k + gap) + k, c * (k + gap) : c * (k + gap) + k] = tile / scale if scale else tile
    return out


def filter_banks(banks: Mapping[str, Any], *, columns: int = 16, height_per_row: int = 70) -> go.Figure:
    """One mosaic per filter bank (``banks``: title -> ``[K, k, k]``), stacked, blue negative and red positive."""
    if not banks:
        raise ValueError("banks is empty")
    mosaics = {title: filter_mosaic(bank, columns) for title, bank in banks.items()}
    heights = [m.shape[0] for m in mosaics.values()]
    fig = make_subplots(
        rows=len(mosaics),
        cols=1,
        subplot_titles=list(mosaics),
        row_heights=heights,
        vertical_spacing=0.3 / len(mosaics),
    )
    for row, mosaic in enumerate(mosaics.values(), start=1):
        fig.add_trace(
            go.Heatmap(
                z=mosaic,
                zmin=-1,
                zmax=1,
                colorscale="RdBu",
                reversescale=True,
                showscale=row == 1,
                colorbar=dict(title="weight / max", len=0.5),
                hoverongaps=False,
                hovertemplate="%{z:.2f}<extra></extra>",
            ),
            row=row,
            col=1,
        )
        fig.update_yaxes(
            autorange="reversed", scaleanchor=f"x{'' if row == 1 else row}", showticklabels=False, row=row, col=1
        )
        fig.update_xaxes(showticklabels=False, row=row, col=1)
    total_rows = sum(math.ceil(len(np.asarray(bank)) / columns) for bank in banks.values())
    fig.update_layout(
        template="plotly_white",
        height=height_per_row * total_rows + 60 * len(mosaics),
        margin=dict(l=10, r=10, t=40, b=10),
    )
    return fig


def tradeoff_scatter(
    rows: Sequence[Mapping[str, Any]],
    *,
    references: Mapping[str, tuple[float, float]] | None = None,
    targets: tuple[float, float] | None = None,
    title: str = "",
) -> go.Figure:
    """kNN-5 accuracy against MSE per pixel, one filled marker per row (named by its family in the legend), the
    ``references`` (name -> (kNN-5, MSE), e.g. a paper's numbers) as open markers in the colour of the family
    of that name, and the ``targets`` (kNN-5, MSE) as dotted lines: the better corner is top left.

    Markers carry no text: the models sit close together, and the legend and hover name them without overlap.
    """
    fig = go.Figure()
    for row in rows:
        x, y = finite_or_none(row.get("test_mse_per_pixel")), finite_or_none(row.get("knn5_accuracy"))
        if x is None or y is None:
            continue
        fig.add_trace(
            go.Scatter(
                x=[x],
                y=[y],
                mode="markers",
                name=row["family"],
                marker=dict(
                    size=13, color=FAMILY_COLORS.get(row["family"], "#444444"), line=dict(width=1, color="white")
                ),
                hovertemplate=f"{row['family']}<br>MSE %{{x:.4f}}<br>kNN-5 %{{y:.4f}}<extra></extra>",
            )
        )
    for name, (knn, mse) in (references or {}).items():
        fig.add_trace(
            go.Scatter(
                x=[mse],
                y=[knn],
                mode="markers",
                name=f"paper: {name}",
                marker=dict(size=12, symbol="circle-open", color=FAMILY_COLORS.get(name, "#555555"), line_width=2.5),
                hovertemplate=f"paper: {name}<br>MSE %{{x:.4f}}<br>kNN-5 %{{y:.4f}}<extra></extra>",
            )
        )
    if targets is not None:
        knn, mse = targets
        fig.add_hline(
            y=knn,
            line_dash="dot",
            line_color="#777777",
            annotation_text=f"kNN-5 target {knn}",
            annotation_position="bottom right",
        )
        fig.add_vline(
            x=mse,
            line_dash="dot",
            line_color="#777777",
            annotation_text=f"MSE target {mse}",
            annotation_position="bottom right",
        )
    fig.update_layout(
        template="plotly_white",
        title=title or None,
        height=460,
        showlegend=True,
        legend=dict(title="filled: this study; open: the paper"),
        xaxis_title="MSE per pixel (test, lower is better)",
        yaxis_title="kNN-5 accuracy (test, higher is better)",
        margin=dict(l=50, r=20, t=50 if title else 20, b=50),
    )
    return fig


def active_units_figure(
    by_beta: Sequence[Mapping[str, Any]],
    dimensions: Any = None,
    dimensions_title: str = "",
    threshold: float = 0.01,
) -> go.Figure:
    """Left: the active units of each beta's model (``by_beta``: ``vae.studies.beta.active_units_by_beta``), out
    of its latent size. Right, when ``dimensions`` is given (a ``vae.metrics.latent_dimensions`` table, in the
    order to draw): each dimension's variance of its posterior mean on a log axis, active ones in the VAE's
    colour, with the ``threshold`` (Burda et al.'s 0.01) as a dashed line."""
    if not by_beta:
        raise ValueError("by_beta is empty")
    panels = 1 if dimensions is None else 2
    fig = make_subplots(
        rows=1,
        cols=panels,
        column_widths=[0.4, 0.6][:panels] if panels == 2 else None,
        subplot_titles=["active units per β (of D)", dimensions_title][:panels],
        horizontal_spacing=0.1,
    )
    labels = [f"β = {row['beta']:g}" for row in by_beta]
    fig.add_trace(
        go.Bar(
            x=labels,
            y=[row["active_units"] for row in by_beta],
            text=[f"{row['active_units']} of {row['latent_dim']}" for row in by_beta],
            textposition="inside",
            marker_color=FAMILY_COLORS["VAE"],
            name="active units",
            showlegend=False,
            hovertemplate="%{x}: %{text} dimensions active<extra></extra>",
        ),
        row=1,
        col=1,
    )
    fig.update_yaxes(range=[0, max(row["latent_dim"] for row in by_beta)], dtick=1, row=1, col=1)
    if dimensions is not None:
        names = [f"z{int(d)}" for d in dimensions["dim"]]
        active = [bool(a) for a in dimensions["active"]]
        fig.add_trace(
            go.Bar(
                x=names,
                y=[float(v) for v in dimensions["variance"]],
                marker_color=[FAMILY_COLORS["VAE"] if a else "#BBBBBB" for a in active],
                customdata=[float(k) for k in dimensions["kl"]],
                name="variance of the posterior mean",
                showlegend=False,
                hovertemplate="%{x}: variance %{y:.3g}, KL %{customdata:.2f} nats<extra></extra>",
            ),
            row=1,
            col=2,
        )
        fig.add_hline(y=threshold, line_dash="dash", line_color="#555555", row=1, col=2)
        fig.update_yaxes(type="log", exponentformat="power", title="variance over the test images", row=1, col=2)
        fig.update_xaxes(type="category", row=1, col=2)
    fig.update_layout(template="plotly_white", height=300, margin=dict(l=40, r=10, t=45, b=40))
    return fig
