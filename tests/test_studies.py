"""The studies behind the brief's open questions: their settings, runs, answers, files and command line."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from tests.conftest import SEED, TINY_STUDY
from vae.metrics import reconstruction_mse
from vae.models import fit_pca
from vae.studies import cli, runner
from vae.studies.pca_vs_ae import principal_angles_degrees
from vae.studies.registry import STUDIES, get_study, load_result, run_study, save_result, variants
from vae.studies.runner import ExperimentFileError, StudySettings, StudyStopped
from vae.training.trainer import bfloat16_supported


@pytest.mark.parametrize(
    "fields",
    [
        {"dims": (4, 8)},  # no 2-D maps
        {"train_limit": 10},  # fewer images than one batch
        {"map_points": 10},
        {"class_weights": (10.0,)},  # no baseline
        {"betas": ()},
        {"epochs": 0},
        {"betas": (-1.0,)},
        {"graph_epochs": 0},
        {"graph_batch_size": 1.5},
        {"graph_train_images": 10},
        {"umap_weight": -1.0},  # checked by ModelConfig when the decoupled study's variants are built
        {"graph_hidden": (0,)},
    ],
)
def test_invalid_study_settings_are_refused(fields: dict) -> None:
    with pytest.raises(ValueError):
        s = StudySettings(**fields)
        for study in STUDIES:  # model settings are checked when the variants are built
            variants(study, s)


def test_each_study_lists_its_variants_with_unique_keys() -> None:
    settings = StudySettings()
    counts = {study: len(variants(study, settings)) for study in STUDIES}
    assert counts == {
        "pca_vs_ae": 5 * 5,
        "conv": 4,
        "beta": 6,
        "class_aware": 6,
        "invertible": 4 * 5,
        "conv_filters": 2,
        "decoupled": 7,
    }
    for study in STUDIES:
        keys = [v.key for v in variants(study, settings)]
        assert len(keys) == len(set(keys))
    assert {v.config.beta for v in variants("beta", settings)} == set(settings.betas)
    assert {v.config.arch for v in variants("conv", settings)} == {"dense", "conv"}
    with pytest.raises(ValueError, match="study must be one of"):
        variants("gan", settings)


def test_the_registry_names_each_study_once_with_its_own_module() -> None:
    import importlib

    from vae.studies.runner import Study

    assert list(STUDIES) == ["pca_vs_ae", "conv", "beta", "class_aware", "invertible", "conv_filters", "decoupled"]
    for name, study in STUDIES.items():
        assert isinstance(study, Study) and study.name == name and study.question.endswith("?")
        module = importlib.import_module(type(study).__module__)
        assert module.__name__ == f"vae.studies.{name}" and module.__doc__.startswith(f"``{name}``")
        assert set(study.store_names) <= {v.key for v in study.variants(StudySettings())}
    assert get_study("beta") is STUDIES["beta"]
    with pytest.raises(ValueError, match="study must be one of"):
        get_study("gan")


def test_the_saved_grid_puts_the_largest_z2_in_its_first_row() -> None:
    """The order the shipped ``grid/<key>`` images hold (top row first, as a plot shows it)."""
    from vae.models import ModelConfig, build_model

    torch.manual_seed(SEED)
    model = build_model(ModelConfig(kind="ae", latent_dim=2, hidden=(8,))).eval()
    points = np.random.default_rng(SEED).normal(size=(500, 2)).astype(np.float32)
    images, (x0, x1, y0, y1) = runner.map_grid(model, points, size=3)
    corners = torch.tensor([[x0, y1], [x1, y1], [x0, y0]], dtype=torch.float32)  # top left, top right, bottom left
    expected = runner._to_uint8(model.decode(corners).detach())
    np.testing.assert_array_equal(images[[0, 2, 6]], expected)


def test_the_grid_image_shows_the_largest_z2_on_top_as_its_map_does() -> None:
    # Tile k of a 3 x 3 grid is filled with the value k: row 0 (the largest z2) must come out on top.
    tiles = np.repeat(np.arange(9, dtype=np.uint8)[:, None, None], 28 * 28, axis=1).reshape(9, 28, 28)
    image = runner.map_grid_image(tiles, size=3)
    assert image.shape == (3 * 28 + 2, 3 * 28 + 2)
    assert image[0, 0] == 0 and image[0, -1] == 2  # top row: tiles 0..2, left to right
    assert image[-1, 0] == 6 and image[-1, -1] == 8  # bottom row: tiles 6..8
    with pytest.raises(ValueError, match="need 3 \\* 3 images, got 8"):
        runner.map_grid_image(tiles[:8], size=3)


def test_principal_angles_see_subspaces_not_bases() -> None:
    generator = np.random.default_rng(SEED)
    basis = np.linalg.qr(generator.normal(size=(50, 3)))[0]  # [50, 3] orthonormal
    mixed = basis @ generator.normal(size=(3, 3))  # same span, another (non-orthogonal) basis
    assert np.allclose(principal_angles_degrees(basis, mixed), 0, atol=1e-5)
    orthogonal = np.linalg.qr(np.hstack([basis, generator.normal(size=(50, 3))]))[0][:, 3:]
    assert np.allclose(principal_angles_degrees(basis, orthogonal), 90, atol=1e-5)


@pytest.fixture(scope="module")
def pca_study(mnist_subset):
    return run_study("pca_vs_ae", TINY_STUDY, data=mnist_subset)


def test_pca_vs_ae_measures_every_model_and_matches_a_direct_pca(pca_study, mnist_subset) -> None:
    train_images, _, test_images, _ = mnist_subset
    assert [row["key"] for row in pca_study.rows] == [v.key for v in variants("pca_vs_ae", TINY_STUDY)]
    for d in TINY_STUDY.dims:
        direct = reconstruction_mse(fit_pca(train_images, d), test_images)
        assert pca_study.row(f"pca-{d}")["test_mse_per_pixel"] == pytest.approx(direct, rel=1e-6)
    assert pca_study.row("pca-4")["test_mse_per_pixel"] < pca_study.row("pca-2")["test_mse_per_pixel"]
    # Maps only for the 2-D models, one point per kept test image, with its manifold grid.
    assert sorted(pca_study.maps) == sorted(f"{f}-2" for f in ("pca", "linear", "dense", "tied", "vae"))
    assert all(m.shape == (TINY_STUDY.map_points, 2) for m in pca_study.maps.values())
    assert pca_study.labels.shape == (TINY_STUDY.map_points,)
    assert pca_study.images["grid/vae-2"].shape == (runner.GRID**2, 28, 28)
    assert pca_study.images["recon/dense-4"].shape == pca_study.images["originals"].shape == (10, 28, 28)
    # Tied weights: about half the dense AE's parameters.
    assert pca_study.row("tied-2")["parameters"] < 0.55 * pca_study.row("dense-2")["parameters"]
    angles = pca_study.extras["angles"]
    assert sorted(angles) == ["2", "4"] and len(angles["4"]["decoder"]) == 4
    assert all(0 <= a <= 90 for a in angles["4"]["encoder"])


def test_results_survive_a_save_and_load(pca_study, tmp_path) -> None:
    save_result(pca_study, tmp_path)
    loaded = load_result(tmp_path, "pca_vs_ae")
    assert loaded.rows == json.loads(json.dumps(pca_study.rows))
    assert loaded.settings == pca_study.settings
    assert np.array_equal(loaded.labels, pca_study.labels)
    assert sorted(loaded.maps) == sorted(pca_study.maps)
    assert all(np.array_equal(loaded.maps[k], pca_study.maps[k]) for k in pca_study.maps)
    assert all(np.array_equal(loaded.images[k], pca_study.images[k]) for k in pca_study.images)
    assert loaded.extras == json.loads(json.dumps(pca_study.extras))


def test_damaged_or_foreign_result_files_are_refused(pca_study, tmp_path) -> None:
    with pytest.raises(ExperimentFileError, match="missing"):
        load_result(tmp_path, "pca_vs_ae")
    json_path = save_result(pca_study, tmp_path)
    npz_path = json_path.with_suffix(".npz")
    good = npz_path.read_bytes()
    npz_path.write_bytes(good[: len(good) // 2])
    with pytest.raises(ExperimentFileError, match="cannot be read"):
        load_result(tmp_path, "pca_vs_ae")
    npz_path.write_bytes(good)
    meta = json.loads(json_path.read_text())
    json_path.write_text(json.dumps({**meta, "format": 99}))
    with pytest.raises(ExperimentFileError, match="format"):
        load_result(tmp_path, "pca_vs_ae")
    json_path.write_text(json.dumps({**meta, "arrays": [*meta["arrays"], "map/extra"]}))
    with pytest.raises(ExperimentFileError, match="lacks map/extra"):
        load_result(tmp_path, "pca_vs_ae")
    with pytest.raises(ValueError, match="study must be one of"):
        load_result(tmp_path, "gan")


def test_a_pickled_array_in_a_result_is_never_unpickled(pca_study, tmp_path) -> None:
    json_path = save_result(pca_study, tmp_path)
    marker = tmp_path / "ran"
    payload = np.array([Boom(marker)], dtype=object)
    np.savez(json_path.with_suffix(".npz"), labels=payload)
    with pytest.raises(ExperimentFileError, match="cannot be read"):
        load_result(tmp_path, "pca_vs_ae")
    assert not marker.exists()


class Boom:
    """Unpickling this would create ``marker``: the file must stay absent."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_beta_and_class_studies_record_what_each_knob_changes(mnist_subset) -> None:
    beta = run_study("beta", dataclasses.replace(TINY_STUDY, epochs=2), data=mnist_subset)
    low, high = beta.row("beta-0"), beta.row("beta-2")
    assert high["test_kl"] < low["test_kl"]  # the KL weight is what shrinks the KL
    assert set(beta.maps) == {"beta-0", "beta-2"}
    classes = run_study("class_aware", dataclasses.replace(TINY_STUDY, epochs=2), data=mnist_subset)
    for kind in ("ae", "vae"):
        base, weighted = classes.row(f"{kind}-class-0"), classes.row(f"{kind}-class-50")
        assert "test_class" in weighted and "test_class" not in base
        assert weighted["overlap"] < base["overlap"]


