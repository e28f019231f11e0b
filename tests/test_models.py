"""The shared model interface, the VAE's sampling and KL, tied weights and the PCA baseline."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from tests.conftest import SEED
from vae.models import (
    INVERTIBLE_SLOPE,
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
    ModelConfig(kind="ae", arch="dense", latent_dim=3, hidden=(32, 16), invertible=True, recon_loss="mse"),
    ModelConfig(kind="ae", arch="conv", latent_dim=2, hidden=(32,), linear=True, recon_loss="mse"),
    ModelConfig(kind="ae", arch="dense", latent_dim=2, hidden=(32,), umap_weight=50.0),
    ModelConfig(kind="ae", arch="conv", latent_dim=2, hidden=(32,), umap_weight=1.0, decoupled=True),
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
    terms = model.loss(images, labels, neighbours=images.flip(0))
    expected = (
        {"loss", "recon"}
        | ({"kl"} if config.kind == "vae" else set())
        | ({"sparsity"} if config.sparsity else set())
        | ({"class"} if config.class_weight else set())
        | ({"umap"} if config.umap_weight else set())
    )
    assert set(terms) == expected
    # Without neighbours (the test set is not in the training graph) the UMAP term is left out.
    assert "umap" not in model.loss(images, labels)
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
    assert torch.allclose(
        VariationalAutoEncoder.kl_to_standard_normal(torch.zeros(2, 3), torch.zeros(2, 3)), torch.zeros(2)
    )


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
    assert np.allclose(
        model.reconstruct(x.view(-1, 1, 28, 28)).view(300, 784).numpy(), np.clip(projection, 0, 1), atol=1e-3
    )


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
        ({"kind": "vae", "invertible": True, "recon_loss": "mse"}, "invertible"),
        ({"kind": "ae", "arch": "conv", "invertible": True, "recon_loss": "mse"}, "invertible"),
        ({"kind": "ae", "invertible": True}, "invertible"),  # BCE: its decoder ends in pixels
        ({"kind": "ae", "invertible": True, "tied": True, "recon_loss": "mse"}, "invertible"),
        ({"kind": "ae", "invertible": True, "hidden": (), "linear": True, "recon_loss": "mse"}, "invertible"),
        ({"kind": "ae", "invertible": True, "hidden": (1000,), "recon_loss": "mse"}, "invertible"),  # widens
        ({"kind": "ae", "invertible": True, "hidden": (8,), "latent_dim": 16, "recon_loss": "mse"}, "invertible"),
        ({"kind": "ae", "invertible": 1, "recon_loss": "mse"}, "invertible"),
        ({"kind": "vae", "umap_weight": 1.0}, "umap_weight"),
        ({"kind": "ae", "umap_weight": -1.0}, "umap_weight"),
        ({"kind": "ae", "umap_weight": 1e5}, "umap_weight"),
        ({"kind": "ae", "umap_weight": True}, "umap_weight"),
        ({"kind": "ae", "decoupled": True}, "decoupled"),  # nothing would train the encoder
        ({"kind": "ae", "umap_weight": 1.0, "decoupled": "yes"}, "decoupled"),
        ({"kind": "ae", "arch": "conv", "linear": True}, "linear"),  # a linear conv AE needs MSE
        ({"kind": "vae", "arch": "conv", "linear": True, "recon_loss": "mse"}, "linear"),
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
        {"kind": "ae", "arch": "conv", "hidden": (), "linear": True, "recon_loss": "bce"},  # conv too needs MSE
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
        with pytest.raises(
            ValueError, match=r"^this model's loss has a class-aware term \(class_weight > 0\): it needs the labels$"
        ):
            model.loss(images)
        with pytest.raises(ValueError, match="labels must have shape"):
            model.loss(images, labels[:5])


def test_class_term_pulls_classes_apart_in_training(mnist_subset) -> None:
    from vae.metrics import embed_images, overlap_matrix
    from vae.training.trainer import TrainSettings, train

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


# ---------------------------------------------------------------------------------------------
# The invertible AE, the linear conv AE and the UMAP term.


def invertible(latent_dim: int = 3, hidden: tuple[int, ...] = (64, 16)) -> AutoEncoder:
    torch.manual_seed(SEED)
    return build_model(ModelConfig(kind="ae", latent_dim=latent_dim, hidden=hidden, invertible=True, recon_loss="mse"))


def test_invertible_layers_have_orthonormal_rows_and_invert_to_float_precision(images: torch.Tensor) -> None:
    model = invertible()
    for linear in model.encoder.linears:
        w = linear.weight.double()
        assert torch.allclose(w @ w.t(), torch.eye(len(w), dtype=torch.float64), atol=1e-5)
    # The decoder is a right inverse of the encoder everywhere, not only near the data.
    z = 5 * torch.randn(64, 3, generator=torch.Generator().manual_seed(SEED))
    with torch.no_grad():
        again = model.encoder(model.decoder(z))
    assert again.shape == z.shape
    assert torch.allclose(again, z, atol=1e-4 * float(z.abs().max()))
    # Layer by layer: leaky ReLU inverts exactly, and W^T (h - b) is undone by W . + b.
    h = torch.randn(10, 16, dtype=torch.float64)
    assert torch.allclose(F.leaky_relu(F.leaky_relu(h, INVERTIBLE_SLOPE), 1 / INVERTIBLE_SLOPE), h, rtol=0, atol=1e-15)
    last = model.encoder.linears[-1]
    w, b = last.weight.detach().double(), last.bias.detach().double()
    code = torch.randn(10, 3, dtype=torch.float64)
    assert torch.allclose(((code - b) @ w) @ w.t() + b, code, atol=1e-6)
    # And D(E(x)) is a reconstruction, clamped to [0, 1] for display; the loss is the unclamped squared error.
    raw = model.decoder(model.embed(images))
    assert torch.allclose(model.decode(model.embed(images)), raw.clamp(0, 1))
    assert torch.allclose(model.loss(images)["recon"], (raw - images).pow(2).flatten(1).sum(1).mean(), rtol=1e-5)


def test_the_invertible_decoder_has_no_weights_of_its_own_and_trains_through_the_encoder(images) -> None:
    model = invertible(hidden=(64,))
    assert count_parameters(model) == (784 * 64 + 64) + (64 * 3 + 3)
    assert count_parameters(model.decoder) == 0
    assert not any(name.startswith("decoder") for name in model.state_dict())
    model.loss(images)["loss"].backward()
    code_bias = model.encoder.linears[-1].bias
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters() if p is not code_bias)
    # The code layer's bias cancels in D(E(x)) = W^T (W h + b - b): reconstruction never moves it.
    assert float(code_bias.grad.abs().max()) < 1e-4 * float(model.encoder.linears[0].bias.grad.abs().max())
    assert "invertible" in model.config.describe()


def test_orthonormal_rows_parametrization_keeps_an_orthonormal_weight() -> None:
    from vae.models import OrthonormalRows

    generator = torch.Generator().manual_seed(SEED)
    v = torch.randn(5, 12, generator=generator, dtype=torch.float64)
    w = OrthonormalRows()(v)
    assert torch.allclose(w @ w.t(), torch.eye(5, dtype=torch.float64), atol=1e-12)
    # Same row space as V (a change of basis within it), and a fixed point on matrices that are already orthonormal.
    assert torch.allclose(w.t() @ w @ v.t(), v.t(), atol=1e-10)
    assert torch.allclose(OrthonormalRows()(w), w, atol=1e-12)


def test_materialised_model_has_plain_weights_the_same_outputs_and_exports(images: torch.Tensor) -> None:
    from torch.nn.utils import parametrize

    from vae.models import materialised

    model = invertible()
    plain = materialised(model)
    assert not any(parametrize.is_parametrized(m) for m in plain.modules())
    # The original is left alone and still works. (A deep copy would not do: a copied parametrized layer
    # shares its class with the original, and removing the copy's parametrization deletes the original's.)
    assert any(parametrize.is_parametrized(m) for m in model.modules())
    z = torch.randn(4, 3, generator=torch.Generator().manual_seed(SEED))
    with torch.no_grad():
        assert torch.allclose(plain.decode(z), model.decode(z), atol=1e-6)
        assert torch.allclose(plain.embed(images), model.embed(images), atol=1e-5)

    class Decode(torch.nn.Module):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return self.inner.decode(z)

    materialised(model)  # twice: the first copy took nothing from the original
    assert torch.allclose(model.decode(z), plain.decode(z), atol=1e-6)
    # torch.export traces it into plain ops: no QR, nothing ONNX lacks.
    exported = torch.export.export(Decode(plain), (z,))
    targets = {str(node.target) for node in exported.graph.nodes if node.op == "call_function"}
    assert not any("qr" in t or "householder" in t for t in targets)
    assert torch.allclose(exported.module()(z), model.decode(z), atol=1e-6)
    # Any other model comes back as an equal copy.
    dense = build_model(ModelConfig(kind="ae", latent_dim=2, hidden=(8,)))
    copy_ = materialised(dense)
    assert copy_ is not dense and torch.equal(copy_.embed(images), dense.embed(images))


def test_linear_conv_ae_is_one_affine_map_with_the_conv_layout(images: torch.Tensor) -> None:
    torch.manual_seed(SEED)
    config = ModelConfig(kind="ae", arch="conv", latent_dim=2, hidden=(16,), linear=True, recon_loss="mse")
    model = build_model(config)
    relu = build_model(dataclasses.replace(config, linear=False, recon_loss="bce"))
    assert list(model.state_dict()) == list(relu.state_dict())  # same names: only the activations differ
    x, y = images[:2], images[2:4]
    with torch.no_grad():  # affine: E(a x + (1 - a) y) = a E(x) + (1 - a) E(y)
        mixed = model.embed(0.3 * x + 0.7 * y)
        assert torch.allclose(mixed, 0.3 * model.embed(x) + 0.7 * model.embed(y), atol=1e-5)
        raw = model.decoder(model.embed(images))
    assert torch.allclose(model.loss(images)["recon"], (raw - images).pow(2).flatten(1).sum(1).mean(), rtol=1e-5)
    assert "linear" in config.describe() and "conv" in config.describe()


def _umap_cross_entropy_by_hand(heads, tails, negatives, a, b, eps=1e-4) -> float:
    """Parametric UMAP's edge cross-entropy written out pair by pair."""
    terms = []
    for i in range(len(heads)):
        d = math.dist(heads[i], tails[i])
        q = 1 / (1 + a * d ** (2 * b))
        terms.append(-math.log(min(max(q, eps), 1.0)))
    for i in range(len(heads)):
        for j in negatives[i]:
            d = math.dist(heads[i], tails[j])
            q = 1 / (1 + a * d ** (2 * b))
            terms.append(-math.log(min(max(1 - q, eps), 1.0)))
    return sum(terms) / len(terms)


