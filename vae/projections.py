"""2-D views of a D-dimensional latent space, each with a way back from the plane to the codes.

A model with ``D > 2`` is shown through a view of its embeddings ``Z [N, D]``; a click on that view must
be decoded, so every view also maps 2-D points ``[M, 2]`` back to codes ``[M, D]``:

- :class:`IdentityView` ("identity", "first two dims"): dims 1-2 are the point, dims 3..D the mean of the
  fitted Z. Bit-exact when D == 2, the only case offered for a 2-D latent.
- :class:`PCAView` ("pca", "PCA"): the point on the principal plane, every other direction at the mean.
- :class:`UMAPView` ("umap", "UMAP"): the inverse-distance-weighted mean of the codes of the 8 nearest
  embedded points (:class:`NeighbourInverse`, about 1 ms); umap-learn's own inverse (seconds per call) only
  with ``fast_inverse=False`` on a view fitted in this process.

The views follow scikit-learn's estimator conventions: ``__init__`` only stores parameters, ``fit``
checks them and raises ``ValueError`` naming the one at fault, and learned state ends in ``_``. Inputs
are numpy arrays or torch tensors ``[N, D]``; outputs are numpy float32.

UMAP is slow: on two CPU cores about 6 s of CPU for 2,000 points and 45 s for 10,000, plus some 13 s of
numba compilation in every new process. So :class:`ViewCache` keeps fitted views on disk in ``.npz``
files, read back without pickle; restoring one needs neither umap-learn nor numba and takes milliseconds.

One module of some 660 lines on purpose: :class:`ViewCache` saves and restores each view's learned state
through the views' private ``_state``/``_restore``/``_cacheable`` hooks; kept beside the views, that
contract stays private instead of becoming an interface every view must publish.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.neighbors import NearestNeighbors

from vae.files import atomic_file

Progress = Callable[[str], None]
ArrayLike = np.ndarray | torch.Tensor

MIN_POINTS = 3
# Neighbours averaged by NeighbourInverse: enough to smooth over one outlier, few enough to stay local.
NEIGHBOUR_K = 8
# Bump when the layout of a cache file changes; it is part of every key, so old files are simply missed.
CACHE_FORMAT = 1
# A 60,000-point UMAP view is about 0.5 MB; anything near this size is not one of ours.
MAX_CACHE_BYTES = 256 * 1024 * 1024
# Rows of Z kept in a cache file to check, on load, that Z holds the same points in the same order.
PROBE_ROWS = 32
KEY_PATTERN = re.compile(r"^[0-9a-f]{16,128}$")


def _as_codes(Z: ArrayLike, what: str = "Z") -> np.ndarray:
    """Array or tensor ``[N, D]`` -> C-contiguous float32 numpy ``[N, D]``, refusing anything else."""
    if isinstance(Z, torch.Tensor):
        Z = Z.detach().cpu().numpy()
    array = np.asarray(Z)
    if array.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array [N, D], got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"{what} must hold numbers, got dtype {array.dtype}")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        raise ValueError(f"{what} must be finite, but it holds NaN or infinity")
    return array


def _read_only(array: np.ndarray) -> np.ndarray:
    # The embedding is shared with the neighbour index and with every caller; an in-place edit by one
    # of them would silently move the others' points, so it fails loudly instead.
    array.setflags(write=False)
    return array


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _plain(value: Any) -> Any:
    """numpy scalars -> Python ones, so parameters serialise to JSON the same way whatever their type."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if _is_int(value):
        return int(value)
    if _is_real(value):
        return float(value)
    return value


