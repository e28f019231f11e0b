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
from vae.onnx.graphs import MAX_SUBGRAPH_DEPTH

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


# ---------------------------------------------------------------------------------------------
# Hostile decoders: small on disk, each asks for what no page can give when it runs (or parses)


def hiding(nodes: list, term: str, initializers: Sequence = ()) -> Graph:
    """:func:`mlp_decoder` with ``nodes`` hidden in it: their scalar ``term`` is multiplied by 0 and added to
    the pixels, so onnxruntime must run them (an unused node would be pruned)."""
    base = mlp_decoder()
    model = base.model
    model.graph.node[-1].output[0] = "clean"
    model.graph.node.extend(
        [
            *nodes,
            constant("zero", np.array(0.0, dtype=np.float32)),
            helper.make_node("Mul", [term, "zero"], ["nothing"]),
            helper.make_node("Add", ["clean", "nothing"], ["pixels"]),
        ]
    )
    model.graph.initializer.extend(initializers)
    return Graph(model, base.reference)


def constant_of_shape_decoder(gigabytes: float) -> Graph:
    """A ConstantOfShape of ``gigabytes`` GiB of float32 ones, reduced to their max."""
    count = int(gigabytes * 2**30 / 4)
    return hiding(
        [
            constant("huge_shape", np.array([count], dtype=np.int64)),
            helper.make_node(
                "ConstantOfShape", ["huge_shape"], ["huge"], value=numpy_helper.from_array(np.ones(1, np.float32))
            ),
            helper.make_node("ReduceMax", ["huge"], ["term"], keepdims=0),
        ],
        "term",
    )


def expand_decoder(gigabytes: float) -> Graph:
    """A one-number tensor Expanded to ``gigabytes`` GiB of float32."""
    count = int(gigabytes * 2**30 / 4)
    return hiding(
        [
            constant("one", np.ones(1, np.float32)),
            constant("wide", np.array([count], dtype=np.int64)),
            helper.make_node("Expand", ["one", "wide"], ["huge"]),
            helper.make_node("ReduceMax", ["huge"], ["term"], keepdims=0),
        ],
        "term",
    )


def tile_decoder(per_cube: int = 24) -> Graph:
    """The codes Tiled ``B**2 * per_cube`` times (``B**3 * per_cube`` rows): 98 KB for 8 codes, 3 GiB for 256
    (onnxruntime's Tile refuses outputs over 4 GiB by itself)."""
    return hiding(
        [
            helper.make_node("Shape", ["code"], ["code_shape"]),
            constant("first", np.array([0], dtype=np.int64)),
            helper.make_node("Gather", ["code_shape", "first"], ["batch"]),
            helper.make_node("Mul", ["batch", "batch"], ["batch2"]),
            constant("per_cube", np.array([per_cube], dtype=np.int64)),
            helper.make_node("Mul", ["batch2", "per_cube"], ["rows"]),
            constant("one_col", np.array([1], dtype=np.int64)),
            helper.make_node("Concat", ["rows", "one_col"], ["repeats"], axis=0),
            helper.make_node("Tile", ["code", "repeats"], ["tiled"]),
            helper.make_node("ReduceMax", ["tiled"], ["term"], keepdims=0),
        ],
        "term",
    )


def value_shaped_decoder() -> Graph:
    """Keeps only the images of codes whose first number is positive (Compress): the number of rows follows
    the values, not the batch."""
    model = mlp_decoder().model
    model.graph.node[-1].output[0] = "all_images"
    model.graph.node.extend(
        [
            constant("col0", np.array([0], dtype=np.int64)),
            helper.make_node("Gather", ["code", "col0"], ["first_col"], axis=1),
            helper.make_node("Flatten", ["first_col"], ["first_2d"], axis=0),
            helper.make_node("Squeeze", ["first_2d"], ["first"]),
            constant("threshold", np.array(0.0, dtype=np.float32)),
            helper.make_node("Greater", ["first", "threshold"], ["keep"]),
            helper.make_node("Compress", ["all_images", "keep"], ["pixels"], axis=0),
        ]
    )
    return Graph(model, lambda z: [])


