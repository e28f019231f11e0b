"""Plotly figures and images for the dashboard, built by plain functions so tests can call them.

Nothing here imports Streamlit: the pages pass these figures to ``st.plotly_chart`` and hand the selection
it returns back to :func:`parse_selection` / :func:`parse_box`.

- :func:`latent_scatter`: codes ``[N, 2]`` coloured by class, one trace per class, plus optional overlays
  (click grid, highlight, interpolation path, posterior ellipses, prior contours).
- :class:`ClickGrid`: invisible markers covering the plane, so a click on empty space still reports where
  it landed (Streamlit only reports clicks on drawn points).
- :func:`parse_selection`, :func:`parse_box`, :func:`selected_indices`: read Streamlit's selection dict.
- Images: :func:`to_uint8_image`, :func:`upscale`, :func:`strip`, :func:`tile_grid`, :func:`to_png_bytes`.
- :func:`loss_curves`, :func:`overlap_heatmap`, :func:`delta_heatmap`, :func:`metric_bars`.

How a click travels (checked against plotly.js 3.8.2 as bundled by Streamlit 1.67, see ``tests/test_plots.py``):
with ``clickmode="event+select"`` a click selects the point plotly.js is *hovering*, i.e. the closest point of
any trace whose ``hoverinfo`` is not ``"skip"``. Marker opacity plays no part in that hit test, so the grid
can be fully transparent; ``hoverinfo="none"`` hides its label but keeps it hoverable (``"skip"`` would
not). The overlays use ``"skip"`` so that clicking a highlight ring reaches the data point under it.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

# D3's category10: ten colours that stay distinct on white; both scatter plots and every per-class
# figure index into this one tuple, so "3" is the same green everywhere.
DIGIT_COLORS: tuple[str, ...] = tuple(qualitative.D3)
CLASS_NAMES: tuple[str, ...] = tuple(str(d) for d in range(10))

# Model colours for bar charts, deliberately outside DIGIT_COLORS' meaning (these are models, not classes).
MODEL_COLORS: dict[str, str] = {"AE": "#4C78A8", "VAE": "#E45756", "PCA": "#9D9D9D"}
TERM_COLORS: tuple[str, ...] = tuple(qualitative.Dark2)

# How the click grid is recognised in a selection. Streamlit strips each point's trace data but keeps
# ``legendgroup`` and ``customdata``; the grid sets both, and is also the first trace (curve 0).
GRID_NAME = "grid"
GRID_GROUP = "__click_grid__"
GRID_INDEX = -1  # customdata of every grid point; dataset indices are >= 0

_MARKER_SIZE = 4
_MARKER_OPACITY = 0.7
PRIOR_RADII = (1, 2, 3)


def _no_dim(text_color: str = "black") -> dict[str, Any]:
    """Trace styles that keep an overlay's look whether or not its points are selected.

    Once a click selects a point, plotly.js fades the markers and text of every *unselected* point of
    every trace. Overlays mark the selection themselves, so they must not fade with the rest.
    """
    return {
        "selected": {"marker": {"opacity": 1.0}, "textfont": {"color": text_color}},
        "unselected": {"marker": {"opacity": 1.0}, "textfont": {"color": text_color}},
    }


# ---------------------------------------------------------------------------------------------
# Latent scatter


@dataclass(frozen=True)
class ClickGrid:
    """An ``n`` x ``n`` lattice of invisible, clickable points over ``x_range`` x ``y_range``.

    Points are ordered like :meth:`points`: x varies fastest and y *increases* with the row ``k // n``;
    :func:`tile_grid` expects images in this order (it flips the rows so the highest y is on top).
    """

    x_range: tuple[float, float]
    y_range: tuple[float, float]
    # 60 per side puts a grid point within ~6 px of any click on a ~500 px plot.
    n: int = 60

    def __post_init__(self) -> None:
        for name in ("x_range", "y_range"):
            lo, hi = (float(v) for v in getattr(self, name))
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError(f"{name} must be two finite numbers with lo < hi, got {getattr(self, name)!r}")
            object.__setattr__(self, name, (lo, hi))
        if isinstance(self.n, bool) or not isinstance(self.n, int) or not 2 <= self.n <= 1000:
            raise ValueError(f"n must be an integer from 2 to 1000, got {self.n!r}")

    @classmethod
    def covering(cls, points: Any, n: int = 60, margin: float = 0.05) -> ClickGrid:
        """The grid spanning ``points`` ``[N, 2]`` plus ``margin`` (a fraction of each side's span) all round."""
        pts = _as_points(points, "points")
        if len(pts) == 0:
            raise ValueError("points is empty: cannot size a click grid")
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin!r}")
        lo, hi = pts.min(0).astype(np.float64), pts.max(0).astype(np.float64)
        # A single point (or a line of them) has no span: give it a unit one rather than fail.
        span = np.where(hi > lo, hi - lo, 1.0)
        lo, hi = lo - margin * span, hi + margin * span
        lo, hi = np.where(hi > lo, lo, lo - 0.5), np.where(hi > lo, hi, hi + 0.5)
        return cls((float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1])), n)

    @classmethod
    def square(cls, points: Any, n: int = 60, margin: float = 0.05) -> ClickGrid:
        """The smallest square grid, centred on ``points``' box, that :meth:`covering` would contain.

        With equal axis scales a plot shows a square of latent space; a square grid drawn as the axis
        ranges makes the visible plane and the clickable plane the same, corners included.
        """
        box = cls.covering(points, n=n, margin=margin)
        half = max(box.x_range[1] - box.x_range[0], box.y_range[1] - box.y_range[0]) / 2
        cx, cy = sum(box.x_range) / 2, sum(box.y_range) / 2
        return cls((cx - half, cx + half), (cy - half, cy + half), n)

    def axes(self) -> tuple[np.ndarray, np.ndarray]:
        """(xs ``[n]``, ys ``[n]``), both increasing."""
        return np.linspace(*self.x_range, self.n), np.linspace(*self.y_range, self.n)

    def points(self) -> np.ndarray:
        """float64 ``[n * n, 2]``; point ``k`` is ``(xs[k % n], ys[k // n])``."""
        xs, ys = self.axes()
        gx, gy = np.meshgrid(xs, ys)  # [n, n] each, row = y index
        return np.stack([gx.ravel(), gy.ravel()], axis=1)


