"""Tests for vae.images: uint8 conversion, enlargement, strips, manifold grids laid out like the plane, PNG."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from vae.images import strip, tile_grid, to_png_bytes, to_uint8_image, upscale
from vae.plots.scatter import ClickGrid

SEED = 189212


def test_to_uint8_image_scales_clips_and_squeezes() -> None:
    img = np.linspace(0, 1, 28 * 28).reshape(1, 28, 28)
    img[0, 0, 0], img[0, 0, 1], img[0, 0, 2] = -0.5, 2.0, np.nan
    out = to_uint8_image(img)
    assert out.shape == (28, 28) and out.dtype == np.uint8
    assert (out[0, 0], out[0, 1], out[0, 2]) == (0, 255, 0)
    assert out[-1, -1] == 255 and out[14, 0] == round(img[0, 14, 0] * 255)
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(to_uint8_image(torch.from_numpy(img[0].copy()).requires_grad_()), out)


def test_upscale_is_nearest_neighbour() -> None:
    img = np.random.default_rng(SEED).integers(0, 256, size=(28, 28), dtype=np.uint8)
    big = upscale(img, scale=8)
    assert big.shape == (224, 224) and big.dtype == np.uint8
    blocks = big.reshape(28, 8, 28, 8)
    # Every 8x8 block is one constant value, equal to the source pixel: no interpolation.
    assert np.all(blocks == img[:, None, :, None])


def test_strip_places_images_side_by_side_with_light_separators() -> None:
    images = np.stack([np.full((28, 28), v) for v in (0.0, 0.5, 1.0)])
    out = strip(images, gap=2)
    assert out.shape == (28, 3 * 28 + 2 * 2)
    assert np.all(out[:, :28] == 0) and np.all(out[:, 30:58] == 128) and np.all(out[:, 60:] == 255)
    separators = out[:, [28, 29, 58, 59]]
    assert np.all(separators == separators[0, 0]) and 150 <= separators[0, 0] < 255


def test_tile_grid_puts_the_highest_y_at_the_top() -> None:
    n = 3
    grid = ClickGrid((-1.0, 1.0), (-1.0, 1.0), n=n)
    zs = grid.points()
    # Fake "decoder": image brightness encodes y (rows) and x (a marker pixel), so placement is visible.
    images = np.zeros((n * n, 28, 28), dtype=np.uint8)
    for k, (x, y) in enumerate(zs):
        images[k] = int(round((y + 1) * 100))  # y = -1 -> 0, 0 -> 100, 1 -> 200
        images[k, 0, 0] = int(round((x + 1) * 100))
    out = tile_grid(images, n, gap=1)
    assert out.shape == (n * 28 + 2, n * 28 + 2)
    step = 28 + 1
    # Top row of tiles = highest y; bottom row = lowest.
    assert out[5, 5] == 200 and out[2 * step + 5, 5] == 0
    assert out[step + 5, 5] == 100
    # x grows to the right within a row.
    assert [out[0, c * step] for c in range(n)] == [0, 100, 200]
    with pytest.raises(ValueError, match="n \\* n"):
        tile_grid(images[:8], n)


def test_png_round_trip_preserves_pixels() -> None:
    img = np.random.default_rng(SEED).integers(0, 256, size=(28, 40), dtype=np.uint8)
    data = to_png_bytes(img)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), img)
    rgb = np.random.default_rng(SEED).integers(0, 256, size=(5, 6, 3), dtype=np.uint8)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(to_png_bytes(rgb)))), rgb)
    with pytest.raises(ValueError, match="uint8"):
        to_png_bytes(img.astype(float))
