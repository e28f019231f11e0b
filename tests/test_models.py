"""The shared model interface, the VAE's sampling and KL, tied weights and the PCA baseline."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from tests.conftest import SEED
from vae.models import (
    AutoEncoder,
    LatentModel,
    ModelConfig,
    PCAModel,
    VariationalAutoEncoder,
    build_model,
    count_parameters,
    fit_pca,
)

VARIANTS = [
    ModelConfig(kind="ae", arch="dense", latent_dim=2, hidden=(32,)),
    ModelConfig(kind="ae", arch="dense", latent_dim=3, hidden=(32, 16), tied=True),
    ModelConfig(kind="ae", arch="dense", latent_dim=4, hidden=(32,), sparsity=0.1, recon_loss="mse"),
    ModelConfig(kind="ae", arch="conv", latent_dim=2, hidden=(32,)),
    ModelConfig(kind="vae", arch="dense", latent_dim=5, hidden=(32,)),
    ModelConfig(kind="vae", arch="conv", latent_dim=2, hidden=(32,), beta=4.0, recon_loss="mse"),
]


@pytest.mark.parametrize("config", VARIANTS, ids=lambda c: c.describe())
def test_interface_shapes_and_ranges(config: ModelConfig, images: torch.Tensor) -> None:
    torch.manual_seed(SEED)
    model = build_model(config)
    assert isinstance(model, LatentModel)
    assert model.config is config
    z = model.embed(images)
    assert z.shape == (8, config.latent_dim)
    mean, logvar = model.encode(images)
    assert torch.equal(mean, z)
    assert (logvar is None) == (config.kind == "ae")
    if logvar is not None:
        assert logvar.shape == (8, config.latent_dim)
    decoded = model.decode(torch.randn(3, config.latent_dim))
    assert decoded.shape == (3, 1, 28, 28)
    assert decoded.min() >= 0 and decoded.max() <= 1
    terms = model.loss(images)
    expected = {"loss", "recon"} | ({"kl"} if config.kind == "vae" else set()) | (
        {"sparsity"} if config.sparsity else set()
    )
    assert set(terms) == expected
    assert all(t.ndim == 0 and torch.isfinite(t) for t in terms.values())


def test_bce_recon_is_per_image_nats(images: torch.Tensor) -> None:
    """recon = mean over images of the per-image BCE summed over the 784 pixels (not the per-pixel mean)."""
    torch.manual_seed(SEED)
    model = build_model(ModelConfig(kind="ae", latent_dim=2, hidden=(16,)))
    x_hat = model.reconstruct(images).clamp(1e-7, 1 - 1e-7)
    per_image = -(images * x_hat.log() + (1 - images) * (1 - x_hat).log()).flatten(1).sum(1)
    assert torch.allclose(model.loss(images)["recon"], per_image.mean(), rtol=1e-4)


def test_mse_recon_and_sparsity_terms(images: torch.Tensor) -> None:
    torch.manual_seed(SEED)
    model = build_model(ModelConfig(kind="ae", latent_dim=3, hidden=(16,), recon_loss="mse", sparsity=0.5))
    terms = model.loss(images)
    z = model.embed(images)
    assert torch.allclose(terms["recon"], ((model.decode(z) - images) ** 2).flatten(1).sum(1).mean(), rtol=1e-5)
    assert torch.allclose(terms["sparsity"], z.abs().sum(1).mean(), rtol=1e-5)
    assert torch.allclose(terms["loss"], terms["recon"] + 0.5 * terms["sparsity"], rtol=1e-6)


def test_kl_matches_torch_distributions() -> None:
    generator = torch.Generator().manual_seed(SEED)
    mean = torch.randn(64, 7, generator=generator) * 3
    logvar = torch.randn(64, 7, generator=generator) * 2
    ours = VariationalAutoEncoder.kl_to_standard_normal(mean, logvar)
    reference = kl_divergence(Normal(mean, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(1)
    assert ours.shape == (64,)
    assert torch.allclose(ours, reference, rtol=1e-5, atol=1e-5)
    assert torch.allclose(VariationalAutoEncoder.kl_to_standard_normal(torch.zeros(2, 3), torch.zeros(2, 3)), torch.zeros(2))


def test_vae_loss_is_recon_plus_beta_kl(images: torch.Tensor) -> None:
    torch.manual_seed(SEED)
    model = build_model(ModelConfig(kind="vae", latent_dim=4, hidden=(16,), beta=2.5))
    terms = model.loss(images)
    assert torch.allclose(terms["loss"], terms["recon"] + 2.5 * terms["kl"])
    mean, logvar = model.encode(images)
    assert torch.allclose(terms["kl"], VariationalAutoEncoder.kl_to_standard_normal(mean, logvar).mean())


def test_reparameterisation_samples_the_posterior_and_passes_gradients() -> None:
    torch.manual_seed(SEED)
    mean = torch.tensor([[2.0, -1.0]]).repeat(20000, 1).requires_grad_()
    logvar = torch.tensor([[0.0, 2 * math.log(0.5)]]).repeat(20000, 1).requires_grad_()
    z = VariationalAutoEncoder.reparameterize(mean, logvar)
    assert torch.allclose(z.mean(0), torch.tensor([2.0, -1.0]), atol=0.03)
    assert torch.allclose(z.std(0), torch.tensor([1.0, 0.5]), atol=0.03)
    z.sum().backward()
    assert torch.allclose(mean.grad, torch.ones_like(mean))  # dz/dmean = 1
    assert logvar.grad.abs().sum() > 0  # dz/dlogvar = eps * sigma / 2, non-zero for almost every eps


def test_gradients_reach_the_encoder_through_the_sampling(images: torch.Tensor) -> None:
    torch.manual_seed(SEED)
    model = build_model(ModelConfig(kind="vae", latent_dim=2, hidden=(16,), beta=0.0))
    # With beta = 0 only the reconstruction term is left; it reaches the encoder solely through z.
    model.loss(images)["loss"].backward()
    encoder_grads = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in encoder_grads)


def test_vae_embed_is_the_deterministic_mean(images: torch.Tensor) -> None:
    torch.manual_seed(SEED)
    model = build_model(ModelConfig(kind="vae", latent_dim=3, hidden=(16,)))
    assert torch.equal(model.embed(images), model.embed(images))
    assert torch.equal(model.embed(images), model.encode(images)[0])


def test_tied_decoder_shares_the_encoder_weights(images: torch.Tensor) -> None:
    torch.manual_seed(SEED)
    untied = build_model(ModelConfig(kind="ae", latent_dim=2, hidden=(32,)))
    tied = build_model(ModelConfig(kind="ae", latent_dim=2, hidden=(32,), tied=True))
    assert isinstance(tied, AutoEncoder)
    # The decoder adds only biases: 784 + 32 instead of a second set of 784x32 + 32x2 weights.
    assert count_parameters(tied) == count_parameters(tied.encoder) + 32 + 784
    assert count_parameters(tied) < count_parameters(untied)
    first = tied.encoder.body[1]
    last_decoder_input = tied.decoder(tied.embed(images))  # runs through the transposed weights
    assert last_decoder_input.shape == (8, 1, 28, 28)
    tied.loss(images)["loss"].backward()
    assert first.weight.grad is not None and first.weight.grad.abs().sum() > 0
    with torch.no_grad():
        first.weight.add_(1.0)  # one change moves the encoder and the decoder alike
    assert not torch.allclose(last_decoder_input, tied.decoder(tied.embed(images)))


def test_pca_matches_scikit_learn() -> None:
    from sklearn.decomposition import PCA

    generator = torch.Generator().manual_seed(SEED)
    basis = torch.randn(5, 784, generator=generator)
    x = (torch.randn(300, 5, generator=generator) @ basis * 0.05 + 0.5).clamp(0, 1)
    model = fit_pca(x.view(-1, 1, 28, 28), latent_dim=3)
    assert isinstance(model, PCAModel)
    reference = PCA(n_components=3, svd_solver="full").fit(x.double().numpy())
    ours = model.components.double().numpy()
    # Each axis is defined up to sign; compare |cosine| with scikit-learn's.
    cosines = np.abs(np.sum(ours * reference.components_, axis=1))
    assert np.all(cosines > 0.999)
    assert np.allclose(model.explained_variance.numpy(), reference.explained_variance_, rtol=1e-3)
    z = model.embed(x.view(-1, 1, 28, 28)).double().numpy()
    assert np.allclose(np.abs(z), np.abs(reference.transform(x.double().numpy())), atol=1e-3)
    # decode(embed(x)) is the orthogonal projection, the best rank-3 reconstruction
    projection = reference.inverse_transform(reference.transform(x.double().numpy()))
    assert np.allclose(model.reconstruct(x.view(-1, 1, 28, 28)).view(300, 784).numpy(), np.clip(projection, 0, 1), atol=1e-3)


def test_pca_is_deterministic_including_signs() -> None:
    x = torch.rand(100, 1, 28, 28, generator=torch.Generator().manual_seed(SEED))
    assert torch.equal(fit_pca(x, 4).components, fit_pca(x.clone(), 4).components)


def test_config_round_trips_through_dict() -> None:
    for config in VARIANTS:
        assert ModelConfig.from_dict(config.to_dict()) == config
    assert ModelConfig.from_dict({"kind": "ae", "hidden": [8, 4]}).hidden == (8, 4)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "gan"}, "kind"),
        ({"arch": "transformer"}, "arch"),
        ({"latent_dim": 1}, "latent_dim"),
        ({"latent_dim": 129}, "latent_dim"),
        ({"latent_dim": 2.5}, "latent_dim"),
        ({"latent_dim": True}, "latent_dim"),
        ({"hidden": ()}, "hidden"),
        ({"hidden": (0,)}, "hidden"),
        ({"hidden": (8, 8, 8, 8, 8)}, "hidden"),
        ({"hidden": ("400",)}, "hidden"),
        ({"recon_loss": "l1"}, "recon_loss"),
        ({"beta": -1.0}, "beta"),
        ({"beta": float("nan")}, "beta"),
        ({"kind": "ae", "beta": 2.0}, "beta"),
        ({"kind": "ae", "sparsity": -0.1}, "sparsity"),
        ({"kind": "vae", "sparsity": 0.1}, "sparsity"),
        ({"kind": "vae", "tied": True}, "tied"),
        ({"kind": "ae", "arch": "conv", "tied": True}, "tied"),
        ({"kind": "pca", "arch": "conv", "hidden": ()}, "arch"),
    ],
)
def test_invalid_config_names_the_field(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelConfig(**fields)


def test_from_dict_refuses_unknown_fields_and_non_objects() -> None:
    with pytest.raises(ValueError, match="unknown config field"):
        ModelConfig.from_dict({"kind": "vae", "latnet_dim": 2})
    with pytest.raises(ValueError, match="JSON object"):
        ModelConfig.from_dict(["vae"])


def test_model_classes_refuse_the_wrong_kind() -> None:
    for cls, kind in itertools.product((AutoEncoder, VariationalAutoEncoder, PCAModel), ("ae", "vae", "pca")):
        config = ModelConfig(kind=kind, hidden=() if kind == "pca" else (8,))
        if build_model(config).__class__ is cls:
            continue
        with pytest.raises(ValueError, match="needs kind"):
            cls(config)


def test_fit_pca_needs_two_images() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        fit_pca(torch.rand(1, 1, 28, 28), 2)