def latent_scatter(
    points: Any,
    labels: Any,
    *,
    title: str = "",
    indices: Any = None,
    class_names: Sequence[str] | None = None,
    grid: ClickGrid | None = None,
    highlight: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    path: Any = None,
    ellipses: tuple[Any, Any] | None = None,
    prior_contours: bool = False,
    uirevision: Any = None,
    dragmode: str = "zoom",
) -> go.Figure:
    """Scatter of codes ``[N, 2]`` coloured by ``labels`` int ``[N]``, with the click machinery the pages need.

    Traces, bottom to top (later traces draw over earlier ones):

    1. ``grid`` (optional, always curve 0): transparent markers, ``customdata`` :data:`GRID_INDEX`.
    2. One ``Scattergl`` per class in ``class_names`` order, present classes or not, so curve numbers,
       colours and legend entries match between two plots; ``customdata`` = ``indices`` (the dataset index
       of each point, default ``arange(N)``).
    3. Overlays, also ``Scattergl`` (the plotly.js that Streamlit bundles draws SVG traces *under* the WebGL
       canvas, where a dense cloud hides them), all ``hoverinfo="skip"`` (not clickable): prior contours, posterior ellipses
       (``ellipses=(means [M, 2], sigmas [M, 2])``, each mean +- sigma), the interpolation ``path``
       ``[K, 2]`` with its start and end marked, and ``highlight``: ``{"point": (x, y), "label": str,
       "kind": "ring" | "cross"}`` or a list of them (a ring for the selected image, a cross for a clicked
       empty spot).

    ``uirevision`` is copied to the layout: pass the same value on every rerun to keep zoom, pan and legend
    state. Clicking works in any ``dragmode``; "zoom" keeps drag-to-zoom, the most used gesture on a dense
    cloud. The box-select tool only shows when Streamlit's ``selection_mode`` includes ``"box"``.
    """
    names = tuple(CLASS_NAMES if class_names is None else class_names)
    if not names:
        raise ValueError("class_names is empty")
    pts = _as_points(points, "points")
    lab = np.asarray(labels)
    if lab.shape != (len(pts),):
        raise ValueError(f"labels must have shape [{len(pts)}], got {list(lab.shape)}")
    if lab.size and (not np.issubdtype(lab.dtype, np.integer) or lab.min() < 0 or lab.max() >= len(names)):
        raise ValueError(f"labels must be integers from 0 to {len(names) - 1}")
    idx = np.arange(len(pts)) if indices is None else np.asarray(indices)
    if idx.shape != (len(pts),) or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise ValueError(f"indices must be integers of shape [{len(pts)}], got {idx.dtype} {list(idx.shape)}")
    if idx.size and idx.min() < 0:
        raise ValueError("indices must be >= 0 (negative customdata marks the click grid)")

    fig = go.Figure()
    if grid is not None:
        fig.add_trace(_grid_trace(grid))

    # float32 is ample for screen positions and halves the base64 payload plotly.py 6+ sends for arrays.
    xy = pts.astype(np.float32)
    for c, name in enumerate(names):
        mask = lab == c
        fig.add_trace(
            go.Scattergl(
                x=xy[mask, 0],
                y=xy[mask, 1],
                # A plain list, not a numpy array: plotly.py would send a typed array, and plotly.js's
                # scattergl hover only indexes customdata that is a plain Array.
                customdata=idx[mask].tolist(),
                mode="markers",
                name=name,
                legendgroup=name,
                uid=f"class-{c}",  # keeps legend toggles attached to the class across reruns
                marker=dict(size=_MARKER_SIZE, opacity=_MARKER_OPACITY, color=DIGIT_COLORS[c % len(DIGIT_COLORS)]),
                # Clicking selects a point, and plotly.js would then dim every other point; the pages mark
                # the selection with a highlight instead, so both states keep the normal look.
                selected=dict(marker=dict(opacity=_MARKER_OPACITY)),
                unselected=dict(marker=dict(opacity=_MARKER_OPACITY)),
                hovertemplate=(
                    f"class {_escape_template(name)}<br>index %{{customdata}}"
                    "<br>(%{x:.2f}, %{y:.2f})<extra></extra>"
                ),
            )
        )

    for trace in overlay_traces(highlight=highlight, path=path, ellipses=ellipses, prior_contours=prior_contours):
        fig.add_trace(trace)

    fig.update_layout(
        template="plotly_white",
        title=dict(text=title, x=0.0, xanchor="left", y=0.99, yanchor="top") if title else None,
        margin=dict(l=45, r=10, t=75 if title else 45, b=40),
        # Horizontal legend above the plot; "constant" item size so the 4 px markers read in the legend.
        legend=dict(orientation="h", x=0.0, xanchor="left", y=1.0, yanchor="bottom", itemsizing="constant"),
        xaxis=dict(title="z₁", zeroline=False),
        # Equal aspect: distances on screen are distances in latent space (the prior circles stay round).
        yaxis=dict(title="z₂", zeroline=False, scaleanchor="x", scaleratio=1),
        clickmode="event+select",
        hovermode="closest",
        dragmode=dragmode,
        uirevision=uirevision,
    )
    if grid is not None:
        # Without a limit some grid point is always hovered, so a click anywhere lands on something even
        # after zooming in until grid points are more than the default 20 px apart.
        fig.update_layout(hoverdistance=-1)
        # Show exactly the grid's region: "domain" makes the equal-aspect constraint shrink the plot area
        # instead of widening a range beyond the grid, where clicks would snap to the grid's edge.
        fig.update_xaxes(range=list(grid.x_range), constrain="domain")
        fig.update_yaxes(range=list(grid.y_range), constrain="domain")
    return fig


