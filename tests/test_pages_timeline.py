"""The Training timeline page (AppTest, through the entry file) and the Train page's live map.

The player itself is JavaScript (tests/test_timeline_browser.py drives it in Chromium); here the component's
wrapper is replaced by a recorder of what the page hands it, and by a simulated click."""

from __future__ import annotations

import base64
import gzip
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from app import frontend
from app import timeline as player
from tests.conftest import REPO, open_dashboard, plane_titles
from vae.data import load_mnist
from vae.images import to_uint8_image
from vae.metrics import embed_images
from vae.plots.palette import DIGIT_COLORS
from vae.store import load_model, load_timeline
from vae.training.timeline import plane_range, stratified_sample, view_of_frames

SHIPPED = REPO / "models"


def shipped_with_timelines(*names: str) -> None:
    missing = [
        n for n in names if not (SHIPPED / n / "model.json").is_file() or not list((SHIPPED / n).glob("timeline-*.npz"))
    ]
    if missing:
        pytest.skip(f"shipped models without a timeline: {missing} (run `make models`)")


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the shipped models (some tests damage or add files)."""
    if not (REPO / "data" / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file():
        pytest.skip("MNIST not fetched: run `python -m vae.data fetch`")
    shipped_with_timelines("ae-2d", "vae-2d")
    copy = tmp_path / "models"
    shutil.copytree(SHIPPED, copy, ignore=shutil.ignore_patterns(".lock"))
    monkeypatch.setenv("VAE_MODELS_DIR", str(copy))
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    return copy


class FakePlayer:
    """Stands in for ``app.timeline.show``: keeps every ``data`` the page hands the player, and answers each
    run with ``click`` (what the page's ``setTriggerValue("pin", ...)`` sends; None: no click)."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.click = None

    def __call__(self, key: str, data: dict):
        assert key == "timeline"
        self.calls.append(data)
        return self.click


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> FakePlayer:
    fake = FakePlayer()
    monkeypatch.setattr(player, "show", fake)
    return fake


def open_timeline(at=None):
    at = at or open_dashboard()
    at.switch_page("app_pages/timeline.py")
    at.run()
    assert not at.exception
    return at


def pack_of(data: dict) -> np.ndarray:
    """The float32 points the page published for the player, read back from the served file."""
    relative = data["pack"].split(f"/{frontend.STATIC_ROUTE}/", 1)[1]
    return np.frombuffer(gzip.decompress((frontend.STATIC_DIR / relative).read_bytes()), dtype=np.float32)


def map_titles(at) -> list[str]:
    """The titles of the live maps on the Train page (its loss-curve charts have none)."""
    titles = [
        json.loads(chart.proto.spec)["layout"].get("title", {}).get("text", "") for chart in at.get("plotly_chart")
    ]
    return [t for t in titles if t.startswith("batch ")]


def pixels(drawing: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(drawing["pixels"]), dtype=np.uint8).reshape(28, 28)


def test_both_models_play_side_by_side_on_the_final_frames_axes(models, shown) -> None:
    at = open_timeline()
    assert at.title[0].value == "Training timeline" and not at.warning and not at.info
    data = shown.calls[-1]
    left, right = data["sides"]
    assert (left["title"], right["title"]) == ("ae-2d (AE)", "vae-2d (VAE)")
    stored = {side["side"]: load_timeline(models / name) for side, name in ((left, "ae-2d"), (right, "vae-2d"))}
    for side in (left, right):
        timeline = stored[side["side"]]
        assert side["frames"] == timeline.frames >= 10 and side["steps"] == timeline.steps.tolist()
        # The same 2,000 images (200 per digit) on both sides, in the same colours.
        assert side["labels"] == left["labels"] and np.bincount(side["labels"]).tolist() == [200] * 10
        # Fixed axes: the final frame's range, which holds every final point.
        final = timeline.codes[-1]
        assert (tuple(side["xRange"]), tuple(side["yRange"])) == plane_range(final)
        assert side["prior"] == (side["side"] == "right")  # the N(0, I) circles on the 2-D VAE only
        assert len(side["metrics"]["knn"]) == len(side["losses"]["test"]["loss"]) == timeline.frames
        # Learning shows: the classes separate and the test loss falls from the first frame to the last.
        assert side["metrics"]["knn"][-1] > side["metrics"]["knn"][0] + 0.3
        assert side["losses"]["test"]["loss"][-1] < 0.5 * side["losses"]["test"]["loss"][0]
        # The decoders kept at 0, 32, 256 and 2,048 batches, then the final one, each draw at the pin.
        assert [d["step"] for d in side["drawings"]] == [0, 32, 256, 2048, timeline.steps[-1]]
    assert right["losses"]["test"]["kl"][-1] > 0 and "kl" not in left["losses"]["test"]
    # One slider over both: the union of their steps (the same schedule here).
    assert data["steps"] == left["steps"] and data["batchesPerEpoch"] == 469
    # The published pack holds every frame of both, bit for bit what the store has (a 2-D latent is shown as is).
    pack = pack_of(data)
    assert pack.size == sum(s["frames"] * s["points"] * 2 for s in (left, right))
    for side in (left, right):
        codes = stored[side["side"]].codes
        assert np.array_equal(pack[side["offset"] : side["offset"] + codes.size].reshape(codes.shape), codes)
    assert data["colors"] == list(DIGIT_COLORS)  # the palette of every other plot, from Python
    assert data["classNames"] == [str(d) for d in range(10)]
    module = data["modules"]["player"].split(f"/{frontend.STATIC_ROUTE}/", 1)[1]
    assert (frontend.STATIC_DIR / module).is_file()  # the player is a module the app serves, at this release's URL
    assert any("frames over 30 epochs" in c.value and "of training" in c.value for c in at.caption)
    # Its seconds and its kNN-5 say what they count: not the Train page's clock, not Home's kNN-5.
    assert any("s of training passes" in c.value and "test-set scoring" in c.value for c in at.caption)
    assert data["metricLabels"]["knn"] == "kNN-5 leave-one-out"
    reading = "\n".join(m.value for m in at.markdown)
    assert "kNN-5 leave-one-out: the share of the timeline's 2,000 recorded test images" in reading
    assert "Home's kNN-5 fits the vote on the 60,000 training codes" in reading


def test_the_default_pin_is_where_the_first_recorded_image_ends_up(models, shown) -> None:
    open_timeline()
    left = shown.calls[-1]["sides"][0]
    timeline = load_timeline(models / "ae-2d")
    _, labels = load_mnist("test", REPO / "data")
    assert np.array_equal(timeline.image_index, stratified_sample(labels, 2000))  # the documented set
    first = int(timeline.image_index[0])
    assert (left["pin"]["x"], left["pin"]["y"]) == pytest.approx(tuple(timeline.codes[-1, 0].tolist()))
    assert f"test image #{first}" in left["pin"]["label"] and not left["pin"]["approximate"]
    model, _ = load_model(models / "ae-2d")
    with torch.no_grad():  # the final drawing there is that image's reconstruction by the final model
        own = model.decode(torch.from_numpy(timeline.codes[-1, :1]))[0, 0].numpy()
    assert np.array_equal(pixels(left["drawings"][-1]), to_uint8_image(own))


def test_a_click_pins_a_point_and_every_kept_decoder_draws_there(models, shown) -> None:
    at = open_timeline()
    before = shown.calls[-1]["sides"][1]["drawings"]
    shown.click = {"side": "right", "x": 0.5, "y": -1.25}  # what setTriggerValue("pin", ...) sends
    at.run()
    assert not at.exception
    right = shown.calls[-1]["sides"][1]
    assert (right["pin"]["x"], right["pin"]["y"]) == (0.5, -1.25) and "you pinned" in right["pin"]["label"]
    assert shown.calls[-1]["sides"][0]["pin"] == shown.calls[0]["sides"][0]["pin"]  # the other side keeps its own pin
    assert [d["frame"] for d in right["drawings"]] == [d["frame"] for d in before]
    assert any(not np.array_equal(pixels(a), pixels(b)) for a, b in zip(before, right["drawings"]))
    # The final drawing is exactly what the model decodes there; the first, what the untrained decoder drew.
    model, _ = load_model(models / "vae-2d")
    with torch.no_grad():
        final = model.decode(torch.tensor([[0.5, -1.25]]))[0, 0].numpy()
    assert np.array_equal(pixels(right["drawings"][-1]), to_uint8_image(final))
    assert pixels(right["drawings"][0]).std() < pixels(right["drawings"][-1]).std()  # flat grey, then a digit
    runs = len(shown.calls)
    at.run()  # the same trigger seen again (a rerun for another reason) is not a new click
    assert len(shown.calls) == runs + 1 and shown.calls[-1]["sides"][1]["pin"] == right["pin"]


@pytest.mark.parametrize(
    "click", [{"side": "middle", "x": 1, "y": 1}, {"side": "left", "x": "nan", "y": 0}, {"side": "left"}, "not a dict"]
)
def test_a_malformed_click_changes_nothing(models, shown, click) -> None:
    at = open_timeline()
    pins = [side["pin"] for side in shown.calls[-1]["sides"]]
    shown.click = click
    at.run()
    assert not at.exception and [side["pin"] for side in shown.calls[-1]["sides"]] == pins


def test_a_16d_pair_is_seen_through_the_final_frames_pca_view(models, shown) -> None:
    shipped_with_timelines("ae-16d", "vae-16d")
    at = open_dashboard()
    at.sidebar.selectbox(key="left_model").set_value("ae-16d")
    at.sidebar.selectbox(key="right_model").set_value("vae-16d")
    at = open_timeline(at)
    left, right = shown.calls[-1]["sides"]
    assert left["title"] == "ae-16d (AE) · PCA view of 16-D (the final frame's)"
    assert left["axisLabels"][0].startswith("PC1") and not right["prior"]
    # The default pin is an image's own 16-D code; a click's is the PCA plane's inverse, one of many codes.
    assert not left["pin"]["approximate"] and "no earlier decoder was kept" in left["decodersNote"]
    assert len(left["drawings"]) == 1  # the final decoder only: make models keeps none for the 16-D pair
    timeline = load_timeline(models / "ae-16d")
    view, points = view_of_frames(timeline.codes)
    pack = pack_of(shown.calls[-1])
    shown_points = pack[left["offset"] : left["offset"] + points.size].reshape(points.shape)
    np.testing.assert_allclose(shown_points[-1], view.embedding_, atol=1e-5)  # the final frame's own PCA...
    np.testing.assert_allclose(shown_points[0], view.transform(timeline.codes[0]), atol=1e-5)  # ...on frame 0 too
    model, _ = load_model(models / "ae-16d")
    with torch.no_grad():
        own = model.decode(torch.from_numpy(timeline.codes[-1, :1]))[0, 0].numpy()  # test image's reconstruction
    assert np.array_equal(pixels(left["drawings"][-1]), to_uint8_image(own))
    shown.click = {"side": "left", "x": 1.0, "y": -2.0}
    at.run()
    left = shown.calls[-1]["sides"][0]
    assert left["pin"]["approximate"]
    with torch.no_grad():
        plane = model.decode(torch.from_numpy(view.inverse_transform(np.array([[1.0, -2.0]], dtype=np.float32))))
    assert np.array_equal(pixels(left["drawings"][-1]), to_uint8_image(plane[0, 0].numpy()))


def test_models_without_a_timeline_say_so_and_how_to_get_one(models, shown) -> None:
    at = open_dashboard()
    at.sidebar.selectbox(key="left_model").set_value("ae-2d-conv")
    at.sidebar.selectbox(key="right_model").set_value("vae-2d-conv")
    open_timeline(at)
    notes = [i.value for i in at.info]
    assert len(notes) == 2 and all("No timeline recorded" in n and "Train" in n for n in notes)
    assert shown.calls == []  # no player without a timeline


def test_a_damaged_timeline_is_reported_and_the_other_side_still_plays(models, shown) -> None:
    path = next((models / "vae-2d").glob("timeline-*.npz"))
    path.write_bytes(path.read_bytes()[:1000])  # truncated
    at = open_timeline()
    assert any("vae-2d" in w.value and "does not match the SHA-256" in w.value for w in at.warning)
    assert [s["title"] for s in shown.calls[-1]["sides"]] == ["ae-2d (AE)"]
    load_model(models / "vae-2d")  # the model itself still loads
    at.switch_page("app_pages/explorer.py")
    at.run()
    assert not at.exception and plane_titles(at) == ["ae-2d (AE)", "vae-2d (VAE)"]


# ---------------------------------------------------------------------------------------------
# The Train page: each model's map beside its curves, while it trains


def test_the_train_page_map_follows_the_training_and_the_save_keeps_the_timeline(models, tmp_path) -> None:
    at = open_dashboard()
    at.switch_page("app_pages/train.py")
    at.run()
    for kind in ("ae", "vae"):
        at.text_input(key=f"{kind}_hidden").set_value("32")
        at.number_input(key=f"{kind}_epochs").set_value(3)
        at.number_input(key=f"{kind}_batch").set_value(1024)  # 59 batches per epoch
    at.run()
    at.button[0].click()  # Train both
    at.run()
    assert not at.exception
    ae_job, vae_job = at.session_state["ae_job"], at.session_state["vae_job"]
    # While the AE trains: a map of its latest frame beside its curves, titled by that frame.
    deadline = time.monotonic() + 120
    while ae_job.snapshot().frame is None or ae_job.snapshot().frame.step < 2:
        assert time.monotonic() < deadline, "no frame recorded"
        time.sleep(0.05)
    at.run()
    first_titles = map_titles(at)
    assert first_titles and first_titles[0].startswith("batch ")
    assert any("2,000 test images, coloured by class" in c.value for c in at.caption)
    assert all(job.wait(300) for job in (ae_job, vae_job))
    at.run()
    assert not at.exception
    titles = map_titles(at)
    assert titles == ["batch 177 · epoch 3.00"] * 2 and titles[0] != first_titles[0]
    snapshot = vae_job.snapshot()
    assert snapshot.frame_labels.tolist() == vae_job.test_labels.numpy()[snapshot.frame.image_index].tolist()
    # Saved with its timeline; the last frame is the saved model's codes of those images.
    at.text_input(key=f"vae_name_{vae_job.job_id}").set_value("timeline-in-test")
    [b for b in at.button if b.label == "Save to the model store"][1].click()
    at.run()
    assert not at.exception and any("Saved as 'timeline-in-test'" in s.value for s in at.success)
    model, stored = load_model(models / "timeline-in-test")
    timeline = load_timeline(models / "timeline-in-test")
    assert stored.has_timeline and timeline.frames == len(timeline.steps) >= 10 and timeline.steps[-1] == 177
    test_images = vae_job.test_images
    final = embed_images(model, test_images[torch.from_numpy(timeline.image_index.copy())]).numpy()
    np.testing.assert_allclose(timeline.codes[-1], final, atol=1e-6)
