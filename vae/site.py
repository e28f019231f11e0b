"""The planes as a static site: ``python -m vae.site export LEFT RIGHT --out DIR [--subset test|all] [--zip FILE]``.

DIR holds ``index.html``, the dashboard's own page modules (copied from ``static/`` at export time, so the
site runs the same explorer), onnxruntime-web from ``static/vendor``, both decoders as ONNX, each plane's
points (``vae.web.pack_points``), the subset's images uint8 ``[N, 784]`` and ``manifest.json`` (what the
dashboard's Python would send the page, plus each model's shipped metrics). Every URL in it is relative, so
any static file server shows it and no request leaves that host.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vae.data import class_names, load_subset
from vae.metrics import embed_images
from vae.models import LatentModel, to_float_images
from vae.onnx.export import CHECK_BATCH, ExportCache, pair_for
from vae.plots.palette import DIGIT_COLORS
from vae.plots.scatter import ClickGrid
from vae.projections import LatentView, ViewCache, make_view, view_cache_key
from vae.store import StoredModel, load_model
from vae.web import fence_spec, pack_points, view_spec

REPO = Path(__file__).resolve().parent.parent
STATIC = REPO / "static"
# The views the repository ships (the dashboard reads the same folder: app.cache.SHIPPED_VIEWS).
SHIPPED_VIEWS = REPO / "views"
# The page's modules: the site's entry, the explorer's component and the shared lib (the explorer imports
# "../../lib/..." from components/latent_planes/, so the tree keeps static/'s layout).
MODULE_DIRS = ("site", "components/latent_planes", "lib")
VENDOR = "vendor/onnxruntime-web-1.30.0"
SIDES = ("left", "right")
HINT = (
    "Hover anywhere: each plane's decoder runs in this page. Hover a point for its image and both "
    "reconstructions; click to pin it. Training and new images need the dashboard (python, not here)."
)


def resolve_model(name: str, models_dir: Path = REPO / "models") -> Path:
    """A model folder (``models/ae-2d``) or a store name (``ae-2d``) -> its folder; ValueError if neither."""
    for candidate in (Path(name), models_dir / name):
        if (candidate / "model.json").is_file():
            return candidate
    raise ValueError(f"no model at {name!r}: neither a folder with model.json nor a model in {models_dir}")


# What the site and the notebook widget take for a model: a folder or store name, or what vae.load_model and
# vae.import_onnx return, (model, stored).
ModelLike = str | Path | tuple[LatentModel, StoredModel]


def loaded(model: ModelLike) -> tuple[LatentModel, StoredModel]:
    """``model`` as ``(model, stored)``, loading a folder or store name; ValueError if it is neither."""
    if isinstance(model, tuple):
        if len(model) != 2 or not isinstance(model[0], LatentModel) or not isinstance(model[1], StoredModel):
            raise ValueError("a model must be a folder, a store name, or (model, stored) as vae.load_model returns")
        return model
    if not isinstance(model, (str, Path)):
        raise ValueError(f"a model must be a folder, a store name or (model, stored), not {type(model).__name__}")
    return load_model(resolve_model(str(model)))


def _view_method(dim: int, method: str | None) -> str:
    """A 2-D model's plane is its codes; a D > 2 model's is ``method`` (PCA unless told)."""
    return "identity" if dim == 2 else (method or "pca")


def _view(stored: StoredModel, codes: np.ndarray, method: str):
    """The plane's view of ``codes [N, D]``: the shipped one from ``views/`` where it matches these codes (as the
    dashboard serves it, so a UMAP plane is a file read, not minutes of fitting), else fitted here."""
    if method != "identity":
        key = view_cache_key(stored.weights_sha256, method, len(codes))
        shipped = ViewCache(SHIPPED_VIEWS, read_only=True).load(key, codes)
        if shipped is not None:
            return shipped
    return make_view(method).fit(codes)


@dataclass
class Plane:
    """One plane as the page reads it: ``spec`` (explorer.js's plane, its URLs relative) and the files it
    names, relative path -> bytes; ``view`` and ``codes [N, D]`` for what Python computes of it."""

    spec: dict[str, Any]
    files: dict[str, bytes]
    view: LatentView
    codes: np.ndarray


def plane(side: str, model, stored: StoredModel, images, labels, exports: ExportCache, method: str | None) -> Plane:
    """One plane: its decoder as ONNX, its view of the codes of ``images`` uint8 ``[N, 28, 28]``, its points."""
    pair = pair_for(stored, model, exports, images=to_float_images(images[:CHECK_BATCH]))
    codes = embed_images(model, images).numpy()
    view = _view(stored, codes, _view_method(codes.shape[1], method))
    decoder, points = f"planes/{side}/decoder.onnx", f"planes/{side}/points.bin"
    extent = ClickGrid.square(view.embedding_, n=2)
    spec = {
        "side": side,
        "name": stored.name,
        "title": f"{stored.name} ({stored.config.kind.upper()}, {codes.shape[1]}-D)",
        "kind": stored.config.kind,
        "exact": view.name == "identity",
        "approximate": None if view.name == "identity" else f"{view.name.upper()} view of {codes.shape[1]}-D codes",
        "decoder": decoder,
        "points": points,
        "count": int(codes.shape[0]),
        "dim": int(codes.shape[1]),
        "view": view_spec(view),
        "extent": [*extent.x_range, *extent.y_range],
        "axis_labels": list(view.axis_labels()),
        "decor": {"prior": False, "ellipses": [], "path": None, "pin": None},
        "interpolation": None,
        "metrics": {k: v for k, v in stored.metrics.items() if isinstance(v, (int, float, str))},
        **fence_spec(stored),
    }
    files = {decoder: pair.decoder.read_bytes(), points: pack_points(view.embedding_, codes, labels)}
    return Plane(spec, files, view, codes)


@dataclass
class Payload:
    """What the page needs of two models, in memory: ``manifest`` (what the dashboard's Python would send the
    page, URLs relative), ``files`` (the decoders, points and images it names, relative path -> bytes) and
    ``planes`` (each side's :class:`Plane`). The site writes it to disk; the notebook widget sends it."""

    manifest: dict[str, Any]
    files: dict[str, bytes]
    planes: dict[str, Plane]


def payload(
    left: ModelLike,
    right: ModelLike,
    subset: str = "test",
    data_dir: str | Path | None = None,
    onnx_dir: str | Path | None = None,
    views: tuple[str | None, str | None] = (None, None),
) -> Payload:
    """The planes of ``left`` and ``right`` (see :data:`ModelLike`) on ``subset``'s images.

    Raises ValueError for a model that is not there, a subset not of ``vae.data.SUBSETS``, or two models of
    different datasets (one set of images serves both planes).
    """
    pairs = [loaded(model) for model in (left, right)]
    datasets = {stored.dataset_name for _, stored in pairs}
    if len(datasets) != 1:
        raise ValueError(f"both models must be of one dataset, got {sorted(datasets)}")
    dataset = datasets.pop()
    images, labels = load_subset(dataset, subset, data_dir)  # ValueError for a bad subset
    exports = ExportCache(Path(onnx_dir) if onnx_dir else REPO / ".cache" / "onnx")
    planes = {
        side: plane(side, model, stored, images, labels.numpy(), exports, method)
        for side, (model, stored), method in zip(SIDES, pairs, views, strict=True)
    }
    files = {"images.bin": images.numpy().astype(np.uint8).tobytes()}
    for p in planes.values():
        files.update(p.files)
    manifest = {
        "modules": {"explorer": "components/latent_planes/explorer.js"},
        "runtime": {"module": f"{VENDOR}/ort.wasm.bundle.min.mjs", "wasm": f"{VENDOR}/ort-wasm-simd-threaded.wasm.gz"},
        "palette": list(DIGIT_COLORS),
        "classes": list(class_names(dataset)),
        "images": {"url": "images.bin", "count": int(len(images))},
        "planes": [p.spec for p in planes.values()],
        "selected": None,
        "pins": dict.fromkeys(SIDES),
        "grid": None,
        "selection": None,
        "judge": None,
        "holes": None,
        "interpolation": None,
        "hint": HINT,
        "subset": subset,
        "dataset": dataset,
    }
    return Payload(manifest, files, planes)


def page_modules() -> dict[str, str]:
    """The page's modules (:data:`MODULE_DIRS`), relative path under ``static/`` -> source: the files the site
    copies and the widget loads, never their tests."""
    return {
        str(file.relative_to(STATIC)): file.read_text()
        for sub in MODULE_DIRS
        for file in sorted((STATIC / sub).rglob("*"))
        if file.is_file() and "tests" not in file.relative_to(STATIC).parts and file.suffix in (".js", ".css")
    }


def runtime_files() -> dict[str, bytes]:
    """onnxruntime-web's files as the manifest names them (``runtime``): relative path -> bytes."""
    return {f"{VENDOR}/{f.name}": f.read_bytes() for f in sorted((STATIC / VENDOR).iterdir()) if f.is_file()}


def folder_size(path: Path) -> int:
    """Bytes of every file under ``path``."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def export(
    left: ModelLike,
    right: ModelLike,
    out: str | Path,
    subset: str = "test",
    data_dir: str | Path | None = None,
    onnx_dir: str | Path | None = None,
    views: tuple[str | None, str | None] = (None, None),
) -> dict[str, Any]:
    """Write the site for models ``left`` and ``right`` into ``out`` (absent or empty) -> its manifest.

    Raises ValueError as :func:`payload` does, and for a non-empty ``out``.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} exists and is not an empty folder: pick a new one")
    if not (STATIC / VENDOR / "ort.wasm.bundle.min.mjs").is_file():
        raise ValueError(f"onnxruntime-web is missing from {STATIC / VENDOR}: run `make setup`")
    built = payload(left, right, subset, data_dir, onnx_dir, views)
    out.mkdir(parents=True, exist_ok=True)
    for sub in MODULE_DIRS:
        shutil.copytree(STATIC / sub, out / sub, ignore=shutil.ignore_patterns("tests", "*.html"))
    shutil.copytree(STATIC / VENDOR, out / VENDOR)
    shutil.copyfile(STATIC / "site" / "index.html", out / "index.html")
    (out / ".nojekyll").write_text("")  # GitHub Pages: serve the files as they are, no Jekyll build
    for relative, data in built.files.items():
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        (out / relative).write_bytes(data)
    (out / "manifest.json").write_text(json.dumps(built.manifest, indent=1))
    return built.manifest


def zip_folder(folder: Path, target: Path) -> Path:
    """``folder``'s files into the zip ``target``, paths relative to ``folder`` (unzipped, it is the site)."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(folder))
    return target


def site_zip(left: str, right: str, subset: str = "test", **options: Any) -> bytes:
    """The site of ``left`` and ``right`` (as :func:`export` takes them, ``options`` too) as a zip's bytes."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "site"
        export(left, right, folder, subset, **options)
        return zip_folder(folder, Path(scratch) / "site.zip").read_bytes()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vae.site", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    cmd = commands.add_parser("export", help="write the static site of two models")
    cmd.add_argument("left")
    cmd.add_argument("right")
    cmd.add_argument("--out", required=True)
    cmd.add_argument("--subset", default="test")
    cmd.add_argument("--zip", dest="zip_file")
    cmd.add_argument("--view", choices=["pca", "umap"], default="pca", help="the plane of a D > 2 model")
    args = parser.parse_args(argv)
    try:
        export(args.left, args.right, args.out, args.subset, views=(args.view, args.view))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    size = folder_size(Path(args.out))
    print(f"{args.out}: {size / 1e6:.1f} MB")
    if args.zip_file:
        zip_folder(Path(args.out), Path(args.zip_file))
        print(f"{args.zip_file}: {Path(args.zip_file).stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
