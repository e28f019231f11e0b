"""The model store: one folder per model, weights in safetensors, everything else in JSON.

Layout of a model folder ``<dir>/<name>/``::

    model.json                      config, training history, metrics, dataset hash, weights file + hash
    weights-<sha256[:16]>.safetensors

An imported ONNX model (``config.arch == "onnx"``, written by :func:`save_imported_model`) holds four
graphs instead of the weights, each named in ``model.json``'s ``files`` with its SHA-256: the user's
encoder and decoder as imported, and the normalised copies the model runs and the pages serve::

    encoder-<sha256[:16]>.onnx  decoder-<sha256[:16]>.onnx  standard-encoder-<...>.onnx  standard-decoder-<...>.onnx

Its ``weights_sha256`` is :func:`bundle_sha256` of the four hashes, so every cache keyed by it follows
any change of any graph.

``model.json`` is the commit point. A save writes the new files under new, content-addressed names,
then atomically replaces ``model.json``, then deletes the old files. Killed at any moment, the folder
still holds a complete model: the old one or the new one, never a mix.

Loading never unpickles: safetensors holds raw tensors only, and the JSON is parsed with ``json``. Every
way a file can be wrong raises a :class:`StoreError` subclass with a message that says which file and why.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from vae.models import IMPORTED_ARCH, LatentModel, ModelConfig, build_model

META_FILE = "model.json"
LOCK_FILE = ".lock"
FORMAT_VERSION = 1
# The largest shipped-size model (conv, 128-D, 4 x 4096 hidden) is far below this; anything bigger is
# not ours and is refused before it is read into memory.
MAX_WEIGHTS_BYTES = 512 * 1024 * 1024
MAX_META_BYTES = 16 * 1024 * 1024
# Each graph of an imported model: the import's 200 MB per graph, plus room for the few nodes a standard graph
# adds around the user's; a bigger file is not one the import wrote.
MAX_GRAPH_BYTES = 201 * 1024 * 1024
# Letters, digits, dot, dash, underscore; no leading dot, so names can never be "..", hidden or a path.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
WEIGHTS_PATTERN = re.compile(r"weights-[0-9a-f]{16}\.safetensors")
# An imported model's graphs: the user's two as imported, and the standard-interface copies.
GRAPH_ROLES = ("encoder", "decoder", "standard_encoder", "standard_decoder")
GRAPH_PATTERN = re.compile(r"(encoder|decoder|standard-encoder|standard-decoder)-[0-9a-f]{16}\.onnx")
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")


class StoreError(Exception):
    """Base class: anything wrong with a model folder."""


class ModelNotFound(StoreError, FileNotFoundError):
    """The folder or one of its files does not exist."""


class CorruptModel(StoreError):
    """A file exists but is not what it claims: truncated, random bytes, wrong hash, bad JSON."""


class IncompatibleModel(StoreError):
    """The files are intact but do not fit together: weights that do not match the config's model."""


class InvalidModelName(StoreError, ValueError):
    """A model name that could escape the store or is not portable."""


@dataclass(frozen=True)
class StoredModel:
    """What :func:`load_model` returns besides the model, and what :func:`list_models` lists."""

    path: Path
    config: ModelConfig
    weights_file: str
    weights_sha256: str
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    saved_at: str = ""
    # Every data file of the model: role -> {"file": name in the folder, "sha256": hex digest}. One
    # "weights" entry for a trained model, the four GRAPH_ROLES for an imported one (whose weights_file is "").
    files: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def dataset_name(self) -> str:
        """The dataset the model was trained on (``vae.data.DATASETS``); models saved before there was a
        choice were all trained on MNIST."""
        return str(self.dataset.get("name") or "mnist")


