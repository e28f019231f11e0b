"""The model store: one folder per model, weights in safetensors, everything else in JSON.

Layout of a model folder ``<dir>/<name>/``::

    model.json                      config, training history, metrics (with the judge's "samples"), dataset
                                    hash, files + their hashes
    weights-<sha256[:16]>.safetensors
    timeline-<sha256[:16]>.npz      optional: the training's timeline (vae.training.timeline), numpy arrays
    decoders-<sha256[:16]>.safetensors   optional: the decoder at a few of its frames, int8 per row

An imported ONNX model (``config.arch == "onnx"``, written by :func:`save_imported_model`) holds four
graphs instead of the weights, each named in ``model.json``'s ``files`` with its SHA-256: the user's
encoder and decoder as imported, and the normalised copies the model runs and the pages serve::

    encoder-<sha256[:16]>.onnx  decoder-<sha256[:16]>.onnx  standard-encoder-<...>.onnx  standard-decoder-<...>.onnx

Its ``weights_sha256`` is :func:`bundle_sha256` of the four hashes, so every cache keyed by it follows
any change of any graph.

``model.json`` is the commit point. A save writes the new files under new, content-addressed names,
then atomically replaces ``model.json``, then deletes the old files. Killed at any moment, the folder
still holds a complete model: the old one or the new one, never a mix.

Loading never unpickles: safetensors holds raw tensors only, the timeline's arrays are read with
``allow_pickle=False``, and the JSON is parsed with ``json``. Every way a file can be wrong raises a
:class:`StoreError` subclass with a message that says which file and why. The timeline is read by
:func:`load_timeline`, never by :func:`load_model`: a model whose timeline is missing or damaged still loads.

One module of some 790 lines on purpose: every rule of the folder's format (names, hashes, size limits,
the commit order, the timeline entry) is both written and read here, so a change to the format is a
change to one file, checked by one test file (``tests/test_store.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import re
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from vae.files import TEMPORARY_GLOB, write_atomically
from vae.models import IMPORTED_ARCH, LatentModel, ModelConfig, build_model
from vae.training.timeline import TERM_PATTERN, Timeline, decoder_state_keys, dequantize_rows, quantize_rows

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
# A timeline of 100 epochs of a 128-D model (some 110 frames x 2,000 points) is 110 MB; past this it is not ours.
MAX_TIMELINE_BYTES = 256 * 1024 * 1024
TIMELINE_ARRAYS = ("codes", "steps", "epochs", "image_index")  # besides train_<term> and test_<term>
DECODER_ENCODING = "int8-rows"  # weights as int8 with a float32 scale per row (vae.training.timeline.quantize_rows)
# Letters, digits, dot, dash, underscore; no leading dot, so names can never be "..", hidden or a path.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
WEIGHTS_PATTERN = re.compile(r"weights-[0-9a-f]{16}\.safetensors")
# An imported model's graphs: the user's two as imported, and the standard-interface copies.
GRAPH_ROLES = ("encoder", "decoder", "standard_encoder", "standard_decoder")
GRAPH_PATTERN = re.compile(r"(encoder|decoder|standard-encoder|standard-decoder)-[0-9a-f]{16}\.onnx")
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
TIMELINE_FILES = re.compile(r"(timeline-[0-9a-f]{16}\.npz|decoders-[0-9a-f]{16}\.safetensors)")
# metrics' "samples" entry: what the judge (vae.judge) says of the model's decoded samples and, as their ceiling,
# of its test reconstructions (vae.training.saving.judge_metrics writes it, check_samples reads it).
SAMPLES_KEYS = frozenset({"judge_sha256", "seed", "confident_at", "n", "confident_share", "class_shares", "entropy"})
SAMPLES_VERDICT_KEYS = frozenset({"n", "confident_share", "class_shares", "entropy"})


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


class NoTimeline(StoreError):
    """The model was saved without a timeline (fitted, or trained before timelines were recorded)."""


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
    # model.json's "timeline" entry as written (checked by load_timeline, not here, so that a damaged
    # entry never stops the model from loading); None when the model has no timeline.
    timeline: Any = None

    @property
    def has_timeline(self) -> bool:
        return self.timeline is not None

    @property
    def timeline_sha256(self) -> str:
        """The timeline file's recorded SHA-256 ("" without one): a cache key that changes with the file."""
        entry = self.timeline
        return str(entry.get("sha256", "")) if isinstance(entry, dict) else ""

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


