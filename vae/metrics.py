"""Numbers that say how good a latent space is: reconstruction error and class separation.

scikit-learn does the neighbour searches, silhouette and trustworthiness; this module feeds it
embeddings (numpy arrays or torch tensors), checks them, and returns plain floats and numpy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.manifold import trustworthiness
from sklearn.metrics import silhouette_score
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

from vae.models import LatentModel, evaluating, to_float_images


@torch.no_grad()
def embed_images(model: LatentModel, images: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
    """images uint8 ``[N, 28, 28]`` or float ``[N, 1, 28, 28]`` -> embeddings ``[N, D]`` on the CPU."""
    with evaluating(model):
        chunks = [
            model.embed(to_float_images(images[i : i + batch_size]).to(model.device)).cpu()
            for i in range(0, len(images), batch_size)
        ]
    return torch.cat(chunks)


@torch.no_grad()
def reconstruction_mse(model: LatentModel, images: torch.Tensor, batch_size: int = 2000) -> float:
    """Mean squared error per pixel of decode(embed(x)) against x, over all of ``images``."""
    total = 0.0
    with evaluating(model):
        for i in range(0, len(images), batch_size):
            x = to_float_images(images[i : i + batch_size]).to(model.device)
            total += float(((model.reconstruct(x) - x) ** 2).sum())
    return total / (len(images) * 28 * 28)


def knn_accuracy(
    train_embedding: torch.Tensor | np.ndarray,
    train_labels: torch.Tensor | np.ndarray,
    test_embedding: torch.Tensor | np.ndarray,
    test_labels: torch.Tensor | np.ndarray,
    k: int = 5,
) -> float:
    """Accuracy of a k-nearest-neighbour vote: fitted on the train embedding, scored on the test one.

    High when each class forms its own region of the latent space, whatever the region's shape.
    """
    classifier = KNeighborsClassifier(n_neighbors=k)
    classifier.fit(np.asarray(train_embedding), np.asarray(train_labels))
    return float(classifier.score(np.asarray(test_embedding), np.asarray(test_labels)))


# ---------------------------------------------------------------------------------------------
# Class overlap inside one embedding. The dashboard's "class overlap" page has only the test
# embedding (10,000 points), so these score a set against itself, never against a train set.
#
# Cost, measured on 2 shared CPU cores for 10,000 points:
# neighbour searches take well under a second; silhouette and trustworthiness compare every pair of
# points, so they are O(N^2) in time (and trustworthiness also in memory), hence their sub-sampling.

# Above this many points view_trustworthiness sub-samples unless told otherwise: sklearn builds three
# dense N x N matrices of 8-byte numbers (distances, their argsort, ranks), 2.4 GB at N = 10,000 but
# 216 MB at 3,000.
TRUSTWORTHINESS_MAX_POINTS = 3000
# Silhouette sample used by overlap_report: ~0.5 s for 5,000 points against ~3-4 s for 10,000.
REPORT_SILHOUETTE_POINTS = 5000

REPORT_KEYS = ("knn_accuracy", "knn_accuracy_2d", "silhouette", "trustworthiness", "mean_purity")


def _as_matrix(values: torch.Tensor | np.ndarray, name: str) -> np.ndarray:
    """Tensor or array ``[N, D]`` -> finite float64 numpy ``[N, D]``, or a ValueError naming ``name``."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [N, D], got shape {array.shape}")
    if array.shape[1] == 0:
        raise ValueError(f"{name} must have at least one column, got shape {array.shape}")
    if not np.isfinite(array).all():
        # A diverged model gives NaN codes; say so here rather than deep inside scikit-learn.
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _as_labels(labels: torch.Tensor | np.ndarray, n: int, name: str = "labels") -> np.ndarray:
    """Tensor or array ``[N]`` -> numpy ``[N]``, checking it has one label per embedded point."""
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    array = np.asarray(labels)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array [N], got shape {array.shape}")
    if len(array) != n:
        raise ValueError(f"{name} has {len(array)} entries but the embedding has {n} points")
    return array


