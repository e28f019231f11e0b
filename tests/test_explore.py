"""vae.explore: what a click, a drag or a drawing computes, checked against the model's own calls."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vae.explore import (
    class_centroids,
    decode_at,
    decode_codes,
    embed_and_redraw,
    interpolate,
    manifold_grid,
    posterior_2d,
    reconstruct,
    step_changes,
    traversals,
)
from vae.images import tile_grid
from vae.models import ModelConfig, build_model, to_float_images
from vae.plots.scatter import ClickGrid
from vae.projections import make_view


@pytest.fixture(scope="module")
def vae8() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(ModelConfig(kind="vae", latent_dim=8, hidden=(32,))).eval()


@pytest.fixture(scope="module")
def ae2() -> torch.nn.Module:
    torch.manual_seed(1)
    return build_model(ModelConfig(kind="ae", latent_dim=2, hidden=(16,))).eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randint(0, 256, (12, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))


def test_decode_codes_is_the_decoder_without_the_channel(vae8) -> None:
    codes = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    with torch.no_grad():
        expected = vae8.decode(torch.from_numpy(codes))[:, 0].numpy()
    out = decode_codes(vae8, codes)
    assert out.shape == (5, 28, 28) and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_decode_at_goes_through_the_views_inverse(vae8) -> None:
    codes = np.random.default_rng(1).normal(size=(200, 8)).astype(np.float32)
    view = make_view("pca").fit(codes)
    code, image = decode_at(vae8, view, 0.5, -0.25)
    np.testing.assert_allclose(code, view.inverse_transform(np.array([[0.5, -0.25]], dtype=np.float32))[0], atol=1e-6)
    np.testing.assert_allclose(image, decode_codes(vae8, code[None])[0], atol=1e-6)


def test_reconstruct_and_embed_and_redraw_agree_with_the_model(vae8, images) -> None:
    x = to_float_images(images)
    with torch.no_grad():
        expected = vae8.reconstruct(x)[:, 0].numpy()
        first_code = vae8.embed(x[:1]).numpy()[0]
    np.testing.assert_allclose(reconstruct(vae8, images), expected, atol=1e-6)
    code, redrawn = embed_and_redraw(vae8, x[0, 0].numpy())
    assert code.shape == (8,) and redrawn.shape == (28, 28)
    np.testing.assert_allclose(code, first_code, atol=1e-6)  # embed is the mean, not a sample: no noise
    np.testing.assert_allclose(redrawn, expected[0], atol=1e-5)


def test_class_centroids_mean_per_class_and_nan_for_absent() -> None:
    codes = np.array([[0.0, 2.0], [2.0, 4.0], [10.0, 10.0]], dtype=np.float32)
    out = class_centroids(codes, np.array([0, 0, 2]), n_classes=4)
    np.testing.assert_allclose(out[0], [1.0, 3.0])
    np.testing.assert_allclose(out[2], [10.0, 10.0])
    assert np.isnan(out[1]).all() and np.isnan(out[3]).all()


def test_interpolate_runs_the_straight_line_in_the_latent(ae2) -> None:
    start, end = np.array([-1.0, 0.0], dtype=np.float32), np.array([3.0, 2.0], dtype=np.float32)
    codes, images = interpolate(ae2, start, end, steps=5)
    np.testing.assert_allclose(codes[0], start)
    np.testing.assert_allclose(codes[-1], end)
    np.testing.assert_allclose(np.diff(codes, axis=0), np.tile([[1.0, 0.5]], (4, 1)), atol=1e-6)
    np.testing.assert_allclose(images, decode_codes(ae2, codes), atol=1e-6)
    with pytest.raises(ValueError, match="steps must be at least 2"):
        interpolate(ae2, start, end, steps=1)


def test_step_changes_is_the_mean_absolute_frame_difference() -> None:
    frames = np.zeros((3, 28, 28), dtype=np.float32)
    frames[1, :14] = 1.0  # half the pixels switch on, then all of them
    frames[2] = 1.0
    np.testing.assert_allclose(step_changes(frames), [0.5, 0.5])


def test_manifold_grid_is_in_click_grid_order(ae2) -> None:
    view = make_view("identity").fit(np.zeros((4, 2), dtype=np.float32))
    grid = manifold_grid(ae2, view, (-2.0, 2.0), (-1.0, 3.0), 4)
    points = ClickGrid((-2.0, 2.0), (-1.0, 3.0), n=4).points()
    np.testing.assert_allclose(grid, decode_codes(ae2, points.astype(np.float32)), atol=1e-6)
    assert tile_grid(grid, 4).shape == (4 * 28 + 3, 4 * 28 + 3)
    for n in (1, 41):
        with pytest.raises(ValueError, match="n must be from 2 to 40"):
            manifold_grid(ae2, view, (-2.0, 2.0), (-1.0, 3.0), n)


def test_posterior_only_for_a_two_dimensional_vae(ae2, vae8, images) -> None:
    assert posterior_2d(ae2, images) is None
    assert posterior_2d(vae8, images) is None
    torch.manual_seed(3)
    vae2 = build_model(ModelConfig(kind="vae", latent_dim=2, hidden=(16,))).eval()
    means, sigmas = posterior_2d(vae2, images)
    with torch.no_grad():
        mean, logvar = vae2.encode(to_float_images(images))
    np.testing.assert_allclose(means, mean.numpy(), atol=1e-6)
    np.testing.assert_allclose(sigmas, np.exp(0.5 * logvar.numpy()), rtol=1e-5)
    assert (sigmas > 0).all()


def test_traversals_sweep_one_dimension_over_its_percentiles(vae8) -> None:
    codes = np.random.default_rng(4).normal(size=(500, 8)).astype(np.float32) * np.arange(1, 9, dtype=np.float32)
    rows = traversals(vae8, codes, dims=[6, 0], steps=5)
    assert rows.shape == (2, 5, 28, 28)
    mean = codes.mean(0)
    expected = np.repeat(mean[None], 5, axis=0)
    expected[:, 6] = np.linspace(np.percentile(codes[:, 6], 1), np.percentile(codes[:, 6], 99), 5)
    np.testing.assert_allclose(rows[0], decode_codes(vae8, expected), atol=1e-6)
    base = np.zeros(8, dtype=np.float32)
    from_zero = traversals(vae8, codes, dims=[0], steps=3, base=base)
    middle = base.copy()
    middle[0] = (np.percentile(codes[:, 0], 1) + np.percentile(codes[:, 0], 99)) / 2
    np.testing.assert_allclose(from_zero[0, 1], decode_codes(vae8, middle[None])[0], atol=1e-5)
    with pytest.raises(ValueError, match="dims must lie in 0..7"):
        traversals(vae8, codes, dims=[8])
    with pytest.raises(ValueError, match="steps must be at least 2"):
        traversals(vae8, codes, dims=[0], steps=1)


# What mutation testing (make mutants) found unchecked: boundaries, defaults, dtypes, axes.


def test_class_centroids_average_over_the_images_not_the_dimensions_in_float64() -> None:
    codes = np.array([[0.0, 2.0, 4.0], [2.0, 4.0, 8.0]], dtype=np.float32)  # 2 images of 3 dims: axes differ
    out = class_centroids(codes, np.array([1, 1]))
    assert out.shape == (10, 3) and out.dtype == np.float32  # ten classes by default
    np.testing.assert_allclose(out[1], [1.0, 3.0, 6.0])
    # Summed in float32, 1e8 + 1 - 1e8 is 0; the mean must be taken in float64 and then stored as float32.
    wide = np.array([[1e8], [1.0], [-1e8]], dtype=np.float32)
    np.testing.assert_allclose(class_centroids(wide, np.zeros(3, dtype=int), n_classes=1), [[1 / 3]], rtol=1e-6)


def test_interpolate_gives_float32_codes_ten_steps_by_default_and_accepts_two(ae2) -> None:
    start, end = np.array([-1.0, 0.0]), np.array([3.0, 2.0])  # float64 in: the codes are float32 all the same
    codes, images = interpolate(ae2, start, end)
    assert codes.shape == (10, 2) and codes.dtype == np.float32 and images.shape == (10, 28, 28)
    codes, _ = interpolate(ae2, start.astype(np.float32), end)
    assert codes.dtype == np.float32
    codes, _ = interpolate(ae2, start, end.astype(np.float32))
    assert codes.dtype == np.float32
    codes, _ = interpolate(ae2, start, end, steps=2)
    np.testing.assert_allclose(codes, [start, end])


def test_step_changes_per_step_and_of_uint8_frames_without_wrapping() -> None:
    frames = np.zeros((3, 28, 28), dtype=np.float32)
    frames[1, :14] = 1.0  # half the pixels switch on, then a quarter switch off again
    frames[2, :7] = 1.0
    np.testing.assert_allclose(step_changes(frames), [0.5, 0.25])
    levels = np.stack([np.full((28, 28), v, dtype=np.uint8) for v in (0, 200, 50)])  # 0 - 200 wraps in uint8
    np.testing.assert_allclose(step_changes(levels), [200.0, 150.0])


def test_manifold_grid_accepts_n_from_2_to_40(ae2) -> None:
    view = make_view("identity").fit(np.zeros((4, 2), dtype=np.float32))
    assert manifold_grid(ae2, view, (-1.0, 1.0), (-1.0, 1.0), 2).shape == (4, 28, 28)
    assert manifold_grid(ae2, view, (-1.0, 1.0), (-1.0, 1.0), 40).shape == (1600, 28, 28)


def test_traversals_of_no_dimensions_is_an_empty_float32_stack(vae8) -> None:
    codes = np.random.default_rng(5).normal(size=(50, 8)).astype(np.float32)
    rows = traversals(vae8, codes, dims=[], steps=4)
    assert rows.shape == (0, 4, 28, 28) and rows.dtype == np.float32


def test_traversals_accept_two_steps_and_sweep_from_an_integer_base_without_rounding(vae8) -> None:
    codes = np.random.default_rng(6).normal(size=(300, 8)).astype(np.float32)
    lo, hi = np.percentile(codes[:, 3], 1), np.percentile(codes[:, 3], 99)  # about -2.3 and 2.3
    ends = np.zeros((2, 8), dtype=np.float32)
    ends[:, 3] = [lo, hi]
    rows = traversals(vae8, codes, dims=[3], steps=2, base=np.zeros(8, dtype=np.int64))
    # An integer base must not make the sweep integer: -2.3 and 2.3 truncated to -2 and 2 decode otherwise.
    np.testing.assert_allclose(rows[0], decode_codes(vae8, ends), atol=1e-5)
