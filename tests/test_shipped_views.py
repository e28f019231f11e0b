"""The UMAP views shipped in views/ for the D > 2 models, the read-only cache that serves them, and the
progress bar a new model's fit shows."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import REAL_RAW, REPO
from vae.projections import ViewCache, expected_fit_seconds, make_view, view_cache_key

SHIPPED_PAIRS = [(name, subset) for name in ("ae-16d", "vae-16d") for subset in ("test", "all")]


@pytest.fixture(scope="module")
def codes() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(200, 5)).astype(np.float32)


def test_a_read_only_cache_serves_but_never_deletes_or_writes(tmp_path, codes) -> None:
    writable = ViewCache(tmp_path)
    key = view_cache_key("ab" * 32, "pca", len(codes))
    writable.save(key, make_view("pca").fit(codes))
    shipped = ViewCache(tmp_path, read_only=True)
    np.testing.assert_allclose(shipped.load(key, codes).embedding_, writable.load(key, codes).embedding_)
    with pytest.raises(PermissionError, match="read-only view cache"):
        shipped.save(key, make_view("pca").fit(codes))
    writable.path(key).write_bytes(b"not a zip")
    assert shipped.load(key, codes) is None
    assert writable.path(key).exists()  # a bad shipped file is a miss, never deleted from the checkout
    assert writable.load(key, codes) is None and not writable.path(key).exists()  # the user's cache cleans up


def test_the_expected_fit_time_grows_with_the_points_and_counts_the_compile_once() -> None:
    ten, seventy = expected_fit_seconds("umap", 10_000), expected_fit_seconds("umap", 70_000)
    assert ten == pytest.approx(45 + 13) and seventy > 6 * ten
    assert expected_fit_seconds("umap", 10_000, first_in_process=False) == pytest.approx(45)
    assert expected_fit_seconds("pca", 70_000) == 1.0


def test_the_fit_behind_the_progress_bar_is_the_plain_fit_and_passes_errors_on(codes) -> None:
    from app import cache

    np.testing.assert_allclose(cache.fit_with_progress("pca", codes).embedding_, make_view("pca").fit(codes).embedding_)
    with pytest.raises(ValueError):
        cache.fit_with_progress("pca", codes[:1])


@pytest.mark.parametrize(("name", "subset"), SHIPPED_PAIRS)
def test_the_shipped_views_open_without_fitting(name, subset, tmp_path, monkeypatch) -> None:
    if not (REAL_RAW / "t10k-images-idx3-ubyte").is_file():
        pytest.skip("MNIST not fetched")
    from app import cache
    from vae.store import read_metadata

    stored = read_metadata(REPO / "models" / name)
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))  # an empty user cache: only views/ can serve

    def no_fit(*args, **kwargs):
        raise AssertionError("fitted a view that is shipped")

    monkeypatch.setattr(cache, "fit_with_progress", no_fit)
    cache.view.clear()
    view = cache.view(str(stored.path), stored.weights_sha256, subset, str(cache.data_dir()), "umap")
    assert view.name == "umap" and view.n_points_ == (10_000 if subset == "test" else 70_000)
    assert not (tmp_path / "cache" / "views").exists()