class _NeighbourInterpolator:
    """Maps query points to the inverse-distance-weighted mean of the values of their k nearest sources.

    sources ``[N, A]`` and values ``[N, B]`` -> a callable ``[M, A] -> [M, B]`` float32. A query that
    coincides with a source gets that source's value exactly (the mean, if several sources coincide).
    The result is a convex combination of the neighbours' values, so it never leaves their bounding box.
    """

    def __init__(self, sources: np.ndarray, values: np.ndarray, k: int = NEIGHBOUR_K) -> None:
        if not _is_int(k) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        if len(sources) != len(values) or len(sources) == 0:
            raise ValueError(
                f"sources and values must have the same, non-zero number of rows, got {len(sources)} and {len(values)}"
            )
        self.sources = np.asarray(sources, dtype=np.float64)
        self.values = np.asarray(values, dtype=np.float64)
        self.k = min(int(k), len(sources))
        # Tree searches compute distances directly, so a query equal to a source is at distance 0.0 exactly
        # (the brute-force search's |a|^2 - 2ab + |b|^2 would leave a rounding residue). ball_tree copes with
        # more dimensions than kd_tree does.
        algorithm = "kd_tree" if self.sources.shape[1] <= 8 else "ball_tree"
        self._index = NearestNeighbors(n_neighbors=self.k, algorithm=algorithm).fit(self.sources)

    def __call__(self, queries: np.ndarray) -> np.ndarray:
        queries = np.asarray(queries, dtype=np.float64)
        if len(queries) == 0:
            return np.empty((0, self.values.shape[1]), dtype=np.float32)
        distances, indices = self._index.kneighbors(queries)  # [M, k] each
        exact = distances == 0.0
        with np.errstate(divide="ignore"):
            weights = np.where(exact.any(axis=1, keepdims=True), exact.astype(np.float64), 1.0 / distances)
        weights /= weights.sum(axis=1, keepdims=True)
        return np.einsum("mk,mkb->mb", weights, self.values[indices]).astype(np.float32)


class NeighbourInverse(_NeighbourInterpolator):
    """Approximate inverse of any 2-D embedding: a point -> the weighted mean of nearby codes.

    Given the fitted embedding ``[N, 2]`` and the codes ``[N, D]`` it was made from, a 2-D point ``[M, 2]``
    maps to the inverse-distance-weighted mean of the codes of its ``k`` nearest embedded points (weights
    ``1 / distance``). On a data point it returns that point's code exactly; elsewhere it returns a convex
    combination of the neighbours' codes, so a click far outside the data still decodes to a plausible code
    instead of an extrapolation. About 1 ms per call, whatever N; it needs only scikit-learn.
    """

    def __init__(self, embedding: ArrayLike, codes: ArrayLike, k: int = NEIGHBOUR_K) -> None:
        embedding = _as_codes(embedding, "embedding")
        codes = _as_codes(codes, "codes")
        if embedding.shape[1] != 2:
            raise ValueError(f"embedding must be [N, 2], got shape {embedding.shape}")
        super().__init__(embedding, codes, k)

    def __call__(self, P: ArrayLike) -> np.ndarray:
        """P ``[M, 2]`` -> codes ``[M, D]`` float32."""
        return super().__call__(_as_points(P, 2))


def _as_points(P: ArrayLike, dim: int, what: str = "P") -> np.ndarray:
    points = _as_codes(P, what)
    if points.shape[1] != dim:
        raise ValueError(f"{what} must be [M, {dim}], got shape {points.shape}")
    return points


