"""The models shipped in models/: they load, they are what their metadata says, and they meet the
quality targets (with a margin for the re-measurement on a subset)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import REPO, SEED
from vae.data import DATASETS, _manifest_sha256, load_dataset
from vae.metrics import embed_images, knn_accuracy, reconstruction_mse
from vae.store import META_FILE, NoTimeline, list_models, load_model, load_timeline
from vae.training.trainer import evaluate

MODELS = REPO / "models"
SHIPPED = [
    "ae-2d",
    "vae-2d",
    "ae-16d",
    "vae-16d",
    "pca-2d",
    "pca-16d",
    "vae-20d-60s",
    "ae-2d-conv",
    "vae-2d-conv",
    "ae-2d-fashion",
    "vae-2d-fashion",
    "pca-2d-fashion",
    "umap-ae-2d",
    "umap-conv-2d",
]

# Targets from the project's quality goals, checked on the numbers recorded at training time.
TARGETS = {
    ("vae-2d", "test_loss"): ("<=", 145.0),
    ("ae-2d", "knn5_accuracy"): (">=", 0.80),
    ("vae-2d", "knn5_accuracy"): (">=", 0.78),
    ("ae-2d", "test_mse_per_pixel"): ("<=", 0.037),
    # The goal is 100 nats; what 60 s of this CPU reaches is recorded in the README. This guards the
    # part that holds: better than the classic recipe's 105.6 after 10 full epochs.
    ("vae-20d-60s", "test_loss"): ("<=", 105.6),
    ("vae-20d-60s", "train_seconds"): ("<=", 60.0),
    # The graph loss's gain over the AE's 0.806 (decoupled study) with the dense encoder ...
    ("umap-ae-2d", "knn5_accuracy"): (">=", 0.90),
    ("umap-ae-2d", "test_mse_per_pixel"): ("<=", 0.037),
    # ... and the conv encoder past Parametric UMAP's 0.9614 / 0.0374: the targets.
    ("umap-conv-2d", "knn5_accuracy"): (">=", 0.962),
    ("umap-conv-2d", "test_mse_per_pixel"): ("<=", 0.036),
}


def model_files(stored) -> list:
    """The files a model's model.json names: itself, its weights or graphs, its timeline and decoders."""
    names = [META_FILE, *(entry["file"] for entry in stored.files.values())]
    if isinstance(stored.timeline, dict):
        names.append(stored.timeline["file"])
        if isinstance(stored.timeline.get("decoders"), dict):
            names.append(stored.timeline["decoders"]["file"])
    return [stored.path / name for name in names]


def test_the_size_cap_counts_every_file_of_a_shipped_model() -> None:
    """model_files misses none of a shipped model's files (so the cap below cannot undercount), and names
    nothing outside its folder (so a person's own models in models/ never count)."""
    for name in SHIPPED:
        stored = next(s for s in list_models(MODELS) if s.name == name)
        files = model_files(stored)
        assert {p.name for p in files} == {p.name for p in stored.path.iterdir()} - {".lock"}, name
        assert all(p.parent == MODELS / name and p.is_file() for p in files), name


def test_every_shipped_model_is_listed_and_small() -> None:
    listed = {stored.name: stored for stored in list_models(MODELS)}
    assert set(SHIPPED) <= set(listed)
    # The shipped models' own files only, never the whole folder: a person's models saved from the Train
    # page live in models/ too. 48 MB of models and 20 MB of their training timelines (README, "Shipped models").
    total = sum(path.stat().st_size for name in SHIPPED for path in model_files(listed[name]))
    assert total < 72 * 1024 * 1024, f"shipped models take {total / 2**20:.1f} MB"
    for name in SHIPPED:
        stored = listed[name]
        assert stored.dataset_name == ("fashion-mnist" if name.endswith("-fashion") else "mnist")
        assert stored.dataset["sha256"] == _manifest_sha256(stored.dataset_name)
        assert stored.extra["command"].startswith(("python -m vae.train", "python -m vae.experiments"))
        if stored.config.kind != "pca" and "status" in stored.extra:
            assert stored.extra["status"] in {"completed", "time_limit"}
            assert all(record["seconds"] > 0 and record["test"]["loss"] > 0 for record in stored.history)


@pytest.mark.parametrize(("name", "metric"), sorted(TARGETS))
def test_recorded_quality_meets_the_target(name: str, metric: str) -> None:
    stored = next(s for s in list_models(MODELS) if s.name == name)
    op, target = TARGETS[name, metric]
    value = stored.metrics[metric]
    assert value <= target if op == "<=" else value >= target, f"{name} {metric} = {value:.4f}, target {op} {target}"