def _nest(level: int, depth: int) -> tuple[list, str]:
    """Nodes computing a float scalar through ``depth - level + 1`` subgraphs, If and Loop in turn."""
    if level > depth:
        return [constant(f"leaf{level}", np.array(0.0, dtype=np.float32))], f"leaf{level}"
    inner, result = _nest(level + 1, depth)
    scalar = [value(f"out{level}", [])]
    if level % 2:
        then = helper.make_graph(
            inner + [helper.make_node("Identity", [result], [f"out{level}"])], f"then{level}", [], scalar
        )
        other = helper.make_graph(
            [constant(f"out{level}", np.array(0.0, dtype=np.float32))], f"else{level}", [], scalar
        )
        return [helper.make_node("If", ["go"], [f"v{level}"], then_branch=then, else_branch=other)], f"v{level}"
    body = helper.make_graph(
        inner
        + [
            helper.make_node("Identity", [f"c{level}"], [f"c_out{level}"]),
            helper.make_node("Add", [f"acc{level}", result], [f"out{level}"]),
        ],
        f"body{level}",
        [value(f"i{level}", [], TensorProto.INT64), value(f"c{level}", [], TensorProto.BOOL), value(f"acc{level}", [])],
        [value(f"c_out{level}", [], TensorProto.BOOL), value(f"out{level}", [])],
    )
    return [
        constant(f"trips{level}", np.array(1, dtype=np.int64)),
        constant(f"start{level}", np.array(0.0, dtype=np.float32)),
        helper.make_node("Loop", [f"trips{level}", "go", f"start{level}"], [f"v{level}"], body=body),
    ], f"v{level}"


def nested_decoder(depth: int) -> Graph:
    """Subgraphs ``depth`` deep (an If holding a Loop holding an If ...), computing 0 in the end."""
    nodes, result = _nest(1, depth)
    return hiding([constant("go", np.array(True)), *nodes], result)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    length, size = b"", len(payload)
    while True:
        low, size = size & 0x7F, size >> 7
        length += bytes([low | 0x80 if size else low])
        if not size:
            break
    return bytes([(number << 3) | 2]) + length + payload


def deep_protobuf(levels: int) -> bytes:
    """A model whose graph holds ``levels`` If nodes each inside the last one's then-branch, written as raw
    protobuf (GraphProto.node = 1, NodeProto.attribute = 5, AttributeProto.g = 6, ModelProto.graph = 7), so no
    serialiser's own depth limit stops it being built; parsers stop at 100 nested messages."""
    graph = helper.make_graph([constant("o", np.array(0.0, dtype=np.float32))], "leaf", [], [value("o", [])])
    data = graph.SerializeToString()
    for _ in range(levels):
        attribute = onnx.AttributeProto(name="then_branch", type=onnx.AttributeProto.GRAPH).SerializeToString()
        node = helper.make_node("If", ["go"], ["o"]).SerializeToString() + _field(5, attribute + _field(6, data))
        data = helper.make_graph([], "level", [], [value("o", [])]).SerializeToString() + _field(1, node)
    header = onnx.ModelProto(ir_version=8, opset_import=[helper.make_opsetid("", OPSET)]).SerializeToString()
    return header + _field(7, data)


# The hostile catalogue: name -> (builder of the decoder, or of its bytes; the refusal's pattern).
GiB = "2 GiB"

# name -> (the decoder's bytes, the reason's pattern)
HOSTILE = {
    "ConstantOfShape of 6 GiB": (
        lambda: constant_of_shape_decoder(6),
        f"the decoder needed more than {GiB} of memory when (run on 8 codes|loaded)",
    ),
    "ConstantOfShape of 40 GiB": (
        lambda: constant_of_shape_decoder(40),
        f"the decoder needed more than {GiB} of memory when (run on 8 codes|loaded)",
    ),
    "Expand to 40 GiB": (
        lambda: expand_decoder(40),
        f"the decoder needed more than {GiB} of memory when (run on 8 codes|loaded)",
    ),
    "Loop of 10^12 iterations": (lambda: slow_decoder(iterations=10**12), "decoder takes over 1 s per 8 codes"),
    "Tile that grows with the batch (3 GiB at 256 codes)": (
        tile_decoder,
        f"the decoder needed more than {GiB} of memory when run on 256 codes",
    ),
    "an output shape that follows the values": (
        value_shaped_decoder,
        "the decoder's output 'pixels' is float32 \\[\\d, 784\\] for 8 codes|its shape must follow the batch alone",
    ),
    f"subgraphs nested {MAX_SUBGRAPH_DEPTH + 4} deep (If, Loop, If ...)": (
        lambda: nested_decoder(MAX_SUBGRAPH_DEPTH + 4),
        f"nests subgraphs \\(If, Loop, Scan bodies\\) {MAX_SUBGRAPH_DEPTH + 4} deep; at most {MAX_SUBGRAPH_DEPTH}",
    ),
    "a protobuf nested 40 If deep": (
        lambda: deep_protobuf(40),
        "nests its messages deeper than the protobuf parser allows",
    ),
}


def hostile_bytes(name: str) -> bytes:
    built = HOSTILE[name][0]()
    return built if isinstance(built, bytes) else built.model.SerializeToString()


