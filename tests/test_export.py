"""Tests for vae.export: CSV layout and exact round trip, PNG sizes, and model zips that hold exactly the
model's two files, load back, and never follow a symlink."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from vae.export import ExportError, digit_png, embedding_csv, grid_png, model_zip
from vae.models import ModelConfig, build_model
from vae.store import META_FILE, StoreError, load_model, read_metadata, save_model

# ---------------------------------------------------------------------------------------------
# CSV


def _codes(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Awkward magnitudes on purpose: tiny, huge and negative values must survive the text round trip.
    return (rng.standard_normal((n, d)) * np.logspace(-8, 4, d)).astype(np.float32)


def test_csv_header_rows_and_exact_round_trip() -> None:
    n, d = 500, 16
    codes = _codes(n, d)
    view = _codes(n, 2, seed=1)
    indices = np.arange(n) + 10_000
    labels = np.random.default_rng(2).integers(0, 10, n)
    names = [f"z{i + 1}" for i in range(d)] + ["x", "y"]

    data = embedding_csv(indices, labels, np.concatenate([codes, view], axis=1), names)

    assert data.splitlines()[0] == b",".join([b"index", b"label", *(c.encode() for c in names)])
    frame = pd.read_csv(io.BytesIO(data))
    assert list(frame.columns) == ["index", "label", *names]
    assert len(frame) == n
    np.testing.assert_array_equal(frame["index"].to_numpy(), indices)
    np.testing.assert_array_equal(frame["label"].to_numpy(), labels)
    # Bit for bit: the text is the shortest decimal that reads back as the same float32.
    np.testing.assert_array_equal(frame[names[:d]].to_numpy(np.float32), codes)
    np.testing.assert_array_equal(frame[["x", "y"]].to_numpy(np.float32), view)


def test_csv_accepts_tensors_and_writes_nan_as_nan() -> None:
    codes = torch.tensor([[0.1, float("nan")], [-2.5, 3.0]])
    data = embedding_csv(torch.tensor([0, 1]), torch.tensor([7, 2]), codes, ["z1", "z2"])
    frame = pd.read_csv(io.BytesIO(data))
    assert frame["z1"].tolist() == pytest.approx([0.1, -2.5])
    assert np.isnan(frame["z2"][0]) and frame["z2"][1] == 3.0


def test_csv_header_only_for_no_rows() -> None:
    data = embedding_csv(np.zeros(0, int), np.zeros(0, int), np.zeros((0, 2), np.float32), ["z1", "z2"])
    assert data == b"index,label,z1,z2\n"


@pytest.mark.parametrize(
    ("indices", "labels", "coords", "columns", "match"),
    [
        (np.arange(3), np.arange(3), np.zeros((3, 2)), ["z1"], "2 columns but 1 names"),
        (np.arange(3), np.arange(2), np.zeros((3, 2)), ["z1", "z2"], "one row each"),
        (np.arange(3), np.arange(3), np.zeros(3), ["z1"], "2-D array"),
        (np.arange(3) * 1.5, np.arange(3), np.zeros((3, 1)), ["z1"], "integers"),
        (np.arange(3), np.arange(3), np.zeros((3, 2)), ["z1", "z1"], "unique"),
        (np.arange(3), np.arange(3), np.zeros((3, 1)), ["label"], "unique"),
        (np.arange(3), np.arange(3), np.zeros((3, 1)), ["a,b"], "identifiers"),
        (np.arange(3), np.arange(3), np.array([["a"], ["b"], ["c"]]), ["z1"], "numbers"),
    ],
)
def test_csv_rejects_inconsistent_input(indices, labels, coords, columns, match) -> None:
    with pytest.raises(ValueError, match=match):
        embedding_csv(indices, labels, coords, columns)


# ---------------------------------------------------------------------------------------------
# PNG


def _png(data: bytes) -> np.ndarray:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return np.asarray(Image.open(io.BytesIO(data)))


def test_digit_png_is_a_crisp_enlargement() -> None:
    image = np.zeros((28, 28), np.float32)
    image[3, 5] = 1.0
    pixels = _png(digit_png(image, scale=10))
    assert pixels.shape == (280, 280) and pixels.dtype == np.uint8
    # Nearest neighbour: the one white pixel becomes a 10 x 10 white block and nothing is blurred.
    assert (pixels[30:40, 50:60] == 255).all()
    assert set(np.unique(pixels)) == {0, 255}


def test_grid_png_tiles_n_by_n() -> None:
    images = np.random.default_rng(0).random((9, 28, 28)).astype(np.float32)
    pixels = _png(grid_png(images, 3, scale=2, gap=1))
    assert pixels.shape == (2 * (3 * 28 + 2), 2 * (3 * 28 + 2))
    with pytest.raises(ValueError):
        grid_png(images, 4)


# ---------------------------------------------------------------------------------------------
# Zip of a model folder


@pytest.fixture
def model_folder(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="vae", latent_dim=2, hidden=(16,)))
    return save_model(model, tmp_path / "models" / "vae-2d", metrics={"test_loss": 123.0})


def _entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {info.filename: archive.read(info) for info in archive.infolist()}


def test_zip_holds_exactly_the_two_files_and_loads_back(model_folder: Path, tmp_path: Path) -> None:
    stored = read_metadata(model_folder)
    assert (model_folder / ".lock").exists()  # the store leaves its lock file; it must not be exported

    data = model_zip(model_folder)

    entries = _entries(data)
    assert set(entries) == {f"vae-2d/{META_FILE}", f"vae-2d/{stored.weights_file}"}
    assert entries[f"vae-2d/{META_FILE}"] == (model_folder / META_FILE).read_bytes()
    assert entries[f"vae-2d/{stored.weights_file}"] == (model_folder / stored.weights_file).read_bytes()
    assert model_zip(model_folder) == data  # fixed timestamps: the same model gives the same bytes

    out = tmp_path / "unzipped"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(out)
    loaded, loaded_meta = load_model(out / "vae-2d")
    original, _ = load_model(model_folder)
    assert loaded_meta.weights_sha256 == stored.weights_sha256
    assert loaded_meta.metrics == {"test_loss": 123.0}
    for key, value in original.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


def test_symlinks_in_the_folder_are_not_followed(model_folder: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not part of any model")
    (model_folder / "notes.txt").symlink_to(secret)
    (model_folder / "linked-dir").symlink_to(tmp_path)

    entries = _entries(model_zip(model_folder))
    assert len(entries) == 2
    assert all(b"not part of any model" not in value for value in entries.values())


def test_a_symlinked_weights_file_is_refused(model_folder: Path, tmp_path: Path) -> None:
    stored = read_metadata(model_folder)
    weights = model_folder / stored.weights_file
    moved = tmp_path / "elsewhere.safetensors"
    weights.rename(moved)
    weights.symlink_to(moved)  # same bytes, same hash: only the link makes it wrong
    with pytest.raises(ExportError, match="symlink"):
        model_zip(model_folder)


def test_a_symlinked_model_json_is_refused(model_folder: Path, tmp_path: Path) -> None:
    meta = model_folder / META_FILE
    moved = tmp_path / "model.json"
    meta.rename(moved)
    meta.symlink_to(moved)
    with pytest.raises(ExportError, match="symlink"):
        model_zip(model_folder)


def test_a_dangling_symlink_is_refused_not_followed(model_folder: Path, tmp_path: Path) -> None:
    stored = read_metadata(model_folder)
    weights = model_folder / stored.weights_file
    weights.unlink()
    weights.symlink_to(tmp_path / "does-not-exist")
    with pytest.raises(ExportError, match="symlink"):
        model_zip(model_folder)


def test_altered_or_missing_weights_are_refused(model_folder: Path) -> None:
    stored = read_metadata(model_folder)
    weights = model_folder / stored.weights_file
    original = weights.read_bytes()
    weights.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    with pytest.raises(ExportError, match="SHA-256"):
        model_zip(model_folder)
    weights.unlink()
    with pytest.raises(ExportError, match="missing"):
        model_zip(model_folder)


def test_not_a_model_folder(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="no model folder"):
        model_zip(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExportError, match="missing"):
        model_zip(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / META_FILE).write_text("{not json")
    with pytest.raises(ExportError, match="not valid JSON"):
        model_zip(tmp_path / "bad")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_a_fifo_in_place_of_model_json_does_not_hang(model_folder: Path) -> None:
    meta = model_folder / META_FILE
    meta.unlink()
    os.mkfifo(meta)
    with pytest.raises(ExportError, match="not a regular file"):
        model_zip(model_folder)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"format_version": 999}, "format_version"),
        ({"weights_file": "../escape.safetensors"}, "invalid weights file"),
        ({"history": "not a list"}, "history must be a JSON list"),
    ],
)
def test_the_zip_refuses_what_the_store_would_refuse(model_folder: Path, change: dict, match: str) -> None:
    # One reader of model.json: a folder the store cannot load is never zipped as if it were a model.
    meta_path = model_folder / META_FILE
    meta = json.loads(meta_path.read_text())
    meta.update(change)
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(StoreError, match=match):
        read_metadata(model_folder)
    with pytest.raises(ExportError, match=match):
        model_zip(model_folder)