def test_umap_cross_entropy_matches_a_hand_computed_case() -> None:
    from vae.models import UMAP_A, UMAP_B, umap_cross_entropy

    heads = torch.tensor([[0.0, 0.0], [1.0, 2.0], [-3.0, 0.5]], dtype=torch.float64)
    tails = torch.tensor([[0.1, -0.2], [1.5, 2.0], [4.0, 4.0]], dtype=torch.float64)
    negatives = torch.tensor([[2, 1], [0, 2], [1, 1]])
    ours = float(umap_cross_entropy(heads, tails, negatives))
    assert ours == pytest.approx(
        _umap_cross_entropy_by_hand(heads.tolist(), tails.tolist(), negatives.tolist(), UMAP_A, UMAP_B), rel=1e-9
    )
    # Pulling each edge together and pushing the negatives apart lowers it.
    assert float(umap_cross_entropy(heads, heads + 0.01, negatives)) < ours
    # A negative pair on top of each other hits the 1e-4 floor: log(1e-4), not infinity.
    same = torch.zeros(2, 2, dtype=torch.float64)
    floored = float(umap_cross_entropy(same, same, torch.tensor([[1], [0]])))
    assert floored == pytest.approx(-math.log(1e-4) / 2, rel=1e-6)
    # An edge pulled far apart hits the floor too (q ~ 1e-7 there): its term is -log(1e-4), as by hand.
    far = tails + 1e4
    assert float(umap_cross_entropy(heads, far, negatives)) == pytest.approx(
        _umap_cross_entropy_by_hand(heads.tolist(), far.tolist(), negatives.tolist(), UMAP_A, UMAP_B), rel=1e-9
    )
    with pytest.raises(ValueError, match="same B edges"):
        umap_cross_entropy(heads, tails[:2], negatives)


