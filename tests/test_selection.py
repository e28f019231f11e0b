"""vae/selection.py against direct computations: the lasso's point-in-polygon, counts, spread, neighbourhoods,
nearest neighbours, the even sample, the CSV and the PNG sheet."""

from __future__ import annotations

import io
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from matplotlib.path import Path as PolygonPath
from PIL import Image

from tests.conftest import SEED
from vae.images import strip, to_uint8_image, upscale
from vae.selection import (
    Neighbourhood,
    _drop_self,
    as_selection,
    class_counts,
    even_sample,
    nearest,
    neighbourhood,
    points_in_polygon,
    selection_csv,
    selection_sheet,
    sheet_cell_box,
    spread,
)

# ---------------------------------------------------------------------------------------------
# Point in polygon


def winding_parity(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Inside by the even-odd rule, computed another way: the winding number (the sum of the angles each edge
    turns through, seen from the point, over 2 pi) is odd exactly when a ray crosses the edges an odd number of
    times, for any closed polygon, self-crossing or not."""
    inside = []
    for p in points:
        v = polygon - p
        a = np.arctan2(v[:, 1], v[:, 0])
        turns = np.diff(np.append(a, a[0]))
        turns = (turns + np.pi) % (2 * np.pi) - np.pi
        inside.append(int(round(turns.sum() / (2 * np.pi))) % 2 == 1)
    return np.array(inside)


def distance_to_edges(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    a, b = polygon, np.roll(polygon, -1, axis=0)
    d = b - a
    t = np.clip(((points[:, None, :] - a) * d).sum(-1) / (d * d).sum(-1), 0, 1)
    closest = a + t[..., None] * d
    return np.linalg.norm(points[:, None, :] - closest, axis=-1).min(axis=1)


POLYGONS = {
    "triangle": np.array([[0.0, 0.0], [4.0, 0.5], [1.0, 3.0]]),
    # Concave: a U open at the top, whose inner notch is outside.
    "u": np.array([[0, 0], [3, 0], [3, 3], [2, 3], [2, 1], [1, 1], [1, 3], [0, 3]], dtype=float),
    # A star with 8 reflex vertices.
    "star": np.array(
        [[np.cos(t) * r, np.sin(t) * r] for t, r in zip(np.linspace(0, 2 * np.pi, 16, endpoint=False), [2, 0.7] * 8)]
    ),
    # A pentagram drawn as one self-crossing lasso: the centre pentagon is enclosed twice, so outside.
    "pentagram": np.array([[np.cos(t), np.sin(t)] for t in np.pi / 2 + np.arange(5) * 4 * np.pi / 5]) * 2,
}


@pytest.mark.parametrize("name", list(POLYGONS))
def test_points_in_polygon_agrees_with_the_winding_numbers_parity(name: str) -> None:
    polygon = POLYGONS[name]
    rng = np.random.default_rng(SEED)
    lo, hi = polygon.min(axis=0) - 0.5, polygon.max(axis=0) + 0.5
    points = rng.uniform(lo, hi, size=(4000, 2))
    points = points[distance_to_edges(points, polygon) > 1e-6]  # away from the edges, where either answer is fair
    inside = points_in_polygon(points, polygon)
    assert inside.dtype == bool and inside.shape == (len(points),)
    np.testing.assert_array_equal(inside, winding_parity(points, polygon))
    assert 0.05 < inside.mean() < 0.95  # both answers are tested
    # And matplotlib's Path, the trusted reference (it counts crossings too: the pentagram's centre is out).
    np.testing.assert_array_equal(inside, PolygonPath(polygon).contains_points(points))


def test_points_in_polygon_on_a_concave_polygon_and_a_box() -> None:
    u = POLYGONS["u"]
    points = np.array([[0.5, 2.5], [2.5, 2.5], [1.5, 0.5], [1.5, 2.0], [1.5, 3.5], [-0.1, 1.0], [3.1, 1.0]])
    np.testing.assert_array_equal(points_in_polygon(points, u), [True, True, True, False, False, False, False])
    # Closing the polygon by repeating its first vertex changes nothing.
    np.testing.assert_array_equal(points_in_polygon(points, np.vstack([u, u[:1]])), points_in_polygon(points, u))
    # A box is its 4 corners, in either winding.
    rng = np.random.default_rng(SEED)
    xy = rng.uniform(-1, 3, size=(2000, 2))
    box = np.array([[0.2, -0.5], [2.1, -0.5], [2.1, 1.7], [0.2, 1.7]])
    expected = (xy[:, 0] > 0.2) & (xy[:, 0] < 2.1) & (xy[:, 1] > -0.5) & (xy[:, 1] < 1.7)
    np.testing.assert_array_equal(points_in_polygon(xy, box), expected)
    np.testing.assert_array_equal(points_in_polygon(xy, box[::-1]), expected)
    # The pentagram's doubly enclosed centre is outside by the even-odd rule, its points inside.
    star = POLYGONS["pentagram"]
    np.testing.assert_array_equal(points_in_polygon([[0.0, 0.0], [0.0, 1.5]], star), [False, True])


def test_points_in_polygon_rejects_bad_input() -> None:
    square = [[0, 0], [1, 0], [1, 1], [0, 1]]
    with pytest.raises(ValueError, match=r"points must have shape \[N, 2\], got \[3\]"):
        points_in_polygon([1, 2, 3], square)
    with pytest.raises(ValueError, match=r"polygon must have shape \[N, 2\], got \[4, 3\]"):
        points_in_polygon([[0, 0]], np.zeros((4, 3)))
    with pytest.raises(ValueError, match="polygon needs at least 3 vertices, got 2"):
        points_in_polygon([[0, 0]], [[0, 0], [1, 1]])
    with pytest.raises(ValueError, match="points must be finite"):
        points_in_polygon([[np.nan, 0]], square)
    with pytest.raises(ValueError, match="polygon must hold numbers"):
        points_in_polygon([[0, 0]], np.array([["a", "b"]] * 3))


# ---------------------------------------------------------------------------------------------
# Counts, spread


def test_as_selection_sorts_and_rejects_what_is_not_a_set() -> None:
    np.testing.assert_array_equal(as_selection([5, 1, 3], 6), [1, 3, 5])
    assert as_selection([], 6).shape == (0,)
    with pytest.raises(ValueError, match=r"indices must be in \[0, 6\) for 6 points, got 6"):
        as_selection([1, 6], 6)
    with pytest.raises(ValueError, match=r"indices must be in \[0, 6\) for 6 points, got -1"):
        as_selection([-1], 6)
    with pytest.raises(ValueError, match="indices must be unique .* got 3 more than once"):
        as_selection([3, 1, 3], 6)
    with pytest.raises(ValueError, match="indices must hold integers, got dtype float64"):
        as_selection([1.5], 6)
    with pytest.raises(ValueError, match="indices must hold integers, got dtype bool"):
        as_selection([True], 6)
    with pytest.raises(ValueError, match="indices must be a 1-D array"):
        as_selection([[1]], 6)
    with pytest.raises(ValueError, match="the selection is empty"):
        as_selection([], 6, allow_empty=False)


def test_class_counts_are_the_selected_labels_counted() -> None:
    rng = np.random.default_rng(SEED)
    labels = rng.integers(0, 10, size=500)
    indices = rng.choice(500, size=120, replace=False)
    counts = class_counts(labels, indices, 10)
    assert counts.dtype == np.int64 and counts.shape == (10,)
    assert counts.tolist() == [sum(1 for i in indices if labels[i] == c) for c in range(10)]
    assert class_counts(labels, [], 10).tolist() == [0] * 10
    with pytest.raises(ValueError, match="n_classes must be a positive integer, got 0"):
        class_counts(labels, indices, 0)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\), got [3-9]"):
        class_counts(labels, indices, 3)
    with pytest.raises(ValueError, match=r"indices must be in \[0, 500\)"):
        class_counts(labels, [500], 10)


def test_spread_is_the_ratio_of_mean_distances_to_the_centroids() -> None:
    rng = np.random.default_rng(SEED)
    view = rng.normal(size=(400, 2)) * [3.0, 1.0]
    indices = rng.choice(400, size=50, replace=False)
    chosen = view[indices]
    own = np.mean([np.hypot(*(p - chosen.mean(axis=0))) for p in chosen])
    whole = np.mean([np.hypot(*(p - view.mean(axis=0))) for p in view])
    assert spread(view, indices) == pytest.approx(own / whole, rel=1e-12)
    assert spread(view, np.arange(400)) == pytest.approx(1.0)
    assert spread(view, [7]) == 0.0
    # A tight clump is much less spread than the plane.
    clump = np.argsort(np.linalg.norm(view - view[0], axis=1))[:20]
    assert spread(view, clump) < 0.3
    with pytest.raises(ValueError, match="the selection is empty"):
        spread(view, [])
    with pytest.raises(ValueError, match="all points of the view coincide"):
        spread(np.ones((5, 2)), [1])
    with pytest.raises(ValueError, match=r"view must have shape \[N, 2\]"):
        spread(np.ones((5, 3)), [1])


# ---------------------------------------------------------------------------------------------
# Neighbourhood, nearest


def brute_neighbours(codes: np.ndarray, index: np.ndarray, k: int) -> np.ndarray:
    """``[S, k]``: for each selected image, its k nearest others by a full distance matrix."""
    distances = np.sqrt(((codes[index][:, None, :] - codes[None, :, :]) ** 2).sum(-1))  # [S, N]
    distances[np.arange(len(index)), index] = np.inf
    return np.argsort(distances, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("k", [1, 5, 12])
def test_neighbourhood_matches_a_brute_force_count(k: int) -> None:
    rng = np.random.default_rng(SEED)
    labels = rng.integers(0, 4, size=300)
    codes = rng.normal(size=(300, 6)) + labels[:, None] * 0.8  # classes apart, overlapping
    index = np.sort(rng.choice(300, size=80, replace=False))
    found = brute_neighbours(codes, index, k)
    selected = np.isin(np.arange(300), index)
    expected_selected = np.mean([selected[j] for row in found for j in row])
    expected_other = np.mean([labels[j] != labels[i] for i, row in zip(index, found) for j in row])
    result = neighbourhood(codes, labels, rng.permutation(index), k=k)  # any order of the selection
    assert isinstance(result, Neighbourhood)
    assert result.share_selected == pytest.approx(expected_selected, abs=1e-12)
    assert result.share_other_class == pytest.approx(expected_other, abs=1e-12)
    # Everything selected: every neighbour is selected.
    assert neighbourhood(codes, labels, np.arange(300), k=k).share_selected == 1.0
    # Measured from some of the selected images only: the same count over their rows alone.
    some = index[::3]
    rows = found[::3]
    sampled = neighbourhood(codes, labels, index, k=k, queries=some)
    assert sampled.share_selected == pytest.approx(np.mean(selected[rows]), abs=1e-12)
    assert sampled.share_other_class == pytest.approx(np.mean(labels[rows] != labels[some][:, None]), abs=1e-12)


def test_neighbourhood_of_separated_clusters() -> None:
    # Two far-apart blobs of one class each: a selection of one blob is closed and pure.
    rng = np.random.default_rng(SEED)
    codes = np.concatenate([rng.normal(size=(50, 3)), rng.normal(size=(50, 3)) + 100])
    labels = np.repeat([0, 1], 50)
    assert neighbourhood(codes, labels, np.arange(50)) == Neighbourhood(1.0, 0.0)


def test_a_selected_image_is_not_its_own_neighbour_even_among_duplicates() -> None:
    # Its position in the found list does not matter; when it is missing the farthest found goes.
    found = np.array([[7, 3, 9], [3, 7, 9], [1, 2, 4]])
    np.testing.assert_array_equal(_drop_self(found, np.array([7, 7, 7]), 2), [[3, 9], [3, 9], [1, 2]])
    codes = np.zeros((6, 2))  # six identical codes
    labels = np.array([0, 0, 0, 1, 1, 1])
    result = neighbourhood(codes, labels, [0], k=5)  # all five others, whatever the order
    assert result == Neighbourhood(0.0, 0.6)


def test_neighbourhood_rejects_bad_input() -> None:
    codes, labels = np.zeros((10, 3)), np.zeros(10, dtype=int)
    with pytest.raises(ValueError, match="need one label per code: 10 codes, 9 labels"):
        neighbourhood(codes, labels[:9], [0])
    with pytest.raises(ValueError, match="k must be less than the number of points \\(10\\), got 10"):
        neighbourhood(codes, labels, [0], k=10)
    with pytest.raises(ValueError, match="k must be a positive integer, got 0"):
        neighbourhood(codes, labels, [0], k=0)
    with pytest.raises(ValueError, match="the selection is empty"):
        neighbourhood(codes, labels, [])
    with pytest.raises(ValueError, match=r"codes must have shape \[N, D\]"):
        neighbourhood(np.zeros(10), labels, [0])
    with pytest.raises(ValueError, match="codes must be finite"):
        neighbourhood(np.full((10, 3), np.inf), labels, [0])
    with pytest.raises(ValueError, match=r"queries must be selected images \(a subset of indices\)"):
        neighbourhood(codes, labels, [0, 1], queries=[2])


def test_nearest_matches_brute_force_with_ties_by_index() -> None:
    rng = np.random.default_rng(SEED)
    codes = rng.integers(-3, 4, size=(200, 3)).astype(np.float32)  # a lattice: many equal distances
    for index in (0, 57, 199):
        got, distances = nearest(codes, index, k=8)
        brute = sorted(
            (float(np.linalg.norm(codes[j].astype(float) - codes[index])), j) for j in range(200) if j != index
        )[:8]
        assert got.tolist() == [j for _, j in brute]
        np.testing.assert_allclose(distances, [d for d, _ in brute], rtol=1e-12)
        assert got.dtype == np.int64 and distances.dtype == np.float64
    # A duplicate of the image is its nearest, at distance 0; the image itself never is.
    twins = np.array([[0.0, 0.0], [5.0, 5.0], [0.0, 0.0], [1.0, 0.0]])
    got, distances = nearest(twins, 2, k=3)
    assert got.tolist() == [0, 3, 1] and distances[0] == 0.0


def test_nearest_rejects_bad_input() -> None:
    codes = np.zeros((5, 2))
    with pytest.raises(ValueError, match=r"index must be an integer in \[0, 5\), got 5"):
        nearest(codes, 5)
    with pytest.raises(ValueError, match=r"index must be an integer in \[0, 5\), got 1.0"):
        nearest(codes, 1.0)
    with pytest.raises(ValueError, match="k must be less than the number of points \\(5\\), got 8"):
        nearest(codes, 0)
    with pytest.raises(ValueError, match="k must be a positive integer, got -1"):
        nearest(codes, 0, k=-1)


# ---------------------------------------------------------------------------------------------
# Even sample


def test_even_sample_keeps_small_selections_and_spreads_over_large_ones() -> None:
    rng = np.random.default_rng(SEED)
    small = rng.choice(1000, size=40, replace=False)
    np.testing.assert_array_equal(even_sample(small), np.sort(small))
    large = rng.choice(70_000, size=20_000, replace=False)
    picked = even_sample(large, limit=100)
    ordered = np.sort(large)
    # The documented positions, in exact rational arithmetic: round half up of i * (S - 1) / (limit - 1).
    positions = [int(Fraction(i * 19_999, 99) + Fraction(1, 2)) for i in range(100)]
    np.testing.assert_array_equal(picked, ordered[positions])
    assert picked[0] == ordered[0] and picked[-1] == ordered[-1]
    gaps = np.diff(positions)
    assert gaps.max() - gaps.min() <= 1  # evenly spaced over the sorted selection
    np.testing.assert_array_equal(even_sample(large[::-1]), picked)  # the selection's order does not matter
    assert even_sample(np.arange(101), limit=100).tolist() == [*range(50), *range(51, 101)]
    assert even_sample([9, 4, 6], limit=1).tolist() == [4]
    with pytest.raises(ValueError, match="limit must be a positive integer, got 0"):
        even_sample(small, limit=0)
    with pytest.raises(ValueError, match="indices must be unique"):
        even_sample([1, 1])


# ---------------------------------------------------------------------------------------------
# CSV


def csv_fixture(n: int = 30):
    rng = np.random.default_rng(SEED)
    labels = rng.integers(0, 10, size=n)
    left = rng.normal(size=(n, 2)).astype(np.float32)
    right = (rng.normal(size=(n, 16)) * 10.0 ** rng.integers(-6, 8, size=(n, 16))).astype(np.float32)
    return labels, left, right, left.copy(), rng.normal(size=(n, 2)).astype(np.float32)


def test_selection_csv_has_the_documented_columns_rows_and_digits() -> None:
    labels, left, right, left_view, right_view = csv_fixture()
    indices = [17, 3, 29, 0]
    text = selection_csv(indices, labels, left, right, left_view, right_view)
    assert text.endswith("\n") and "\r" not in text
    lines = text.splitlines()
    header = ["index", "label", "left_z1", "left_z2", *(f"right_z{i}" for i in range(1, 17))]
    assert lines[0].split(",") == [*header, "left_x", "left_y", "right_x", "right_y"]
    assert len(lines) == 5
    table = pd.read_csv(io.StringIO(text))
    assert table["index"].tolist() == [0, 3, 17, 29]  # ascending
    assert table["label"].tolist() == labels[[0, 3, 17, 29]].tolist()
    expected = np.concatenate([left, right, left_view, right_view], axis=1)[[0, 3, 17, 29]]
    for line, row in zip(lines[1:], expected):
        cells = line.split(",")[2:]
        assert cells == [f"{float(v):.7g}" for v in row]  # C's %.7g of the float32 value
    # 7 significant digits: reading back is within float32's own rounding of 7 digits.
    np.testing.assert_allclose(table.iloc[:, 2:].to_numpy(), expected, rtol=5e-7)


def test_selection_csv_writes_the_edge_cases_as_documented() -> None:
    codes = np.array([[1.5e-5, -0.0], [12345678.0, 0.1], [np.nan, np.inf]], dtype=np.float32)
    text = selection_csv([0, 1, 2], [1, 2, 3], codes, codes, codes, codes)
    rows = [line.split(",") for line in text.splitlines()[1:]]
    assert rows[0][:4] == ["0", "1", "1.5e-05", "-0"]
    assert rows[1][:4] == ["1", "2", "1.234568e+07", "0.1"]  # float32 0.1 is 0.100000001..., 7 digits: 0.1
    assert rows[2][:4] == ["2", "3", "nan", "inf"]
    empty = selection_csv([], [1, 2, 3], codes, codes, codes, codes)
    assert empty.count("\n") == 1 and empty.startswith("index,label,left_z1,left_z2,right_z1")


def test_selection_csv_rejects_mismatched_arrays() -> None:
    labels, left, right, left_view, right_view = csv_fixture()
    with pytest.raises(ValueError, match="right_codes has 29 rows but there are 30 labels"):
        selection_csv([0], labels, left, right[:29], left_view, right_view)
    with pytest.raises(ValueError, match=r"left_view must have shape \[N, 2\], got \[30, 16\]"):
        selection_csv([0], labels, left, right, right, right_view)
    with pytest.raises(ValueError, match=r"indices must be in \[0, 30\)"):
        selection_csv([30], labels, left, right, left_view, right_view)
    with pytest.raises(ValueError, match="indices must be unique"):
        selection_csv([2, 2], labels, left, right, left_view, right_view)
    with pytest.raises(ValueError, match="labels must hold integers"):
        selection_csv([0], labels.astype(float), left, right, left_view, right_view)


# ---------------------------------------------------------------------------------------------
# PNG sheet


def sheet_fixture(count: int):
    rng = np.random.default_rng(SEED)
    images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
    left = rng.uniform(size=(count, 28, 28)).astype(np.float32)  # decoder output, floats in [0, 1]
    right = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=count)
    return images, left, right, labels


@pytest.mark.parametrize(("count", "headed"), [(1, False), (7, True), (100, False)])
def test_selection_sheet_places_each_triple_under_its_label(count: int, headed: bool) -> None:
    images, left, right, labels = sheet_fixture(count)
    names = tuple(f"class {c}" for c in range(10))
    png = selection_sheet(images, left, right, labels, names, model_names=("ae-2d", "vae-2d") if headed else None)
    sheet = np.asarray(Image.open(io.BytesIO(png)))
    assert sheet.dtype == np.uint8 and sheet.ndim == 2
    last_top, last_left, h, w = sheet_cell_box(count - 1, count, headed)
    columns = min(count, 10)
    assert sheet.shape[1] == 8 + columns * (w + 8)
    assert sheet.shape[0] >= last_top + h
    for i in range(count):
        top, left_x, h, w = sheet_cell_box(i, count, headed)
        triple = strip([images[i], to_uint8_image(left[i]), right[i]])  # floats in [0, 1] -> uint8 as everywhere
        np.testing.assert_array_equal(sheet[top : top + h, left_x : left_x + w], upscale(triple, 2))
        band = sheet[top - 14 : top, left_x : left_x + w]
        assert (band < 128).any(), f"no label text above cell {i}"  # its class name, in black on white
    if headed:
        assert (sheet[:18] < 128).any()
    # With the images' indices, the labels are longer: more ink above each cell, the cells themselves unchanged.
    numbered = np.asarray(
        Image.open(io.BytesIO(selection_sheet(images, left, right, labels, names, indices=np.arange(count) + 60_000)))
    )
    top, left_x, h, w = sheet_cell_box(0, count, False)
    plain = (
        sheet if not headed else np.asarray(Image.open(io.BytesIO(selection_sheet(images, left, right, labels, names))))
    )
    np.testing.assert_array_equal(numbered[top : top + h], plain[top : top + h])
    assert (numbered[top - 14 : top, left_x : left_x + w] < 128).sum() > (
        plain[top - 14 : top, left_x : left_x + w] < 128
    ).sum()


def test_selection_sheet_rejects_bad_input() -> None:
    images, left, right, labels = sheet_fixture(3)
    names = [str(c) for c in range(10)]
    with pytest.raises(ValueError, match="a sheet holds at most 100 images, got 101"):
        selection_sheet(*sheet_fixture(101), names)
    with pytest.raises(ValueError, match="images must be uint8"):
        selection_sheet(images.astype(np.float32), left, right, labels, names)
    with pytest.raises(ValueError, match=r"right_recon must have the images' shape \[3, 28, 28\], got \[2, 28, 28\]"):
        selection_sheet(images, left, right[:2], labels, names)
    with pytest.raises(ValueError, match="need one index per image: 3 images, 2 indices"):
        selection_sheet(images, left, right, labels, names, indices=[4, 5])
    with pytest.raises(ValueError, match="need one label per image: 3 images, 2 labels"):
        selection_sheet(images, left, right, labels[:2], names)
    with pytest.raises(ValueError, match=r"labels must index class_names \(0..1\)"):
        selection_sheet(images, left, right, [0, 1, 2], names[:2])
    with pytest.raises(ValueError, match=r"images must have shape \[K, 28, 28\] with K >= 1, got \[0, 28, 28\]"):
        selection_sheet(images[:0], left[:0], right[:0], labels[:0], names)
    with pytest.raises(ValueError, match=r"images must have shape \[K, 28, 28\] with K >= 1, got \[3, 32, 32\]"):
        selection_sheet(np.zeros((3, 32, 32), np.uint8), left, right, labels, names)