def save_model(
    model: LatentModel,
    path: str | os.PathLike,
    *,
    history: list[dict[str, Any]] | None = None,
    metrics: dict[str, Any] | None = None,
    dataset: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    timeline: Timeline | None = None,
) -> Path:
    """Save ``model`` into the folder ``path`` (created if needed), replacing any model there atomically.

    history: per-epoch records (``EpochRecord.to_dict()``); metrics: e.g. test loss, kNN accuracy;
    dataset: e.g. ``{"name": "mnist", "sha256": ...}``; extra: anything JSON-serialisable (training settings);
    timeline: the training's (``TrainResult.timeline``), saved in the same atomic save.
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
    blobs = {weights_name: weights}
    if timeline is not None:
        meta["timeline"] = _timeline_files(model, timeline, blobs)
    return _commit(path, blobs, meta)


def _timeline_files(model: LatentModel, timeline: Timeline, files: dict[str, bytes]) -> dict[str, Any]:
    """Serialise ``timeline`` into ``files`` (name -> bytes); returns its model.json entry."""
    try:
        timeline.check(model.config.latent_dim)
    except ValueError as error:
        raise ValueError(f"cannot save this timeline: {error}") from None
    arrays = {
        "codes": timeline.codes,
        "steps": timeline.steps,
        "epochs": timeline.epochs,
        "image_index": timeline.image_index,
    }
    for split, terms in (("train", timeline.train_terms), ("test", timeline.test_terms)):
        arrays.update({f"{split}_{term}": values for term, values in terms.items()})
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # uncompressed: float codes barely compress, and sizes stay what they say
    data = buffer.getvalue()
    digest = _sha256(data)
    name = f"timeline-{digest[:16]}.npz"
    files[name] = data
    entry: dict[str, Any] = {
        "file": name,
        "sha256": digest,
        "frames": timeline.frames,
        "points": timeline.points,
        "batches_per_epoch": timeline.batches_per_epoch,
        "loss_images": timeline.loss_images,
        "record_seconds": round(float(timeline.record_seconds), 3),
        "decoders": None,
    }
    if timeline.decoders:
        expected = decoder_state_keys(model)
        tensors: dict[str, torch.Tensor] = {}
        for frame, snapshot in sorted(timeline.decoders.items()):
            if set(snapshot) != set(expected):
                raise ValueError(f"the decoder snapshot of frame {frame} does not hold this model's decoder tensors")
            for key in expected:
                tensor = snapshot[key].detach().cpu().to(torch.float32).contiguous()
                if tensor.ndim >= 2:  # weight matrices and kernels: int8 rows; biases stay float32
                    q, scale = quantize_rows(tensor)
                    tensors[f"{frame}/{key}#int8"], tensors[f"{frame}/{key}#scale"] = q.contiguous(), scale.contiguous()
                else:
                    tensors[f"{frame}/{key}"] = tensor
        blob = save_safetensors_bytes(tensors)
        blob_digest = _sha256(blob)
        blob_name = f"decoders-{blob_digest[:16]}.safetensors"
        files[blob_name] = blob
        entry["decoders"] = {
            "file": blob_name,
            "sha256": blob_digest,
            "frames": sorted(timeline.decoders),
            "encoding": DECODER_ENCODING,
        }
    return entry


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
    by ``vae.onnx.importer`` (this only stores them, atomically, as :func:`save_model` stores weights)."""
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


