"""The notebook widget (vae/widget.py) in Python: its traitlets, their checks, and the payload it sends."""

from __future__ import annotations

import gzip

import numpy as np
import onnx
import pytest
import torch
import traitlets
from ipywidgets.widgets.widget import _remove_buffers

from tests.conftest import REAL_RAW, REPO
from vae import site
from vae.store import load_model
from vae.widget import VIEWS, LatentPlanes

pytestmark = pytest.mark.skipif(not (REAL_RAW / "t10k-images-idx3-ubyte").is_file(), reason="MNIST not fetched")


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx")


@pytest.fixture(scope="module")
def widget(onnx_dir):
    return LatentPlanes("ae-2d", "vae-2d", onnx_dir=onnx_dir)


@pytest.fixture(scope="module")
def widget16(onnx_dir):
    return LatentPlanes("ae-16d", REPO / "models" / "vae-16d", onnx_dir=onnx_dir)


def test_the_page_gets_the_dashboards_modules_and_every_file_its_manifest_names(widget):
    static = site.STATIC
    assert (
        widget._modules["components/latent_planes/explorer.js"]
        == (static / "components/latent_planes/explorer.js").read_text()
    )
    assert widget._modules["lib/fence.js"] == (static / "lib/fence.js").read_text()
    assert not any("tests/" in path for path in widget._modules)
    sent = {**widget._assets, **widget._files}
    manifest = widget._manifest
    named = [manifest["runtime"]["module"], manifest["runtime"]["wasm"], manifest["images"]["url"]]
    named += [p[key] for p in manifest["planes"] for key in ("decoder", "points")]
    assert sorted(named) == sorted(sent)
    for path in (manifest["runtime"]["module"], manifest["runtime"]["wasm"]):
        assert sent[path] == (static / path).read_bytes()
    assert gzip.decompress(sent[manifest["runtime"]["wasm"]])[:4] == b"\0asm"
    assert len(sent["images.bin"]) == 10_000 * 784
    for plane in manifest["planes"]:
        assert len(sent[plane["points"]]) == plane["count"] * (8 + 4 * plane["dim"] + 1)
        graph = onnx.load_model_from_string(sent[plane["decoder"]]).graph
        assert graph.input[0].type.tensor_type.shape.dim[-1].dim_value == plane["dim"]
    assert manifest["hint"].startswith("Hover anywhere") and "widget.pinned" in manifest["hint"]


def test_the_assets_travel_as_binary_buffers_not_text(widget):
    state = widget.get_state()
    _, _, buffers = _remove_buffers(state)
    sizes = sorted(len(memoryview(b)) for b in buffers)
    # images, the wasm, the runtime module, two decoders, two points files: all bytes, none base64 in JSON.
    assert len(buffers) == 7
    assert sizes[-1] == 10_000 * 784


def test_a_pinned_image_gets_its_code_and_place_from_python(widget):
    widget.pinned = {"plane": "right", "index": 3}
    assert widget.pinned["index"] == 3 and widget.pinned["plane"] == "right"
    assert widget.pinned["point"] == pytest.approx(widget.embedding("right")[3].tolist())
    assert widget.pinned["code"] == pytest.approx(widget.codes("right")[3].tolist())
    # The codes are the model's of test image 3 (the VAE's mean).
    model, stored = load_model(REPO / "models" / "vae-2d")
    from vae.data import load_subset
    from vae.metrics import embed_images

    images, _ = load_subset("mnist", "test", REPO / "data")
    assert widget.codes("right")[3] == pytest.approx(embed_images(model, images[3:4]).numpy()[0], abs=1e-5)
    widget.pinned = None
    assert widget.pinned is None


def test_a_pinned_spot_decodes_through_the_view_the_page_uses(widget16):
    point = [0.4, -1.1]
    widget16.pinned = {"plane": "left", "point": point}
    spec = widget16._manifest["planes"][0]["view"]
    assert spec["kind"] == "pca"
    # What the page's PCA inverse computes (static/lib/views.js): mean + point @ components.
    expected = np.asarray(spec["mean"]) + np.asarray(point) @ np.asarray(spec["components"])
    assert widget16.pinned["code"] == pytest.approx(expected.tolist(), abs=1e-5)
    assert widget16.pinned["index"] is None and len(widget16.pinned["code"]) == 16


def test_a_2d_models_spot_is_its_code(widget):
    widget.pinned = {"plane": "left", "point": (1.5, np.float32(-2.0))}
    assert widget.pinned == {"plane": "left", "point": [1.5, -2.0], "index": None, "code": [1.5, -2.0]}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"plane": "middle", "point": [0, 0]}, "a plane is one of \\['left', 'right'\\], got 'middle'"),
        ({"point": [0, 0]}, "a plane is one of .* got None"),
        ({"plane": "left", "index": 10_000}, "pinned index must be an image's index, 0 to 9999; got 10000"),
        ({"plane": "left", "index": -1}, "0 to 9999; got -1"),
        ({"plane": "left", "index": True}, "got True"),
        ({"plane": "left", "index": 2.0}, "got 2.0"),
        ({"plane": "left"}, "pinned needs a point \\[x, y\\] in the plane, or an image's index"),
        ({"plane": "left", "point": [0, 0, 0]}, "a point is \\[x, y\\], two numbers; got \\[0, 0, 0\\]"),
        ({"plane": "left", "point": ["a", 1]}, "two numbers"),
        ({"plane": "left", "point": 3}, "two numbers; got 3"),
        ({"plane": "left", "point": [float("nan"), 0]}, "a point's coordinates must be finite"),
        ({"plane": "left", "point": [0, float("inf")]}, "must be finite"),
    ],
)
def test_a_bad_pin_is_refused_and_the_old_one_kept(widget, value, message):
    widget.pinned = {"plane": "left", "index": 5}
    with pytest.raises(traitlets.TraitError, match=message):
        widget.pinned = value
    assert widget.pinned["index"] == 5


