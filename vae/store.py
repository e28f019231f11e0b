"""The model store: one folder per model, weights in safetensors, everything else in JSON.

Layout of a model folder ``<dir>/<name>/``::

    model.json                      config, training history, metrics, dataset hash, weights file + hash
    weights-<sha256[:16]>.safetensors

``model.json`` is the commit point. A save writes the new weights under a new, content-addressed name,
then atomically replaces ``model.json``, then deletes the old weights. Killed at any moment, the folder
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

from vae.models import LatentModel, ModelConfig, build_model

META_FILE = "model.json"
LOCK_FILE = ".lock"
FORMAT_VERSION = 1
# The largest shipped-size model (conv, 128-D, 4 x 4096 hidden) is far below this; anything bigger is
# not ours and is refused before it is read into memory.
MAX_WEIGHTS_BYTES = 512 * 1024 * 1024
MAX_META_BYTES = 16 * 1024 * 1024
# Letters, digits, dot, dash, underscore; no leading dot, so names can never be "..", hidden or a path.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


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
        "history": history or [],
        "metrics": metrics or {},
        "dataset": dataset or {},
        "extra": extra or {},
        "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    # Serialise before touching the disk, so a non-JSON value fails without leaving anything behind.
    meta_bytes = json.dumps(meta, indent=2, allow_nan=False).encode()
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    try:
        with _folder_lock(path):
            write_atomically(path / weights_name, weights)
            write_atomically(path / META_FILE, meta_bytes)  # the commit point
            # Under the lock no other save is mid-write, so every other weights file and temp file is
            # garbage: the previous version, or the leftovers of a writer that was killed.
            for stale in [*path.glob("weights-*.safetensors"), *path.glob(".*.tmp")]:
                if stale.name != weights_name:
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
    weights_file = meta.get("weights_file")
    if not isinstance(weights_file, str) or not re.fullmatch(r"weights-[0-9a-f]{16}\.safetensors", weights_file):
        raise CorruptModel(f"{path / META_FILE} names an invalid weights file {weights_file!r}")
    if not isinstance(meta.get("weights_sha256"), str):
        raise CorruptModel(f"{path / META_FILE} lacks weights_sha256")
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
    )


def load_model(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[LatentModel, StoredModel]:
    """Load the model saved in folder ``path``; returns (model in eval mode, its metadata).

    Checks, in order: metadata is valid JSON with a valid config; the weights file has the recorded
    SHA-256 (catches truncation and tampering); it parses as safetensors; its tensor names, shapes and
    dtypes are exactly those of the model the config builds.
    """
    stored = read_metadata(path)
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
