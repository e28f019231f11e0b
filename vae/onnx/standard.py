"""The import's conversion: the standard encoder and decoder, built around the user's graphs with ``onnx.helper``.

The standard interface is :mod:`vae.onnx.export`'s (``x [B, 1, 28, 28] -> embedding [, logvar]``,
``z [B, D] -> image [B, 1, 28, 28]`` in [0, 1]): :func:`standard_graphs` wraps the user's graphs in the
reshapes (and the sigmoid) the :class:`~vae.onnx.checks.Wiring` calls for, and :func:`check_standard`
checks that the result computes what the user's graphs computed on the probe batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from vae.models import PIXEL_LAYOUTS
from vae.onnx.checks import ImportRefused, UserGraph, Wiring
from vae.onnx.graphs import TOLERANCE, first_line, prune_graph, subgraphs

if TYPE_CHECKING:
    from vae.onnx.model import OnnxModel

# The standard interface's names; the user's tensors that happen to carry one are renamed.
STANDARD_NAMES = ("x", "embedding", "logvar", "z", "image")


def _names_in(graph: onnx.GraphProto) -> set[str]:
    names = {i.name for i in graph.input} | {o.name for o in graph.output} | {t.name for t in graph.initializer}
    names |= {v.name for v in graph.value_info}
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
        for subgraph in subgraphs(node):
            names |= _names_in(subgraph)
    return names


def _rename(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Rename tensor ``old`` everywhere in ``graph`` and in the subgraphs that see it.

    Written out because ``onnx.compose.add_prefix`` (onnx 1.23) misses subgraph references to the outer
    graph's initializers, which breaks any Loop or If whose body uses an outer weight.
    """
    for collection in (graph.input, graph.output, graph.value_info, graph.initializer):
        for item in collection:
            if item.name == old:
                item.name = new
    for node in graph.node:
        for field in (node.input, node.output):
            for i, name in enumerate(field):
                if name == old:
                    field[i] = new
        for subgraph in subgraphs(node):
            if old not in {i.name for i in subgraph.input}:  # a body input of that name shadows it
                _rename(subgraph, old, new)


def _wrapped(
    user: onnx.ModelProto,
    standard_input: onnx.ValueInfoProto,
    user_input: str,
    head: list[onnx.NodeProto],
    outputs: dict[str, str],
    tails: list[onnx.NodeProto],
    standard_outputs: list[onnx.ValueInfoProto],
    reserved: set[str],
) -> onnx.ModelProto:
    """``standard_input -> head -> (user's graph) -> tails -> standard_outputs`` as one model.

    ``head`` ends in the tensor ``user_input``; ``outputs`` maps the user's outputs to the names ``tails``
    read them by. Any user tensor that carries a name in ``reserved`` is renamed first.
    """
    model = onnx.ModelProto()
    model.CopyFrom(user)
    graph = model.graph
    taken = _names_in(graph) | reserved
    renames = {}
    for name in sorted(_names_in(graph) & reserved):
        fresh, n = f"user/{name}", 0
        while fresh in taken:
            n += 1
            fresh = f"user/{name}.{n}"
        taken.add(fresh)
        _rename(graph, name, fresh)
        renames[name] = fresh
    user_input = renames.get(user_input, user_input)
    inner = {renames.get(k, k): v for k, v in outputs.items()}
    initialized = {t.name for t in graph.initializer}
    kept_inputs = [i for i in graph.input if i.name in initialized]  # IR < 4 lists initializers as inputs
    # The head writes the user's input tensor; the tails read the user's outputs under the names they expect.
    head_nodes = [onnx.NodeProto() for _ in head]
    for copy, node in zip(head_nodes, head):
        copy.CopyFrom(node)
    if head_nodes:
        head_nodes[-1].output[0] = user_input
    bridges = [helper.make_node("Identity", [name], [alias]) for name, alias in inner.items()]
    nodes = [*head_nodes, *graph.node, *bridges, *tails]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.input[:]
    graph.input.extend([standard_input, *kept_inputs])
    del graph.output[:]
    graph.output.extend(standard_outputs)
    prune_graph(graph)  # what the user's graph computes beyond the outputs taken
    graph.name = f"standard_{graph.name or 'graph'}"
    del model.metadata_props[:]  # our graph now; nothing of the original's configuration travels with it
    return model