def test_umap_cross_entropy_of_bfloat16_codes_is_computed_in_float32() -> None:
    """Codes 0.01 apart under autocast: in bfloat16, q = 0.9996 rounds to 1, so 1 - q hits the floor and the
    repulsion has no gradient; the term is computed in float32, so it keeps the float32 value and gradient."""
    from vae.models import umap_cross_entropy

    heads = (torch.arange(8, dtype=torch.float32) * 0.01).view(4, 2)
    tails = heads + 0.01
    negatives = torch.tensor([[1, 2], [2, 3], [3, 0], [0, 1]])
    exact_heads = heads.clone().requires_grad_()
    exact = umap_cross_entropy(exact_heads, tails, negatives)
    exact.backward()
    half_heads = heads.to(torch.bfloat16).float().requires_grad_()  # the codes as bfloat16 holds them
    half = umap_cross_entropy(half_heads.to(torch.bfloat16), tails.to(torch.bfloat16), negatives)
    half.backward()
    assert half.dtype == torch.float32
    reference = umap_cross_entropy(half_heads.detach(), tails.to(torch.bfloat16).float(), negatives)
    assert float(half.detach()) == pytest.approx(float(reference), rel=1e-6)
    assert float(half.detach()) == pytest.approx(float(exact.detach()), rel=0.1)
    assert half_heads.grad.abs().sum() > 0.5 * exact_heads.grad.abs().sum()


