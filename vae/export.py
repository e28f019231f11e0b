"""Files the dashboard hands out: embeddings as CSV, decoded digits and grids as PNG, models as zip.

Plain functions returning ``bytes`` (what ``st.download_button`` takes); nothing here imports Streamlit.

- :func:`embedding_csv`: ``index,label,<columns...>``, one row per image, floats written so that they read
  back bit for bit as float32.
- :func:`digit_png`, :func:`grid_png`: crisp (nearest-neighbour) enlargements of decoded images.
- :func:`model_zip`: a model folder's ``model.json`` and the data files it names (the weights, or an
  imported model's four ONNX graphs), and nothing else. Files are opened with ``O_NOFOLLOW``: a symlink in
  the folder is never followed, so the zip cannot carry a file from elsewhere on the server. Each file's
  SHA-256 is checked against ``model.json`` before zipping.
- :func:`pair_zip`: an ONNX pair (``decoder.onnx``, ``encoder.onnx``, ``onnx.json``), read the same way.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from vae.images import tile_grid, to_png_bytes, to_uint8_image, upscale
from vae.store import (
    GRAPH_ROLES,
    MAX_GRAPH_BYTES,
    MAX_META_BYTES,
    MAX_WEIGHTS_BYTES,
    META_FILE,
    StoreError,
    parse_metadata,
)

# Zip entries get this fixed timestamp, so the same model always gives the same zip bytes.
ZIP_DATE_TIME = (2020, 1, 1, 0, 0, 0)
_COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
# A save replaces model.json, then deletes the old weights; a zip taken in between is retried.
_ZIP_ATTEMPTS = 3


class ExportError(ValueError):
    """A model folder cannot be exported as it is (missing or non-regular file, symlink, bad hash)."""


# ---------------------------------------------------------------------------------------------
# CSV


def embedding_csv(indices: Any, labels: Any, coords: Any, columns: list[str] | tuple[str, ...]) -> bytes:
    """One row per point: ``index,label,<columns>`` -> UTF-8 CSV bytes with a header line.

    ``indices`` and ``labels`` are integers ``[N]``; ``coords`` is ``[N, K]`` numbers (e.g. z1..zD, then
    the view's x, y) named by the K ``columns``. Coordinates are written as float32 in the shortest form
    that reads back to the same float32, so ``pandas.read_csv(...).to_numpy(np.float32)``
    returns exactly the array that was exported. NaN is written as ``nan``, which pandas reads as NaN.
    """
    index = _as_integers(indices, "indices")
    label = _as_integers(labels, "labels")
    values = np.asarray(coords.detach().cpu().numpy() if hasattr(coords, "detach") else coords)
    if values.ndim != 2:
        raise ValueError(f"coords must be a 2-D array [N, K], got shape {list(values.shape)}")
    if not (np.issubdtype(values.dtype, np.floating) or np.issubdtype(values.dtype, np.integer)):
        raise ValueError(f"coords must hold numbers, got dtype {values.dtype}")
    n = len(index)
    if len(label) != n or len(values) != n:
        raise ValueError(f"need one row each: {n} indices, {len(label)} labels, {len(values)} coordinate rows")
    names = list(columns)
    if len(names) != values.shape[1]:
        raise ValueError(f"coords has {values.shape[1]} columns but {len(names)} names were given")
    for name in names:
        if not isinstance(name, str) or not _COLUMN_NAME.fullmatch(name):
            raise ValueError(f"column names must be identifiers (letters, digits, _), got {name!r}")
    header = ["index", "label", *names]
    if len(set(header)) != len(header):
        raise ValueError(f"column names must be unique and not 'index' or 'label', got {names}")

    # numpy's str() of a float32 is the shortest decimal that reads back as the same float32 (Dragon4);
    # about twice as fast as DataFrame.to_csv, which matters for 70,000 rows.
    cells = np.concatenate(
        [index.astype(str)[:, None], label.astype(str)[:, None], values.astype(np.float32, copy=False).astype(str)],
        axis=1,
    )  # [N, 2 + K] strings
    lines = [",".join(header), *(",".join(row) for row in cells.tolist())]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _as_integers(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values.detach().cpu().numpy() if hasattr(values, "detach") else values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array [N], got shape {list(array.shape)}")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


# ---------------------------------------------------------------------------------------------
# PNG


def digit_png(image: Any, scale: int = 10) -> bytes:
    """One image ``[28, 28]`` (float in [0, 1], or uint8) -> PNG bytes, ``scale`` times larger, crisp pixels."""
    return to_png_bytes(upscale(to_uint8_image(image), scale))


def grid_png(images: Any, n: int, scale: int = 1, gap: int = 1) -> bytes:
    """``n * n`` images in :func:`vae.explore.manifold_grid` order -> one PNG of the tiled grid.

    Laid out as :func:`vae.images.tile_grid` does (highest y on top), then enlarged ``scale`` times.
    """
    return to_png_bytes(upscale(tile_grid(images, n, gap=gap), scale))


# ---------------------------------------------------------------------------------------------
# Zip of a model folder


def model_zip(model_folder: str | os.PathLike) -> bytes:
    """The folder's ``model.json`` and the data files it names, zipped under ``<folder name>/``.

    Only those regular files are read, each opened without following symlinks (a symlink in their place
    raises :class:`ExportError`); anything else in the folder (locks, temp files, stray links) is left out.
    Unzipped, the folder loads with :func:`vae.store.load_model`, which never unpickles.
    """
    folder = Path(model_folder)
    if not folder.is_dir():
        raise ExportError(f"no model folder at {folder}")
    for attempt in range(_ZIP_ATTEMPTS):
        try:
            meta_bytes = _read_regular(folder, META_FILE, MAX_META_BYTES)
        except FileNotFoundError:
            raise ExportError(f"{folder / META_FILE} is missing: not a saved model") from None
        files = {f"{folder.name}/{META_FILE}": meta_bytes}
        try:
            for name, digest, limit in _data_entries(folder, meta_bytes):
                data = _read_regular(folder, name, limit)
                if hashlib.sha256(data).hexdigest() != digest:
                    raise ExportError(f"{folder / name} does not match the SHA-256 recorded in {META_FILE}")
                files[f"{folder.name}/{name}"] = data
        except FileNotFoundError as missing:
            if attempt + 1 < _ZIP_ATTEMPTS:
                continue  # model.json was replaced and the files it named deleted: read it again
            raise ExportError(f"{missing.filename} is missing") from None
        return _zip(files)
    raise AssertionError("unreachable")  # pragma: no cover


def _data_entries(folder: Path, meta_bytes: bytes) -> list[tuple[str, str, int]]:
    """(file name, SHA-256, size limit) of each data file ``model.json`` names, as the store reads them."""
    try:
        stored = parse_metadata(folder, meta_bytes)
    except StoreError as error:
        raise ExportError(str(error)) from None
    limits = {"weights": MAX_WEIGHTS_BYTES} | dict.fromkeys(GRAPH_ROLES, MAX_GRAPH_BYTES)
    return [(entry["file"], entry["sha256"], limits[role]) for role, entry in stored.files.items()]


PAIR_FILES = ("decoder.onnx", "encoder.onnx", "onnx.json")


def pair_zip(pair_folder: str | os.PathLike, name: str) -> bytes:
    """An exported ONNX pair's three files (``vae.onnx.export.export_pair``), zipped under ``<name>-onnx/``.

    Unzipped, ``python -m vae.onnx import <name>-onnx/encoder.onnx <name>-onnx/decoder.onnx --out models/NAME``
    imports it back.
    """
    folder = Path(pair_folder)
    files = {}
    for file in PAIR_FILES:
        try:
            files[f"{name}-onnx/{file}"] = _read_regular(folder, file, MAX_GRAPH_BYTES)
        except FileNotFoundError:
            raise ExportError(f"{folder / file} is missing: not a complete ONNX export") from None
    return _zip(files)


def _read_regular(folder: Path, name: str, limit: int) -> bytes:
    """Bytes of ``folder/name`` if it is a regular file (not a symlink) of at most ``limit`` bytes.

    Raises FileNotFoundError if it does not exist, :class:`ExportError` for anything else wrong.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    path = folder / name
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as error:  # ELOOP: a symlink (O_NOFOLLOW); or unreadable
        if path.is_symlink():
            raise ExportError(f"{path} is a symlink; only regular files are exported") from None
        raise ExportError(f"cannot read {path} ({error.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ExportError(f"{path} is not a regular file")
        if info.st_size > limit:
            raise ExportError(f"{path} is {info.st_size:,} bytes, more than the {limit:,} a model file may have")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ExportError(f"{path} grew beyond {limit:,} bytes while being read")
    return data


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16  # a plain, readable file once extracted
            archive.writestr(info, data)
    return buffer.getvalue()
