"""Images as arrays and PNG files: uint8, white digit on black, as MNIST stores them.

What the pages show and the exports write: one digit (:func:`to_uint8_image`, :func:`upscale`), a row of them
(:func:`strip`), a manifold grid laid out like the plane it was decoded from (:func:`tile_grid`), and PNG
bytes (:func:`to_png_bytes`). No Plotly and no torch needed (a torch tensor is accepted and converted).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np


def to_uint8_image(img: Any) -> np.ndarray:
    """float ``[28, 28]`` or ``[1, 28, 28]`` in [0, 1] (numpy or CPU torch) -> uint8 ``[28, 28]``.

    Values are clipped to [0, 1] and NaN becomes 0; uint8 input is passed through (squeezed).
    """
    if hasattr(img, "detach"):
        img = img.detach().cpu().numpy()
    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise ValueError(f"image must have shape [H, W] or [1, H, W], got {list(np.shape(img))}")
    if arr.dtype == np.uint8:
        return arr.copy()
    arr = np.nan_to_num(arr.astype(np.float64), nan=0.0)
    return np.rint(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)


def upscale(img: np.ndarray, scale: int = 8) -> np.ndarray:
    """Nearest-neighbour enlargement ``[H, W(, C)]`` -> ``[H * scale, W * scale(, C)]``: crisp pixels, no blur.

    Browsers smooth small images when they stretch them; sending them pre-enlarged keeps the pixels square.
    """
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    arr = np.asarray(img)
    if arr.ndim not in (2, 3):
        raise ValueError(f"image must have shape [H, W] or [H, W, C], got {list(arr.shape)}")
    return np.repeat(np.repeat(arr, scale, axis=0), scale, axis=1)


# Light grey: visible between black MNIST backgrounds, quiet next to white strokes.
SEPARATOR = 200


def strip(images: Any, gap: int = 2) -> np.ndarray:
    """K images ``[K, H, W]`` (float in [0, 1] or uint8; ``[K, 1, H, W]`` too) -> uint8 ``[H, K*W + (K-1)*gap]``."""
    tiles = _as_uint8_stack(images)
    k, h, w = tiles.shape
    if gap < 0:
        raise ValueError(f"gap must be >= 0, got {gap!r}")
    out = np.full((h, k * w + (k - 1) * gap), SEPARATOR, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        out[:, i * (w + gap) : i * (w + gap) + w] = tile
    return out


def tile_grid(images: Any, n: int, gap: int = 1) -> np.ndarray:
    """``n * n`` images ``[n*n, H, W]`` in :meth:`vae.plots.scatter.ClickGrid.points` order -> uint8 ``[n*H + (n-1)*gap, n*W + ...]``.

    Image ``k`` was decoded at ``(xs[k % n], ys[k // n])`` with ys increasing, so row ``k // n = 0`` holds
    the *lowest* y. The output puts it at the bottom: like the scatter plot, y grows upwards and x to the
    right, so the manifold image lines up with the region of the plot it was decoded from.
    """
    tiles = _as_uint8_stack(images)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1 or len(tiles) != n * n:
        raise ValueError(f"need n * n images for n={n!r}, got {len(tiles)}")
    if gap < 0:
        raise ValueError(f"gap must be >= 0, got {gap!r}")
    _, h, w = tiles.shape
    out = np.full((n * h + (n - 1) * gap, n * w + (n - 1) * gap), SEPARATOR, dtype=np.uint8)
    for k, tile in enumerate(tiles):
        row = n - 1 - k // n  # flip: highest y on top
        col = k % n
        out[row * (h + gap) : row * (h + gap) + h, col * (w + gap) : col * (w + gap) + w] = tile
    return out


def to_png_bytes(img: np.ndarray) -> bytes:
    """uint8 ``[H, W]`` (greyscale) or ``[H, W, 3]`` (RGB) -> PNG file bytes, e.g. for ``st.download_button``."""
    from PIL import Image  # only the download path needs Pillow

    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {arr.dtype} (use to_uint8_image first)")
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise ValueError(f"image must have shape [H, W] or [H, W, 3], got {list(arr.shape)}")
    buffer = io.BytesIO()
    Image.fromarray(arr, mode=None).save(buffer, format="PNG")
    return buffer.getvalue()


def _as_uint8_stack(images: Any) -> np.ndarray:
    if hasattr(images, "detach"):
        images = images.detach().cpu().numpy()
    arr = np.asarray(images)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 3 or len(arr) == 0:
        raise ValueError(f"images must have shape [K, H, W] or [K, 1, H, W] with K >= 1, got {list(arr.shape)}")
    return np.stack([to_uint8_image(a) for a in arr])