def overlay_traces(
    *,
    highlight: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    path: Any = None,
    ellipses: tuple[Any, Any] | None = None,
    prior_contours: bool = False,
) -> list[go.Scattergl]:
    """The overlay traces of :func:`latent_scatter` alone (see there), in drawing order.

    Small traces that change on every click; :func:`with_overlays` puts them on a cached base figure.
    """
    traces: list[go.Scattergl] = []
    if prior_contours:
        traces += _prior_traces()
    if ellipses is not None:
        traces.append(_ellipse_trace(*ellipses))
    if path is not None:
        traces += _path_traces(path)
    if highlight is not None:
        marks = [highlight] if isinstance(highlight, Mapping) else list(highlight)
        traces += [_highlight_trace(mark) for mark in marks]
    return traces


def with_overlays(base: go.Figure, overlays: Sequence[go.Scattergl]) -> go.Figure:
    """A new figure: ``base``'s traces and layout plus ``overlays`` on top; ``base`` is not modified.

    Building a 10,000-point scatter through plotly's validators takes 100-200 ms, several times a click's
    whole budget; the base traces were validated once when ``base`` was built, so this copies them
    unvalidated (a few ms). Streamlit serialises the result as it is.
    """
    return go.Figure(
        data=[*base.data, *overlays],
        layout=base.layout,
        _validate=False,
    )


