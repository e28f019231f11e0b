"""A stranger's graph runs fenced: in a worker process of its own, with a memory limit and a time limit.

A graph is a program: a few bytes on disk can ask for tens of GB when it runs (a ``ConstantOfShape`` or an
``Expand`` to a huge shape), or loop for ever; and onnxruntime checks ``RunOptions.terminate`` only between
nodes, so one node that fills the memory runs to its end. So every graph that did not come from this
project's own export (an import's checks and measurements, and every later run of an imported model on the
server) runs in a :class:`Worker`: a child process (``subprocess``, a fresh interpreter that imports numpy,
onnx and onnxruntime but neither torch nor Streamlit) that sets ``RLIMIT_AS`` to :func:`memory_limit` on
itself before it parses a graph, and stops each run after the seconds it was given (a timer setting
``RunOptions.terminate`` in the child; the parent kills the child if even that gets no answer). A run that
passes either limit gets :class:`FenceError` naming which, and the worker is started afresh for the next
run; the parent, and every other session, carry on.

The child is trusted with nothing: what it sends back is a JSON header and raw float arrays whose sizes the
parent bounded in its request (no pickle), so even a child taken over by a graph cannot run code in the
parent or fill its memory.

:func:`memory_limit` is 2 GiB unless the environment variable ``VAE_ONNX_MEMORY_LIMIT`` says otherwise
(bytes, or a number with K, M or G: ``512M``, ``4G``). It bounds the worker's whole address space, the
interpreter and onnxruntime included (about 0.3 GiB of it), so a graph gets a little less.
"""

from __future__ import annotations

import atexit
import json
import os
import resource
import select
import signal
import struct
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path

import numpy as np

MEMORY_ENV = "VAE_ONNX_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = 2 * 2**30  # 2 GiB: 30 times what a 256-image batch of an honest conv AE needs
GRACE_SECONDS = 5.0  # past a run's limit, how long the parent waits for the child's own stop before killing it
START_SECONDS = 60.0  # for the child to import onnxruntime and answer, on a busy shared machine
MAX_HEADER_BYTES = 1 << 20
_ROOT = str(Path(__file__).resolve().parents[2])  # the folder holding the vae package, for the child's sys.path
_CHILD = f"import sys; sys.path.insert(0, {_ROOT!r}); from vae.onnx.fence import _serve; _serve()"


def parse_bytes(text: str) -> int:
    """``"2147483648"``, ``"512M"``, ``"2G"``, ``"1.5g"`` -> bytes; ValueError naming the variable otherwise."""
    units = {"k": 2**10, "m": 2**20, "g": 2**30}
    cleaned = text.strip().lower().removesuffix("ib").removesuffix("b")
    factor = units.get(cleaned[-1:], 1)
    try:
        number = float(cleaned[:-1] if cleaned[-1:] in units else cleaned) * factor
    except ValueError:
        raise ValueError(f"{MEMORY_ENV} must be a size such as 2G or 512M, got {text!r}") from None
    if not 64 * 2**20 <= number <= 2**50:
        raise ValueError(f"{MEMORY_ENV} must be from 64M to 1024T, got {text!r}")
    return int(number)


def memory_limit() -> int:
    """The worker's address-space limit in bytes: ``VAE_ONNX_MEMORY_LIMIT``, else :data:`DEFAULT_MEMORY_LIMIT`."""
    text = os.environ.get(MEMORY_ENV, "").strip()
    return parse_bytes(text) if text else DEFAULT_MEMORY_LIMIT


