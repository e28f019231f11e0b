"""The Experiments page through the entry file (AppTest), on small study results made for the tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.conftest import REPO, TINY_STUDY, image_captions, open_dashboard
from vae.studies import runner
from vae.studies.pca_vs_ae import summarise_tied
from vae.studies.registry import STUDIES, run_study, save_result, summarise
from vae.studies.runner import StudyResult


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory, mnist_subset) -> dict[str, StudyResult]:
    return {study: run_study(study, TINY_STUDY, data=mnist_subset) for study in STUDIES}


@pytest.fixture
def results_dir(tmp_path: Path, tiny_results, monkeypatch) -> Path:
    shipped = tmp_path / "shipped"
    for result in tiny_results.values():
        save_result(result, shipped)
    monkeypatch.setenv("VAE_EXPERIMENTS_DIR", str(shipped))
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    return shipped


def test_every_question_is_answered_with_its_numbers_and_charts(results_dir, tiny_results) -> None:
    at = open_dashboard("app_pages/experiments.py")
    assert [tab.label for tab in at.tabs] == [
        "PCA vs AE",
        "Dense vs conv",
        "KL weight β",
        "Class-aware loss",
        "Tied weights",
        "Inverse weights",
        "Conv filters vs patch PCA",
        "Encoder without decoder",
    ]
    answers = [block.value for block in at.success]
    expected = [summarise(tiny_results[s]) for s in ("pca_vs_ae", "conv", "beta", "class_aware")]
    expected.append(summarise_tied(tiny_results["pca_vs_ae"]))
    expected += [summarise(tiny_results[s]) for s in ("invertible", "conv_filters", "decoupled")]
    assert answers == ["\n".join(f"- {line}" for line in lines) for lines in expected]
    # PCA: curves, angles, maps; conv: maps; beta: map, small multiples, curves, active units; class: maps, curves;
    # tied: 2; inverse: curves, errors, maps; filters: banks, energy, angles; decoupled: trade-off, maps.
    assert len(at.get("plotly_chart")) == 20
    assert any("uses the labels" in w.value for w in at.warning)
    captions = [c.value for c in at.caption]
    assert any("Shipped result: MNIST, all training images, 1 epochs" in c for c in captions)
    # The decoupled study says how its own models trained: its images, its longer recipe, the graph's edges.
    graph_epochs = tiny_results["decoupled"].settings.graph_epochs
    assert any("Shipped result: MNIST, first" in c and f"UMAP models {graph_epochs} passes" in c for c in captions)


def test_choosing_a_beta_shows_its_map_and_its_decoded_grid(results_dir, tiny_results) -> None:
    at = open_dashboard("app_pages/experiments.py")
    grid_caption = lambda: next(c for c in image_captions(at) if c.startswith("decoded on a 10 x 10 grid"))  # noqa: E731
    slider = at.select_slider(key="beta_pick")
    assert slider.value == 0.0  # 1.0 is not in this study, so the first beta
    x0 = tiny_results["beta"].row("beta-0")["grid_box"][0]
    assert f"z₁ {x0:.1f}.." in grid_caption()
    slider.set_value(2.0).run()
    assert not at.exception
    x0 = tiny_results["beta"].row("beta-2")["grid_box"][0]
    assert f"z₁ {x0:.1f}.." in grid_caption()


def test_the_beta_tab_counts_active_units_per_beta_beside_the_20d_yardstick(results_dir, tiny_results) -> None:
    import json

    import torch

    from vae.data import load_dataset
    from vae.models import to_float_images
    from vae.store import load_model

    at = open_dashboard("app_pages/experiments.py")
    assert not at.exception
    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    figure = next(spec for spec in specs if spec["data"][0].get("name") == "active units")
    sweep, dimensions = figure["data"]
    rows = sorted(tiny_results["beta"].rows, key=lambda row: row["beta"])
    assert sweep["y"] == [row["active_units"] for row in rows]  # the study's own counts, over its test images
    assert sweep["text"] == [f"{row['active_units']} of 2" for row in rows]
    # The yardstick: the shipped 20-D VAE's posterior means over the 10,000 test images, counted in NumPy.
    model, _ = load_model(REPO / "models" / "vae-20d-60s")
    images, _ = load_dataset("mnist", "test", REPO / "data")
    with torch.no_grad():
        means = model.encode(to_float_images(images))[0].double().numpy()
    variance = means.var(axis=0)
    active = int((variance > 0.01).sum())
    assert len(dimensions["x"]) == 20
    assert sorted(dimensions["y"]) == pytest.approx(sorted(variance), rel=1e-6)
    assert sum(color != "#BBBBBB" for color in dimensions["marker"]["color"]) == active
    captions = "\n".join(c.value for c in at.caption)
    assert f"**{active} of 20** dimensions active" in captions and "vae-20d-60s" in captions
    inactive_kl = max(kl for kl, var in zip(dimensions["customdata"], dimensions["y"]) if var <= 0.01)
    assert f"the other {20 - active} carry at most {inactive_kl:.2g} nats of KL each" in captions
    counts = ", ".join(f"β = {row['beta']:g}: {row['active_units']} of 2" for row in rows)
    assert counts + " active (over 500 test images)." in captions


def test_reconstruction_size_picker_switches_the_strips(results_dir) -> None:
    at = open_dashboard("app_pages/experiments.py")
    count = lambda caption: image_captions(at).count(caption)  # noqa: E731
    assert (count("PCA 2-D"), count("PCA 4-D")) == (2, 0)  # the PCA tab's strips and the inverse-weights tab's
    at.select_slider(key="pca_recon_dim").set_value(4).run()
    assert (count("PCA 2-D"), count("PCA 4-D")) == (1, 1)
    at.select_slider(key="inv_recon_dim").set_value(4).run()
    assert (count("PCA 2-D"), count("PCA 4-D")) == (0, 2)
    assert count("AE dense 784-400-4 (invertible)") == 1


def test_missing_and_damaged_results_are_explained(results_dir) -> None:
    (results_dir / "beta.json").unlink()
    (results_dir / "conv.npz").write_bytes(b"not a zip")
    at = open_dashboard("app_pages/experiments.py")
    assert any(
        "No result for this study on MNIST yet: none is shipped" in info.value and "--study beta" in info.value
        for info in at.info
    )
    assert any("cannot be used" in error.value and "conv" in error.value for error in at.error)
    assert len(at.success) == 6  # pca, class-aware, tied and the three new studies still answer


def test_a_recompute_runs_in_the_background_and_its_result_can_be_chosen(results_dir, monkeypatch) -> None:
    monkeypatch.setattr(runner, "QUICK", dataclasses.replace(TINY_STUDY, train_limit=512, betas=(0.0, 4.0)))
    at = open_dashboard("app_pages/experiments.py")
    at.button(key="beta_go").click().run()
    assert not at.exception
    from app import cache

    job = cache.study_jobs()[("beta", "mnist")]
    assert job.wait(180), "the recompute did not finish"
    assert job.snapshot().status == "completed", job.snapshot().message
    at.run()
    source = at.radio(key="beta_source")
    assert source.options == ["shipped with the project", "your recompute"]
    source.set_value("recomputed").run()
    assert any("Recomputed result: MNIST, first 512 training images" in c.value for c in at.caption)
    assert any("From beta 0 to 4" in block.value for block in at.success)


def test_a_dataset_without_shipped_results_says_so_and_offers_the_recompute(results_dir) -> None:
    at = open_dashboard("app_pages/experiments.py")
    at.sidebar.selectbox(key="dataset").set_value("fashion-mnist").run()
    assert not at.exception
    notice = "No result for this study on Fashion-MNIST yet: none is shipped"
    missing = [info.value for info in at.info if notice in info.value]
    assert len(missing) == 8  # every tab (the tied-weights one reads the PCA study's result)
    assert any("--study decoupled --dataset fashion-mnist" in text for text in missing)
    for study in ("invertible", "conv_filters", "decoupled"):
        assert at.button(key=f"{study}_go").label == "Recompute"


def test_tables_show_a_dash_and_say_why_where_an_ae_has_no_kl(results_dir) -> None:
    at = open_dashboard("app_pages/experiments.py")
    conv = next(
        d.value for d in at.dataframe if "KL (nats)" in d.value.columns and "VAE conv" in " ".join(d.value["model"])
    )
    assert not conv.astype(str).isin(["None", "nan", "NaN"]).any().any()
    kl = dict(zip(conv["model"], conv["KL (nats)"]))
    assert all(value == "—" for model, value in kl.items() if model.startswith("AE"))
    assert all(value != "—" for model, value in kl.items() if model.startswith("VAE"))
    assert any("A dash under KL (nats): an AE has no KL term" in c.value for c in at.caption)