def test_the_selection_is_ascending_unique_and_in_range(widget):
    widget.selection = [9, 2, 2, np.int64(5)]
    assert widget.selection == [2, 5, 9] and all(type(i) is int for i in widget.selection)
    with pytest.raises(traitlets.TraitError, match="image indices 0 to 9999; got 2 to 10000"):
        widget.selection = [2, 10_000]
    with pytest.raises(traitlets.TraitError, match="got -1 to 3"):
        widget.selection = [3, -1]
    with pytest.raises(traitlets.TraitError, match="a selection is a list of image indices \\(integers\\); got 1.5"):
        widget.selection = [1, 1.5]
    with pytest.raises(traitlets.TraitError, match="got True"):
        widget.selection = [True]
    assert widget.selection == [2, 5, 9]
    widget.selection = []
    assert widget.selection == []


def test_observers_see_what_is_set(widget):
    seen = []
    widget.observe(lambda change: seen.append(change["new"]), "pinned")
    widget.pinned = {"plane": "right", "index": 0}
    assert seen and seen[-1]["index"] == 0 and len(seen[-1]["code"]) == 2


def test_a_new_view_sends_new_planes_and_clears_the_pin(widget16):
    widget16.pinned = {"plane": "right", "index": 1}
    before = dict(widget16._files)
    old_embedding = widget16.embedding("right").copy()
    widget16.view = "umap"
    try:
        assert widget16.pinned is None
        assert [p["view"]["kind"] for p in widget16._manifest["planes"]] == ["neighbours", "neighbours"]
        assert widget16._files.keys() == before.keys()
        assert widget16._files["planes/right/points.bin"] != before["planes/right/points.bin"]
        assert widget16._files["planes/right/decoder.onnx"] == before["planes/right/decoder.onnx"]
        assert not np.allclose(widget16.embedding("right"), old_embedding)
        with pytest.raises(traitlets.TraitError, match="view must be one of \\['pca', 'umap'\\], got 'tsne'"):
            widget16.view = "tsne"
        assert widget16.view == "umap"
    finally:
        widget16.view = "pca"
    assert widget16._manifest["planes"][0]["view"]["kind"] == "pca"


def test_models_may_be_given_as_load_model_returns_them(onnx_dir):
    left, right = load_model(REPO / "models" / "ae-2d"), load_model(REPO / "models" / "vae-2d")
    widget = LatentPlanes(left, right, onnx_dir=onnx_dir)
    assert widget.model("left") is left[0] and widget.model("right") is right[0]
    assert [p["name"] for p in widget._manifest["planes"]] == ["ae-2d", "vae-2d"]
    with torch.no_grad():
        decoded = widget.model("left").decode(torch.tensor(widget.codes("left")[:2]))
    assert decoded.shape == (2, 1, 28, 28)


def test_the_widget_refuses_what_it_cannot_show(onnx_dir):
    with pytest.raises(ValueError, match="view must be one of \\['pca', 'umap'\\], got 'tsne'"):
        LatentPlanes("ae-2d", "vae-2d", view="tsne", onnx_dir=onnx_dir)
    with pytest.raises(ValueError, match="no model at 'nope'"):
        LatentPlanes("nope", "vae-2d", onnx_dir=onnx_dir)
    with pytest.raises(ValueError, match="a model must be a folder, a store name, or \\(model, stored\\)"):
        LatentPlanes(("ae-2d",), "vae-2d", onnx_dir=onnx_dir)
    with pytest.raises(ValueError, match="not int"):
        LatentPlanes(3, "vae-2d", onnx_dir=onnx_dir)
    with pytest.raises(ValueError, match="subset must be one of"):
        LatentPlanes("ae-2d", "vae-2d", subset="some", onnx_dir=onnx_dir)
    with pytest.raises(ValueError, match="both models must be of one dataset"):
        LatentPlanes("ae-2d", "ae-2d-fashion", onnx_dir=onnx_dir)


def test_the_planes_data_is_read_only(widget):
    with pytest.raises(ValueError, match="read-only"):
        widget.codes("left")[0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        widget.embedding("left")[0, 0] = 1.0
    with pytest.raises(traitlets.TraitError, match="a plane is one of"):
        widget.codes("up")
    assert widget.count == 10_000 and VIEWS == ("pca", "umap")


def test_the_grid_is_none_or_the_dashboards_sizes(widget):
    assert widget.grid == 0
    widget.grid = 5
    widget.grid = 30
    assert widget.grid == 30
    for bad in (4, 31, -1):
        with pytest.raises(traitlets.TraitError, match=f"grid is 0 \\(none\\) or from 5 to 30; got {bad}"):
            widget.grid = bad
    with pytest.raises(traitlets.TraitError):
        widget.grid = 7.5
    assert widget.grid == 30
    widget.grid = 0


def test_a_widget_made_with_a_view_builds_its_planes_once(onnx_dir, monkeypatch):
    built = []
    payload = site.payload
    monkeypatch.setattr(site, "payload", lambda *a, **k: built.append(k["views"]) or payload(*a, **k))
    widget = LatentPlanes("ae-16d", "vae-16d", view="umap", onnx_dir=onnx_dir)
    assert built == [("umap", "umap")]
    assert widget.view == "umap" and widget._manifest["planes"][1]["view"]["kind"] == "neighbours"