def size_text(n: int) -> str:
    """Bytes as the README speaks of the limit: ``2 GiB``, ``512 MiB``."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


_PEAK = [0]  # the largest peak any worker of this process reported, for peak_bytes()


def peak_bytes() -> int:
    """The largest peak resident size (bytes) any worker of this process has reported: what the graphs it ran
    cost, the interpreter and onnxruntime included."""
    return _PEAK[0]


class FenceError(RuntimeError):
    """A fenced run that passed a limit (``reason``: "memory", "time") or failed (``reason``: "failed")."""

    def __init__(self, message: str, reason: str, peak_bytes: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.peak_bytes = peak_bytes  # the worker's peak resident memory, where it could say


class Worker:
    """One fenced child process holding onnxruntime sessions by key; thread-safe (one run at a time).

    ``load(key, data, what)`` gives the child a graph (self-contained ONNX bytes, run under the rules of
    :func:`vae.onnx.graphs.session`); ``run(key, outputs, feed, ...)`` runs it. The child starts on first
    use and again after a run killed it, loading every graph given so far. :meth:`close` ends it; so does
    the garbage collection of the worker and the interpreter's exit, so no child outlives its parent's use.
    """

    def __init__(self, limit_bytes: int | None = None) -> None:
        self.limit_bytes = memory_limit() if limit_bytes is None else int(limit_bytes)
        self._graphs: dict[str, tuple[bytes, str]] = {}
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._finalizer: weakref.finalize | None = None
        self.peak_bytes = 0  # the largest resident size any of this worker's children reported
        self.starts = 0

    # -- the child's life --------------------------------------------------------------------------

    def _start(self) -> subprocess.Popen:
        process = _take_spare(self.limit_bytes)
        self._process = process
        self.starts += 1
        self._finalizer = weakref.finalize(self, _end, process)
        try:
            self._ask({"op": "hello"}, START_SECONDS, [])
            for key, (data, what) in self._graphs.items():
                self._load_in_child(key, data, what)
        except BaseException:
            self._kill()
            raise
        return process

    def _kill(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # kills and reaps the child once
        self._process, self._finalizer = None, None

    def close(self) -> None:
        """End the child (if any); the worker starts a new one if it is used again."""
        with self._lock:
            self._kill()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    # -- the protocol: a JSON header, then raw arrays ---------------------------------------------------

    def _ask(self, header: dict, seconds: float, arrays: Sequence[np.ndarray], max_bytes: int = 0):
        """Send a request and wait ``seconds`` for its answer -> (header, arrays); FenceError on a dead child."""
        process = self._process
        assert process is not None and process.stdin is not None and process.stdout is not None
        try:
            _write_frame(process.stdin, header, arrays)
        except (BrokenPipeError, OSError):
            raise self._died("before it could be given the request") from None
        deadline = time.monotonic() + seconds
        reply = _read_exact(process, 4, deadline)
        if reply is None:
            raise self._timed_out(deadline)
        (length,) = struct.unpack("<I", reply)
        if length > MAX_HEADER_BYTES:
            self._kill()
            raise FenceError("the worker process sent a malformed answer", "failed")
        raw = _read_exact(process, length, deadline)
        if raw is None:
            raise self._timed_out(deadline)
        answer = json.loads(raw)
        self.peak_bytes = max(self.peak_bytes, int(answer.get("peak", 0)))
        _PEAK[0] = max(_PEAK[0], self.peak_bytes)
        out = []
        total = 0
        for dtype, shape in answer.get("arrays", []):
            if dtype not in ("float32", "float64", "int64", "bool"):
                self._kill()
                raise FenceError(f"the worker process sent an array of type {dtype!r}", "failed")
            count = int(np.prod(shape, dtype=np.int64))
            size = count * np.dtype(dtype).itemsize
            total += size
            if total > max_bytes or count < 0:  # the child was told the bound; a child past it is not read on
                self._kill()
                raise FenceError("the worker process sent more than was asked for", "failed")
            data = _read_exact(process, size, deadline)
            if data is None:
                raise self._timed_out(deadline)
            out.append(np.frombuffer(data, dtype=dtype).reshape(shape))
        return answer, out

    def _died(self, when: str) -> FenceError:
        process = self._process
        code = None
        if process is not None:
            try:
                code = process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        self._kill()
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            if -code in (signal.SIGKILL, signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS):
                return FenceError(f"memory: the worker process ended with {name} {when}", "memory")
            return FenceError(f"the worker process ended with {name} {when}", "failed")
        return FenceError(f"the worker process exited with status {code} {when}", "failed")

    def _timed_out(self, deadline: float) -> FenceError:
        process = self._process
        if process is not None and time.monotonic() < deadline:  # its pipe closed early: it ended by itself
            return self._died("while running")
        self._kill()
        return FenceError("time: the worker process did not stop at the time limit and was killed", "time")

    # -- what callers use ------------------------------------------------------------------------------

    def _load_in_child(self, key: str, data: bytes, what: str) -> dict:
        blob = np.frombuffer(data, dtype=np.uint8)
        answer, _ = self._ask({"op": "load", "key": key, "what": what}, START_SECONDS, [blob])
        if answer["status"] == "refused":
            from vae.onnx.graphs import GraphRefused

            raise GraphRefused(answer["message"])
        if answer["status"] == "memory":
            raise FenceError(
                f"the {what} needed more than {size_text(self.limit_bytes)} of memory to be loaded", "memory"
            )
        return answer

    def load(self, key: str, data: bytes, what: str) -> tuple[list[str], list[str]]:
        """Give the child the graph ``data`` under ``key`` -> its (input names, output names).

        Raises :class:`~vae.onnx.graphs.GraphRefused` if onnxruntime cannot run it, :class:`FenceError` if
        loading it passed the memory limit.
        """
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._kill()
                self._start()
            try:
                answer = self._load_in_child(key, data, what)
            except FenceError:
                self._kill()
                raise
            self._graphs[key] = (data, what)
            return answer["inputs"], answer["outputs"]

    def run(
        self,
        key: str,
        outputs: Sequence[str] | None,
        feed: dict[str, np.ndarray],
        *,
        seconds: float,
        max_output_bytes: int,
    ) -> tuple[list[np.ndarray] | None, float]:
        """Run the graph ``key`` on ``feed`` -> (its outputs, or None if its timer stopped it; seconds taken).

        ``seconds``: the child's timer (``RunOptions.terminate``); the parent waits :data:`GRACE_SECONDS`
        more, then kills it (FenceError "time"). ``max_output_bytes``: outputs larger in all are refused in
        the child (FenceError "memory"), so nothing large ever reaches the parent. Other failures of
        onnxruntime: FenceError "failed" with its first line.
        """
        arrays = [np.ascontiguousarray(a) for a in feed.values()]
        header = {
            "op": "run",
            "key": key,
            "outputs": None if outputs is None else list(outputs),
            "names": list(feed),
            "seconds": seconds,
            "max_bytes": int(max_output_bytes),
        }
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._kill()
                self._start()
            answer, result = self._ask(header, seconds + GRACE_SECONDS, arrays, int(max_output_bytes))
        status = answer["status"]
        if status == "ok":
            return result, float(answer["seconds"])
        if status == "stopped":
            return None, float(answer["seconds"])
        raise FenceError(answer.get("message", status), status, int(answer.get("peak", 0)) or None)


# One fresh child started ahead (no graph ever given to it), so a worker's start costs a handshake, not an
# interpreter's start and onnxruntime's import: an import uses two workers, and a page loading an imported
# model one. A child is never reused once it has held a graph: each model's graphs stay fenced from the next.
_SPARE: dict[int, subprocess.Popen] = {}
_SPARE_LOCK = threading.Lock()


def _spawn(limit_bytes: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_NUM", "PYTHONSTARTUP"))}
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    return subprocess.Popen(
        [sys.executable, "-s", "-c", _CHILD, str(limit_bytes)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=None if os.environ.get("VAE_ONNX_WORKER_STDERR") else subprocess.DEVNULL,
        env=env,
        close_fds=True,
    )


def _take_spare(limit_bytes: int) -> subprocess.Popen:
    """The spare child for ``limit_bytes`` if it is alive (else a new one), and a new spare started behind it."""
    with _SPARE_LOCK:
        process = _SPARE.pop(limit_bytes, None)
        if process is None or process.poll() is not None:
            process = _spawn(limit_bytes)
        _SPARE[limit_bytes] = _spawn(limit_bytes)
    return process


def _drop_spares() -> None:
    with _SPARE_LOCK:
        for process in _SPARE.values():
            _end(process)
        _SPARE.clear()


atexit.register(_drop_spares)


def _end(process: subprocess.Popen) -> None:
    """Kill and reap ``process``: a child is never left running or a zombie."""
    if process.poll() is None:
        try:
            process.kill()
        except ProcessLookupError:
            pass
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass
    process.wait()


def refusal(error: FenceError, what: str, count: int, unit: str, limit_bytes: int, shapes: str = "") -> str:
    """The sentence a refusal gives for ``error``: "the decoder needed more than 2 GiB of memory when run on 8
    codes". ``count`` 0: the graph was being loaded, not run."""
    on = f"when run on {count} {unit}" if count else "when loaded"
    if error.reason == "memory":
        return f"the {what} needed more than {size_text(limit_bytes)} of memory {on}"
    if error.reason == "large":
        return f"the {what} gives outputs far larger than images or codes {on} ({error})"
    if error.reason == "time":
        return f"the {what} did not stop at its time limit {on}, and its worker process was killed"
    return f"onnxruntime failed running the {what} on {shapes or on}: {error}"