def test_autoencoders_beat_pca_at_the_same_size() -> None:
    metrics = {s.name: s.metrics for s in list_models(MODELS)}
    for dim in ("2d", "16d", "2d-fashion"):
        assert metrics[f"ae-{dim}"]["test_mse_per_pixel"] < metrics[f"pca-{dim}"]["test_mse_per_pixel"]
        assert metrics[f"ae-{dim}"]["knn5_accuracy"] > metrics[f"pca-{dim}"]["knn5_accuracy"]


@pytest.fixture(scope="module")
def subsets() -> dict[str, tuple[torch.Tensor, ...]]:
    """2,000 train / 500 test images (and labels) of each dataset whose files are present."""
    out = {}
    for name, dataset in DATASETS.items():
        if (REPO / "data" / dataset.folder / "raw" / "t10k-images-idx3-ubyte").is_file():
            train_images, train_labels = load_dataset(name, "train", REPO / "data")
            test_images, test_labels = load_dataset(name, "test", REPO / "data")
            out[name] = (train_images[:2000], train_labels[:2000], test_images[:500], test_labels[:500])
    return out


@pytest.mark.parametrize("name", SHIPPED)
def test_recorded_metrics_are_reproduced_on_a_subset(name: str, subsets) -> None:
    """Re-measure on 2,000 train / 500 test images: the recorded numbers must describe these weights."""
    model, stored = load_model(MODELS / name)
    if stored.dataset_name not in subsets:
        pytest.skip(f"{stored.dataset_name} not fetched: run `python -m vae.data fetch`")
    train_images, train_labels, test_images, test_labels = subsets[stored.dataset_name]
    mse = reconstruction_mse(model, test_images)
    assert mse == pytest.approx(stored.metrics["test_mse_per_pixel"], rel=0.15)
    accuracy = knn_accuracy(
        embed_images(model, train_images), train_labels, embed_images(model, test_images), test_labels
    )
    # Fewer neighbours to vote from than the full 60,000: allow a drop, never a big one.
    assert accuracy >= stored.metrics["knn5_accuracy"] - 0.08
    torch.manual_seed(0)
    loss = evaluate(model, test_images.float().div(255).unsqueeze(1))["loss"]
    assert loss == pytest.approx(stored.metrics["test_loss"], rel=0.1)


# The judge's figures (metrics["samples"], filled by `make samples`) re-measured on a subset: the first 2,000 of the
# 10,000 seeded samples (the same codes: torch draws them in order), for an AE or PCA from a Gaussian fitted to the
# first 10,000 training codes rather than all 60,000, and the reconstructions of 2,000 test images drawn at random
# (MNIST's test set is not shuffled: its first 2,000 read 4-5 points less confident than the whole). The standard
# error of a share on 2,000 is at most 1.1 points; 4 points allows for that and the fit's difference.
JUDGED_SUBSET = 2000
SHARE_TOLERANCE = 0.04
ENTROPY_TOLERANCE = 0.05


@pytest.mark.parametrize("name", SHIPPED)
def test_recorded_judge_figures_are_what_the_weights_give(name: str) -> None:
    from vae import judge as judges
    from vae.metrics import reconstruction_quality, sample_quality

    model, stored = load_model(MODELS / name)
    samples = stored.metrics["samples"]
    judge, record = judges.find(stored.dataset_name)
    # Measured by the shipped judge, at the shipped size and seed.
    assert samples["judge_sha256"] == record.weights_sha256
    assert (samples["n"], samples["seed"], samples["reconstructions"]["n"]) == (10_000, 0, 10_000)
    if not (REPO / "data" / DATASETS[stored.dataset_name].folder / "raw" / "t10k-images-idx3-ubyte").is_file():
        pytest.skip(f"{stored.dataset_name} not fetched")
    train_images, _ = load_dataset(stored.dataset_name, "train", REPO / "data")
    test_images, _ = load_dataset(stored.dataset_name, "test", REPO / "data")
    fit_codes = None if stored.config.kind == "vae" else embed_images(model, train_images[:10_000])
    measured = sample_quality(model, judge, JUDGED_SUBSET, seed=samples["seed"], fit_codes=fit_codes)
    drawn = np.random.default_rng(SEED).choice(len(test_images), JUDGED_SUBSET, replace=False)
    ceiling = reconstruction_quality(model, judge, test_images[torch.from_numpy(drawn)])
    for recorded, quality in ((samples, measured), (samples["reconstructions"], ceiling)):
        assert quality.confident_share == pytest.approx(recorded["confident_share"], abs=SHARE_TOLERANCE), name
        assert quality.entropy == pytest.approx(recorded["entropy"], abs=ENTROPY_TOLERANCE), name


