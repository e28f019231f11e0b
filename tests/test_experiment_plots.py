"""Figures of the Experiments page: small multiples of maps and metric curves."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.conftest import SEED
from vae.plots.studies import active_units_figure, maps_grid, metric_curves


def test_maps_grid_draws_one_panel_per_map_with_shared_class_legend() -> None:
    rng = np.random.default_rng(SEED)
    labels = rng.integers(0, 10, 50)
    maps = {"a": rng.normal(size=(50, 2)), "b": 30 * rng.normal(size=(50, 2)), "c": rng.normal(size=(50, 2))}
    fig = maps_grid(maps, labels, {"a": "PCA", "b": "AE"}, columns=2)
    assert [a.text for a in fig.layout.annotations] == ["PCA", "AE", "c"]  # subplot titles, key when untitled
    assert len(fig.data) == 3 * 10
    assert [t.showlegend for t in fig.data].count(True) == 10  # one legend entry per class
    assert {t.legendgroup for t in fig.data} == {str(c) for c in range(10)}
    # Each panel keeps its own equal-aspect axes.
    assert fig.layout.yaxis.scaleanchor == "x" and fig.layout.yaxis3.scaleanchor == "x3"
    total = sum(len(t.x) for t in fig.data if t.xaxis == "x2")
    assert total == 50
    names = tuple(f"class {i}" for i in range(10))
    assert fig.data[0].name == "0" and maps_grid(maps, labels, class_names=names).data[0].name == "class 0"
    with pytest.raises(ValueError, match="must have shape"):
        maps_grid({"a": np.zeros((49, 2))}, labels)
    with pytest.raises(ValueError, match="empty"):
        maps_grid({}, labels)


def test_metric_curves_draw_a_line_per_family_and_leave_gaps() -> None:
    rows = [{"family": "PCA", "latent_dim": d, "mse": 0.1 / d, "kl": math.nan} for d in (2, 4, 8)] + [
        {"family": "VAE", "latent_dim": d, "mse": 0.08 / d, "kl": 5.0 * d} for d in (8, 2, 4)
    ]
    fig = metric_curves(rows, "latent_dim", {"mse": "MSE", "kl": "KL"}, log_x=True)
    assert [a.text for a in fig.layout.annotations] == ["MSE", "KL"]
    by_panel = {(t.name, t.xaxis) for t in fig.data}
    assert by_panel == {("PCA", "x"), ("VAE", "x"), ("VAE", "x2")}  # PCA has no KL: no line, not zeros
    vae = next(t for t in fig.data if t.name == "VAE" and t.xaxis == "x")
    assert list(vae.x) == [2, 4, 8] and list(vae.y) == pytest.approx([0.04, 0.02, 0.01])  # sorted by x
    assert fig.layout.xaxis.type == "log" and list(fig.layout.xaxis.tickvals) == [2, 4, 8]
    with pytest.raises(ValueError, match="empty"):
        metric_curves(rows, "latent_dim", {})


def test_metric_curves_on_a_log_scale_leave_non_positive_values_out() -> None:
    rows = [{"family": "AE", "d": d, "err": e} for d, e in ((2, 1e-12), (4, 0.0), (8, 0.5))]
    fig = metric_curves(rows, "d", {"err": "error"}, log_y=True)
    assert list(fig.data[0].y) == [1e-12, None, 0.5] and fig.layout.yaxis.type == "log"


def test_filter_mosaic_tiles_each_filter_scaled_with_gaps() -> None:
    from vae.plots.studies import filter_banks, filter_mosaic

    bank = np.arange(3 * 16, dtype=float).reshape(3, 16) - 20  # three 4 x 4 filters, flattened
    mosaic = filter_mosaic(bank, columns=2)
    assert mosaic.shape == (4 + 1 + 4, 4 + 1 + 4)
    assert np.all(np.isnan(mosaic[4, :])) and np.all(np.isnan(mosaic[5:, 5:]))  # gap row, empty fourth slot
    first = bank[0].reshape(4, 4)
    assert np.allclose(mosaic[:4, :4], first / np.abs(first).max())
    assert np.nanmax(np.abs(mosaic)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="not square"):
        filter_mosaic(np.zeros((2, 15)))
    fig = filter_banks({"PCs": bank, "more": bank[:1]})
    assert [a.text for a in fig.layout.annotations] == ["PCs", "more"] and len(fig.data) == 2
    with pytest.raises(ValueError, match="empty"):
        filter_banks({})


def test_tradeoff_scatter_places_models_papers_and_targets() -> None:
    from vae.plots.studies import FAMILY_COLORS, tradeoff_scatter

    rows = [
        {"family": "AE", "test_mse_per_pixel": 0.04, "knn5_accuracy": 0.8},
        {"family": "broken", "test_mse_per_pixel": math.nan, "knn5_accuracy": 0.5},
    ]
    fig = tradeoff_scatter(rows, references={"joint": (0.95, 0.036)}, targets=(0.955, 0.036))
    assert [t.name for t in fig.data] == ["AE", "paper: joint"]  # a non-finite model is left out
    assert (fig.data[0].x[0], fig.data[0].y[0]) == (0.04, 0.8) and (fig.data[1].x[0], fig.data[1].y[0]) == (0.036, 0.95)
    assert {shape.line.dash for shape in fig.layout.shapes} == {"dot"} and len(fig.layout.shapes) == 2
    # The paper's model is drawn open, in the colour of the family of that name; ours filled.
    paper = tradeoff_scatter([], references={"AE": (0.79, 0.037)}).data[0]
    assert paper.marker.symbol == "circle-open" and paper.marker.color == FAMILY_COLORS["AE"]
    assert fig.data[0].marker.symbol is None and fig.data[0].marker.color == FAMILY_COLORS["AE"]


def test_active_units_figure_shows_each_beta_of_d_and_each_dimension_against_the_threshold() -> None:
    import pandas as pd

    by_beta = [
        {"beta": 0.0, "active_units": 2, "latent_dim": 2, "min_variance": 3.0, "images": 10_000},
        {"beta": 4.0, "active_units": 1, "latent_dim": 2, "min_variance": 0.001, "images": 10_000},
    ]
    dims = pd.DataFrame({"dim": [3, 0, 1], "kl": [2.0, 1.0, 0.0], "variance": [1.5, 0.2, 0.001]})
    dims["active"] = dims["variance"] > 0.01
    fig = active_units_figure(by_beta, dims, "yardstick")
    sweep, dimensions = fig.data
    assert list(sweep.x) == ["β = 0", "β = 4"] and list(sweep.y) == [2, 1] and list(sweep.text) == ["2 of 2", "1 of 2"]
    assert list(dimensions.x) == ["z3", "z0", "z1"] and list(dimensions.y) == [1.5, 0.2, 0.001]
    assert dimensions.marker.color[2] == "#BBBBBB" != dimensions.marker.color[0]  # the inactive one is grey
    assert [shape.y0 for shape in fig.layout.shapes] == [0.01]
    assert len(active_units_figure(by_beta).data) == 1  # without a yardstick: the sweep alone
    with pytest.raises(ValueError, match="by_beta is empty"):
        active_units_figure([])
