"""The keras.io VAE example, converted by tf2onnx as the README says, imports with no options and matches Keras.

The fixture (tests/fixtures/keras_vae/) was written by scripts/keras_fixture.py under TensorFlow 2.21.0 and
tf2onnx 1.17.0: the two ONNX files exactly as ``python -m tf2onnx.convert --saved-model ... --opset 17``
wrote them, and Keras' own outputs on a few test images and codes. No TensorFlow is needed here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

from tests.conftest import REAL_RAW, REPO
from vae.onnx.checks import kept, read_graph
from vae.onnx.importer import import_onnx, summary

pytestmark = [
    pytest.mark.skipif(
        not all((REAL_RAW / name).is_file() for name in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte")),
        reason="MNIST not fetched: run `python -m vae.data fetch` (an import checks and measures on the test set)",
    ),
    pytest.mark.usefixtures("one_torch_thread"),
]
DATA = REPO / "data"
FIXTURE = REPO / "tests" / "fixtures" / "keras_vae"
FILES = [FIXTURE / "encoder.onnx", FIXTURE / "decoder.onnx"]
PARITY = 1e-5
# What tf2onnx 1.17 writes for the Sampling layer's draw (keras.random.normal): no ONNX operator set has it.
SAMPLER = "StatelessRandomNormalV2"


@pytest.fixture(scope="module")
def keras_outputs() -> dict[str, np.ndarray]:
    with np.load(FIXTURE / "keras_outputs.npz", allow_pickle=False) as saved:
        return {name: saved[name] for name in saved.files}


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    return import_onnx(*FILES, tmp_path_factory.mktemp("keras") / "models" / "keras-vae", data_dir=DATA)


def test_the_fixture_is_what_tf2onnx_wrote_and_is_small(keras_outputs) -> None:
    info = json.loads(str(keras_outputs["info"]))
    assert info["versions"]["tensorflow"] == "2.21.0" and info["versions"]["tf2onnx"] == "1.17.0"
    # tf2onnx said the op is not supported, said "Successfully converted", and left the op in the graph.
    assert any(SAMPLER in line for line in info["tf2onnx_unsupported"])
    assert info["tf2onnx_successfully_converted"] == {"encoder": True, "decoder": True}
    encoder = onnx.load(str(FILES[0]))
    assert SAMPLER in {node.op_type for node in encoder.graph.node}
    assert [o.name for o in encoder.graph.output] == ["output_0", "output_1", "output_2"]
    assert all(path.stat().st_size < 1_000_000 for path in [*FILES, FIXTURE / "keras_outputs.npz"])


def test_the_keras_vae_imports_with_no_options_and_matches_keras(imported, keras_outputs) -> None:
    model, stored = imported
    interface = stored.config.onnx
    assert stored.config.kind == "vae" and stored.config.latent_dim == 2
    assert interface.input_layout == "nhwc" and interface.output_layout == "nhwc" and not interface.logits
    assert interface.encoder_outputs == ("output_0", "output_1")  # z_mean, z_log_var; the sampled z left out
    images = torch.from_numpy(keras_outputs["images"]).permute(0, 3, 1, 2).contiguous()  # Keras' NHWC -> NCHW
    with torch.no_grad():
        mean, logvar = model.encode(images)
        decoded = model.decode(torch.from_numpy(keras_outputs["codes"]))
    errors = {
        "embed": float(np.abs(model.embed(images).numpy() - keras_outputs["z_mean"]).max()),
        "mean": float(np.abs(mean.numpy() - keras_outputs["z_mean"]).max()),
        "logvar": float(np.abs(logvar.numpy() - keras_outputs["z_log_var"]).max()),
        "decode": float(np.abs(decoded.numpy() - keras_outputs["decoded"].transpose(0, 3, 1, 2)).max()),
    }
    assert all(error <= PARITY for error in errors.values()), errors


def test_the_import_says_what_it_dropped(imported) -> None:
    _, stored = imported
    # The sample's path: Shape, Cast, Slice, Concat, the draw, then z = mean + exp(0.5 * logvar) * eps.
    assert stored.extra["onnx"]["pruned"] == {
        "encoder": {"outputs": ["output_2"], "nodes": 9},
        "decoder": {"outputs": [], "nodes": 0},
    }
    assert "the encoder's output 'output_2' dropped, with 9 node(s)" in summary(stored)
    standard = onnx.load(str(stored.path / stored.files["standard_encoder"]["file"]))
    assert SAMPLER not in {node.op_type for node in standard.graph.node}


def test_the_cut_encoder_has_no_node_the_chosen_outputs_do_not_reach() -> None:
    graph = read_graph(FILES[0], "encoder")
    cut = kept(graph, ["output_0", "output_1"])
    read = {"output_0", "output_1"}
    for node in reversed(cut.proto.graph.node):  # each node's result is read later or is an output
        assert set(node.output) & read, f"{node.op_type} {node.name!r} feeds neither output"
        read.update(node.input)
    dropped = [n.op_type for n in graph.proto.graph.node if n.name not in {k.name for k in cut.proto.graph.node}]
    assert sorted(dropped) == sorted(["Shape", "Cast", "Slice", "Concat", SAMPLER, "Mul", "Exp", "Mul", "Add"])


def test_the_command_line_imports_the_keras_vae(tmp_path) -> None:
    """The README's command, run as a user runs it: a process of its own, exit status 0."""
    out = tmp_path / "models" / "keras-vae"
    command = [sys.executable, "-m", "vae.onnx", "import", *map(str, FILES), "--out", str(out), "--data-dir", str(DATA)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.startswith("imported keras-vae (VAE onnx 2-D (imported))") and "'output_2' dropped" in done.stdout
    )
    assert (out / "model.json").is_file()