def _grid_trace(grid: ClickGrid) -> go.Scattergl:
    gp = grid.points().astype(np.float32)
    return go.Scattergl(
        x=gp[:, 0],
        y=gp[:, 1],
        customdata=[GRID_INDEX] * len(gp),
        mode="markers",
        name=GRID_NAME,
        legendgroup=GRID_GROUP,
        uid=GRID_NAME,
        meta={"role": GRID_NAME, "n": grid.n},
        showlegend=False,
        # "none" hides the label but keeps the points hoverable, hence clickable; "skip" would not.
        hoverinfo="none",
        # Opacity 0: plotly.js hit-tests by distance to the point, never by its colour or opacity.
        marker=dict(size=8, color="#888888", opacity=0.0),
        selected=dict(marker=dict(opacity=0.0)),
        unselected=dict(marker=dict(opacity=0.0)),
    )


def _prior_traces() -> list[go.Scattergl]:
    """N(0, I) density contours, the circles of radius 1, 2, 3 (sigma), as one legend entry plus labels.

    One trace (circles separated by ``None`` gaps) rather than three: a horizontal legend stacks a
    legend group vertically, which would take three rows for one idea.
    """
    t = np.linspace(0.0, 2.0 * np.pi, 121)
    xs: list[float | None] = []
    ys: list[float | None] = []
    for k in PRIOR_RADII:
        cx, cy = k * np.cos(t), k * np.sin(t)
        cx[-1], cy[-1] = cx[0], cy[0]
        xs += [*np.round(cx, 6).tolist(), None]
        ys += [*np.round(cy, 6).tolist(), None]
    circles = go.Scattergl(
        x=xs[:-1],
        y=ys[:-1],
        mode="lines",
        name="prior " + "/".join(f"{k}σ" for k in PRIOR_RADII),
        legendgroup="prior",
        line=dict(color="rgba(60, 60, 60, 0.6)", width=1, dash="dot"),
        hoverinfo="skip",
        meta={"role": "prior", "radii": list(PRIOR_RADII)},
    )
    # Labels where each circle crosses the 45-degree diagonal, in the plot's top-right quadrant.
    diag = np.array(PRIOR_RADII, dtype=np.float64) / math.sqrt(2.0)
    labels = go.Scattergl(
        x=diag.tolist(),
        y=diag.tolist(),
        mode="text",
        text=[f"{k}σ" for k in PRIOR_RADII],
        textposition="middle right",
        textfont=dict(size=10, color="rgba(60, 60, 60, 0.8)"),
        name="prior labels",
        legendgroup="prior",
        showlegend=False,
        hoverinfo="skip",
        **_no_dim("rgba(60, 60, 60, 0.8)"),
        meta={"role": "prior-labels"},
    )
    return [circles, labels]


def _ellipse_trace(means: Any, sigmas: Any) -> go.Scattergl:
    """All ellipses in one trace, each a closed curve, separated by ``None`` gaps."""
    m, s = _as_points(means, "means"), _as_points(sigmas, "sigmas")
    if m.shape != s.shape:
        raise ValueError(f"means and sigmas must have the same shape, got {list(m.shape)} and {list(s.shape)}")
    if not np.all(np.isfinite(s)) or np.any(s < 0):
        raise ValueError("sigmas must be finite and >= 0")
    t = np.linspace(0.0, 2.0 * np.pi, 65)
    xs: list[float | None] = []
    ys: list[float | None] = []
    for (mx, my), (sx, sy) in zip(m.astype(np.float64), s.astype(np.float64)):
        ex, ey = mx + sx * np.cos(t), my + sy * np.sin(t)
        ex[-1], ey[-1] = ex[0], ey[0]  # close exactly (cos 2π is not quite 1 in floating point)
        xs += [*ex.tolist(), None]
        ys += [*ey.tolist(), None]
    return go.Scattergl(
        x=xs[:-1],
        y=ys[:-1],
        mode="lines",
        name="posterior ±1σ",
        line=dict(color="rgba(0, 0, 0, 0.75)", width=1.5),
        hoverinfo="skip",
        showlegend=bool(len(m)),
        meta={"role": "ellipses", "count": int(len(m))},
    )