# ---------------------------------------------------------------------------------------------
# Hostile only far out: decoders that pass the import (its codes lie near the origin) and do harm only for
# codes past `radius` (max |z_i|), which a viewer reaches by hovering the edge of a zoomed-out plane.


# onnxruntime-web 1.30 (the page's runtime) reads graphs up to IR version 13; onnx.helper writes its newest.
PAGE_IR_VERSION = 8


def for_the_page(graph: Graph) -> Graph:
    graph.model.ir_version = PAGE_IR_VERSION
    return graph


def _far(radius: float, scale: float) -> list:
    """Nodes computing ``far`` = max(0, max_i |z_i| - radius) * scale, a float scalar (0 near the origin)."""
    return [
        helper.make_node("Abs", ["code"], ["code_abs"]),
        helper.make_node("ReduceMax", ["code_abs"], ["code_max"], keepdims=0),
        constant("radius", np.array(radius, dtype=np.float32)),
        helper.make_node("Sub", ["code_max", "radius"], ["past"]),
        helper.make_node("Relu", ["past"], ["past_relu"]),
        constant("far_scale", np.array(scale, dtype=np.float32)),
        helper.make_node("Mul", ["past_relu", "far_scale"], ["far"]),
    ]


def far_loop_decoder(radius: float = 6.0) -> Graph:
    """:func:`mlp_decoder`, plus a Loop of ``(max |z_i| - radius) * 10^9`` iterations: none near the origin,
    endless for codes past ``radius``."""
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["condition_in"], ["condition_out"]),
            constant("step", np.array(1.0, dtype=np.float32)),
            helper.make_node("Add", ["count_in", "step"], ["count_out"]),
        ],
        "far_body",
        [value("i", [], TensorProto.INT64), value("condition_in", [], TensorProto.BOOL), value("count_in", [])],
        [value("condition_out", [], TensorProto.BOOL), value("count_out", [])],
    )
    return for_the_page(
        hiding(
            [
                *_far(radius, 1e9),
                helper.make_node("Cast", ["far"], ["trips"], to=TensorProto.INT64),
                constant("go", np.array(True)),
                constant("count_start", np.array(0.0, dtype=np.float32)),
                helper.make_node("Loop", ["trips", "go", "count_start"], ["term"], body=body),
            ],
            "term",
        )
    )


def far_memory_decoder(radius: float = 6.0, gigabytes: float = 3.0) -> Graph:
    """:func:`mlp_decoder`, plus a ConstantOfShape of ``min(1, (max |z_i| - radius)) * gigabytes`` GiB: one
    float near the origin, ``gigabytes`` GiB for codes a unit past ``radius``."""
    count = gigabytes * 2**30 / 4
    return for_the_page(
        hiding(
            [
                *_far(radius, 1.0),
                constant("unit", np.array(1.0, dtype=np.float32)),
                helper.make_node("Min", ["far", "unit"], ["fraction"]),
                constant("full", np.array(count, dtype=np.float32)),
                helper.make_node("Mul", ["fraction", "full"], ["wanted"]),
                helper.make_node("Add", ["wanted", "unit"], ["size"]),
                helper.make_node("Cast", ["size"], ["size_int"], to=TensorProto.INT64),
                constant("as_shape", np.array([1], dtype=np.int64)),
                helper.make_node("Reshape", ["size_int", "as_shape"], ["huge_shape"]),
                helper.make_node(
                    "ConstantOfShape", ["huge_shape"], ["huge"], value=numpy_helper.from_array(np.ones(1, np.float32))
                ),
                helper.make_node("ReduceMax", ["huge"], ["term"], keepdims=0),
            ],
            "term",
        )
    )


def far_shape_decoder(radius: float = 6.0) -> Graph:
    """:func:`mlp_decoder`, but for a batch with a code past ``radius`` it gives no image at all (Compress
    with a mask of B falses): ``[0, 784]``, the right shape for every batch near the origin."""
    model = mlp_decoder().model
    model.graph.node[-1].output[0] = "all_images"
    model.graph.node.extend(
        [
            *_far(radius, 1.0),
            constant("half", np.array(0.5, dtype=np.float32)),
            helper.make_node("Less", ["far", "half"], ["near"]),
            helper.make_node("Shape", ["code"], ["code_shape"]),
            constant("first", np.array([0], dtype=np.int64)),
            helper.make_node("Gather", ["code_shape", "first"], ["batch"]),
            helper.make_node("Expand", ["near", "batch"], ["keep"]),
            helper.make_node("Compress", ["all_images", "keep"], ["pixels"], axis=0),
        ]
    )
    return for_the_page(Graph(model, mlp_decoder().reference))
