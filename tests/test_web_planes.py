"""The explorer's in-page planes, from Python's side (AppTest): what the page is handed, and what comes back.

The page itself (hover, decode, click) is driven in Chromium by tests/test_browser_planes.py.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

from app import web_planes
from tests.conftest import REPO, open_dashboard, plane_titles, planes_data
from vae.data import load_mnist
from vae.metrics import embed_images
from vae.onnx.export import run_onnx
from vae.plots.palette import DIGIT_COLORS
from vae.projections import make_view
from vae.store import load_model

SHIPPED = REPO / "models"


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    if not (REPO / "data" / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file():
        pytest.skip("MNIST not fetched: run `python -m vae.data fetch`")
    monkeypatch.setenv("VAE_MODELS_DIR", str(SHIPPED))
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    return open_dashboard()


def explorer(at: AppTest) -> AppTest:
    at.switch_page("app_pages/explorer.py").run()
    assert not at.exception
    return at


def published(url: str) -> bytes:
    """The bytes behind a URL the page was given (served from static/), inflated."""
    relative = url.split("/app/static/", 1)[1]
    path = REPO / "static" / relative
    assert path.is_file(), f"{url} is not a file under static/"
    return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()


def points(plane: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    blob = published(plane["points"])
    n, d = plane["count"], plane["dim"]
    assert len(blob) == n * (8 + 4 * d + 1)
    embedding = np.frombuffer(blob, np.float32, 2 * n).reshape(n, 2)
    codes = np.frombuffer(blob, np.float32, n * d, offset=8 * n).reshape(n, d)
    labels = np.frombuffer(blob, np.uint8, n, offset=8 * n + 4 * n * d)
    return embedding, codes, labels


@pytest.mark.parametrize(
    "shapes", [((3, 2), (4, 5), (4,)), ((4, 3), (4, 5), (4,)), ((4, 2), (4,), (4,)), ((4, 2), (4, 5), (3,))]
)
def test_points_of_mismatched_shapes_are_refused(shapes) -> None:
    embedding, codes, labels = (np.zeros(shape) for shape in shapes)
    with pytest.raises(ValueError, match=r"\[N, 2\], \[N, D\] and \[N\]"):
        web_planes.pack_points(embedding, codes, labels)


def test_the_page_gets_each_models_decoder_points_and_view(app: AppTest) -> None:
    at = explorer(app)
    data = planes_data(at)
    assert data is not None and not at.get("plotly_chart")  # the page draws the planes, not the server
    assert plane_titles(at) == ["ae-2d (AE)", "vae-2d (VAE)"]
    assert data["palette"] == list(DIGIT_COLORS) and data["classes"] == [str(d) for d in range(10)]
    images, labels = load_mnist("test", REPO / "data")
    assert data["images"]["count"] == 10_000
    assert published(data["images"]["url"]) == images.numpy().tobytes()
    for url in data["runtime"].values():
        assert published(url)  # the vendored runtime is served by the app itself
    assert published(data["modules"]["explorer"]).startswith(b"//")
    codes_for_decoder = np.random.default_rng(0).normal(size=(16, 2)).astype(np.float32) * 3
    for plane, name in zip(data["planes"], ("ae-2d", "vae-2d")):
        model, _ = load_model(SHIPPED / name)
        embedding, codes, point_labels = points(plane)
        expected = embed_images(model, images).numpy()
        np.testing.assert_allclose(codes, expected, atol=1e-5)
        np.testing.assert_array_equal(embedding, codes)  # a 2-D latent is plotted as it is
        np.testing.assert_array_equal(point_labels, labels.numpy())
        assert plane["view"]["kind"] == "identity" and plane["exact"] is True
        x0, x1, y0, y1 = plane["extent"]
        assert x1 - x0 == pytest.approx(y1 - y0)  # square, so the page keeps one scale on both axes
        assert x0 < embedding[:, 0].min() and embedding[:, 0].max() < x1
        (decoded,) = run_onnx(published(plane["decoder"]), {"z": codes_for_decoder})
        with torch.no_grad():
            reference = model.decode(torch.from_numpy(codes_for_decoder)).numpy()
        assert np.abs(decoded - reference).max() <= 1e-5
        assert len(plane["interpolation"]["codes"]) == 10 and len(plane["decor"]["path"]) == 10
    assert [p["decor"]["prior"] for p in data["planes"]] == [False, True]  # N(0, I) only for the 2-D VAE


def test_pins_and_clicked_images_reach_the_page(app: AppTest) -> None:
    at = explorer(app)
    at.session_state["ex_pins"] = {
        "left": {"kind": "spot", "point": [1.5, -2.0]},
        "right": {"kind": "image", "index": 7},
    }
    at.session_state["ex_selected"] = 7
    at.session_state["ex_history"] = [3, 7]
    at.run()
    assert not at.exception
    data = planes_data(at)
    assert data["selected"] == 7 and data["pins"]["right"] == {"kind": "image", "index": 7}
    left, right = data["planes"]
    assert left["decor"]["pin"] == [1.5, -2.0] and right["decor"]["pin"] is None
    assert left["decor"]["ellipses"] == []  # an AE has no posterior
    ellipses = np.array(right["decor"]["ellipses"])
    assert ellipses.shape == (2, 4) and (ellipses[:, 2:] > 0).all()
    _, codes, _ = points(right)
    np.testing.assert_allclose(ellipses[1, :2], codes[7], atol=1e-5)  # centred on the image's mean code
    # Their size by value: sigma = exp(logvar / 2) of the shipped 2-D VAE on images 3 and 7, in click order.
    model, _ = load_model(SHIPPED / "vae-2d")
    images, _ = load_mnist("test", REPO / "data")
    with torch.no_grad():
        mean, logvar = model.encode(images[[3, 7]].float().div(255).unsqueeze(1))
    np.testing.assert_allclose(ellipses[:, :2], mean.numpy(), atol=1e-5)
    np.testing.assert_allclose(ellipses[:, 2:], np.exp(0.5 * logvar.numpy()), rtol=1e-4)
    assert "clicked image #7 (latest)" in at.selectbox(key="ex_from").options  # format_func: the option is stable


def test_clicks_from_the_page_pin_what_was_clicked(monkeypatch) -> None:
    state: dict = {}
    monkeypatch.setattr(st, "session_state", state)
    state[web_planes.KEY] = {"click": {"side": "left", "x": 1.0, "y": 2.0, "index": 42}}
    web_planes._on_click()
    assert state["ex_selected"] == 42 and state["ex_history"] == [42]
    assert state["ex_pins"] == {"left": {"kind": "image", "index": 42}, "right": {"kind": "image", "index": 42}}
    assert state["ex_click"] == {"side": "left", "x": 1.0, "y": 2.0, "index": 42}  # what Exports decodes
    state[web_planes.KEY] = {"click": {"side": "right", "x": -0.5, "y": 0.25, "index": None}}
    web_planes._on_click()
    assert state["ex_pins"]["right"] == {"kind": "spot", "point": [-0.5, 0.25]}
    assert state["ex_pins"]["left"] == {"kind": "image", "index": 42} and state["ex_selected"] == 42
    before = {k: (dict(v) if isinstance(v, dict) else v) for k, v in state.items() if k != web_planes.KEY}
    for bad in (
        {"side": "middle", "x": 0, "y": 0},
        {"side": "left", "x": "nan", "y": 0},
        {"side": "left", "x": 0, "y": 0, "index": -3},
        {"side": "left", "y": 0},
        "click",
        None,
        {"side": "left", "x": float("inf"), "y": 0},
        {"side": "left", "x": 0, "y": 0, "index": "seven"},
    ):
        state[web_planes.KEY] = {"click": bad}
        web_planes._on_click()
        assert {k: v for k, v in state.items() if k != web_planes.KEY} == before, bad


def test_a_16d_pair_sends_the_views_own_maps(app: AppTest) -> None:
    app.session_state["left_model"], app.session_state["right_model"] = "ae-16d", "vae-16d"
    at = explorer(app)
    data = planes_data(at)
    assert plane_titles(at) == ["ae-16d (AE) · PCA view of 16-D", "vae-16d (VAE) · PCA view of 16-D"]
    for plane in data["planes"]:
        embedding, codes, _ = points(plane)
        reference = make_view("pca").fit(codes)
        assert plane["view"]["kind"] == "pca" and plane["exact"] is False and "Approximate" in plane["approximate"]
        np.testing.assert_allclose(plane["view"]["mean"], reference.mean_, atol=1e-6)
        np.testing.assert_allclose(np.abs(plane["view"]["components"]), np.abs(reference.components_), atol=1e-5)
        np.testing.assert_allclose(embedding, reference.embedding_, atol=1e-4)
    at.selectbox(key="ex_view").set_value("identity").run()
    first = planes_data(at)["planes"][0]
    assert first["view"]["kind"] == "identity" and len(first["view"]["mean"]) == 16


def test_the_grid_option_reaches_the_page(app: AppTest) -> None:
    at = explorer(app)
    assert planes_data(at)["grid"] is None
    at.sidebar.checkbox(key="ex_grid").check().run()
    at.sidebar.slider(key="ex_grid_n").set_value(9).run()
    assert planes_data(at)["grid"] == {"n": 9}


def test_a_published_file_that_vanished_is_published_again(app: AppTest) -> None:
    at = explorer(app)
    url = planes_data(at)["planes"][0]["points"]
    path = REPO / "static" / url.split("/app/static/", 1)[1]
    path.unlink()
    at.run()
    assert not at.exception
    assert path.is_file() and planes_data(at)["planes"][0]["points"] == url  # same content, same name


def test_a_browser_that_cannot_run_the_planes_gets_the_servers(app: AppTest) -> None:
    at = explorer(app)
    at.session_state[web_planes.SUPPORT_KEY] = {"ok": False, "missing": ["WebGL 2"]}
    at.run()
    assert not at.exception
    assert planes_data(at) is None and len(at.get("plotly_chart")) == 2
    assert any("lacks WebGL 2" in w.value for w in at.sidebar.warning)


def test_without_the_vendored_runtime_the_server_draws_the_planes(app: AppTest, monkeypatch) -> None:
    monkeypatch.setattr(web_planes, "_vendor_checked", lambda: False)
    at = explorer(app)
    assert planes_data(at) is None and len(at.get("plotly_chart")) == 2
    assert any("make setup" in w.value for w in at.sidebar.warning)


def test_vendor_files_are_checked_by_hash(tmp_path) -> None:
    from app import vendor

    root = tmp_path / "vendor"
    for item in vendor.FILES:
        assert not vendor.is_current(item, root)  # missing
    item = next(i for i in vendor.FILES if i.compress)
    source = REPO / "static" / "vendor" / item.dest
    if not source.is_file():
        pytest.skip("static/vendor not fetched (make setup)")
    (root / item.dest).parent.mkdir(parents=True)
    shutil.copy(source, root / item.dest)
    assert vendor.is_current(item, root)
    data = bytearray(gzip.decompress(source.read_bytes()))
    data[1000] ^= 0xFF
    (root / item.dest).write_bytes(gzip.compress(bytes(data)))
    assert not vendor.is_current(item, root)  # one flipped byte
    (root / item.dest).write_bytes(b"not gzip at all")
    assert not vendor.is_current(item, root)


def fake_npm(tmp_path: Path, members: dict[str, bytes]) -> tuple[list[str], str]:
    """An `npm` that "packs" a tarball of ``members``: the command, and the tarball's SHA-256."""
    import hashlib
    import io
    import sys
    import tarfile

    tarball = tmp_path / "fake-1.0.0.tgz"
    with tarfile.open(tarball, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    script = tmp_path / "npm.py"
    script.write_text(
        "import shutil, sys\n"
        "dest = sys.argv[sys.argv.index('--pack-destination') + 1]\n"
        f"shutil.copy({str(tarball)!r}, dest)\n"
    )
    return [sys.executable, str(script)], hashlib.sha256(tarball.read_bytes()).hexdigest()


def test_vendoring_writes_what_is_pinned_and_refuses_anything_else(tmp_path) -> None:
    import hashlib

    from app import vendor

    module, wasm = b"export const x = 1;\n", bytes(range(256)) * 64
    command, tar_sha = fake_npm(tmp_path, {"package/dist/a.mjs": module, "package/dist/b.wasm": wasm})
    package = vendor.NpmPackage("fake", "1.0.0", tar_sha, "MIT")
    files = (
        vendor.VendoredFile(package, "package/dist/a.mjs", hashlib.sha256(module).hexdigest(), "fake/a.mjs"),
        vendor.VendoredFile(
            package, "package/dist/b.wasm", hashlib.sha256(wasm).hexdigest(), "fake/b.wasm.gz", compress=True
        ),
    )
    root = tmp_path / "vendor"
    assert sorted(vendor.fetch(files, root, command, log=lambda _: None)) == ["fake/a.mjs", "fake/b.wasm.gz"]
    assert (root / "fake/a.mjs").read_bytes() == module
    assert gzip.decompress((root / "fake/b.wasm.gz").read_bytes()) == wasm
    assert vendor.fetch(files, root, command, log=lambda _: None) == []  # present and right: nothing to do

    wrong_tarball = (
        vendor.VendoredFile(
            vendor.NpmPackage("fake", "1.0.0", "0" * 64, "MIT"), files[0].member, files[0].sha256, "other/a.mjs"
        ),
    )
    with pytest.raises(vendor.VendorError, match="not the pinned"):
        vendor.fetch(wrong_tarball, root, command, log=lambda _: None)
    wrong_file = (vendor.VendoredFile(package, files[0].member, "1" * 64, "other/a.mjs"),)
    with pytest.raises(vendor.VendorError, match="not the pinned"):
        vendor.fetch(wrong_file, root, command, log=lambda _: None)
    missing = (vendor.VendoredFile(package, "package/dist/none.js", "2" * 64, "other/none.js"),)
    with pytest.raises(vendor.VendorError, match="lacks"):
        vendor.fetch(missing, root, command, log=lambda _: None)
    assert not (root / "other").exists()  # nothing that failed its check was written


def test_the_last_two_clicked_images_become_the_interpolation_ends(monkeypatch) -> None:
    state: dict = {}
    monkeypatch.setattr(st, "session_state", state)
    for index in (11, 42):
        state[web_planes.KEY] = {"click": {"side": "left", "x": 1.0, "y": 2.0, "index": index}}
        web_planes._on_click()
        if index == 11:  # one click: it is the To, From stays where it was
            assert "ex_from" not in state and state["ex_to"] == "clicked image #11"
    assert (state["ex_from"], state["ex_to"]) == ("clicked image #11", "clicked image #42")
    state[web_planes.KEY] = {"click": {"side": "right", "x": 0.5, "y": 0.5, "index": None}}
    web_planes._on_click()  # a spot is pinned for decoding, the ends stay the two images
    assert (state["ex_from"], state["ex_to"]) == ("clicked image #11", "clicked image #42")


def test_clicked_ends_reach_the_strips_and_the_rings(app: AppTest) -> None:
    at = explorer(app)
    at.session_state["ex_history"] = [3, 7]
    at.session_state["ex_selected"] = 7
    at.run()  # the clicked images among the options first (AppTest reads the last run's options)
    at.session_state["ex_from"], at.session_state["ex_to"] = "clicked image #3", "clicked image #7"
    at.run()
    assert not at.exception
    data = planes_data(at)
    assert data["interpolation"] == {
        "from": "clicked image #3",
        "to": "clicked image #7",
        "images": [{"end": "from", "index": 3}, {"end": "to", "index": 7}],
    }
    _, codes, _ = points(data["planes"][0])
    np.testing.assert_allclose(data["planes"][0]["interpolation"]["codes"][0], codes[3], atol=1e-5)
    np.testing.assert_allclose(data["planes"][0]["interpolation"]["codes"][-1], codes[7], atol=1e-5)
    assert at.selectbox(key="ex_to").value == "clicked image #7"


def test_the_shared_toggle_draws_without_a_session_state_warning(app: AppTest, monkeypatch) -> None:
    """The explorer's "Decode in the browser" (key ex_browser), kept across pages by the session, is drawn
    without Streamlit's warning that a widget got both a default value and a Session State value."""
    import logging

    from streamlit.elements.lib import policies

    monkeypatch.setattr(policies, "_shown_default_value_warning", False)  # Streamlit warns once per process
    records: list[logging.LogRecord] = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = records.append
    policies._LOGGER.addHandler(handler)  # Streamlit's loggers do not propagate to the root logger
    try:
        explorer(app)
        app.sidebar.toggle(key="ex_browser").set_value(False).run()
        for page in ("app_pages/digit.py", "app_pages/explorer.py", "app_pages/home.py", "app_pages/explorer.py"):
            app.switch_page(page).run()
            assert not app.exception
        assert app.sidebar.toggle(key="ex_browser").value is False  # the choice survived the page switches
    finally:
        policies._LOGGER.removeHandler(handler)
    assert [r.getMessage() for r in records] == []


def test_the_selection_mask_round_trips_as_numpy_packs_it() -> None:
    rng = np.random.default_rng(5)
    for count in (1, 7, 8, 9, 10_000):
        chosen = np.sort(rng.choice(count, size=max(1, count // 3), replace=False))
        text = web_planes.pack_mask(chosen, count)
        np.testing.assert_array_equal(web_planes.unpack_mask(text, count), chosen)
        assert len(base64_bytes(text)) == (count + 7) // 8
    assert web_planes.pack_mask(np.empty(0, np.int64), 10) == ""
    # Bit order: the first point is the most significant bit of the first byte (np.packbits, the page's).
    assert web_planes.pack_mask(np.array([0]), 8) == "gA=="
    assert web_planes.pack_mask(np.array([7]), 8) == "AQ=="


def base64_bytes(text: str) -> bytes:
    import base64

    return base64.b64decode(text)


@pytest.mark.parametrize(
    ("text", "count", "message"),
    [
        ("gA==", 9, "needs 2 bytes, got 1"),
        ("gA", 8, "must be base64"),
        ("!!!!", 8, "must be base64"),
        ("", 8, "needs 1 bytes"),
    ],
)
def test_a_selection_not_of_this_subset_is_refused(text, count, message) -> None:
    with pytest.raises(ValueError, match=message):
        web_planes.unpack_mask(text, count)


def test_a_selection_from_the_page_is_kept_and_sent_back_with_its_neighbourhoods(app: AppTest) -> None:
    at = explorer(app)
    assert planes_data(at)["selection"] is None
    chosen = np.arange(0, 10_000, 7)
    at.session_state[web_planes.KEY] = {
        "selection": {"count": 10_000, "size": len(chosen), "mask": web_planes.pack_mask(chosen, 10_000)}
    }
    at.run()
    assert not at.exception
    data = planes_data(at)["selection"]
    assert data["count"] == 10_000
    np.testing.assert_array_equal(web_planes.unpack_mask(data["mask"], 10_000), chosen)
    for side in ("left", "right"):
        share = data["stats"][side]["share_selected"]
        # Every 7th image is selected: a neighbourhood of unrelated images would hold about 1/7 of them.
        assert 0.05 < share < 0.3, share
    assert at.session_state["ex_selection"]["indices"] == chosen.tolist()
    # A mask of another subset's size (the page still had 70,000 points) leaves the session's as it was.
    at.session_state[web_planes.KEY] = {
        "selection": {"count": 70_000, "size": 1, "mask": web_planes.pack_mask(np.array([69_999]), 70_000)}
    }
    at.run()
    assert at.session_state["ex_selection"]["indices"] == chosen.tolist()
    # The page cleared it.
    at.session_state[web_planes.KEY] = {"selection": {"count": 10_000, "size": 0, "mask": ""}}
    at.run()
    assert planes_data(at)["selection"] is None


def test_the_page_gets_the_judge_as_a_graph_and_the_holes_shares_once_asked(app: AppTest) -> None:
    from vae import judge as judges
    from vae.metrics import holes_share

    at = explorer(app)
    data = planes_data(at)
    # Nothing exported or measured until the page switches the layer on.
    assert data["holes"] is None and data["judge"] is None
    at.session_state[web_planes.KEY] = {"holes": True}
    at.run()
    assert not at.exception
    data = planes_data(at)
    # The judge's graph: the shipped judge's probabilities on real test digits.
    images, _ = load_mnist("test", REPO / "data")
    x = images[:64].float().div(255).unsqueeze(1)
    (probabilities,) = run_onnx(published(data["judge"]), {"x": x.numpy()})
    expected = judges.load("mnist").predict_proba(x).numpy()
    np.testing.assert_allclose(probabilities, expected, atol=1e-4)
    shares = data["holes"]
    model, _ = load_model(SHIPPED / "ae-2d")
    codes = embed_images(model, images).numpy()
    direct = holes_share(
        lambda z: model.decode(torch.from_numpy(z)).squeeze(1).detach().numpy(),
        lambda p: p,
        codes,
        judges.load("mnist"),
    )
    assert shares["left"]["share"] == pytest.approx(direct.share, abs=1e-9)
    assert shares["left"]["approximate"] is False and shares["left"]["grid"] == direct.grid
    assert 0.5 < shares["right"]["share"] <= 1.0
