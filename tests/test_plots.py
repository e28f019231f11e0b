"""Tests for vae.plots: figure structure and geometry, selection parsing (images: tests/test_images.py).

Everything but the last test is pure Python and runs in about a second. The last one drives the real thing
(Streamlit 1.67's bundled plotly.js in Chromium) to check the claim the click grid rests on: a click on
empty space, where only the invisible grid is drawn, comes back from ``st.plotly_chart`` as a grid point.
"""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from tests.browser import launch_chromium, require_browser, streamlit_server
from vae.plots.charts import delta_heatmap, loss_curves, metric_bars, overlap_heatmap
from vae.plots.palette import CLASS_NAMES, DIGIT_COLORS
from vae.plots.scatter import (
    GRID_GROUP,
    GRID_INDEX,
    Click,
    ClickGrid,
    latent_scatter,
    parse_box,
    parse_selection,
    selected_indices,
)

SEED = 189212
REPO = Path(__file__).resolve().parents[1]


def cloud(n: int = 500, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Points ``[n, 2]`` ~ N(0, I) and labels ``[n]`` cycling through all ten classes."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 2)), np.arange(n) % 10


def by_name(fig, name: str):
    matches = [t for t in fig.data if t.name == name]
    assert len(matches) == 1, f"expected one trace named {name!r}, got {[t.name for t in fig.data]}"
    return matches[0]


def segments(values) -> list[np.ndarray]:
    """A trace's x or y with ``None`` gaps -> one float array per gap-separated piece."""
    pieces, current = [], []
    for v in values:
        if v is None:
            pieces.append(np.array(current, dtype=float))
            current = []
        else:
            current.append(v)
    pieces.append(np.array(current, dtype=float))
    return pieces


# --- palette -------------------------------------------------------------------------------------


def test_palette_has_ten_distinct_colours_and_default_names() -> None:
    assert len(DIGIT_COLORS) == 10 and len(set(c.lower() for c in DIGIT_COLORS)) == 10
    assert list(CLASS_NAMES) == [str(d) for d in range(10)]


# --- latent_scatter ------------------------------------------------------------------------------


def test_scatter_has_grid_first_then_one_trace_per_class_with_indices_in_customdata() -> None:
    points, labels = cloud(500)
    indices = np.arange(500) + 7000  # dataset indices, not positions, must come back
    grid = ClickGrid.covering(points, n=20)
    fig = latent_scatter(points, labels, indices=indices, grid=grid)

    assert fig.data[0].name == "grid" and fig.data[0].legendgroup == GRID_GROUP
    assert fig.data[0].showlegend is False and fig.data[0].hoverinfo == "none"
    assert len(fig.data[0].x) == 20 * 20
    assert set(fig.data[0].customdata) == {GRID_INDEX}
    assert fig.data[0].meta["role"] == "grid"

    classes = fig.data[1:]
    assert [t.name for t in classes] == list(CLASS_NAMES)
    assert [t.legendgroup for t in classes] == list(CLASS_NAMES)
    assert all(t.type == "scattergl" and t.showlegend is not False for t in classes)
    assert [t.marker.color for t in classes] == list(DIGIT_COLORS)
    assert sum(len(t.x) for t in classes) == 500
    for c, trace in enumerate(classes):
        mask = labels == c
        assert len(trace.x) == mask.sum()
        assert list(trace.customdata) == indices[mask].tolist()
        # Each point sits where its index says: the customdata really identifies the image.
        np.testing.assert_allclose(trace.x, points[mask, 0], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(trace.y, points[mask, 1], rtol=1e-6, atol=1e-6)
        assert "%{customdata}" in trace.hovertemplate and f"class {CLASS_NAMES[c]}" in trace.hovertemplate


def test_scatter_keeps_all_class_traces_when_a_class_is_absent_and_accepts_custom_names() -> None:
    points, labels = cloud(60)
    labels = labels % 3  # only classes 0, 1, 2 present
    names = ["T-shirt", "Trouser", "Pullover", "Dress"]
    fig = latent_scatter(points, labels, class_names=names)
    assert [t.name for t in fig.data] == names  # stable curve numbers and colours between plots
    assert len(fig.data[3].x) == 0
    with pytest.raises(ValueError, match="labels"):
        latent_scatter(points, np.full(60, 4), class_names=names)


def test_scatter_layout_equal_aspect_click_select_and_uirevision() -> None:
    points, labels = cloud(100)
    fig = latent_scatter(points, labels, title="VAE", uirevision="vae-1", grid=ClickGrid.covering(points))
    layout = fig.layout
    assert layout.yaxis.scaleanchor == "x" and layout.yaxis.scaleratio == 1
    assert layout.clickmode == "event+select"
    assert layout.hovermode == "closest"
    assert layout.uirevision == "vae-1"
    assert layout.legend.orientation == "h"
    assert layout.title.text == "VAE"
    assert layout.hoverdistance == -1  # only with a grid: some point is always under the cursor
    assert latent_scatter(points, labels).layout.hoverdistance is None


def test_scatter_rejects_bad_shapes() -> None:
    points, labels = cloud(10)
    with pytest.raises(ValueError, match=r"\[N, 2\]"):
        latent_scatter(points[:, :1], labels)
    with pytest.raises(ValueError, match="labels"):
        latent_scatter(points, labels[:5])
    with pytest.raises(ValueError, match=">= 0"):
        latent_scatter(points, labels, indices=-np.ones(10, dtype=int))


def test_highlight_ring_and_cross_are_drawn_on_top_and_not_clickable() -> None:
    points, labels = cloud(50)
    fig = latent_scatter(
        points,
        labels,
        grid=ClickGrid.covering(points, n=5),
        highlight=[{"point": (0.5, -1.0), "label": "#42"}, {"point": [2.0, 3.0], "kind": "cross"}],
    )
    ring, cross = fig.data[-2], fig.data[-1]
    assert (ring.x, ring.y) == ((0.5,), (-1.0,)) and ring.marker.symbol == "circle-open"
    assert ring.text == ("#42",)
    assert (cross.x, cross.y) == ((2.0,), (3.0,)) and "x" in cross.marker.symbol
    # "skip" keeps them out of hover, so a click on the ring reaches the data point underneath.
    assert ring.hoverinfo == "skip" and cross.hoverinfo == "skip"
    assert ring.unselected.marker.opacity == 1.0  # not faded by plotly.js after a click
    single = latent_scatter(points, labels, highlight={"point": [1, 1]})
    assert single.data[-1].x == (1.0,)
    with pytest.raises(ValueError, match="kind"):
        latent_scatter(points, labels, highlight={"point": [1, 1], "kind": "star"})


def test_path_is_drawn_with_marked_start_and_end() -> None:
    points, labels = cloud(50)
    path = np.linspace([-2.0, 1.0], [3.0, -1.0], 9)
    fig = latent_scatter(points, labels, path=path)
    line, ends = by_name(fig, "path"), by_name(fig, "path ends")
    assert line.mode == "lines+markers"
    np.testing.assert_allclose(np.c_[line.x, line.y], path)
    assert list(zip(ends.x, ends.y)) == [(-2.0, 1.0), (3.0, -1.0)]
    assert ends.text == ("start", "end")
    with pytest.raises(ValueError, match="at least 2"):
        latent_scatter(points, labels, path=path[:1])


def test_ellipses_are_closed_curves_at_one_sigma() -> None:
    points, labels = cloud(50)
    means = np.array([[0.0, 0.0], [1.5, -2.0], [-3.0, 0.5]])
    sigmas = np.array([[1.0, 1.0], [0.2, 0.7], [0.05, 0.3]])
    trace = by_name(latent_scatter(points, labels, ellipses=(means, sigmas)), "posterior ±1σ")
    xs, ys = segments(trace.x), segments(trace.y)
    assert len(xs) == len(ys) == 3
    for (mx, my), (sx, sy), ex, ey in zip(means, sigmas, xs, ys):
        np.testing.assert_allclose(((ex - mx) / sx) ** 2 + ((ey - my) / sy) ** 2, 1.0, atol=1e-9)
        assert (ex[0], ey[0]) == (ex[-1], ey[-1])  # closed
        # It goes all the way round: it reaches mean +- sigma on both axes.
        np.testing.assert_allclose([ex.min(), ex.max()], [mx - sx, mx + sx], atol=1e-9)
        np.testing.assert_allclose([ey.min(), ey.max()], [my - sy, my + sy], atol=1e-2 * sy)
    with pytest.raises(ValueError, match="same shape"):
        latent_scatter(points, labels, ellipses=(means, sigmas[:2]))
    with pytest.raises(ValueError, match="sigmas"):
        latent_scatter(points, labels, ellipses=(means, -sigmas))


def test_prior_contours_are_circles_of_radius_one_two_three() -> None:
    points, labels = cloud(50)
    fig = latent_scatter(points, labels, prior_contours=True)
    circles = by_name(fig, "prior 1σ/2σ/3σ")
    radii = [np.hypot(x, y) for x, y in zip(segments(circles.x), segments(circles.y))]
    assert len(radii) == 3
    for expected, r in zip((1, 2, 3), radii):
        np.testing.assert_allclose(r, expected, atol=1e-5)
    assert by_name(fig, "prior labels").text == ("1σ", "2σ", "3σ")
    assert not any(t.name.startswith("prior") for t in latent_scatter(points, labels).data)


def test_figure_json_is_compact_for_ten_thousand_points() -> None:
    points, labels = cloud(10_000)
    fig = latent_scatter(
        points, labels, grid=ClickGrid.covering(points), prior_contours=True, highlight={"point": [0, 0]}
    )
    text = fig.to_json()
    size = len(text.encode())
    print(f"\nlatent_scatter JSON, 10,000 points + 60x60 grid: {size / 1e6:.3f} MB")
    assert size < 1.5e6
    spec = json.loads(text)
    # Coordinates travel as base64 float32, not as decimal text.
    assert spec["data"][1]["x"]["dtype"] == "f4" and "bdata" in spec["data"][1]["x"]
    # customdata stays a plain list: scattergl's hover only indexes plain arrays.
    assert isinstance(spec["data"][1]["customdata"], list)


# --- ClickGrid -----------------------------------------------------------------------------------


def test_click_grid_covers_the_points_with_a_margin() -> None:
    points, _ = cloud(300)
    grid = ClickGrid.covering(points, n=30, margin=0.1)
    lo, hi = points.min(0), points.max(0)
    span = hi - lo
    assert grid.x_range == pytest.approx((lo[0] - 0.1 * span[0], hi[0] + 0.1 * span[0]))
    assert grid.y_range == pytest.approx((lo[1] - 0.1 * span[1], hi[1] + 0.1 * span[1]))
    gp = grid.points()
    assert gp.shape == (900, 2)
    assert np.all(gp.min(0) < lo) and np.all(gp.max(0) > hi)
    # Order documented for tile_grid: x fastest, y increasing with the row.
    xs, ys = grid.axes()
    assert tuple(gp[31]) == (xs[1], ys[1])
    assert np.all(np.diff(gp[::30, 1]) > 0)


def test_click_grid_handles_degenerate_input_and_rejects_bad_ranges() -> None:
    grid = ClickGrid.covering(np.array([[1.0, 2.0]]))  # one point: no span
    assert grid.x_range[0] < 1.0 < grid.x_range[1] and grid.y_range[0] < 2.0 < grid.y_range[1]
    with pytest.raises(ValueError, match="lo < hi"):
        ClickGrid((1.0, 1.0), (0.0, 1.0))
    with pytest.raises(ValueError, match="empty"):
        ClickGrid.covering(np.zeros((0, 2)))


# --- parse_selection / parse_box -----------------------------------------------------------------

# As Streamlit 1.67 reports them (recorded from the browser test below).
GRID_POINT = {
    "curve_number": 0,
    "point_number": 797,
    "point_index": 797,
    "x": -1.27,
    "y": -1.68,
    "customdata": -1,
    "legendgroup": GRID_GROUP,
}
DATA_POINT = {
    "curve_number": 6,
    "point_number": 0,
    "point_index": 0,
    "x": 0.25,
    "y": 0.5,
    "customdata": 1600,
    "legendgroup": "5",
}


def selection(*points, box=()) -> dict:
    return {"points": list(points), "point_indices": [p["point_index"] for p in points], "box": list(box), "lasso": []}


def test_parse_selection_reads_a_data_point_and_prefers_it_over_the_grid() -> None:
    assert parse_selection(selection(DATA_POINT)) == Click(0.25, 0.5, 1600, False)
    # Grid listed first, as plotly.js orders by curve number: the data point still wins.
    assert parse_selection(selection(GRID_POINT, DATA_POINT)) == Click(0.25, 0.5, 1600, False)
    # The whole event (with its "selection" key) works too.
    assert parse_selection({"selection": selection(DATA_POINT)}).index == 1600


def test_parse_selection_grid_only_gives_the_location() -> None:
    click = parse_selection(selection(GRID_POINT))
    assert click == Click(-1.27, -1.68, None, True)
    # Recognised without the legendgroup (customdata -1), and without customdata (curve 0).
    bare = {k: v for k, v in GRID_POINT.items() if k != "legendgroup"}
    assert parse_selection(selection(bare)).on_grid
    bare.pop("customdata")
    assert parse_selection(selection(bare)).on_grid
    assert parse_selection(selection(bare), grid_curve=None) is None


@pytest.mark.parametrize("customdata", [[1600], [1600.0], {"0": 1600}, 1600.0])
def test_parse_selection_accepts_each_customdata_wrapping(customdata) -> None:
    assert parse_selection(selection({**DATA_POINT, "customdata": customdata})).index == 1600


def test_parse_selection_ignores_empty_and_overlay_points() -> None:
    assert parse_selection(None) is None
    assert parse_selection({}) is None
    assert parse_selection(selection()) is None
    overlay = {"curve_number": 12, "point_number": 0, "point_index": 0, "x": 1.0, "y": 1.0}
    assert parse_selection(selection(overlay)) is None
    assert parse_selection(selection({**DATA_POINT, "x": None})) is None


def test_selected_indices_lists_data_points_once_in_order() -> None:
    other = {**DATA_POINT, "customdata": 12, "point_number": 3, "point_index": 3}
    assert selected_indices(selection(GRID_POINT, DATA_POINT, other, DATA_POINT)) == [1600, 12]
    assert selected_indices(None) == []


def test_parse_box_returns_sorted_ranges_of_the_last_box() -> None:
    first = {"xref": "x", "yref": "y", "x": [0.0, 1.0], "y": [0.0, 1.0]}
    dragged_backwards = {"xref": "x", "yref": "y", "x": [2.5, -1.0], "y": [3.0, 0.5]}
    assert parse_box(selection(box=[first, dragged_backwards])) == ((-1.0, 2.5), (0.5, 3.0))
    assert parse_box(selection(DATA_POINT)) is None
    assert parse_box(None) is None
    flat = {"xref": "x", "yref": "y", "x": [1.0, 1.0], "y": [0.0, 2.0]}
    assert parse_box(selection(box=[flat])) is None


# --- loss curves ---------------------------------------------------------------------------------


def history(terms: tuple[str, ...], epochs: int = 3) -> list[dict]:
    return [
        {
            "epoch": e,
            "seconds": 1.0,
            "train": {t: 100.0 / e + i for i, t in enumerate(terms)},
            "test": {t: 110.0 / e + i for i, t in enumerate(terms)},
        }
        for e in range(1, epochs + 1)
    ]


def test_loss_curves_one_colour_per_term_solid_train_dashed_test() -> None:
    fig = loss_curves(history(("loss", "recon", "kl")))
    assert len(fig.data) == 6
    assert [t.name for t in fig.data] == [
        "train loss",
        "test loss",
        "train recon",
        "test recon",
        "train kl",
        "test kl",
    ]
    for train, test in zip(fig.data[::2], fig.data[1::2]):
        assert train.line.dash == "solid" and test.line.dash == "dash"
        assert train.line.color == test.line.color
    assert len({t.line.color for t in fig.data}) == 3
    assert fig.data[0].x == (1, 2, 3)
    assert fig.data[1].y == pytest.approx((110.0, 55.0, 110.0 / 3))


def test_loss_curves_mixed_term_sets_and_empty_history() -> None:
    ae = loss_curves(history(("loss", "recon")))
    assert len(ae.data) == 4 and not any("kl" in t.name for t in ae.data)
    mixed = history(("loss", "recon"), epochs=2) + [{"epoch": 3, "train": {"loss": 1.0, "kl": 2.0}, "test": {}}]
    fig = loss_curves(mixed)
    kl = by_name(fig, "train kl")
    assert kl.y == (None, None, 2.0)  # a gap where the term is missing
    assert not any(t.name == "test kl" for t in fig.data)
    empty = loss_curves([])
    assert len(empty.data) == 0
    assert "no training history" in empty.layout.annotations[0].text
    empty.to_json()


# --- heatmaps and bars ---------------------------------------------------------------------------


def test_overlap_heatmap_has_fixed_zero_one_range_and_two_decimal_labels() -> None:
    rng = np.random.default_rng(SEED)
    m = rng.uniform(0.0, 0.4, size=(10, 10))  # a narrow data range must not stretch the colours
    fig = overlap_heatmap(m, title="AE")
    heat = fig.data[0]
    assert (heat.zmin, heat.zmax) == (0.0, 1.0)
    assert heat.text[2][3] == f"{m[2, 3]:.2f}" and heat.texttemplate == "%{text}"
    assert list(heat.x) == list(CLASS_NAMES) and list(heat.y) == list(CLASS_NAMES)
    assert fig.layout.xaxis.type == "category" and fig.layout.yaxis.autorange == "reversed"
    names = [f"c{i}" for i in range(4)]
    assert list(overlap_heatmap(np.eye(4), class_names=names).data[0].x) == names
    with pytest.raises(ValueError, match="class names"):
        overlap_heatmap(np.eye(4), class_names=names[:3])
    with pytest.raises(ValueError, match="square"):
        overlap_heatmap(np.ones((3, 4)))


def test_delta_heatmap_is_centred_on_zero() -> None:
    a = np.full((10, 10), 0.5)
    b = a.copy()
    b[1, 2], b[4, 4] = 0.2, 0.9  # deltas +0.3 and -0.4
    heat = delta_heatmap(a, b).data[0]
    np.testing.assert_allclose(heat.z, a - b)
    assert heat.zmid == 0.0 and heat.zmin == -heat.zmax
    assert heat.zmax == pytest.approx(0.4)
    assert heat.text[1][2] == "+0.30" and heat.text[4][4] == "-0.40"
    assert delta_heatmap(a, a).data[0].zmax > 0  # an all-zero delta still has a drawable range


def test_metric_bars_one_bar_per_model_and_metric() -> None:
    values = {
        "AE": {"knn": 0.91, "silhouette": 0.30},
        "VAE": {"knn": 0.88, "silhouette": 0.45},
        "PCA": {"knn": 0.40},  # missing metric -> an empty bar, not a crash
    }
    fig = metric_bars(values, {"knn": "kNN accuracy", "silhouette": "silhouette"})
    assert len(fig.data) == 6
    assert [a.text for a in fig.layout.annotations] == ["kNN accuracy", "silhouette"]
    knn = [t for t in fig.data if t.xaxis == "x"]
    assert [(t.name, t.y[0]) for t in knn] == [("AE", 0.91), ("VAE", 0.88), ("PCA", 0.40)]
    pca_sil = [t for t in fig.data if t.xaxis == "x2" and t.name == "PCA"][0]
    assert pca_sil.y == (None,) and pca_sil.text == ("n/a",)
    # Each model once in the legend, in the same colour in every panel.
    assert sum(bool(t.showlegend) for t in fig.data) == 3
    assert len({(t.name, t.marker.color) for t in fig.data}) == 3


# --- the real click path: Streamlit + plotly.js in Chromium ----------------------------------------


APP = """
import json, os, sys
import numpy as np
import streamlit as st
sys.path.insert(0, {repo!r})
from vae.plots.scatter import ClickGrid, latent_scatter

pts = np.array([[1.0, 1.0], [1.2, 0.8], [-1.0, 1.0]])
fig = latent_scatter(pts, np.array([0, 1, 2]), indices=np.array([500, 501, 502]),
                     grid=ClickGrid((-2.0, 2.0), (-2.0, 2.0), n=41), highlight={{"point": [1.0, 1.0]}})
event = st.plotly_chart(fig, key="s", on_select="rerun", selection_mode=("points", "box"), width=500, height=500)
# Written whole, then renamed: the test polls this file and must never read half of it.
with open({out!r} + ".tmp", "w") as f:
    json.dump(dict(event.selection), f)
os.replace({out!r} + ".tmp", {out!r})
"""


@pytest.fixture
def streamlit_app(tmp_path: Path):
    """A one-chart Streamlit app on a free port; yields (url, path of the JSON it writes on each run)."""
    require_browser()
    out = tmp_path / "selection.json"
    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent(APP.format(repo=str(REPO), out=str(out))))
    with streamlit_server(app, timeout=30) as url:
        yield f"{url}/", out


def test_clicks_on_empty_space_and_on_points_reach_streamlit(streamlit_app) -> None:
    from playwright.sync_api import sync_playwright

    url, out = streamlit_app

    def click_at(page, x: float, y: float) -> Click | None:
        before = out.read_text() if out.exists() else ""
        px, py = page.evaluate(
            """([x, y]) => {
                const gd = document.querySelector('.js-plotly-plot');
                const box = gd.querySelector('.nsewdrag').getBoundingClientRect();
                return [box.left + gd._fullLayout.xaxis.l2p(x), box.top + gd._fullLayout.yaxis.l2p(y)];
            }""",
            [x, y],
        )
        # plotly.js selects the point it is *hovering*: glide in (hover is throttled) and let it settle,
        # or the click lands on the previous hover target and toggles that off instead.
        page.mouse.move(px, py, steps=8)
        page.wait_for_timeout(300)
        page.mouse.click(px, py)
        deadline = time.monotonic() + 15
        while (out.read_text() if out.exists() else "") == before:
            assert time.monotonic() < deadline, "no rerun after the click"
            time.sleep(0.1)
        return parse_selection(json.loads(out.read_text()))

    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 800, "height": 700})
            page.goto(url)
            page.wait_for_selector(".js-plotly-plot .nsewdrag", timeout=30_000)
            page.wait_for_function("() => document.querySelector('.js-plotly-plot')._fullLayout")
            # Empty space, between grid points (spacing 0.1): the nearest invisible grid point answers.
            empty = click_at(page, -1.23, -0.56)
            assert empty is not None and empty.on_grid and empty.index is None
            assert empty.x == pytest.approx(-1.2, abs=1e-5) and empty.y == pytest.approx(-0.6, abs=1e-5)
            # A data point under the (non-clickable) highlight ring: its dataset index comes back.
            assert click_at(page, 1.0, 1.0) == Click(1.0, 1.0, 500, False)
        finally:
            browser.close()


