"""The training set's neighbour graph, for the UMAP term of an AE (``ModelConfig.umap_weight``).

UMAP's first step (McInnes, Healy & Melville, 2018, sec. 3.1): each image's 15 nearest neighbours in pixel
space, turned by umap-learn's ``fuzzy_simplicial_set`` into a symmetric graph whose edge weights are
membership strengths in (0, 1]. Parametric UMAP (Sainburg, McInnes & Gentner, 2021) trains an encoder
on edges drawn in proportion to those weights; :class:`NeighbourGraph` draws them.

Only training needs the graph: a trained model encodes and decodes without it. umap-learn (and numba) is
imported inside :func:`fuzzy_graph`, so importing this module costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# UMAP's default neighbourhood size: small enough to keep classes apart, large enough to connect them.
N_NEIGHBOURS = 15


@dataclass(frozen=True)
class NeighbourGraph:
    """The edges of a fuzzy neighbour graph over ``n_points`` images, both directions of each listed."""

    heads: torch.Tensor  # int64 [E]
    tails: torch.Tensor  # int64 [E]
    weights: torch.Tensor  # float64 [E], membership strengths in (0, 1]
    n_points: int

    def __post_init__(self) -> None:
        if not (self.heads.shape == self.tails.shape == self.weights.shape) or self.heads.ndim != 1:
            raise ValueError("heads, tails and weights must be 1-D tensors of one length")
        if len(self.heads) == 0:
            raise ValueError("the graph has no edges")
        if int(self.heads.min()) < 0 or int(max(self.heads.max(), self.tails.max())) >= self.n_points:
            raise ValueError(f"edge ends must index the {self.n_points} points")
        # Cumulative weights, for drawing edges in proportion to their weight by a binary search.
        object.__setattr__(self, "_cumulative", torch.cumsum(self.weights, 0))

    def sample(self, count: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``count`` edges drawn with replacement, each with probability weight / total -> (heads, tails) ``[count]``.

        This is UMAP's edge sampling (an edge of weight w is visited w / max(w) as often as the strongest),
        in the form Parametric UMAP batches it: an edge drawn counts as present, probability 1.
        """
        cumulative = self._cumulative
        draws = torch.rand(count, generator=generator, dtype=torch.float64) * cumulative[-1]
        index = torch.searchsorted(cumulative, draws, right=True).clamp_max(len(cumulative) - 1)
        return self.heads[index], self.tails[index]


def nearest_neighbours(images: torch.Tensor, k: int = N_NEIGHBOURS, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours (Euclidean, pixels in [0, 1]) of every image, itself included first.

    images ``[N, 28, 28]`` uint8 or ``[N, 1, 28, 28]`` float -> (indices int64 ``[N, k]``, distances float32
    ``[N, k]``), the form ``fuzzy_simplicial_set`` takes. Exact and deterministic, unlike the approximate
    search umap-learn runs above 4,096 points; about a minute for 60,000 MNIST images on two cores.
    """
    x = images.reshape(len(images), -1).float()
    if images.dtype == torch.uint8:
        x = x / 255.0
    if not 2 <= k <= len(x):
        raise ValueError(f"k must be from 2 to the number of images ({len(x)}), got {k}")
    squared_norms = x.pow(2).sum(1)  # [N]
    indices, distances = [], []
    for start in range(0, len(x), chunk):
        block = x[start : start + chunk]  # [C, 784]
        # |a - b|^2 = |a|^2 - 2 a.b + |b|^2: one matmul per block instead of N x N differences.
        squared = squared_norms[start : start + chunk, None] - 2 * block @ x.t() + squared_norms[None, :]
        own = torch.arange(start, start + len(block))
        squared[torch.arange(len(block)), own] = -1.0  # each image is its own nearest neighbour, exactly once
        values, found = torch.topk(squared, k, dim=1, largest=False)
        indices.append(found)
        distances.append(values.clamp_min(0).sqrt())
    return torch.cat(indices).numpy().astype(np.int64), torch.cat(distances).numpy().astype(np.float32)


def fuzzy_graph(images: torch.Tensor, n_neighbours: int = N_NEIGHBOURS, seed: int = 0) -> NeighbourGraph:
    """UMAP's fuzzy simplicial set of ``images`` (uint8 ``[N, 28, 28]`` or float ``[N, 1, 28, 28]``).

    The neighbours come from :func:`nearest_neighbours` (exact); the membership strengths and their
    symmetrisation (fuzzy union) from umap-learn's ``fuzzy_simplicial_set`` itself.
    """
    from umap.umap_ import fuzzy_simplicial_set

    if len(images) <= n_neighbours:
        raise ValueError(f"the graph needs more than {n_neighbours} images, got {len(images)}")
    indices, distances = nearest_neighbours(images, n_neighbours)
    graph, _, _ = fuzzy_simplicial_set(
        np.zeros((len(images), 1), dtype=np.float32),  # unused when the neighbours are given
        n_neighbours,
        np.random.RandomState(seed),
        "euclidean",
        knn_indices=indices,
        knn_dists=distances,
    )
    coo = graph.tocoo()
    keep = coo.data > 0
    return NeighbourGraph(
        heads=torch.from_numpy(coo.row[keep].astype(np.int64)),
        tails=torch.from_numpy(coo.col[keep].astype(np.int64)),
        weights=torch.from_numpy(coo.data[keep].astype(np.float64)),
        n_points=len(images),
    )
