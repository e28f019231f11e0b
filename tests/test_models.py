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
    ModelConfig(kind="ae", arch="dense", latent_dim=3, hidden=(), linear=True, recon_loss="mse"),
    ModelConfig(kind="ae", arch="dense", latent_dim=2, hidden=(32,), class_weight=5.0),
    ModelConfig(kind="vae", arch="conv", latent_dim=2, hidden=(32,), class_weight=5.0),
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
    labels = torch.arange(len(images)) % 3
    terms = model.loss(images, labels)
    expected = {"loss", "recon"} | ({"kl"} if config.kind == "vae" else set()) | (
        {"sparsity"} if config.sparsity else set()
    ) | ({"class"} if config.class_weight else set())
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


# ---------------------------------------------------------------------------------------------
# The linear AE and the class-aware term.


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "ae", "hidden": (32,), "linear": True, "recon_loss": "mse"},  # hidden layers
        {"kind": "ae", "hidden": (), "linear": True, "recon_loss": "bce"},  # needs MSE
        {"kind": "vae", "hidden": (), "linear": True, "recon_loss": "mse"},  # AE only
        {"kind": "ae", "arch": "conv", "hidden": (), "linear": True, "recon_loss": "mse"},
        {"kind": "ae", "hidden": ()},  # no layers without linear
        {"kind": "pca", "hidden": (), "class_weight": 1.0},
        {"kind": "ae", "class_weight": -1.0},
        {"kind": "vae", "class_weight": 1e6},
        {"kind": "ae", "class_weight": True},
    ],
)
def test_linear_and_class_weight_settings_are_validated(fields: dict) -> None:
    with pytest.raises(ValueError):
        ModelConfig(**fields)


def test_linear_ae_is_affine_and_its_loss_is_the_squared_error(images: torch.Tensor) -> None:
    torch.manual_seed(SEED)
    model = build_model(ModelConfig(kind="ae", latent_dim=3, hidden=(), linear=True, recon_loss="mse"))
    assert count_parameters(model) == 784 * 3 + 3 + 3 * 784 + 784
    z = model.embed(images)
    w_enc, b_enc = model.encoder.head.weight, model.encoder.head.bias
    assert torch.allclose(z, images.flatten(1) @ w_enc.t() + b_enc, atol=1e-5)
    raw = z @ model.decoder.head.weight.t() + model.decoder.head.bias  # [8, 784], no squashing
    expected = ((raw - images.flatten(1)) ** 2).sum(1).mean()
    assert torch.allclose(model.loss(images)["recon"], expected, rtol=1e-5)
    # decode clamps for display only, as PCA's does.
    assert torch.allclose(model.decode(z).flatten(1), raw.clamp(0, 1), atol=1e-6)
    assert "linear" in model.config.describe() and "784-3" in model.config.describe()


def _soft_nn_loss_by_hand(z: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Frosst et al. (2019) eq. (1), written out with loops, distances scaled by their mean."""
    n = len(z)
    d = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    d = d / d[~np.eye(n, dtype=bool)].mean()
    terms = []
    for i in range(n):
        same = sum(math.exp(-d[i, j] / temperature) for j in range(n) if j != i and labels[j] == labels[i])
        everyone = sum(math.exp(-d[i, k] / temperature) for k in range(n) if k != i)
        if any(labels[j] == labels[i] for j in range(n) if j != i):
            terms.append(-math.log(same / everyone))
    return float(np.mean(terms))


def test_soft_nearest_neighbour_loss_matches_the_paper_and_ignores_scale() -> None:
    from vae.models import soft_nearest_neighbour_loss

    generator = torch.Generator().manual_seed(SEED)
    z = torch.randn(40, 3, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 4, (40,), generator=generator)
    loss = soft_nearest_neighbour_loss(z, labels, temperature=0.5)
    assert float(loss) == pytest.approx(_soft_nn_loss_by_hand(z.numpy(), labels.numpy(), 0.5), rel=1e-9)
    # Random labels on one cloud: about log(C) or more. Scaling or shifting every code changes nothing.
    assert float(loss) > 0.8 * math.log(4)
    assert float(soft_nearest_neighbour_loss(0.01 * z + 3.0, labels, 0.5)) == pytest.approx(float(loss), rel=1e-9)
    # Each class a tight cluster far from the others: close to 0.
    centres = torch.tensor([[0.0, 0.0, 0.0], [9.0, 0.0, 0.0], [0.0, 9.0, 0.0], [0.0, 0.0, 9.0]], dtype=torch.float64)
    clustered = centres[labels] + 0.05 * z
    assert float(soft_nearest_neighbour_loss(clustered, labels)) < 1e-3
    # A point with no classmate in the batch has no term (it would be log 0).
    lonely = labels.clone()
    lonely[0] = 9
    assert torch.isfinite(soft_nearest_neighbour_loss(z, lonely))


def test_class_term_is_weighted_into_the_loss_and_needs_labels(images: torch.Tensor) -> None:
    from vae.models import soft_nearest_neighbour_loss

    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    for kind in ("ae", "vae"):
        torch.manual_seed(SEED)
        model = build_model(ModelConfig(kind=kind, latent_dim=2, hidden=(16,), class_weight=7.0))
        torch.manual_seed(SEED)
        terms = model.loss(images, labels)
        others = terms["recon"] + terms.get("kl", 0.0)
        assert torch.allclose(terms["loss"], others + 7.0 * terms["class"])
        # Measured on the plotted code (the VAE's posterior mean), not on a noisy sample.
        assert torch.allclose(terms["class"], soft_nearest_neighbour_loss(model.embed(images), labels))
        with pytest.raises(ValueError, match="needs the labels"):
            model.loss(images)
        with pytest.raises(ValueError, match="labels must have shape"):
            model.loss(images, labels[:5])


def test_class_term_pulls_classes_apart_in_training(mnist_subset) -> None:
    from vae.metrics import embed_images, overlap_matrix
    from vae.train import TrainSettings, train

    train_images, train_labels, test_images, test_labels = mnist_subset
    overlap = {}
    for weight in (0.0, 100.0):
        config = ModelConfig(kind="ae", latent_dim=2, hidden=(64,), class_weight=weight)
        settings = TrainSettings(epochs=3, batch_size=64, seed=SEED)
        result = train(config, train_images, test_images, settings, train_labels=train_labels, test_labels=test_labels)
        purity = np.diag(overlap_matrix(embed_images(result.model, test_images), test_labels)).mean()
        overlap[weight] = 1 - purity
        if weight:
            assert result.history[-1].test["class"] >= 0  # the test set's labels were used too
    assert overlap[100.0] < overlap[0.0] - 0.05