def test_the_beta_study_counts_active_units_as_a_direct_count_of_the_posterior_means(mnist_subset) -> None:
    from vae.metrics import embed_images
    from vae.studies.beta import active_units_by_beta, active_units_sentence

    direct = {}

    def count(variant, model, row, history) -> None:  # Burda et al.: Var_x(E[z_j | x]) > 0.01, in NumPy
        means = embed_images(model, mnist_subset[2]).double().numpy()
        direct[variant.key] = int((means.var(axis=0) > 0.01).sum())

    result = run_study("beta", TINY_STUDY, data=mnist_subset, on_model=count)
    assert {row["key"]: row["active_units"] for row in result.rows} == direct
    assert all(row["active_units_images"] == len(mnist_subset[2]) for row in result.rows)
    by_beta = active_units_by_beta(result)
    assert [row["beta"] for row in by_beta] == sorted(TINY_STUDY.betas)
    assert [row["active_units"] for row in by_beta] == [direct[f"beta-{b:g}"] for b in sorted(TINY_STUDY.betas)]
    for row in by_beta:  # the smallest variance is that of the map's posterior means
        assert row["min_variance"] == pytest.approx(result.maps[f"beta-{row['beta']:g}"].astype(float).var(0).min())

    # A result recorded before the study counted them: counted from its map, which says how many images it holds.
    old = dataclasses.replace(
        result, rows=[{k: v for k, v in row.items() if not k.startswith("active_")} for row in result.rows]
    )
    old.maps = {**result.maps, "beta-2": result.maps["beta-2"] * np.array([1.0, 0.0], dtype=np.float32)}
    counted = {row["beta"]: (row["active_units"], row["images"]) for row in active_units_by_beta(old)}
    points = len(result.maps["beta-2"])
    first = result.maps["beta-0"].astype(float).var(0)
    assert counted == {0.0: (int((first > 0.01).sum()), points), 2.0: (1, points)}  # z2 made constant: 1 of 2
    assert "Dimensions switched off (collapsed to the prior) at β = 2 (1)." in active_units_sentence(
        active_units_by_beta(old)
    )


