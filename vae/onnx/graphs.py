"""ONNX graphs read and run safely: the rules every graph of the project, its own or a stranger's, is run under.

Safety rules, applied to every graph before onnxruntime (or ``onnx``) reads it:

- a graph arrives as bytes and is parsed with ``onnx.load_model_from_string``, which never opens a file;
- a graph that still refers to external data is refused here: the import folds data that sits beside the
  user's file into the graph first (``vae.onnx.checks``), so the graphs this module runs are self-contained,
  and onnxruntime never resolves a path (not ``../``, not an absolute one, not one beside the working folder);
- a graph whose subgraphs (the bodies of If, Loop, Scan) nest deeper than :data:`MAX_SUBGRAPH_DEPTH` is
  refused before ``onnx.checker`` or onnxruntime walks it (both recurse in C++), and one nested deeper than
  protobuf's parser allows (100 messages, about 33 subgraphs) is refused by the parser itself;
- sessions use the CPU provider only, and no custom operator library is ever registered, so a graph can
  only call operators onnxruntime ships.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import onnx

if TYPE_CHECKING:
    import onnxruntime

# Max abs difference allowed between two computations that should agree (an export run by onnxruntime
# against the torch model; an import's standard graphs against the user's own): for pixels in [0, 1] as it
# is; for codes, whose size depends on the model (an AE's reach 30), times the largest code magnitude when
# that exceeds 1, since float32 rounding in another summation order scales with it.
TOLERANCE = 1e-5
# Subgraphs within subgraphs (an If in a Loop in an If ...): the exporters' own control flow nests two or
# three deep; deeper is refused before anything recursive reads the graph.
MAX_SUBGRAPH_DEPTH = 8


class GraphRefused(ValueError):
    """A graph that is not ONNX, refers to files, or that onnxruntime cannot run; the message says which."""


def parse_graph(data: bytes, what: str) -> onnx.ModelProto:
    """ONNX bytes -> the model proto, without reading any file; :class:`GraphRefused` if it is not one."""
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as error:
        if "depth" in str(error).lower():
            raise GraphRefused(
                f"the {what} nests its messages deeper than the protobuf parser allows (100 levels); "
                f"at most {MAX_SUBGRAPH_DEPTH} subgraphs may nest"
            ) from None
        raise GraphRefused(f"the {what} is not an ONNX model ({error or 'unreadable'})") from None
    # Random bytes can parse as a protobuf message; a real model has a graph with nodes and an IR version.
    if model.ir_version < 1 or not model.HasField("graph") or not model.graph.node or not model.graph.output:
        raise GraphRefused(f"the {what} is not an ONNX model (no graph with nodes and outputs)")
    depth = subgraph_depth(model)
    if depth > MAX_SUBGRAPH_DEPTH:
        raise GraphRefused(
            f"the {what} nests subgraphs (If, Loop, Scan bodies) {depth} deep; at most {MAX_SUBGRAPH_DEPTH} are allowed"
        )
    return model


def subgraph_depth(model: onnx.ModelProto) -> int:
    """How deep subgraphs nest in ``model`` (0: none), its local functions included; walked without recursion."""
    deepest = 0
    stack = [(node, 1) for node in model.graph.node] + [(n, 1) for f in model.functions for n in f.node]
    while stack:
        node, depth = stack.pop()
        for attribute in node.attribute:
            graphs = ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs)
            for graph in graphs:
                deepest = max(deepest, depth)
                stack.extend((inner, depth + 1) for inner in graph.node)
    return deepest


def _graph_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    yield from _node_tensors(graph.node)


def _node_tensors(nodes: Any) -> Iterator[onnx.TensorProto]:
    for node in nodes:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("sparse_tensor"):
                yield attribute.sparse_tensor.values
                yield attribute.sparse_tensor.indices
            for sparse in attribute.sparse_tensors:
                yield sparse.values
                yield sparse.indices
            if attribute.HasField("g"):
                yield from _graph_tensors(attribute.g)
            for subgraph in attribute.graphs:
                yield from _graph_tensors(subgraph)


def all_tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    """Every tensor a model stores: initializers, constants, and those of subgraphs and local functions."""
    yield from _graph_tensors(model.graph)
    for function in model.functions:
        yield from _node_tensors(function.node)


def uses_external_data(tensor: onnx.TensorProto) -> bool:
    return tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data) > 0


def refuse_external_data(model: onnx.ModelProto, what: str) -> None:
    """No tensor of ``model`` may live in another file (onnxruntime would open that path)."""
    names = [tensor.name or "(unnamed)" for tensor in all_tensors(model) if uses_external_data(tensor)]
    if names:
        raise GraphRefused(
            f"the {what} keeps {len(names)} tensor(s) in external data files ({', '.join(names[:3])}"
            f"{', ...' if len(names) > 3 else ''}): export it as one file (torch.onnx.export(..., external_data=False))"
        )


def session(data: bytes, what: str) -> onnxruntime.InferenceSession:
    """A CPU onnxruntime session over self-contained ONNX bytes; :class:`GraphRefused` if it cannot run them."""
    import onnxruntime

    refuse_external_data(parse_graph(data, what), what)
    options = onnxruntime.SessionOptions()
    # One thread that sleeps when idle: the machine's cores are shared with training jobs and other sessions.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 4  # refusals are reported by the caller, not logged by the runtime
    try:
        return onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own pybind exception types (Fail, InvalidGraph, ...)
        raise GraphRefused(f"onnxruntime cannot run the {what}: {first_line(error)}") from None


def first_line(error: BaseException) -> str:
    """An error's first line (at most 500 characters), or its type's name if it says nothing: for a refusal."""
    text = str(error).strip().splitlines()
    return text[0][:500] if text else type(error).__name__


def subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    """The bodies of a Loop, If or Scan node (none for other nodes)."""
    return [g for attribute in node.attribute for g in ([attribute.g] if attribute.HasField("g") else attribute.graphs)]


def outer_references(node: onnx.NodeProto) -> set[str]:
    """Every name a node's bodies read (a superset of what they take from the outer graph)."""
    names: set[str] = set()
    for subgraph in subgraphs(node):
        for inner in subgraph.node:
            names.update(inner.input)
            names |= outer_references(inner)
    return names


