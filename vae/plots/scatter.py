"""The latent plane as a Plotly scatter (the explorer's server path), its overlays, and the click it reports.

- :func:`latent_scatter`: codes ``[N, 2]`` coloured by class, one trace per class, plus optional overlays
  (click grid, highlight, interpolation path, posterior ellipses, prior contours).
- :class:`ClickGrid`: invisible markers covering the plane, so a click on empty space still reports where
  it landed (Plotly only reports clicks on drawn points).
- :func:`parse_selection`, :func:`parse_box`, :func:`selected_indices`: read the selection dict that
  ``st.plotly_chart(..., on_select=...)`` hands back (the pages pass it in; nothing here imports Streamlit).

How a click travels (checked against plotly.js 3.8.2 as bundled by Streamlit 1.67, see ``tests/test_plots.py``):
with ``clickmode="event+select"`` a click selects the point plotly.js is *hovering*, i.e. the closest point of
any trace whose ``hoverinfo`` is not ``"skip"``. Marker opacity plays no part in that hit test, so the grid
can be fully transparent; ``hoverinfo="none"`` hides its label but keeps it hoverable (``"skip"`` would
not). The overlays use ``"skip"`` so that clicking a highlight ring reaches the data point under it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go

from vae.plots.palette import CLASS_NAMES, DIGIT_COLORS

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