def test_the_active_units_sentence_follows_the_numbers() -> None:
    from vae.studies.beta import active_units_sentence

    kept = [
        {"beta": 0.0, "active_units": 2, "latent_dim": 2, "min_variance": 9.08, "images": 2000},
        {"beta": 4.0, "active_units": 2, "latent_dim": 2, "min_variance": 1.15, "images": 2000},
    ]
    assert active_units_sentence(kept) == (
        "β = 0: 2 of 2, β = 4: 2 of 2 active (over 2,000 test images). Every dimension is kept: the least-used "
        "varies by 1.15 (β = 4), 115 times the threshold, so the KL squeezes the code towards the prior without "
        "switching a dimension off."
    )
    lost = [kept[0], {**kept[1], "active_units": 0, "min_variance": 0.001, "images": 10_000}]
    assert active_units_sentence(lost) == (
        "β = 0: 2 of 2, β = 4: 0 of 2 active (over 2,000 / 10,000 test images). "
        "Dimensions switched off (collapsed to the prior) at β = 4 (2)."
    )


def test_progress_is_reported_and_a_stop_is_honoured(mnist_subset) -> None:
    seen = []
    run_study(
        "conv",
        dataclasses.replace(TINY_STUDY, conv_hidden=(16,)),
        data=mnist_subset,
        progress=lambda fraction, message: seen.append((fraction, message)),
    )
    starts = [(f, m) for f, m in seen if "epoch" not in m]
    assert [f for f, _ in starts] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert "conv" in starts[2][1]
    # Each trained variant reports its epochs between its start and the next one's, in order.
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions)
    epochs = [m for _, m in seen if "epoch" in m]
    assert len(epochs) == 4 * TINY_STUDY.epochs and all(f"epoch 1/{TINY_STUDY.epochs}" in m for m in epochs)
    with pytest.raises(StudyStopped):
        run_study("beta", TINY_STUDY, data=mnist_subset, should_stop=lambda: True)