# Trained by `make models` with a timeline: the 60-second yardstick records none, and the conv pair comes from
# `make experiments`, which records none.
WITH_TIMELINES = {"ae-2d": 4, "vae-2d": 4, "ae-2d-fashion": 4, "vae-2d-fashion": 4, "ae-16d": 0, "vae-16d": 0}


@pytest.mark.parametrize("name", sorted(WITH_TIMELINES))
def test_shipped_timelines_end_on_their_model(name: str) -> None:
    """Each timeline reads back, runs over the whole training, and its last frame is the shipped model's codes."""
    from vae.training.timeline import recording_steps, stratified_sample

    model, stored = load_model(MODELS / name)
    timeline = load_timeline(MODELS / name)
    if not (REPO / "data" / DATASETS[stored.dataset_name].folder / "raw" / "t10k-images-idx3-ubyte").is_file():
        pytest.skip(f"{stored.dataset_name} not fetched")
    test_images, test_labels = load_dataset(stored.dataset_name, "test", REPO / "data")
    epochs = stored.extra["settings"]["epochs"]
    assert timeline.steps.tolist() == recording_steps(timeline.batches_per_epoch, epochs).tolist()
    assert len(stored.history) == epochs and timeline.frames >= 10 and len(timeline.decoders) == WITH_TIMELINES[name]
    assert np.array_equal(timeline.image_index, stratified_sample(test_labels, 2000))
    final = embed_images(model, test_images[torch.from_numpy(timeline.image_index)]).numpy()
    np.testing.assert_allclose(timeline.codes[-1], final, rtol=0, atol=1e-5)


def test_models_without_a_timeline_say_so() -> None:
    for name in sorted(set(SHIPPED) - set(WITH_TIMELINES)):
        with pytest.raises(NoTimeline):
            load_timeline(MODELS / name)


# ---------------------------------------------------------------------------------------------
# The shipped experiment results: complete, and saying what the page and the README say they say.


@pytest.fixture(scope="module")
def studies():
    from vae.studies.registry import STUDIES, load_result

    return {study: load_result(REPO / "experiments", study) for study in STUDIES}


# Fashion-MNIST results are shipped for the first four studies only; the page says so for the others.
FASHION_STUDIES = ("pca_vs_ae", "conv", "beta", "class_aware")
# Settings only the decoupled study reads: a run of another study made before they existed (or changed) is
# still that study's full run.
DECOUPLED_ONLY = {
    "graph_train_images",
    "graph_hidden",
    "graph_epochs",
    "graph_batch_size",
    "long_epochs",
    "long_batch_size",
    "umap_weight",
}


@pytest.mark.parametrize(
    ("dataset", "folder"), [("mnist", "experiments"), ("fashion-mnist", "experiments/fashion-mnist")]
)
def test_shipped_studies_are_complete_full_runs(dataset: str, folder: str) -> None:
    from vae.studies.registry import STUDIES, load_result, variants
    from vae.studies.runner import StudySettings

    for study in STUDIES if dataset == "mnist" else FASHION_STUDIES:
        result = load_result(REPO / folder, study)
        ignored = set() if study == "decoupled" else DECOUPLED_ONLY
        expected = {k: v for k, v in StudySettings(dataset=dataset).to_dict().items() if k not in ignored}
        recorded = {k: v for k, v in result.settings.to_dict().items() if k not in ignored}
        assert recorded == expected, f"{folder}/{study} is not a full run on {dataset}"
        assert [row["key"] for row in result.rows] == [v.key for v in variants(study, result.settings)]
        assert all(m.shape == (2000, 2) for m in result.maps.values())


def test_shipped_answer_pca_vs_ae(studies) -> None:
    result = studies["pca_vs_ae"]
    mse = {row["key"]: row["test_mse_per_pixel"] for row in result.rows}
    for d in result.settings.dims:
        assert mse[f"linear-{d}"] == pytest.approx(mse[f"pca-{d}"], rel=0.01)  # the linear AE is PCA
        assert mse[f"dense-{d}"] < mse[f"pca-{d}"]  # the non-linear one beats it
        assert max(result.extras["angles"][str(d)]["decoder"]) < 15.0
    assert all(mse[f"pca-{a}"] > mse[f"pca-{b}"] for a, b in zip(result.settings.dims, result.settings.dims[1:]))
    assert all(
        result.row(f"tied-{d}")["parameters"] < 0.51 * result.row(f"dense-{d}")["parameters"]
        for d in result.settings.dims
    )