def _path_traces(path: Any) -> list[go.Scattergl]:
    p = _as_points(path, "path")
    if len(p) < 2:
        raise ValueError(f"path needs at least 2 points, got {len(p)}")
    p = p.astype(np.float64)
    line = go.Scattergl(
        x=p[:, 0].tolist(),
        y=p[:, 1].tolist(),
        mode="lines+markers",
        name="path",
        line=dict(color="#222222", width=2),
        marker=dict(size=6, color="#222222"),
        hoverinfo="skip",
        **_no_dim(),
        meta={"role": "path"},
    )
    ends = go.Scattergl(
        x=[p[0, 0], p[-1, 0]],
        y=[p[0, 1], p[-1, 1]],
        mode="markers+text",
        name="path ends",
        text=["start", "end"],
        textposition="top center",
        marker=dict(size=13, symbol=["circle", "square"], color="#222222", line=dict(color="white", width=2)),
        textfont=dict(color="black"),
        hoverinfo="skip",
        **_no_dim(),
        showlegend=False,
        meta={"role": "path-ends"},
    )
    return [line, ends]


def _highlight_trace(mark: Mapping[str, Any]) -> go.Scattergl:
    point = np.asarray(mark.get("point"), dtype=np.float64)
    if point.shape != (2,) or not np.all(np.isfinite(point)):
        raise ValueError(f"highlight point must be two finite numbers, got {mark.get('point')!r}")
    kind = mark.get("kind", "ring")
    if kind not in ("ring", "cross"):
        raise ValueError(f"highlight kind must be 'ring' or 'cross', got {kind!r}")
    label = str(mark.get("label", ""))
    # A ring is drawn by its outline only, so the point underneath stays visible; a cross marks a spot
    # with no point of its own and must stand out on any colour: black, edged in white.
    if kind == "ring":
        marker = dict(size=18, symbol="circle-open", color="black", line=dict(width=3, color="black"))
    else:
        marker = dict(size=18, symbol="x", color="black", line=dict(width=1.5, color="white"))
    return go.Scattergl(
        x=[float(point[0])],
        y=[float(point[1])],
        mode="markers+text" if label else "markers",
        text=[label] if label else None,
        textposition="top center",
        textfont=dict(size=13, color="black"),
        name=label or ("selected" if kind == "ring" else "clicked"),
        marker=marker,
        hoverinfo="skip",
        **_no_dim(),
        showlegend=False,
        meta={"role": "highlight", "kind": kind},
    )