def test_command_line_runs_a_quick_study_and_refuses_bad_options(tmp_path, monkeypatch, capsys) -> None:
    calls = []

    def fake_run_study(study, settings, data_dir=None, **kwargs):
        calls.append((study, settings))
        images, labels = torch.zeros(300, 28, 28, dtype=torch.uint8), torch.arange(300) % 10
        images[:, 10:18, 10:18] = (labels * 25).to(torch.uint8).view(-1, 1, 1)
        return run_study(
            study,
            dataclasses.replace(TINY_STUDY, epochs=1, map_points=100),
            data=(images, labels, images[:200], labels[:200]),
            **kwargs,
        )

    monkeypatch.setattr(cli, "run_study", fake_run_study)
    assert cli.main(["run", "--study", "beta", "--quick", "--out", str(tmp_path)]) == 0
    assert calls[0][0] == "beta" and calls[0][1] == runner.QUICK
    assert load_result(tmp_path, "beta").rows[0]["key"] == "beta-0"
    assert "saved" in capsys.readouterr().out
    assert cli.main(["run", "--epochs", "0", "--out", str(tmp_path)]) == 2
    with pytest.raises(SystemExit):
        cli.main(["run", "--study", "gan"])


def test_the_answers_follow_the_numbers_not_the_expectation(pca_study) -> None:
    """The sentence about the linear AE must say "learns PCA's subspace" only when the numbers show it."""
    import copy

    from vae.studies.registry import summarise

    result = copy.deepcopy(pca_study)
    for d in TINY_STUDY.dims:
        result.row(f"linear-{d}")["test_mse_per_pixel"] = result.row(f"pca-{d}")["test_mse_per_pixel"] * 1.001
        result.extras["angles"][str(d)]["decoder"] = [0.5] * d
    assert summarise(result)[1].startswith("The linear AE learns PCA's subspace: its MSE is within 0.1%")
    result.row("linear-4")["test_mse_per_pixel"] *= 1.5
    assert summarise(result)[1].startswith("In this run the linear AE has not reached PCA's subspace yet")
    result.row("linear-4")["test_mse_per_pixel"] = result.row("pca-4")["test_mse_per_pixel"]
    result.extras["angles"]["2"]["decoder"] = [45.0, 1.0]  # as good as PCA, but one direction still off
    assert summarise(result)[1].startswith("The linear AE reconstructs as well as PCA (MSE within 0.1%")
    assert "45.0° (D=2)" in summarise(result)[1]
    # Every number quoted for the dense AE is the row's own.
    first = summarise(result)[0]
    assert (
        f"{result.row('dense-2')['test_mse_per_pixel']:.4f} vs {result.row('pca-2')['test_mse_per_pixel']:.4f}" in first
    )