def test_class_bars_group_each_models_values_by_class_in_its_colour() -> None:
    from vae.plots.charts import class_bars

    values = {"ae-2d": np.arange(10) / 10, "vae-2d": np.ones(10)}
    names = [str(c) for c in range(10)]
    fig = class_bars(values, names, {"ae-2d": "#111111", "vae-2d": "#222222"}, y_title="ratio", reference=(1.0, "gap"))
    assert [t.name for t in fig.data] == ["ae-2d", "vae-2d"] and fig.layout.barmode == "group"
    assert list(fig.data[0].x) == names and list(fig.data[0].y) == pytest.approx(values["ae-2d"].tolist())
    assert fig.data[1].marker.color == "#222222" and fig.layout.yaxis.title.text == "ratio"
    assert len(fig.layout.shapes) == 1 and fig.layout.shapes[0].y0 == 1.0
    assert not class_bars(values, names, {"ae-2d": "#111111", "vae-2d": "#222222"}, y_title="spread").layout.shapes


def test_one_epoch_of_loss_curves_says_why_there_is_no_curve() -> None:
    history = [{"epoch": 1, "train": {"loss": 160.0, "recon": 150.0}, "test": {"loss": 158.0, "recon": 149.0}}]
    fig = loss_curves(history)
    notes = [a.text for a in fig.layout.annotations]
    assert any("One epoch" in n and "a curve needs a second epoch" in n for n in notes)
    assert list(fig.layout.xaxis.range) == [0.5, 1.5] and fig.layout.xaxis.dtick == 1  # not Plotly's 0-2
    two = loss_curves([history[0], {**history[0], "epoch": 2}])
    assert not any("One epoch" in a.text for a in two.layout.annotations)


def test_the_difference_heatmap_names_its_difference_in_the_title_not_beside_the_bar() -> None:
    fig = delta_heatmap(np.eye(3), np.zeros((3, 3)), names=("ae-2d (AE dense)", "vae-2d (VAE dense)"))
    assert fig.data[0].colorbar.title.text == "Δ" and fig.data[0].colorbar.title.side == "top"
    assert fig.layout.title.text == "Δ = ae-2d (AE dense) − vae-2d (VAE dense)"
    assert delta_heatmap(np.eye(3), np.zeros((3, 3)), title="left − right").layout.title.text == "left − right"
