"""Imported ONNX models on every page (AppTest through the entry file), and the Train page's upload.

The store holds an AE and a VAE trained briefly on real digits, exported with ``vae.onnx.export`` and imported back
(``onnx-ae``, ``onnx-vae``), a Keras-like pair built with onnx.helper (``keras-vae``: NHWC input, three
encoder outputs, logits), and a PCA baseline. Nothing here is a torch model except the PCA.
"""

from __future__ import annotations

import io
import json
import random
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import REAL_RAW, REPO, SEED, image_captions, open_dashboard, planes_data
from tests.onnx_graphs import mlp_decoder, mlp_encoder
from vae.store import load_model

DATA = REPO / "data"
pytestmark = [
    pytest.mark.skipif(
        not all((REAL_RAW / name).is_file() for name in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte")),
        reason="MNIST not fetched: run `python -m vae.data fetch`",
    ),
    pytest.mark.usefixtures("one_torch_thread"),
]


@pytest.fixture(scope="module")
def onnx_store(tmp_path_factory) -> tuple[Path, Path]:
    """(store of imported models, folder of the exported pairs they came from)."""
    from vae.data import load_mnist
    from vae.models import ModelConfig, fit_pca, to_float_images
    from vae.onnx.export import export_pair
    from vae.onnx.importer import import_onnx
    from vae.store import save_model
    from vae.training.trainer import TrainSettings, train

    images, _ = load_mnist("train", DATA)
    test_images, _ = load_mnist("test", DATA)
    store, exports = tmp_path_factory.mktemp("models"), tmp_path_factory.mktemp("exports")
    for name, config in (
        ("onnx-ae", ModelConfig(kind="ae", latent_dim=2, hidden=(64,))),
        ("onnx-vae", ModelConfig(kind="vae", latent_dim=2, hidden=(64,))),
    ):
        trained = train(config, images[:1000], None, TrainSettings(epochs=2, batch_size=50, seed=0), device="cpu")
        pair = export_pair(trained.model, exports / name, images=to_float_images(test_images[:256]))
        import_onnx(pair.encoder, pair.decoder, store / name, data_dir=DATA)
    keras_encoder = mlp_encoder(input_dims=(None, 28, 28, 1), outputs=("z_mean", "z_log_var"), sample=True)
    keras_decoder = mlp_decoder(output_dims=(28, 28, 1), final=None)
    import_onnx(
        keras_encoder.model.SerializeToString(),
        keras_decoder.model.SerializeToString(),
        store / "keras-vae",
        data_dir=DATA,
        logits=True,
    )
    save_model(fit_pca(images[:1000], 2), store / "pca-2d")
    return store, exports


@pytest.fixture
def app(onnx_store, tmp_path, monkeypatch):
    store, _ = onnx_store
    monkeypatch.setenv("VAE_MODELS_DIR", str(store))
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    at = open_dashboard(timeout=120)
    at.session_state["left_model"] = "onnx-ae"
    at.session_state["right_model"] = "onnx-vae"
    return at


def text(at) -> str:
    kinds = ("title", "subheader", "markdown", "caption", "success", "error")
    parts = [e.value for kind in kinds for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


def page(at, path: str):
    at.switch_page(path).run()
    assert not at.exception
    return at


def test_home_lists_imported_models_with_their_test_numbers(app) -> None:
    at = page(app, "app_pages/home.py")
    assert "AE onnx 2-D (imported)" in text(at) and "VAE onnx 2-D (imported)" in text(at)
    values = [m.value for m in at.metric]
    # Test loss, MSE, kNN-5 and the judge's confident share of samples, of both and of the PCA baseline.
    assert len(values) == 12
    assert "nan" not in values[:8]  # measured at import (the baseline here was saved without metrics)
    picker = at.sidebar.selectbox(key="left_model")
    assert {"onnx-ae", "keras-vae"} <= set(picker.options)  # the names, whole
    assert "**onnx-ae**: AE onnx 2-D (imported)" in picker.help and "**keras-vae**: VAE onnx 2-D" in picker.help


def test_the_page_runs_the_imported_models_own_standard_graphs(app, onnx_store) -> None:
    import gzip

    store, _ = onnx_store
    at = page(app, "app_pages/explorer.py")
    data = planes_data(at)
    assert [p["title"] for p in data["planes"]] == ["onnx-ae (AE)", "onnx-vae (VAE)"]
    for plane, name in zip(data["planes"], ("onnx-ae", "onnx-vae")):
        _, stored = load_model(store / name)
        for part in ("decoder", "encoder"):
            served = REPO / "static" / plane[part].split("/app/static/", 1)[1]
            standard = stored.path / stored.files[f"standard_{part}"]["file"]
            assert gzip.decompress(served.read_bytes()) == standard.read_bytes()  # no export: the import's graphs


def test_the_explorer_draws_decodes_and_reconstructs_with_imported_models(app) -> None:
    at = page(app, "app_pages/explorer.py")
    at.sidebar.toggle(key="ex_browser").set_value(False).run()  # the server's planes
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert titles == ["onnx-ae (AE)", "onnx-vae (VAE)"]
    at.session_state["ex_decoded"] = {"left": (0.5, -0.5), "right": (1.0, 1.0)}
    at.session_state["ex_selected"] = 7
    at.run()
    assert not at.exception
    captions = image_captions(at)
    for caption in (
        "onnx-ae decodes (0.50, -0.50)",
        "onnx-vae decodes (1.00, 1.00)",
        "onnx-ae reconstruction",
        "onnx-vae reconstruction",
        "image #7",
    ):
        assert caption in captions
    # The 2-D VAE's prior contours and the clicked image's posterior ellipse, from the imported encoder.
    right = json.loads(at.get("plotly_chart")[1].proto.spec)
    assert any("prior" in str(trace.get("name", "")).lower() for trace in right["data"])


def test_class_overlap_measures_imported_models_and_a_keras_layout(app) -> None:
    app.session_state["right_model"] = "keras-vae"
    at = page(app, "app_pages/overlap.py")
    (table,) = [d.value for d in at.dataframe if d.value.index.name == "metric"]
    assert list(table.columns) == ["onnx-ae", "keras-vae", "pca-2d", "Δ onnx-ae − keras-vae"]
    assert np.isfinite(table[["onnx-ae", "keras-vae", "pca-2d"]].to_numpy()).all()
    assert 0.1 < table.loc["kNN-5 leave-one-out, test codes (latent)", "onnx-ae"] <= 1  # the trained pair beats chance
    assert "**keras-vae**" in text(at)


def test_exports_offer_the_onnx_pair_of_every_model_and_it_imports_back(app, onnx_store, tmp_path) -> None:
    at = page(app, "app_pages/exports.py")
    labels = [b.label for b in at.get("download_button")]
    for name in ("onnx-ae", "onnx-vae", "pca-2d"):
        assert f"Download {name} ONNX pair (zip)" in labels and f"Download {name} model (zip)" in labels
    # The bytes behind the ONNX button, built by the same call the button makes on click.
    from app import analysis
    from vae.data import load_mnist
    from vae.onnx.importer import import_onnx
    from vae.store import load_model

    store, _ = onnx_store
    model, stored = load_model(store / "onnx-vae")
    test_images, _ = load_mnist("test", DATA)
    data = analysis.onnx_zip(model, stored.name, stored.weights_sha256, test_images)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == [
            "onnx-vae-onnx/decoder.onnx",
            "onnx-vae-onnx/encoder.onnx",
            "onnx-vae-onnx/onnx.json",
        ]
        archive.extractall(tmp_path)
    again, _ = import_onnx(
        tmp_path / "onnx-vae-onnx" / "encoder.onnx",
        tmp_path / "onnx-vae-onnx" / "decoder.onnx",
        tmp_path / "models" / "again",
        data_dir=DATA,
    )
    x, z = torch.rand(4, 1, 28, 28), torch.randn(4, 2)
    assert float((again.embed(x) - model.embed(x)).abs().max()) <= 1e-5
    assert float((again.decode(z) - model.decode(z)).abs().max()) <= 1e-5


def digit_png() -> bytes:
    from vae.data import load_mnist

    images, _ = load_mnist("test", DATA)
    buffer = io.BytesIO()
    Image.fromarray(images[3].numpy()).resize((112, 112)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_your_digit_lands_in_both_imported_planes(app) -> None:
    at = page(app, "app_pages/digit.py")
    at.sidebar.toggle(key="ex_browser").set_value(False).run()  # the server's planes
    uploader = at.file_uploader(key="digit_upload")
    assert uploader.proto.max_upload_size_mb == 5  # digit images keep their small cap
    uploader.set_value(("three.png", digit_png(), "image/png"))
    at.run()
    assert not at.exception
    captions = [c.split(" · ")[0] for c in image_captions(at)]
    assert "onnx-ae redraws it" in captions and "onnx-vae redraws it" in captions
    assert len(at.get("plotly_chart")) == 2


def import_upload(at, encoder: bytes, decoder: bytes, name: str, logits: bool = False):
    at.file_uploader(key="import_encoder").set_value(("encoder.onnx", encoder, "application/octet-stream"))
    at.file_uploader(key="import_decoder").set_value(("decoder.onnx", decoder, "application/octet-stream"))
    at.text_input(key="import_name").set_value(name)
    at.checkbox(key="import_logits").set_value(logits)
    next(b for b in at.button if b.label == "Import").click()
    at.run()
    assert not at.exception
    return at


def test_the_train_page_imports_an_uploaded_pair(app, onnx_store, tmp_path, monkeypatch) -> None:
    store, exports = onnx_store
    at = page(app, "app_pages/train.py")
    assert at.file_uploader(key="import_encoder").proto.max_upload_size_mb == 200
    assert at.file_uploader(key="import_decoder").proto.max_upload_size_mb == 200
    encoder = (exports / "onnx-ae" / "encoder.onnx").read_bytes()
    decoder = (exports / "onnx-ae" / "decoder.onnx").read_bytes()
    try:
        import_upload(at, encoder, decoder, "uploaded-ae")
        assert any("imported uploaded-ae (AE onnx 2-D (imported))" in s.value for s in at.success)
        from vae.store import load_model

        uploaded, stored = load_model(store / "uploaded-ae")
        original, _ = load_model(store / "onnx-ae")
        x = torch.rand(3, 1, 28, 28)
        assert float((uploaded.embed(x) - original.embed(x)).abs().max()) <= 1e-5
        assert stored.extra["source"] == "dashboard"
        assert stored.extra["onnx"]["files"]["encoder"]["name"] == "encoder.onnx"
        # The sidebar, drawn before the import, offers it in the same press (the page reran the whole app).
        assert "uploaded-ae" in at.sidebar.selectbox(key="left_model").options
        assert "**uploaded-ae**: AE onnx 2-D (imported)" in at.sidebar.selectbox(key="left_model").help
    finally:
        import shutil

        shutil.rmtree(store / "uploaded-ae", ignore_errors=True)  # the store is shared by the module's tests


def test_the_train_page_refuses_a_bad_upload_and_keeps_the_store_as_it_was(app, onnx_store) -> None:
    store, exports = onnx_store
    before = sorted(p.name for p in store.iterdir())
    at = page(app, "app_pages/train.py")
    junk = random.Random(SEED).randbytes(2048)
    import_upload(at, junk, (exports / "onnx-ae" / "decoder.onnx").read_bytes(), "junk")
    assert any(e.value.startswith("Not imported: the encoder is not an ONNX model") for e in at.error)
    # A linear decoder (values outside [0, 1]) with the logits box left unticked: the reason names the fix.
    import_upload(at, mlp_encoder().model.SerializeToString(), mlp_decoder(final=None).model.SerializeToString(), "raw")
    assert any("outside [0, 1]" in e.value and "logits option" in e.value for e in at.error)
    assert sorted(p.name for p in store.iterdir()) == before


def test_the_train_page_refuses_every_hostile_upload_and_the_dashboard_carries_on(app, onnx_store) -> None:
    """Each graph of the hostile catalogue, uploaded: refused with its reason, the store as it was, this
    process (the dashboard's own) never near the fence's limit, and a good upload right after imports."""
    import re
    import resource
    import shutil

    from tests.onnx_graphs import HOSTILE, hostile_bytes
    from vae.onnx.fence import DEFAULT_MEMORY_LIMIT, peak_bytes

    store, exports = onnx_store
    before = sorted(p.name for p in store.iterdir())
    at = page(app, "app_pages/train.py")
    encoder = mlp_encoder().model.SerializeToString()
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    for name, (_, pattern) in HOSTILE.items():
        import_upload(at, encoder, hostile_bytes(name), "hostile")
        errors = [e.value for e in at.error]
        assert any(e.startswith("Not imported: ") and re.search(pattern, e) for e in errors), (name, errors)
        assert sorted(p.name for p in store.iterdir()) == before, name
    # ru_maxrss never falls: a hostile graph run in this process would have raised it by gigabytes.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - grown < 2**28
    assert peak_bytes() < DEFAULT_MEMORY_LIMIT + 2**30
    try:
        good = (exports / "onnx-ae" / "encoder.onnx").read_bytes(), (exports / "onnx-ae" / "decoder.onnx").read_bytes()
        import_upload(at, *good, "after-hostile")
        assert any("imported after-hostile" in s.value for s in at.success)
    finally:
        shutil.rmtree(store / "after-hostile", ignore_errors=True)
