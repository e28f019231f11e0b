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


def component_data(at, mode: str) -> dict | None:
    """The data the in-page latent_inside component of ``mode`` was given, or None."""
    import json

    for element in at.main:
        if getattr(element, "type", None) == "bidi_component" and element.proto.component_name == "latent_inside":
            data = json.loads(element.proto.json)
            if data["mode"] == mode:
                return data
    return None


def test_the_page_gets_what_its_traversals_sliders_and_samples_need(page) -> None:
    import numpy as np

    from vae.data import load_dataset
    from vae.metrics import embed_images

    at = page
    dims, samples = component_data(at, "dimensions"), component_data(at, "samples")
    assert dims is not None and samples is not None
    assert [s["name"] for s in dims["sides"]] == ["ae-2d", "vae-2d"]
    assert "z0" not in image_captions(at)  # the server draws no traversal rows when the page does
    images, _ = load_dataset("mnist", "test")
    train, _ = load_dataset("mnist", "train")
    for side in dims["sides"]:
        model, _ = load_model(REPO / "models" / side["name"])
        codes = embed_images(model, images).numpy().astype(np.float64)
        np.testing.assert_allclose(side["low"], np.percentile(codes, 1, axis=0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(side["high"], np.percentile(codes, 99, axis=0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(side["mean"], codes.mean(0), rtol=1e-5, atol=1e-6)
        assert sorted(side["order"]) == [0, 1] and side["dim"] == 2 and side["count"] == 10_000
        # The figures are per dimension, in dimension order; the order shows the largest first.
        np.testing.assert_allclose(side["variance"], codes.var(0), rtol=1e-4)
        figure = side["kl"] if side["kind"] == "vae" else side["variance"]
        assert figure[side["order"][0]] >= figure[side["order"][1]]
        if side["kind"] == "vae":
            assert side["sampler"] == {"kind": "prior"}
        else:  # the Gaussian of the training codes: its mean, and L with L L^T their covariance
            fit = embed_images(model, train).numpy().astype(np.float64)
            chol = np.array(side["sampler"]["cholesky"])
            np.testing.assert_allclose(side["sampler"]["mean"], fit.mean(0), rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(chol @ chol.T, np.cov(fit.T), rtol=1e-4)
            assert np.allclose(chol, np.tril(chol))


def test_dimensions_traversals_and_samples_of_both_models(page) -> None:
    at = page
    at.session_state["ex_browser"] = False  # the server draws traversals and samples
    at.run()
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
    at.session_state["ex_browser"] = False
    at.run()
    at.button(key="inside_resample_right").click().run()
    assert not at.exception
    captions = [c for c in image_captions(at) if "decodes of random codes" in c]
    assert [c.endswith("(draw 1)") for c in captions] == [True, False]
    assert captions[1].endswith("(draw 2)")
