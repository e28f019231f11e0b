"""The import's checks of a stranger's encoder and decoder: read, folded into one file, probed.

:func:`read_graph` reads one graph (a file, or the bytes of an upload) within :data:`MAX_BYTES`, folds in
the external data that sits beside it (see its docstring for what is allowed); :func:`probe` chooses the
outputs used, cuts both graphs to them (:func:`kept`, then ``onnx.checker`` on the cut graph), runs them in a
fenced onnxruntime worker (:mod:`vae.onnx.fence`) on real test images and the codes they give, finds the
names and layouts to wire them by, and times them against :data:`MAX_SECONDS`. What they find is a
:class:`Wiring`, from which :mod:`vae.onnx.standard` builds the standard graphs; every refusal is an
:class:`ImportRefused` (the list is in :mod:`vae.onnx.importer`).

One module of some 650 lines on purpose: it is the whole catalogue of what a stranger's graph is refused
for, in the order the checks run, so a reader (or a reviewer of a new refusal) finds every rule in one place.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto

from vae.models import MAX_LATENT_DIM, MIN_LATENT_DIM, PIXEL_LAYOUTS, OnnxInterface
from vae.onnx.fence import FenceError, Worker, refusal
from vae.onnx.graphs import (
    GraphRefused,
    all_tensors,
    default_opset,
    first_line,
    needed,
    parse_graph,
    pruned,
    subgraphs,
    uses_external_data,
)

MAX_BYTES = 200 * 1024 * 1024  # per graph, external data included (MB of 2**20 bytes, as Streamlit counts them)
# onnxruntime-web 1.30 (static/vendor) loads ONNX files up to IR version 13; onnx.helper now writes 14.
PAGE_MAX_IR_VERSION = 13
MAX_SECONDS = 1.0  # per TIMED_BATCH images or codes: the explorer decodes on every click, grids by the hundred
TIMED_BATCH = 256
TIMING_ATTEMPTS = 2  # the best of two, so a busy moment on a shared machine does not refuse a good model
# Codes the decoder is checked on: the embeddings of real test images (where points lie) and draws around
# them (the empty space a click may land on), as vae.onnx.export.check_inputs does for exports.
RANDOM_CODES = 64
SEED = 0
# What a run may send back per image or code (8 KiB: 1,024 float64s; the largest output is 784 pixels, or
# two codes of at most 128 numbers): a graph whose output is larger is refused before it is copied out.
MAX_OUTPUT_BYTES_PER_ITEM = 8 * 1024


class ImportRefused(ValueError):
    """An encoder/decoder pair that cannot be imported; the message says why and, where it can, what to do."""


@dataclass(frozen=True)
class UserGraph:
    """One of the user's graphs, read, with any external data folded in; or (:func:`kept`) cut to the outputs used."""

    what: str  # "encoder" or "decoder"
    proto: onnx.ModelProto
    data: bytes  # ``proto`` serialised: as read, what is stored; once kept, what is run and wrapped
    source: dict[str, Any]  # file name, SHA-256 and size as given, the external data files folded in
    dropped_outputs: tuple[str, ...] = ()  # the outputs the import does not use, cut away by kept()
    dropped_nodes: int = 0  # the nodes that went with them (or that fed no output at all)


# ---------------------------------------------------------------------------------------------
# Reading a graph: size, format, external data (the whole file as read)