# ---------------------------------------------------------------------------------------------
# The three studies of the inverse, the conv filters and the decoupled encoder.


@pytest.fixture(scope="module")
def invertible_study(mnist_subset):
    return run_study("invertible", TINY_STUDY, data=mnist_subset)


def test_invertible_study_measures_how_far_each_encoder_lands_from_its_decoders_code(invertible_study) -> None:
    from vae.studies.registry import summarise

    rows = {row["key"]: row for row in invertible_study.rows}
    assert list(rows) == [v.key for v in variants("invertible", TINY_STUDY)]
    for d in TINY_STUDY.dims:
        inverse = rows[f"invertible-{d}"]
        assert inverse["inverse_error_exact"] < 1e-8  # float rounding: the layers invert exactly
        assert "inverse_error_exact" not in rows[f"dense-{d}"]
        # An untrained-for decoder is no inverse: the ordinary AEs land much further from z.
        assert rows[f"dense-{d}"]["inverse_error"] > 10 * inverse["inverse_error"]
        assert rows[f"dense-{d}"]["inverse_error_random"] > 10 * inverse["inverse_error_random"]
        assert inverse["parameters"] < 0.51 * rows[f"dense-{d}"]["parameters"]
    assert sorted(invertible_study.maps) == sorted(f"{f}-2" for f in ("pca", "dense", "tied", "invertible"))
    lines = summarise(invertible_study)
    quoted = f"{rows['invertible-2']['test_mse_per_pixel']:.4f} vs {rows['dense-2']['test_mse_per_pixel']:.4f}"
    assert quoted in lines[1]


def test_right_inverse_error_is_zero_for_an_exact_inverse_and_scale_free() -> None:
    from vae.models import ModelConfig, build_model
    from vae.studies.invertible import right_inverse_error

    torch.manual_seed(SEED)
    model = build_model(ModelConfig(kind="ae", latent_dim=2, hidden=(16,), invertible=True, recon_loss="mse"))
    codes = torch.randn(50, 2, generator=torch.Generator().manual_seed(SEED))
    assert right_inverse_error(model, codes, through_pixels=True) < 1e-10
    dense = build_model(ModelConfig(kind="ae", latent_dim=2, hidden=(16,)))
    error = right_inverse_error(dense, codes)
    assert error > 0.01
    # The encoder is fixed, so scaling the codes by 10 does not scale the (relative) error by 10 ** 2.
    assert right_inverse_error(dense, 10 * codes) < 100 * error


def test_conv_filters_study_compares_each_first_layer_with_the_patch_pca(mnist_subset) -> None:
    from vae.studies.conv_filters import derivative_likeness, filter_rows, initial_model, leading_components
    from vae.studies.patches import patch_pca
    from vae.studies.registry import summarise

    result = run_study("conv_filters", dataclasses.replace(TINY_STUDY, conv_hidden=(16,)), data=mnist_subset)
    assert [row["key"] for row in result.rows] == ["conv-ae", "linear-conv-ae"]
    pca = result.extras["patch_pca"]
    direct = patch_pca(mnist_subset[0], 4, stride=2, padding=1)
    assert np.allclose(pca["explained_variance"], direct.explained_variance)
    for key in ("conv-ae", "linear-conv-ae"):
        f = result.extras["filters"][key]
        trained, initial = np.asarray(f["weights"]["trained"]), np.asarray(f["weights"]["initial"])
        assert trained.shape == initial.shape == (32, 16)
        assert np.allclose(np.asarray(f["weights"]["change"]), trained - initial)
        assert len(f["angles"]["trained"]) == 16 and sum(f["energy"]["change"]) == pytest.approx(1.0)
        assert not np.allclose(trained, initial)  # training moved them
    # The recorded start is the trainer's: a run stopped before its first step keeps exactly those weights.
    config = variants("conv_filters", TINY_STUDY)[0].config
    from vae.training.trainer import TrainSettings, train

    untouched = train(
        config,
        mnist_subset[0],
        None,
        TrainSettings(epochs=1, batch_size=64, seed=TINY_STUDY.seed),
        should_stop=lambda: True,
        device="cpu",
    ).model
    assert torch.equal(untouched.encoder.body[0].weight, initial_model(config, TINY_STUDY.seed).encoder.body[0].weight)
    # MNIST's 4 x 4 patches: a flat level and two gradients carry most of the variance.
    k = leading_components(pca["explained_variance"])
    assert 2 <= k <= 5
    shape = derivative_likeness(np.asarray(pca["components"]), 4)
    assert shape["flat"] > 0.9 and shape["gradients"] < 30
    energy, angles = filter_rows(result)
    assert {row["family"] for row in angles} >= {"conv AE: filters", "linear conv AE: change in training"}
    assert summarise(result)[0].startswith("The 4 x 4 patches the first layer sees")