def check_name(name: str) -> str:
    """Return ``name`` if it is a safe model name, else raise :class:`InvalidModelName`."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or ".." in name:
        raise InvalidModelName(
            f"invalid model name {name!r}: use 1-64 letters, digits, '.', '-' or '_', not starting with '.'"
        )
    return name


def model_path(models_dir: str | os.PathLike, name: str) -> Path:
    """The folder for model ``name`` inside ``models_dir``; the name is checked so it cannot escape."""
    return Path(models_dir) / check_name(name)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fsync_dir(path: Path) -> None:
    # Makes the rename itself durable; not supported on every platform, and harmless to skip there.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never a part."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def save_model(
    model: LatentModel,
    path: str | os.PathLike,
    *,
    history: list[dict[str, Any]] | None = None,
    metrics: dict[str, Any] | None = None,
    dataset: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Save ``model`` into the folder ``path`` (created if needed), replacing any model there atomically.

    history: per-epoch records (``EpochRecord.to_dict()``); metrics: e.g. test loss, kNN accuracy;
    dataset: e.g. ``{"name": "mnist", "sha256": ...}``; extra: anything JSON-serialisable (training settings).
    """
    path = Path(path)
    check_name(path.name)
    if model.config.arch == IMPORTED_ARCH:
        raise ValueError("an imported ONNX model is stored by vae.import_onnx: its graphs are its weights")
    # contiguous() because safetensors refuses views; cpu() so a GPU-trained model loads anywhere.
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    weights = save_safetensors_bytes(tensors)
    digest = _sha256(weights)
    weights_name = f"weights-{digest[:16]}.safetensors"
    meta = {
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "weights_file": weights_name,
        "weights_sha256": digest,
        **_described(history, metrics, dataset, extra),
    }
    return _commit(path, {weights_name: weights}, meta)


def bundle_sha256(hashes: dict[str, str]) -> str:
    """One digest for a model made of several files (role -> SHA-256): changes whenever any file does."""
    return _sha256("".join(f"{role}:{hashes[role]}\n" for role in sorted(hashes)).encode())


def graph_file_name(role: str, digest: str) -> str:
    """``standard_decoder`` + its SHA-256 -> ``standard-decoder-<sha256[:16]>.onnx``."""
    return f"{role.replace('_', '-')}-{digest[:16]}.onnx"


