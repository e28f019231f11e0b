"""Switching dataset in the sidebar: every page follows the models of that dataset (AppTest, tiny models)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import REPO, open_dashboard, plane_titles, planes_data, torch_threads
from vae.data import DATASETS, load_dataset


@pytest.fixture(scope="module")
def two_dataset_store(tmp_path_factory) -> Path:
    """ae/vae/pca 2-D on MNIST and on Fashion-MNIST, trained for one epoch on 1,000 images each."""
    for dataset in DATASETS.values():
        if not (REPO / "data" / dataset.folder / "raw" / "t10k-images-idx3-ubyte").is_file():
            pytest.skip(f"{dataset.title} not fetched: run `python -m vae.data fetch`")
    from vae.models import ModelConfig, fit_pca
    from vae.store import save_model
    from vae.training.trainer import TrainSettings, train

    root = tmp_path_factory.mktemp("models")
    with torch_threads():
        for name, suffix in (("mnist", ""), ("fashion-mnist", "-fashion")):
            images, _ = load_dataset(name, "train", REPO / "data")
            images = images[:1000]
            for kind in ("ae", "vae"):
                result = train(
                    ModelConfig(kind=kind, hidden=(32,)),
                    images,
                    None,
                    TrainSettings(epochs=1, batch_size=50),
                    device="cpu",
                )
                save_model(result.model, root / f"{kind}-2d{suffix}", dataset={"name": name})
            save_model(fit_pca(images, 2), root / f"pca-2d{suffix}", dataset={"name": name})
    return root


@pytest.fixture
def app(two_dataset_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("VAE_MODELS_DIR", str(two_dataset_store))
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    return open_dashboard(timeout=120)


def test_the_sidebar_offers_each_dataset_and_its_own_models(app) -> None:
    at = app
    picker = at.sidebar.selectbox(key="dataset")
    assert picker.options == ["MNIST", "Fashion-MNIST"] and picker.value == "mnist" and not picker.disabled
    assert at.sidebar.selectbox(key="left_model").options[0] == "ae-2d"
    assert not any("fashion" in option for option in at.sidebar.selectbox(key="right_model").options)
    picker.set_value("fashion-mnist").run()
    assert not at.exception
    left, right = at.sidebar.selectbox(key="left_model"), at.sidebar.selectbox(key="right_model")
    assert (left.value, right.value) == ("ae-2d-fashion", "vae-2d-fashion")
    assert all("fashion" in option for option in left.options)
    assert not any("no longer in the store" in w.value for w in at.sidebar.warning)  # a switch, not a deletion


def test_the_explorer_and_overlap_pages_show_the_chosen_dataset(app) -> None:
    at = app
    at.switch_page("app_pages/explorer.py").run()
    assert at.selectbox(key="ex_from").value == "centroid of 0"
    at.sidebar.selectbox(key="dataset").set_value("fashion-mnist").run()  # switched while on the explorer
    assert not at.exception
    assert (at.selectbox(key="ex_from").value, at.selectbox(key="ex_to").value) == (
        "centroid of T-shirt/top",
        "centroid of Trouser",
    )
    assert [t.split(" ")[0] for t in plane_titles(at)] == ["ae-2d-fashion", "vae-2d-fashion"]
    legend = planes_data(at)["classes"]
    assert "Ankle boot" in legend and "T-shirt/top" in legend and "7" not in legend
    at.switch_page("app_pages/overlap.py").run()
    assert not at.exception
    assert "pca-2d-fashion" in [d.value for d in at.dataframe if d.value.index.name == "metric"][0].columns
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    heatmap = next(spec for spec in specs if spec["data"][0]["type"] == "heatmap")
    assert "Sneaker" in heatmap["data"][0]["x"]
    at.switch_page("app_pages/train.py").run()
    assert any("Fashion-MNIST training images" in c.value for c in at.caption)
    at.switch_page("app_pages/home.py").run()
    assert at.sidebar.selectbox(key="dataset").value == "fashion-mnist"  # the choice survives page switches


def test_a_dataset_without_models_can_be_chosen_to_train_on(two_dataset_store, tmp_path, monkeypatch) -> None:
    import shutil

    only_mnist = tmp_path / "models"
    for name in ("ae-2d", "vae-2d", "pca-2d"):
        shutil.copytree(two_dataset_store / name, only_mnist / name)
    monkeypatch.setenv("VAE_MODELS_DIR", str(only_mnist))
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    at = open_dashboard(timeout=120)
    at.sidebar.selectbox(key="dataset").set_value("fashion-mnist").run()
    assert not at.exception
    assert any("No trained Fashion-MNIST models" in w.value for w in at.sidebar.warning)
    at.switch_page("app_pages/train.py").run()
    assert not at.exception
    assert any("Fashion-MNIST training images" in c.value for c in at.caption)
    assert at.button[0].label == "Train both" and not at.button[0].disabled