def _described(
    history: list[dict[str, Any]] | None,
    metrics: dict[str, Any] | None,
    dataset: dict[str, Any] | None,
    extra: dict[str, Any] | None,
) -> dict[str, Any]:
    """The descriptive part of ``model.json``, the same for a trained and an imported model.

    A ``samples`` entry in ``metrics`` is checked (:func:`check_samples`) before anything is written, so a
    save never writes a model.json that its own load would refuse.
    """
    if metrics and "samples" in metrics:
        try:
            check_samples(metrics["samples"])
        except ValueError as error:
            raise ValueError(f"cannot save these metrics: samples {error}") from None
    return {
        "history": history or [],
        "metrics": metrics or {},
        "dataset": dataset or {},
        "extra": extra or {},
        "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _is_share(value: Any) -> bool:
    return _is_number(value) and 0.0 <= value <= 1.0


def _check_verdict(entry: Any, keys: frozenset[str]) -> None:
    """One judge's verdict (on samples or on reconstructions): exactly ``keys``, each of its kind."""
    if not isinstance(entry, dict) or set(entry) != keys:
        got = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
        raise ValueError(f"must be a JSON object with exactly the keys {sorted(keys)}, got {got}")
    n = entry["n"]
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not _is_share(entry["confident_share"]):
        raise ValueError(f"confident_share must be a number in [0, 1], got {entry['confident_share']!r}")
    shares = entry["class_shares"]
    if not isinstance(shares, list) or len(shares) < 2 or not all(_is_share(v) for v in shares):
        raise ValueError(f"class_shares must be a list of at least 2 numbers in [0, 1], got {shares!r}")
    if abs(sum(shares) - 1.0) > 1e-6:
        raise ValueError(f"class_shares must sum to 1, got {sum(shares)!r}")
    entropy = entry["entropy"]
    # The entropy of a histogram of C classes lies between 0 (one class) and log C (balanced).
    if not _is_number(entropy) or not 0.0 <= entropy <= math.log(len(shares)) + 1e-9:
        raise ValueError(f"entropy must be a number from 0 to log {len(shares)}, got {entropy!r}")


def check_samples(entry: Any) -> None:
    """Raise ValueError unless ``entry`` is a valid ``metrics["samples"]``: the judge's SHA-256, the seed, the
    confidence threshold, the verdict on ``n`` decoded samples and a ``reconstructions`` verdict::

        {"judge_sha256": "<64 hex>", "seed": 0, "confident_at": 0.9, "n": 10000, "confident_share": 0.73,
         "class_shares": [10 shares summing to 1], "entropy": 2.27,
         "reconstructions": {"n": 10000, "confident_share": 0.84, "class_shares": [...], "entropy": 2.26}}
    """
    keys = SAMPLES_KEYS | {"reconstructions"}
    if not isinstance(entry, dict) or set(entry) != keys:
        got = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
        raise ValueError(f"must be a JSON object with exactly the keys {sorted(keys)}, got {got}")
    _check_verdict({k: v for k, v in entry.items() if k != "reconstructions"}, SAMPLES_KEYS)
    if not isinstance(entry["judge_sha256"], str) or not SHA256_PATTERN.fullmatch(entry["judge_sha256"]):
        raise ValueError(f"judge_sha256 must be a hex SHA-256, got {entry['judge_sha256']!r}")
    if not isinstance(entry["seed"], int) or isinstance(entry["seed"], bool):
        raise ValueError(f"seed must be an integer, got {entry['seed']!r}")
    if not _is_number(entry["confident_at"]) or not 0.0 < entry["confident_at"] <= 1.0:
        raise ValueError(f"confident_at must be a probability in (0, 1], got {entry['confident_at']!r}")
    try:
        _check_verdict(entry["reconstructions"], SAMPLES_VERDICT_KEYS)
    except ValueError as error:
        raise ValueError(f"reconstructions {error}") from None
    if len(entry["reconstructions"]["class_shares"]) != len(entry["class_shares"]):
        raise ValueError("reconstructions must have as many class_shares as the samples")


def update_metrics(path: str | os.PathLike, metrics: dict[str, Any]) -> StoredModel:
    """Set ``metrics``' keys in the ``model.json`` of the model in folder ``path``, leaving every other file
    (weights, graphs, timeline) and every other field as it is; returns the metadata as read back.

    For numbers measured after the save, such as the judge's ``samples``. The new ``model.json`` is checked
    as a load checks it, then replaces the old one atomically under the folder's lock.
    """
    path = Path(path)
    current = read_metadata(path)  # a valid model first: never "repair" a folder by rewriting its metadata
    if "samples" in metrics:
        try:
            check_samples(metrics["samples"])
        except ValueError as error:
            raise ValueError(f"cannot save these metrics: samples {error}") from None
    with _folder_lock(current.path):
        meta = json.loads(_read_limited(path / META_FILE, MAX_META_BYTES, "model metadata"))
        meta["metrics"] = {**meta.get("metrics", {}), **metrics}
        data = json.dumps(meta, indent=2, allow_nan=False).encode()
        parse_metadata(path, data)
        write_atomically(path / META_FILE, data)
    return read_metadata(path)


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
            data_files = [
                p
                for p in path.iterdir()
                if any(pattern.fullmatch(p.name) for pattern in (WEIGHTS_PATTERN, GRAPH_PATTERN, TIMELINE_FILES))
            ]
            for stale in [*data_files, *path.glob(TEMPORARY_GLOB)]:
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
    return parse_metadata(path, _read_limited(path / META_FILE, MAX_META_BYTES, "model metadata"))


def parse_metadata(path: Path, raw: bytes) -> StoredModel:
    """Validate the bytes of ``path``'s ``model.json`` (read by the caller, who may need them as they are,
    as the export's zip does); raises :class:`StoreError` subclasses naming the field at fault."""
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
    if "samples" in meta.get("metrics", {}):
        try:
            check_samples(meta["metrics"]["samples"])
        except ValueError as error:
            raise CorruptModel(f"{path / META_FILE}: metrics.samples {error}") from None
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
        timeline=meta.get("timeline"),
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
    with the standard names; it is an :class:`~vae.onnx.model.OnnxModel`, on the CPU whatever ``device``.
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
    # onnxruntime is imported only for imported models
    from vae.onnx.graphs import GraphRefused
    from vae.onnx.model import OnnxModel

    try:
        return OnnxModel(stored.config, graphs["standard_encoder"], graphs["standard_decoder"])
    except GraphRefused as error:
        raise IncompatibleModel(f"{stored.path}: {error}") from None


def _checked_file(path: Path, entry: Any, what: str, pattern: str, limit: int) -> bytes:
    """The bytes of the file a model.json entry ``{"file", "sha256"}`` names, checked against its hash."""
    meta = path / META_FILE
    if not isinstance(entry, dict):
        raise CorruptModel(f"{meta}: the {what} entry must be a JSON object, got {type(entry).__name__}")
    name, digest = entry.get("file"), entry.get("sha256")
    if not isinstance(name, str) or not re.fullmatch(pattern, name):
        raise CorruptModel(f"{meta} names an invalid {what} file {name!r}")
    if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise CorruptModel(f"{meta} lacks a valid SHA-256 for the {what} file")
    data = _read_limited(path / name, limit, f"{what} file")
    if _sha256(data) != digest:
        raise CorruptModel(f"{path / name} does not match the SHA-256 recorded in {META_FILE} (truncated or altered)")
    return data


def _read_npz(path: Path, data: bytes) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` held in ``data``, without ever unpickling; sizes checked before reading."""
    if data[:1] == b"\x80":
        raise CorruptModel(f"{path} is a Python pickle, not an npz archive; it is never loaded")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise CorruptModel(f"{path} is not a valid npz archive ({error})") from None
    # A zip member may inflate far beyond its compressed size: refuse before inflating anything.
    unpacked = sum(member.file_size for member in members)
    if unpacked > MAX_TIMELINE_BYTES:
        raise CorruptModel(f"{path} would unpack to {unpacked:,} bytes, more than the {MAX_TIMELINE_BYTES:,} allowed")
    arrays = {}
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            for key in npz.files:
                arrays[key] = npz[key]
    except ValueError as error:
        if "pickle" in str(error).lower():
            raise CorruptModel(f"{path} holds a pickled (object) array, which is never loaded") from None
        raise CorruptModel(f"{path} is not a valid npz archive ({error})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise CorruptModel(f"{path} is not a valid npz archive ({error})") from None
    return arrays


def load_timeline(path: str | os.PathLike, *, decoders: bool = True) -> Timeline:
    """The timeline saved with the model in folder ``path`` (``decoders``: with its decoder snapshots).

    Raises :class:`NoTimeline` for a model saved without one, and the other :class:`StoreError` subclasses
    for a timeline file (or decoder file) that is missing, truncated, altered, pickled, of another model or
    of arrays that do not fit together. None of this affects :func:`load_model`.
    """
    stored = read_metadata(path)
    meta = stored.path / META_FILE
    entry = stored.timeline
    if entry is None:
        raise NoTimeline(f"{stored.path} has no timeline recorded (a model fitted, or trained before timelines)")
    data = _checked_file(stored.path, entry, "timeline", r"timeline-[0-9a-f]{16}\.npz", MAX_TIMELINE_BYTES)
    timeline_path = stored.path / entry["file"]
    arrays = _read_npz(timeline_path, data)
    missing = [name for name in TIMELINE_ARRAYS if name not in arrays]
    terms: dict[str, dict[str, np.ndarray]] = {"train": {}, "test": {}}
    unexpected = []
    for key, value in arrays.items():
        split, _, term = key.partition("_")
        if key in TIMELINE_ARRAYS:
            continue
        if split in terms and TERM_PATTERN.fullmatch(term):
            terms[split][term] = value
        else:
            unexpected.append(key)
    if missing or unexpected:
        raise CorruptModel(f"{timeline_path}: missing arrays {missing}, unexpected arrays {unexpected}")
    codes = arrays["codes"]
    if codes.ndim == 3 and codes.shape[2] != stored.config.latent_dim:
        raise IncompatibleModel(
            f"{timeline_path} holds {codes.shape[2]}-D codes, but the model is {stored.config.describe()}"
        )
    seconds, loss_images = entry.get("record_seconds"), entry.get("loss_images")
    timeline = Timeline(
        codes=codes,
        steps=arrays["steps"],
        epochs=arrays["epochs"],
        image_index=arrays["image_index"],
        train_terms=terms["train"],
        test_terms=terms["test"],
        batches_per_epoch=entry.get("batches_per_epoch"),  # checked below with the arrays
        record_seconds=float(seconds) if _is_number(seconds) else 0.0,
        loss_images=loss_images if _is_number(loss_images) else 0,
    )
    try:
        timeline.check()
    except ValueError as error:
        raise CorruptModel(f"{timeline_path}: {error}") from None
    if entry.get("frames") != timeline.frames:
        raise IncompatibleModel(
            f"{meta} records {entry.get('frames')!r} frames, {timeline_path} holds {timeline.frames}"
        )
    if decoders and entry.get("decoders") is not None:
        timeline.decoders = _load_decoders(stored, entry["decoders"], timeline.frames)
    return timeline


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_index(value: Any, length: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < length


def _fits(tensor: torch.Tensor, dtype: torch.dtype, shape: tuple[int, ...]) -> bool:
    return tensor.dtype == dtype and tuple(tensor.shape) == shape


def _load_decoders(stored: StoredModel, entry: Any, frames: int) -> dict[int, dict[str, torch.Tensor]]:
    """The decoder snapshots a timeline entry names, checked against the model the config builds."""
    data = _checked_file(
        stored.path, entry, "decoder snapshots", r"decoders-[0-9a-f]{16}\.safetensors", MAX_WEIGHTS_BYTES
    )
    blob_path = stored.path / entry["file"]
    kept = entry.get("frames")
    if not isinstance(kept, list) or not all(_is_index(f, frames) for f in kept) or len(set(kept)) != len(kept):
        raise CorruptModel(f"{stored.path / META_FILE}: decoder frames must be distinct frame indices below {frames}")
    if entry.get("encoding") != DECODER_ENCODING:
        raise IncompatibleModel(
            f"{blob_path} uses encoding {entry.get('encoding')!r}; this version reads {DECODER_ENCODING!r}"
        )
    try:
        tensors = load_safetensors_bytes(data)
    except (SafetensorError, ValueError, RuntimeError) as error:
        raise CorruptModel(f"{blob_path} is not a valid safetensors file ({error})") from None
    model = build_model(stored.config)
    state = model.state_dict()
    keys = decoder_state_keys(model)
    snapshots: dict[int, dict[str, torch.Tensor]] = {}
    problems: list[str] = []
    expected_names: set[str] = set()
    for frame in kept:
        snapshot = {}
        for key in keys:
            shape = tuple(state[key].shape)
            if len(shape) >= 2:
                q_name, s_name = f"{frame}/{key}#int8", f"{frame}/{key}#scale"
                expected_names |= {q_name, s_name}
                q, scale = tensors.get(q_name), tensors.get(s_name)
                if q is None or scale is None:
                    problems.append(f"missing {q_name if q is None else s_name}")
                elif not _fits(q, torch.int8, shape) or not _fits(scale, torch.float32, shape[:1]):
                    problems.append(f"{key} of frame {frame}: {q.dtype} {tuple(q.shape)} where {shape} int8 is needed")
                else:
                    snapshot[key] = dequantize_rows(q, scale)
            else:
                name = f"{frame}/{key}"
                expected_names.add(name)
                tensor = tensors.get(name)
                if tensor is None:
                    problems.append(f"missing {name}")
                elif not _fits(tensor, torch.float32, shape):
                    problems.append(f"{name}: {tensor.dtype} {tuple(tensor.shape)} where {shape} float32 is needed")
                else:
                    snapshot[key] = tensor
        snapshots[frame] = snapshot
    problems += [f"unexpected {name}" for name in sorted(set(tensors) - expected_names)]
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise IncompatibleModel(f"{blob_path} does not fit {stored.config.describe()}: {shown}")
    return snapshots


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
