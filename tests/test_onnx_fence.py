"""The fence (vae.onnx.fence): a stranger's graph runs in a worker process with a memory and a time limit.

The hostile catalogue: decoders small on disk that ask, when run or parsed, for what no page can give (tens
of GB, 10^12 loop iterations, memory that grows with the batch, a shape that follows the values, subgraphs
nested too deep, a protobuf nested past the parser's limit). Each is refused with its reason through
``vae.import_onnx`` and ``python -m vae.onnx import`` (exit 2), no folder is left, the importing process's
own peak memory stays far under the limit and its workers' under the limit plus a margin, and a good
import right after succeeds in the same process. The Train page's upload: tests/test_pages_onnx.py.
"""

from __future__ import annotations

import gc
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REAL_RAW, REPO
from tests.onnx_graphs import (
    HOSTILE,
    constant_of_shape_decoder,
    hostile_bytes,
    mlp_decoder,
    mlp_encoder,
    nested_decoder,
)
from vae.onnx.fence import DEFAULT_MEMORY_LIMIT, MEMORY_ENV, FenceError, Worker, memory_limit, parse_bytes
from vae.onnx.graphs import MAX_SUBGRAPH_DEPTH, GraphRefused, parse_graph, session, subgraph_depth

DATA = REPO / "data"
needs_mnist = pytest.mark.skipif(
    not all((REAL_RAW / name).is_file() for name in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte")),
    reason="MNIST not fetched: run `python -m vae.data fetch`",
)
LIMIT = DEFAULT_MEMORY_LIMIT
MARGIN = 2**30  # what the worker's peak may pass the limit by: none in practice (RLIMIT_AS bounds it)


def write_pair(name: str, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "e.onnx").write_bytes(mlp_encoder().model.SerializeToString())
    (folder / "d.onnx").write_bytes(hostile_bytes(name))
    return folder / "e.onnx", folder / "d.onnx"


def environment() -> dict[str, str]:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop(MEMORY_ENV, None)  # the documented default
    return env


# The API in a process of its own, so its peak is its own: the hostile import, then a good one.
API_CHILD = """
import json, sys
from pathlib import Path
import torch
torch.set_num_threads(1)
from vae.onnx.fence import _peak, peak_bytes
from vae.onnx.importer import ImportRefused, import_onnx
encoder, decoder, good_encoder, good_decoder, out, data = sys.argv[1:7]
result = {}
try:
    import_onnx(encoder, decoder, out, data_dir=data)
except ImportRefused as error:
    result["refused"] = str(error)
result["folder_left"] = Path(out).exists() or Path(out).parent.exists()
result["peak"] = _peak()
result["workers_peak"] = peak_bytes()
_, stored = import_onnx(good_encoder, good_decoder, out, data_dir=data)
result["good"] = stored.name
print(json.dumps(result))
"""


@needs_mnist
@pytest.mark.parametrize("name", list(HOSTILE))
def test_the_api_refuses_each_hostile_decoder_within_the_memory_limit(name, tmp_path) -> None:
    encoder, decoder = write_pair(name, tmp_path / "in")
    good = mlp_decoder().save(tmp_path / "in" / "good-d.onnx")
    out = tmp_path / "models" / "new"
    done = subprocess.run(
        [sys.executable, "-c", API_CHILD, str(encoder), str(decoder), str(encoder), str(good), str(out), str(DATA)],
        capture_output=True,
        text=True,
        env=environment(),
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"{name}: {result['refused']!r}; importer peak {result['peak'] / 2**20:.0f} MiB, "
        f"workers' peak {result['workers_peak'] / 2**20:.0f} MiB"
    )
    assert "refused" in result and re.search(HOSTILE[name][1], result["refused"])
    assert not result["folder_left"]
    assert result["peak"] < LIMIT  # the importing process never ran the graph
    assert result["workers_peak"] < LIMIT + MARGIN  # 0: refused before any graph ran
    assert result["good"] == "new"  # the same process imports a good pair right after


@needs_mnist
@pytest.mark.parametrize("name", list(HOSTILE))
def test_the_command_line_refuses_each_hostile_decoder_with_exit_2(name, tmp_path) -> None:
    encoder, decoder = write_pair(name, tmp_path / "in")
    out = tmp_path / "models" / "new"
    command = [sys.executable, "-m", "vae.onnx", "import", str(encoder), str(decoder), "--out", str(out)]
    with open(tmp_path / "stderr", "w+") as errors:
        process = subprocess.Popen(
            [*command, "--data-dir", str(DATA)], stdout=subprocess.DEVNULL, stderr=errors, env=environment()
        )
        _, status, usage = os.wait4(process.pid, 0)  # its rusage: itself and the workers it reaped
        process.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        error = errors.read()
    print(f"{name}: exit {process.returncode}, peak {usage.ru_maxrss / 2**10:.0f} MiB: {error.strip()}")
    assert process.returncode == 2, error
    assert error.startswith("error: not imported: ") and re.search(HOSTILE[name][1], error)
    assert not out.exists() and not out.parent.exists()
    assert usage.ru_maxrss * 1024 < LIMIT + MARGIN


# ---------------------------------------------------------------------------------------------
# The worker itself


def graph_bytes() -> bytes:
    return mlp_decoder().model.SerializeToString()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def test_a_fenced_run_gives_what_onnxruntime_gives_in_process() -> None:
    codes = np.random.default_rng(0).normal(size=(300, 2)).astype(np.float32)
    expected = session(graph_bytes(), "decoder").run(None, {"code": codes})
    with Worker() as worker:
        assert worker.load("d", graph_bytes(), "decoder") == (["code"], ["pixels"])
        result, seconds = worker.run("d", None, {"code": codes}, seconds=10, max_output_bytes=300 * 8192)
    np.testing.assert_array_equal(result[0], expected[0])
    assert seconds >= 0


def test_the_worker_limits_its_own_address_space() -> None:
    with Worker(limit_bytes=1536 * 2**20) as worker:
        worker.load("d", graph_bytes(), "decoder")
        limits = Path(f"/proc/{worker.pid}/limits").read_text()
    line = next(row for row in limits.splitlines() if row.startswith("Max address space"))
    assert line.split()[3:5] == [str(1536 * 2**20)] * 2


def test_a_run_past_the_limit_is_refused_and_the_worker_comes_back() -> None:
    with Worker(limit_bytes=512 * 2**20) as worker:
        worker.load("huge", constant_of_shape_decoder(1).model.SerializeToString(), "decoder")
        worker.load("good", graph_bytes(), "decoder")
        with pytest.raises(FenceError, match="Failed to allocate memory") as refused:
            worker.run("huge", None, {"code": np.zeros((8, 2), np.float32)}, seconds=10, max_output_bytes=8 << 13)
        assert refused.value.reason == "memory"
        result, _ = worker.run(
            "good", None, {"code": np.zeros((8, 2), np.float32)}, seconds=10, max_output_bytes=8 << 13
        )
        assert result[0].shape == (8, 784)


def test_outputs_larger_than_asked_for_never_reach_the_parent() -> None:
    with Worker() as worker:
        worker.load("d", graph_bytes(), "decoder")
        with pytest.raises(FenceError, match="outputs of shape \\[8, 784\\]") as refused:
            worker.run("d", None, {"code": np.zeros((8, 2), np.float32)}, seconds=10, max_output_bytes=1000)
    assert refused.value.reason == "large"


def test_a_graph_onnxruntime_cannot_load_is_refused_by_name() -> None:
    model = mlp_decoder().model
    model.graph.node[0].op_type = "NoSuchOperator"
    with Worker() as worker, pytest.raises(GraphRefused, match="onnxruntime cannot run the decoder"):
        worker.load("d", model.SerializeToString(), "decoder")


def test_a_killed_worker_is_started_again_with_its_graphs() -> None:
    with Worker() as worker:
        worker.load("d", graph_bytes(), "decoder")
        first = worker.pid
        os.kill(first, 9)
        worker._process.wait(timeout=30)  # it has ended (as after the kernel's out-of-memory killer) before the run
        result, _ = worker.run("d", None, {"code": np.zeros((2, 2), np.float32)}, seconds=10, max_output_bytes=2 << 13)
        assert result[0].shape == (2, 784) and worker.pid != first and worker.starts == 2


def test_no_worker_outlives_its_use() -> None:
    with Worker() as worker:
        worker.load("d", graph_bytes(), "decoder")
        closed = worker.pid
    assert not alive(closed)
    forgotten = Worker()
    forgotten.load("d", graph_bytes(), "decoder")
    pid = forgotten.pid
    del forgotten
    gc.collect()
    assert not alive(pid)  # the finalizer killed and reaped it


def test_the_memory_limit_is_read_from_the_environment(monkeypatch) -> None:
    monkeypatch.delenv(MEMORY_ENV, raising=False)
    assert memory_limit() == 2 * 2**30
    monkeypatch.setenv(MEMORY_ENV, "512M")
    assert memory_limit() == 512 * 2**20
    assert parse_bytes("1.5G") == 3 * 2**29 and parse_bytes("4GiB") == 4 * 2**30
    with pytest.raises(ValueError, match="VAE_ONNX_MEMORY_LIMIT must be a size such as 2G"):
        parse_bytes("lots")
    with pytest.raises(ValueError, match="VAE_ONNX_MEMORY_LIMIT must be from 64M"):
        parse_bytes("1M")


def test_subgraph_depth_is_counted_and_bounded() -> None:
    import onnx

    for depth in (1, 2, MAX_SUBGRAPH_DEPTH):
        model = nested_decoder(depth).model
        onnx.checker.check_model(model, full_check=True)  # the catalogue's nesting is otherwise a valid graph
        assert subgraph_depth(model) == depth
        parse_graph(model.SerializeToString(), "decoder")
    assert subgraph_depth(mlp_decoder().model) == 0
    with pytest.raises(GraphRefused, match=f"{MAX_SUBGRAPH_DEPTH + 1} deep; at most {MAX_SUBGRAPH_DEPTH}"):
        parse_graph(nested_decoder(MAX_SUBGRAPH_DEPTH + 1).model.SerializeToString(), "decoder")
