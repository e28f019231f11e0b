"""Tests for vae.projections.ViewCache, one field of the file at a time, and for the view checks that need no
fit: a cache file is a parser's input, so each field of the wrong shape, kind or size must be a miss that is
removed, and every field a save writes must come back as it was.

UMAP files are made by hand from a PCA file (the method, the parameters, no state): a restored UMAP view
needs only its embedding and the codes, so none of these tests fits UMAP, and they run in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from vae import projections
from vae.projections import (
    IdentityView,
    PCAView,
    UMAPView,
    ViewCache,
    expected_fit_seconds,
    make_view,
    view_cache_key,
)

SEED = 20261202
N, D = 300, 5
WEIGHTS = "0123456789abcdef" * 4  # stands in for a model's weights SHA-256
UMAP_PARAMS = {"n_neighbors": 7, "min_dist": 0.25, "random_state": 3, "fast_inverse": True}


def _codes(n: int = N, d: int = D, loc: float = 0.0) -> np.ndarray:
    """Seeded codes float32 ``[n, d]``."""
    return (np.random.default_rng(SEED).normal(size=(n, d)) + loc).astype(np.float32)


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def _write(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _pca_file(tmp_path: Path, Z: np.ndarray) -> tuple[ViewCache, str, Path]:
    cache, key = ViewCache(tmp_path), view_cache_key(WEIGHTS, "pca", len(Z))
    cache.save(key, PCAView().fit(Z))
    return cache, key, cache.path(key)


def _umap_file(tmp_path: Path, Z: np.ndarray, **params) -> tuple[ViewCache, str, Path]:
    """A UMAP view's file as a save writes it: the PCA file's embedding and probe, UMAP's method and
    parameters, and no state (a UMAP view stores none)."""
    cache, key, path = _pca_file(tmp_path, Z)
    arrays = {name: value for name, value in _arrays(path).items() if not name.startswith("state_")}
    arrays.update(method=np.array("umap"), params=np.array(json.dumps({**UMAP_PARAMS, **params})))
    _write(path, arrays)
    return cache, key, path


# ---------------------------------------------------------------------------------------------
# What a file brings back


def test_a_umap_file_restores_its_parameters_embedding_and_neighbour_maps(tmp_path: Path) -> None:
    Z = _codes()
    cache, key, path = _umap_file(tmp_path, Z)
    embedding = _arrays(path)["embedding"]
    view = cache.load(key, Z.astype(np.float64))  # the codes in another dtype: the same points
    assert isinstance(view, UMAPView) and view.from_cache_ is True
    assert view.get_params() == UMAP_PARAMS
    assert (view.n_points_, view.latent_dim_) == (N, D) and view.exact_inverse_ is False
    assert view.umap_ is None and view.inverse_method_ == "neighbours"
    np.testing.assert_array_equal(view.embedding_, embedding)
    assert view.codes_.dtype == np.float32 and not view.codes_.flags.writeable
    # The neighbour maps run both ways: a fitted point goes back to its code, a code to its point.
    np.testing.assert_array_equal(view.inverse_transform(embedding[:4]), Z[:4])
    np.testing.assert_array_equal(view.transform(Z[:4]), embedding[:4])
    assert repr(view) == "UMAPView(n_neighbors=7, min_dist=0.25, random_state=3, fast_inverse=True)"


def test_a_restored_view_saves_again_with_numpy_parameters_as_plain_numbers(tmp_path: Path) -> None:
    Z = _codes()
    cache, key, _ = _umap_file(tmp_path, Z)
    view = cache.load(key, Z)
    # Parameters of numpy types (as a caller may pass them) are written as JSON numbers of the same kind.
    view.n_neighbors, view.min_dist = np.int64(9), np.float32(0.5)
    view.random_state, view.fast_inverse = np.uint32(4), np.bool_(False)
    again = ViewCache(tmp_path / "again")
    again.save(key, view)
    stored = _arrays(again.path(key))
    assert json.loads(str(stored["params"])) == {
        "n_neighbors": 9,
        "min_dist": 0.5,
        "random_state": 4,
        "fast_inverse": False,
    }
    assert stored["probe"].dtype == np.float32 and stored["probe"].shape == (32, D)
    restored = again.load(key, Z)
    assert restored is not None and restored.get_params() == {
        "n_neighbors": 9,
        "min_dist": 0.5,
        "random_state": 4,
        "fast_inverse": False,
    }
    assert [type(v) for v in restored.get_params().values()] == [int, float, int, bool]


def test_a_pca_file_brings_back_its_embedding_as_float32_and_an_inexact_inverse(tmp_path: Path) -> None:
    Z = _codes()
    cache, key, path = _pca_file(tmp_path, Z)
    arrays = _arrays(path)
    _write(path, {**arrays, "embedding": arrays["embedding"].astype(np.float64)})  # a float of another width
    view = cache.load(key, Z)
    assert view.embedding_.dtype == np.float32 and view.embedding_.flags.c_contiguous
    np.testing.assert_array_equal(view.embedding_, arrays["embedding"])
    assert view.exact_inverse_ is False


@pytest.mark.parametrize(("n", "d"), [(3, 5), (N, 2)], ids=["three-points", "two-dims"])
def test_the_smallest_views_a_fit_allows_are_stored_and_restored(tmp_path: Path, n: int, d: int) -> None:
    Z = _codes(n, d)
    cache, key, _ = _pca_file(tmp_path, Z)
    view = cache.load(key, Z)
    assert isinstance(view, PCAView) and (view.n_points_, view.latent_dim_) == (n, d)
    np.testing.assert_array_equal(view.transform(Z), PCAView().fit(Z).transform(Z))


def test_a_save_makes_the_missing_folders(tmp_path: Path) -> None:
    Z = _codes()
    cache = ViewCache(tmp_path / "a" / "b" / "views")
    key = view_cache_key(WEIGHTS, "pca", N)
    cache.save(key, PCAView().fit(Z))
    assert cache.load(key, Z) is not None


def test_a_read_only_cache_never_saves_and_never_deletes(tmp_path: Path) -> None:
    Z = _codes()
    _, key, path = _pca_file(tmp_path, Z)
    shipped = ViewCache(tmp_path, read_only=True)
    assert shipped.read_only is True and shipped.load(key, Z) is not None
    with pytest.raises(PermissionError, match=rf"^{tmp_path} is a read-only view cache$"):
        shipped.save(key, PCAView().fit(Z))
    path.write_bytes(b"not a zip")
    assert shipped.load(key, Z) is None
    assert path.read_bytes() == b"not a zip"  # a bad shipped file is left for a person to see


# ---------------------------------------------------------------------------------------------
# Fields of the wrong shape, kind or value: a miss, and the file removed


@pytest.mark.parametrize(
    "field",
    ["format", "n_points", "latent_dim"],
)
def test_a_scalar_field_held_as_a_one_element_array_is_refused(tmp_path: Path, field: str) -> None:
    Z = _codes()
    cache, key, path = _pca_file(tmp_path, Z)
    arrays = _arrays(path)
    _write(path, {**arrays, field: arrays[field].reshape(1)})  # int() would read it as the same number
    assert cache.load(key, Z) is None
    assert not path.exists()


@pytest.mark.parametrize("field", ["probe", "n_points", "embedding", "state_mean"])
def test_a_file_missing_a_field_is_refused(tmp_path: Path, field: str) -> None:
    Z = _codes()
    cache, key, path = _pca_file(tmp_path, Z)
    arrays = _arrays(path)
    del arrays[field]
    _write(path, arrays)
    assert cache.load(key, Z) is None
    assert not path.exists()


def test_a_probe_of_the_wrong_shape_is_refused(tmp_path: Path) -> None:
    Z = _codes()
    cache, key, path = _pca_file(tmp_path, Z)
    arrays = _arrays(path)
    _write(path, {**arrays, "probe": arrays["probe"][:-1]})
    assert cache.load(key, Z) is None
    assert not path.exists()


def test_a_file_of_fewer_points_than_a_fit_needs_is_refused(tmp_path: Path) -> None:
    Z = _codes(3)
    cache, key, path = _pca_file(tmp_path, Z)
    arrays = _arrays(path)
    two = Z[:2]  # a file of at most 32 points keeps every row as its probe
    _write(path, {**arrays, "n_points": np.array(2), "embedding": arrays["embedding"][:2], "probe": two.copy()})
    assert cache.load(key, two) is None
    assert not path.exists()


@pytest.mark.parametrize(
    "params",
    [
        {"n_neighbors": 7, "min_dist": 0.25, "random_state": 3},  # one missing: the default would stand in
        {**UMAP_PARAMS, "n_neighbors": 7.0},  # a float where an integer belongs
        {**UMAP_PARAMS, "min_dist": 1.5},
        {**UMAP_PARAMS, "random_state": 2**32},
    ],
    ids=["missing", "float-neighbours", "min-dist", "seed"],
)
def test_umap_parameters_that_a_fit_would_refuse_are_refused(tmp_path: Path, params: dict) -> None:
    Z = _codes()
    cache, key, path = _pca_file(tmp_path, Z)
    arrays = {name: value for name, value in _arrays(path).items() if not name.startswith("state_")}
    _write(path, {**arrays, "method": np.array("umap"), "params": np.array(json.dumps(params))})
    assert cache.load(key, Z) is None
    assert not path.exists()


@pytest.mark.parametrize(
    "params",
    [{"n_neighbors": 2}, {"min_dist": 0.0}, {"min_dist": 1.0}, {"random_state": 0}, {"random_state": 2**32 - 1}],
    ids=["neighbours-2", "min-dist-0", "min-dist-1", "seed-0", "seed-max"],
)
def test_umap_parameters_at_their_limits_are_restored(tmp_path: Path, params: dict) -> None:
    Z = _codes()
    cache, key, _ = _umap_file(tmp_path, Z, **params)
    view = cache.load(key, Z)
    assert view is not None and view.get_params() == {**UMAP_PARAMS, **params}


# ---------------------------------------------------------------------------------------------
# Whose codes: the probe's tolerance


def test_the_probe_forgives_rounding_relative_to_each_value_and_to_the_codes_scale(tmp_path: Path) -> None:
    # Around 1,000: atol = 1e-4 * 1,003 and rtol * |value| = 0.1 each, so 0.15 is forgiven and 0.25 is not.
    Z = _codes(loc=1_000.0)
    cache, key, _ = _pca_file(tmp_path, Z)
    assert cache.load(key, Z + 0.15) is not None
    assert cache.load(key, Z + 0.25) is None
    # A column near zero beside one near 10,000: the scale (the largest |value|) sets what is forgiven there.
    Z = _codes()
    Z[:, 0] += 10_000.0
    cache, key, _ = _pca_file(tmp_path / "scaled", Z)
    near_zero = Z.copy()
    near_zero[:, 1] += 0.5  # 5e-5 of the scale
    assert cache.load(key, near_zero) is not None
    near_zero[:, 1] += 1.0
    assert cache.load(key, near_zero) is None


# PCA of codes without variance divides 0 by 0 for its explained variance (the view reports 0).
@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")
def test_codes_of_zeros_are_held_to_an_absolute_tolerance_of_one_in_ten_thousand(tmp_path: Path) -> None:
    Z = np.zeros((3, 2), dtype=np.float32)
    cache, key, _ = _pca_file(tmp_path, Z)
    assert cache.load(key, Z + 0.5e-4) is not None
    assert cache.load(key, Z + 1.5e-4) is None


@pytest.mark.parametrize("row", [0, N - 1], ids=["first", "last"])
def test_codes_that_differ_in_the_first_or_last_row_are_a_miss(tmp_path: Path, row: int) -> None:
    Z = _codes()
    cache, key, path = _pca_file(tmp_path, Z)
    other = Z.copy()
    other[row] += 1.0
    assert cache.load(key, other) is None
    assert path.is_file()  # a sound file for other codes stays for the next save to replace


def test_codes_scaled_are_a_miss(tmp_path: Path) -> None:
    Z = _codes(loc=5.0)
    cache, key, _ = _pca_file(tmp_path, Z)
    assert cache.load(key, Z * 3.0) is None


# ---------------------------------------------------------------------------------------------
# Checks that need no fit


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_neighbors": 1}, r"^n_neighbors must be an integer >= 2, got 1$"),
        ({"min_dist": 1.5}, r"^min_dist must be a number from 0 to 1, got 1.5$"),
        ({"min_dist": "0.5"}, r"^min_dist must be a number from 0 to 1, got '0.5'$"),
        ({"random_state": 2**32}, r"^random_state must be an integer from 0 to 2\*\*32 - 1, got 4294967296$"),
        ({"fast_inverse": 1}, r"^fast_inverse must be True or False, got 1$"),
    ],
)
def test_a_umap_view_refuses_bad_parameters_before_it_fits(params: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        UMAPView(**params).fit(_codes(20, 3))


def test_a_fit_names_the_codes_and_the_view_in_its_refusals() -> None:
    with pytest.raises(ValueError, match=r"^Z must be a 2-D array \[N, D\], got shape \(3,\)$"):
        PCAView().fit(np.zeros(3))
    with pytest.raises(NotFittedError, match=r"^this PCAView is not fitted yet; call fit\(Z\) first$"):
        PCAView().transform(np.zeros((1, 2)))


def test_fit_transform_reports_progress() -> None:
    messages: list[str] = []
    embedding = PCAView().fit_transform(_codes(), progress=messages.append)
    assert messages == [f"fitting PCA on {N} points", "done"] and embedding.shape == (N, 2)


def test_the_identity_view_keeps_the_codes_mean_in_float32() -> None:
    Z = _codes()
    view = IdentityView().fit(Z)
    assert view.mean_.dtype == np.float32
    np.testing.assert_array_equal(view.mean_, Z.astype(np.float64).mean(axis=0).astype(np.float32))


def test_repr_lists_the_parameters() -> None:
    assert repr(make_view("pca")) == "PCAView()"
    assert repr(make_view("umap", n_neighbors=5)) == (
        "UMAPView(n_neighbors=5, min_dist=0.1, random_state=0, fast_inverse=True)"
    )


def test_the_expected_fit_time_follows_its_documented_model() -> None:
    # PCA (and identity): about a second whatever N.
    assert expected_fit_seconds("pca", 70_000) == expected_fit_seconds("identity", 10) == 1.0
    # UMAP: 45 s for 10,000 points, growing as N ** 1.25, plus 13 s of compilation in a process's first fit.
    assert expected_fit_seconds("umap", 10_000, first_in_process=False) == pytest.approx(45.0, rel=1e-12)
    assert expected_fit_seconds("umap", 10_000) == pytest.approx(58.0, rel=1e-12)
    ratio = expected_fit_seconds("umap", 20_000, first_in_process=False) / 45.0
    assert ratio == pytest.approx(2**1.25, rel=1e-12)
    assert expected_fit_seconds("umap", 2_000, first_in_process=False) == pytest.approx(45.0 * 0.2**1.25, rel=1e-12)
    # No points still costs the compilation, and a fit of none is timed as a fit of one.
    assert (
        expected_fit_seconds("umap", 0)
        == expected_fit_seconds("umap", 1)
        == pytest.approx(45.0 * 1e-4**1.25 + 13.0, rel=1e-12)
    )


def test_a_file_of_exactly_the_size_limit_is_read_and_one_byte_more_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The limit is lowered to this file's size, rather than writing 256 MB: MAX_CACHE_BYTES is a maximum.
    Z = _codes()
    cache, key, path = _pca_file(tmp_path, Z)
    monkeypatch.setattr(projections, "MAX_CACHE_BYTES", path.stat().st_size)
    view = cache.load(key, Z)
    assert view is not None and view.from_cache_
    monkeypatch.setattr(projections, "MAX_CACHE_BYTES", path.stat().st_size - 1)
    assert cache.load(key, Z) is None
    assert not path.exists()
