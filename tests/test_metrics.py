"""Tests for the class-overlap metrics in vae.metrics: each against sklearn or a brute-force numpy version.

Small seeded sets only (at most a few hundred points), so the file runs in a few seconds.
"""

from __future__ import annotations

import math
import re
import statistics
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs
from sklearn.decomposition import PCA
from sklearn.manifold import trustworthiness
from sklearn.metrics import silhouette_score

from vae import metrics
from vae.metrics import (
    REPORT_KEYS,
    class_density,
    knn_accuracy_within,
    knn_and_overlap_within,
    overlap_matrix,
    overlap_report,
    silhouette,
    view_trustworthiness,
)

SEED = 189212


def blobs(n: int = 300, dim: int = 2, centers: int = 3, std: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Well-separated Gaussian blobs: points ``[n, dim]`` and labels ``[n]`` in 0 .. centers - 1."""
    x, y = make_blobs(
        n_samples=n, n_features=dim, centers=centers, cluster_std=std, center_box=(-20, 20), random_state=SEED
    )
    return x, y


def brute_neighbours(x: np.ndarray, k: int) -> np.ndarray:
    """``[N, D]`` -> ``[N, k]`` nearest other points, by a full distance matrix."""
    distance = np.linalg.norm(x[:, None, :] - x[None, :, :], axis=2)
    np.fill_diagonal(distance, np.inf)  # a point is not its own neighbour
    return np.argsort(distance, axis=1, kind="stable")[:, :k]


def brute_knn_accuracy(x: np.ndarray, y: np.ndarray, k: int) -> float:
    neighbours = brute_neighbours(x, k)
    # bincount + argmax: ties go to the smallest label, as in KNeighborsClassifier.
    predicted = np.array([np.bincount(y[row], minlength=y.max() + 1).argmax() for row in neighbours])
    return float(np.mean(predicted == y))


# --- knn_accuracy_within -----------------------------------------------------------------------


def test_knn_within_is_perfect_on_separated_blobs_and_near_chance_on_random_labels() -> None:
    x, y = blobs(centers=4)
    assert knn_accuracy_within(x, y) == 1.0
    random_labels = np.random.default_rng(SEED).integers(0, 4, size=len(x))
    assert 0.25 - 0.1 < knn_accuracy_within(x, random_labels) < 0.25 + 0.1


def test_knn_within_does_not_count_the_point_itself() -> None:
    # Each location holds two points with different labels: its only other neighbour at k=1 is its
    # twin, so every vote is wrong (counting itself would make every vote right).
    places = np.arange(20, dtype=float)[:, None] * np.array([[10.0, 0.0]])  # [20, 2], far apart
    x = np.repeat(places, 2, axis=0)  # [40, 2]
    y = np.tile([0, 1], 20)
    assert knn_accuracy_within(x, y, k=1) == 0.0


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_knn_within_matches_brute_force(k: int) -> None:
    rng = np.random.default_rng(SEED)
    x = rng.normal(size=(50, 3))
    y = rng.integers(0, 3, size=50)
    assert knn_accuracy_within(x, y, k=k) == pytest.approx(brute_knn_accuracy(x, y, k))


def test_knn_within_takes_tensors_and_any_label_values() -> None:
    rng = np.random.default_rng(SEED)
    x = rng.normal(size=(60, 4))
    y = rng.integers(0, 3, size=60)
    expected = knn_accuracy_within(x, y)
    assert knn_accuracy_within(torch.tensor(x, dtype=torch.float32), torch.tensor(y)) == pytest.approx(expected)
    assert knn_accuracy_within(x, y * 10 + 7) == pytest.approx(expected)  # only equality of labels matters


# --- overlap_matrix ----------------------------------------------------------------------------


def test_overlap_rows_sum_to_one_and_separated_blobs_give_identity() -> None:
    x, y = blobs(centers=4)
    matrix = overlap_matrix(x, y, n_classes=4)
    assert matrix.shape == (4, 4)
    np.testing.assert_allclose(matrix, np.eye(4))
    mixed = overlap_matrix(x, np.random.default_rng(SEED).integers(0, 4, size=len(x)), n_classes=4)
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0)
    assert np.all(np.diag(mixed) < 0.5)


def test_overlap_matches_brute_force() -> None:
    rng = np.random.default_rng(SEED)
    x = rng.normal(size=(40, 2))
    y = rng.integers(0, 3, size=40)
    k = 4
    neighbours = brute_neighbours(x, k)
    expected = np.zeros((3, 3))
    for c in range(3):
        members = np.flatnonzero(y == c)
        for j in range(3):
            # mean over class-c points of the share of their k neighbours labelled j
            expected[c, j] = np.mean([np.mean(y[neighbours[i]] == j) for i in members])
    np.testing.assert_allclose(overlap_matrix(x, y, k=k, n_classes=3), expected)


def test_overlap_absent_class_gives_a_nan_row() -> None:
    x, y = blobs(centers=3)
    matrix = overlap_matrix(x, y, n_classes=5)  # classes 3 and 4 have no points
    assert np.isnan(matrix[3:]).all()
    assert not np.isnan(matrix[:3]).any()
    np.testing.assert_allclose(matrix[:3, 3:], 0.0)  # nobody's neighbour is of an absent class


# --- silhouette --------------------------------------------------------------------------------


def test_silhouette_matches_sklearn_and_subsamples_deterministically() -> None:
    x, y = blobs(n=400, dim=5, centers=3, std=4.0)
    assert silhouette(torch.tensor(x), torch.tensor(y)) == pytest.approx(silhouette_score(x, y), abs=1e-12)
    assert silhouette(x, y, sample_size=len(x) + 10) == pytest.approx(silhouette_score(x, y), abs=1e-12)
    first = silhouette(x, y, sample_size=100, seed=1)
    assert silhouette(x, y, sample_size=100, seed=1) == first
    assert silhouette(x, y, sample_size=100, seed=2) != first
    assert abs(first - silhouette_score(x, y)) < 0.15  # a sample estimates the same quantity


# --- view_trustworthiness ----------------------------------------------------------------------


def test_trustworthiness_of_the_identity_view_is_one() -> None:
    x = np.random.default_rng(SEED).normal(size=(200, 2))
    assert view_trustworthiness(x, x) == pytest.approx(1.0)


def test_trustworthiness_ranks_a_pca_view_above_a_random_one() -> None:
    rng = np.random.default_rng(SEED)
    # Structured 10-D data: blobs on a 2-D plane, rotated into 10-D, plus a little noise.
    plane, _ = make_blobs(n_samples=300, n_features=2, centers=5, cluster_std=1.5, random_state=SEED)
    rotation, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    high = np.hstack([plane, np.zeros((300, 8))]) @ rotation + 0.05 * rng.normal(size=(300, 10))
    pca_view = PCA(n_components=2).fit_transform(high)
    random_view = rng.normal(size=(300, 2))
    pca_score = view_trustworthiness(high, pca_view)
    random_score = view_trustworthiness(high, random_view)
    assert pca_score > 0.95
    assert random_score < 0.7
    assert pca_score == pytest.approx(trustworthiness(high, pca_view, n_neighbors=5))


def test_trustworthiness_subsamples_above_the_cap(monkeypatch) -> None:
    rng = np.random.default_rng(SEED)
    high = rng.normal(size=(150, 6))
    low = high[:, :2]
    monkeypatch.setattr(metrics, "TRUSTWORTHINESS_MAX_POINTS", 60)
    default = view_trustworthiness(high, low, seed=3)
    assert default == view_trustworthiness(high, low, sample_size=60, seed=3)
    assert default != view_trustworthiness(high, low, sample_size=60, seed=4)
    assert view_trustworthiness(high, low, sample_size=150) == pytest.approx(trustworthiness(high, low))


# --- class_density -----------------------------------------------------------------------------


def test_class_density_spread_grows_when_a_class_is_scaled_up() -> None:
    x, y = blobs(centers=3)
    before = class_density(x, y, n_classes=3)
    scaled = x.copy()
    centroid = x[y == 1].mean(axis=0)
    scaled[y == 1] = centroid + 3.0 * (x[y == 1] - centroid)
    after = class_density(scaled, y, n_classes=3)
    assert after["spread"][1] == pytest.approx(3.0 * before["spread"][1])
    assert after["nn_distance"][1] == pytest.approx(3.0 * before["nn_distance"][1])
    np.testing.assert_allclose(after["spread"][[0, 2]], before["spread"][[0, 2]])
    assert after["separation_ratio"][1] < before["separation_ratio"][1]


def test_class_density_separation_grows_when_a_class_moves_away() -> None:
    x, y = blobs(centers=3)
    before = class_density(x, y, n_classes=3)
    moved = x.copy()
    moved[y == 2] += 100.0  # far from both other classes
    after = class_density(moved, y, n_classes=3)
    assert after["centroid_separation"][2] > before["centroid_separation"][2] + 50
    assert after["separation_ratio"][2] > before["separation_ratio"][2]
    assert after["spread"][2] == pytest.approx(before["spread"][2])


def test_class_density_ratio_is_scale_free_and_absent_classes_are_nan() -> None:
    x, y = blobs(centers=3)
    density = class_density(x, y, n_classes=4)
    assert set(density) == {"count", "spread", "nn_distance", "centroid_separation", "separation_ratio"}
    np.testing.assert_array_equal(density["count"], np.bincount(y, minlength=4))
    assert all(np.isnan(values[3]) for name, values in density.items() if name != "count")
    assert np.all(density["separation_ratio"][:3] > 1)  # separated blobs sit apart relative to their size
    bigger = class_density(7.0 * x, y, n_classes=4)
    np.testing.assert_allclose(bigger["separation_ratio"], density["separation_ratio"])
    np.testing.assert_allclose(bigger["spread"], 7.0 * density["spread"])


def _class_density_by_hand(points: list[list[float]], labels: list[int], n_classes: int) -> dict[str, list[float]]:
    """class_density written out with loops and math.dist, NaN where a class is absent or too small."""
    nan = float("nan")
    groups = [[p for p, label in zip(points, labels) if label == c] for c in range(n_classes)]
    centroids = [[sum(axis) / len(g) for axis in zip(*g)] if g else None for g in groups]
    spread = [sum(math.dist(p, centroids[c]) for p in g) / len(g) if g else nan for c, g in enumerate(groups)]
    nn = [
        statistics.median(min(math.dist(p, q) for j, q in enumerate(g) if j != i) for i, p in enumerate(g))
        if len(g) >= 2
        else nan
        for g in groups
    ]
    present = [c for c in range(n_classes) if groups[c]]
    separation = [
        min(math.dist(centroids[c], centroids[o]) for o in present if o != c)
        if c in present and len(present) >= 2
        else nan
        for c in range(n_classes)
    ]
    return {"count": [len(g) for g in groups], "spread": spread, "nn_distance": nn, "centroid_separation": separation}


def test_class_density_matches_a_count_by_hand_on_classes_of_one_two_and_many_points() -> None:
    rng = np.random.default_rng(SEED)
    # Class 0: five points; 1: two; 2: one (no nearest neighbour); 3: four, far off; 4: absent.
    labels = [0, 0, 0, 0, 0, 1, 1, 2, 3, 3, 3, 3]
    points = rng.normal(size=(len(labels), 3)) + 4.0 * np.asarray(labels)[:, None]
    points[np.asarray(labels) == 3] += [30.0, -10.0, 5.0]
    ours = class_density(points, np.asarray(labels), n_classes=5)
    expected = _class_density_by_hand(points.tolist(), labels, 5)
    for name, values in expected.items():
        np.testing.assert_allclose(ours[name], values, rtol=1e-12, equal_nan=True, err_msg=name)
    with np.errstate(divide="ignore"):  # class 2's one point: spread 0, ratio inf
        ratio = np.asarray(expected["centroid_separation"]) / expected["spread"]
    np.testing.assert_allclose(ours["separation_ratio"], ratio, equal_nan=True)
    # Exactly two classes present: each one's separation is the distance between the two centroids.
    two = class_density(points[:7], np.asarray(labels[:7]), n_classes=3)
    np.testing.assert_allclose(
        two["centroid_separation"],
        _class_density_by_hand(points[:7].tolist(), labels[:7], 3)["centroid_separation"],
        equal_nan=True,
    )
    assert np.isfinite(two["centroid_separation"][:2]).all()


def test_class_density_of_identical_points_and_absent_classes_warns_nothing() -> None:
    """A class of one repeated point has spread 0 (its ratio is inf), an absent class NaN: quietly."""
    points = np.array([[1.0, 1.0], [1.0, 1.0], [5.0, 0.0], [6.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        density = class_density(points, np.array([0, 0, 1, 1]), n_classes=3)
    assert density["spread"][0] == 0.0 and density["separation_ratio"][0] == np.inf
    assert np.isnan(density["separation_ratio"][2])


def test_class_density_defaults_to_ten_classes_and_names_a_bad_embedding() -> None:
    x, y = blobs(centers=3)
    assert all(len(values) == 10 for values in class_density(x, y).values())
    assert class_density(x[:, :1], y)["count"].sum() == len(x)  # one column is a valid embedding
    with pytest.raises(ValueError, match=r"^embedding must have at least one column, got shape \(300, 0\)$"):
        class_density(x[:, :0], y)
    with pytest.raises(ValueError, match=r"^embedding must be a 2-D array \[N, D\]"):
        overlap_matrix(x[:, 0], y, n_classes=3)


def test_silhouette_needs_from_two_to_n_minus_one_classes() -> None:
    x = np.array([[0.0, 0.0], [0.1, 0.0], [3.0, 0.0], [3.2, 0.1]])
    assert silhouette(x[:3], np.array([0, 0, 1])) == pytest.approx(silhouette_score(x[:3], [0, 0, 1]))
    assert silhouette(x, np.array([0, 1, 2, 2])) == pytest.approx(silhouette_score(x, [0, 1, 2, 2]))
    for labels in ([0, 1, 2], [0, 0, 0]):
        with pytest.raises(ValueError, match=r"^silhouette needs from 2 to N - 1 classes in labels, got \d for N=3$"):
            silhouette(x[:3], np.array(labels))
    # Any three of [0, 0, 1, 1] hold both classes: a sample of 3 is scored; a sample of 2 never can be.
    for seed in range(4):
        assert -1 <= silhouette(x, np.array([0, 0, 1, 1]), sample_size=3, seed=seed) <= 1
        with pytest.raises(ValueError, match=r"^sample_size=2 leaves \d classes; use a larger sample_size$"):
            silhouette(x, np.array([0, 0, 1, 1]), sample_size=2, seed=seed)
    big, labels = blobs(n=200, centers=3, std=2.0)
    assert silhouette(big, labels, sample_size=50) == silhouette(big, labels, sample_size=50, seed=0)


# --- overlap_report ----------------------------------------------------------------------------


def test_the_documented_defaults_are_the_ones_used() -> None:
    """k = 5, ten classes and seed 0 unless told: the defaults give what passing them explicitly gives, and
    another value gives something else (so the comparison could fail)."""
    rng = np.random.default_rng(SEED)  # mixed classes: every number depends on k
    x, y = rng.normal(size=(300, 4)), rng.integers(0, 3, size=300)
    low = x[:, :2]
    np.testing.assert_array_equal(overlap_matrix(x, y), overlap_matrix(x, y, k=5, n_classes=10))
    assert overlap_matrix(x, y).shape == (10, 10)
    assert not np.array_equal(overlap_matrix(x, y, n_classes=3), overlap_matrix(x, y, k=25, n_classes=3))
    assert knn_and_overlap_within(x, y) == knn_and_overlap_within(x, y, k=5, n_classes=10)
    assert knn_and_overlap_within(x, y, k=5) != knn_and_overlap_within(x, y, k=25)
    sampled = view_trustworthiness(x, low, sample_size=100)
    assert sampled == view_trustworthiness(x, low, sample_size=100, seed=0)
    assert sampled != view_trustworthiness(x, low, sample_size=100, seed=1)
    assert view_trustworthiness(x, low, k=1) == pytest.approx(trustworthiness(x, low, n_neighbors=1))
    report = overlap_report(x, y, view_2d=low)
    assert report == overlap_report(x, y, view_2d=low, k=5, seed=0)
    assert report["knn_accuracy_2d"] == knn_accuracy_within(low, y, k=5)
    assert report["trustworthiness"] == view_trustworthiness(x, low, k=5, seed=0)


def test_integer_parameters_refuse_bools_and_fractions_by_name() -> None:
    x, y = blobs(n=60, centers=3)
    for bad in (True, 2.5):
        with pytest.raises(ValueError, match=r"^k must be a positive integer, got "):
            knn_accuracy_within(x, y, k=bad)
        with pytest.raises(ValueError, match=r"^k must be a positive integer, got "):
            view_trustworthiness(x, x, k=bad)
        with pytest.raises(ValueError, match=r"^n_classes must be a positive integer, got "):
            class_density(x, y, n_classes=bad)
    with pytest.raises(ValueError, match=r"^sample_size must be an integer of at least 2 or None, got 2.5$"):
        silhouette(x, y, sample_size=2.5)
    # The smallest allowed values work: one class, one neighbour, a sample of all the points.
    assert class_density(x, np.zeros(len(x), dtype=int), n_classes=1)["count"].tolist() == [len(x)]
    assert silhouette(x, y, sample_size=len(x)) == pytest.approx(silhouette_score(x, y))
    for call in (lambda bad: knn_and_overlap_within(bad, y), lambda bad: overlap_report(bad, y)):
        with pytest.raises(ValueError, match=r"^embedding must be a 2-D array"):
            call(x[:, 0])
        with pytest.raises(ValueError, match=r"^embedding contains NaN"):
            call(np.full_like(x, np.nan))


def test_overlap_report_keys_and_ranges() -> None:
    x, y = blobs(n=300, dim=8, centers=4, std=2.0)
    view = PCA(n_components=2).fit_transform(x)
    report = overlap_report(torch.tensor(x, dtype=torch.float32), torch.tensor(y), view_2d=view)
    assert tuple(report) == REPORT_KEYS
    assert all(isinstance(value, float) for value in report.values())
    for key in ("knn_accuracy", "knn_accuracy_2d", "trustworthiness", "mean_purity"):
        assert 0.0 <= report[key] <= 1.0, key
    assert -1.0 <= report["silhouette"] <= 1.0
    assert report["knn_accuracy"] == pytest.approx(knn_accuracy_within(x, y))
    assert report["mean_purity"] == pytest.approx(np.nanmean(np.diag(overlap_matrix(x, y, n_classes=4))))
    assert report["silhouette"] == pytest.approx(silhouette_score(x, y), abs=1e-6)  # N < the sample size

    without_view = overlap_report(x, y)
    assert tuple(without_view) == REPORT_KEYS
    assert np.isnan(without_view["knn_accuracy_2d"]) and np.isnan(without_view["trustworthiness"])


# --- validation --------------------------------------------------------------------------------

X, Y = blobs(n=30, centers=3)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: knn_accuracy_within(X, Y[:-1]), "labels has 29 entries"),
        (lambda: knn_accuracy_within(X, Y, k=30), "k must be smaller"),
        (lambda: knn_accuracy_within(X, Y, k=0), "k must be a positive integer"),
        (lambda: knn_accuracy_within(X[:, 0], Y), "embedding must be a 2-D array"),
        (lambda: knn_accuracy_within(X, Y[:, None]), "labels must be a 1-D array"),
        (lambda: knn_accuracy_within(np.full((30, 2), np.nan), Y), "embedding contains NaN"),
        (lambda: silhouette(X, np.zeros(30, dtype=int)), "from 2 to N - 1 classes"),
        (lambda: silhouette(X, Y, sample_size=1), "sample_size must be an integer"),
        (lambda: silhouette(X[None], Y), "embedding must be a 2-D array"),
        (lambda: view_trustworthiness(X, X[:-1, :2]), "low has 29 points"),
        (lambda: view_trustworthiness(X, X[:, 0]), "low must be a 2-D array"),
        (lambda: view_trustworthiness(X[:, 0], X), "high must be a 2-D array"),
        (lambda: view_trustworthiness(X, X, k=15), "k must be smaller than half"),
        (lambda: overlap_matrix(X, Y, k=30), "k must be smaller"),
        (lambda: overlap_matrix(X, Y, n_classes=2), "labels must lie in 0 .. 1"),
        (lambda: overlap_matrix(X, Y + 0.5), "labels must be integer"),
        (lambda: overlap_matrix(X, Y[:10]), "labels has 10 entries"),
        (lambda: class_density(X, -Y), "labels must lie in"),
        (lambda: class_density(X, Y, n_classes=0), "n_classes must be a positive integer"),
        (lambda: overlap_report(X, Y, view_2d=X[:-1, :2]), "view_2d has 29 points"),
        (lambda: overlap_report(X, Y, view_2d=X[:, 0]), "view_2d must be a 2-D array"),
        (lambda: overlap_report(X, Y, k=30), "k must be smaller"),
    ],
)
def test_invalid_inputs_raise_value_error(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_knn_and_overlap_within_are_the_two_separate_measures_from_one_search() -> None:
    rng = np.random.default_rng(SEED)
    labels = np.arange(300) % 3 * 2  # classes 0, 2 and 4 of 6: absent classes must not count as pure
    embedding = rng.normal(size=(300, 4)) + labels[:, None] * 0.8
    knn, overlap = metrics.knn_and_overlap_within(embedding, labels, k=5, n_classes=6)
    assert knn == metrics.knn_accuracy_within(embedding, labels, k=5)
    diagonal = np.diag(metrics.overlap_matrix(embedding, labels, k=5, n_classes=6))[[0, 2, 4]]
    assert overlap == pytest.approx(1 - diagonal.mean())
    assert 0 < overlap < 1
    with pytest.raises(ValueError, match="k must be smaller"):
        metrics.knn_and_overlap_within(embedding[:3], labels[:3], k=5, n_classes=6)
    with pytest.raises(ValueError, match="must lie in 0 .. 5"):
        metrics.knn_and_overlap_within(embedding, labels + 2, k=5, n_classes=6)


# --- what the earlier tests left open --------------------------------------------------------


def test_whole_float_labels_are_class_indices_and_strings_are_refused_by_name() -> None:
    x, y = blobs(n=60, centers=3)
    expected = overlap_matrix(x, y, n_classes=3)
    # Labels saved through a float array (float64, or float32 as a torch tensor gives them) are accepted.
    np.testing.assert_array_equal(overlap_matrix(x, y.astype(np.float64), n_classes=3), expected)
    np.testing.assert_array_equal(overlap_matrix(x, torch.tensor(y, dtype=torch.float32), n_classes=3), expected)
    with pytest.raises(ValueError, match=r"^labels must be integer class indices, got dtype <U1$"):
        overlap_matrix(x, np.array(list("abc") * 20), n_classes=3)


def test_class_density_computes_in_float64_whatever_the_embeddings_dtype() -> None:
    # 2**24 and 2**24 + 2 are exact in float32, but their sum is not (float32 spacing is 4 there): a float32
    # mean would put the centroid at 2**24 instead of 2**24 + 1.
    points = np.array([[2.0**24], [2.0**24 + 2], [0.0], [0.0]], dtype=np.float32)
    density = class_density(points, np.array([0, 0, 1, 1]), n_classes=2)
    assert density["centroid_separation"].tolist() == [2.0**24 + 1] * 2


def test_coinciding_classes_of_identical_points_give_a_nan_ratio_quietly() -> None:
    # Both classes sit at one point: separation 0 over spread 0, the ratio left undefined (0 / 0).
    points = np.ones((4, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        density = class_density(points, np.array([0, 0, 1, 1]), n_classes=2)
    assert density["centroid_separation"].tolist() == [0.0, 0.0] and density["spread"].tolist() == [0.0, 0.0]
    assert np.isnan(density["separation_ratio"]).all()


def test_an_absent_class_row_of_nan_comes_without_a_warning() -> None:
    x, y = blobs(n=60, centers=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        matrix = overlap_matrix(x, y, n_classes=4)
    assert np.isnan(matrix[3]).all() and not np.isnan(matrix[:3]).any()


def test_knn_accuracy_within_defaults_to_five_neighbours() -> None:
    rng = np.random.default_rng(SEED)  # mixed classes, so the accuracy depends on k
    x, y = rng.normal(size=(300, 4)), rng.integers(0, 3, size=300)
    assert knn_accuracy_within(x, y) == brute_knn_accuracy(x, y, 5)
    assert brute_knn_accuracy(x, y, 5) != brute_knn_accuracy(x, y, 6)


def test_knn_and_overlap_within_default_to_ten_classes_and_count_a_class_of_one_point() -> None:
    rng = np.random.default_rng(SEED)
    labels = np.arange(40) % 3
    labels[0] = 3  # class 3 has a single point: its k neighbours are all of other classes, purity 0
    embedding = rng.normal(size=(40, 2)) + labels[:, None]
    _, overlap = knn_and_overlap_within(embedding, labels, k=3, n_classes=4)
    diagonal = np.diag(overlap_matrix(embedding, labels, k=3, n_classes=4))
    assert diagonal[3] == 0.0
    assert overlap == pytest.approx(1 - diagonal.mean())  # all four classes, the single point's included
    with pytest.raises(ValueError, match=r"^labels must lie in 0 \.\. 9 \(n_classes=10\), got 0 \.\. 10$"):
        knn_and_overlap_within(embedding, np.where(labels == 3, 10, labels))


def test_trustworthiness_takes_k_up_to_just_under_half_the_points() -> None:
    x = np.random.default_rng(SEED).normal(size=(30, 4))
    low = x[:, :2]
    assert view_trustworthiness(x, low, k=14) == pytest.approx(trustworthiness(x, low, n_neighbors=14))
    with pytest.raises(ValueError, match=r"^k must be smaller than half the number of points scored \(k=15, N=30\)$"):
        view_trustworthiness(x, low, k=15)


def test_overlap_report_passes_its_k_and_seed_to_every_measure(monkeypatch) -> None:
    # Sample sizes below N, so that the seed matters (at the real sizes that would take 5,000+ points).
    monkeypatch.setattr(metrics, "REPORT_SILHOUETTE_POINTS", 100)
    monkeypatch.setattr(metrics, "TRUSTWORTHINESS_MAX_POINTS", 100)
    rng = np.random.default_rng(SEED)
    x, y = rng.normal(size=(300, 4)), rng.integers(0, 3, size=300)
    low = x[:, :2] + 0.5 * rng.normal(size=(300, 2))
    report = overlap_report(x, y, view_2d=low, k=7, seed=3)
    assert report["knn_accuracy"] == brute_knn_accuracy(x, y, 7)
    assert report["knn_accuracy_2d"] == brute_knn_accuracy(low, y, 7)
    assert report["silhouette"] == silhouette(x, y, sample_size=100, seed=3)
    assert report["trustworthiness"] == view_trustworthiness(x, low, k=7, sample_size=100, seed=3)
    # The comparisons above could fail: k, the seed and the sampling each change the numbers.
    assert brute_knn_accuracy(low, y, 7) != brute_knn_accuracy(low, y, 5)
    assert silhouette(x, y, sample_size=100, seed=3) not in (silhouette(x, y, sample_size=100), silhouette(x, y))
    assert view_trustworthiness(x, low, k=7, sample_size=100, seed=3) not in (
        view_trustworthiness(x, low, k=7, sample_size=100, seed=0),
        view_trustworthiness(x, low, k=5, sample_size=100, seed=3),
    )
    default = overlap_report(x, y, view_2d=low)
    assert default == overlap_report(x, y, view_2d=low, k=5, seed=0)
    assert default["silhouette"] != overlap_report(x, y, view_2d=low, seed=1)["silhouette"]


# --- functions the dashboard calls that the slow tests cover end to end ----------------------------


def test_knn_accuracy_matches_a_brute_force_vote_of_the_train_set() -> None:
    rng = np.random.default_rng(SEED)
    train, test = rng.normal(size=(80, 3)), rng.normal(size=(40, 3))
    train_labels, test_labels = rng.integers(0, 3, size=80), rng.integers(0, 3, size=40)
    distance = np.linalg.norm(test[:, None, :] - train[None, :, :], axis=2)  # [40, 80]

    def brute(k: int) -> float:
        nearest = np.argsort(distance, axis=1, kind="stable")[:, :k]
        votes = [np.bincount(train_labels[row], minlength=3).argmax() for row in nearest]
        return float(np.mean(np.array(votes) == test_labels))

    got = metrics.knn_accuracy(torch.tensor(train), torch.tensor(train_labels), test, test_labels)
    assert isinstance(got, float) and got == pytest.approx(brute(5))
    assert metrics.knn_accuracy(train, train_labels, test, test_labels, k=1) == pytest.approx(brute(1))
    assert brute(1) != brute(5)


def test_active_units_counts_the_dimensions_whose_variance_exceeds_a_hundredth(monkeypatch) -> None:
    signs = np.tile([1.0, -1.0], 50)  # mean 0, population variance 1
    # Variances 0.04, 0.0025, 0.0099 and 0.0101 (either side of the threshold) and 0.
    codes = np.stack(
        [0.2 * signs, 0.05 * signs, np.sqrt(0.0099) * signs, np.sqrt(0.0101) * signs, np.zeros(100)], axis=1
    )
    assert metrics.active_units(codes) == 2
    assert metrics.active_units(torch.tensor(codes[:, :1])) == 1
    # At the threshold exactly a unit is not active ("exceeds"); 0.01 has no exact float variance, 0.25 has.
    monkeypatch.setattr(metrics, "ACTIVE_VARIANCE", 0.25)
    assert metrics.active_units(np.stack([0.5 * signs, 0.51 * signs], axis=1)) == 1
    with pytest.raises(ValueError, match="^codes contains NaN or infinite values$"):
        metrics.active_units(np.full((4, 2), np.inf))


def test_data_box_spans_the_trimmed_quantiles_of_each_axis() -> None:
    # 0 .. 1000 on x and its double on y: the 0.5 % and 99.5 % quantiles fall on points 5 and 995.
    points = np.stack([np.arange(1001.0), 2 * np.arange(1001.0)], axis=1)[::-1]  # the order does not matter
    box = metrics.data_box(points)
    assert box == (5.0, 995.0, 10.0, 1990.0) and all(type(value) is float for value in box)
    assert metrics.data_box(points, trim=0.1) == (100.0, 900.0, 200.0, 1800.0)
    assert metrics.data_box(points, trim=0.0) == (0.0, 1000.0, 0.0, 2000.0)
    # float32 views are quantiled as float64: in float32, 1 - (-1e-8) would round to 1 and shift the box.
    small = np.array([[-1e-8, 0.0], [1.0, 3.0]], dtype=np.float32)
    expected = np.quantile(small.astype(np.float64), [0.005, 0.995], axis=0)
    assert metrics.data_box(small) == (expected[0, 0], expected[1, 0], expected[0, 1], expected[1, 1])
    for bad in (np.zeros((0, 2)), np.zeros((5, 3)), np.zeros(4)):
        with pytest.raises(ValueError, match=re.escape(f"embedding must be [N, 2] with N > 0, got {bad.shape}")):
            metrics.data_box(bad)


class _FixedJudge:
    """A judge whose verdicts are given: predict_proba returns these probabilities. float64, so that 0.9 is
    exactly the threshold (the real judge's float32 0.9 lies just below it)."""

    def __init__(self, probabilities: list[list[float]]) -> None:
        self.probabilities = torch.tensor(probabilities, dtype=torch.float64)

    def predict_proba(self, images: torch.Tensor) -> torch.Tensor:
        assert len(images) == len(self.probabilities)
        return self.probabilities


def test_judged_counts_confident_verdicts_and_the_entropy_of_the_classes() -> None:
    # Four images over three classes: verdicts 0, 0, 2, 1; confident (>= 0.9) the first and the last.
    probabilities = [[0.9, 0.05, 0.05], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8], [0.0, 1.0, 0.0]]
    quality = metrics.judged(_FixedJudge(probabilities), torch.zeros(4, 1, 28, 28))
    assert quality.n == 4
    assert quality.confident_share == 0.5
    np.testing.assert_array_equal(quality.class_shares, [0.5, 0.25, 0.25])
    assert quality.entropy == pytest.approx(-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)), abs=1e-12)
    one_class = metrics.judged(_FixedJudge([[0.2, 0.8, 0.0]] * 3), torch.zeros(3, 1, 28, 28))
    assert one_class.entropy == 0.0 and one_class.confident_share == 0.0
    np.testing.assert_array_equal(one_class.class_shares, [0.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="^no images to judge$"):
        metrics.judged(_FixedJudge(np.zeros((0, 10)).tolist()), torch.zeros(0, 1, 28, 28))
