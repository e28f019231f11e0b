"""Figures of the Experiments page: small multiples of maps and metric curves."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.conftest import SEED
from vae.experiment_plots import maps_grid, metric_curves


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
    rows = [
        {"family": "PCA", "latent_dim": d, "mse": 0.1 / d, "kl": math.nan} for d in (2, 4, 8)
    ] + [{"family": "VAE", "latent_dim": d, "mse": 0.08 / d, "kl": 5.0 * d} for d in (8, 2, 4)]
    fig = metric_curves(rows, "latent_dim", {"mse": "MSE", "kl": "KL"}, log_x=True)
    assert [a.text for a in fig.layout.annotations] == ["MSE", "KL"]
    by_panel = {(t.name, t.xaxis) for t in fig.data}
    assert by_panel == {("PCA", "x"), ("VAE", "x"), ("VAE", "x2")}  # PCA has no KL: no line, not zeros
    vae = next(t for t in fig.data if t.name == "VAE" and t.xaxis == "x")
    assert list(vae.x) == [2, 4, 8] and list(vae.y) == pytest.approx([0.04, 0.02, 0.01])  # sorted by x
    assert fig.layout.xaxis.type == "log" and list(fig.layout.xaxis.tickvals) == [2, 4, 8]
    with pytest.raises(ValueError, match="empty"):
        metric_curves(rows, "latent_dim", {})