def save_imported_model(
    path: str | os.PathLike,
    config: ModelConfig,
    graphs: dict[str, bytes],
    *,
    metrics: dict[str, Any] | None = None,
    dataset: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Save an imported model: ``graphs`` maps each of :data:`GRAPH_ROLES` to its ONNX bytes, already checked
    by ``vae.onnx_import`` (this only stores them, atomically, as :func:`save_model` stores weights)."""
    path = Path(path)
    check_name(path.name)
    if config.arch != IMPORTED_ARCH:
        raise ValueError(f"save_imported_model stores arch={IMPORTED_ARCH!r} models, got arch={config.arch!r}")
    if set(graphs) != set(GRAPH_ROLES):
        raise ValueError(f"graphs must hold exactly {GRAPH_ROLES}, got {sorted(graphs)}")
    hashes = {role: _sha256(data) for role, data in graphs.items()}
    files = {role: {"file": graph_file_name(role, hashes[role]), "sha256": hashes[role]} for role in GRAPH_ROLES}
    meta = {
        "format_version": FORMAT_VERSION,
        "config": config.to_dict(),
        "files": files,
        "weights_sha256": bundle_sha256(hashes),
        **_described(None, metrics, dataset, extra),
    }
    return _commit(path, {files[role]["file"]: graphs[role] for role in GRAPH_ROLES}, meta)


def _described(history: list[dict[str, Any]] | None, metrics: dict[str, Any] | None,
               dataset: dict[str, Any] | None, extra: dict[str, Any] | None) -> dict[str, Any]:
    """The descriptive part of ``model.json``, the same for a trained and an imported model."""
    return {
        "history": history or [],
        "metrics": metrics or {},
        "dataset": dataset or {},
        "extra": extra or {},
        "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _commit(path: Path, blobs: dict[str, bytes], meta: dict[str, Any]) -> Path:
    """Write ``blobs`` (file name -> bytes), then ``model.json`` (the commit point), then drop what is stale."""
    # Serialise before touching the disk, so a non-JSON value fails without leaving anything behind.
    meta_bytes = json.dumps(meta, indent=2, allow_nan=False).encode()
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    try:
        with _folder_lock(path):
            for name, data in blobs.items():
                write_atomically(path / name, data)
            write_atomically(path / META_FILE, meta_bytes)  # the commit point
            # Under the lock no other save is mid-write, so every other data file and temp file is
            # garbage: the previous version, or the leftovers of a writer that was killed.
            data_files = [p for p in path.iterdir() if WEIGHTS_PATTERN.fullmatch(p.name) or GRAPH_PATTERN.fullmatch(p.name)]  # fmt: skip
            for stale in [*data_files, *path.glob(".*.tmp")]:
                if stale.name not in blobs:
                    stale.unlink(missing_ok=True)
    except BaseException:
        if created:  # a first save that failed (full or read-only disk) leaves no half-made folder behind
            shutil.rmtree(path, ignore_errors=True)
        raise
    return path


@contextlib.contextmanager
def _folder_lock(path: Path) -> Iterator[None]:
    """Serialise saves into one folder across threads and processes (POSIX; a no-op elsewhere).

    Without it, one save's clean-up could delete the weights another save has just committed.
    """
    try:
        import fcntl
    except ImportError:  # Windows: single-writer use is still safe
        yield
        return
    with open(path / LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released by the kernel even if the process is killed
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_limited(path: Path, limit: int, what: str) -> bytes:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ModelNotFound(f"{what} not found: {path}") from None
    if not path.is_file():
        raise CorruptModel(f"{what} is not a regular file: {path}")
    if size > limit:
        raise CorruptModel(f"{what} is {size:,} bytes, more than the {limit:,} a model file may have: {path}")
    return path.read_bytes()


def read_metadata(path: str | os.PathLike) -> StoredModel:
    """Read and validate ``model.json`` only (cheap: no weights); raises :class:`StoreError` subclasses."""
    path = Path(path)
    if not path.is_dir():
        raise ModelNotFound(f"no model folder at {path}")
    raw = _read_limited(path / META_FILE, MAX_META_BYTES, "model metadata")
    try:
        meta = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CorruptModel(f"{path / META_FILE} is not valid JSON ({error})") from None
    if not isinstance(meta, dict):
        raise CorruptModel(f"{path / META_FILE} must hold a JSON object")
    if type(meta.get("format_version")) is not int or meta["format_version"] != FORMAT_VERSION:
        raise IncompatibleModel(
            f"{path / META_FILE} has format_version {meta.get('format_version')!r}; this version reads {FORMAT_VERSION}"
        )
    try:
        config = ModelConfig.from_dict(meta.get("config"))
    except (TypeError, ValueError) as error:
        raise IncompatibleModel(f"{path / META_FILE} holds an invalid config: {error}") from None
    if config.arch == IMPORTED_ARCH:
        weights_file, files = "", _graph_files(path, meta)
        if meta.get("weights_sha256") != bundle_sha256({role: entry["sha256"] for role, entry in files.items()}):
            raise CorruptModel(f"{path / META_FILE}: weights_sha256 does not match the hashes of its graphs")
    else:
        weights_file = meta.get("weights_file")
        if not isinstance(weights_file, str) or not WEIGHTS_PATTERN.fullmatch(weights_file):
            raise CorruptModel(f"{path / META_FILE} names an invalid weights file {weights_file!r}")
        if not isinstance(meta.get("weights_sha256"), str):
            raise CorruptModel(f"{path / META_FILE} lacks weights_sha256")
        files = {"weights": {"file": weights_file, "sha256": meta["weights_sha256"]}}
    for key, kind in (("history", list), ("metrics", dict), ("dataset", dict), ("extra", dict)):
        if not isinstance(meta.get(key, kind()), kind):
            raise CorruptModel(f"{path / META_FILE}: {key} must be a JSON {kind.__name__}")
    return StoredModel(
        path=path,
        config=config,
        history=meta.get("history", []),
        metrics=meta.get("metrics", {}),
        dataset=meta.get("dataset", {}),
        extra=meta.get("extra", {}),
        weights_file=weights_file,
        weights_sha256=meta["weights_sha256"],
        saved_at=str(meta.get("saved_at", "")),
        files=files,
    )


def _graph_files(path: Path, meta: dict[str, Any]) -> dict[str, dict[str, str]]:
    """An imported model's ``files``: exactly :data:`GRAPH_ROLES`, each a plain file name and a SHA-256."""
    files = meta.get("files")
    if not isinstance(files, dict) or set(files) != set(GRAPH_ROLES):
        raise CorruptModel(f"{path / META_FILE}: files must name the graphs {', '.join(GRAPH_ROLES)}")
    for role, entry in files.items():
        name = entry.get("file") if isinstance(entry, dict) else None
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        if not isinstance(digest, str) or not SHA256_PATTERN.fullmatch(digest):
            raise CorruptModel(f"{path / META_FILE}: the {role} file's sha256 is not a hex digest")
        # A plain, content-addressed name in the folder: never a path, never another role's file.
        if not isinstance(name, str) or not GRAPH_PATTERN.fullmatch(name) or name != graph_file_name(role, digest):
            raise CorruptModel(f"{path / META_FILE} names an invalid {role} file {name!r}")
    return {role: {"file": files[role]["file"], "sha256": files[role]["sha256"]} for role in GRAPH_ROLES}


def load_model(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[LatentModel, StoredModel]:
    """Load the model saved in folder ``path``; returns (model in eval mode, its metadata).

    Checks, in order: metadata is valid JSON with a valid config; the weights file has the recorded
    SHA-256 (catches truncation and tampering); it parses as safetensors; its tensor names, shapes and
    dtypes are exactly those of the model the config builds. An imported model (arch "onnx"): each of its
    four graphs has its recorded SHA-256, and the standard pair opens in onnxruntime (CPU, no external data)
    with the standard names; it is an :class:`~vae.onnx_model.OnnxModel`, on the CPU whatever ``device``.
    """
    stored = read_metadata(path)
    if stored.config.arch == IMPORTED_ARCH:
        return _load_imported(stored), stored
    weights_path = stored.path / stored.weights_file
    data = _read_limited(weights_path, MAX_WEIGHTS_BYTES, "weights file")
    if _sha256(data) != stored.weights_sha256:
        raise CorruptModel(f"{weights_path} does not match the SHA-256 recorded in {META_FILE} (truncated or altered)")
    try:
        tensors = load_safetensors_bytes(data)
    except (SafetensorError, ValueError, RuntimeError) as error:
        raise CorruptModel(f"{weights_path} is not a valid safetensors file ({error})") from None
    model = build_model(stored.config)
    expected = model.state_dict()
    problems = [f"missing {k}" for k in expected.keys() - tensors.keys()]
    problems += [f"unexpected {k}" for k in tensors.keys() - expected.keys()]
    problems += [
        f"{k}: {tuple(tensors[k].shape)} {tensors[k].dtype} where the config needs {tuple(v.shape)} {v.dtype}"
        for k, v in expected.items()
        if k in tensors and (tensors[k].shape != v.shape or tensors[k].dtype != v.dtype)
    ]
    if problems:
        shown = "; ".join(sorted(problems)[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise IncompatibleModel(f"{weights_path} does not fit {stored.config.describe()}: {shown}")
    model.load_state_dict(tensors, strict=True)
    return model.to(device).eval(), stored


def _load_imported(stored: StoredModel) -> LatentModel:
    """Every graph's bytes checked against its SHA-256, then the standard pair opened by onnxruntime (CPU)."""
    graphs = {}
    for role, entry in stored.files.items():
        graph_path = stored.path / entry["file"]
        data = _read_limited(graph_path, MAX_GRAPH_BYTES, f"ONNX {role.replace('_', ' ')} graph")
        if _sha256(data) != entry["sha256"]:
            raise CorruptModel(
                f"{graph_path} does not match the SHA-256 recorded in {META_FILE} (truncated or altered)"
            )
        graphs[role] = data
    from vae.onnx_model import GraphRefused, OnnxModel  # onnxruntime is imported only for imported models

    try:
        return OnnxModel(stored.config, graphs["standard_encoder"], graphs["standard_decoder"], stored=stored)
    except GraphRefused as error:
        raise IncompatibleModel(f"{stored.path}: {error}") from None


def list_models(models_dir: str | os.PathLike) -> list[StoredModel]:
    """Every valid model in ``models_dir``, sorted by name; folders that fail to read are skipped.

    Only metadata is read, so listing stays fast however large the weights; use :func:`scan_models` to
    also see what was skipped and why.
    """
    return [entry for entry in scan_models(models_dir) if isinstance(entry, StoredModel)]


def scan_models(models_dir: str | os.PathLike) -> list[StoredModel | tuple[Path, StoreError]]:
    """Like :func:`list_models`, but a broken folder appears as ``(path, error)`` instead of vanishing."""
    root = Path(models_dir)
    if not root.is_dir():
        return []
    out: list[StoredModel | tuple[Path, StoreError]] = []
    for child in sorted(root.iterdir()):
        if not child.is_dir() or not NAME_PATTERN.fullmatch(child.name) or ".." in child.name:
            continue
        try:
            out.append(read_metadata(child))
        except StoreError as error:
            out.append((child, error))
    return out