class LatentView(ABC):
    """A 2-D view of codes ``Z [N, D]``: ``fit``, ``transform`` to ``[M, 2]``, ``inverse_transform`` back.

    After ``fit``:

    - ``embedding_``: ``[N, 2]`` float32, read-only, the fitted points' positions in the same order as Z.
    - ``latent_dim_``: D; ``n_points_``: N.
    - ``exact_inverse_``: True when ``inverse_transform(transform(z)) == z`` bit for bit for *every* float32
      code z, i.e. nothing is lost. Only the identity view of a 2-D latent qualifies; PCA of a 2-D latent
      is a rotation, exact only up to rounding, so it reports False.
    - ``from_cache_``: True when the view was restored by :class:`ViewCache` rather than fitted.
    """

    name: ClassVar[str]  # key for make_view and the cache: "identity", "pca", "umap"
    label: ClassVar[str]  # for people: "first two dims", "PCA", "UMAP"
    _param_names: ClassVar[tuple[str, ...]] = ()
    # Whether ViewCache stores it: not worth it for a view that costs less to fit than to read.
    _cacheable: ClassVar[bool] = False

    embedding_: np.ndarray
    latent_dim_: int
    n_points_: int
    exact_inverse_: bool
    from_cache_: bool
    _probe: np.ndarray  # a few rows of the fitted Z, so ViewCache can tell it is given the same points

    # -- parameters (scikit-learn style) ---------------------------------------------------------------

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _check_params(self) -> None:  # noqa: B027 (a hook: a view without parameters has nothing to check)
        """Checks that do not depend on the data; ``fit`` adds those that do."""

    # -- fitting ---------------------------------------------------------------------------------------

    def fit(self, Z: ArrayLike, progress: Progress | None = None) -> LatentView:
        """Z ``[N, D]`` (N >= 3, D >= 2) -> self.

        ``progress``, if given, is called with ``"fitting <label> on <N> points"`` before and ``"done"``
        after; umap-learn itself stays quiet (``verbose=False``).
        """
        self._check_params()
        codes = _as_codes(Z)
        n, d = codes.shape
        if n < MIN_POINTS:
            raise ValueError(f"Z must hold at least {MIN_POINTS} points, got N = {n}")
        if d < 2:
            raise ValueError(f"Z must have at least 2 latent dimensions to show in 2-D, got D = {d}")
        self._check_data(codes)
        if progress is not None:
            progress(f"fitting {self.label} on {n} points")
        embedding = self._fit(codes)
        # A copy, so that making it read-only cannot reach into an array umap-learn or the caller owns.
        self.embedding_ = _read_only(np.array(embedding, dtype=np.float32, order="C"))
        self.n_points_, self.latent_dim_ = n, d
        self.exact_inverse_ = self._exact_inverse(d)
        self.from_cache_ = False
        self._probe = codes[_probe_rows(n)]  # fancy indexing copies
        if progress is not None:
            progress("done")
        return self

    def fit_transform(self, Z: ArrayLike, progress: Progress | None = None) -> np.ndarray:
        """Z ``[N, D]`` -> its embedding ``[N, 2]`` float32 (the read-only ``embedding_``)."""
        return self.fit(Z, progress=progress).embedding_

    def _check_data(self, codes: np.ndarray) -> None:  # noqa: B027 (a hook, like _check_params)
        """Checks of the parameters against the data, e.g. UMAP's n_neighbors < N."""

    def _exact_inverse(self, latent_dim: int) -> bool:
        return False

    @abstractmethod
    def _fit(self, codes: np.ndarray) -> np.ndarray:
        """codes float32 ``[N, D]`` -> embedding ``[N, 2]``; sets the subclass's learned state."""

    # -- mapping ---------------------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "embedding_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(Z) first")

    def transform(self, Z: ArrayLike) -> np.ndarray:
        """Codes ``[M, D]`` -> 2-D points ``[M, 2]`` float32."""
        self._check_fitted()
        codes = _as_points(Z, self.latent_dim_, "Z")
        if len(codes) == 0:
            return np.empty((0, 2), dtype=np.float32)
        return np.asarray(self._transform(codes), dtype=np.float32)

    def inverse_transform(self, P: ArrayLike) -> np.ndarray:
        """2-D points ``[M, 2]`` -> codes ``[M, D]`` float32 (see each view for how exact)."""
        self._check_fitted()
        points = _as_points(P, 2)
        if len(points) == 0:
            return np.empty((0, self.latent_dim_), dtype=np.float32)
        return np.asarray(self._inverse_transform(points), dtype=np.float32)

    @abstractmethod
    def _transform(self, codes: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _inverse_transform(self, points: np.ndarray) -> np.ndarray: ...

    def axis_labels(self) -> tuple[str, str]:
        """Names for the plot's two axes."""
        return (f"{self.label} 1", f"{self.label} 2")

    # -- cache support: the learned state as plain arrays, and back ------------------------------------

    def _state(self) -> dict[str, np.ndarray]:
        """Learned state besides the embedding, as float arrays, for views that are ``_cacheable``."""
        raise NotImplementedError

    def _restore(self, state: dict[str, np.ndarray], codes: np.ndarray) -> None:
        """Inverse of ``_state``, given the codes the view was fitted on; raises ValueError if inconsistent."""
        raise NotImplementedError


class IdentityView(LatentView):
    """The first two latent dimensions as they are.

    inverse_transform puts the 2-D point in dims 1-2 and the mean of the fitted Z in dims 3..D: the most
    typical code with those two coordinates only if the dims are independent, so it is approximate for
    D > 2. For D == 2 it is the identity, bit for bit (``exact_inverse_``).
    """

    name = "identity"
    label = "first two dims"

    mean_: np.ndarray  # [D] float32

    def _fit(self, codes: np.ndarray) -> np.ndarray:
        self.mean_ = codes.mean(axis=0, dtype=np.float64).astype(np.float32)
        return codes[:, :2].copy()

    def _exact_inverse(self, latent_dim: int) -> bool:
        return latent_dim == 2

    def _transform(self, codes: np.ndarray) -> np.ndarray:
        return codes[:, :2].copy()  # not a view into the caller's array

    def _inverse_transform(self, points: np.ndarray) -> np.ndarray:
        out = np.repeat(self.mean_[None, :], len(points), axis=0)
        out[:, :2] = points
        return out

    def axis_labels(self) -> tuple[str, str]:
        return ("z1", "z2")


class PCAView(LatentView):
    """Projection onto the plane of the two largest principal components (scikit-learn's PCA).

    transform is ``(z - mean_) @ components_.T``; inverse_transform is ``p @ components_ + mean_``, the
    point on the principal plane, i.e. every other direction held at the mean. So inverse(transform(z)) is
    the orthogonal projection of z onto that plane, and z itself whenever the data lie on a plane.
    Deterministic: the full SVD is used and scikit-learn fixes the signs of the components.
    """

    name = "pca"
    label = "PCA"
    _cacheable = True

    mean_: np.ndarray  # [D] float64
    components_: np.ndarray  # [2, D] float64, orthonormal rows
    explained_variance_ratio_: np.ndarray  # [2] float64

    def _fit(self, codes: np.ndarray) -> np.ndarray:
        # float64 so that the stored plane, and the projections through it, carry no float32 rounding.
        pca = PCA(n_components=2, svd_solver="full").fit(codes.astype(np.float64))
        self.mean_ = pca.mean_
        self.components_ = pca.components_
        # NaN for data with zero variance; 0 reads better on an axis label and is what it means.
        self.explained_variance_ratio_ = np.nan_to_num(pca.explained_variance_ratio_)
        return self._transform(codes)

    def _transform(self, codes: np.ndarray) -> np.ndarray:
        return (codes.astype(np.float64) - self.mean_) @ self.components_.T

    def _inverse_transform(self, points: np.ndarray) -> np.ndarray:
        return points.astype(np.float64) @ self.components_ + self.mean_

    def axis_labels(self) -> tuple[str, str]:
        first, second = self.explained_variance_ratio_
        return (f"PC1 ({first:.0%} of variance)", f"PC2 ({second:.0%} of variance)")

    def _state(self) -> dict[str, np.ndarray]:
        return {
            "mean": self.mean_,
            "components": self.components_,
            "explained_variance_ratio": self.explained_variance_ratio_,
        }

    def _restore(self, state: dict[str, np.ndarray], codes: np.ndarray) -> None:
        d = codes.shape[1]
        mean, components, ratio = state["mean"], state["components"], state["explained_variance_ratio"]
        if mean.shape != (d,) or components.shape != (2, d) or ratio.shape != (2,):
            raise ValueError("PCA state has the wrong shape")
        self.mean_ = mean.astype(np.float64)
        self.components_ = components.astype(np.float64)
        self.explained_variance_ratio_ = ratio.astype(np.float64)


class UMAPView(LatentView):
    """umap-learn's UMAP with ``n_components=2``; deterministic for a given ``random_state``.

    Which maps are used:

    - ``embedding_``: UMAP's layout of the fitted points.
    - ``inverse_transform``: :class:`NeighbourInverse` (k = 8 nearest embedded points), unless
      ``fast_inverse=False`` *and* the view was fitted in this process, in which case umap-learn's
      ``inverse_transform``. umap-learn's builds a Delaunay triangulation of the whole embedding and runs
      an optimisation on every call: seconds per click (3 s of CPU for one point on 2,000 fitted points,
      7 s on 10,000, more on the first call, which compiles) and undefined outside the convex hull of the
      embedding. See ``inverse_method_``.
    - ``transform`` (new codes -> 2-D): umap-learn's ``transform`` on a fitted view. A view restored from
      the cache has no UMAP object, so it places a code at the inverse-distance-weighted mean of the
      embedded positions of its 8 nearest fitted codes; close to, but not the same as, umap-learn's answer
      (which starts from that same kind of weighted mean and then optimises it).
    """

    name = "umap"
    label = "UMAP"
    _cacheable = True
    _param_names = ("n_neighbors", "min_dist", "random_state", "fast_inverse")

    umap_: Any  # umap.UMAP, or None when restored from the cache
    codes_: np.ndarray  # [N, D] float32, the fitted codes, row i embedded at embedding_[i]

    def __init__(
        self, n_neighbors: int = 15, min_dist: float = 0.1, random_state: int = 0, fast_inverse: bool = True
    ) -> None:
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.random_state = random_state
        self.fast_inverse = fast_inverse

    def _check_params(self) -> None:
        if not _is_int(self.n_neighbors) or self.n_neighbors < 2:
            raise ValueError(f"n_neighbors must be an integer >= 2, got {self.n_neighbors!r}")
        # umap-learn requires min_dist <= spread, and spread is left at its default of 1.
        if not _is_real(self.min_dist) or not 0.0 <= self.min_dist <= 1.0:
            raise ValueError(f"min_dist must be a number from 0 to 1, got {self.min_dist!r}")
        # An explicit seed is what makes the layout reproducible, and so cacheable.
        if not _is_int(self.random_state) or not 0 <= self.random_state < 2**32:
            raise ValueError(f"random_state must be an integer from 0 to 2**32 - 1, got {self.random_state!r}")
        if not isinstance(self.fast_inverse, bool | np.bool_):
            raise ValueError(f"fast_inverse must be True or False, got {self.fast_inverse!r}")

    def _check_data(self, codes: np.ndarray) -> None:
        n = len(codes)
        if self.n_neighbors >= n:
            raise ValueError(f"n_neighbors must be smaller than the number of points N = {n}, got {self.n_neighbors}")

    def _fit(self, codes: np.ndarray) -> np.ndarray:
        # Imported here: umap-learn takes seconds to import, and a page that only shows cached views or
        # PCA should not pay for it.
        import umap

        # n_jobs=1 is what umap-learn forces anyway once a seed is given; saying so spares a warning.
        self.umap_ = umap.UMAP(
            n_components=2,
            n_neighbors=int(self.n_neighbors),
            min_dist=float(self.min_dist),
            random_state=int(self.random_state),
            n_jobs=1,
            verbose=False,
        )
        embedding = self.umap_.fit_transform(codes)
        self._set_neighbour_maps(codes, embedding)
        return embedding

    def _set_neighbour_maps(self, codes: np.ndarray, embedding: np.ndarray) -> None:
        self.codes_ = _read_only(codes.copy())  # codes may be the caller's own array
        self._inverse = NeighbourInverse(embedding, codes)
        # Only needed where umap-learn's transform is missing; built on first use to keep fit lean.
        self._forward: _NeighbourInterpolator | None = None

    @property
    def inverse_method_(self) -> str:
        """``"umap-learn"`` or ``"neighbours"``: which inverse ``inverse_transform`` uses."""
        self._check_fitted()
        return "umap-learn" if self.umap_ is not None and not self.fast_inverse else "neighbours"

    def _transform(self, codes: np.ndarray) -> np.ndarray:
        if self.umap_ is not None:
            return self.umap_.transform(codes)
        if self._forward is None:
            self._forward = _NeighbourInterpolator(self.codes_, self.embedding_)
        return self._forward(codes)

    def _inverse_transform(self, points: np.ndarray) -> np.ndarray:
        if self.inverse_method_ == "umap-learn":
            return self.umap_.inverse_transform(points)
        return self._inverse(points)

    def _state(self) -> dict[str, np.ndarray]:
        return {}  # the embedding, plus the codes handed to ViewCache.load, is all a restored view needs

    def _restore(self, state: dict[str, np.ndarray], codes: np.ndarray) -> None:
        self.umap_ = None
        self._set_neighbour_maps(codes, self.embedding_)


VIEWS: dict[str, type[LatentView]] = {view.name: view for view in (IdentityView, PCAView, UMAPView)}


def expected_fit_seconds(method: str, n_points: int, first_in_process: bool = True) -> float:
    """About how long fitting a view of ``n_points`` takes on two busy CPU cores, for a progress bar.

    From the timings in this module's docstring: UMAP 6 s for 2,000 points and 45 s for 10,000 (so about
    ``n ** 1.25``), plus some 13 s of numba compilation in a process's first fit; PCA well under a second.
    """
    if method != "umap":
        return 1.0
    return 45.0 * (max(n_points, 1) / 10_000) ** 1.25 + (13.0 if first_in_process else 0.0)


def make_view(method: str, **params: Any) -> LatentView:
    """``"identity"``, ``"pca"`` or ``"umap"`` plus that view's parameters -> an unfitted view."""
    if method not in VIEWS:
        raise ValueError(f"method must be one of {sorted(VIEWS)}, got {method!r}")
    cls = VIEWS[method]
    unknown = sorted(set(params) - set(cls._param_names))
    if unknown:
        allowed = ", ".join(cls._param_names) or "none"
        raise ValueError(f"unknown parameter(s) for {method!r}: {', '.join(unknown)} (allowed: {allowed})")
    return cls(**params)


def view_label(method: str) -> str:
    """The name people read for ``method``: "first two dims", "PCA" or "UMAP"."""
    return VIEWS[method].label


def available_views(latent_dim: int) -> list[str]:
    """The views worth offering for a D-dimensional latent, the default first.

    A 2-D latent is shown as it is: any other view of it would only distort it.
    """
    if not _is_int(latent_dim) or latent_dim < 2:
        raise ValueError(f"latent_dim must be an integer >= 2, got {latent_dim!r}")
    return ["identity"] if latent_dim == 2 else ["pca", "umap", "identity"]


# ---------------------------------------------------------------------------------------------
# Disk cache


def view_cache_key(weights_sha256: str, method: str, n_points: int, **params: Any) -> str:
    """A 64-character hex key naming the view of one model's embeddings under one method and parameters.

    Parameters left out count as their defaults, so ``method="umap"`` and ``method="umap", n_neighbors=15``
    share a key. ``n_points`` is N, the number of embedded points. Every parameter, ``fast_inverse``
    included, is part of the key.
    """
    if not isinstance(weights_sha256, str) or not weights_sha256:
        raise ValueError(f"weights_sha256 must be a non-empty string, got {weights_sha256!r}")
    if not _is_int(n_points) or n_points < 1:
        raise ValueError(f"n_points must be a positive integer, got {n_points!r}")
    view = make_view(method, **params)
    view._check_params()
    payload = {
        "format": CACHE_FORMAT,
        "weights_sha256": weights_sha256,
        "method": method,
        "n_points": int(n_points),
        # Numbers as floats, so 0 and 0.0, or 15 and np.int64(15), give the same key.
        "params": {k: float(v) if _is_real(v) else _plain(v) for k, v in view.get_params().items()},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _probe_rows(n: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, num=min(n, PROBE_ROWS)).round().astype(np.int64))


class _BadCacheFile(Exception):
    """The file is not a cache file this module wrote: it is removed."""


class ViewCache:
    """Fitted views on disk, one ``<key>.npz`` per key, under ``directory`` (created on first save).

    Files are written with ``numpy.savez`` (temporary file, fsync, ``os.replace``, so a reader sees the old
    file or the new one, never a part) and read with ``np.load(allow_pickle=False)``: nothing is ever
    unpickled. Besides the embedding a file holds the method, its parameters, N, D and a few rows of Z; PCA
    adds its mean and components. An identity view is not stored (refitting it costs less than reading).

    ``load`` never raises for a bad file: a file that is unreadable, truncated, not ours or inconsistent is
    a miss and is deleted; a sound file made from other codes (other N, D or values) is a miss and is left
    for ``save`` to replace.
    """

    def __init__(self, directory: str | os.PathLike, read_only: bool = False) -> None:
        self.directory = Path(directory)
        # A read-only cache (the views shipped with the project) never deletes a bad file and never saves.
        self.read_only = read_only

    def path(self, key: str) -> Path:
        # Keys come from view_cache_key; insisting on hex keeps any other string from naming a path.
        if not isinstance(key, str) or not KEY_PATTERN.match(key):
            raise ValueError(f"key must be a lowercase hex digest (see view_cache_key), got {key!r}")
        return self.directory / f"{key}.npz"

    def save(self, key: str, view: LatentView) -> None:
        """Store a fitted view under ``key``. Raises OSError if the directory cannot be written."""
        if self.read_only:
            raise PermissionError(f"{self.directory} is a read-only view cache")
        path = self.path(key)
        view._check_fitted()
        if not view._cacheable:
            return
        state = view._state()
        arrays: dict[str, np.ndarray] = {
            "format": np.array(CACHE_FORMAT, dtype=np.int64),
            "key": np.array(key),
            "method": np.array(view.name),
            "params": np.array(json.dumps({k: _plain(v) for k, v in view.get_params().items()})),
            "n_points": np.array(view.n_points_, dtype=np.int64),
            "latent_dim": np.array(view.latent_dim_, dtype=np.int64),
            "embedding": np.asarray(view.embedding_, dtype=np.float32),
            "probe": view._probe,
            **{f"state_{name}": np.asarray(value) for name, value in state.items()},
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as f:
            np.savez(f, **arrays)

    def load(self, key: str, Z: ArrayLike) -> LatentView | None:
        """The view stored under ``key`` if it was fitted on these codes ``Z [N, D]``, else None."""
        path = self.path(key)
        codes = _as_codes(Z)
        try:
            if path.stat().st_size > MAX_CACHE_BYTES:
                raise _BadCacheFile
            with np.load(path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
        except FileNotFoundError:
            return None
        except Exception:
            # Truncated zip, random bytes, a pickle (refused by allow_pickle=False), an object array inside
            # the zip, a directory in the way...: never the caller's problem, and never worth keeping.
            self._discard(path)
            return None
        try:
            return self._restore(key, arrays, codes)
        except _BadCacheFile:
            self._discard(path)
            return None

    def _discard(self, path: Path) -> None:
        if self.read_only:
            return
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass  # e.g. a directory squatting on the name; the next save will fail loudly instead

    @staticmethod
    def _restore(key: str, arrays: dict[str, np.ndarray], codes: np.ndarray) -> LatentView | None:
        """Arrays of a cache file -> a view; None if they are sound but not for these codes."""

        def get(name: str, kind: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
            value = arrays.get(name)
            if value is None or value.dtype.kind not in kind or (shape is not None and value.shape != shape):
                raise _BadCacheFile
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                raise _BadCacheFile
            return value

        try:
            if int(get("format", "i", ())) != CACHE_FORMAT or str(get("key", "U", ())) != key:
                raise _BadCacheFile
            method = str(get("method", "U", ()))
            if method not in VIEWS or not VIEWS[method]._cacheable:
                raise _BadCacheFile
            params = json.loads(str(get("params", "U", ())))
            if not isinstance(params, dict) or set(params) != set(VIEWS[method]._param_names):
                raise _BadCacheFile
            n, d = int(get("n_points", "i", ())), int(get("latent_dim", "i", ()))
            if n < MIN_POINTS or d < 2:
                raise _BadCacheFile
            embedding = get("embedding", "f", (n, 2))
            probe = get("probe", "f", (len(_probe_rows(n)), d))
            state = {name[len("state_") :]: get(name, "f") for name in arrays if name.startswith("state_")}
            view = make_view(method, **params)
            view._check_params()
        except (ValueError, TypeError, OverflowError) as error:
            raise _BadCacheFile from error

        if codes.shape != (n, d):
            return None
        # Same N and D but other points, or the same points in another order, would pair each embedded point
        # with the wrong code. The tolerance forgives last-bit differences from another BLAS or thread count.
        scale = float(np.abs(probe).max()) or 1.0
        if not np.allclose(codes[_probe_rows(n)], probe, rtol=1e-4, atol=1e-4 * scale):
            return None

        view.embedding_ = _read_only(np.ascontiguousarray(embedding, dtype=np.float32))
        view.n_points_, view.latent_dim_ = n, d
        view.exact_inverse_ = view._exact_inverse(d)
        view.from_cache_ = True
        view._probe = probe.astype(np.float32)
        try:
            view._restore(state, codes)
        except (KeyError, ValueError) as error:
            raise _BadCacheFile from error
        return view
