"""AppTest for the Home, Latent explorer and Train pages, on the shipped models, through the entry file."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from tests.conftest import REPO, chart_titles, image_by_caption, image_captions, open_dashboard, plane_titles
from vae.images import to_uint8_image, upscale
from vae.metrics import embed_images

SHIPPED = REPO / "models"


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """The dashboard over a private copy of the shipped models (the Train test saves into it)."""
    if not (REPO / "data" / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file():
        pytest.skip("MNIST not fetched: run `python -m vae.data fetch`")
    models = tmp_path / "models"
    shutil.copytree(SHIPPED, models)
    monkeypatch.setenv("VAE_MODELS_DIR", str(models))
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    return open_dashboard()


def page_text(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [t.value for t in at.title]
    return "\n".join(str(p) for p in parts)


def test_home_shows_the_default_pair_and_the_data(app: AppTest) -> None:
    assert app.title[0].value == "What does an auto-encoder learn?"
    assert app.sidebar.selectbox(key="left_model").value == "ae-2d"
    assert app.sidebar.selectbox(key="right_model").value == "vae-2d"
    # The narrow sidebar shows each name whole; the description wraps under the box and is in the tooltip.
    assert "vae-2d" in app.sidebar.selectbox(key="right_model").options
    assert "VAE dense 784-512-256-2" in [c.value for c in app.sidebar.caption]
    assert "**vae-2d**: VAE dense 784-512-256-2" in app.sidebar.selectbox(key="right_model").help
    assert any("MNIST ready" in s.value for s in app.success)
    knn = [m for m in app.metric if m.label.startswith("kNN-5")]
    assert len(knn) == 3  # left, right and the PCA baseline
    # Named by what it measures, the other pages' kNN-5 named in the tooltip (they count other things).
    assert all(m.label == "kNN-5, train → test" for m in knn)
    assert all("fitted on the 60,000 training codes" in m.help and "leave-one-out" in m.help for m in knn)
    assert "ae-2d" in page_text(app) and "pca-2d" in page_text(app)


def test_home_shows_each_models_confident_sample_share_and_what_the_judge_is(app: AppTest, tmp_path: Path) -> None:
    from app import cache
    from vae.store import read_metadata

    shown = [m for m in app.metric if m.label == "confident samples"]
    assert len(shown) == 3  # left, right and the PCA baseline
    for metric, name in zip(shown, ("ae-2d", "vae-2d", "pca-2d")):
        samples = read_metadata(SHIPPED / name).metrics["samples"]
        assert metric.value == f"{samples['confident_share']:.1%}", name
        assert f"{samples['reconstructions']['confident_share']:.1%} confident" in metric.help  # the ceiling
        assert f"entropy is {samples['entropy']:.2f} nats" in metric.help
        assert "The judge is a small convolutional classifier" in metric.help and "99.3% on MNIST" in metric.help
        assert "It only measures decoded images: no model trains on it." in metric.help
    assert shown[0].value != shown[2].value  # the AE's samples and PCA's are not judged alike (75 % against 5 %)
    # A model saved before the judge existed: a dash, and the tooltip says why and how to measure it.
    folder = tmp_path / "models" / "vae-2d"
    meta = json.loads((folder / "model.json").read_text())
    del meta["metrics"]["samples"]
    (folder / "model.json").write_text(json.dumps(meta))
    cache.model_list.clear()
    app.run()
    assert not app.exception
    shown = [m for m in app.metric if m.label == "confident samples"]
    assert shown[1].value == "–" and "`make samples` measures" in shown[1].help
    assert shown[0].value == f"{read_metadata(SHIPPED / 'ae-2d').metrics['samples']['confident_share']:.1%}"


def test_choosing_another_pair_changes_home(app: AppTest) -> None:
    before = [m.value for m in app.metric]
    app.sidebar.selectbox(key="left_model").set_value("ae-16d")
    app.sidebar.selectbox(key="right_model").set_value("vae-16d")
    app.run()
    assert not app.exception
    assert "vae-16d" in page_text(app) and "pca-16d" in page_text(app)
    assert [m.value for m in app.metric] != before


def explorer(app: AppTest) -> AppTest:
    """The explorer on the server's planes (Plotly, a click per decode); tests/test_web_planes.py has the page's."""
    app.switch_page("app_pages/explorer.py")
    app.run()
    assert not app.exception
    app.sidebar.toggle(key="ex_browser").set_value(False).run()
    assert not app.exception
    return app


def test_explorer_draws_both_planes_of_the_same_images(app: AppTest) -> None:
    import json

    at = explorer(app)
    charts = at.get("plotly_chart")
    assert len(charts) == 2
    assert chart_titles(at) == ["ae-2d (AE)", "vae-2d (VAE)"]
    for chart in charts:
        spec = json.loads(chart.proto.spec)
        names = [trace.get("name") for trace in spec["data"]]
        assert names[0] == "grid" and names[1:11] == [str(d) for d in range(10)]
    # The interpolation strips for both models are drawn from the start.
    assert sum("largest step / mean step" in c for c in image_captions(at)) == 2


def test_a_simulated_click_decodes_and_links_the_selection(app: AppTest) -> None:
    at = explorer(app)
    images_before = len(image_captions(at))
    at.session_state["ex_decoded"] = {"left": (0.5, -0.5), "right": (1.0, 1.0)}
    at.session_state["ex_selected"] = 7
    at.run()
    assert not at.exception
    captions = image_captions(at)
    assert "ae-2d decodes (0.50, -0.50)" in captions
    assert "vae-2d decodes (1.00, 1.00)" in captions
    assert "image #7" in captions
    assert "ae-2d reconstruction" in captions and "vae-2d reconstruction" in captions
    assert len(captions) >= images_before + 5
    import json

    for chart in at.get("plotly_chart"):  # the selected image is ringed in both planes
        assert any(
            trace.get("name") == "#7" or "#7" in str(trace.get("text"))
            for trace in json.loads(chart.proto.spec)["data"]
        )


def decoded_there(name: str, view_name: str, x: float, y: float) -> np.ndarray:
    """What a click at (x, y) must show, from scratch: model.decode(view.inverse_transform(point)), 7x, uint8."""
    from vae.data import load_mnist
    from vae.projections import make_view
    from vae.store import load_model

    model, _ = load_model(SHIPPED / name)
    images, _ = load_mnist("test", REPO / "data")
    view = make_view(view_name).fit(embed_images(model, images).numpy())
    code = view.inverse_transform(np.array([[x, y]], dtype=np.float32))
    with torch.no_grad():
        image = model.decode(torch.from_numpy(code)).reshape(28, 28).numpy()
    return upscale(to_uint8_image(image), 7)


def test_a_click_shows_the_decoder_at_the_views_inverse_of_the_point(app: AppTest, shown_media) -> None:
    # Points off the diagonal, so x and y swapped would draw another digit.
    at = explorer(app)
    at.session_state["ex_decoded"] = {"left": (0.5, -1.5), "right": (1.25, -0.25)}
    at.run()
    assert not at.exception
    for name, (x, y) in (("ae-2d", (0.5, -1.5)), ("vae-2d", (1.25, -0.25))):
        shown = image_by_caption(at, shown_media, f"{name} decodes ({x:.2f}, {y:.2f})")
        expected = decoded_there(name, "identity", x, y)
        assert shown.shape == expected.shape == (196, 196)
        assert np.abs(shown.astype(int) - expected).max() <= 1, name
        assert np.abs(shown.astype(int) - decoded_there(name, "identity", y, x)).max() > 8  # it would show
    # A 16-D latent through the PCA view: the code is the view's inverse of the point.
    at.sidebar.selectbox(key="left_model").set_value("ae-16d").run()
    at.session_state["ex_decoded"] = {"left": (2.0, -1.0)}
    at.run()
    assert not at.exception
    shown = image_by_caption(at, shown_media, "ae-16d decodes (2.00, -1.00)")
    assert np.abs(shown.astype(int) - decoded_there("ae-16d", "pca", 2.0, -1.0)).max() <= 2


def test_projection_choice_changes_the_16d_planes(app: AppTest) -> None:
    app.sidebar.selectbox(key="left_model").set_value("ae-16d")
    app.sidebar.selectbox(key="right_model").set_value("vae-16d")
    at = explorer(app)
    assert chart_titles(at) == ["ae-16d (AE) · PCA view of 16-D", "vae-16d (VAE) · PCA view of 16-D"]
    at.selectbox(key="ex_view").set_value("identity")
    at.run()
    assert not at.exception
    assert chart_titles(at) == [
        "ae-16d (AE) · first two dims view of 16-D",
        "vae-16d (VAE) · first two dims view of 16-D",
    ]
    at.session_state["ex_decoded"] = {"left": (0.0, 0.0)}
    at.run()
    assert any("Approximate" in c.value for c in at.caption)


def test_interpolation_endpoints_change_the_strips(app: AppTest) -> None:
    at = explorer(app)
    before = [c for c in image_captions(at) if "largest step" in c]
    at.selectbox(key="ex_to").set_value("centroid of 7")
    at.run()
    after = [c for c in image_captions(at) if "largest step" in c]
    assert len(before) == len(after) == 2 and before != after


def train_page(app: AppTest) -> AppTest:
    app.switch_page("app_pages/train.py")
    app.run()
    assert not app.exception
    return app


def train_both(at: AppTest, hidden: str, batch: int) -> list:
    """Set both models to one small epoch, press "Train both"; returns the two jobs (ae, vae)."""
    for kind in ("ae", "vae"):
        at.text_input(key=f"{kind}_hidden").set_value(hidden)
        at.number_input(key=f"{kind}_epochs").set_value(1)
        at.number_input(key=f"{kind}_batch").set_value(batch)
    at.run()
    at.button[0].click()  # Train both
    at.run()
    assert not at.exception
    return [at.session_state["ae_job"], at.session_state["vae_job"]]


def test_train_page_refuses_bad_settings(app: AppTest) -> None:
    at = train_page(app)
    at.text_input(key="ae_hidden").set_value("400,abc")
    at.run()
    assert any("Not a valid setting" in e.value for e in at.error)
    assert at.button[0].disabled  # "Train both" stays disabled while a value is invalid


def test_train_page_trains_and_saves_a_pair(app: AppTest, tmp_path: Path) -> None:
    at = train_page(app)
    at.number_input(key="ae_class").set_value(10.0)  # the AE also gets the class-aware term, trained on labels
    jobs = train_both(at, hidden="32", batch=1024)
    assert all(job.wait(180) for job in jobs)
    assert [job.snapshot().status for job in jobs] == ["completed", "completed"]
    assert jobs[0].config.class_weight == 10.0 and jobs[1].config.class_weight == 0.0
    assert "class" in jobs[0].snapshot().history[-1]["test"] and "class" not in jobs[1].snapshot().history[-1]["test"]
    at.run()
    assert not at.exception
    assert sum("completed" in s.value for s in at.success) == 2
    # The clock says what it counts (the timeline's "s of training passes" counts the passes alone).
    bars = [p.proto.text for p in at.get("progress")]
    assert len(bars) == 2 and all("s on the clock (training, test scoring and recording)" in t for t in bars), bars
    at.text_input(key=f"vae_name_{jobs[1].job_id}").set_value("trained-in-test")  # applied on submit
    save_buttons = [b for b in at.button if b.label == "Save to the model store"]
    assert len(save_buttons) == 2
    save_buttons[1].click()
    at.run()
    assert not at.exception
    assert any("Saved as 'trained-in-test'" in s.value for s in at.success)
    # The sidebar, drawn before the save, lists the model in the same press (the page reran the whole app).
    assert "trained-in-test" in at.sidebar.selectbox(key="left_model").options
    at.run()  # what the fragment's redraw every second does: the message stays
    assert any("Saved as 'trained-in-test'" in s.value for s in at.success)
    for name, said in (
        ("trained-in-test", "A model named 'trained-in-test' exists"),
        ("../evil name", "invalid model name"),
    ):
        at.text_input(key=f"vae_name_{jobs[1].job_id}").set_value(name)
        [b for b in at.button if b.label == "Save to the model store"][1].click()
        at.run()
        at.run()  # a redraw later, still said
        assert not at.exception
        assert any(said in e.value and name in e.value for e in at.error), [e.value for e in at.error]
        assert not any("Saved as" in s.value for s in at.success)  # the newer message replaced it
    assert not (tmp_path / "evil name").exists() and not (tmp_path / "models" / "evil name").exists()
    from vae.store import load_model

    model, stored = load_model(tmp_path / "models" / "trained-in-test")
    assert stored.config.kind == "vae" and stored.config.hidden == (32,) and stored.dataset_name == "mnist"
    # Recorded as every other path records it: the files it was trained on, by their SHA-256.
    from vae.data import dataset_sha256

    assert stored.dataset["sha256"] == dataset_sha256(os.environ.get("VAE_DATA_DIR"), "mnist")
    assert {"test_loss", "knn5_accuracy", "samples"} <= set(stored.metrics) and len(stored.history) == 1


def test_a_deep_link_served_before_the_navigation_exists_gets_the_full_app(tmp_path, monkeypatch) -> None:
    """A deep link to /explorer on a fresh server gets the whole app: the frame, the pair and the page."""
    monkeypatch.setenv("VAE_MODELS_DIR", str(SHIPPED))
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    at = AppTest.from_file(str(REPO / "dashboard.py"), default_timeout=180)
    at.switch_page("app_pages/explorer.py")
    at.run()
    assert not at.exception
    assert [s.key for s in at.sidebar.selectbox][:3] == ["dataset", "left_model", "right_model"]
    assert plane_titles(at) == ["ae-2d (AE)", "vae-2d (VAE)"]


def test_a_save_that_the_disk_refuses_is_a_message(app: AppTest, monkeypatch) -> None:
    import errno

    import vae.files

    at = train_page(app)
    jobs = train_both(at, hidden="16", batch=2048)
    assert all(job.wait(180) for job in jobs)
    at.run()

    real_open = os.open

    def read_only(path, flags, *args, **kwargs):  # creating a file in a read-only folder (root ignores chmod)
        if flags & os.O_CREAT:
            raise PermissionError(errno.EROFS, "Read-only file system")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(vae.files.os, "open", read_only)
    at.text_input(key=f"ae_name_{jobs[0].job_id}").set_value("cannot-land")
    [b for b in at.button if b.label == "Save to the model store"][0].click()
    at.run()
    assert not at.exception
    assert any("Could not save" in e.value and "Read-only" in e.value for e in at.error)
    assert not (Path(os.environ["VAE_MODELS_DIR"]) / "cannot-land").exists()  # no half-made folder
