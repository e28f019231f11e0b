"""vae.metrics' look inside the latent space: which dimensions a model uses, and what its samples are."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from tests.conftest import SEED
from vae.metrics import (
    ACTIVE_VARIANCE,
    active_units,
    data_box,
    embed_images,
    holes_share,
    judged,
    latent_dimensions,
    reconstruction_quality,
    sample_codes,
    sample_quality,
)
from vae.models import ModelConfig, build_model, to_float_images


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randint(0, 256, (300, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(SEED))


def vae_with_a_dead_dimension(dead: int = 1) -> nn.Module:
    """A 4-D VAE whose dimension ``dead`` has mean 0 and log-variance 0 for every image: KL 0, variance 0."""
    torch.manual_seed(SEED)
    model = build_model(ModelConfig(kind="vae", latent_dim=4, hidden=(32,))).eval()
    head = [m for m in model.encoder.modules() if isinstance(m, nn.Linear)][-1]  # [2D] outputs: means, logvars
    with torch.no_grad():
        for row in (dead, 4 + dead):
            head.weight[row] = 0
            head.bias[row] = 0
        head.weight[:4] *= 20  # the live means vary well past Burda's 0.01
    return model


class ByBrightness:
    """A stand-in judge for the tests: class = mean brightness in tenths, probability 0.95 for it."""

    def predict_proba(self, images: torch.Tensor) -> torch.Tensor:
        brightness = images.flatten(1).mean(1)
        classes = (brightness * 10).long().clamp(0, 9)
        probabilities = torch.full((len(images), 10), 0.05 / 9)
        probabilities[torch.arange(len(images)), classes] = 0.95
        return probabilities


def test_per_dimension_kls_sum_to_the_models_kl_and_a_dead_dimension_is_inactive(images) -> None:
    model = vae_with_a_dead_dimension(dead=1)
    table = latent_dimensions(model, images, batch_size=128)
    assert list(table.columns) == ["dim", "kl", "variance", "active"]
    assert list(table["dim"]) == [0, 1, 2, 3]
    with torch.no_grad():
        expected = float(model.loss(to_float_images(images))["kl"])
    assert table["kl"].sum() == pytest.approx(expected, rel=1e-5)
    assert table.loc[1, "kl"] == pytest.approx(0.0, abs=1e-9) and table.loc[1, "variance"] == pytest.approx(0.0)
    assert list(table["active"]) == [True, False, True, True]
    assert (table["active"] == (table["variance"] > ACTIVE_VARIANCE)).all()


def test_active_units_count_what_latent_dimensions_marks_active(images) -> None:
    for dead in (0, 3):
        model = vae_with_a_dead_dimension(dead)
        means = embed_images(model, images)  # a VAE's embedding: its posterior means [N, 4]
        assert active_units(means) == int(latent_dimensions(model, images)["active"].sum()) == 3
    codes = np.zeros((50, 3))
    codes[:, 0] = np.linspace(-1, 1, 50)  # variance 0.35: active
    codes[:, 1] = np.linspace(-0.1, 0.1, 50)  # variance 0.0035: below Burda's 0.01
    assert active_units(codes) == 1
    with pytest.raises(ValueError, match="codes must be a 2-D array"):
        active_units(np.zeros(5))
    with pytest.raises(ValueError, match="codes contains NaN"):
        active_units(np.full((4, 2), np.nan))


def test_an_autoencoder_has_variances_but_no_kl(images) -> None:
    torch.manual_seed(SEED)
    model = build_model(ModelConfig(kind="ae", latent_dim=3, hidden=(16,))).eval()
    table = latent_dimensions(model, images)
    assert table["kl"].isna().all()
    codes = embed_images(model, images).double().numpy()
    np.testing.assert_allclose(table["variance"], codes.var(0), rtol=1e-6)


def test_a_vae_samples_its_prior_and_an_ae_a_gaussian_fitted_to_its_codes() -> None:
    vae = build_model(ModelConfig(kind="vae", latent_dim=3, hidden=(8,)))
    prior = sample_codes(vae, 20_000, seed=1).double()
    np.testing.assert_allclose(prior.mean(0), 0, atol=0.03)
    np.testing.assert_allclose(torch.cov(prior.T), np.eye(3), atol=0.04)
    torch.testing.assert_close(sample_codes(vae, 50, seed=1), sample_codes(vae, 50, seed=1))  # seeded

    ae = build_model(ModelConfig(kind="ae", latent_dim=2, hidden=(8,)))
    rng = np.random.default_rng(0)
    fit = rng.multivariate_normal([3.0, -1.0], [[2.0, 0.8], [0.8, 0.5]], size=5000)
    drawn = sample_codes(ae, 20_000, seed=2, fit_codes=fit).double()
    np.testing.assert_allclose(drawn.mean(0), [3.0, -1.0], atol=0.05)
    np.testing.assert_allclose(torch.cov(drawn.T), np.cov(fit.T), atol=0.06)
    with pytest.raises(ValueError, match="has no prior: pass fit_codes"):
        sample_codes(ae, 10)
    with pytest.raises(ValueError, match=r"fit_codes must be \[M, 2\]"):
        sample_codes(ae, 10, fit_codes=fit[:, :1])
    with pytest.raises(ValueError, match="n must be at least 1"):
        sample_codes(vae, 0)


def test_the_verdict_counts_confidence_classes_and_their_entropy() -> None:
    class Fixed:
        def predict_proba(self, images):
            # Two confident 0s, one confident 1, one unsure 1.
            return torch.tensor(
                [[0.95, 0.05] + [0] * 8, [0.97, 0.03] + [0] * 8, [0.05, 0.95] + [0] * 8, [0.4, 0.6] + [0] * 8]
            )

    verdict = judged(Fixed(), torch.zeros(4, 1, 28, 28))
    assert verdict.n == 4 and verdict.confident_share == pytest.approx(0.75)
    np.testing.assert_allclose(verdict.class_shares, [0.5, 0.5] + [0] * 8)
    assert verdict.entropy == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="no images to judge"):
        judged(ByBrightness(), torch.zeros(0, 1, 28, 28))


def test_samples_and_reconstructions_are_judged_as_decoded(images) -> None:
    torch.manual_seed(SEED)
    vae = build_model(ModelConfig(kind="vae", latent_dim=2, hidden=(8,))).eval()
    verdict = sample_quality(vae, ByBrightness(), n=500, seed=4, batch_size=128)
    with torch.no_grad():
        decoded = vae.decode(sample_codes(vae, 500, seed=4))
    assert verdict.n == 500 and verdict.confident_share == 1.0
    np.testing.assert_allclose(verdict.class_shares, judged(ByBrightness(), decoded).class_shares)
    recon = reconstruction_quality(vae, ByBrightness(), images)
    with torch.no_grad():
        expected = judged(ByBrightness(), vae.reconstruct(to_float_images(images)))
    np.testing.assert_allclose(recon.class_shares, expected.class_shares)
    assert recon.n == len(images)


def test_the_holes_share_is_zero_for_a_constant_decoder_and_near_one_for_real_digits() -> None:
    from tests.conftest import REPO
    from vae import judge as judges
    from vae.data import load_mnist

    digits, _ = load_mnist("test", REPO / "data")
    judge = judges.load("mnist")
    plane = np.random.default_rng(SEED).normal(size=(500, 2))
    grey = holes_share(lambda z: np.full((len(z), 28, 28), 0.3, np.float32), lambda p: p, plane, judge, grid=20)
    assert grey.share == 0.0 and grey.grid == 20 and not grey.approximate
    real = holes_share(
        lambda z: digits[: len(z)].numpy().astype(np.float32) / 255,
        lambda p: p,
        plane,
        judge,
        grid=20,
        approximate=True,
    )
    assert real.share > 0.95 and real.approximate  # the judge is sure of nearly every real test digit
    assert real.box == data_box(plane)


def test_holes_share_decodes_the_centres_of_the_data_box_through_the_inverse() -> None:
    plane = np.array([[0.0, 0.0], [4.0, 2.0]] * 50)
    seen = {}

    def decode(codes):
        seen["codes"] = codes
        return np.where(codes[:, :1, None] > 2, 1.0, 0.0) * np.ones((len(codes), 28, 28), np.float32)

    share = holes_share(decode, lambda p: np.concatenate([p, -p], axis=1), plane, ByBrightness(), grid=4)
    x0, x1, y0, y1 = data_box(plane)
    assert (x0, x1, y0, y1) == pytest.approx((0.0, 4.0, 0.0, 2.0), abs=0.05)
    codes = seen["codes"]  # [16, 4]: the view's inverse of each cell's centre, row by row
    assert codes.shape == (16, 4)
    np.testing.assert_allclose(codes[:4, 0], x0 + (np.arange(4) + 0.5) * (x1 - x0) / 4, rtol=1e-6)
    np.testing.assert_allclose(codes[:, 2:], -codes[:, :2])
    assert share.share == 1.0  # ByBrightness is confident of every image, dark or bright
    with pytest.raises(ValueError, match="grid must be at least 2, got 1"):
        holes_share(decode, lambda p: p, plane, ByBrightness(), grid=1)
    with pytest.raises(ValueError, match=r"decode must give \[16, 28, 28\] images, got \(16, 784\)"):
        holes_share(lambda z: np.zeros((len(z), 784)), lambda p: p, plane, ByBrightness(), grid=4)
    with pytest.raises(ValueError, match=r"embedding must be \[N, 2\] with N > 0"):
        data_box(np.zeros((0, 2)))


def test_the_data_box_leaves_out_at_most_two_percent_of_the_points() -> None:
    points = np.random.default_rng(SEED).standard_t(2, size=(20_000, 2))  # heavy tails: the box must trim them
    x0, x1, y0, y1 = data_box(points)
    inside = (points[:, 0] >= x0) & (points[:, 0] <= x1) & (points[:, 1] >= y0) & (points[:, 1] <= y1)
    assert 0.98 <= inside.mean() < 0.995