def test_shipped_answer_conv_beta_and_class_aware(studies) -> None:
    conv = studies["conv"]
    for kind in ("ae", "vae"):
        assert conv.row(f"conv-{kind}")["test_mse_per_pixel"] < conv.row(f"dense-{kind}")["test_mse_per_pixel"]
    betas = sorted(studies["beta"].rows, key=lambda row: row["beta"])
    assert all(a["test_kl"] > b["test_kl"] for a, b in zip(betas, betas[1:]))  # more weight, less KL
    assert betas[-1]["test_recon"] > betas[0]["test_recon"]
    # The README's answer: at 2-D no beta up to 4 switches a dimension off (counted over all 10,000 test images).
    assert [(row["active_units"], row["active_units_images"]) for row in betas] == [(2, 10_000)] * len(betas)
    classes = studies["class_aware"]
    top = max(classes.settings.class_weights)
    for kind in ("ae", "vae"):
        base, weighted = classes.row(f"{kind}-class-0"), classes.row(f"{kind}-class-{top:g}")
        assert weighted["overlap"] < 0.75 * base["overlap"]
        assert weighted["test_mse_per_pixel"] < 1.25 * base["test_mse_per_pixel"]  # a cost, not a collapse


def test_shipped_answer_invertible(studies) -> None:
    """The README's answer: an exact inverse in its own pixel space, a reconstruction between PCA's and the AE's."""
    result = studies["invertible"]
    rows = {row["key"]: row for row in result.rows}
    for d in result.settings.dims:
        inverse, dense, tied, pca = (rows[f"{f}-{d}"] for f in ("invertible", "dense", "tied", "pca"))
        assert inverse["inverse_error_exact"] < 1e-10
        assert inverse["inverse_error"] < 0.02 and dense["inverse_error"] < 0.02  # both near inverses on the data
        assert dense["inverse_error_random"] > inverse["inverse_error_random"]  # off the data the inverse holds better
        assert dense["test_mse_per_pixel"] < inverse["test_mse_per_pixel"] < pca["test_mse_per_pixel"]
        assert inverse["parameters"] < 0.5 * dense["parameters"] and inverse["parameters"] < tied["parameters"]


def test_shipped_answer_conv_filters(studies) -> None:
    """The README's answer: the filters are not a local PCA, what training changed is."""
    import numpy as np

    from vae.studies.conv_filters import leading_components

    result = studies["conv_filters"]
    variance = np.asarray(result.extras["patch_pca"]["explained_variance"])
    k = leading_components(variance)
    assert k == 3 and variance[:3].sum() / variance.sum() > 0.8
    for key in ("conv-ae", "linear-conv-ae"):
        f = result.extras["filters"][key]
        assert max(f["angles"]["trained"][k - 1]) > 60  # the trained filters' strongest directions: not the top PCs
        assert max(f["angles"]["change"][k - 1]) < 20  # the change's: within 20 degrees of them
        assert sum(f["energy"]["change"][:k]) > 0.75
        assert f["change_norm_ratio"] < 1  # the random start is still the larger part of each filter


def test_shipped_answer_decoupled(studies) -> None:
    """The README's answer: without labels the graph loss separates the classes far better than reconstruction,
    the decoupled decoder redraws them about as well as the AE, and the conv encoder meets the issue's targets
    (the dense one does not), on the held-out training images as on the test set."""
    from vae.studies.decoupled import TARGET_KNN, meets_targets

    result = studies["decoupled"]
    rows = {row["key"]: row for row in result.rows}
    knn = {key: row["knn5_accuracy"] for key, row in rows.items()}
    mse = {key: row["test_mse_per_pixel"] for key, row in rows.items()}
    assert result.extras["graph"]["points"] == 50_000
    assert knn["umap-decoupled"] > knn["ae"] + 0.1 and knn["umap-decoupled"] > knn["umap-joint"] > knn["ae"]
    assert knn["class-ae"] > knn["umap-conv"] > knn["umap-decoupled"]  # the labels still buy more separation
    assert mse["umap-decoupled"] < 1.05 * mse["ae"] and mse["umap-joint"] < 1.05 * mse["ae"]
    assert [key for key in ("umap-decoupled", "umap-conv", "umap-joint") if meets_targets(rows[key])] == ["umap-conv"]
    # Chosen on the 10,000 training images left out of the graph, never on the test set: there too.
    assert rows["umap-conv"]["heldout_knn5_accuracy"] >= TARGET_KNN and rows["umap-conv"]["precision"] == "bfloat16"
    # The shipped umap-ae-2d and umap-conv-2d are this study's two decoupled models.
    for name, key in (("umap-ae-2d", "umap-decoupled"), ("umap-conv-2d", "umap-conv")):
        _, stored = load_model(MODELS / name)
        assert stored.config.decoupled and stored.metrics["knn5_accuracy"] == rows[key]["knn5_accuracy"], name
    assert stored.config.arch == "conv" and stored.extra["command"].endswith("--variant umap-conv --save-models models")