def _as_class_indices(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Labels ``[N]`` -> int64 ``[N]``, each in ``0 .. n_classes - 1`` (they index matrix rows)."""
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
    # Whole-valued floats (e.g. labels saved through a float array) are accepted; 2.5 or "7" are not.
    whole_floats = np.issubdtype(labels.dtype, np.floating) and bool(np.all(labels == np.round(labels)))
    if not (np.issubdtype(labels.dtype, np.integer) or whole_floats):
        raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}")
    indices = labels.astype(np.int64)
    if indices.size and (indices.min() < 0 or indices.max() >= n_classes):
        raise ValueError(
            f"labels must lie in 0 .. {n_classes - 1} (n_classes={n_classes}), got {indices.min()} .. {indices.max()}"
        )
    return indices


def _check_k(k: int, n: int) -> None:
    """Leave-one-out needs k other points, so k may be at most N - 1."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if k >= n:
        raise ValueError(f"k must be smaller than the number of points (k={k}, N={n})")


def _subsample(n: int, sample_size: int | None, seed: int) -> np.ndarray | None:
    """Sorted indices of ``sample_size`` of ``n`` points drawn without replacement, or None for all."""
    if sample_size is None:
        return None
    if isinstance(sample_size, bool) or not isinstance(sample_size, (int, np.integer)) or sample_size < 2:
        raise ValueError(f"sample_size must be an integer of at least 2 or None, got {sample_size!r}")
    if sample_size >= n:
        return None  # all points, in their order, so the result equals the un-sampled one exactly
    return np.sort(np.random.default_rng(seed).choice(n, size=int(sample_size), replace=False))


def _neighbour_indices(embedding: np.ndarray, k: int) -> np.ndarray:
    """``[N, D]`` -> ``[N, k]``: each point's k nearest *other* points (Euclidean), nearest first.

    ``kneighbors()`` without a query set drops each point's own index, not merely the closest
    match, so a duplicate of a point still counts as its neighbour.
    """
    return NearestNeighbors(n_neighbors=k).fit(embedding).kneighbors(return_distance=False)


def _vote_accuracy(codes: np.ndarray, neighbours: np.ndarray, n_codes: int) -> float:
    """Share of points whose neighbours' majority label (codes ``[N]``, neighbours ``[N, k]``) is their own.

    Ties go to the smallest label, as in :class:`~sklearn.neighbors.KNeighborsClassifier`.
    """
    counts = np.zeros((len(codes), n_codes), dtype=np.int64)  # [N, C] votes per label
    np.add.at(counts, (np.arange(len(codes))[:, None], codes[neighbours]), 1)
    return float(np.mean(counts.argmax(axis=1) == codes))


def knn_accuracy_within(embedding: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray, k: int = 5) -> float:
    """Leave-one-out k-nearest-neighbour accuracy inside one set ``[N, D]`` with ``labels [N]``.

    Each point is classified by a majority vote of its k nearest *other* points (ties go to the
    smallest label, as in :func:`knn_accuracy`). Unlike :func:`knn_accuracy` it needs no second
    set: 1.0 when every point sits among its own class, about 1 / C when classes are mixed.
    """
    x = _as_matrix(embedding, "embedding")
    y = _as_labels(labels, len(x))
    _check_k(k, len(x))
    _, codes = np.unique(y, return_inverse=True)  # any label values -> 0 .. C-1
    return _vote_accuracy(codes, _neighbour_indices(x, k), int(codes.max()) + 1)


def silhouette(
    embedding: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray,
    sample_size: int | None = None,
    seed: int = 0,
) -> float:
    """Mean silhouette coefficient (Euclidean) of the labelled classes, from -1 to 1.

    Per point, ``(b - a) / max(a, b)`` with ``a`` its mean distance to its own class and ``b`` to
    the nearest other class: near 1 for compact, well-apart classes, near 0 for touching ones,
    negative when points sit closer to another class. Unlike kNN accuracy it rewards *round*,
    separated classes, so it also depends on the shape of the clusters.

    Cost is O(N^2 D) time (memory stays bounded, sklearn works in chunks): about 3-4 s for 10,000
    points on 2 CPU cores. ``sample_size`` scores that many points drawn without replacement with
    ``seed`` (5,000 points: ~0.5 s); None, or a size of at least N, uses all points.
    """
    x = _as_matrix(embedding, "embedding")
    y = _as_labels(labels, len(x))
    n_labels = len(np.unique(y))
    if not 2 <= n_labels <= len(x) - 1:
        raise ValueError(f"silhouette needs from 2 to N - 1 classes in labels, got {n_labels} for N={len(x)}")
    index = _subsample(len(x), sample_size, seed)
    if index is not None:
        x, y = x[index], y[index]
        n_sampled = len(np.unique(y))
        if not 2 <= n_sampled <= len(x) - 1:
            raise ValueError(f"sample_size={sample_size} leaves {n_sampled} classes; use a larger sample_size")
    return float(silhouette_score(x, y, metric="euclidean"))


def view_trustworthiness(
    high: torch.Tensor | np.ndarray,
    low: torch.Tensor | np.ndarray,
    k: int = 5,
    sample_size: int | None = None,
    seed: int = 0,
) -> float:
    """How faithfully a low-dimensional view ``low [N, 2]`` shows the neighbours of ``high [N, D]``.

    sklearn's trustworthiness (Venna & Kaski): 1.0 when each point's k nearest neighbours in the view
    are also near it in ``high``, e.g. when D == 2 and the view is the identity; it drops as the view
    brings together points that are far apart in ``high`` (about 0.5 for an unrelated view).

    It is O(N^2) in time *and memory* (three dense N x N matrices: 2.4 GB at N = 10,000), so by default
    (``sample_size=None``) at most :data:`TRUSTWORTHINESS_MAX_POINTS` points drawn with ``seed`` are
    scored (~1 s). Pass an integer to choose the sample size; ``len(high)`` gives the exact value.
    Sub-sampling judges neighbourhoods among the sampled points only, so it is a slightly coarser
    scale than the full set, the same for every model compared at the same size.
    """
    x_high = _as_matrix(high, "high")
    x_low = _as_matrix(low, "low")
    if len(x_low) != len(x_high):
        raise ValueError(f"low has {len(x_low)} points but high has {len(x_high)}")
    if sample_size is None:
        sample_size = TRUSTWORTHINESS_MAX_POINTS
    index = _subsample(len(x_high), sample_size, seed)
    if index is not None:
        x_high, x_low = x_high[index], x_low[index]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if k >= len(x_high) / 2:
        # sklearn's own limit: ranks beyond N / 2 make the normalisation meaningless.
        raise ValueError(f"k must be smaller than half the number of points scored (k={k}, N={len(x_high)})")
    return float(trustworthiness(x_high, x_low, n_neighbors=k, metric="euclidean"))


def _overlap_from_neighbours(classes: np.ndarray, neighbours: np.ndarray, n_classes: int) -> np.ndarray:
    """classes ``[N]`` and neighbours ``[N, k]`` -> row-normalised neighbour-class counts ``[C, C]``."""
    counts = np.zeros((n_classes, n_classes), dtype=np.float64)
    np.add.at(counts, (np.repeat(classes, neighbours.shape[1]), classes[neighbours].ravel()), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        # Every point has exactly k neighbours, so this is also the mean over points of their shares.
        return counts / counts.sum(axis=1, keepdims=True)  # absent class: 0 / 0 -> NaN row


def overlap_matrix(
    embedding: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray,
    k: int = 5,
    n_classes: int = 10,
) -> np.ndarray:
    """``[C, C]``: row c is how class c's points' k nearest *other* neighbours split across classes.

    Entry ``[c, j]`` is the share of the neighbours of class-c points that carry label j, so each row
    sums to 1 and the diagonal is each class's "purity" (1.0: it touches no other class). Off the
    diagonal it says which digits a model mixes up, e.g. 4 with 9. The matrix need not be symmetric.
    ``labels`` must be integers in ``0 .. n_classes - 1``; a class with no points gets a row of NaN
    (nothing to measure), while its column stays 0.
    """
    x = _as_matrix(embedding, "embedding")
    classes = _as_class_indices(_as_labels(labels, len(x)), n_classes)
    _check_k(k, len(x))
    return _overlap_from_neighbours(classes, _neighbour_indices(x, k), n_classes)


def knn_and_overlap_within(
    embedding: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray, k: int = 5, n_classes: int = 10
) -> tuple[float, float]:
    """Leave-one-out kNN-k accuracy and class overlap of one set ``[N, D]``, from one neighbour search.

    The same two numbers as :func:`knn_accuracy_within` and ``1 - mean(diag(``:func:`overlap_matrix```))``
    over the classes present (the share of a point's k nearest neighbours from another class, averaged
    over the classes), for callers that need both many times, such as every frame of a training timeline.
    """
    x = _as_matrix(embedding, "embedding")
    classes = _as_class_indices(_as_labels(labels, len(x)), n_classes)
    _check_k(k, len(x))
    neighbours = _neighbour_indices(x, k)  # [N, k]
    present = np.bincount(classes, minlength=n_classes) > 0
    matrix = _overlap_from_neighbours(classes, neighbours, n_classes)
    return _vote_accuracy(classes, neighbours, n_classes), 1.0 - float(np.mean(np.diag(matrix)[present]))


def class_density(
    embedding: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray,
    n_classes: int = 10,
) -> dict[str, np.ndarray]:
    """Per-class size and spacing in the latent space, each a ``[C]`` array (NaN where undefined).

    - ``count``: number of points of the class.
    - ``spread``: mean distance of the class's points to the class centroid (how big the class is).
    - ``nn_distance``: median distance from a point to its nearest same-class point (how tightly
      packed; needs 2 points).
    - ``centroid_separation``: distance from the class centroid to the nearest other class's centroid
      (needs 2 classes present).
    - ``separation_ratio``: ``centroid_separation / spread``, free of the latent scale and so comparable
      across models: above 1, the class sits further from its nearest neighbour class than its own
      radius; below 1, the two overlap. A VAE's KL term pulls all classes towards N(0, I), which tends
      to lower it; an AE may spread classes far apart but also blow them up.

    ``spread``, ``nn_distance`` and ``centroid_separation`` are in latent units, so compare them
    between classes of one model, not between models.
    """
    x = _as_matrix(embedding, "embedding")
    classes = _as_class_indices(_as_labels(labels, len(x)), n_classes)
    count = np.bincount(classes, minlength=n_classes)  # [C]
    present = count > 0
    centroids = np.full((n_classes, x.shape[1]), np.nan)  # [C, D]
    spread = np.full(n_classes, np.nan)
    nn_distance = np.full(n_classes, np.nan)
    for c in np.flatnonzero(present):
        members = x[classes == c]  # [N_c, D]
        centroids[c] = members.mean(axis=0)
        spread[c] = np.linalg.norm(members - centroids[c], axis=1).mean()
        if len(members) >= 2:
            distance, _ = NearestNeighbors(n_neighbors=1).fit(members).kneighbors()  # [N_c, 1], self excluded
            nn_distance[c] = np.median(distance[:, 0])
    separation = np.full(n_classes, np.nan)
    if present.sum() >= 2:
        between = np.linalg.norm(centroids[:, None, :] - centroids[None, :, :], axis=2)  # [C, C]
        np.fill_diagonal(between, np.inf)
        between[~present] = np.inf
        between[:, ~present] = np.inf
        separation[present] = between[present].min(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        # A class of identical points has spread 0: the ratio is then inf (apart), or NaN if undefined.
        ratio = separation / spread
    return {
        "count": count,
        "spread": spread,
        "nn_distance": nn_distance,
        "centroid_separation": separation,
        "separation_ratio": ratio,
    }


def overlap_report(
    embedding: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray,
    view_2d: torch.Tensor | np.ndarray | None = None,
    k: int = 5,
    seed: int = 0,
) -> dict[str, float]:
    """The headline class-overlap numbers of one model's embedding ``[N, D]`` (and its 2-D view ``[N, 2]``).

    Always returns the keys of :data:`REPORT_KEYS`, so a table of models has the same columns:

    - ``knn_accuracy``: :func:`knn_accuracy_within` in the latent space.
    - ``knn_accuracy_2d``: the same in ``view_2d`` (NaN without a view): how much the picture loses.
    - ``silhouette``: :func:`silhouette` in the latent space, on a seeded sample of
      :data:`REPORT_SILHOUETTE_POINTS` points.
    - ``trustworthiness``: :func:`view_trustworthiness` of ``view_2d`` (NaN without a view), on a
      seeded sample of :data:`TRUSTWORTHINESS_MAX_POINTS` points.
    - ``mean_purity``: mean diagonal of :func:`overlap_matrix` over the classes present.

    For a 2-D latent, pass the embedding itself as ``view_2d``. About 2-3 s for 10,000 points on 2 CPU
    cores; the neighbour search is shared by ``knn_accuracy`` and ``mean_purity``.
    """
    x = _as_matrix(embedding, "embedding")
    y = _as_labels(labels, len(x))
    _check_k(k, len(x))
    _, codes = np.unique(y, return_inverse=True)  # 0 .. C-1 whatever the label values
    n_codes = int(codes.max()) + 1
    neighbours = _neighbour_indices(x, k)
    report = {
        "knn_accuracy": _vote_accuracy(codes, neighbours, n_codes),
        "knn_accuracy_2d": float("nan"),
        "silhouette": silhouette(x, y, sample_size=REPORT_SILHOUETTE_POINTS, seed=seed),
        "trustworthiness": float("nan"),
        # Every code occurs, so no row is NaN and the plain mean is over the classes present.
        "mean_purity": float(np.mean(np.diag(_overlap_from_neighbours(codes, neighbours, n_codes)))),
    }
    if view_2d is not None:
        view = _as_matrix(view_2d, "view_2d")
        if len(view) != len(x):
            raise ValueError(f"view_2d has {len(view)} points but the embedding has {len(x)}")
        report["knn_accuracy_2d"] = knn_accuracy_within(view, codes, k=k)
        report["trustworthiness"] = view_trustworthiness(x, view, k=k, seed=seed)
    return report


# ---------------------------------------------------------------------------------------------
# Inside the latent space: which dimensions are used, and what sampling it gives.

# Burda et al. (2016), "Importance Weighted Autoencoders", section 5.2: a unit is active when the variance
# over images of its posterior mean, Cov_x(E_q[z_j | x]), exceeds 0.01.
ACTIVE_VARIANCE = 0.01
# A decoded image the judge gives at least this probability counts as a confident digit.
CONFIDENT = 0.9


def active_units(codes: torch.Tensor | np.ndarray) -> int:
    """How many dimensions of ``codes`` ``[N, D]`` (a VAE's posterior means, an AE's codes) are active: their
    variance over the N images exceeds :data:`ACTIVE_VARIANCE` (the ``active`` column of :func:`latent_dimensions`)."""
    x = _as_matrix(codes, "codes")
    return int((x.var(axis=0) > ACTIVE_VARIANCE).sum())


@torch.no_grad()
def latent_dimensions(model: LatentModel, images: torch.Tensor, batch_size: int = 2000) -> pd.DataFrame:
    """One row per latent dimension over ``images`` (uint8 ``[N, 28, 28]``): ``dim``, ``kl``, ``variance``, ``active``.

    ``kl`` is the dimension's mean KL(q(z_j | x) || N(0, 1)) in nats (NaN for an AE or PCA, which have no
    posterior); the KLs sum to the model's ``kl`` loss term on the same images. ``variance`` is the variance
    over images of the code (the posterior mean for a VAE), ``active`` whether it passes Burda et al.'s 0.01.
    """
    means, kls = [], []
    with evaluating(model):
        for i in range(0, len(images), batch_size):
            mean, logvar = model.encode(to_float_images(images[i : i + batch_size]).to(model.device))
            means.append(mean.cpu().double())
            if logvar is not None:
                # Kingma & Welling (2014), appendix B, per dimension: -1/2 (1 + log s^2 - m^2 - s^2).
                kls.append((-0.5 * (1 + logvar - mean**2 - logvar.exp())).cpu().double())
    codes = torch.cat(means)  # [N, D]
    variance = codes.var(0, unbiased=False).numpy()
    kl = torch.cat(kls).mean(0).numpy() if kls else np.full(codes.shape[1], np.nan)
    return pd.DataFrame(
        {"dim": np.arange(codes.shape[1]), "kl": kl, "variance": variance, "active": variance > ACTIVE_VARIANCE}
    )


@dataclass(frozen=True)
class SampleQuality:
    """What the judge says of a set of decoded images: the share it calls a confident digit (max probability
    >= :data:`CONFIDENT`), the share of each class among its verdicts ``[10]``, and that histogram's entropy in
    nats (``log 10`` = 2.303 when the classes are balanced, 0 when every image is one class)."""

    n: int
    confident_share: float
    class_shares: np.ndarray
    entropy: float


def judged(judge: Any, decoded: torch.Tensor) -> SampleQuality:
    """The judge's verdict on images float ``[N, 1, 28, 28]`` in [0, 1] (``judge.predict_proba`` -> ``[N, 10]``)."""
    probabilities = judge.predict_proba(decoded).double()
    if len(probabilities) == 0:
        raise ValueError("no images to judge")
    top, classes = probabilities.max(1)
    shares = np.bincount(classes.numpy(), minlength=probabilities.shape[1]) / len(classes)
    nonzero = shares[shares > 0]
    return SampleQuality(
        len(classes), float((top >= CONFIDENT).double().mean()), shares, float(-(nonzero * np.log(nonzero)).sum())
    )


@torch.no_grad()
def sample_codes(
    model: LatentModel, n: int, seed: int = 0, fit_codes: torch.Tensor | np.ndarray | None = None
) -> torch.Tensor:
    """``n`` random codes ``[n, D]`` to decode: a VAE's prior N(0, I); for an AE or PCA, which have no prior, a
    Gaussian with the mean and covariance of ``fit_codes`` ``[M, D]`` (their training codes), the fair analogue."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    generator = torch.Generator().manual_seed(seed)
    dim = model.config.latent_dim
    noise = torch.randn(n, dim, generator=generator, dtype=torch.float64)
    if model.config.kind == "vae":
        return noise.float()
    if fit_codes is None:
        raise ValueError(
            f"a {model.config.kind.upper()} has no prior: pass fit_codes, the codes of its training images"
        )
    codes = torch.tensor(np.asarray(fit_codes, dtype=np.float64))  # a copy: the caches hand out read-only arrays
    if codes.ndim != 2 or codes.shape[1] != dim or len(codes) <= dim:
        raise ValueError(f"fit_codes must be [M, {dim}] with M > {dim}, got {tuple(codes.shape)}")
    mean = codes.mean(0)
    covariance = torch.cov(codes.T).reshape(dim, dim) + 1e-9 * torch.eye(dim, dtype=torch.float64)
    return (mean + noise @ torch.linalg.cholesky(covariance).T).float()


@torch.no_grad()
def sample_quality(
    model: LatentModel,
    judge: Any,
    n: int = 10_000,
    seed: int = 0,
    fit_codes: torch.Tensor | np.ndarray | None = None,
    batch_size: int = 2000,
) -> SampleQuality:
    """Decode ``n`` seeded samples (:func:`sample_codes`) and let the judge (``vae.judge``) say what they are."""
    codes = sample_codes(model, n, seed, fit_codes)
    with evaluating(model):
        decoded = torch.cat(
            [model.decode(codes[i : i + batch_size].to(model.device)).cpu() for i in range(0, n, batch_size)]
        )
    return judged(judge, decoded)


@torch.no_grad()
def reconstruction_quality(
    model: LatentModel, judge: Any, images: torch.Tensor, batch_size: int = 2000
) -> SampleQuality:
    """The judge's verdict on decode(embed(x)) for ``images`` (uint8 ``[N, 28, 28]``): the ceiling for samples."""
    with evaluating(model):
        decoded = torch.cat(
            [
                model.reconstruct(to_float_images(images[i : i + batch_size]).to(model.device)).cpu()
                for i in range(0, len(images), batch_size)
            ]
        )
    return judged(judge, decoded)


# Holes: where a plane decodes to no digit. The data region is the box between each axis's 0.5th and 99.5th
# percentiles of the embedded points (it holds at least 98 % of them), sampled at the centres of a square grid.
HOLES_GRID = 48
HOLES_TRIM = 0.005


@dataclass(frozen=True)
class HolesShare:
    """How much of a plane's data region decodes to a confident digit: ``share`` of the ``grid`` x ``grid``
    cell centres of ``box`` ``(x0, x1, y0, y1)`` whose decoded image the judge gives a class at least
    :data:`CONFIDENT`; ``approximate`` when the plane is a 2-D view of more dimensions (decoded through the
    view's inverse, one of many codes for each place)."""

    share: float
    grid: int
    box: tuple[float, float, float, float]
    approximate: bool


def data_box(embedding: np.ndarray, trim: float = HOLES_TRIM) -> tuple[float, float, float, float]:
    """The box ``(x0, x1, y0, y1)`` between each axis's ``trim`` and ``1 - trim`` quantiles of ``embedding``
    ``[N, 2]``: it leaves out at most ``4 * trim`` of the points."""
    points = np.asarray(embedding, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
        raise ValueError(f"embedding must be [N, 2] with N > 0, got {points.shape}")
    (x0, y0), (x1, y1) = np.quantile(points, [trim, 1 - trim], axis=0)
    return float(x0), float(x1), float(y0), float(y1)


@torch.no_grad()
def holes_share(
    decode: Any, to_codes: Any, embedding: np.ndarray, judge: Any, grid: int = HOLES_GRID, approximate: bool = False
) -> HolesShare:
    """The share of the plane's data region that decodes to a confident digit.

    ``decode``: codes ``[M, D]`` -> images ``[M, 28, 28]`` (float in [0, 1]); ``to_codes``: plane points
    ``[M, 2]`` -> codes ``[M, D]`` (the view's inverse; the identity for a 2-D model); ``embedding`` ``[N, 2]``:
    the plane's points, which fix the data region (:func:`data_box`); ``judge``: ``predict_proba``.
    """
    if grid < 2:
        raise ValueError(f"grid must be at least 2, got {grid}")
    x0, x1, y0, y1 = data_box(embedding)
    xs = x0 + (np.arange(grid) + 0.5) / grid * (x1 - x0)
    ys = y0 + (np.arange(grid) + 0.5) / grid * (y1 - y0)
    points = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype(np.float32)  # [grid^2, 2]
    images = np.asarray(decode(np.asarray(to_codes(points), dtype=np.float32)), dtype=np.float32)
    if images.shape != (len(points), 28, 28):
        raise ValueError(f"decode must give [{len(points)}, 28, 28] images, got {images.shape}")
    quality = judged(judge, torch.from_numpy(images).unsqueeze(1))
    return HolesShare(quality.confident_share, grid, (x0, x1, y0, y1), approximate)