def read_graph(
    source: str | os.PathLike | bytes, what: str, max_bytes: int = MAX_BYTES, name: str | None = None
) -> UserGraph:
    """Read ``source`` (a file, or its bytes for an upload) and fold in its external data; :func:`kept` checks it.

    External data: a tensor may live in another file only if its ``location`` is a plain file name (no
    ``/``, ``\\``, ``..``, drive or absolute path) of a regular file (not a symlink) in the graph's own
    folder, within that file's size, and the graph plus all its data within ``max_bytes``. Those bytes are
    read here, by offset and length, and copied into the graph, so what is stored is one self-contained
    file and nothing else is ever opened for it. Bytes (an upload) have no folder, so they may not refer
    to external data at all.
    """
    folder: Path | None = None
    if isinstance(source, (bytes, bytearray)):
        data, label = bytes(source), name or f"{what}.onnx"
        if len(data) > max_bytes:
            raise ImportRefused(f"the {what} is {_mb(len(data))}, over the {_mb(max_bytes)} limit")
    else:
        path = Path(source)
        label = name or path.name
        try:
            info = path.stat()
        except OSError as error:
            raise ImportRefused(f"cannot read the {what} {path}: {error.strerror}") from None
        if not stat.S_ISREG(info.st_mode):
            raise ImportRefused(f"the {what} {path} is not a regular file")
        if info.st_size > max_bytes:
            raise ImportRefused(f"the {what} {path} is {_mb(info.st_size)}, over the {_mb(max_bytes)} limit")
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise ImportRefused(f"the {what} {path} grew beyond {_mb(max_bytes)} while being read")
        folder = Path(os.path.abspath(path)).parent  # beside the path given, as onnx itself resolves it
    try:
        proto = parse_graph(data, what)
    except GraphRefused as error:
        raise ImportRefused(str(error)) from None
    lowered = _lower_ir_version(proto, what)
    external = _fold_in_external_data(proto, folder, what, max_bytes, len(data))
    digest = hashlib.sha256(data).hexdigest()
    source_info = {"name": label, "sha256": digest, "bytes": len(data), "external_data": external}
    return UserGraph(what, proto, proto.SerializeToString() if external or lowered else data, source_info)


def _lower_ir_version(proto: onnx.ModelProto, what: str) -> bool:
    """Bring a graph newer than the in-page runtime reads down to :data:`PAGE_MAX_IR_VERSION` when its operator
    sets allow it (a file's IR version is often just the writing library's newest); True if it was lowered.

    The graph also runs in every viewer's browser, whose runtime would otherwise refuse it after the import.
    """
    if proto.ir_version <= PAGE_MAX_IR_VERSION:
        return False
    needed = onnx.helper.find_min_ir_version_for(list(proto.opset_import), ignore_unknown=True)
    if needed > PAGE_MAX_IR_VERSION:
        raise ImportRefused(
            f"the {what} imports operator set {default_opset(proto)}, which needs ONNX IR version {needed}: newer "
            f"than the in-page runtime (onnxruntime-web) reads (up to {PAGE_MAX_IR_VERSION}); export it with an "
            "older opset (20 works everywhere)"
        )
    proto.ir_version = PAGE_MAX_IR_VERSION
    return True


def _fold_in_external_data(
    proto: onnx.ModelProto, folder: Path | None, what: str, max_bytes: int, used: int
) -> list[str]:
    """Copy every external tensor's bytes into ``proto`` (see :func:`read_graph`) -> the files read.

    ``used``: the graph file's own size, which counts towards ``max_bytes`` with its data.
    """
    tensors = [tensor for tensor in all_tensors(proto) if uses_external_data(tensor)]
    if not tensors:
        return []
    if folder is None:
        raise ImportRefused(
            f"the {what} keeps {len(tensors)} tensor(s) in external data files, which an upload cannot carry: "
            "export it as one file (torch.onnx.export(..., external_data=False)), or import it with "
            "python -m vae.onnx import with the data file beside the graph"
        )
    handles: dict[str, int] = {}
    try:
        for tensor in tensors:
            entries = {entry.key: entry.value for entry in tensor.external_data}
            location = entries.get("location", "")
            _check_location(location, what)
            if location not in handles:
                handles[location] = _open_beside(folder, location, what)
            fd = handles[location]
            size = os.fstat(fd).st_size
            try:
                offset = int(entries.get("offset") or 0)
                length = int(entries["length"]) if entries.get("length") else size - offset
            except ValueError:
                raise ImportRefused(
                    f"the {what}'s external data for {tensor.name!r} has a bad offset or length"
                ) from None
            if offset < 0 or length < 0 or offset + length > size:
                raise ImportRefused(
                    f"the {what}'s tensor {tensor.name!r} lies outside {location!r} "
                    f"(offset {offset}, length {length}, file {size} bytes)"
                )
            used += length
            if used > max_bytes:  # checked before reading: a huge (or sparse) data file is never read
                raise ImportRefused(f"the {what} and its external data are over the {_mb(max_bytes)} limit")
            tensor.raw_data = os.pread(fd, length, offset)
            del tensor.external_data[:]
            tensor.data_location = TensorProto.DEFAULT
    finally:
        for fd in handles.values():
            os.close(fd)
    return sorted(handles)


