"""The Class overlap and Exports pages, driven through the entry file with Streamlit's AppTest.

A store of tiny models (2 epochs on 1,000 real MNIST images) is built once per session, so the tests
neither wait for nor depend on the shipped models; the app finds it through ``VAE_MODELS_DIR``. The pages
still measure and embed the full 10,000-image test set, which is what they do for real.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REAL_RAW, REPO, image_by_caption, media_pixels, open_dashboard, torch_threads

MODEL_NAMES = ("ae-2d", "vae-2d", "vae-16d", "pca-2d")
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model store with ae-2d, vae-2d, vae-16d and pca-2d, trained briefly on real digits."""
    if not all((REAL_RAW / name).is_file() for name in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte")):
        pytest.skip("MNIST not fetched: run `python -m vae.data fetch`")
    from vae.data import load_mnist
    from vae.models import ModelConfig, fit_pca
    from vae.store import save_model
    from vae.training.trainer import TrainSettings, train

    images, _ = load_mnist("train", REPO / "data")
    images = images[:1000]
    root = tmp_path_factory.mktemp("models")
    settings = TrainSettings(epochs=2, batch_size=50, seed=0)
    with torch_threads():
        for name, config in (
            ("ae-2d", ModelConfig(kind="ae", latent_dim=2, hidden=(64,))),
            ("vae-2d", ModelConfig(kind="vae", latent_dim=2, hidden=(64,))),
            ("vae-16d", ModelConfig(kind="vae", latent_dim=16, hidden=(64,))),
        ):
            result = train(config, images, None, settings, device="cpu")
            save_model(result.model, root / name, history=[r.to_dict() for r in result.history])
        save_model(fit_pca(images, 2), root / "pca-2d")
    return root


@pytest.fixture
def app(tiny_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An AppTest of dashboard.py that has run once (Home), pointed at the tiny store."""

    monkeypatch.setenv("VAE_MODELS_DIR", str(tiny_models))
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    return open_dashboard(timeout=120)


def _text(at) -> str:
    parts = [e.value for kind in ("title", "subheader", "markdown", "caption") for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


def _metrics(at) -> pd.DataFrame:
    tables = [d.value for d in at.dataframe if d.value.index.name == "metric"]
    assert len(tables) == 1
    return tables[0]


# ---------------------------------------------------------------------------------------------
# Class overlap


def test_overlap_page_shows_the_pair_and_follows_the_sidebar(app) -> None:
    at = app.switch_page("app_pages/overlap.py").run()
    assert not at.exception
    assert at.title[0].value == "Class overlap"
    assert [s.key for s in at.sidebar.selectbox] == ["dataset", "left_model", "right_model"]

    table = _metrics(at)
    assert list(table.columns) == ["ae-2d", "vae-2d", "pca-2d", "Δ ae-2d − vae-2d"]
    assert len(table) == 7
    values = table[["ae-2d", "vae-2d", "pca-2d"]].to_numpy()
    assert np.isfinite(values).all()
    kNN = table.loc["kNN-5 leave-one-out, test codes (latent)"]
    assert 0.1 < kNN["ae-2d"] <= 1 and 0.1 < kNN["vae-2d"] <= 1  # better than chance on real digits
    np.testing.assert_allclose(table.iloc[:, 3], table["ae-2d"] - table["vae-2d"])
    # 2-D latents are their own view: trustworthiness 1, and the same kNN accuracy in the view.
    np.testing.assert_allclose(table.loc["trustworthiness of the 2-D view"].iloc[:3], 1.0)
    np.testing.assert_allclose(
        table.loc["kNN-5 leave-one-out, test codes (2-D view)"], table.loc["kNN-5 leave-one-out, test codes (latent)"]
    )

    # The kNN-5 here is leave-one-out among the test codes; the caption says so and names the other pages'.
    assert any(
        "leave-one-out (LOO)" in c.value and "Home's kNN-5 fits the vote on the training codes" in c.value
        for c in at.caption
    )
    text = _text(at)
    for name in ("ae-2d", "vae-2d", "pca-2d"):
        assert f"**{name}**" in text  # named in the paragraph
    # The paragraph quotes the measured numbers rather than fixed claims.
    assert f"{kNN['ae-2d']:.1%}" in text and f"{kNN['vae-2d']:.1%}" in text
    assert f"{table.loc['median separation ratio', 'vae-2d']:.2f}" in text
    charts = at.get("plotly_chart")
    assert len(charts) >= 5  # metric bars, two heatmaps and their difference, per-digit bars

    at.sidebar.selectbox(key="right_model").set_value("vae-16d").run()
    assert not at.exception
    changed = _metrics(at)
    assert list(changed.columns) == ["ae-2d", "vae-16d", "pca-2d", "Δ ae-2d − vae-16d"]
    np.testing.assert_allclose(changed["ae-2d"], table["ae-2d"])  # cached, and the same model
    assert not np.allclose(changed["vae-16d"], table["vae-2d"])
    # A 16-D latent is drawn through a 2-D view, which now loses something.
    assert changed.loc["trustworthiness of the 2-D view", "vae-16d"] < 1.0
    assert "vae-16d" in _text(at) and "PCA view of its 16-D latent" in _text(at)


def test_overlap_view_choice_is_the_explorers(app) -> None:
    app.session_state["right_model"] = "vae-16d"
    at = app.switch_page("app_pages/explorer.py").run()
    assert not at.exception
    at.selectbox(key="ex_view").set_value("identity").run()
    at.switch_page("app_pages/overlap.py").run()
    assert not at.exception
    assert at.selectbox(key="ex_view").value == "identity"
    assert "first two dims view of its 16-D latent" in _text(at)


def test_overlap_without_a_baseline_and_two_vaes(app) -> None:
    app.session_state["left_model"] = "vae-16d"  # the tiny store has no pca-16d
    at = app.switch_page("app_pages/overlap.py").run()
    assert not at.exception
    assert list(_metrics(at).columns) == ["vae-16d", "vae-2d", "Δ vae-16d − vae-2d"]
    text = _text(at)
    assert "Both models are VAEs, so the KL term alone cannot explain their difference" in text
    assert "The latents differ in size (16-D and 2-D)" in text


def test_overlap_same_model_on_both_sides(app) -> None:
    app.session_state["right_model"] = "ae-2d"
    at = app.switch_page("app_pages/overlap.py").run()
    assert not at.exception
    assert list(_metrics(at).columns)[:2] == ["ae-2d (left)", "ae-2d (right)"]
    assert "Both sides show **ae-2d**" in _text(at)


# ---------------------------------------------------------------------------------------------
# Exports


def _buttons(at) -> dict[str, object]:
    return {b.label: b for b in at.get("download_button")}


def test_exports_page_offers_every_download(app) -> None:
    at = app.switch_page("app_pages/exports.py").run()
    assert not at.exception
    assert at.title[0].value == "Exports"
    assert list(_buttons(at)) == [
        "Download ae-2d embedding (CSV)",
        "Download vae-2d embedding (CSV)",
        "Download ae-2d digit (PNG)",
        "Download ae-2d manifold grid (PNG)",
        "Download ae-2d model (zip)",
        "Download vae-2d model (zip)",
        "Download pca-2d model (zip)",
        "Download ae-2d ONNX pair (zip)",
        "Download vae-2d ONNX pair (zip)",
        "Download pca-2d ONNX pair (zip)",
        "Download the planes' web page (zip)",
    ]
    text = _text(at)
    assert "`ae-2d-embedding-test.csv`: 10,000 rows" in text
    assert "never unpickles" in text

    at.sidebar.selectbox(key="right_model").set_value("vae-16d").run()
    at.radio(key="ex_subset").set_value("all").run()
    assert not at.exception
    assert "Download vae-16d embedding (CSV)" in _buttons(at)
    text = _text(at)
    assert "`vae-16d-embedding-all-pca.csv`: 70,000 rows; columns index, label, z1…z16, then x, y" in text


def test_exports_decodes_at_the_explorers_last_click(app) -> None:
    app.session_state["ex_click"] = {"side": "right", "x": 0.25, "y": -0.5, "index": None}
    at = app.switch_page("app_pages/exports.py").run()
    assert not at.exception
    assert at.radio(key="exp_side").value == "right"
    assert [n.value for n in at.number_input] == [0.25, -0.5]
    assert "Download vae-2d digit (PNG)" in _buttons(at)
    assert "Default point: the Latent explorer's last click." in _text(at)
    at.slider(key="exp_grid_n").set_value(6).run()
    assert not at.exception
    assert "Download vae-2d manifold grid (PNG)" in _buttons(at)
    captions = [caption for image in at.get("image") for caption in image.captions]
    assert any(caption.startswith("vae-2d decodes (0.250, -0.500); 280 × 280 px") for caption in captions)
    assert any(caption.startswith("vae-2d: 6 × 6 digits") for caption in captions)


def test_exports_digit_and_grid_are_the_decoder_at_the_views_inverse(app, tiny_models: Path, shown_media) -> None:
    """The PNGs offered hold model.decode(view.inverse_transform(point)), computed here from scratch."""
    import torch

    from vae.data import load_mnist
    from vae.images import tile_grid, to_uint8_image, upscale
    from vae.metrics import embed_images
    from vae.plots.scatter import ClickGrid
    from vae.projections import make_view
    from vae.store import load_model

    app.session_state["ex_click"] = {"side": "right", "x": 0.75, "y": -0.25, "index": None}
    at = app.switch_page("app_pages/exports.py").run()
    at.slider(key="exp_grid_n").set_value(5).run()
    assert not at.exception
    model, _ = load_model(tiny_models / "vae-2d")
    images, _ = load_mnist("test", REPO / "data")
    view = make_view("identity").fit(embed_images(model, images).numpy())

    def decode(points: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model.decode(torch.from_numpy(view.inverse_transform(points))).reshape(-1, 28, 28).numpy()

    digit = upscale(to_uint8_image(decode(np.array([[0.75, -0.25]], dtype=np.float32))[0]), 10)
    # The bytes the download button offers (what is shown may be re-encoded by Streamlit on the way).
    offered = media_pixels(shown_media, _buttons(at)["Download vae-2d digit (PNG)"].proto.url)
    assert offered.shape == digit.shape and np.abs(offered.astype(int) - digit).max() <= 1
    swapped = upscale(to_uint8_image(decode(np.array([[-0.25, 0.75]], dtype=np.float32))[0]), 10)
    assert np.abs(offered.astype(int) - swapped).max() > 8  # x and y swapped would show
    # What is shown is the same picture, re-encoded by Streamlit (JPEG: a few grey levels off).
    shown = image_by_caption(at, shown_media, "vae-2d decodes (0.750, -0.250)")
    assert shown.shape == digit.shape and np.abs(shown.astype(int) - digit).mean() < 2
    # The grid: x fastest, y increasing by row, tiled with the highest y on top, over the whole plane.
    extent = ClickGrid.covering(view.embedding_, n=2, margin=0.0)
    xs, ys = np.linspace(*extent.x_range, 5), np.linspace(*extent.y_range, 5)
    lattice = np.array([[x, y] for y in ys for x in xs], dtype=np.float32)
    expected = tile_grid(decode(lattice), 5)
    grid = media_pixels(shown_media, _buttons(at)["Download vae-2d manifold grid (PNG)"].proto.url)
    scale = grid.shape[0] // expected.shape[0]
    assert grid.shape == (expected.shape[0] * scale, expected.shape[1] * scale)
    assert np.abs(grid.astype(int) - upscale(expected, scale)).max() <= 1


def test_model_zip_of_the_store_loads_back(app, tiny_models: Path, tmp_path: Path) -> None:
    """The bytes behind the zip button (the same cached call the page makes) unzip to a loadable model."""
    from app import analysis
    from vae.store import load_model, read_metadata

    stored = read_metadata(tiny_models / "vae-16d")
    data = analysis.model_zip(str(stored.path), stored.weights_sha256)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == ["vae-16d/model.json", f"vae-16d/{stored.weights_file}"]
        archive.extractall(tmp_path)
    _, meta = load_model(tmp_path / "vae-16d")
    assert meta.config.latent_dim == 16 and meta.weights_sha256 == stored.weights_sha256


# ---------------------------------------------------------------------------------------------
# The paragraph follows the numbers, whichever way they go


@pytest.fixture
def overlap_page():
    """The Class overlap page's numbers and paragraph (``app/overlap.py``); AppTest drives the page itself."""
    from app import overlap

    return overlap


def _measured(page, name: str, kind: str, *, knn: float, ratio: float, coverage: float, p99: float):
    from vae.models import ModelConfig
    from vae.store import StoredModel

    config = ModelConfig(kind=kind, latent_dim=2, hidden=() if kind == "pca" else (8,))
    stored = StoredModel(path=Path("/store") / name, config=config, weights_file="w", weights_sha256="0" * 64)
    report = {"knn_accuracy": knn, "coverage": coverage}
    density = {"separation_ratio": np.full(10, ratio), "norm_p99": np.asarray(p99)}
    return page.Measured("left", stored, name, "identity", report, np.eye(10), density)


def test_story_tells_the_usual_kl_story_when_the_numbers_show_it(overlap_page) -> None:
    ae = _measured(overlap_page, "ae-2d", "ae", knn=0.82, ratio=0.78, coverage=0.74, p99=26.6)
    vae = _measured(overlap_page, "vae-2d", "vae", knn=0.79, ratio=0.62, coverage=0.90, p99=3.3)
    pca = _measured(overlap_page, "pca-2d", "pca", knn=0.43, ratio=0.27, coverage=0.87, p99=9.0)
    text = overlap_page.story(ae, vae, pca)
    for number in ("3.3", "26.6", "0.62", "0.78", "79.0%", "82.0%", "90%", "74%", "43.0%"):
        assert number in text
    assert "the VAE's space is the more compact one" in text
    assert "do sit closer together for their size, as the KL term predicts" in text
    assert "more often another digit" in text
    assert "less empty space" in text
    assert "**ae-2d** and **vae-2d** separate the digits better than that" in text
    assert "against the usual story" not in text


def test_story_does_not_claim_what_the_numbers_contradict(overlap_page) -> None:
    ae = _measured(overlap_page, "ae-2d", "ae", knn=0.70, ratio=0.50, coverage=0.95, p99=2.0)
    vae = _measured(overlap_page, "vae-2d", "vae", knn=0.80, ratio=0.90, coverage=0.60, p99=3.0)
    pca = _measured(overlap_page, "pca-2d", "pca", knn=0.75, ratio=0.27, coverage=0.87, p99=9.0)
    text = overlap_page.story(vae, ae, pca)  # sides swapped: the roles come from the kinds, not the sides
    assert "here the VAE's codes are not the more compact ones" in text
    assert "against the usual story" in text and "as the KL term predicts" not in text
    assert "even so, the VAE's neighbours agree more often" in text
    assert "here it is the AE's picture that has fewer holes" in text
    assert "**vae-2d** separates the digits better than that, **ae-2d** does not" in text

    # Differences within the tolerances are called what they are.
    same_vae = _measured(overlap_page, "vae-2d", "vae", knn=0.705, ratio=0.51, coverage=0.94, p99=3.0)
    text = overlap_page.story(ae, same_vae, None)
    assert "about the same" in text and "no real difference point by point" in text and "about as full" in text