def needed(graph: onnx.GraphProto, outputs: Iterable[str]) -> tuple[list[int], set[str]]:
    """What ``outputs`` are computed from -> (indices of the nodes, in graph order; every tensor name read).

    Walked back from the outputs through each tensor's producer, the names a Loop's or If's body reads
    included; the names include ``outputs`` themselves. The graph's order does not matter.
    """
    producer: dict[str, int] = {}
    for index, node in enumerate(graph.node):
        for name in node.output:
            if name:  # an optional output left out
                producer.setdefault(name, index)
    nodes: set[int] = set()
    names: set[str] = set()
    stack = list(outputs)
    while stack:
        name = stack.pop()
        if name in names:
            continue
        names.add(name)
        index = producer.get(name)
        if index is not None and index not in nodes:
            nodes.add(index)
            stack.extend(graph.node[index].input)
            stack.extend(outer_references(graph.node[index]))
    return sorted(nodes), names


def prune_graph(graph: onnx.GraphProto) -> int:
    """Drop, in place, what no output of ``graph`` needs: nodes, initializers, inputs, value infos -> nodes dropped."""
    kept, names = needed(graph, [o.name for o in graph.output])
    dropped = len(graph.node) - len(kept)
    nodes = [graph.node[i] for i in kept]
    for field in (graph.initializer, graph.input, graph.value_info):
        items = [item for item in field if item.name in names]
        del field[:]
        field.extend(items)
    sparse = [s for s in graph.sparse_initializer if s.values.name in names]
    del graph.sparse_initializer[:]
    graph.sparse_initializer.extend(sparse)
    del graph.node[:]
    graph.node.extend(nodes)
    return dropped


def pruned(model: onnx.ModelProto, outputs: Sequence[str]) -> tuple[onnx.ModelProto, int]:
    """A copy of ``model`` that computes ``outputs`` (in that order) and nothing else -> (the copy, nodes dropped).

    Its other outputs go, with every node, initializer, input and value info only they needed, and the
    local functions no kept node calls: e.g. a Keras encoder's sampled ``z`` and the random operator that
    draws it, which a converter may have written as an operator ONNX does not define.
    """
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    by_name = {o.name: o for o in model.graph.output}
    del copy.graph.output[:]
    copy.graph.output.extend(by_name[name] for name in outputs)
    dropped = prune_graph(copy.graph)
    functions = {(f.domain, f.name): f for f in copy.functions}
    called: set[tuple[str, str]] = set()
    pending = list(_all_nodes(copy.graph.node))
    while pending:
        node = pending.pop()
        key = (node.domain, node.op_type)
        if key in functions and key not in called:
            called.add(key)
            pending.extend(_all_nodes(functions[key].node))
    kept = [f for key, f in functions.items() if key in called]
    del copy.functions[:]
    copy.functions.extend(kept)
    return copy, dropped


def _all_nodes(nodes: Iterable[onnx.NodeProto]) -> Iterator[onnx.NodeProto]:
    """``nodes`` and the nodes of their bodies, at any depth."""
    for node in nodes:
        yield node
        for subgraph in subgraphs(node):
            yield from _all_nodes(subgraph.node)


def io_names(runtime: onnxruntime.InferenceSession) -> tuple[list[str], list[str]]:
    return [i.name for i in runtime.get_inputs()], [o.name for o in runtime.get_outputs()]


def default_opset(model: onnx.ModelProto) -> int:
    """The version of the default (ai.onnx) operator set an ONNX model proto imports; 0 if none."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