def test_derivative_likeness_and_leading_components_on_known_cases() -> None:
    from vae.studies.conv_filters import derivative_likeness, leading_components

    assert leading_components([5.0, 3.0, 1.0, 1.0]) == 2  # 80 % after two
    assert leading_components([1.0, 1.0, 1.0, 1.0, 1.0]) == 4
    ramp = np.arange(3) - 1.0
    exact = np.stack([np.ones(9) / 3, np.tile(ramp, 3) / np.sqrt(6), np.repeat(ramp, 3) / np.sqrt(6)])
    shape = derivative_likeness(exact, 3)
    assert shape["flat"] == pytest.approx(1.0) and shape["gradients"] == pytest.approx(0.0, abs=1e-6)
    swapped = derivative_likeness(exact[[1, 0, 2]], 3)
    assert swapped["flat"] < 0.1 and swapped["gradients"] > 80


def test_decoupled_study_trains_on_the_graph_without_labels_and_records_it(mnist_subset, monkeypatch) -> None:
    from vae.studies.decoupled import meets_targets
    from vae.studies.registry import summarise
    from vae.training import graph as graph_module

    built = []
    real = graph_module.fuzzy_graph

    def counting(images, **options):
        built.append(len(images))
        return real(images, **options)

    monkeypatch.setattr(graph_module, "fuzzy_graph", counting)
    settings = dataclasses.replace(TINY_STUDY, graph_train_images=1500, graph_epochs=2)
    result = run_study("decoupled", settings, data=mnist_subset)
    assert built == [1500]  # one graph for both UMAP models, over the 1,500 training images used
    rows = {row["key"]: row for row in result.rows}
    assert list(rows) == ["pca", "ae", "vae", "class-ae", "umap-decoupled", "umap-conv", "umap-joint"]
    assert rows["umap-decoupled"]["decoupled"] and rows["umap-joint"]["umap_weight"] == settings.umap_weight
    assert rows["umap-conv"]["arch"] == "conv" and rows["umap-conv"]["decoupled"]
    assert rows["umap-conv"]["precision"] == ("bfloat16" if bfloat16_supported() else "float32")
    assert rows["umap-decoupled"]["precision"] == "float32"
    # The 500 training images left out of the graph score every model, as the test set does.
    for row in rows.values():
        assert 0 < row["heldout_knn5_accuracy"] <= 1 and row["heldout_mse_per_pixel"] > 0
    model = fit_pca(mnist_subset[0][:1500], 2)
    assert rows["pca"]["heldout_mse_per_pixel"] == pytest.approx(reconstruction_mse(model, mnist_subset[0][1500:]))
    assert "test_umap" not in rows["umap-joint"]  # the test set is not in the graph: no UMAP term there
    assert 0.5 < result.extras["graph"]["same_class_share"] <= 1
    assert len(result.maps) == 7 and all(m.shape == (TINY_STUDY.map_points, 2) for m in result.maps.values())
    lines = summarise(result)
    assert f"{rows['umap-joint']['knn5_accuracy']:.3f} (UMAP + AE, joint)" in lines[0]
    assert f"{rows['umap-conv']['knn5_accuracy']:.3f} (UMAP conv encoder, decoupled decoder)" in lines[0]
    met = any(meets_targets(rows[k]) for k in ("umap-decoupled", "umap-conv", "umap-joint"))
    assert ("not both met by any" in lines[2]) == (not met)
    assert f"conv decoupled {rows['umap-conv']['heldout_knn5_accuracy']:.4f}" in lines[3]
    # The wording follows the numbers: each target on its own, then both.
    rows["umap-decoupled"].update(knn5_accuracy=0.965, test_mse_per_pixel=0.05)
    rows["umap-conv"].update(knn5_accuracy=0.5, test_mse_per_pixel=0.05)
    rows["umap-joint"].update(knn5_accuracy=0.90, test_mse_per_pixel=0.035)
    assert (
        "kNN-5 met: best 0.965, UMAP encoder, decoupled decoder; MSE met: best 0.0350, UMAP + AE"
        in summarise(result)[2]
    )
    rows["umap-joint"].update(test_mse_per_pixel=0.04)
    assert "MSE missed: best 0.0400, UMAP + AE, joint" in summarise(result)[2]
    rows["umap-joint"].update(knn5_accuracy=0.97, test_mse_per_pixel=0.03)
    assert "both met by UMAP + AE, joint" in summarise(result)[2]


