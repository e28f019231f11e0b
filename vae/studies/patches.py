"""What a convolutional layer's filters have in common with the principal components of image patches.

A conv layer applies each of its C filters ``[k, k]`` to every k x k patch it sees. If its filters were
PCA of those patches ("a local PCA per kernel"), the span of their strongest directions would be the span
of the top principal components. Patch PCs of natural images are derivative-like operators (Hancock,
Baddeley & Smith, 1992), and a CNN's first layer is set mostly by its input patches' second-order
statistics (Chowers & Weiss, 2023). This module measures how close a trained filter bank is:

- :func:`patch_pca`: principal components of the patches a conv layer sees (its kernel, stride, padding).
- :func:`filter_subspace_angles`: principal angles between the top-k right singular directions of a
  filter bank (where its energy lies) and the top-k patch components, for every k.
- :func:`filter_energy`: the share of the bank's energy along each component.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class PatchPCA:
    components: np.ndarray  # float64 [P, P]: rows are unit principal axes, largest variance first (P = k * k)
    explained_variance: np.ndarray  # float64 [P], descending (unbiased, as scikit-learn's)
    mean: np.ndarray  # float64 [P]: the mean patch
    kernel: int
    n_patches: int


def image_patches(images: torch.Tensor, kernel: int, stride: int = 1, padding: int = 0) -> torch.Tensor:
    """images uint8 ``[N, 28, 28]`` or float ``[N, 1, 28, 28]`` -> float64 patches ``[N * L, kernel * kernel]``.

    The patches a ``Conv2d(1, C, kernel, stride, padding)`` multiplies its filters with, in the order of
    ``F.unfold`` (row-major within a patch, as ``conv.weight.view(C, -1)`` flattens a filter).
    """
    x = images.reshape(len(images), 1, *images.shape[-2:]).to(torch.float64)
    if images.dtype == torch.uint8:
        x = x / 255.0
    columns = F.unfold(x, kernel, padding=padding, stride=stride)  # [N, k*k, L]
    return columns.transpose(1, 2).reshape(-1, kernel * kernel)


def patch_pca(images: torch.Tensor, kernel: int, stride: int = 1, padding: int = 0, chunk: int = 5000) -> PatchPCA:
    """PCA of every ``kernel x kernel`` patch of ``images`` a conv layer with this stride and padding sees.

    Accumulates the patch sums and second moments in float64, ``chunk`` images at a time, so 60,000
    images (11.8 million patches of a 4 x 4 kernel at stride 2) take a few seconds and little memory.
    Axis signs are fixed as scikit-learn fixes them (largest |loading| positive), so refits agree.
    """
    if not 1 <= kernel <= min(images.shape[-2:]):
        raise ValueError(f"kernel must be from 1 to the image size, got {kernel}")
    size = kernel * kernel
    total = torch.zeros(size, dtype=torch.float64)
    outer = torch.zeros(size, size, dtype=torch.float64)
    count = 0
    for start in range(0, len(images), chunk):
        patches = image_patches(images[start : start + chunk], kernel, stride, padding)  # [n, P]
        total += patches.sum(0)
        outer += patches.t() @ patches
        count += len(patches)
    if count < 2:
        raise ValueError(f"patch PCA needs at least 2 patches, got {count}")
    mean = total / count
    covariance = (outer - count * torch.outer(mean, mean)) / (count - 1)  # [P, P]
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending
    order = torch.argsort(eigenvalues, descending=True)
    components = eigenvectors[:, order].t()  # [P, P], rows
    signs = torch.sign(components.gather(1, components.abs().argmax(1, keepdim=True)))
    return PatchPCA(
        components=(components * signs).numpy(),
        explained_variance=eigenvalues[order].clamp_min(0).numpy(),
        mean=mean.numpy(),
        kernel=kernel,
        n_patches=count,
    )


def _bank(filters: np.ndarray | torch.Tensor) -> np.ndarray:
    """Filters ``[C, 1, k, k]``, ``[C, k, k]`` or ``[C, k * k]`` -> float64 ``[C, k * k]``."""
    if isinstance(filters, torch.Tensor):
        filters = filters.detach().cpu().numpy()
    bank = np.asarray(filters, dtype=np.float64)
    return bank.reshape(len(bank), -1)


def filter_directions(filters: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """A bank's directions by energy: (right singular vectors ``[P, P]`` as rows, strongest first;
    the share of the bank's squared norm along each ``[P]``). Padded with zero-energy directions when the
    bank has fewer filters than pixels."""
    bank = _bank(filters)
    _, singular, vt = np.linalg.svd(bank, full_matrices=True)  # vt [P, P]
    energy = np.zeros(bank.shape[1])
    energy[: len(singular)] = singular**2
    return vt, energy / energy.sum()


def filter_subspace_angles(filters: np.ndarray | torch.Tensor, pca: PatchPCA) -> list[list[float]]:
    """For k = 1 .. P: principal angles (degrees, largest first) between the span of the bank's k strongest
    directions and the span of the top-k patch components. All near 0: the bank is a local PCA, whatever
    basis the filters use; random filters give angles near 90 for small k."""
    from scipy.linalg import subspace_angles

    directions, _ = filter_directions(filters)
    return [
        np.degrees(subspace_angles(directions[:k].T, pca.components[:k].T)).tolist()
        for k in range(1, directions.shape[0] + 1)
    ]


def filter_energy(filters: np.ndarray | torch.Tensor, pca: PatchPCA) -> np.ndarray:
    """``[P]``: share of the bank's squared norm along each patch component, in the components' order.

    Sums to 1. A bank that follows the patches' second-order statistics puts most of it in the first few
    components, as the patches do their variance (``explained_variance / its sum``); 1 / P each for a bank
    with no preference."""
    bank = _bank(filters)
    along = (bank @ pca.components.T) ** 2  # [C, P]
    return along.sum(0) / along.sum()