def _reshape(source: str, target: str, shape: Sequence[int], tag: str) -> list[onnx.NodeProto]:
    """``source`` reshaped to ``[-1, *shape]`` as ``target`` (the batch axis kept dynamic)."""
    shape_name = f"std/{tag}_shape"
    constant = numpy_helper.from_array(np.array([-1, *shape], dtype=np.int64), shape_name)
    return [
        helper.make_node("Constant", [], [shape_name], value=constant),
        helper.make_node("Reshape", [source, shape_name], [target]),
    ]


def standard_graphs(encoder: UserGraph, decoder: UserGraph, wiring: Wiring) -> dict[str, bytes]:
    """The standard encoder and decoder (:mod:`vae.onnx.export`'s interface), checked by onnx.checker -> their bytes.

    Encoder: ``x [B, 1, 28, 28]`` -> Reshape to the user's layout -> the user's graph -> its mean (and
    log-variance) as ``embedding`` (and ``logvar``); anything else it outputs is pruned. Decoder: ``z`` -> the
    user's graph -> (Sigmoid for logits) -> Reshape -> ``image [B, 1, 28, 28]``.
    """
    interface, d = wiring.interface, wiring.latent_dim
    ours = {"std/in_shape", "std/out_shape", "std/pixels", "std/code", "std/image_logits", "std/image_probs"}
    reserved = set(STANDARD_NAMES) | ours
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 28, 28])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", d])
    names = ["embedding", "logvar"][: len(interface.encoder_outputs)]
    std_encoder = _wrapped(
        encoder.proto,
        x,
        interface.encoder_input,
        _reshape("x", "std/pixels", PIXEL_LAYOUTS[interface.input_layout], "in"),
        dict(zip(interface.encoder_outputs, names)),
        [],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", d]) for name in names],
        reserved,
    )
    probs = "std/image_probs"
    tails = [helper.make_node("Sigmoid", ["std/image_logits"], [probs])] if interface.logits else []
    source = "std/image_logits" if interface.logits else probs
    std_decoder = _wrapped(
        decoder.proto,
        z,
        interface.decoder_input,
        [helper.make_node("Identity", ["z"], ["std/code"])],
        {interface.decoder_output: source},
        [*tails, *_reshape(probs, "image", (1, 28, 28), "out")],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, 28, 28])],
        reserved,
    )
    out = {}
    for role, model in (("standard_encoder", std_encoder), ("standard_decoder", std_decoder)):
        try:
            onnx.checker.check_model(model, full_check=True)
        except Exception as error:
            raise ImportRefused(
                f"the {role.replace('_', ' ')} built around yours fails onnx.checker: {first_line(error)}"
            ) from None
        out[role] = model.SerializeToString()
    return out


def check_standard(model: OnnxModel, wiring: Wiring) -> dict[str, float]:
    """Max abs difference of the standard graphs (run through ``model``) from the user's on the probe batch.

    Raises :class:`ImportRefused` above :data:`TOLERANCE` (times the largest code magnitude for the encoder).
    """
    with torch.no_grad():
        mean, logvar = model.encode(torch.from_numpy(wiring.images))
        decoded = model.decode(torch.from_numpy(wiring.codes)).numpy()
    ours = [mean.numpy()] + ([logvar.numpy()] if logvar is not None else [])
    errors = {
        "encoder": max(float(np.abs(a - b).max()) for a, b in zip(ours, wiring.encoded)),
        "decoder": float(np.abs(decoded - wiring.decoded).max()),
    }
    scale = max(1.0, *(float(np.abs(b).max()) for b in wiring.encoded))
    for part, allowed in (("encoder", TOLERANCE * scale), ("decoder", TOLERANCE)):
        if not errors[part] <= allowed:  # also catches NaN
            raise ImportRefused(f"the standard {part} built around yours differs from it by {errors[part]:.3g}")
    return errors