def _check_location(location: str, what: str) -> None:
    plain = (
        location
        and "\x00" not in location
        and "/" not in location
        and "\\" not in location
        and ".." not in location
        and ":" not in location  # a Windows drive ("C:x") or stream ("x:y")
        and not os.path.isabs(location)
    )
    if not plain:
        raise ImportRefused(
            f"the {what}'s external data location {location!r} is not a plain file name beside the graph: only files "
            "in the graph's own folder are read, never ../ or absolute paths"
        )


def _open_beside(folder: Path, location: str, what: str) -> int:
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    path = folder / location
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ImportRefused(f"the {what}'s external data file {location!r} is not beside it in {folder}") from None
    except OSError:
        kind = "a symlink" if path.is_symlink() else "unreadable"
        raise ImportRefused(
            f"the {what}'s external data file {location!r} is {kind}; only regular files are read"
        ) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ImportRefused(f"the {what}'s external data {location!r} is not a regular file")
    return fd


# ---------------------------------------------------------------------------------------------
# Cutting a graph to the outputs used, then onnx.checker

# The domains onnx.defs describes: an operator of one of them that has no schema at the graph's version is
# unknown to onnx.checker and to onnxruntime alike. Other domains are left to onnxruntime (which ships
# com.microsoft's operators and no one else's).
ONNX_DOMAINS = ("", "ai.onnx", "ai.onnx.ml", "ai.onnx.preview.training")


def kept(graph: UserGraph, outputs: Sequence[str]) -> UserGraph:
    """``graph`` cut to ``outputs`` (its other outputs and every node only they need dropped), then checked.

    Refused, naming the operator and the output it feeds: a node of a standard domain that no operator set
    of the graph's version defines (as a converter that says "not supported" yet writes the file leaves).
    Then ``onnx.checker`` (full check, shape inference included) on the cut graph.
    """
    model, dropped = pruned(graph.proto, outputs)
    left_out = tuple(o.name for o in graph.proto.graph.output if o.name not in outputs)
    versions = {("" if o.domain == "ai.onnx" else o.domain): o.version for o in model.opset_import}
    for top, node in _walk(model.graph):
        domain = "" if node.domain == "ai.onnx" else node.domain
        if domain not in ONNX_DOMAINS or domain not in versions or _is_local_function(model, node):
            continue  # an unimported domain is onnx.checker's to refuse, a custom one onnxruntime's
        try:
            onnx.defs.get_schema(node.op_type, versions[domain], domain)
        except onnx.defs.SchemaError:
            fed = outputs_fed(model.graph, top, outputs)
            opset = f"{domain or 'ai.onnx'} {versions[domain]}"
            raise ImportRefused(
                f"the {graph.what}'s output {fed[0]!r} needs the operator {node.op_type} (node {node.name!r}), which "
                f"ONNX ({opset}) does not define, so nothing can run it: export the {graph.what} without it, or "
                "use outputs that do not need it"
            ) from None
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as error:  # ValidationError, InferenceError, and the C++ checker's own types
        raise ImportRefused(f"the {graph.what} fails onnx.checker: {first_line(error)}") from None
    data = graph.data if not dropped and not left_out else model.SerializeToString()
    return UserGraph(graph.what, model, data, graph.source, left_out, dropped)


