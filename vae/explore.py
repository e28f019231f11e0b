"""What the explorer computes on a click: decodes at a point, interpolations, manifold grids, posteriors.

All functions take a model, a fitted 2-D view of its codes (``vae.projections``) and plain arrays, and
return numpy arrays: images are float32 ``[..., 28, 28]`` in [0, 1].
"""

from __future__ import annotations

import numpy as np
import torch

from vae.models import LatentModel, to_float_images
from vae.projections import LatentView


@torch.no_grad()
def decode_codes(model: LatentModel, codes: np.ndarray) -> np.ndarray:
    """codes ``[M, D]`` -> images float32 ``[M, 28, 28]``."""
    z = torch.as_tensor(np.asarray(codes, dtype=np.float32), device=model.device)
    return model.decode(z).squeeze(1).cpu().numpy()


def decode_at(model: LatentModel, view: LatentView, x: float, y: float) -> tuple[np.ndarray, np.ndarray]:
    """A click at (x, y) of the 2-D view -> (code ``[D]``, image ``[28, 28]``), through the view's inverse."""
    code = view.inverse_transform(np.array([[x, y]], dtype=np.float32))  # [1, D]
    return code[0], decode_codes(model, code)[0]


@torch.no_grad()
def reconstruct(model: LatentModel, images: torch.Tensor) -> np.ndarray:
    """images uint8 ``[M, 28, 28]`` -> decode(embed(x)) float32 ``[M, 28, 28]``."""
    x = to_float_images(images).to(model.device)
    return model.reconstruct(x).squeeze(1).cpu().numpy()


@torch.no_grad()
def embed_and_redraw(model: LatentModel, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One image float32 ``[28, 28]`` in [0, 1] -> (its code ``[D]``, what the decoder draws from it ``[28, 28]``)."""
    x = torch.as_tensor(np.asarray(image, dtype=np.float32), device=model.device).view(1, 1, 28, 28)
    code = model.embed(x).cpu().numpy()  # [1, D]
    return code[0], decode_codes(model, code)[0]


def class_centroids(codes: np.ndarray, labels: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """codes ``[N, D]``, labels ``[N]`` -> the mean code of each class ``[C, D]`` (NaN for an absent class)."""
    codes, labels = np.asarray(codes, dtype=np.float64), np.asarray(labels)
    out = np.full((n_classes, codes.shape[1]), np.nan)
    for c in range(n_classes):
        members = codes[labels == c]
        if len(members):
            out[c] = members.mean(0)
    return out.astype(np.float32)


def interpolate(
    model: LatentModel, start: np.ndarray, end: np.ndarray, steps: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Straight line from code ``start`` to ``end`` (both ``[D]``) in ``steps`` points, decoded.

    Returns (codes ``[steps, D]``, images ``[steps, 28, 28]``). Linear in the latent space itself, not in
    the 2-D view, so both models are compared on the path their own decoder sees.
    """
    if steps < 2:
        raise ValueError(f"steps must be at least 2, got {steps}")
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]  # [steps, 1]
    start, end = np.asarray(start, dtype=np.float32), np.asarray(end, dtype=np.float32)
    codes = (1 - t) * start + t * end  # [steps, D]
    return codes, decode_codes(model, codes)


def step_changes(images: np.ndarray) -> np.ndarray:
    """Mean absolute pixel change between consecutive frames ``[K, 28, 28]`` -> ``[K - 1]``.

    A smooth interpolation changes a little at every step; a jumpy one holds still, then flips.
    """
    frames = np.asarray(images, dtype=np.float32)
    return np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2))


def manifold_grid(
    model: LatentModel, view: LatentView, x_range: tuple[float, float], y_range: tuple[float, float], n: int
) -> np.ndarray:
    """Decode an ``n`` x ``n`` lattice of the 2-D view -> images ``[n * n, 28, 28]``.

    Ordered like ``vae.plots.scatter.ClickGrid.points``: x fastest, y increasing with the row (``tile_grid`` puts
    the highest y on top, as on the plot).
    """
    if not 2 <= n <= 40:
        raise ValueError(f"n must be from 2 to 40, got {n}")
    xs, ys = np.linspace(*x_range, n), np.linspace(*y_range, n)
    gx, gy = np.meshgrid(xs, ys)
    points = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)  # [n * n, 2]
    return decode_codes(model, view.inverse_transform(points))


@torch.no_grad()
def posterior_2d(model: LatentModel, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray] | None:
    """A 2-D VAE's posterior for images uint8 ``[M, 28, 28]``: (means ``[M, 2]``, sigmas ``[M, 2]``).

    None for models without a posterior (AE, PCA) or with D != 2, where an axis-aligned ellipse in a
    projected view would not be the posterior's shape.
    """
    if model.config.kind != "vae" or model.config.latent_dim != 2:
        return None
    mean, logvar = model.encode(to_float_images(images).to(model.device))
    return mean.cpu().numpy(), torch.exp(0.5 * logvar).cpu().numpy()


def traversals(
    model: LatentModel, codes: np.ndarray, dims: list[int], steps: int = 9, base: np.ndarray | None = None
) -> np.ndarray:
    """For each dimension in ``dims``, a row of decodes from ``base`` (``[D]``; default the mean of ``codes``)
    with that one dimension swept from the 1st to the 99th percentile of ``codes [N, D]`` -> ``[len(dims), steps, 28, 28]``.

    The percentiles keep each sweep inside the values the encoder really gives, so a dimension the model
    does not use shows as a row that does not change.
    """
    codes = np.asarray(codes, dtype=np.float32)
    if steps < 2:
        raise ValueError(f"steps must be at least 2, got {steps}")
    if any(not 0 <= d < codes.shape[1] for d in dims):
        raise ValueError(f"dims must lie in 0..{codes.shape[1] - 1}, got {list(dims)}")
    start = codes.mean(0) if base is None else np.asarray(base, dtype=np.float32)
    lo, hi = np.percentile(codes, 1, axis=0), np.percentile(codes, 99, axis=0)
    rows = []
    for d in dims:
        sweep = np.repeat(start[None], steps, axis=0)  # [steps, D]
        sweep[:, d] = np.linspace(lo[d], hi[d], steps)
        rows.append(decode_codes(model, sweep))
    return np.stack(rows) if rows else np.zeros((0, steps, 28, 28), dtype=np.float32)
