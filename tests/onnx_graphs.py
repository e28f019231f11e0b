"""Small ONNX encoders and decoders written with onnx.helper, for the import tests, and their numpy references.

Each builder returns a ``Graph``: the model proto and a numpy function computing what the graph should,
from the same weights, so a test can compare an import against arithmetic written independently of ONNX.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import SEED

OPSET = 17
Dim = int | str | None


@dataclass
class Graph:
    model: onnx.ModelProto
    reference: Callable[[np.ndarray], list[np.ndarray]]  # inputs as the graph takes them -> its outputs

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.model.SerializeToString())
        return path


def weights(*shape: int, seed: int = 0, scale: float = 0.1) -> np.ndarray:
    return (np.random.default_rng(SEED + seed).normal(size=shape) * scale).astype(np.float32)


def model_of(
    nodes: list,
    inputs: list,
    outputs: list,
    initializers: Sequence = (),
    opset: int = OPSET,
    extra_opsets: Sequence[tuple[str, int]] = (),
) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "test", inputs, outputs, list(initializers))
    opsets = [helper.make_opsetid("", opset), *(helper.make_opsetid(d, v) for d, v in extra_opsets)]
    return helper.make_model(graph, opset_imports=opsets, producer_name="tests")


def value(name: str, dims: Sequence[Dim] | None, elem_type: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem_type, None if dims is None else list(dims))


def constant(name: str, array: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array, name + "_value"))


def relu(h: np.ndarray) -> np.ndarray:
    return np.maximum(h, 0)


def sigmoid(h: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-h.astype(np.float64)))


def mlp_encoder(
    input_dims: Sequence[Dim] = ("B", 784),
    latent: int = 2,
    outputs: Sequence[str] = ("mean",),
    hidden: int = 16,
    input_name: str = "pixels",
    sample: bool = False,
    nhwc_only: bool = False,
    input_type: int = TensorProto.FLOAT,
    random_op: str = "RandomNormalLike",
) -> Graph:
    """Flatten -> Gemm -> Relu -> one Gemm head per output (mean, log-variance, ...), each ``[B, latent]``.

    ``sample`` adds a third output, a draw ``mean + exp(logvar / 2) * eps`` made with ``random_op``, as the
    Keras VAE example's encoder outputs ``[z_mean, z_log_var, z]``; tf2onnx writes it as
    ``StatelessRandomNormalV2``, an operator ONNX does not define. ``nhwc_only`` first squeezes axis 3, which
    only an NHWC image ``[B, 28, 28, 1]`` has of size 1.
    """
    w1, b1 = weights(784, hidden, seed=1), weights(hidden, seed=2)
    heads = [
        (weights(hidden, latent, seed=10 + i, scale=0.5), weights(latent, seed=20 + i)) for i in range(len(outputs))
    ]
    init = [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(b1, "b1")]
    source = input_name
    nodes = []
    if input_type != TensorProto.FLOAT:  # a valid graph that takes, say, int64 pixels
        nodes.append(helper.make_node("Cast", [input_name], ["as_float"], to=TensorProto.FLOAT))
        source = "as_float"
    if nhwc_only:
        nodes += [
            constant("channel_axis", np.array([3], dtype=np.int64)),
            helper.make_node("Squeeze", [source, "channel_axis"], ["squeezed"]),
        ]
        source = "squeezed"
    nodes += [
        constant("flat_shape", np.array([-1, 784], dtype=np.int64)),
        helper.make_node("Reshape", [source, "flat_shape"], ["flat"]),
        helper.make_node("Gemm", ["flat", "w1", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h"]),
    ]
    for i, (name, (w, b)) in enumerate(zip(outputs, heads)):
        init += [numpy_helper.from_array(w, f"w_{i}"), numpy_helper.from_array(b, f"b_{i}")]
        nodes.append(helper.make_node("Gemm", ["h", f"w_{i}", f"b_{i}"], [name]))
    graph_outputs = [value(name, ("B", latent)) for name in outputs]
    if sample:
        nodes += [
            helper.make_node(random_op, [outputs[0]], ["eps"], name="draw"),
            constant("half", np.array(0.5, dtype=np.float32)),
            helper.make_node("Mul", [outputs[1], "half"], ["half_logvar"]),
            helper.make_node("Exp", ["half_logvar"], ["sigma"]),
            helper.make_node("Mul", ["sigma", "eps"], ["noise"]),
            helper.make_node("Add", [outputs[0], "noise"], ["z"]),
        ]
        graph_outputs.append(value("z", ("B", latent)))

    def reference(x: np.ndarray) -> list[np.ndarray]:
        h = relu(x.reshape(len(x), 784) @ w1 + b1)
        return [h @ w + b for w, b in heads]

    return Graph(model_of(nodes, [value(input_name, input_dims, input_type)], graph_outputs, init), reference)


def mlp_decoder(
    latent: int = 2,
    output_dims: Sequence[int] = (784,),
    final: str | None = "Sigmoid",
    hidden: int = 16,
    input_name: str = "code",
    output_name: str = "pixels",
    input_dims: Sequence[Dim] | None = None,
    extra_op: str | None = None,
) -> Graph:
    """Gemm -> Relu -> Gemm -> ``final`` (Sigmoid, or None for logits) -> Reshape to ``[B, *output_dims]``.

    ``extra_op`` adds a second output ``extra`` [B, 784], that operator applied to the pre-activation (a
    decoder that also gives, say, its logits or a draw), after the image output.
    """
    w1, b1 = weights(latent, hidden, seed=3, scale=0.5), weights(hidden, seed=4)
    w2, b2 = weights(hidden, 784, seed=5, scale=0.5), weights(784, seed=6)
    init = [numpy_helper.from_array(a, n) for a, n in ((w1, "dw1"), (b1, "db1"), (w2, "dw2"), (b2, "db2"))]
    nodes = [
        helper.make_node("Gemm", [input_name, "dw1", "db1"], ["g1"]),
        helper.make_node("Relu", ["g1"], ["g"]),
        helper.make_node("Gemm", ["g", "dw2", "db2"], ["raw"]),
    ]
    last = "raw"
    if final:
        nodes.append(helper.make_node(final, ["raw"], ["squashed"]))
        last = "squashed"
    nodes += [
        constant("out_shape", np.array([-1, *output_dims], dtype=np.int64)),
        helper.make_node("Reshape", [last, "out_shape"], [output_name]),
    ]

    def reference(z: np.ndarray) -> list[np.ndarray]:
        raw = relu(z @ w1 + b1) @ w2 + b2
        out = sigmoid(raw) if final == "Sigmoid" else raw
        return [out.reshape(len(z), *output_dims)]

    outputs = [value(output_name, ("B", *output_dims))]
    if extra_op:
        nodes.append(helper.make_node(extra_op, ["raw"], ["extra"], name="extra_head"))
        outputs.append(value("extra", ("B", 784)))
    inputs = [value(input_name, input_dims or ("B", latent))]
    return Graph(model_of(nodes, inputs, outputs, init), reference)


def slow_decoder(latent: int = 2, iterations: int = 1000) -> Graph:
    """A decoder that is genuinely slow: a Loop of ``iterations`` products with a 784 x 784 matrix, whose body
    reads a weight of the outer graph, then a Sigmoid. Correct, just slow: here, one thread, 0.2 s for 8 codes
    and 6 s for 256."""
    w0 = weights(latent, 784, seed=7)
    w = weights(784, 784, seed=8, scale=0.01)
    body = helper.make_graph(
        [
            helper.make_node("MatMul", ["h_in", "w"], ["product"]),
            helper.make_node("Tanh", ["product"], ["h_out"]),
            helper.make_node("Identity", ["condition_in"], ["condition_out"]),
        ],
        "body",
        [value("i", [], TensorProto.INT64), value("condition_in", [], TensorProto.BOOL), value("h_in", None)],
        [value("condition_out", [], TensorProto.BOOL), value("h_out", None)],
    )
    nodes = [
        helper.make_node("MatMul", ["z", "w0"], ["h0"]),
        constant("trips", np.array(iterations, dtype=np.int64)),
        constant("go", np.array(True)),
        helper.make_node("Loop", ["trips", "go", "h0"], ["h_last"], body=body),
        helper.make_node("Sigmoid", ["h_last"], ["image"]),
    ]
    init = [numpy_helper.from_array(w0, "w0"), numpy_helper.from_array(w, "w")]

    def reference(z: np.ndarray) -> list[np.ndarray]:
        h = z @ w0
        for _ in range(iterations):
            h = np.tanh(h @ w)
        return [sigmoid(h)]

    return Graph(model_of(nodes, [value("z", ("B", latent))], [value("image", ("B", 784))], init), reference)
