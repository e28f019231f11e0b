"""Tests for vae.projections: shapes, exactness of each inverse against an independent reference, UMAP's
cluster separation and determinism, the neighbour inverse, the disk cache (round trips, keys, bad files,
no pickle) and parameter checking.

Data are 300 seeded points in 3 blobs. umap-learn compiles its numba kernels anew in every process (about
10 s on two idle cores), so UMAP is fitted once per module and reused; the other UMAP fits are warm.
"""

from __future__ import annotations

import copy
import os
import pickle
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.manifold import trustworthiness
from sklearn.neighbors import KNeighborsClassifier

from vae import projections
from vae.projections import (
    IdentityView,
    NeighbourInverse,
    PCAView,
    UMAPView,
    ViewCache,
    available_views,
    make_view,
    view_cache_key,
)

SEED = 189212
N, D = 300, 5
WEIGHTS = "0123456789abcdef" * 4  # stands in for a model's weights SHA-256


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    """Z float32 ``[300, 5]`` in 3 well separated clusters, and the cluster labels ``[300]``."""
    Z, labels = make_blobs(n_samples=N, n_features=D, centers=3, cluster_std=1.0, random_state=SEED)
    return Z.astype(np.float32), labels


@pytest.fixture(scope="module")
def fitted_umap(blobs: tuple[np.ndarray, np.ndarray]) -> tuple[UMAPView, list[str]]:
    """The module's one cold UMAP fit, with the progress messages it sent. Treat as read-only."""
    messages: list[str] = []
    view = UMAPView(n_neighbors=15, min_dist=0.1, random_state=0).fit(blobs[0], progress=messages.append)
    return view, messages


# ---------------------------------------------------------------------------------------------
# Shapes, dtypes, labels


@pytest.mark.parametrize("method", ["identity", "pca", pytest.param("umap", marks=pytest.mark.fits_umap)])
def test_shapes_and_dtypes(method: str, blobs, request: pytest.FixtureRequest) -> None:
    Z = blobs[0]
    # Only the UMAP case pays for the module's UMAP fit, so `-m "not fits_umap"` runs in seconds.
    view = request.getfixturevalue("fitted_umap")[0] if method == "umap" else make_view(method).fit(Z)
    assert view.name == method
    assert view.label == {"identity": "first two dims", "pca": "PCA", "umap": "UMAP"}[method]
    assert view.embedding_.shape == (N, 2) and view.embedding_.dtype == np.float32
    assert (view.n_points_, view.latent_dim_) == (N, D)
    assert view.exact_inverse_ is False
    assert view.from_cache_ is False
    assert np.isfinite(view.embedding_).all()

    P = view.embedding_[:4] + 0.25
    codes = view.inverse_transform(P)
    assert codes.shape == (4, D) and codes.dtype == np.float32
    assert view.inverse_transform(torch.from_numpy(P)).tolist() == codes.tolist()
    assert view.inverse_transform(np.empty((0, 2))).shape == (0, D)
    if method != "umap":  # umap-learn's own transform has its own test below (it compiles for ~10 s)
        points = view.transform(Z[:7])
        assert points.shape == (7, 2) and points.dtype == np.float32
        assert view.transform(torch.from_numpy(Z[:7]).double()).tolist() == points.tolist()


@pytest.mark.parametrize("method", ["identity", "pca"])
def test_torch_input_gives_the_same_view(method: str, blobs) -> None:
    Z = blobs[0]
    from_numpy = make_view(method).fit_transform(Z)
    from_torch = make_view(method).fit_transform(torch.from_numpy(Z))
    assert np.array_equal(from_numpy, from_torch)


@pytest.mark.parametrize("method", ["identity", "pca"])
def test_two_dimensional_latent(method: str) -> None:
    Z = np.random.default_rng(SEED).normal(size=(50, 2)).astype(np.float32)
    view = make_view(method).fit(Z)
    assert view.embedding_.shape == (50, 2) and view.embedding_.dtype == np.float32
    assert view.inverse_transform(view.embedding_).shape == (50, 2)
    # PCA of a 2-D latent is a rotation: exact up to rounding only, so it must not claim exactness.
    assert view.exact_inverse_ is (method == "identity")


def test_fit_transform_returns_a_read_only_embedding_and_leaves_the_input_writable(blobs) -> None:
    Z = blobs[0].copy()
    view = IdentityView()
    embedding = view.fit_transform(Z)
    assert embedding is view.embedding_
    with pytest.raises(ValueError):
        embedding[0, 0] = 1.0
    Z[0, 0] += 1.0  # the caller's array is still theirs, and the view does not alias it
    assert view.embedding_[0, 0] != Z[0, 0]
    assert view.transform(Z).flags.writeable