def outputs_fed(graph: onnx.GraphProto, index: int, outputs: Sequence[str]) -> list[str]:
    """Which of ``outputs`` node ``index`` of ``graph`` feeds (each one needs it)."""
    return [name for name in outputs if index in needed(graph, [name])[0]]


def custom_operators(graph: UserGraph) -> str:
    """The operators of domains onnxruntime may not ship, with the output each feeds: for its refusal."""
    outputs = [o.name for o in graph.proto.graph.output]
    found = []
    for top, node in _walk(graph.proto.graph):
        if node.domain not in (*ONNX_DOMAINS, "com.microsoft") and not _is_local_function(graph.proto, node):
            fed = outputs_fed(graph.proto.graph, top, outputs)
            found.append(f"{node.domain}.{node.op_type}" + (f" (for {fed[0]!r})" if fed else ""))
    return f"; it needs {', '.join(dict.fromkeys(found))}" if found else ""


def _walk(graph: onnx.GraphProto):
    """Every node of ``graph``, the bodies' included -> (index of its top-level node, node)."""
    for index, node in enumerate(graph.node):
        yield index, node
        pending = list(subgraphs(node))
        while pending:
            body = pending.pop()
            for inner in body.node:
                yield index, inner
                pending.extend(subgraphs(inner))


def _is_local_function(model: onnx.ModelProto, node: onnx.NodeProto) -> bool:
    return any(f.domain == node.domain and f.name == node.op_type for f in model.functions)


# ---------------------------------------------------------------------------------------------
# Inputs and outputs


def _dims(value_info: onnx.ValueInfoProto) -> list[int | str | None]:
    """Each axis: its size, its symbolic name, or None where the graph says nothing."""
    shape = value_info.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in shape.dim]


