"""The static site's export (vae/site.py): what it writes, and what it refuses."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REAL_RAW, REPO
from vae import site

needs_mnist = pytest.mark.skipif(not (REAL_RAW / "t10k-images-idx3-ubyte").is_file(), reason="MNIST not fetched")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "out"
    if not (REAL_RAW / "t10k-images-idx3-ubyte").is_file():
        pytest.skip("MNIST not fetched")
    manifest = site.export("ae-2d", str(REPO / "models" / "vae-2d"), out, onnx_dir=out.parent / "onnx")
    return out, manifest


@needs_mnist
def test_export_writes_every_file_the_manifest_names(exported):
    out, manifest = exported
    assert json.loads((out / "manifest.json").read_text()) == manifest
    named = [manifest["runtime"]["module"], manifest["runtime"]["wasm"], manifest["images"]["url"]]
    named += [p[key] for p in manifest["planes"] for key in ("decoder", "points")]
    named += [".nojekyll", "index.html", "site/main.js", manifest["modules"]["explorer"], "lib/runtime.js"]
    for name in named:
        assert (out / name).is_file(), name


@needs_mnist
def test_page_modules_are_the_dashboards_files(exported):
    out, _ = exported
    for rel in ("components/latent_planes/explorer.js", "lib/views.js", "lib/scatter.js"):
        assert (out / rel).read_bytes() == (REPO / "static" / rel).read_bytes()
    assert not (out / "site" / "index.html").exists()  # the template is the site's root page only


@needs_mnist
def test_points_and_images_have_the_subsets_size(exported):
    out, manifest = exported
    assert manifest["images"]["count"] == 10_000
    assert (out / "images.bin").stat().st_size == 10_000 * 784
    for plane in manifest["planes"]:
        n, d = plane["count"], plane["dim"]
        assert (n, d) == (10_000, 2)
        raw = (out / plane["points"]).read_bytes()
        assert len(raw) == n * (8 + 4 * d + 1)
        labels = np.frombuffer(raw[-n:], dtype=np.uint8)
        assert labels.max() == 9 and len(np.unique(labels)) == 10
        assert plane["view"]["kind"] == "identity"


@needs_mnist
def test_manifest_carries_palette_classes_and_shipped_metrics(exported):
    _, manifest = exported
    assert len(manifest["palette"]) == len(manifest["classes"]) == 10
    stored = json.loads((REPO / "models" / "ae-2d" / "model.json").read_text())["metrics"]
    left = manifest["planes"][0]
    assert left["name"] == "ae-2d"
    numeric = {k: v for k, v in stored.items() if isinstance(v, (int, float, str))}
    assert numeric and left["metrics"] == numeric


@needs_mnist
def test_no_absolute_url_in_the_site(exported):
    out, _ = exported
    for file in [out / "index.html", out / "site" / "main.js", out / "manifest.json"]:
        text = file.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, file


@needs_mnist
def test_size_within_target(exported):
    out, _ = exported
    assert site.folder_size(out) <= 20e6


@needs_mnist
def test_pca_view_of_a_16d_model(tmp_path):
    manifest = site.export("ae-16d", "vae-16d", tmp_path / "out", onnx_dir=tmp_path / "onnx")
    for plane in manifest["planes"]:
        assert plane["dim"] == 16 and plane["view"]["kind"] == "pca"
        assert np.asarray(plane["view"]["components"]).shape == (2, 16)
        assert not plane["exact"]


def test_missing_model_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no model at 'no-such-model'"):
        site.export("no-such-model", "vae-2d", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@needs_mnist
def test_bad_subset_is_refused(tmp_path):
    with pytest.raises(ValueError, match="subset must be one of"):
        site.export("ae-2d", "vae-2d", tmp_path / "out", subset="train-ish", onnx_dir=tmp_path / "onnx")


def test_non_empty_out_is_refused(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not an empty folder"):
        site.export("ae-2d", "vae-2d", tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_models_of_two_datasets_are_refused(tmp_path):
    with pytest.raises(ValueError, match="one dataset"):
        site.export("ae-2d", "ae-2d-fashion", tmp_path / "out")


def test_resolve_model_takes_a_folder_or_a_name():
    assert site.resolve_model("ae-2d") == REPO / "models" / "ae-2d"
    assert site.resolve_model(str(REPO / "models" / "vae-2d")) == REPO / "models" / "vae-2d"


def test_cli_reports_errors_with_exit_2(tmp_path, capsys):
    assert site.main(["export", "nope", "vae-2d", "--out", str(tmp_path / "o")]) == 2
    assert "no model at 'nope'" in capsys.readouterr().err


def test_zip_holds_the_folder(tmp_path):
    (tmp_path / "f" / "a").mkdir(parents=True)
    (tmp_path / "f" / "index.html").write_text("<p>")
    (tmp_path / "f" / "a" / "b.js").write_text("x")
    site.zip_folder(tmp_path / "f", tmp_path / "s.zip")
    with zipfile.ZipFile(tmp_path / "s.zip") as archive:
        assert sorted(archive.namelist()) == ["a/b.js", "index.html"]


@needs_mnist
def test_site_zip_unzips_to_the_site(tmp_path):
    data = site.site_zip("ae-2d", "vae-2d", onnx_dir=tmp_path / "onnx")
    (tmp_path / "s.zip").write_bytes(data)
    with zipfile.ZipFile(tmp_path / "s.zip") as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
    assert {"index.html", "site/main.js", "images.bin", manifest["planes"][1]["decoder"]} <= names
    assert [p["name"] for p in manifest["planes"]] == ["ae-2d", "vae-2d"]


@needs_mnist
def test_cli_writes_the_folder_and_its_zip_and_prints_sizes(tmp_path, capsys):
    out, archive = tmp_path / "out", tmp_path / "s.zip"
    argv = ["export", "ae-2d", "vae-2d", "--out", str(out), "--zip", str(archive)]
    assert site.main(argv) == 0
    printed = capsys.readouterr().out
    assert f"{out}: {site.folder_size(out) / 1e6:.1f} MB" in printed
    with zipfile.ZipFile(archive) as z:
        assert len(z.namelist()) == len([f for f in out.rglob("*") if f.is_file()])


def test_the_site_copies_the_vendored_runtime_the_dashboard_checks():
    """vae/ may not import app/, so the site names onnxruntime-web's folder itself: it must be app.vendor's."""
    from app import vendor

    folders = {f"vendor/{Path(item.dest).parent}" for item in vendor.FILES}
    assert folders == {site.VENDOR}
    for item in vendor.FILES:
        assert (site.STATIC / "vendor" / item.dest).is_file()


def test_the_site_reads_the_views_the_dashboard_ships():
    """vae/ may not import app/, so the site names the shipped views' folder itself: it must be app.cache's."""
    from app import cache

    assert site.SHIPPED_VIEWS == cache.SHIPPED_VIEWS and site.SHIPPED_VIEWS.is_dir()


def test_an_imported_models_plane_runs_fenced_and_the_projects_own_does_not(tmp_path):
    from tests.onnx_graphs import for_the_page, mlp_decoder, mlp_encoder
    from vae.onnx.importer import import_onnx

    encoder = for_the_page(mlp_encoder()).model.SerializeToString()
    decoder = for_the_page(mlp_decoder()).model.SerializeToString()
    imported = import_onnx(encoder, decoder, tmp_path / "mlp", data_dir=REPO / "data")
    built = site.payload("ae-2d", imported, onnx_dir=tmp_path / "onnx")
    left, right = built.manifest["planes"]
    # The imported graph is a stranger's program: the page runs it in a worker with a watchdog (lib/fence.js).
    assert right["fenced"] is True and "fenced" not in left
    # ... and it is the standard decoder the import wrote and checked, not an export of ours.
    served = hashlib.sha256(built.files[right["decoder"]]).hexdigest()
    assert served == imported[1].files["standard_decoder"]["sha256"]