def test_one_variant_is_run_alone_and_merged_into_the_saved_result(mnist_subset, tmp_path) -> None:
    from vae.studies.runner import merge_results

    settings = TINY_STUDY
    order = [v.key for v in variants("beta", settings)]
    saved = run_study("beta", settings, data=mnist_subset)
    alone = run_study("beta", settings, data=mnist_subset, only=[order[1]])
    assert [row["key"] for row in alone.rows] == [order[1]] and set(alone.maps) == {order[1]}
    # Seeded: the variant run alone is the one the whole study trained, number for number.
    assert alone.rows[0]["test_mse_per_pixel"] == saved.row(order[1])["test_mse_per_pixel"]
    dropped = dataclasses.replace(
        saved,
        rows=[row for row in saved.rows if row["key"] != order[1]],
        maps={k: v for k, v in saved.maps.items() if k != order[1]},
        images={k: v for k, v in saved.images.items() if not k.endswith(f"/{order[1]}")},
    )
    merged = merge_results(dropped, alone, order)
    assert [row["key"] for row in merged.rows] == order  # back in the study's order
    assert set(merged.maps) == set(saved.maps) and set(merged.images) == set(saved.images)
    assert np.array_equal(merged.maps[order[1]], alone.maps[order[1]])
    assert np.array_equal(merged.images["originals"], saved.images["originals"])
    assert merged.seconds == pytest.approx(dropped.seconds + alone.seconds)
    replaced = merge_results(saved, alone, order)
    assert replaced.seconds == pytest.approx(saved.seconds - saved.row(order[1])["train_seconds"] + alone.seconds)
    with pytest.raises(ValueError, match="other settings cannot be merged"):
        merge_results(saved, dataclasses.replace(alone, settings=dataclasses.replace(settings, seed=SEED + 1)), order)
    with pytest.raises(ValueError, match=r"has the variants .*, not \['nope'\]"):
        run_study("beta", settings, data=mnist_subset, only=["nope"])
    with pytest.raises(ValueError, match="not none"):
        run_study("beta", settings, data=mnist_subset, only=[])
    kept = next(v.key for v in variants("conv_filters", settings) if get_study("conv_filters").keeps(v))
    with pytest.raises(ValueError, match="extras are measured across its variants"):
        run_study("conv_filters", settings, data=mnist_subset, only=[kept])


def test_a_study_asking_for_bfloat16_trains_in_float32_where_the_cpu_has_none(mnist_subset, monkeypatch) -> None:
    monkeypatch.setattr(runner, "bfloat16_supported", lambda: False)
    settings = dataclasses.replace(TINY_STUDY, graph_train_images=1500)
    result = run_study("decoupled", settings, data=mnist_subset, only=["umap-conv"])
    assert result.rows[0]["precision"] == "float32" and result.rows[0]["status"] == "completed"


