"""The session's last selection (app/selection.py): remembered, measured per plane, and offered on the Exports
page as CSV and PNG sheet (AppTest, on the shipped models)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.conftest import REPO, media_pixels, open_dashboard
from vae import selection as sel
from vae.data import load_mnist
from vae.metrics import embed_images
from vae.projections import make_view
from vae.store import load_model

SHIPPED = REPO / "models"
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not (REPO / "data" / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file():
        pytest.skip("MNIST not fetched: run `python -m vae.data fetch`")
    monkeypatch.setenv("VAE_MODELS_DIR", str(SHIPPED))
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))


def codes_of(name: str) -> tuple[object, np.ndarray]:
    model, _ = load_model(SHIPPED / name)
    images, _ = load_mnist("test", REPO / "data")
    return model, embed_images(model, images).numpy()


# ---------------------------------------------------------------------------------------------
# remember, last, clear


def _remember_script() -> None:
    import streamlit as st

    from app import selection

    for args in st.session_state["calls"]:
        try:
            st.write(f"stored {selection.remember(*args)!r}")
        except ValueError as error:
            st.write(f"refused: {error}")
    st.write(f"last {selection.last()!r}")
    if st.session_state.get("then_clear"):
        selection.clear()
        st.write(f"after clear {selection.last()!r}")


def run_remember(*calls, then_clear: bool = False) -> list[str]:
    at = AppTest.from_function(_remember_script)
    at.session_state["calls"] = list(calls)
    at.session_state["then_clear"] = then_clear
    at.run()
    assert not at.exception
    return [m.value for m in at.markdown]


def test_remember_keeps_a_sorted_valid_selection_and_refuses_others() -> None:
    stored = {"dataset": "mnist", "subset": "test", "left": "ae-2d", "right": "vae-2d", "indices": [3, 17, 9999]}
    lines = run_remember(("mnist", "test", "ae-2d", "vae-2d", np.array([17, 9999, 3])))
    assert lines == [f"stored {stored!r}", f"last {stored!r}"]
    lines = run_remember(
        ("mnist", "test", "ae-2d", "vae-2d", [5, 1]),
        ("mnist", "test", "ae-2d", "vae-2d", [10_000]),  # the test set has 10,000 images
        ("mnist", "test", "ae-2d", "vae-2d", [4, 4]),
        ("mnist", "most", "ae-2d", "vae-2d", [1]),
        ("emnist", "test", "ae-2d", "vae-2d", [1]),
        ("mnist", "test", "", "vae-2d", [1]),
        ("mnist", "test", "ae-2d", "vae-2d", [0.5]),
    )
    assert lines[1:7] == [
        "refused: indices must be in [0, 10000) for 10000 points, got 10000",
        "refused: indices must be unique (a selection is a set), got 4 more than once",
        "refused: subset must be one of ['test', 'all'], got 'most'",
        "refused: dataset must be one of ['mnist', 'fashion-mnist'], got 'emnist'",
        "refused: the left model's name must be a non-empty string, got ''",
        "refused: indices must hold integers, got dtype float64",
    ]
    assert lines[-1] == f"last {dict(stored, indices=[1, 5])!r}"  # the refusals left the last good one
    # All 70,000: a training image's index is valid there; an empty selection clears.
    lines = run_remember(("mnist", "all", "ae-2d", "vae-2d", [65_000]), ("mnist", "all", "ae-2d", "vae-2d", []))
    assert lines == [
        "stored {'dataset': 'mnist', 'subset': 'all', 'left': 'ae-2d', 'right': 'vae-2d', 'indices': [65000]}",
        "stored None",
        "last None",
    ]
    assert run_remember(("mnist", "test", "ae-2d", "vae-2d", [1]), then_clear=True)[-1] == "after clear None"


# ---------------------------------------------------------------------------------------------
# stats


def test_stats_are_the_selections_numbers_in_each_plane_and_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    from app import explorer, selection
    from vae.store import read_metadata

    labels = load_mnist("test", REPO / "data")[1].numpy()
    planes, arrays = {}, {}
    for side, name in (("left", "ae-2d"), ("right", "vae-16d")):
        model, codes = codes_of(name)
        view = make_view("pca" if codes.shape[1] > 2 else "identity").fit(codes)
        planes[side] = explorer.Plane(side, read_metadata(SHIPPED / name), model, codes, view)
        arrays[side] = (codes, view.embedding_)
    chosen = np.flatnonzero(labels == 7)[::3]
    calls = []
    counted = sel.neighbourhood

    def counting(*args, **kwargs):
        calls.append(1)
        return counted(*args, **kwargs)

    monkeypatch.setattr(selection.sel, "neighbourhood", counting)
    got = selection.stats(planes, chosen, subset="test")
    assert set(got) == {"left", "right"}
    for side, (codes, xy) in arrays.items():
        expected = counted(codes, labels, chosen, k=5)
        assert got[side] == pytest.approx(
            {
                "share_selected": expected.share_selected,
                "share_other_class": expected.share_other_class,
                "spread": sel.spread(xy, chosen),
                "measured_on": len(chosen),  # fewer than the sample's size: every selected image
            }
        )
        assert 0 < got[side]["spread"] < 1  # one class is less spread than the whole plane
    assert len(calls) == 2
    assert selection.stats(planes, chosen[::-1].copy(), subset="test") == got  # same set: served from the cache
    assert len(calls) == 2
    selection.stats(planes, chosen[1:], subset="test")
    assert len(calls) == 4
    with pytest.raises(ValueError, match="the selection is empty"):
        selection.stats(planes, [], subset="test")
    with pytest.raises(ValueError, match="the left plane has 10000 points but the 'all' subset 70000"):
        selection.stats(planes, chosen, subset="all")


# ---------------------------------------------------------------------------------------------
# The Exports page


def exports(selection: dict | None) -> AppTest:
    at = open_dashboard()
    if selection is not None:
        at.session_state["ex_selection"] = selection
    at.switch_page("app_pages/exports.py").run()
    assert not at.exception
    return at


def buttons(at: AppTest) -> dict[str, object]:
    return {b.label: b for b in at.get("download_button")}


def test_exports_without_a_selection_say_how_to_make_one() -> None:
    at = exports(None)
    assert "Last selection" in [s.value for s in at.subheader]
    assert any("Shift + drag" in c.value and "Latent explorer" in c.value for c in at.caption)
    assert not any("selection" in label for label in buttons(at))


def test_exports_offer_the_last_selection_as_csv_and_sheet(shown_media: dict[str, bytes]) -> None:
    from app import selection

    labels = load_mnist("test", REPO / "data")[1].numpy()
    images = load_mnist("test", REPO / "data")[0].numpy()
    chosen = sorted(np.flatnonzero(labels == 4)[:150].tolist())
    last = {"dataset": "mnist", "subset": "test", "left": "ae-2d", "right": "vae-16d", "indices": chosen}
    at = exports(last)
    offered = buttons(at)
    assert "Download the selection (CSV)" in offered and "Download the selection sheet (PNG)" in offered
    assert any(c.value.startswith("150 of the 10,000 test images") for c in at.caption)

    # The sheet: 100 of the 150 sampled evenly, each beside its decode by each model of its own code.
    (left, left_codes), (right, right_codes) = codes_of("ae-2d"), codes_of("vae-16d")
    sample = sel.even_sample(chosen, 100)
    with torch.no_grad():
        recon = [
            m.decode(torch.from_numpy(c[sample])).squeeze(1).numpy()
            for m, c in ((left, left_codes), (right, right_codes))
        ]
    expected = sel.selection_sheet(
        images[sample], *recon, labels[sample], [str(d) for d in range(10)], ("ae-2d", "vae-16d"), sample
    )
    sheet = media_pixels(shown_media, offered["Download the selection sheet (PNG)"].proto.url)
    reference = np.asarray(Image.open(io.BytesIO(expected)).convert("L"))
    assert sheet.shape == reference.shape and np.abs(sheet.astype(int) - reference).max() <= 1

    # The CSV, built by the call the button makes on click: the codes, and the 16-D model's PCA view.
    text = selection.selection_csv(last, at.selectbox(key="ex_view").value)
    table = pd.read_csv(io.StringIO(text))
    assert table["index"].tolist() == chosen and (table["label"] == 4).all()
    assert list(table.columns[2:4]) == ["left_z1", "left_z2"] and table.columns[-5] == "right_z16"
    np.testing.assert_allclose(table[["left_z1", "left_z2"]], left_codes[chosen], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(table[["left_x", "left_y"]], left_codes[chosen], rtol=1e-6, atol=1e-6)
    right_view = make_view("pca").fit(right_codes).embedding_
    np.testing.assert_allclose(table[["right_x", "right_y"]], right_view[chosen], rtol=1e-5, atol=1e-5)


def test_exports_say_when_the_selections_model_is_gone() -> None:
    last = {"dataset": "mnist", "subset": "test", "left": "gone", "right": "vae-2d", "indices": [1, 2]}
    at = exports(last)
    assert [w.value for w in at.warning] == [
        "The last selection cannot be exported: model 'gone' (left) is no longer in the store."
    ]
    assert not any("selection" in label for label in buttons(at))


def test_a_large_selection_is_measured_from_an_even_sample_close_to_all_of_it() -> None:
    from app import explorer, selection
    from vae.store import read_metadata

    labels = load_mnist("test", REPO / "data")[1].numpy()
    model, codes = codes_of("vae-16d")
    view = make_view("pca").fit(codes)
    planes = {"left": explorer.Plane("left", read_metadata(SHIPPED / "vae-16d"), model, codes, view)}
    chosen = np.flatnonzero(np.isin(labels, [4, 9, 7]))  # about 3,000 images, more than the sample
    got = selection.stats(planes, chosen, subset="test")["left"]
    assert got["measured_on"] == selection.NEIGHBOURHOOD_SAMPLE < len(chosen)
    everyone = sel.neighbourhood(codes, labels, chosen, k=5)
    assert abs(got["share_selected"] - everyone.share_selected) < 0.02
    assert abs(got["share_other_class"] - everyone.share_other_class) < 0.03
