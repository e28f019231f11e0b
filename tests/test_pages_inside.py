"""The Inside page through the entry file (AppTest), on the shipped pair: dimensions, traversals, samples."""

from __future__ import annotations

import pytest

from tests.conftest import REAL_RAW, REPO, image_captions, open_dashboard
from vae.metrics import latent_dimensions
from vae.store import load_model


@pytest.fixture
def page(tmp_path, monkeypatch):
    if not (REAL_RAW / "t10k-images-idx3-ubyte").is_file():
        pytest.skip("MNIST not fetched")
    monkeypatch.setenv("VAE_MODELS_DIR", str(REPO / "models"))
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    return open_dashboard("app_pages/inside.py")


def test_dimensions_traversals_and_samples_of_both_models(page) -> None:
    at = page
    assert [tab.label for tab in at.tabs] == ["Dimensions", "Samples"]
    assert [h.value for h in at.subheader][:2] == ["ae-2d (AE)", "vae-2d (VAE)"]
    # The active-unit counts are the library's own, measured on the test images.
    from vae.data import load_dataset

    images, _ = load_dataset("mnist", "test")
    expected = []
    for name in ("ae-2d", "vae-2d"):
        model, _ = load_model(REPO / "models" / name)
        table = latent_dimensions(model, images)
        expected.append(f"{int(table['active'].sum())} of 2")
    metrics = {m.label: [] for m in at.metric}
    for m in at.metric:
        metrics[m.label].append(m.value)
    assert metrics["Active dimensions"] == expected
    captions = image_captions(at)
    assert captions.count("z0") == 2 and captions.count("z1") == 2  # one traversal row per dimension per model
    assert sum("(draw 1)" in c for c in captions) == 2
    assert "prior N(0, I)" in " ".join(captions) and "fitted to its training codes" in " ".join(captions)
    confident = metrics["Confident samples (the judge's)"]
    assert len(confident) == 2 and all(v.endswith("%") for v in confident)


def test_resample_draws_new_codes_for_that_model_only(page) -> None:
    at = page
    at.button(key="inside_resample_right").click().run()
    assert not at.exception
    captions = [c for c in image_captions(at) if "decodes of random codes" in c]
    assert [c.endswith("(draw 1)") for c in captions] == [True, False]
    assert captions[1].endswith("(draw 2)")