def test_axis_labels(blobs) -> None:
    assert IdentityView().fit(blobs[0]).axis_labels() == ("z1", "z2")
    first, second = PCAView().fit(blobs[0]).axis_labels()
    assert first.startswith("PC1 (") and second.startswith("PC2 (")


def test_progress_messages(blobs, fitted_umap) -> None:
    assert fitted_umap[1] == [f"fitting UMAP on {N} points", "done"]
    messages: list[str] = []
    PCAView().fit(blobs[0], progress=messages.append)
    assert messages == [f"fitting PCA on {N} points", "done"]


# ---------------------------------------------------------------------------------------------
# Identity and PCA: exact answers


def test_identity_round_trip_is_bit_exact_for_a_2d_latent() -> None:
    Z = np.random.default_rng(SEED).normal(size=(100, 2)).astype(np.float32)
    view = IdentityView().fit(Z)
    assert np.array_equal(view.embedding_, Z)
    assert np.array_equal(view.inverse_transform(view.transform(Z)), Z)


def test_identity_inverse_fills_the_other_dims_with_the_mean(blobs) -> None:
    Z = blobs[0]
    view = IdentityView().fit(Z)
    assert np.array_equal(view.transform(Z), Z[:, :2])
    codes = view.inverse_transform(np.array([[1.5, -2.0]]))
    assert codes[0, :2].tolist() == [1.5, -2.0]
    np.testing.assert_allclose(codes[0, 2:], Z[:, 2:].astype(np.float64).mean(axis=0), rtol=1e-6)


def test_pca_matches_sklearn(blobs) -> None:
    Z = blobs[0]
    view = PCAView().fit(Z)
    # The projection onto the principal plane does not depend on the components' signs or the solver.
    reference = PCA(n_components=2).fit(Z.astype(np.float64))
    expected = reference.inverse_transform(reference.transform(Z.astype(np.float64)))
    np.testing.assert_allclose(view.inverse_transform(view.transform(Z)), expected, atol=1e-4)
    # The coordinates themselves, against the same (full SVD) solver, signs included.
    full = PCA(n_components=2, svd_solver="full").fit(Z.astype(np.float64))
    np.testing.assert_allclose(view.embedding_, full.transform(Z.astype(np.float64)), atol=1e-4)
    np.testing.assert_allclose(view.explained_variance_ratio_, full.explained_variance_ratio_, rtol=1e-6)


def test_pca_round_trip_is_exact_for_data_on_a_plane() -> None:
    rng = np.random.default_rng(SEED)
    plane = rng.normal(size=(2, 6))
    Z = (rng.normal(size=(200, 2)) @ plane + rng.normal(size=6)).astype(np.float32)
    view = PCAView().fit(Z)
    # float32 storage of Z and of the result is the only error left.
    np.testing.assert_allclose(view.inverse_transform(view.transform(Z)), Z, rtol=0, atol=1e-5 * np.abs(Z).max())
    # And it is a real test: off-plane data do not survive the round trip.
    noisy = Z + rng.normal(scale=0.5, size=Z.shape).astype(np.float32)
    assert np.abs(view.inverse_transform(view.transform(noisy)) - noisy).max() > 0.1


# ---------------------------------------------------------------------------------------------
# UMAP


def test_umap_keeps_clusters_apart(blobs, fitted_umap) -> None:
    Z, labels = blobs
    embedding = fitted_umap[0].embedding_
    assert trustworthiness(Z, embedding, n_neighbors=5) >= 0.9
    classifier = KNeighborsClassifier(n_neighbors=5).fit(embedding[::2], labels[::2])
    assert classifier.score(embedding[1::2], labels[1::2]) >= 0.95


def test_umap_is_deterministic_for_a_seed(blobs, fitted_umap) -> None:
    Z = blobs[0]
    again = UMAPView(n_neighbors=15, min_dist=0.1, random_state=0).fit(Z)
    assert np.array_equal(again.embedding_, fitted_umap[0].embedding_)
    other_seed = UMAPView(n_neighbors=15, min_dist=0.1, random_state=1).fit(Z)
    assert not np.array_equal(other_seed.embedding_, fitted_umap[0].embedding_)