def _shape_text(dims: Sequence[int | str | None]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def _real_inputs(proto: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """Graph inputs without the initializers older IR versions list among them."""
    initialized = {t.name for t in proto.graph.initializer}
    return [i for i in proto.graph.input if i.name not in initialized]


def _check_float(value_info: onnx.ValueInfoProto, what: str) -> None:
    elem_type = value_info.type.tensor_type.elem_type
    if not value_info.type.HasField("tensor_type") or elem_type not in (TensorProto.FLOAT, TensorProto.UNDEFINED):
        type_name = TensorProto.DataType.Name(elem_type) if value_info.type.HasField("tensor_type") else "not a tensor"
        raise ImportRefused(f"the {what} {value_info.name!r} is {type_name}: it must be float32")


def _single_input(proto: onnx.ModelProto, what: str, takes: str) -> onnx.ValueInfoProto:
    """The graph's one input: the standard graphs feed it ``takes`` and nothing else."""
    inputs = _real_inputs(proto)
    if len(inputs) != 1:
        names = [i.name for i in inputs]
        raise ImportRefused(f"the {what} has {len(inputs)} inputs {names}: it must take the {takes} alone")
    return inputs[0]


def _check_input(value_info: onnx.ValueInfoProto, what: str, rank: tuple[int, ...]) -> list[int | str | None] | None:
    """A float32 input with a dynamic first (batch) axis and one of the ranks allowed -> its axes (None: the
    graph records no shape, so the probe runs decide)."""
    _check_float(value_info, what)
    dims = _dims(value_info)
    if not value_info.type.tensor_type.HasField("shape"):
        return None
    if len(dims) not in rank:
        raise ImportRefused(
            f"the {what} {value_info.name!r} has rank {len(dims)} {_shape_text(dims)}; "
            f"expected rank {' or '.join(map(str, rank))}"
        )
    if isinstance(dims[0], int) and dims[0] > 0:
        raise ImportRefused(
            f"the {what} {value_info.name!r} has a fixed batch size of {dims[0]} {_shape_text(dims)}: export it with a "
            "dynamic first axis (torch: dynamic_shapes or dynamic_axes; tf2onnx: a None batch dimension)"
        )
    return dims


def _fitting_layouts(dims: Sequence[int | str | None] | None) -> list[str]:
    """The pixel layouts an input of axes ``dims`` (batch first; None: unknown) may take, in order of preference."""
    if dims is None:
        return list(PIXEL_LAYOUTS)
    rest = dims[1:]
    return [
        name
        for name, shape in PIXEL_LAYOUTS.items()
        if len(shape) == len(rest) and all(not isinstance(d, int) or d == s for d, s in zip(rest, shape))
    ]


def _encoder_output_names(
    proto: onnx.ModelProto, names: Sequence[str] | None, among: Sequence[str] | None = None
) -> list[str]:
    """The encoder outputs the import takes: ``names`` if given, else found (the rules are :mod:`vae.onnx.importer`'s)."""
    available = list(among) if among is not None else [o.name for o in proto.graph.output]
    if names:
        missing = [n for n in names if n not in available]
        if missing or not 1 <= len(names) <= 2 or len(set(names)) != len(names):
            raise ImportRefused(
                f"encoder outputs {list(names)} must be 1 or 2 different names among the encoder's outputs {available}"
            )
        return list(names)
    if len(available) == 1:
        return available
    if len(available) == 2:
        first, second = (n.lower() for n in available)
        # (mean, logvar) by order, unless only the first one's name speaks of a variance.
        return available[::-1] if "var" in first and "var" not in second else available
    means = [n for n in available if "mean" in n.lower() or n.lower() in ("mu", "z_mu")]
    logvars = [n for n in available if "log_var" in n.lower() or "logvar" in n.lower()]
    if len(means) == 1 and len(logvars) == 1:
        return [means[0], logvars[0]]  # e.g. Keras's [z_mean, z_log_var, z]: the sample z is left out
    if len(available) == 3:
        # The sample z = mean + exp(logvar / 2) * eps is computed from the other two outputs: tf2onnx names
        # Keras's [z_mean, z_log_var, z] output_0..2, and the graph still says which one is the draw.
        samples = [n for n in available if set(available) - {n} <= needed(proto.graph, [n])[1]]
        if len(samples) == 1:
            return _encoder_output_names(proto, None, [n for n in available if n != samples[0]])
    raise ImportRefused(
        f"the encoder has {len(available)} outputs {available}: name the mean (and the log-variance) "
        "with --encoder-outputs MEAN,LOGVAR"
    )


def _one(items: list[onnx.ValueInfoProto], name: str | None, what: str, option: str) -> onnx.ValueInfoProto:
    names = [i.name for i in items]
    if name is not None:
        if name not in names:
            raise ImportRefused(f"the {what} has no {name!r} among {names}")
        return items[names.index(name)]
    if len(items) != 1:
        raise ImportRefused(f"the {what} has {len(items)} of them, {names}: say which with {option}")
    return items[0]


# ---------------------------------------------------------------------------------------------
# Running the user's graphs: shapes, values, speed


@dataclass(frozen=True)
class Fenced:
    """One of the user's graphs, loaded in a fenced worker (:mod:`vae.onnx.fence`) under ``key``."""

    worker: Worker
    key: str


def _bounded(
    runtime: Fenced, outputs: list[str], feed: dict[str, np.ndarray], what: str, unit: str, limit: float
) -> tuple[list[np.ndarray] | None, float]:
    """One fenced run, stopped once it passes ``limit`` seconds -> (outputs, or None if stopped; seconds).

    onnxruntime checks ``RunOptions.terminate`` between nodes (and loop iterations), so a graph of any
    slowness costs about ``limit`` here, not its own time; one node that never returns is killed with its
    worker (:data:`vae.onnx.fence.GRACE_SECONDS` later). A run past the worker's memory limit is refused.
    """
    count = len(next(iter(feed.values())))
    try:
        return runtime.worker.run(
            runtime.key, outputs, feed, seconds=limit, max_output_bytes=count * MAX_OUTPUT_BYTES_PER_ITEM
        )
    except FenceError as error:
        if error.reason == "time":
            return None, limit
        shapes = ", ".join(f"{k} {list(v.shape)}" for k, v in feed.items())
        raise ImportRefused(refusal(error, what, count, unit, runtime.worker.limit_bytes, shapes)) from None


def _too_slow(what: str, unit: str, seconds: float | None, limit: float, batch: int = TIMED_BATCH) -> ImportRefused:
    """``seconds`` None: every run was stopped at the limit."""
    took = f"over {limit:g} s" if seconds is None else f"{seconds:.2f} s"
    return ImportRefused(
        f"the {what} takes {took} per {batch} {unit}, more than the {limit:g} s allowed per {TIMED_BATCH}: the pages "
        "run it on every click and on whole grids"
    )


def _small_run(
    runtime, outputs: list[str], feed: dict[str, np.ndarray], what: str, unit: str, limit: float
) -> list[np.ndarray]:
    """A first run on a few inputs (shapes, and a warm-up for the timing); one slower than ``limit`` is refused."""
    result, seconds = _bounded(runtime, outputs, feed, what, unit, limit)
    if result is None or seconds > limit:
        raise _too_slow(what, unit, None if result is None else seconds, limit, batch=len(next(iter(feed.values()))))
    return result


def _timed(
    runtime, outputs: list[str], feed: dict[str, np.ndarray], what: str, unit: str, limit: float
) -> tuple[list[np.ndarray], float]:
    """The best of :data:`TIMING_ATTEMPTS` bounded runs -> (outputs, seconds); slower than ``limit``: refused."""
    completed = []
    for _ in range(TIMING_ATTEMPTS):
        result, seconds = _bounded(runtime, outputs, feed, what, unit, limit)
        if result is not None and seconds <= limit:
            return result, seconds
        if result is not None:
            completed.append(seconds)
    raise _too_slow(what, unit, min(completed, default=None), limit)


def _check_finite(arrays: Sequence[np.ndarray], names: Sequence[str], what: str, unit: str) -> None:
    for array, name in zip(arrays, names):
        bad = ~np.isfinite(array).reshape(len(array), -1).all(axis=1)
        if bad.any():
            raise ImportRefused(
                f"the {what}'s output {name!r} is NaN or infinite for {int(bad.sum())} of {len(array)} {unit}"
            )


@dataclass(frozen=True)
class Wiring:
    """What the probe runs found: the interface, the latent size, and the numbers to check against."""

    interface: OnnxInterface
    latent_dim: int
    images: np.ndarray  # [M, 1, 28, 28]: the probe images
    encoded: list[np.ndarray]  # the user's encoder's outputs on them (mean[, logvar]) [M, D]
    codes: np.ndarray  # [M, D]: the probe codes
    decoded: np.ndarray  # the user's decoder on them, as probabilities, [M, 1, 28, 28]
    seconds: dict[str, float]  # per TIMED_BATCH, encoder and decoder
    encoder: UserGraph  # the user's graphs cut to the outputs used (kept): what the standard graphs wrap
    decoder: UserGraph


def _probe_encoder(
    graph: UserGraph, runtime, images: np.ndarray, names: list[str], layout: str | None, limit: float
) -> tuple[str, str, list[np.ndarray], float]:
    """``graph`` kept to its outputs ``names`` -> (input name, layout, outputs on ``images``, seconds per TIMED_BATCH)."""
    chosen = _single_input(graph.proto, "encoder", "images")
    dims = _check_input(chosen, "encoder's input", rank=(2, 3, 4))
    layouts = _fitting_layouts(dims)
    if layout is not None:
        if layout not in PIXEL_LAYOUTS:
            raise ImportRefused(f"input layout must be one of {list(PIXEL_LAYOUTS)}, got {layout!r}")
        if layout not in layouts:
            raise ImportRefused(
                f"input layout {layout!r} {list(PIXEL_LAYOUTS[layout])} does not fit the encoder's "
                f"input {chosen.name!r} {_shape_text(dims)}"
            )
        layouts = [layout]
    if not layouts:
        raise ImportRefused(
            f"the encoder's input {chosen.name!r} is {_shape_text(dims)}: expected 784 pixels as "
            "[B, 1, 28, 28], [B, 28, 28, 1], [B, 28, 28] or [B, 784]"
        )
    for value_info in graph.proto.graph.output:  # shapes are checked on the run: declared ones can be stale
        if value_info.name in names:
            _check_float(value_info, "encoder's output")
    failures = []
    for candidate in layouts:  # a layout the graph leaves open is settled by which one runs
        feed = {chosen.name: images[:8].reshape(-1, *PIXEL_LAYOUTS[candidate])}
        try:
            small = _small_run(runtime, names, feed, "encoder", "images", limit)
            break
        except ImportRefused as error:
            failures.append(str(error))
    else:
        raise ImportRefused(failures[0] if len(failures) == 1 else " / ".join(failures))
    for name, array in zip(names, small):
        if array.ndim != 2 or len(array) != 8 or array.dtype != np.float32:
            raise ImportRefused(
                f"the encoder's output {name!r} is {array.dtype} {list(array.shape)} for 8 images; "
                "expected float32 [8, D]"
            )
    latent_dim = small[0].shape[1]
    if not MIN_LATENT_DIM <= latent_dim <= MAX_LATENT_DIM:
        raise ImportRefused(
            f"the encoder gives codes of D = {latent_dim} numbers; D must be from {MIN_LATENT_DIM} to {MAX_LATENT_DIM}"
        )
    if len(small) == 2 and small[1].shape != small[0].shape:
        raise ImportRefused(
            f"the encoder's mean {list(small[0].shape)} and log-variance {list(small[1].shape)} differ in shape"
        )
    feed = {chosen.name: images.reshape(-1, *PIXEL_LAYOUTS[candidate])}
    encoded, seconds = _timed(runtime, names, feed, "encoder", "images", limit)
    for name, array in zip(names, encoded):  # a shape that follows the values, not the batch, is caught here
        if array.shape != (len(images), latent_dim):
            raise ImportRefused(
                f"the encoder's output {name!r} is {list(array.shape)} for {len(images)} images, but "
                f"{list(small[0].shape)} for 8: its shape must follow the batch alone"
            )
    _check_finite(encoded, names, "encoder", "test images")
    return chosen.name, candidate, encoded, seconds


def _probe_codes(embedded: np.ndarray) -> np.ndarray:
    """TIMED_BATCH codes: the first embeddings, then RANDOM_CODES draws of N(0, s^2 I) with s their spread."""
    generator = np.random.default_rng(SEED)
    spread = max(1.0, float(embedded.std()))
    extra = generator.normal(size=(RANDOM_CODES, embedded.shape[1])) * spread
    return np.concatenate([embedded[: TIMED_BATCH - RANDOM_CODES], extra]).astype(np.float32)


def _probe_decoder(
    graph: UserGraph, runtime, codes: np.ndarray, logits: bool, limit: float
) -> tuple[str, str, np.ndarray, float]:
    """``graph`` kept to its image output -> (input name, output layout, probabilities [M, 1, 28, 28], seconds per
    TIMED_BATCH)."""
    latent_dim = codes.shape[1]
    chosen = _single_input(graph.proto, "decoder", "codes")
    dims = _check_input(chosen, "decoder's input", rank=(2,))
    if dims is not None and isinstance(dims[1], int) and dims[1] != latent_dim:
        raise ImportRefused(
            f"the decoder takes codes of {dims[1]} numbers {_shape_text(dims)}, the encoder gives {latent_dim}"
        )
    (out,) = graph.proto.graph.output
    _check_float(out, "decoder's output")
    (small,) = _small_run(runtime, [out.name], {chosen.name: codes[:8]}, "decoder", "codes", limit)
    layout = next((name for name, shape in PIXEL_LAYOUTS.items() if small.shape[1:] == shape), None)
    if small.dtype != np.float32 or len(small) != 8 or layout is None:
        raise ImportRefused(
            f"the decoder's output {out.name!r} is {small.dtype} {list(small.shape)} for 8 codes; "
            "expected float32 [8, 784], [8, 1, 28, 28], [8, 28, 28, 1] or [8, 28, 28]"
        )
    (decoded,), seconds = _timed(runtime, [out.name], {chosen.name: codes}, "decoder", "codes", limit)
    if decoded.shape != (len(codes), *small.shape[1:]):  # a shape that follows the values, not the batch
        raise ImportRefused(
            f"the decoder's output {out.name!r} is {list(decoded.shape)} for {len(codes)} codes, but "
            f"{list(small.shape)} for 8: its shape must follow the batch alone"
        )
    _check_finite([decoded], [out.name], "decoder", "codes")
    if logits:
        decoded = 1.0 / (1.0 + np.exp(-decoded.astype(np.float64)))
    low, high = float(decoded.min()), float(decoded.max())
    if low < 0.0 or high > 1.0:
        hint = (
            "" if logits else " If it gives logits (no sigmoid at its end), say so with the logits option (--logits)."
        )
        raise ImportRefused(f"the decoder's outputs reach {low:.3g} to {high:.3g} on test codes, outside [0, 1].{hint}")
    return chosen.name, layout, decoded.astype(np.float32).reshape(-1, 1, 28, 28), seconds


def probe(
    encoder: UserGraph,
    decoder: UserGraph,
    images: np.ndarray,
    *,
    encoder_outputs: Sequence[str] | None = None,
    decoder_output: str | None = None,
    input_layout: str | None = None,
    logits: bool = False,
    max_seconds: float = MAX_SECONDS,
    worker: Worker | None = None,
) -> Wiring:
    """Choose the outputs used, cut both graphs to them (:func:`kept`), run them on the probe images ``[M, 1, 28,
    28]`` (M = TIMED_BATCH) and codes -> their wiring, which holds the cut graphs.

    Every run is fenced (:mod:`vae.onnx.fence`): in ``worker``, or in one started and ended here.
    """
    if worker is None:
        with Worker() as own:
            return probe(
                encoder,
                decoder,
                images,
                encoder_outputs=encoder_outputs,
                decoder_output=decoder_output,
                input_layout=input_layout,
                logits=logits,
                max_seconds=max_seconds,
                worker=own,
            )
    chosen = {
        "encoder": _encoder_output_names(encoder.proto, encoder_outputs),
        "decoder": [
            _one(list(decoder.proto.graph.output), decoder_output, "decoder's outputs", "--decoder-output").name
        ],
    }
    graphs = {graph.what: kept(graph, chosen[graph.what]) for graph in (encoder, decoder)}
    runtimes = {}
    for what, graph in graphs.items():
        try:
            worker.load(f"user {what}", graph.data, what)
        except GraphRefused as error:
            raise ImportRefused(f"{error}{custom_operators(graph)}") from None
        except FenceError as error:
            raise ImportRefused(refusal(error, what, 0, "", worker.limit_bytes)) from None
        runtimes[what] = Fenced(worker, f"user {what}")
    enc_input, layout, encoded, enc_seconds = _probe_encoder(
        graphs["encoder"], runtimes["encoder"], images, chosen["encoder"], input_layout, max_seconds
    )
    codes = _probe_codes(encoded[0])
    dec_input, out_layout, decoded, dec_seconds = _probe_decoder(
        graphs["decoder"], runtimes["decoder"], codes, logits, max_seconds
    )
    interface = OnnxInterface(
        encoder_input=enc_input,
        input_layout=layout,
        encoder_outputs=tuple(chosen["encoder"]),
        decoder_input=dec_input,
        decoder_output=chosen["decoder"][0],
        output_layout=out_layout,
        logits=logits,
    )
    seconds = {"encoder": enc_seconds, "decoder": dec_seconds}
    return Wiring(
        interface, codes.shape[1], images, encoded, codes, decoded, seconds, graphs["encoder"], graphs["decoder"]
    )


def _mb(n: int) -> str:
    return f"{n / 2**20:,.1f} MB"