def test_umap_constants_are_umap_learns_fit_and_negatives_use_every_tail_rate_times() -> None:
    from umap.umap_ import find_ab_params

    from vae.models import UMAP_A, UMAP_B, umap_negatives

    a, b = find_ab_params(1.0, 0.1)
    assert (UMAP_A, UMAP_B) == pytest.approx((a, b), rel=1e-6)
    negatives = umap_negatives(7, rate=3, generator=torch.Generator().manual_seed(SEED))
    assert negatives.shape == (7, 3)
    assert torch.equal(torch.bincount(negatives.flatten(), minlength=7), torch.full((7,), 3))
    # The draw is the generator's alone: the same seed gives the same negatives whatever the global RNG did.
    torch.manual_seed(SEED + 1)
    torch.rand(5)
    assert torch.equal(umap_negatives(7, rate=3, generator=torch.Generator().manual_seed(SEED)), negatives)


def test_umap_term_is_weighted_and_the_decoupled_decoder_sends_no_gradient_to_the_encoder(images) -> None:
    neighbours = images.flip(0)
    for decoupled in (False, True):
        torch.manual_seed(SEED)
        model = build_model(ModelConfig(kind="ae", latent_dim=2, hidden=(16,), umap_weight=3.0, decoupled=decoupled))
        torch.manual_seed(SEED)
        terms = model.loss(images, neighbours=neighbours)
        assert torch.allclose(terms["loss"], terms["recon"] + 3.0 * terms["umap"])
        model.zero_grad()
        terms["recon"].backward(retain_graph=True)
        encoder_grad = [p.grad for p in model.encoder.parameters()]
        decoder_grad = [p.grad for p in model.decoder.parameters()]
        assert all(g is not None and g.abs().sum() > 0 for g in decoder_grad)
        if decoupled:  # reconstruction never reaches the encoder: only the graph term shapes the map
            assert all(g is None or g.abs().sum() == 0 for g in encoder_grad)
        else:
            assert all(g is not None and g.abs().sum() > 0 for g in encoder_grad)
        model.zero_grad()
        terms["umap"].backward()
        # Distances ignore a shift of every code, so the code layer's bias is the one the graph term leaves alone.
        shift = model.encoder.head.bias
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters() if p is not shift)
        assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.decoder.parameters())