def test_umap_default_inverse_is_the_neighbour_inverse(blobs, fitted_umap) -> None:
    Z = blobs[0]
    view = fitted_umap[0]
    assert view.fast_inverse is True and view.inverse_method_ == "neighbours"
    assert np.array_equal(view.inverse_transform(view.embedding_[[0, 17, 299]]), Z[[0, 17, 299]])
    P = np.random.default_rng(SEED).uniform(-5, 5, size=(20, 2))
    assert np.array_equal(view.inverse_transform(P), NeighbourInverse(view.embedding_, Z)(P))


def test_umap_learn_inverse(blobs, fitted_umap) -> None:
    """fast_inverse=False hands clicks to umap-learn (seconds per call): right shape and type, right cluster."""
    Z, labels = blobs
    view = copy.copy(fitted_umap[0])
    view.fast_inverse = False
    assert view.inverse_method_ == "umap-learn"
    codes = view.inverse_transform(view.embedding_[:1])
    assert codes.shape == (1, D) and codes.dtype == np.float32 and np.isfinite(codes).all()
    centres = np.stack([Z[labels == c].mean(axis=0) for c in range(3)])
    assert np.linalg.norm(centres - codes[0], axis=1).argmin() == labels[0]


def test_umap_transform_delegates_to_umap_learn(blobs, fitted_umap) -> None:
    """A fitted view's transform is umap-learn's. A stand-in for the UMAP object checks the hand-over
    without the ~5 s umap-learn spends compiling its transform in each new process."""

    class FakeUMAP:
        def transform(self, codes: np.ndarray) -> np.ndarray:
            assert codes.dtype == np.float32 and codes.shape == (4, D)
            return np.full((len(codes), 2), 7.0, dtype=np.float64)

    view = copy.copy(fitted_umap[0])
    view.umap_ = FakeUMAP()
    points = view.transform(torch.from_numpy(blobs[0][:4]).double())
    assert points.dtype == np.float32 and points.tolist() == [[7.0, 7.0]] * 4


# ---------------------------------------------------------------------------------------------
# NeighbourInverse


def test_neighbour_inverse_is_exact_at_data_points() -> None:
    rng = np.random.default_rng(SEED)
    embedding, codes = rng.normal(size=(100, 2)).astype(np.float32), rng.normal(size=(100, 7)).astype(np.float32)
    inverse = NeighbourInverse(embedding, codes)
    assert np.array_equal(inverse(embedding), codes)
    assert inverse(embedding).dtype == np.float32


def test_neighbour_inverse_between_points_is_a_convex_combination() -> None:
    rng = np.random.default_rng(SEED)
    embedding, codes = rng.normal(size=(100, 2)), rng.normal(size=(100, 7))
    inverse = NeighbourInverse(embedding, codes)
    queries = np.concatenate([(embedding[:10] + embedding[10:20]) / 2, [[40.0, -40.0]]])  # midpoints, far away
    result = inverse(queries)
    for query, got in zip(queries, result):
        distances = np.linalg.norm(embedding - query, axis=1)
        nearest = np.argsort(distances)[:8]  # brute force, independent of the class's index
        weights = 1 / distances[nearest]
        np.testing.assert_allclose(got, weights @ codes[nearest] / weights.sum(), rtol=1e-5, atol=1e-6)
        assert (got >= codes[nearest].min(axis=0).astype(np.float32)).all()
        assert (got <= codes[nearest].max(axis=0).astype(np.float32)).all()
        assert not any(np.array_equal(got, code.astype(np.float32)) for code in codes[nearest])


def test_neighbour_inverse_with_fewer_points_than_k() -> None:
    embedding, codes = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), np.eye(3)
    result = NeighbourInverse(embedding, codes, k=8)(np.array([[0.0, 0.0], [1.0, 1.0]]))
    assert result[0].tolist() == [1.0, 0.0, 0.0]
    # All three points are neighbours, weighted 1/d: d = sqrt(2), 1, 1 -> [.26, .37, .37] (never [0, .5, .5]).
    weights = np.array([1 / np.sqrt(2), 1.0, 1.0])
    np.testing.assert_allclose(result[1], weights / weights.sum(), rtol=1e-6)
    assert NeighbourInverse(embedding, codes, k=8).k == 3


