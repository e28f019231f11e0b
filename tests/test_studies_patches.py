"""Patch PCA and the comparison of conv filters with it, on cases whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.conftest import SEED
from vae.studies.patches import filter_directions, filter_energy, filter_subspace_angles, image_patches, patch_pca


def ramp_images(n: int = 200) -> torch.Tensor:
    """Images I(r, c) = a + b * c with random a, b: every patch is a flat level plus a horizontal ramp."""
    generator = torch.Generator().manual_seed(SEED)
    a = torch.rand(n, 1, 1, generator=generator, dtype=torch.float64)
    b = torch.randn(n, 1, 1, generator=generator, dtype=torch.float64) * 0.01
    columns = torch.arange(28, dtype=torch.float64).view(1, 1, 28)
    return (a + b * columns).expand(n, 28, 28).unsqueeze(1)


def test_patches_are_what_a_conv_layer_multiplies_its_filters_with() -> None:
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(SEED), dtype=torch.float64)
    weight = torch.randn(5, 1, 4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    patches = image_patches(x, 4, stride=2, padding=1)  # [3 * 196, 16]
    assert patches.shape == (3 * 14 * 14, 16)
    conv = F.conv2d(x, weight, stride=2, padding=1)  # [3, 5, 14, 14]
    expected = conv.permute(0, 2, 3, 1).reshape(-1, 5)
    assert torch.allclose(patches @ weight.view(5, -1).t(), expected, atol=1e-12)


def test_patch_pca_matches_scikit_learn_on_the_extracted_patches(mnist_subset) -> None:
    from sklearn.decomposition import PCA

    images = mnist_subset[0][:300]
    ours = patch_pca(images, 4, stride=2, padding=1, chunk=70)  # several chunks
    patches = image_patches(images, 4, stride=2, padding=1).numpy()
    reference = PCA(n_components=16, svd_solver="full").fit(patches)
    assert ours.n_patches == len(patches) == 300 * 196
    cosines = np.abs(np.sum(ours.components * reference.components_, axis=1))
    assert np.all(cosines > 1 - 1e-8)  # same axes, up to sign
    assert np.allclose(ours.explained_variance, reference.explained_variance_, rtol=1e-8)
    assert np.allclose(ours.mean, reference.mean_)
    assert np.allclose(ours.components @ ours.components.T, np.eye(16), atol=1e-10)


def test_patch_pca_of_ramps_finds_a_flat_level_and_a_horizontal_ramp() -> None:
    pca = patch_pca(ramp_images(), 3)
    variance = pca.explained_variance / pca.explained_variance.sum()
    assert variance[:2].sum() > 1 - 1e-9  # two directions carry everything
    assert pca.explained_variance[2:].max() < 1e-12
    flat = np.ones(9) / 3
    ramp = np.tile(np.arange(3) - 1.0, 3)
    ramp /= np.linalg.norm(ramp)
    from scipy.linalg import subspace_angles

    assert np.degrees(subspace_angles(pca.components[:2].T, np.stack([flat, ramp], 1))).max() < 1e-4
    with pytest.raises(ValueError, match="kernel"):
        patch_pca(ramp_images(3), 40)


def test_a_bank_of_principal_components_is_a_local_pca_and_random_filters_are_not() -> None:
    generator = np.random.default_rng(SEED)
    basis = np.linalg.qr(generator.normal(size=(16, 16)))[0].T  # rows: an orthonormal basis
    variance = 2.0 ** -np.arange(16)
    pca = type("FakePCA", (), {"components": basis, "explained_variance": variance})()
    # 12 filters mixing the top 3 components (another basis of their span), with more weight on the first.
    mixing = generator.normal(size=(12, 3)) * np.array([3.0, 2.0, 1.0])
    bank = mixing @ basis[:3]
    angles = filter_subspace_angles(bank, pca)
    assert len(angles) == 16 and [len(a) for a in angles] == list(range(1, 17))
    assert max(angles[2]) < 1e-6  # its 3 strongest directions span the top-3 components exactly
    energy = filter_energy(bank, pca)
    assert energy.sum() == pytest.approx(1.0) and energy[:3].sum() == pytest.approx(1.0)
    # Random filters: no preference (about 1/16 each), far from the top components' span.
    noise = generator.normal(size=(4000, 16))
    assert np.allclose(filter_energy(noise, pca), 1 / 16, atol=0.01)
    random_angles = [max(filter_subspace_angles(generator.normal(size=(32, 16)), pca)[2]) for _ in range(20)]
    assert np.median(random_angles) > 45
    # Shapes the bank may come in: [C, 1, k, k] from a conv layer is the same bank.
    as_conv = torch.from_numpy(bank).view(12, 1, 4, 4)
    assert np.allclose(filter_energy(as_conv, pca), energy)
    directions, shares = filter_directions(bank)
    assert directions.shape == (16, 16) and shares[:3].sum() == pytest.approx(1.0) and np.all(np.diff(shares) <= 1e-12)
