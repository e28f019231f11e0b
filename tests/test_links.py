"""A link that reopens the Latent explorer (app/links.py): parsing, and the page restoring and writing its URL
(AppTest, on the shipped models)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.links import format_pin, parse_end, parse_pin
from tests.conftest import REPO, chart_titles, open_dashboard

SHIPPED = REPO / "models"

# ---------------------------------------------------------------------------------------------
# Parsing


def test_pins_parse_and_format_both_ways() -> None:
    assert parse_pin("123", 10_000) == {"kind": "image", "index": 123}
    assert parse_pin(" 0.5,-1.25 ", 10_000) == {"kind": "spot", "point": [0.5, -1.25]}
    for pin in ({"kind": "image", "index": 9999}, {"kind": "spot", "point": [0.1, -2.718281828459045]}):
        assert parse_pin(format_pin(pin), 10_000) == pin  # exact: the shortest text that reads back the same
    assert format_pin(None) is None
    with pytest.raises(ValueError, match="image #10000 is beyond the 10,000 images shown"):
        parse_pin("10000", 10_000)
    with pytest.raises(ValueError, match="'-3' is neither an image index nor a point x,y"):
        parse_pin("-3", 10_000)
    with pytest.raises(ValueError, match="'a,b' is neither an image index nor a point x,y"):
        parse_pin("a,b", 10_000)
    with pytest.raises(ValueError, match="'nan,1' is neither"):
        parse_pin("nan,1", 10_000)
    with pytest.raises(ValueError, match="'1,2,3' is neither"):
        parse_pin("1,2,3", 10_000)


def test_interpolation_ends_parse() -> None:
    assert parse_end("centroid:3", 10_000, 10) == ("centroid", 3)
    assert parse_end("image:42", 10_000, 10) == ("image", 42)
    with pytest.raises(ValueError, match=r"there is no class 10 \(classes 0-9\)"):
        parse_end("centroid:10", 10_000, 10)
    with pytest.raises(ValueError, match="image #70000 is beyond the 10,000 images shown"):
        parse_end("image:70000", 10_000, 10)
    with pytest.raises(ValueError, match="'mean:3' is neither centroid:C nor image:I"):
        parse_end("mean:3", 10_000, 10)
    with pytest.raises(ValueError, match="'image:' is neither"):
        parse_end("image:", 10_000, 10)


# ---------------------------------------------------------------------------------------------
# The page


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    if not (REPO / "data" / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file():
        pytest.skip("MNIST not fetched: run `python -m vae.data fetch`")
    monkeypatch.setenv("VAE_MODELS_DIR", str(SHIPPED))
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    at = open_dashboard()
    at.session_state["ex_browser"] = False  # the server's planes: what is restored is the same either way
    return at


def open_link(at: AppTest, **params: str) -> AppTest:
    """The explorer opened on a URL with ``params``, as a link pasted into a new browser opens it."""
    at.query_params.update(params)
    at.switch_page("app_pages/explorer.py").run()
    assert not at.exception
    return at


def warnings(at: AppTest) -> list[str]:
    return [w.value for w in at.warning]


def test_a_link_restores_models_view_subset_pins_and_ends(app: AppTest) -> None:
    at = open_link(
        app,
        left="ae-16d",
        right="vae-16d",
        view="umap",
        subset="test",
        pin_left="12",
        pin_right="12",
        **{"from": "centroid:3", "to": "image:12", "note": "kept"},
    )
    assert warnings(at) == []
    assert at.sidebar.selectbox(key="left_model").value == "ae-16d"
    assert at.sidebar.selectbox(key="right_model").value == "vae-16d"
    assert at.sidebar.selectbox(key="ex_view").value == "umap"
    assert at.sidebar.radio(key="ex_subset").value == "test"
    assert at.session_state["ex_pins"] == {
        "left": {"kind": "image", "index": 12},
        "right": {"kind": "image", "index": 12},
    }
    assert at.session_state["ex_selected"] == 12
    assert at.sidebar.selectbox(key="ex_from").value == "centroid of 3"
    assert at.sidebar.selectbox(key="ex_to").value == "clicked image #12"
    assert len([title for title in chart_titles(at) if "UMAP view of 16-D" in title]) == 2  # both planes
    # The page writes the same state back; a parameter it does not own stays.
    assert {k: at.query_params[k] for k in ("left", "right", "view", "from", "to", "pin_left")} == {
        "left": "ae-16d",
        "right": "vae-16d",
        "view": "umap",
        "from": "centroid:3",
        "to": "image:12",
        "pin_left": "12",
    }
    assert at.query_params["note"] == "kept"
    # Read once per session: afterwards the widgets rule, and the URL follows them.
    at.query_params["left"] = "ae-2d"
    at.run()
    assert at.sidebar.selectbox(key="left_model").value == "ae-16d"
    assert at.query_params["left"] == "ae-16d"


def test_a_link_to_all_images_with_a_spot_pin(app: AppTest) -> None:
    at = open_link(app, left="vae-2d", right="ae-2d", subset="all", pin_right="0.25,-1.5", to="image:65000")
    assert warnings(at) == []
    assert at.sidebar.selectbox(key="left_model").value == "vae-2d"
    assert at.sidebar.radio(key="ex_subset").value == "all"
    assert at.session_state["ex_pins"] == {"right": {"kind": "spot", "point": [0.25, -1.5]}}
    assert at.sidebar.selectbox(key="ex_to").value == "clicked image #65000"  # a training image: only in "all"
    assert at.query_params["pin_right"] == "0.25,-1.5" and "pin_left" not in at.query_params


def test_bad_parts_of_a_link_give_the_defaults_and_say_which(app: AppTest) -> None:
    at = open_link(app, left="nope", right="pca-2d", subset="most", view="tsne", pin_left="x")
    assert at.sidebar.selectbox(key="left_model").value == "ae-2d"
    assert at.sidebar.selectbox(key="right_model").value == "vae-2d"
    assert at.sidebar.radio(key="ex_subset").value == "test"
    assert at.session_state["ex_pins"] == {}
    shown = warnings(at)
    assert shown == [
        "The link's model 'nope' is not in the store; showing the default.",
        "The link's model 'pca-2d' is a PCA baseline, which the explorer shows beside the pair, not in it; "
        "showing the default.",
        "The link's subset 'most' is not one of test, all; showing the test set.",
        "The link's view 'tsne' is not one of identity, pca, umap; showing the default.",
        "The link's pin_left was ignored: 'x' is neither an image index nor a point x,y; nothing pinned there.",
    ]
    # The URL now names what is shown.
    assert at.query_params["left"] == "ae-2d" and at.query_params["subset"] == "test"
    at.run()
    assert warnings(at) == []  # said once


def test_a_model_of_another_dataset_is_refused_and_a_new_dataset_is_taken(app: AppTest) -> None:
    at = open_link(app, dataset="fashion-mnist", left="ae-2d", right="vae-2d-fashion")
    assert at.sidebar.selectbox(key="dataset").value == "fashion-mnist"
    assert at.sidebar.selectbox(key="right_model").value == "vae-2d-fashion"
    assert at.sidebar.selectbox(key="left_model").value == "ae-2d-fashion"  # the dataset's default
    assert warnings(at) == ["The link's model 'ae-2d' was trained on MNIST, not Fashion-MNIST; showing the default."]


def test_the_page_writes_its_state_into_the_url(app: AppTest) -> None:
    at = open_link(app, other="0,0,3")
    assert {k: at.query_params.get(k) for k in ("dataset", "left", "right", "subset")} == {
        "dataset": "mnist",
        "left": "ae-2d",
        "right": "vae-2d",
        "subset": "test",
    }
    assert at.query_params["from"] == "centroid:0" and at.query_params["to"] == "centroid:1"
    assert "pin_left" not in at.query_params and "pin_right" not in at.query_params
    at.session_state["ex_pins"] = {"left": {"kind": "spot", "point": [0.5, -1.0]}}
    at.sidebar.radio(key="ex_subset").set_value("all").run()
    assert not at.exception
    assert at.query_params["pin_left"] == "0.5,-1.0" and at.query_params["subset"] == "all"
    assert at.query_params["other"] == "0,0,3"  # not the page's: untouched
