"""Training curves, neighbour-class heatmaps and bar charts: the figures of the Train, Class overlap and Home pages."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from vae.plots.palette import CLASS_NAMES, MODEL_COLORS, TERM_COLORS

# ---------------------------------------------------------------------------------------------
# Training curves, heatmaps, bars


def loss_curves(history: Sequence[Mapping[str, Any]], *, title: str = "", log_y: bool = False) -> go.Figure:
    """Loss terms per epoch: one colour per term, solid for train, dashed for test.

    ``history`` items look like ``{"epoch": 1, "seconds": 2.1, "train": {"loss": .., "recon": .., "kl": ..},
    "test": {...}}`` (:meth:`vae.training.trainer.EpochRecord.to_dict`). Terms are the union over all items, so an AE
    (no "kl") and a VAE both work; a term missing from an epoch leaves a gap. An empty history gives an
    empty figure with a note, so a page can show it before the first epoch ends.
    """
    fig = go.Figure()
    terms: list[str] = []
    for item in history:
        for split in ("train", "test"):
            for term in item.get(split) or {}:
                if term not in terms:
                    terms.append(term)
    # "loss" first, then the order the terms first appear in ("recon", "kl", ...).
    terms.sort(key=lambda t: t != "loss")
    epochs = [item.get("epoch", i + 1) for i, item in enumerate(history)]
    for t, term in enumerate(terms):
        color = TERM_COLORS[t % len(TERM_COLORS)]
        for split, dash in (("train", "solid"), ("test", "dash")):
            ys = [finite_or_none((item.get(split) or {}).get(term)) for item in history]
            if all(v is None for v in ys):
                continue
            fig.add_trace(
                go.Scatter(
                    x=epochs,
                    y=ys,
                    mode="lines+markers",
                    name=f"{split} {term}",
                    legendgroup=term,
                    line=dict(color=color, dash=dash, width=2),
                    marker=dict(size=5),
                    hovertemplate=f"{split} {term}<br>epoch %{{x}}: %{{y:.4g}}<extra></extra>",
                )
            )
    fig.update_layout(
        template="plotly_white",
        title=title or None,
        margin=dict(l=50, r=10, t=50 if title else 20, b=40),
        xaxis=dict(title="epoch"),
        yaxis=dict(title="per image (nats for BCE)", type="log" if log_y else "linear"),
        legend=dict(orientation="h", x=0.0, y=1.0, yanchor="bottom"),
        hovermode="x unified",
    )
    if 0 < len(epochs) < 10:
        # Whole epochs on the axis: with one epoch Plotly's own range would be 0-2 around a lone point.
        fig.update_xaxes(range=[min(epochs) - 0.5, max(epochs) + 0.5], dtick=1)
    if len(epochs) == 1 and fig.data:
        fig.add_annotation(
            text="One epoch: each point is that epoch's average, so a curve needs a second epoch<br>"
            "(the Training timeline replays the map batch by batch).",
            showarrow=False,
            x=0.5,
            y=0.5,
            xref="paper",
            yref="paper",
            font=dict(size=12, color="#777777"),
        )
    if not fig.data:
        fig.add_annotation(
            text="no training history yet",
            showarrow=False,
            x=0.5,
            y=0.5,
            xref="paper",
            yref="paper",
            font=dict(size=14, color="#777777"),
        )
    return fig


def overlap_heatmap(matrix: Any, class_names: Sequence[str] | None = None, title: str = "") -> go.Figure:
    """Class-overlap matrix ``[C, C]``: row = true class, column = class of its neighbours, values in [0, 1].

    The colour range is fixed to [0, 1] (not the data's range) so an AE and a VAE heatmap side by side use
    the same colours for the same numbers. Row 0 is at the top, as the matrix is printed.
    """
    z = _as_square(matrix, "matrix")
    names = _class_names_for(z, class_names)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=names,
            y=names,
            zmin=0.0,
            zmax=1.0,
            colorscale="Blues",
            text=_cell_text(z, "{:.2f}"),
            texttemplate="%{text}",
            hovertemplate="true %{y}, neighbour %{x}: %{z:.3f}<extra></extra>",
            colorbar=dict(thickness=12),
        )
    )
    _heatmap_layout(fig, title)
    return fig


def delta_heatmap(
    a: Any, b: Any, class_names: Sequence[str] | None = None, title: str = "", names: tuple[str, str] = ("AE", "VAE")
) -> go.Figure:
    """``a - b`` (e.g. AE minus VAE overlap) on a diverging scale centred at 0, symmetric about it.

    Red cells are where ``a`` is lower, blue where it is higher; white is no difference.
    """
    za, zb = _as_square(a, "a"), _as_square(b, "b")
    if za.shape != zb.shape:
        raise ValueError(f"a and b must have the same shape, got {list(za.shape)} and {list(zb.shape)}")
    d = za - zb
    finite = np.abs(d[np.isfinite(d)])
    # Symmetric range: equal steps either side of white. The floor keeps an all-zero delta drawable.
    bound = max(float(finite.max()) if finite.size else 0.0, 1e-6)
    label = f"{names[0]} − {names[1]}"
    fig = go.Figure(
        go.Heatmap(
            z=d,
            x=_class_names_for(d, class_names),
            y=_class_names_for(d, class_names),
            zmin=-bound,
            zmax=bound,
            zmid=0.0,
            colorscale="RdBu",
            text=_cell_text(d, "{:+.2f}"),
            texttemplate="%{text}",
            hovertemplate=f"true %{{y}}, neighbour %{{x}}: {label} = %{{z:+.3f}}<extra></extra>",
            # A one-character title over the bar: the names go in the figure's title, where they have the
            # figure's width, instead of running down beside the bar's tick labels, where a narrow column cut them.
            colorbar=dict(thickness=12, title=dict(text="Δ", side="top")),
        )
    )
    _heatmap_layout(fig, title or f"Δ = {label}")
    return fig


def class_bars(
    values: Mapping[str, Sequence[float]],
    class_labels: Sequence[str],
    colours: Mapping[str, str],
    *,
    y_title: str,
    reference: tuple[float, str] | None = None,
) -> go.Figure:
    """One group of bars per class: ``values[model]`` ``[C]`` side by side, in ``colours[model]``; ``reference``
    (value, text) draws a dotted line across, e.g. a ratio of 1."""
    fig = go.Figure(
        [
            go.Bar(
                x=list(class_labels),
                y=list(v),
                name=model,
                marker_color=colours[model],
                hovertemplate=f"{model}, digit %{{x}}: %{{y:.3f}}<extra></extra>",
            )
            for model, v in values.items()
        ]
    )
    if reference is not None:
        fig.add_hline(y=reference[0], line_dash="dot", line_color="#777777", annotation_text=reference[1])
    fig.update_layout(
        template="plotly_white",
        barmode="group",
        height=330,
        margin={"l": 40, "r": 10, "t": 20, "b": 40},
        xaxis={"title": "digit", "type": "category"},
        yaxis={"title": y_title},
        legend={"orientation": "h", "x": 0.0, "y": 1.0, "yanchor": "bottom"},
    )
    return fig


def metric_bars(
    values: Mapping[str, Mapping[str, float]],
    metric_names: Sequence[str] | Mapping[str, str],
    *,
    title: str = "",
) -> go.Figure:
    """Bars comparing models per metric: ``values[model][metric]``, one panel per metric.

    Each metric gets its own panel and y-axis because their scales differ (an MSE of 0.03 next to an
    accuracy of 0.9 would flatten one of them); within a panel the models stand side by side in the same
    colours everywhere. ``metric_names`` lists the metric keys, or maps them to display labels.
    """
    labels = dict(metric_names) if isinstance(metric_names, Mapping) else {m: m for m in metric_names}
    if not labels:
        raise ValueError("metric_names is empty")
    models = list(values)
    fig = make_subplots(rows=1, cols=len(labels), subplot_titles=list(labels.values()), horizontal_spacing=0.08)
    fallback = iter(qualitative.Safe)
    colors = {m: MODEL_COLORS.get(m.upper()) or next(fallback, "#888888") for m in models}
    for col, metric in enumerate(labels, start=1):
        for model in models:
            v = finite_or_none(values[model].get(metric))
            fig.add_trace(
                go.Bar(
                    x=[model],
                    y=[v],
                    name=model,
                    legendgroup=model,
                    showlegend=col == 1,
                    marker_color=colors[model],
                    text=["n/a" if v is None else f"{v:.3g}"],
                    textposition="outside",
                    cliponaxis=False,
                    hovertemplate=f"{model}, {labels[metric]}: %{{y:.4g}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(type="category")
    fig.update_layout(
        template="plotly_white",
        title=title or None,
        barmode="group",
        margin=dict(l=40, r=10, t=70 if title else 45, b=30),
        legend=dict(orientation="h", x=0.0, y=-0.08, yanchor="top"),
    )
    return fig


def _as_square(matrix: Any, name: str) -> np.ndarray:
    z = np.asarray(matrix, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] != z.shape[1] or z.shape[0] == 0:
        raise ValueError(f"{name} must be a square [C, C] matrix, got {list(z.shape)}")
    return z


def _class_names_for(z: np.ndarray, class_names: Sequence[str] | None) -> list[str]:
    if class_names is None:
        names = list(CLASS_NAMES[: len(z)]) if len(z) <= len(CLASS_NAMES) else [str(i) for i in range(len(z))]
    else:
        names = list(class_names)
    if len(names) != len(z):
        raise ValueError(f"need {len(z)} class names, got {len(names)}")
    return [str(n) for n in names]


def _cell_text(z: np.ndarray, fmt: str) -> list[list[str]]:
    return [[fmt.format(v) if np.isfinite(v) else "" for v in row] for row in z]


def _heatmap_layout(fig: go.Figure, title: str) -> None:
    fig.update_layout(
        template="plotly_white",
        title=title or None,
        margin=dict(l=50, r=10, t=50 if title else 20, b=45),
        # "category": digit names would otherwise be read as numbers and spaced on a numeric axis.
        xaxis=dict(title="neighbour class", type="category", side="bottom", constrain="domain"),
        # Reversed so row 0 is on top, as the matrix is written; square cells.
        yaxis=dict(title="true class", type="category", autorange="reversed", scaleanchor="x", constrain="domain"),
    )


def finite_or_none(value: Any) -> float | None:
    """``value`` as a float, or None when it is missing or not finite: a gap in a plotted line, never a 0."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