def test_the_command_line_merges_one_variant_and_refuses_what_it_cannot(tmp_path, monkeypatch, capsys) -> None:
    images, labels = torch.zeros(300, 28, 28, dtype=torch.uint8), torch.arange(300) % 10
    images[:, 10:18, 10:18] = (labels * 25).to(torch.uint8).view(-1, 1, 1)
    tiny = dataclasses.replace(TINY_STUDY, epochs=1, map_points=100)
    current, calls = [tiny], []

    def fake_run_study(study, settings, data_dir=None, **kwargs):
        calls.append(kwargs["only"])
        return run_study(study, current[0], data=(images, labels, images[:200], labels[:200]), **kwargs)

    monkeypatch.setattr(cli, "run_study", fake_run_study)
    assert cli.main(["run", "--study", "beta", "--variant", "beta-0", "--out", str(tmp_path)]) == 2
    assert "beta.json is missing" in capsys.readouterr().err  # nothing saved to merge into
    assert cli.main(["run", "--study", "beta", "--out", str(tmp_path)]) == 0
    saved, before = load_result(tmp_path, "beta"), (tmp_path / "beta.json").read_bytes()
    current[0] = dataclasses.replace(tiny, seed=SEED + 1)  # trained otherwise than the saved rows: refused
    assert cli.main(["run", "--study", "beta", "--variant", "beta-2", "--out", str(tmp_path)]) == 2
    assert "other settings cannot be merged" in capsys.readouterr().err
    assert (tmp_path / "beta.json").read_bytes() == before
    current[0] = tiny
    assert cli.main(["run", "--study", "beta", "--variant", "beta-2", "--out", str(tmp_path)]) == 0
    merged = load_result(tmp_path, "beta")
    assert calls[-1] == ["beta-2"] and [r["key"] for r in merged.rows] == [r["key"] for r in saved.rows]
    assert merged.row("beta-0") == saved.row("beta-0") and merged.created >= saved.created
    assert cli.main(["run", "--variant", "beta-2", "--out", str(tmp_path)]) == 2
    assert "--variant needs exactly one --study" in capsys.readouterr().err
    assert cli.main(["run", "--study", "beta", "--variant", "nope", "--out", str(tmp_path)]) == 2
    assert "not ['nope']" in capsys.readouterr().err


def test_each_study_says_how_its_models_were_trained() -> None:
    from vae.studies.runner import QUICK, StudySettings

    full = StudySettings()
    assert (
        get_study("pca_vs_ae").describe_training(full) == "all training images, 10 epochs per model, batch 128, seed 0"
    )
    assert get_study("beta").describe_training(QUICK).startswith("first 10,000 training images, 2 epochs per model")
    # The decoupled study: Parametric UMAP's 50,000 images, its longer recipe, and the graph's edges.
    decoupled = get_study("decoupled").describe_training(full)
    assert decoupled.startswith("first 50,000 training images, AE, VAE and class-aware AE 30 epochs, batch 128")
    assert "UMAP models 240 passes of 50,000 edges (12 million), batch 512" in decoupled
    assert "12 passes of 10,000 edges (120,000)" in get_study("decoupled").describe_training(QUICK)


def test_the_shipped_filter_banks_and_subspace_angles_come_out_as_drawn() -> None:
    from tests.conftest import REPO
    from vae.studies.conv_filters import filter_bank_images
    from vae.studies.pca_vs_ae import angle_rows

    filters = load_result(REPO / "experiments", "conv_filters")
    banks = filter_bank_images(filters)
    families = [row["family"] for row in filters.rows]
    assert list(banks) == [
        "principal components of the patches, largest variance first",
        *(f"{f}: {part}" for f in families for part in ("trained filters", "change in training")),
        "random start (conv AE)",
    ]
    first = filters.extras["filters"][filters.rows[0]["key"]]["weights"]
    np.testing.assert_array_equal(banks["random start (conv AE)"], first["initial"])
    pca = load_result(REPO / "experiments", "pca_vs_ae")
    rows = angle_rows(pca)
    for d, per_part in pca.extras["angles"].items():
        for part, angles in per_part.items():
            row = next(r for r in rows if r["latent_dim"] == int(d) and r["family"] == f"linear AE {part}")
            assert row["largest"] == max(angles) and row["mean"] == pytest.approx(np.mean(angles))