def _as_points(values: Any, name: str) -> np.ndarray:
    """Anything array-like (numpy, list, CPU torch tensor) -> float ``[N, 2]``, finite."""
    if hasattr(values, "detach"):  # torch, without importing it
        values = values.detach().cpu().numpy()
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must have shape [N, 2], got {list(arr.shape)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds NaN or infinite values")
    return arr


def _escape_template(text: str) -> str:
    # Plotly reads "%{" as the start of a template field.
    return text.replace("%{", "%\u200b{")


# ---------------------------------------------------------------------------------------------
# Reading Streamlit's selection


@dataclass(frozen=True)
class Click:
    """Where a click landed: a data point (``index`` = its dataset index) or the grid (``on_grid``)."""

    x: float
    y: float
    index: int | None
    on_grid: bool


def parse_selection(selection: Mapping[str, Any] | None, *, grid_curve: int | None = 0) -> Click | None:
    """Streamlit's plotly selection -> the clicked :class:`Click`, or None when nothing usable was selected.

    ``selection`` is ``event.selection`` from ``st.plotly_chart(..., on_select="rerun")`` (the whole event,
    with its ``"selection"`` key, is accepted too). Streamlit 1.67 builds it in the browser from plotly.js's
    ``plotly_selected`` event::

        {"points": [{"curve_number": 1, "point_number": 5, "point_index": 5, "x": 1.2, "y": -0.3,
                     "customdata": 123, "legendgroup": "3", "marker_size": 4, ...}],
         "point_indices": [5], "box": [{"xref": "x", "yref": "y", "x": [x0, x1], "y": [y0, y1]}],
         "lasso": [{"xref": "x", "yref": "y", "x": [...], "y": [...]}]}

    ``customdata`` is the point's own entry: a number for our 1-D customdata, a one-element list for 2-D
    customdata (plotly express), or ``{"0": n}`` if a typed array slipped through. A point is the grid's when
    its legendgroup is :data:`GRID_GROUP`, its customdata is :data:`GRID_INDEX`, or it has no customdata and
    comes from ``grid_curve``; a data point when its customdata is an index >= 0; anything else (an overlay)
    is ignored. When a selection holds both, as a box or shift-click can, the first data point wins.

    plotly.js toggles: a second click on the selected point deselects it and the selection comes back
    empty (None here). Keep the last Click in session state if it should outlive that. A box selection
    also lists every point inside it, so check :func:`parse_box` first where a box means something else.
    """
    data_hits, grid_hits = _classify(selection, grid_curve)
    if data_hits:
        return data_hits[0]
    return grid_hits[0] if grid_hits else None


def selected_indices(selection: Mapping[str, Any] | None) -> list[int]:
    """Dataset indices of every data point in the selection (a box or lasso can hold many), in order, unique."""
    data_hits, _ = _classify(selection, grid_curve=None)
    seen: dict[int, None] = {}
    for hit in data_hits:
        seen.setdefault(int(hit.index), None)  # type: ignore[arg-type]
    return list(seen)


def parse_box(selection: Mapping[str, Any] | None) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """The last box selection as ``((x_lo, x_hi), (y_lo, y_hi))``, sorted; None without a box of positive area."""
    sel = _unwrap(selection)
    if sel is None:
        return None
    boxes = sel.get("box") or []
    for box in reversed(list(boxes)):
        if not isinstance(box, Mapping):
            continue
        try:
            xs = sorted(float(v) for v in box.get("x", []))
            ys = sorted(float(v) for v in box.get("y", []))
        except (TypeError, ValueError):
            continue
        if len(xs) < 2 or len(ys) < 2 or not all(math.isfinite(v) for v in (*xs, *ys)):
            continue
        if xs[0] < xs[-1] and ys[0] < ys[-1]:
            return (xs[0], xs[-1]), (ys[0], ys[-1])
    return None


def _unwrap(selection: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if not isinstance(selection, Mapping):
        return None
    if "points" not in selection and isinstance(selection.get("selection"), Mapping):
        return selection["selection"]
    return selection


def _classify(selection: Mapping[str, Any] | None, grid_curve: int | None) -> tuple[list[Click], list[Click]]:
    sel = _unwrap(selection)
    data_hits: list[Click] = []
    grid_hits: list[Click] = []
    if sel is None:
        return data_hits, grid_hits
    for point in sel.get("points") or []:
        if not isinstance(point, Mapping):
            continue
        try:
            x, y = float(point["x"]), float(point["y"])
        except (KeyError, TypeError, ValueError):
            continue
        if not (math.isfinite(x) and math.isfinite(y)):
            continue
        has_custom = point.get("customdata") is not None
        index = _custom_index(point.get("customdata"))
        curve = point.get("curve_number")
        if (
            point.get("legendgroup") == GRID_GROUP
            or index == GRID_INDEX
            or (not has_custom and grid_curve is not None and curve == grid_curve)
        ):
            grid_hits.append(Click(x, y, None, True))
        elif index is not None and index >= 0:
            data_hits.append(Click(x, y, index, False))
    return data_hits, grid_hits


def _custom_index(value: Any) -> int | None:
    """A point's customdata -> int, whatever wrapper it arrived in; None if it is not one integer."""
    if isinstance(value, Mapping):  # a typed sub-array that went through Object.keys: {"0": n}
        value = value.get("0")
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if math.isfinite(number) and number == int(number) else None


# ---------------------------------------------------------------------------------------------
# Images (uint8, white digit on black, as MNIST stores them)


def to_uint8_image(img: Any) -> np.ndarray:
    """float ``[28, 28]`` or ``[1, 28, 28]`` in [0, 1] (numpy or CPU torch) -> uint8 ``[28, 28]``.

    Values are clipped to [0, 1] and NaN becomes 0; uint8 input is passed through (squeezed).
    """
    if hasattr(img, "detach"):
        img = img.detach().cpu().numpy()
    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise ValueError(f"image must have shape [H, W] or [1, H, W], got {list(np.shape(img))}")
    if arr.dtype == np.uint8:
        return arr.copy()
    arr = np.nan_to_num(arr.astype(np.float64), nan=0.0)
    return np.rint(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)


def upscale(img: np.ndarray, scale: int = 8) -> np.ndarray:
    """Nearest-neighbour enlargement ``[H, W(, C)]`` -> ``[H * scale, W * scale(, C)]``: crisp pixels, no blur.

    Browsers smooth small images when they stretch them; sending them pre-enlarged keeps the pixels square.
    """
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    arr = np.asarray(img)
    if arr.ndim not in (2, 3):
        raise ValueError(f"image must have shape [H, W] or [H, W, C], got {list(arr.shape)}")
    return np.repeat(np.repeat(arr, scale, axis=0), scale, axis=1)


# Light grey: visible between black MNIST backgrounds, quiet next to white strokes.
SEPARATOR = 200


def strip(images: Any, gap: int = 2) -> np.ndarray:
    """K images ``[K, H, W]`` (float in [0, 1] or uint8; ``[K, 1, H, W]`` too) -> uint8 ``[H, K*W + (K-1)*gap]``."""
    tiles = _as_uint8_stack(images)
    k, h, w = tiles.shape
    if gap < 0:
        raise ValueError(f"gap must be >= 0, got {gap!r}")
    out = np.full((h, k * w + (k - 1) * gap), SEPARATOR, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        out[:, i * (w + gap) : i * (w + gap) + w] = tile
    return out


def tile_grid(images: Any, n: int, gap: int = 1) -> np.ndarray:
    """``n * n`` images ``[n*n, H, W]`` in :meth:`ClickGrid.points` order -> uint8 ``[n*H + (n-1)*gap, n*W + ...]``.

    Image ``k`` was decoded at ``(xs[k % n], ys[k // n])`` with ys increasing, so row ``k // n = 0`` holds
    the *lowest* y. The output puts it at the bottom: like the scatter plot, y grows upwards and x to the
    right, so the manifold image lines up with the region of the plot it was decoded from.
    """
    tiles = _as_uint8_stack(images)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1 or len(tiles) != n * n:
        raise ValueError(f"need n * n images for n={n!r}, got {len(tiles)}")
    if gap < 0:
        raise ValueError(f"gap must be >= 0, got {gap!r}")
    _, h, w = tiles.shape
    out = np.full((n * h + (n - 1) * gap, n * w + (n - 1) * gap), SEPARATOR, dtype=np.uint8)
    for k, tile in enumerate(tiles):
        row = n - 1 - k // n  # flip: highest y on top
        col = k % n
        out[row * (h + gap) : row * (h + gap) + h, col * (w + gap) : col * (w + gap) + w] = tile
    return out


def to_png_bytes(img: np.ndarray) -> bytes:
    """uint8 ``[H, W]`` (greyscale) or ``[H, W, 3]`` (RGB) -> PNG file bytes, e.g. for ``st.download_button``."""
    from PIL import Image  # only the download path needs Pillow

    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {arr.dtype} (use to_uint8_image first)")
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise ValueError(f"image must have shape [H, W] or [H, W, 3], got {list(arr.shape)}")
    buffer = io.BytesIO()
    Image.fromarray(arr, mode=None).save(buffer, format="PNG")
    return buffer.getvalue()


def _as_uint8_stack(images: Any) -> np.ndarray:
    if hasattr(images, "detach"):
        images = images.detach().cpu().numpy()
    arr = np.asarray(images)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 3 or len(arr) == 0:
        raise ValueError(f"images must have shape [K, H, W] or [K, 1, H, W] with K >= 1, got {list(arr.shape)}")
    return np.stack([to_uint8_image(a) for a in arr])


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
    if not fig.data:
        fig.add_annotation(
            text="no training history yet", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
            font=dict(size=14, color="#777777"),
        )  # fmt: skip
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
            colorbar=dict(thickness=12, title=dict(text=label, side="right")),
        )
    )
    _heatmap_layout(fig, title)
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
                x=list(class_labels), y=list(v), name=model, marker_color=colours[model],
                hovertemplate=f"{model}, digit %{{x}}: %{{y:.3f}}<extra></extra>",
            )
            for model, v in values.items()
        ]
    )  # fmt: skip
    if reference is not None:
        fig.add_hline(y=reference[0], line_dash="dot", line_color="#777777", annotation_text=reference[1])
    fig.update_layout(
        template="plotly_white", barmode="group", height=330, margin={"l": 40, "r": 10, "t": 20, "b": 40},
        xaxis={"title": "digit", "type": "category"}, yaxis={"title": y_title},
        legend={"orientation": "h", "x": 0.0, "y": 1.0, "yanchor": "bottom"},
    )  # fmt: skip
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