def run_once(data: bytes, what: str, feed: dict[str, np.ndarray], seconds: float, max_output_bytes: int):
    """One graph, one fenced run, the worker ended after -> outputs; FenceError if stopped or refused."""
    with Worker() as worker:
        worker.load("graph", data, what)
        result, _ = worker.run("graph", None, feed, seconds=seconds, max_output_bytes=max_output_bytes)
    if result is None:
        raise FenceError(f"the {what} took more than {seconds:g} s", "time")
    return result


# -- framing -------------------------------------------------------------------------------------------


def _write_frame(stream, header: dict, arrays: Sequence[np.ndarray]) -> None:
    """A frame: the header's length (4 bytes), the header (JSON, with each array's dtype and shape), the arrays."""
    raw = json.dumps({**header, "arrays": [[str(a.dtype), list(a.shape)] for a in arrays]}).encode()
    stream.write(struct.pack("<I", len(raw)) + raw)
    for array in arrays:
        stream.write(memoryview(np.ascontiguousarray(array)).cast("B"))
    stream.flush()


def _read_exact(process: subprocess.Popen, n: int, deadline: float) -> bytes | None:
    """``n`` bytes from the child's stdout by ``deadline`` -> bytes; None if the time ran out or it ended."""
    fd = process.stdout.fileno()
    chunks, left = [], n
    while left:
        wait = deadline - time.monotonic()
        if wait <= 0 or not select.select([fd], [], [], wait)[0]:
            return None
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