def test_neighbour_inverse_checks_its_input() -> None:
    with pytest.raises(ValueError, match="embedding must be"):
        NeighbourInverse(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="same, non-zero number of rows"):
        NeighbourInverse(np.zeros((5, 2)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="P must be"):
        NeighbourInverse(np.zeros((5, 2)), np.zeros((5, 4)))(np.zeros((1, 3)))


# ---------------------------------------------------------------------------------------------
# ViewCache


def test_cache_round_trip_pca(tmp_path: Path, blobs) -> None:
    Z = blobs[0]
    view = PCAView().fit(Z)
    cache, key = ViewCache(tmp_path), view_cache_key(WEIGHTS, "pca", N)
    assert cache.load(key, Z) is None
    cache.save(key, view)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{key}.npz"]  # no temporary file left behind

    restored = cache.load(key, Z)
    assert isinstance(restored, PCAView) and restored.from_cache_
    assert np.array_equal(restored.embedding_, view.embedding_)
    assert np.array_equal(restored.components_, view.components_) and np.array_equal(restored.mean_, view.mean_)
    P = np.random.default_rng(SEED).normal(size=(10, 2))
    assert np.array_equal(restored.inverse_transform(P), view.inverse_transform(P))
    assert np.array_equal(restored.transform(Z), view.transform(Z))
    assert restored.axis_labels() == view.axis_labels()


def test_cache_round_trip_umap(tmp_path: Path, blobs, fitted_umap) -> None:
    Z = blobs[0]
    view = fitted_umap[0]
    cache, key = ViewCache(tmp_path), view_cache_key(WEIGHTS, "umap", N)
    cache.save(key, view)

    restored = cache.load(key, torch.from_numpy(Z))
    assert isinstance(restored, UMAPView) and restored.from_cache_
    assert restored.get_params() == view.get_params()
    assert restored.umap_ is None and restored.inverse_method_ == "neighbours"
    assert np.array_equal(restored.embedding_, view.embedding_)
    P = np.random.default_rng(SEED).uniform(-5, 5, size=(10, 2))
    assert np.array_equal(restored.inverse_transform(P), view.inverse_transform(P))
    assert np.array_equal(restored.inverse_transform(restored.embedding_[:3]), Z[:3])
    # No UMAP object, so transform falls back on neighbours: a fitted code lands on its own point.
    assert np.array_equal(restored.transform(Z[:3]), view.embedding_[:3])
    assert restored.transform(Z[:3] + 0.1).shape == (3, 2)


def test_cache_skips_identity(tmp_path: Path, blobs) -> None:
    cache, key = ViewCache(tmp_path / "cache"), view_cache_key(WEIGHTS, "identity", N)
    cache.save(key, IdentityView().fit(blobs[0]))
    assert cache.load(key, blobs[0]) is None


def test_cache_key_changes_with_every_input() -> None:
    base = {"weights_sha256": WEIGHTS, "method": "umap", "n_points": N}
    key = view_cache_key(**base)
    assert len(key) == 64 and int(key, 16) >= 0
    variants = [
        {**base, "weights_sha256": "f" + WEIGHTS[1:]},
        {**base, "method": "pca"},
        {**base, "n_points": N + 1},
        {**base, "n_neighbors": 16},
        {**base, "min_dist": 0.2},
        {**base, "random_state": 1},
        {**base, "fast_inverse": False},
    ]
    keys = {key, *(view_cache_key(**v) for v in variants)}
    assert len(keys) == len(variants) + 1
    # Defaults spelt out, or numbers of another type, name the same view.
    assert view_cache_key(**base, n_neighbors=np.int64(15), min_dist=0.1, random_state=0) == key
    assert view_cache_key(**base, min_dist=0) == view_cache_key(**base, min_dist=0.0)


def test_cache_key_checks_its_input() -> None:
    with pytest.raises(ValueError, match="method must be one of"):
        view_cache_key(WEIGHTS, "tsne", N)
    with pytest.raises(ValueError, match="n_neighbors"):
        view_cache_key(WEIGHTS, "umap", N, n_neighbors=1)
    with pytest.raises(ValueError, match="n_points"):
        view_cache_key(WEIGHTS, "pca", 0)
    with pytest.raises(ValueError, match="weights_sha256"):
        view_cache_key("", "pca", N)


@pytest.mark.parametrize("key", ["../escape", "ABC", "", "0" * 200, "a/b"])
def test_cache_refuses_keys_that_are_not_hex(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="key must be"):
        ViewCache(tmp_path).path(key)


def _valid_file(tmp_path: Path, Z: np.ndarray) -> tuple[ViewCache, str, Path]:
    cache, key = ViewCache(tmp_path), view_cache_key(WEIGHTS, "pca", len(Z))
    cache.save(key, PCAView().fit(Z))
    return cache, key, cache.path(key)


@pytest.mark.parametrize("damage", ["truncated", "empty", "random", "directory"])
def test_a_corrupt_file_is_a_miss_and_is_removed(tmp_path: Path, blobs, damage: str) -> None:
    Z = blobs[0]
    cache, key, path = _valid_file(tmp_path, Z)
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "random":
        path.write_bytes(np.random.default_rng(SEED).bytes(len(data)))
    else:  # a directory squatting on the name cannot be removed by unlink: still just a miss
        path.unlink()
        path.mkdir()
    assert cache.load(key, Z) is None
    assert not path.is_file()


def _rewrite(path: Path, **changes: np.ndarray) -> None:
    with np.load(path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays.update(changes)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize(
    "changes",
    [
        {"key": np.array("0" * 64)},  # another key's file under this name
        {"embedding": np.zeros((N, 3), dtype=np.float32)},
        {"embedding": np.full((N, 2), np.nan, dtype=np.float32)},
        {"state_components": np.zeros((3, D))},
        {"method": np.array("identity")},
        {"params": np.array('{"n_neighbors": 3}')},
        {"format": np.array(99)},
    ],
    ids=["key", "embedding-shape", "embedding-nan", "components-shape", "method", "params", "format"],
)
def test_an_inconsistent_file_is_a_miss_and_is_removed(tmp_path: Path, blobs, changes: dict) -> None:
    Z = blobs[0]
    cache, key, path = _valid_file(tmp_path, Z)
    _rewrite(path, **changes)
    assert cache.load(key, Z) is None
    assert not path.exists()


def test_a_file_for_other_codes_is_a_miss_and_is_kept(tmp_path: Path, blobs) -> None:
    Z = blobs[0]
    cache, key, path = _valid_file(tmp_path, Z)
    assert cache.load(key, Z[:-1]) is None  # other N
    assert cache.load(key, np.concatenate([Z, Z[:, :1]], axis=1)) is None  # other D
    assert cache.load(key, Z[::-1]) is None  # same N and D, other order: rows would pair with wrong codes
    assert cache.load(key, Z + 1.0) is None  # same shape, other values
    assert path.is_file()
    assert cache.load(key, Z + 1e-7) is not None  # last-bit differences are forgiven


def test_an_interrupted_save_keeps_the_old_file(tmp_path: Path, blobs, monkeypatch: pytest.MonkeyPatch) -> None:
    Z = blobs[0]
    cache, key, path = _valid_file(tmp_path, Z)
    before = path.read_bytes()

    def failing_savez(file, **arrays) -> None:
        file.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(projections.np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        cache.save(key, PCAView().fit(Z + 1))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    assert cache.load(key, Z) is not None


class _TouchOnUnpickle:
    """Unpickling this creates ``path``: the marker that would prove a cache file was unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_the_pickle_payload_is_live(tmp_path: Path) -> None:
    """Control for the test below: the payload really does create its marker when unpickled."""
    marker = tmp_path / "control"
    pickle.loads(pickle.dumps(_TouchOnUnpickle(marker)))
    assert marker.exists()


@pytest.mark.parametrize("where", ["whole-file", "inside-npz"])
def test_a_pickle_is_never_unpickled(tmp_path: Path, blobs, where: str) -> None:
    Z = blobs[0]
    cache, key, path = _valid_file(tmp_path / "cache", Z)
    marker = tmp_path / "PWNED"
    if where == "whole-file":
        path.write_bytes(pickle.dumps({"embedding": _TouchOnUnpickle(marker)}))
    else:  # a valid zip whose embedding member is a pickled object array
        payload = np.empty(1, dtype=object)
        payload[0] = _TouchOnUnpickle(marker)
        _rewrite(path, embedding=payload)
    assert cache.load(key, Z) is None
    assert not marker.exists()
    assert not path.exists()


# ---------------------------------------------------------------------------------------------
# Parameters and inputs


def test_make_view_and_available_views() -> None:
    assert isinstance(make_view("identity"), IdentityView)
    assert isinstance(make_view("pca"), PCAView)
    view = make_view("umap", n_neighbors=5, random_state=3)
    assert isinstance(view, UMAPView) and (view.n_neighbors, view.random_state) == (5, 3)
    with pytest.raises(ValueError, match=r"method must be one of \['identity', 'pca', 'umap'\], got 'tsne'"):
        make_view("tsne")
    with pytest.raises(ValueError, match="unknown parameter.*n_neighbors"):
        make_view("pca", n_neighbors=5)
    assert available_views(2) == ["identity"]
    assert available_views(16) == ["pca", "umap", "identity"]
    with pytest.raises(ValueError, match="latent_dim"):
        available_views(1)


@pytest.mark.parametrize("method", ["identity", "pca", "umap"])
@pytest.mark.parametrize(
    ("Z", "match"),
    [
        (np.zeros((10, 1)), "at least 2 latent dimensions.*D = 1"),
        (np.arange(4.0).reshape(2, 2), "at least 3 points.*N = 2"),
        (np.zeros(10), r"2-D array \[N, D\]"),
        (np.array([[0.0, 1.0], [np.nan, 0.0], [1.0, 1.0]]), "finite"),
    ],
    ids=["D=1", "N=2", "1-d", "nan"],
)
def test_fit_refuses_bad_codes(method: str, Z: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_view(method).fit(Z)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_neighbors": 1}, "n_neighbors must be an integer >= 2"),
        ({"n_neighbors": 5.0}, "n_neighbors must be an integer"),
        ({"min_dist": -0.1}, "min_dist"),
        ({"min_dist": 2.0}, "min_dist"),
        ({"random_state": None}, "random_state"),
        ({"random_state": -1}, "random_state"),
        ({"fast_inverse": "yes"}, "fast_inverse"),
    ],
)
def test_umap_refuses_bad_parameters(params: dict, match: str) -> None:
    Z = np.random.default_rng(SEED).normal(size=(20, 3))
    with pytest.raises(ValueError, match=match):
        UMAPView(**params).fit(Z)


@pytest.mark.parametrize("method", ["identity", "pca"])
def test_maps_refuse_wrong_shapes(method: str, blobs) -> None:
    view = make_view(method).fit(blobs[0])
    for bad in (np.zeros(2), np.zeros((3, 3)), np.zeros((1, 1)), np.zeros((1, 2, 1))):
        with pytest.raises(ValueError, match="P must be"):
            view.inverse_transform(bad)
    with pytest.raises(ValueError, match="P must be finite"):
        view.inverse_transform(np.array([[np.inf, 0.0]]))
    with pytest.raises(ValueError, match=rf"Z must be \[M, {D}\]"):
        view.transform(np.zeros((4, D + 1)))


def test_an_unfitted_view_says_so() -> None:
    for view in (IdentityView(), PCAView(), UMAPView()):
        with pytest.raises(NotFittedError, match="not fitted"):
            view.inverse_transform(np.zeros((1, 2)))
        with pytest.raises(NotFittedError):
            ViewCache(os.devnull).save("0" * 64, view)


# ---------------------------------------------------------------------------------------------
# What mutation testing (make mutants) found unchecked: the neighbour inverse's edges, input checks'
# messages, the cache key's documented payload


def test_neighbour_inverse_takes_k_from_one_and_refuses_what_is_not_a_positive_integer() -> None:
    embedding, codes = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), np.eye(3)
    one = NeighbourInverse(embedding, codes, k=1)
    assert one.k == 1 and one(np.array([[0.9, 0.1]])).tolist() == [[0.0, 1.0, 0.0]]  # the nearest point alone
    for k in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match=f"^k must be a positive integer, got {re.escape(repr(k))}$"):
            NeighbourInverse(embedding, codes, k=k)


def test_neighbour_inverse_of_one_point_and_of_no_query() -> None:
    inverse = NeighbourInverse(np.zeros((1, 2)), np.full((1, 3), 2.0))
    assert inverse(np.array([[5.0, -5.0]])).tolist() == [[2.0, 2.0, 2.0]]
    empty = inverse(np.empty((0, 2)))
    assert empty.shape == (0, 3) and empty.dtype == np.float32
    single = NeighbourInverse(np.array([[0.0, 0.0], [2.0, 0.0]]), np.array([[0.0], [1.0]]))(np.array([[1.5, 0.0]]))
    np.testing.assert_allclose(single, [[(1 / 1.5) * 0 + (1 / 0.5) * 1]] / np.float32(1 / 1.5 + 1 / 0.5), rtol=1e-6)
    with pytest.raises(
        ValueError, match=r"^sources and values must have the same, non-zero number of rows, got 0 and 0$"
    ):
        NeighbourInverse(np.zeros((0, 2)), np.zeros((0, 3)))


def test_a_query_on_a_data_point_divides_by_zero_without_a_warning() -> None:
    import warnings

    rng = np.random.default_rng(SEED)
    embedding, codes = rng.normal(size=(50, 2)), rng.normal(size=(50, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(NeighbourInverse(embedding, codes)(embedding[:3]), codes[:3].astype(np.float32))


def test_the_interpolator_is_exact_at_sources_of_many_dimensions() -> None:
    # Past 8 dimensions a ball tree: an exact search, so a query equal to a source is at distance 0.0 (a
    # brute-force search's rounding residue would blend in the neighbours).
    rng = np.random.default_rng(SEED)
    sources, values = rng.normal(size=(300, 20)), rng.normal(size=(300, 2))
    interpolator = projections._NeighbourInterpolator(sources, values)
    np.testing.assert_array_equal(interpolator(sources), values.astype(np.float32))


def test_inputs_are_named_in_their_refusals_and_integers_are_numbers() -> None:
    view = make_view("identity").fit(np.arange(12).reshape(6, 2))  # integers: numbers, read as float32
    assert view.embedding_.dtype == np.float32 and view.embedding_.tolist()[1] == [2.0, 3.0]
    with pytest.raises(ValueError, match=r"^Z must be a 2-D array \[N, D\], got shape \(3,\)$"):
        view.transform(np.zeros(3))
    with pytest.raises(ValueError, match="^Z must hold numbers, got dtype <U1$"):
        view.transform(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="^Z must hold numbers, got dtype bool$"):
        view.transform(np.ones((2, 2), dtype=bool))
    with pytest.raises(ValueError, match=r"^embedding must be a 2-D array \[N, D\], got shape \(5,\)$"):
        NeighbourInverse(np.zeros(5), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="^codes must hold numbers, got dtype object$"):
        NeighbourInverse(np.zeros((1, 2)), np.array([[None]], dtype=object))


def test_make_view_lists_the_allowed_parameters_of_a_refusal() -> None:
    with pytest.raises(
        ValueError,
        match=r"^unknown parameter\(s\) for 'umap': colour, size \(allowed: n_neighbors, min_dist, random_state, "
        r"fast_inverse\)$",
    ):
        make_view("umap", size=1, colour="red")
    with pytest.raises(ValueError, match=r"^unknown parameter\(s\) for 'pca': k \(allowed: none\)$"):
        make_view("pca", k=2)


def test_the_cache_key_is_the_sha256_of_its_documented_payload() -> None:
    import hashlib
    import json

    payload = {
        "format": projections.CACHE_FORMAT,
        "weights_sha256": WEIGHTS,
        "method": "umap",
        "n_points": 1,  # one point is a valid view
        "params": {"n_neighbors": 15.0, "min_dist": 0.1, "random_state": 0.0, "fast_inverse": True},
    }
    expected = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    assert view_cache_key(WEIGHTS, "umap", 1) == expected  # the shipped views are named by this key


@pytest.mark.parametrize("method", ["identity", "pca"])
def test_a_view_of_three_points_maps_none_and_one_and_says_when_it_is_done(method: str) -> None:
    Z = np.array([[0.0, 1.0, 2.0], [3.0, 1.0, 0.0], [1.0, 4.0, 1.0]], dtype=np.float32)  # MIN_POINTS points
    messages: list[str] = []
    view = make_view(method).fit(Z, progress=messages.append)
    assert messages == [f"fitting {view.label} on 3 points", "done"]
    assert view.embedding_.flags.c_contiguous and not view.embedding_.flags.writeable
    none, one = view.transform(np.empty((0, 3))), view.transform(Z[:1])
    assert (none.shape, none.dtype, one.shape, one.dtype) == ((0, 2), np.float32, (1, 2), np.float32)
    back = view.inverse_transform(np.empty((0, 2)))
    assert back.shape == (0, 3) and back.dtype == np.float32
    np.testing.assert_allclose(view.fit_transform(Z), view.embedding_)


def test_pca_is_the_exact_principal_plane_where_sklearns_default_would_randomise() -> None:
    # 501 x 60 is past the size where scikit-learn's "auto" solver switches to a randomized SVD, which on a
    # flat spectrum like this one misses the top plane; the docstring promises the full SVD. Reference: numpy's.
    Z = np.random.default_rng(SEED).normal(size=(501, 60)).astype(np.float32)
    centred = Z.astype(np.float64) - Z.astype(np.float64).mean(axis=0)
    top = np.linalg.svd(centred, full_matrices=False)[2][:2]
    view = PCAView().fit(Z)
    # Compared up to each axis's sign, which the docstring leaves to scikit-learn.
    np.testing.assert_allclose(np.abs(view.embedding_), np.abs(centred @ top.T), atol=1e-5)


class _FakeUMAPModule:
    """Stands in for the ``umap`` package: a fit takes milliseconds instead of 10-25 s of numba compilation,
    and each UMAP object records what it was given and answers in a way no other map would."""

    def __init__(self) -> None:
        self.made: list[Any] = []
        module = self

        class UMAP:
            def __init__(self, **kwargs: Any) -> None:
                self.kwargs, self.given = kwargs, {}
                module.made.append(self)

            def fit_transform(self, codes: np.ndarray) -> np.ndarray:
                self.given["fit_transform"] = codes.copy()
                # float64 and Fortran-ordered: the view must still keep a C-ordered float32 copy.
                return np.asfortranarray(3.0 * codes[:, :2].astype(np.float64))

            def transform(self, codes: np.ndarray) -> np.ndarray:
                self.given["transform"] = codes.copy()
                return codes[:, 1:3] - 1.0

            def inverse_transform(self, points: np.ndarray) -> np.ndarray:
                self.given["inverse_transform"] = points.copy()
                return np.repeat(points[:, :1], 4, axis=1) + 100.0

        self.UMAP = UMAP


@pytest.fixture
def fake_umap(monkeypatch: pytest.MonkeyPatch) -> _FakeUMAPModule:
    fake = _FakeUMAPModule()
    monkeypatch.setitem(sys.modules, "umap", fake)
    return fake


def _small_codes(n: int = 40) -> np.ndarray:
    return np.random.default_rng(SEED).normal(size=(n, 4)).astype(np.float32)


def test_a_umap_fit_hands_umap_learn_its_parameters_and_keeps_its_layout(fake_umap: _FakeUMAPModule) -> None:
    Z = _small_codes()
    view = UMAPView(n_neighbors=np.int64(5), min_dist=0, random_state=np.int32(7)).fit(Z)
    (umap,) = fake_umap.made
    # Plain Python numbers, a 2-D layout, one thread (what umap-learn forces with a seed) and no chatter.
    assert umap.kwargs == {
        "n_components": 2,
        "n_neighbors": 5,
        "min_dist": 0.0,
        "random_state": 7,
        "n_jobs": 1,
        "verbose": False,
    }
    assert [type(umap.kwargs[name]) for name in ("n_neighbors", "min_dist", "random_state")] == [int, float, int]
    np.testing.assert_array_equal(umap.given["fit_transform"], Z)
    assert view.embedding_.dtype == np.float32 and view.embedding_.flags.c_contiguous
    np.testing.assert_array_equal(view.embedding_, 3.0 * Z[:, :2])
    # The default inverse is the neighbour map from that layout back to these codes: exact on a fitted point.
    assert view.inverse_method_ == "neighbours"
    np.testing.assert_array_equal(view.inverse_transform(view.embedding_[[0, 9, 39]]), Z[[0, 9, 39]])
    np.testing.assert_array_equal(view.codes_, Z)
    assert "inverse_transform" not in umap.given


def test_a_fitted_umap_view_hands_transform_and_the_slow_inverse_to_umap_learn(fake_umap: _FakeUMAPModule) -> None:
    Z = _small_codes()
    view = UMAPView(n_neighbors=5, fast_inverse=False).fit(Z)
    (umap,) = fake_umap.made
    assert view.inverse_method_ == "umap-learn"
    P = np.array([[0.5, -1.0], [2.0, 3.0]])
    np.testing.assert_array_equal(view.inverse_transform(P), np.repeat(P[:, :1], 4, axis=1) + 100.0)
    np.testing.assert_array_equal(umap.given["inverse_transform"], P.astype(np.float32))
    np.testing.assert_array_equal(view.transform(Z[:3]), Z[:3, 1:3] - 1.0)
    np.testing.assert_array_equal(umap.given["transform"], Z[:3])


def test_umap_refuses_as_many_neighbours_as_points_before_it_fits(fake_umap: _FakeUMAPModule) -> None:
    # With the stand-in, a check that let N neighbours through fails at once instead of running a real fit.
    Z = _small_codes(20)
    with pytest.raises(ValueError, match="^n_neighbors must be smaller than the number of points N = 20, got 20$"):
        UMAPView(n_neighbors=20).fit(Z)
    assert fake_umap.made == []  # refused before umap-learn is asked for anything
    UMAPView(n_neighbors=19).fit(Z)  # one fewer is allowed
    assert len(fake_umap.made) == 1