# -- the child -----------------------------------------------------------------------------------------


def _peak() -> int:
    """This process's peak resident size in bytes since its exec (VmHWM: ru_maxrss would include the parent's
    memory, which the forked child shared before it exec'd)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _is_memory(error: BaseException) -> bool:
    text = str(error).lower()
    return isinstance(error, MemoryError) or any(
        word in text for word in ("bad_alloc", "failed to allocate", "out of memory", "cannot allocate")
    )


def _serve() -> None:
    """The child's loop: limit itself, then answer requests on stdin until it closes."""
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash leaves no core file of a stranger's memory
    # The protocol owns the real stdout; anything a library prints goes to stderr.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    source = os.fdopen(0, "rb")
    sessions = {}
    while True:
        prefix = source.read(4)
        if len(prefix) < 4:
            return  # the parent closed the pipe or ended
        header = json.loads(source.read(struct.unpack("<I", prefix)[0]))
        arrays = []
        for dtype, shape in header.pop("arrays"):
            count = int(np.prod(shape, dtype=np.int64))
            arrays.append(np.frombuffer(source.read(count * np.dtype(dtype).itemsize), dtype=dtype).reshape(shape))
        answer, result = _answer(header, arrays, sessions)
        answer["peak"] = _peak()
        try:
            _write_frame(out, answer, result)
        except MemoryError:
            _write_frame(out, {"status": "memory", "message": "memory", "peak": _peak()}, [])


def _answer(header: dict, arrays: list[np.ndarray], sessions: dict) -> tuple[dict, list[np.ndarray]]:
    if header["op"] == "hello":
        return {"status": "ok"}, []
    if header["op"] == "load":
        from vae.onnx.graphs import GraphRefused, io_names, session

        try:
            runtime = session(arrays[0].tobytes(), header["what"])
        except GraphRefused as error:
            return {"status": "memory" if _is_memory(error) else "refused", "message": str(error)}, []
        except MemoryError:
            return {"status": "memory", "message": "memory"}, []
        sessions[header["key"]] = runtime
        inputs, outputs = io_names(runtime)
        return {"status": "ok", "inputs": inputs, "outputs": outputs}, []
    return _run(header, arrays, sessions)


def _run(header: dict, arrays: list[np.ndarray], sessions: dict) -> tuple[dict, list[np.ndarray]]:
    import onnxruntime

    from vae.onnx.graphs import first_line

    options = onnxruntime.RunOptions()
    options.log_severity_level = 4
    timer = threading.Timer(header["seconds"], setattr, (options, "terminate", True))
    timer.daemon = True
    started = time.perf_counter()
    timer.start()
    try:
        result = sessions[header["key"]].run(header["outputs"], dict(zip(header["names"], arrays)), options)
    except Exception as error:  # onnxruntime's own exception types, and MemoryError
        seconds = time.perf_counter() - started
        if options.terminate:
            return {"status": "stopped", "seconds": seconds}, []
        status = "memory" if _is_memory(error) else "failed"
        return {"status": status, "message": first_line(error), "seconds": seconds}, []
    finally:
        timer.cancel()
    seconds = time.perf_counter() - started
    result = [np.asarray(r) for r in result]
    if sum(r.nbytes for r in result) > header["max_bytes"]:
        shapes = ", ".join(str(list(r.shape)) for r in result)
        return {"status": "large", "message": f"outputs of shape {shapes}", "seconds": seconds}, []
    kinds = {np.dtype(k) for k in ("float32", "float64", "int64", "bool")}
    if any(r.dtype not in kinds for r in result):
        kinds_given = ", ".join(sorted({str(r.dtype) for r in result}))
        return {"status": "failed", "message": f"outputs of type {kinds_given}", "seconds": seconds}, []
    return {"status": "ok", "seconds": seconds}, result
