"""vae.onnx.checks on its own: each rule of the import, called directly on small hand-made graphs.

``tests/test_onnx_import.py`` checks the same rules end to end (exports, imports, the command line), which takes
minutes; here every check runs in milliseconds, with its message checked whole, so that ``make mutants`` can run
them against each mutant of the module. The probe runs in one fenced worker shared by the module's tests.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.onnx_graphs import Graph, constant, for_the_page, mlp_decoder, mlp_encoder, model_of, sigmoid, value
from vae.models import PIXEL_LAYOUTS
from vae.onnx import checks
from vae.onnx.checks import (
    PAGE_MAX_IR_VERSION,
    ImportRefused,
    UserGraph,
    custom_operators,
    kept,
    probe,
    read_graph,
)
from vae.onnx.fence import FenceError, Worker
from vae.onnx.graphs import uses_external_data

MB = 2**20


def user_graph(model: onnx.ModelProto, what: str = "encoder") -> UserGraph:
    return read_graph(model.SerializeToString(), what)


def refused(message: str):
    """pytest.raises for an ImportRefused whose whole message is ``message``."""
    return pytest.raises(ImportRefused, match="^" + re.escape(message) + "$")


# ---------------------------------------------------------------------------------------------
# Reading: sizes, names, the source record


def page_bytes() -> bytes:
    """An encoder's file at an IR version the in-page runtime reads: kept byte for byte (a newer one is
    brought down to it, and so rewritten: tests/test_onnx_import.py)."""
    model = mlp_encoder().model
    model.ir_version = min(model.ir_version, PAGE_MAX_IR_VERSION)
    return model.SerializeToString()


def test_bytes_are_read_as_they_are_and_recorded_under_a_name() -> None:
    data = page_bytes()
    graph = read_graph(data, "encoder")
    assert graph.data == data and graph.what == "encoder" and graph.proto.graph.output[0].name == "mean"
    expected = {"name": "encoder.onnx", "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    assert graph.source == {**expected, "external_data": []}
    assert read_graph(data, "decoder", name="mine.onnx").source["name"] == "mine.onnx"
    assert (graph.dropped_outputs, graph.dropped_nodes) == ((), 0)


def test_a_file_is_read_and_recorded_under_its_own_name(tmp_path: Path) -> None:
    data = page_bytes()
    (tmp_path / "enc.onnx").write_bytes(data)
    graph = read_graph(tmp_path / "enc.onnx", "encoder")
    assert graph.data == data and graph.source["name"] == "enc.onnx" and graph.source["bytes"] == len(data)
    assert read_graph(str(tmp_path / "enc.onnx"), "encoder", name="given.onnx").source["name"] == "given.onnx"


def test_sizes_at_and_over_the_limit(tmp_path: Path) -> None:
    data = page_bytes()
    assert read_graph(data, "encoder", max_bytes=len(data)).data == data  # exactly the limit: allowed
    (tmp_path / "e.onnx").write_bytes(data)
    assert read_graph(tmp_path / "e.onnx", "encoder", max_bytes=len(data)).data == data
    with refused("the encoder is 3.5 MB, over the 3.0 MB limit"):
        read_graph(bytes(int(3.5 * MB)), "encoder", max_bytes=3 * MB)
    big = tmp_path / "big.onnx"
    with open(big, "wb") as handle:
        handle.truncate(int(3.5 * MB))  # sparse: it says 3.5 MB without taking them
    with refused(f"the decoder {big} is 3.5 MB, over the 3.0 MB limit"):
        read_graph(big, "decoder", max_bytes=3 * MB)
    with refused(f"the decoder {big} is 1,024.0 MB, over the 1,000.0 MB limit"):
        with open(big, "r+b") as handle:
            handle.truncate(1024 * MB)
        read_graph(big, "decoder", max_bytes=1000 * MB)


def test_a_path_that_is_not_a_readable_file_is_refused(tmp_path: Path) -> None:
    with refused(f"cannot read the encoder {tmp_path / 'none.onnx'}: No such file or directory"):
        read_graph(tmp_path / "none.onnx", "encoder")
    with refused(f"the encoder {tmp_path} is not a regular file"):
        read_graph(tmp_path, "encoder")


def test_a_file_that_grows_while_it_is_read_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "e.onnx"
    path.write_bytes(bytes(100))
    real_stat = Path.stat

    def stat_before_it_grew(self, *args, **kwargs):
        result = real_stat(self, *args, **kwargs)
        if self == path:
            path.write_bytes(bytes(300))  # written to between the size check and the read
        return result

    monkeypatch.setattr(Path, "stat", stat_before_it_grew)
    with refused(f"the encoder {path} grew beyond 0.0 MB while being read"):
        read_graph(path, "encoder", max_bytes=200)


def test_bytes_that_are_not_a_graph_are_refused_as_such() -> None:
    with pytest.raises(ImportRefused, match="^the decoder is not an ONNX model"):
        read_graph(b"\x08\x07", "decoder")


# ---------------------------------------------------------------------------------------------
# External data


def with_external(graph: Graph, folder: Path, location: str, offset: int | None = 0, length: int | None = -1) -> Path:
    """Save ``graph`` in ``folder`` with its first weight moved to ``location`` (offset/length None: not given;
    length -1: the weight's own)."""
    tensor = graph.model.graph.initializer[0]
    size = len(numpy_helper.to_array(tensor).tobytes())
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    entries = {"location": location, "offset": offset, "length": size if length == -1 else length}
    for key, entry_value in entries.items():
        if entry_value is not None:
            entry = tensor.external_data.add()
            entry.key, entry.value = key, str(entry_value)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "e.onnx").write_bytes(graph.model.SerializeToString())
    return folder / "e.onnx"


def first_weight(graph: Graph) -> np.ndarray:
    return numpy_helper.to_array(graph.model.graph.initializer[0])


def test_external_data_beside_the_graph_is_folded_in(tmp_path: Path) -> None:
    graph = mlp_encoder()
    weight = first_weight(graph)
    (tmp_path / "w.bin").write_bytes(b"\x01" * 12 + weight.tobytes() + b"\x02" * 5)
    path = with_external(graph, tmp_path, "w.bin", offset=12)
    read = read_graph(path, "encoder")
    assert read.source["external_data"] == ["w.bin"]
    tensor = read.proto.graph.initializer[0]
    assert tensor.data_location == TensorProto.DEFAULT and len(tensor.external_data) == 0
    np.testing.assert_array_equal(numpy_helper.to_array(tensor), weight)
    again = onnx.load_model_from_string(read.data)  # what is stored: one self-contained file
    np.testing.assert_array_equal(numpy_helper.to_array(again.graph.initializer[0]), weight)
    assert read.source["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_external_data_without_offset_or_length_is_the_whole_file(tmp_path: Path) -> None:
    graph = mlp_encoder()
    weight = first_weight(graph)
    (tmp_path / "w.bin").write_bytes(weight.tobytes())
    read = read_graph(with_external(graph, tmp_path, "w.bin", offset=None, length=None), "encoder")
    np.testing.assert_array_equal(numpy_helper.to_array(read.proto.graph.initializer[0]), weight)
    graph = mlp_encoder()
    (tmp_path / "x.bin").write_bytes(bytes(8) + weight.tobytes())
    read = read_graph(with_external(graph, tmp_path, "x.bin", offset=8, length=None), "encoder")  # offset to the end
    np.testing.assert_array_equal(numpy_helper.to_array(read.proto.graph.initializer[0]), weight)


def test_two_tensors_in_one_data_file_open_it_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    graph = mlp_encoder()
    first, second = (numpy_helper.to_array(t) for t in graph.model.graph.initializer[:2])
    (tmp_path / "w.bin").write_bytes(first.tobytes() + second.tobytes())
    for tensor, offset, array in zip(graph.model.graph.initializer[:2], (0, first.nbytes), (first, second)):
        tensor.ClearField("raw_data")
        tensor.ClearField("float_data")
        tensor.data_location = TensorProto.EXTERNAL
        for key, entry_value in (("location", "w.bin"), ("offset", offset), ("length", array.nbytes)):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, str(entry_value)
    (tmp_path / "e.onnx").write_bytes(graph.model.SerializeToString())
    opened, real_open = [], os.open
    monkeypatch.setattr(checks.os, "open", lambda path, flags: opened.append(path) or real_open(path, flags))
    read = read_graph(tmp_path / "e.onnx", "encoder")
    assert opened.count(tmp_path / "w.bin") == 1 and read.source["external_data"] == ["w.bin"]
    np.testing.assert_array_equal(numpy_helper.to_array(read.proto.graph.initializer[1]), second)


@pytest.mark.parametrize("location", ["", "sub/w.bin", "..", "..w.bin", "a\\b.bin", "C:w.bin", "w.bin:s", "w\x00.bin"])
def test_a_location_that_is_not_a_plain_name_is_refused(tmp_path: Path, location: str) -> None:
    path = with_external(mlp_encoder(), tmp_path, location)
    with refused(
        f"the encoder's external data location {location!r} is not a plain file name beside the graph: only files "
        "in the graph's own folder are read, never ../ or absolute paths"
    ):
        read_graph(path, "encoder")


def test_an_absolute_location_is_refused(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(first_weight(mlp_encoder()).tobytes())
    with pytest.raises(ImportRefused, match="is not a plain file name beside the graph"):
        read_graph(with_external(mlp_encoder(), tmp_path / "g", str(tmp_path / "w.bin")), "encoder")


def test_a_data_file_that_is_missing_a_symlink_or_not_a_file_is_refused(tmp_path: Path) -> None:
    weight = first_weight(mlp_encoder())
    path = with_external(mlp_encoder(), tmp_path, "w.bin")
    with refused(f"the encoder's external data file 'w.bin' is not beside it in {tmp_path}"):
        read_graph(path, "encoder")
    (tmp_path / "real.bin").write_bytes(weight.tobytes())
    (tmp_path / "w.bin").symlink_to(tmp_path / "real.bin")
    with refused("the encoder's external data file 'w.bin' is a symlink; only regular files are read"):
        read_graph(path, "encoder")
    (tmp_path / "w.bin").unlink()
    os.mkfifo(tmp_path / "w.bin")  # opens (non-blocking) but is no file
    with refused("the encoder's external data 'w.bin' is not a regular file"):
        read_graph(path, "encoder")
    (tmp_path / "w.bin").unlink()
    (tmp_path / "w.bin").mkdir()
    with pytest.raises(ImportRefused, match="^the encoder's external data 'w.bin' is not a regular file$"):
        read_graph(path, "encoder")


def test_an_unreadable_data_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "w.bin").write_bytes(first_weight(mlp_encoder()).tobytes())
    path = with_external(mlp_encoder(), tmp_path, "w.bin")

    def denied(*args):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(checks.os, "open", denied)
    with refused("the encoder's external data file 'w.bin' is unreadable; only regular files are read"):
        read_graph(path, "encoder")


def test_offsets_and_lengths_must_lie_inside_the_data_file(tmp_path: Path) -> None:
    weight = first_weight(mlp_encoder())
    (tmp_path / "w.bin").write_bytes(weight.tobytes())
    size = weight.nbytes
    cases = [
        ({"offset": 4}, f"(offset 4, length {size}, file {size} bytes)"),
        ({"offset": -1}, f"(offset -1, length {size}, file {size} bytes)"),
        ({"length": -2}, f"(offset 0, length -2, file {size} bytes)"),
        ({"length": size + 1}, f"(offset 0, length {size + 1}, file {size} bytes)"),
    ]
    for change, where in cases:
        path = with_external(mlp_encoder(), tmp_path, "w.bin", **change)
        with refused(f"the encoder's tensor 'w1' lies outside 'w.bin' {where}"):
            read_graph(path, "encoder")
    for change in ({"offset": "x"}, {"length": "1.5"}):
        path = with_external(mlp_encoder(), tmp_path, "w.bin", **change)
        with refused("the encoder's external data for 'w1' has a bad offset or length"):
            read_graph(path, "encoder")


def test_the_graph_and_its_data_count_together_against_the_limit(tmp_path: Path) -> None:
    weight = first_weight(mlp_encoder())
    (tmp_path / "w.bin").write_bytes(weight.tobytes())
    path = with_external(mlp_encoder(), tmp_path, "w.bin")
    total = path.stat().st_size + weight.nbytes
    assert read_graph(path, "encoder", max_bytes=total).source["external_data"] == ["w.bin"]  # exactly: allowed
    with refused(f"the encoder and its external data are over the {total / MB:,.1f} MB limit"):
        read_graph(path, "encoder", max_bytes=total - 1)


def test_an_upload_cannot_carry_external_data(tmp_path: Path) -> None:
    path = with_external(mlp_encoder(), tmp_path, "w.bin")
    with refused(
        "the encoder keeps 1 tensor(s) in external data files, which an upload cannot carry: export it as one file "
        "(torch.onnx.export(..., external_data=False)), or import it with python -m vae.onnx import with the data "
        "file beside the graph"
    ):
        read_graph(path.read_bytes(), "encoder")


# ---------------------------------------------------------------------------------------------
# Cutting to the outputs used


def test_kept_drops_the_outputs_not_used_and_the_nodes_only_they_need() -> None:
    graph = user_graph(mlp_encoder(outputs=("mean", "logvar", "extra")).model)
    cut = kept(graph, ["mean", "logvar"])
    assert cut.dropped_outputs == ("extra",) and cut.dropped_nodes == 1
    assert [o.name for o in cut.proto.graph.output] == ["mean", "logvar"]
    assert onnx.load_model_from_string(cut.data).graph.output[1].name == "logvar"
    assert cut.source is graph.source and cut.what == "encoder"
    whole = kept(graph, ["mean", "logvar", "extra"])
    assert whole.data is graph.data and (whole.dropped_outputs, whole.dropped_nodes) == ((), 0)


def unknown_op_encoder(domain: str = "") -> onnx.ModelProto:
    """mean [B, 2] as in mlp_encoder, and ``extra`` from an operator no one defines."""
    model = mlp_encoder().model
    model.graph.node.append(helper.make_node("NoSuchOp", ["mean"], ["extra"], name="mystery", domain=domain))
    model.graph.output.append(value("extra", ("B", 2)))
    if domain:
        model.opset_import.append(helper.make_opsetid(domain, 1))
    return model


def test_an_operator_onnx_does_not_define_is_refused_naming_the_output_it_feeds() -> None:
    graph = user_graph(unknown_op_encoder())
    with refused(
        "the encoder's output 'extra' needs the operator NoSuchOp (node 'mystery'), which ONNX (ai.onnx 17) does "
        "not define, so nothing can run it: export the encoder without it, or use outputs that do not need it"
    ):
        kept(graph, ["mean", "extra"])
    assert kept(graph, ["mean"]).dropped_outputs == ("extra",)  # cut away with the output only it feeds


def test_an_operator_in_a_subgraph_is_found_too() -> None:
    model = mlp_encoder().model
    branch = helper.make_graph(
        [helper.make_node("NoSuchOp", ["mean"], ["inner"], name="deep")], "branch", [], [value("inner", ("B", 2))]
    )
    model.graph.node.append(constant("flag", np.array(True)))
    model.graph.node.append(helper.make_node("If", ["flag"], ["picked"], then_branch=branch, else_branch=branch))
    model.graph.output.append(value("picked", ("B", 2)))
    with pytest.raises(
        ImportRefused, match=r"^the encoder's output 'picked' needs the operator NoSuchOp \(node 'deep'\)"
    ):
        kept(user_graph(model), ["mean", "picked"])


def test_a_custom_domain_is_left_to_onnxruntime_and_named_in_its_refusal() -> None:
    graph = user_graph(unknown_op_encoder("com.example"))
    assert kept(graph, ["mean", "extra"]).dropped_outputs == ()  # not refused here: onnxruntime decides
    assert custom_operators(graph) == "; it needs com.example.NoSuchOp (for 'extra')"
    assert custom_operators(user_graph(unknown_op_encoder("com.microsoft"))) == ""  # onnxruntime ships these
    assert custom_operators(user_graph(mlp_encoder().model)) == ""


def test_a_graph_that_fails_the_checker_is_refused_with_its_first_line() -> None:
    model = model_of(
        [helper.make_node("Relu", ["nowhere"], ["mean"])], [value("pixels", ("B", 784))], [value("mean", ("B", 2))]
    )
    with pytest.raises(ImportRefused, match=r"^the encoder fails onnx.checker: [^\n]*nowhere[^\n]*$"):
        kept(user_graph(model), ["mean"])


# ---------------------------------------------------------------------------------------------
# Inputs and outputs, before anything runs


@pytest.mark.parametrize(
    ("dims", "layouts"),
    [
        (None, list(PIXEL_LAYOUTS)),
        (["B", 784], ["flat"]),
        (["B", 1, 28, 28], ["nchw"]),
        (["B", 28, 28, 1], ["nhwc"]),
        (["B", 28, 28], ["hw"]),
        (["B", "h", "w", "c"], ["nchw", "nhwc"]),
        (["B", None, 28, 28], ["nchw"]),
        (["B", 3, 28, 28], []),
        (["B", 28, 28, 3], []),
    ],
)
def test_the_layouts_an_input_may_take(dims, layouts) -> None:
    assert checks._fitting_layouts(dims) == layouts


def test_an_input_is_float32_of_an_allowed_rank_with_a_dynamic_batch() -> None:
    assert checks._check_input(value("x", ("B", 784)), "encoder's input", rank=(2, 4)) == ["B", 784]
    assert checks._check_input(value("x", (0, 784)), "encoder's input", rank=(2,)) == [0, 784]  # 0: unknown
    assert checks._check_input(value("x", None), "encoder's input", rank=(2,)) is None  # no shape: runs decide
    assert checks._check_input(value("x", ("B", 784), TensorProto.UNDEFINED), "input", rank=(2,)) == ["B", 784]
    with refused("the encoder's input 'x' has rank 3 [B, ?, 784]; expected rank 2 or 4"):
        checks._check_input(value("x", ("B", None, 784)), "encoder's input", rank=(2, 4))
    with refused(
        "the decoder's input 'z' has a fixed batch size of 1 [1, 2]: export it with a dynamic first axis "
        "(torch: dynamic_shapes or dynamic_axes; tf2onnx: a None batch dimension)"
    ):
        checks._check_input(value("z", (1, 2)), "decoder's input", rank=(2,))
    with refused("the encoder's input 'x' is INT64: it must be float32"):
        checks._check_input(value("x", ("B", 784), TensorProto.INT64), "encoder's input", rank=(2,))
    sequence = helper.make_tensor_sequence_value_info("s", TensorProto.FLOAT, None)
    with refused("the decoder's output 's' is not a tensor: it must be float32"):
        checks._check_float(sequence, "decoder's output")


def test_a_graph_takes_one_input_besides_its_initializers() -> None:
    model = mlp_encoder().model
    model.graph.input.append(helper.make_tensor_value_info("w1", TensorProto.FLOAT, [784, 16]))  # old IR style
    assert checks._single_input(model, "encoder", "images").name == "pixels"
    model.graph.input.append(value("mask", ("B", 784)))
    with refused("the encoder has 2 inputs ['pixels', 'mask']: it must take the images alone"):
        checks._single_input(model, "encoder", "images")


def outputs_model(names, computed_from: dict[str, list[str]] | None = None) -> onnx.ModelProto:
    """A graph with outputs ``names`` [B, 2], each an Identity of the input unless ``computed_from`` says
    it is the Sum of other outputs."""
    computed_from = computed_from or {}
    nodes = [
        helper.make_node("Sum", computed_from[name], [name])
        if name in computed_from
        else helper.make_node("Identity", ["x"], [name])
        for name in names
    ]
    return model_of(nodes, [value("x", ("B", 2))], [value(name, ("B", 2)) for name in names])


@pytest.mark.parametrize(
    ("names", "chosen"),
    [
        (["z"], ["z"]),
        (["mu", "sigma2"], ["mu", "sigma2"]),  # by order
        (["log_var", "mean"], ["mean", "log_var"]),  # only the first speaks of a variance
        (["var_a", "var_b"], ["var_a", "var_b"]),
        (["z_mean", "z_log_var", "z"], ["z_mean", "z_log_var"]),
        (["Mu", "LogVar", "sample"], ["Mu", "LogVar"]),
        (["z_mu", "logvar", "z"], ["z_mu", "logvar"]),
    ],
)
def test_the_encoder_outputs_found_by_their_names(names, chosen) -> None:
    assert checks._encoder_output_names(outputs_model(names), None) == chosen


def test_the_sample_is_found_by_what_it_is_computed_from() -> None:
    model = outputs_model(["output_0", "output_1", "output_2"], {"output_2": ["output_0", "output_1"]})
    assert checks._encoder_output_names(model, None) == ["output_0", "output_1"]
    model = outputs_model(["output_2", "output_0", "output_1"], {"output_2": ["output_0", "output_1"]})
    assert checks._encoder_output_names(model, None) == ["output_0", "output_1"]
    with refused(
        "the encoder has 3 outputs ['a', 'b', 'c']: name the mean (and the log-variance) with --encoder-outputs "
        "MEAN,LOGVAR"
    ):
        checks._encoder_output_names(outputs_model(["a", "b", "c"]), None)
    with pytest.raises(ImportRefused, match=r"^the encoder has 4 outputs \['a', 'b', 'c', 'd'\]: name the mean"):
        checks._encoder_output_names(outputs_model(["a", "b", "c", "d"]), None)


def test_named_encoder_outputs_must_be_one_or_two_of_its_own() -> None:
    model = outputs_model(["a", "b", "c"])
    assert checks._encoder_output_names(model, ["c", "a"]) == ["c", "a"]
    assert checks._encoder_output_names(model, ["b"]) == ["b"]
    for names in (["a", "x"], ["a", "b", "c"], ["a", "a"]):
        with refused(
            f"encoder outputs {names} must be 1 or 2 different names among the encoder's outputs ['a', 'b', 'c']"
        ):
            checks._encoder_output_names(model, names)


def test_one_output_chosen_by_name_or_because_it_is_alone() -> None:
    outputs = list(outputs_model(["image", "logits"]).graph.output)
    assert checks._one(outputs, "logits", "decoder's outputs", "--decoder-output").name == "logits"
    assert checks._one(outputs[:1], None, "decoder's outputs", "--decoder-output").name == "image"
    with refused("the decoder's outputs has no 'pixels' among ['image', 'logits']"):
        checks._one(outputs, "pixels", "decoder's outputs", "--decoder-output")
    with refused("the decoder's outputs has 2 of them, ['image', 'logits']: say which with --decoder-output"):
        checks._one(outputs, None, "decoder's outputs", "--decoder-output")


def test_dims_and_their_text() -> None:
    info = value("x", ("B", 28, None, 1))
    assert checks._dims(info) == ["B", 28, None, 1]
    assert checks._shape_text(checks._dims(info)) == "[B, 28, ?, 1]"
    assert checks._shape_text([]) == "[]"


def test_too_slow_and_not_finite_messages() -> None:
    assert str(checks._too_slow("decoder", "codes", None, 1.0)) == (
        "the decoder takes over 1 s per 256 codes, more than the 1 s allowed per 256: the pages run it on every "
        "click and on whole grids"
    )
    assert str(checks._too_slow("encoder", "images", 1.23456, 0.5, batch=8)).startswith(
        "the encoder takes 1.23 s per 8 images, more than the 0.5 s allowed per 256:"
    )
    bad = np.ones((5, 2, 3), dtype=np.float32)
    bad[1, 0, 2], bad[3, 1, 1] = np.nan, -np.inf
    checks._check_finite([np.ones((5, 2))], ["mean"], "encoder", "test images")
    with refused("the encoder's output 'logvar' is NaN or infinite for 2 of 5 test images"):
        checks._check_finite([np.ones((5, 2)), bad], ["mean", "logvar"], "encoder", "test images")


def test_the_probe_codes_are_the_first_embeddings_then_seeded_draws_of_their_spread() -> None:
    embedded = np.random.default_rng(3).normal(size=(256, 4)) * 3.0
    codes = checks._probe_codes(embedded)
    assert codes.shape == (256, 4) and codes.dtype == np.float32
    np.testing.assert_array_equal(codes[:192], embedded[:192].astype(np.float32))
    draws = np.random.default_rng(0).normal(size=(64, 4)) * float(embedded.std())
    np.testing.assert_allclose(codes[192:], draws, rtol=1e-6)
    narrow = checks._probe_codes(embedded * 0.01)  # a spread below 1 draws with 1
    np.testing.assert_allclose(narrow[192:], np.random.default_rng(0).normal(size=(64, 4)), rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# The probe: runs in a fenced worker


@pytest.fixture(scope="module")
def worker():
    with Worker() as own:
        yield own


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(5).uniform(size=(256, 1, 28, 28)).astype(np.float32)


def run_probe(encoder: Graph, decoder: Graph, images: np.ndarray, worker: Worker, **options):
    return probe(
        user_graph(encoder.model, "encoder"), user_graph(decoder.model, "decoder"), images, worker=worker, **options
    )


def test_a_vae_pair_is_wired_and_measured_against_its_own_arithmetic(images, worker) -> None:
    encoder, decoder = mlp_encoder(outputs=("mean", "logvar")), mlp_decoder(input_name="z", output_name="image")
    wiring = run_probe(encoder, decoder, images, worker)
    interface = wiring.interface
    assert (interface.encoder_input, interface.input_layout, interface.encoder_outputs) == (
        "pixels",
        "flat",
        ("mean", "logvar"),
    )
    assert (interface.decoder_input, interface.decoder_output, interface.output_layout, interface.logits) == (
        "z",
        "image",
        "flat",
        False,
    )
    assert wiring.latent_dim == 2 and wiring.images is images
    for got, expected in zip(wiring.encoded, encoder.reference(images.reshape(256, 784))):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(wiring.codes, checks._probe_codes(wiring.encoded[0]))
    expected = decoder.reference(wiring.codes)[0].reshape(256, 1, 28, 28)
    assert wiring.decoded.shape == (256, 1, 28, 28) and wiring.decoded.dtype == np.float32
    np.testing.assert_allclose(wiring.decoded, expected, rtol=1e-4, atol=1e-5)
    assert set(wiring.seconds) == {"encoder", "decoder"} and all(0 < s <= 1.0 for s in wiring.seconds.values())
    assert wiring.encoder.what == "encoder" and wiring.decoder.what == "decoder"


def test_a_logits_decoder_is_passed_through_a_sigmoid(images, worker) -> None:
    encoder, decoder = mlp_encoder(), mlp_decoder(final=None, output_dims=(1, 28, 28))
    with pytest.raises(ImportRefused, match=r"outside \[0, 1\]\. If it gives logits .*say so with the logits option"):
        run_probe(encoder, decoder, images, worker)
    wiring = run_probe(encoder, decoder, images, worker, logits=True)
    assert wiring.interface.logits and wiring.interface.output_layout == "nchw"
    logits = decoder.reference(wiring.codes)[0].reshape(256, 1, 28, 28)
    np.testing.assert_allclose(wiring.decoded, sigmoid(logits), rtol=1e-4, atol=1e-6)


def test_outputs_outside_zero_one_say_where_they_reach(images, worker) -> None:
    decoder = mlp_decoder(final=None)
    with pytest.raises(
        ImportRefused, match=r"^the decoder's outputs reach -?[0-9.]+ to [0-9.]+ on test codes, outside"
    ):
        run_probe(mlp_encoder(), decoder, images, worker)


def test_a_layout_asked_for_must_exist_and_fit(images, worker) -> None:
    encoder, decoder = mlp_encoder(input_dims=("B", 1, 28, 28)), mlp_decoder()
    assert run_probe(encoder, decoder, images, worker, input_layout="nchw").interface.input_layout == "nchw"
    with refused("input layout must be one of ['nchw', 'nhwc', 'hw', 'flat'], got 'chw'"):
        run_probe(encoder, decoder, images, worker, input_layout="chw")
    with refused("input layout 'flat' [784] does not fit the encoder's input 'pixels' [B, 1, 28, 28]"):
        run_probe(encoder, decoder, images, worker, input_layout="flat")
    with refused(
        "the encoder's input 'pixels' is [B, 3, 28, 28]: expected 784 pixels as [B, 1, 28, 28], [B, 28, 28, 1], "
        "[B, 28, 28] or [B, 784]"
    ):
        run_probe(mlp_encoder(input_dims=("B", 3, 28, 28)), decoder, images, worker)


def test_an_open_layout_is_settled_by_the_one_that_runs(images, worker) -> None:
    encoder = mlp_encoder(input_dims=("B", "h", "w", "c"), nhwc_only=True)  # NCHW or NHWC; only NHWC squeezes axis 3
    wiring = run_probe(encoder, mlp_decoder(), images, worker)
    assert wiring.interface.input_layout == "nhwc"
    nhwc = images.reshape(256, 28, 28, 1)
    np.testing.assert_allclose(wiring.encoded[0], encoder.reference(nhwc)[0], rtol=1e-4, atol=1e-5)


def test_the_codes_sizes_must_agree(images, worker) -> None:
    with refused("the decoder takes codes of 3 numbers [B, 3], the encoder gives 2"):
        run_probe(mlp_encoder(), mlp_decoder(latent=3, input_dims=("B", 3)), images, worker)
    with refused("the encoder gives codes of D = 1 numbers; D must be from 2 to 128"):
        run_probe(mlp_encoder(latent=1), mlp_decoder(latent=1), images, worker)
    with refused("the encoder gives codes of D = 129 numbers; D must be from 2 to 128"):
        run_probe(mlp_encoder(latent=129), mlp_decoder(latent=129), images, worker)
    assert run_probe(mlp_encoder(latent=128), mlp_decoder(latent=128), images, worker).latent_dim == 128


def test_a_decoder_of_another_image_size_is_refused(images, worker) -> None:
    with refused(
        "the decoder's output 'pixels' is float32 [8, 4, 196] for 8 codes; expected float32 [8, 784], "
        "[8, 1, 28, 28], [8, 28, 28, 1] or [8, 28, 28]"
    ):
        run_probe(mlp_encoder(), mlp_decoder(output_dims=(4, 196)), images, worker)


def test_non_finite_outputs_are_refused(images, worker) -> None:
    encoder = mlp_encoder()
    encoder.model.graph.node[-1].output[0] = "pre"
    encoder.model.graph.node.extend([constant("inf", np.array(np.inf, dtype=np.float32))])
    encoder.model.graph.node.append(helper.make_node("Mul", ["pre", "inf"], ["mean"]))
    with pytest.raises(ImportRefused, match=r"^the encoder's output 'mean' is NaN or infinite for \d+ of 256 test"):
        run_probe(encoder, mlp_decoder(), images, worker)


def test_a_graph_past_the_time_limit_is_refused(images, worker) -> None:
    with pytest.raises(ImportRefused, match=r"^the encoder takes .* s per 8 images, more than the 1e-09 s allowed"):
        run_probe(mlp_encoder(), mlp_decoder(), images, worker, max_seconds=1e-9)


# ---------------------------------------------------------------------------------------------
# Reading, further: what is stored, and the IR version the page reads


def test_a_file_that_grows_is_read_no_further_than_a_byte_past_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "e.onnx"
    path.write_bytes(bytes(100))
    real_stat, real_open = Path.stat, open
    taken: list[int] = []

    class Counting:
        """A file handle that counts what is read from it."""

        def __init__(self, *args) -> None:
            self.handle = real_open(*args)

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self.handle.close()

        def read(self, n: int = -1) -> bytes:
            data = self.handle.read(n)
            taken.append(len(data))
            return data

    def stat_before_it_grew(self, *args, **kwargs):
        result = real_stat(self, *args, **kwargs)
        if self == path:
            path.write_bytes(bytes(3000))
        return result

    monkeypatch.setattr(Path, "stat", stat_before_it_grew)
    monkeypatch.setattr(checks, "open", Counting, raising=False)
    with refused(f"the encoder {path} grew beyond 0.0 MB while being read"):
        read_graph(path, "encoder", max_bytes=200)
    assert taken == [201]  # one byte past the limit tells that it grew; a file growing without end is never read whole


def canonical(data: bytes) -> bytes:
    return onnx.load_model_from_string(data).SerializeToString()


def test_bytes_the_page_reads_are_stored_as_given_not_as_protobuf_would_write_them() -> None:
    model = mlp_encoder().model
    model.ClearField("ir_version")
    # The IR version (field 1, a varint) written last: a valid protobuf that parses to the same model, which
    # protobuf itself would write with the field first; the stored bytes must still be the user's.
    data = model.SerializeToString() + bytes([0x08, PAGE_MAX_IR_VERSION])
    assert onnx.load_model_from_string(data).ir_version == PAGE_MAX_IR_VERSION and canonical(data) != data
    graph = read_graph(data, "encoder")
    assert graph.data == data and graph.source["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_graph_newer_than_the_page_reads_is_brought_down_and_stored_rewritten() -> None:
    for opset in (17, 25):  # 25 is the newest operator set that IR version 13 (the page's) allows
        assert helper.find_min_ir_version_for([helper.make_opsetid("", opset)]) <= PAGE_MAX_IR_VERSION
        model = model_of([helper.make_node("Relu", ["x"], ["mean"])], [value("x", ("B", 2))], [value("mean", ("B", 2))])
        model.opset_import[0].version = opset
        model.ir_version = PAGE_MAX_IR_VERSION + 1
        data = model.SerializeToString()
        graph = read_graph(data, "encoder")
        assert graph.proto.ir_version == PAGE_MAX_IR_VERSION
        assert onnx.load_model_from_string(graph.data).ir_version == PAGE_MAX_IR_VERSION  # what is stored
        assert graph.source["sha256"] == hashlib.sha256(data).hexdigest()  # the record is of the file as given


def test_an_operator_set_too_new_for_the_page_is_refused() -> None:
    needs = helper.find_min_ir_version_for([helper.make_opsetid("", 28)])
    assert needs > PAGE_MAX_IR_VERSION  # onnx's own table: opset 28 came with IR version 14
    model = model_of(
        [helper.make_node("Relu", ["x"], ["mean"])], [value("x", ("B", 2))], [value("mean", ("B", 2))], opset=28
    )
    model.ir_version = needs
    with refused(
        f"the decoder imports operator set 28, which needs ONNX IR version {needs}: newer than the in-page runtime "
        f"(onnxruntime-web) reads (up to {PAGE_MAX_IR_VERSION}); export it with an older opset (20 works everywhere)"
    ):
        read_graph(model.SerializeToString(), "decoder")


def test_external_data_of_a_graph_the_page_reads_is_folded_into_what_is_stored(tmp_path: Path) -> None:
    graph = for_the_page(mlp_encoder())  # not lowered: only the folding in rewrites it
    weight = first_weight(graph)
    (tmp_path / "w.bin").write_bytes(weight.tobytes())
    read = read_graph(with_external(graph, tmp_path, "w.bin"), "encoder")
    stored = onnx.load_model_from_string(read.data).graph.initializer[0]
    assert not uses_external_data(stored)
    np.testing.assert_array_equal(numpy_helper.to_array(stored), weight)


def test_an_external_tensor_without_a_location_is_refused(tmp_path: Path) -> None:
    path = with_external(mlp_encoder(), tmp_path, None)
    with refused(
        "the encoder's external data location '' is not a plain file name beside the graph: only files in the "
        "graph's own folder are read, never ../ or absolute paths"
    ):
        read_graph(path, "encoder")


def test_an_empty_external_tensor_is_read_as_empty(tmp_path: Path) -> None:
    graph = mlp_encoder()
    # An empty tensor (as torch writes for a Resize's unused roi), first so that with_external moves it out.
    initializers = [numpy_helper.from_array(np.zeros(0, np.float32), "roi"), *graph.model.graph.initializer]
    del graph.model.graph.initializer[:]
    graph.model.graph.initializer.extend(initializers)
    (tmp_path / "w.bin").write_bytes(bytes(8))
    read = read_graph(with_external(graph, tmp_path, "w.bin", offset=4), "encoder")
    assert numpy_helper.to_array(read.proto.graph.initializer[0]).shape == (0,)


def test_a_data_file_is_opened_without_following_a_link_or_waiting_on_a_pipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "w.bin").write_bytes(first_weight(mlp_encoder()).tobytes())
    path = with_external(mlp_encoder(), tmp_path, "w.bin")
    flags, real_open = [], os.open
    monkeypatch.setattr(checks.os, "open", lambda name, how: flags.append(how) or real_open(name, how))
    read_graph(path, "encoder")
    assert len(flags) == 1 and flags[0] & os.O_NOFOLLOW and flags[0] & os.O_NONBLOCK


# ---------------------------------------------------------------------------------------------
# Cutting to the outputs used, further: domains, versions, local functions, nesting


def test_the_default_domain_may_be_spelled_ai_onnx() -> None:
    message = (
        "the encoder's output 'extra' needs the operator NoSuchOp (node 'mystery'), which ONNX (ai.onnx 17) does "
        "not define, so nothing can run it: export the encoder without it, or use outputs that do not need it"
    )
    imported = unknown_op_encoder()
    imported.opset_import[0].domain = "ai.onnx"
    named = unknown_op_encoder()
    named.graph.node[-1].domain = "ai.onnx"
    for model in (imported, named):
        with refused(message):
            kept(user_graph(model), ["mean", "extra"])
        assert kept(user_graph(model), ["mean"]).dropped_outputs == ("extra",)


def test_each_standard_domain_is_checked_at_its_own_version() -> None:
    model = unknown_op_encoder()
    model.opset_import.append(helper.make_opsetid("ai.onnx.ml", 3))
    with refused(
        "the encoder's output 'extra' needs the operator NoSuchOp (node 'mystery'), which ONNX (ai.onnx 17) does "
        "not define, so nothing can run it: export the encoder without it, or use outputs that do not need it"
    ):
        kept(user_graph(model), ["mean", "extra"])
    model.graph.node[-1].domain = "ai.onnx.ml"
    with pytest.raises(ImportRefused, match=r"NoSuchOp \(node 'mystery'\), which ONNX \(ai\.onnx\.ml 3\) does not"):
        kept(user_graph(model), ["mean", "extra"])


def ml_encoder(imported: bool = True) -> onnx.ModelProto:
    """mean as in mlp_encoder, and ``normed``: an ai.onnx.ml Normalizer of it."""
    model = mlp_encoder().model
    model.graph.node.append(helper.make_node("Normalizer", ["mean"], ["normed"], domain="ai.onnx.ml", norm="MAX"))
    model.graph.output.append(value("normed", ("B", 2)))
    if imported:
        model.opset_import.append(helper.make_opsetid("ai.onnx.ml", 3))
    return model


def test_an_operator_of_the_ml_domain_is_looked_up_there() -> None:
    cut = kept(user_graph(ml_encoder()), ["mean", "normed"])
    assert [node.op_type for node in cut.proto.graph.node][-1] == "Normalizer"
    with pytest.raises(ImportRefused, match="^the encoder fails onnx.checker: No opset import for domain 'ai.onnx.ml'"):
        kept(user_graph(ml_encoder(imported=False)), ["mean", "normed"])


def test_an_operator_newer_than_the_graphs_operator_set_is_refused() -> None:
    assert onnx.defs.get_schema("Gelu", "").since_version > 17  # onnx's own: Gelu came with operator set 20
    model = mlp_encoder().model
    model.graph.node.append(helper.make_node("Gelu", ["mean"], ["smooth"], name="g"))
    model.graph.output.append(value("smooth", ("B", 2)))
    with pytest.raises(ImportRefused, match=r"^the encoder's output 'smooth' needs the operator Gelu \(node 'g'\), "):
        kept(user_graph(model), ["mean", "smooth"])


def test_a_graph_that_fails_shape_inference_is_refused() -> None:
    model = model_of(
        [helper.make_node("Add", ["x", "c"], ["mean"])],
        [value("x", ("B", 2))],
        [value("mean", ("B", 2))],
        [numpy_helper.from_array(np.ones(3, np.float32), "c")],
    )
    onnx.checker.check_model(model)  # the checker without shape inference lets [B, 2] + [3] through
    with pytest.raises(ImportRefused, match=r"^the encoder fails onnx.checker: \[ShapeInferenceError\].*Incompatible"):
        kept(user_graph(model), ["mean"])


def local_function_encoder(op_type: str = "Double", defined: str = "Double", domain: str = "local") -> onnx.ModelProto:
    """mlp_encoder with ``twice`` = the node ``domain.op_type`` of mean, and a local function ``local.defined``
    (x + x)."""
    model = mlp_encoder().model
    function = helper.make_function(
        "local", defined, ["x"], ["y"], [helper.make_node("Add", ["x", "x"], ["y"])], [helper.make_opsetid("", 17)]
    )
    model.functions.append(function)
    model.opset_import.append(helper.make_opsetid("local", 1))
    model.graph.node.append(helper.make_node(op_type, ["mean"], ["twice"], name="twice", domain=domain))
    model.graph.output.append(value("twice", ("B", 2)))
    return model


def test_a_local_function_is_neither_refused_nor_named_as_a_custom_operator() -> None:
    graph = user_graph(local_function_encoder())
    assert kept(graph, ["mean", "twice"]).proto.functions[0].name == "Double"
    assert custom_operators(graph) == ""
    assert (
        custom_operators(user_graph(local_function_encoder(op_type="Triple")))
        == "; it needs local.Triple (for 'twice')"
    )


def test_a_local_function_excuses_only_its_own_domain_and_name() -> None:
    model = local_function_encoder(op_type="NoSuchOp", defined="NoSuchOp", domain="")
    with pytest.raises(
        ImportRefused, match=r"^the encoder's output 'twice' needs the operator NoSuchOp \(node 'twice'\)"
    ):
        kept(user_graph(model), ["mean", "twice"])


def test_every_node_is_checked_after_one_left_to_onnxruntime() -> None:
    model = local_function_encoder()
    model.graph.node.append(helper.make_node("NoSuchOp", ["twice"], ["after"], name="after"))
    model.graph.output.append(value("after", ("B", 2)))
    with pytest.raises(
        ImportRefused, match=r"^the encoder's output 'after' needs the operator NoSuchOp \(node 'after'\)"
    ):
        kept(user_graph(model), ["mean", "after"])


def test_an_operator_two_subgraphs_deep_is_found() -> None:
    model = mlp_encoder().model
    inner = helper.make_graph(
        [helper.make_node("NoSuchOp", ["mean"], ["deep_out"], name="deep")], "inner", [], [value("deep_out", ("B", 2))]
    )
    middle = helper.make_graph(
        [helper.make_node("If", ["flag"], ["mid_out"], then_branch=inner, else_branch=inner)],
        "middle",
        [],
        [value("mid_out", ("B", 2))],
    )
    model.graph.node.append(constant("flag", np.array(True)))
    model.graph.node.append(helper.make_node("If", ["flag"], ["picked"], then_branch=middle, else_branch=middle))
    model.graph.output.append(value("picked", ("B", 2)))
    with pytest.raises(
        ImportRefused, match=r"^the encoder's output 'picked' needs the operator NoSuchOp \(node 'deep'\)"
    ):
        kept(user_graph(model), ["mean", "picked"])


def test_what_is_kept_is_stored_cut() -> None:
    model = mlp_encoder().model
    model.graph.output.append(value("h", ("B", 16)))  # an inner tensor also given out: no node goes with it
    cut = kept(user_graph(model), ["mean"])
    assert (cut.dropped_outputs, cut.dropped_nodes) == (("h",), 0)
    assert [o.name for o in onnx.load_model_from_string(cut.data).graph.output] == ["mean"]
    model = mlp_encoder().model
    model.graph.node.append(helper.make_node("Relu", ["mean"], ["unused"]))  # feeds no output
    cut = kept(user_graph(model), ["mean"])
    assert (cut.dropped_outputs, cut.dropped_nodes) == ((), 1)
    assert "unused" not in {name for node in onnx.load_model_from_string(cut.data).graph.node for name in node.output}


def test_custom_operators_are_each_named_once_with_the_output_they_feed() -> None:
    model = unknown_op_encoder("com.example")
    model.graph.node[-1].output[0] = "pre"  # two NoSuchOp in a row, both for 'extra'
    model.graph.node.append(helper.make_node("NoSuchOp", ["pre"], ["extra"], domain="com.example"))
    model.graph.node.append(helper.make_node("Dead", ["mean"], ["unused"], domain="com.example"))  # feeds nothing
    assert custom_operators(user_graph(model)) == "; it needs com.example.NoSuchOp (for 'extra'), com.example.Dead"


# ---------------------------------------------------------------------------------------------
# Inputs and outputs, further


def test_one_mean_without_a_log_variance_names_nothing() -> None:
    with refused(
        "the encoder has 3 outputs ['z_mean', 'a', 'b']: name the mean (and the log-variance) with "
        "--encoder-outputs MEAN,LOGVAR"
    ):
        checks._encoder_output_names(outputs_model(["z_mean", "a", "b"]), None)


def test_the_two_left_beside_the_sample_are_ordered_by_their_names() -> None:
    model = outputs_model(["spread_var", "centre", "draw"], {"draw": ["spread_var", "centre"]})
    assert checks._encoder_output_names(model, None) == ["centre", "spread_var"]


def two_input_graph(graph: Graph, name: str, extra: str = "mask") -> onnx.ModelProto:
    """``graph`` with a second input ``extra``, added to its input ``name`` before anything else reads it."""
    model = graph.model
    for node in model.graph.node:
        node.input[:] = ["joined" if i == name else i for i in node.input]
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    model.graph.node.insert(0, helper.make_node("Add", [name, extra], ["joined"]))
    model.graph.input.append(value(extra, dims))
    return model


def to_double(graph: Graph) -> onnx.ModelProto:
    """``graph`` with its first output cast to float64."""
    model = graph.model
    out = model.graph.output[0]
    for node in model.graph.node:
        node.output[:] = ["as_float" if o == out.name else o for o in node.output]
    model.graph.node.append(helper.make_node("Cast", ["as_float"], [out.name], to=TensorProto.DOUBLE))
    out.type.tensor_type.elem_type = TensorProto.DOUBLE
    return model


# Refused before anything runs: no runtime is needed.
def test_the_encoders_input_and_outputs_are_checked_before_it_runs(images) -> None:
    def probe_encoder(model: onnx.ModelProto):
        return checks._probe_encoder(user_graph(model), None, images, ["mean"], None, 1.0)

    with refused("the encoder has 2 inputs ['pixels', 'mask']: it must take the images alone"):
        probe_encoder(two_input_graph(mlp_encoder(), "pixels"))
    with refused(
        "the encoder's input 'pixels' has a fixed batch size of 1 [1, 784]: export it with a dynamic first axis "
        "(torch: dynamic_shapes or dynamic_axes; tf2onnx: a None batch dimension)"
    ):
        probe_encoder(mlp_encoder(input_dims=(1, 784)).model)
    with refused("the encoder's output 'mean' is DOUBLE: it must be float32"):
        probe_encoder(to_double(mlp_encoder()))


def test_the_decoders_input_and_output_are_checked_before_it_runs() -> None:
    codes = np.zeros((256, 2), np.float32)

    def probe_decoder(model: onnx.ModelProto):
        return checks._probe_decoder(user_graph(model, "decoder"), None, codes, False, 1.0)

    with refused("the decoder has 2 inputs ['code', 'mask']: it must take the codes alone"):
        probe_decoder(two_input_graph(mlp_decoder(), "code"))
    with refused(
        "the decoder's input 'code' has a fixed batch size of 1 [1, 2]: export it with a dynamic first axis "
        "(torch: dynamic_shapes or dynamic_axes; tf2onnx: a None batch dimension)"
    ):
        probe_decoder(mlp_decoder(input_dims=(1, 2)).model)
    with refused("the decoder's output 'pixels' is DOUBLE: it must be float32"):
        probe_decoder(to_double(mlp_decoder()))


# ---------------------------------------------------------------------------------------------
# Runs whose answers are scripted: the timings and failures a real graph gives only on a busy machine


class Scripted:
    """Stands in for a fenced :class:`Worker`: each run is recorded and answered by the next of ``answers``, an
    (outputs, seconds) pair as ``Worker.run`` returns (outputs None: its timer stopped it) or a FenceError to
    raise, so a test can give a run of any duration or failure without waiting for one."""

    def __init__(self, *answers, limit_bytes: int = 3 * 2**30) -> None:
        self.answers, self.calls, self.limit_bytes = list(answers), [], limit_bytes

    def run(self, key, outputs, feed, *, seconds, max_output_bytes):
        self.calls.append({"key": key, "outputs": outputs, "seconds": seconds, "max_output_bytes": max_output_bytes})
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def scripted(*answers) -> checks.Fenced:
    return checks.Fenced(Scripted(*answers), "user graph")


SLOW = "more than the 0.5 s allowed per 256: the pages run it on every click and on whole grids"
EIGHT = {"pixels": np.zeros((8, 784), np.float32)}
ALL = {"pixels": np.zeros((256, 784), np.float32)}


def test_a_first_run_is_refused_past_its_limit_and_kept_at_it() -> None:
    out = [np.zeros((8, 2), np.float32)]
    assert checks._small_run(scripted((out, 0.5)), ["mean"], EIGHT, "encoder", "images", 0.5) is out
    with refused(f"the encoder takes 0.70 s per 8 images, {SLOW}"):
        checks._small_run(scripted((out, 0.7)), ["mean"], EIGHT, "encoder", "images", 0.5)
    with refused(f"the decoder takes over 0.5 s per 8 codes, {SLOW}"):
        checks._small_run(scripted((None, 0.5)), ["pixels"], {"code": np.zeros((8, 2))}, "decoder", "codes", 0.5)
    killed = FenceError("time: the worker process did not stop at the time limit and was killed", "time")
    with refused(f"the encoder takes over 0.5 s per 8 images, {SLOW}"):  # killed past its grace: as stopped
        checks._small_run(scripted(killed), ["mean"], EIGHT, "encoder", "images", 0.5)


def test_a_run_past_a_fence_is_refused_saying_which_and_on_what() -> None:
    runtime = scripted(FenceError("memory: ended with SIGKILL", "memory"))
    with refused("the encoder needed more than 3 GiB of memory when run on 8 images"):
        checks._small_run(runtime, ["mean"], EIGHT, "encoder", "images", 0.5)
    assert runtime.worker.calls == [
        {"key": "user graph", "outputs": ["mean"], "seconds": 0.5, "max_output_bytes": 8 * 8 * 1024}
    ]
    with refused("onnxruntime failed running the encoder on pixels [256, 784]: bad shape"):
        checks._timed(scripted(FenceError("bad shape", "failed")), ["mean"], ALL, "encoder", "images", 0.5)
    runtime = scripted(FenceError("memory: ended with SIGKILL", "memory"))
    with refused("the encoder needed more than 3 GiB of memory when run on 256 images"):
        checks._timed(runtime, ["mean"], ALL, "encoder", "images", 0.5)
    assert [call["outputs"] for call in runtime.worker.calls] == [["mean"]]


def test_the_timing_is_the_best_of_two_runs() -> None:
    first, second = [np.zeros((256, 2), np.float32)], [np.ones((256, 2), np.float32)]
    result = checks._timed(scripted((first, 0.7), (second, 0.4)), ["mean"], ALL, "encoder", "images", 0.5)
    assert result == (second, 0.4)
    assert checks._timed(scripted((None, 0.5), (second, 0.5)), ["mean"], ALL, "encoder", "images", 0.5) == (second, 0.5)
    with refused(f"the encoder takes 0.60 s per 256 images, {SLOW}"):  # the faster of the two
        checks._timed(scripted((first, 0.7), (first, 0.6)), ["mean"], ALL, "encoder", "images", 0.5)
    with refused(f"the decoder takes 0.70 s per 256 codes, {SLOW}"):  # a stopped run has no time of its own
        checks._timed(scripted((None, 0.5), (first, 0.7)), ["pixels"], ALL, "decoder", "codes", 0.5)
    with refused(f"the decoder takes over 0.5 s per 256 codes, {SLOW}"):
        checks._timed(scripted((None, 0.5), (None, 0.5)), ["pixels"], ALL, "decoder", "codes", 0.5)


def fast(*arrays) -> tuple[list[np.ndarray], float]:
    return [np.asarray(a) for a in arrays], 0.01


def encoder_run(runtime, images, model=None, names=("mean",)):
    graph = kept(user_graph(model or mlp_encoder(outputs=names).model), list(names))
    return checks._probe_encoder(graph, runtime, images, list(names), None, 0.5)


def test_the_encoders_outputs_must_be_float32_codes_for_the_batch(images) -> None:
    codes8 = np.zeros((8, 2), np.float32)
    for wrong in (np.zeros((4, 2), np.float32), np.zeros((8, 2, 1), np.float32)):
        with refused(
            f"the encoder's output 'mean' is float32 {list(wrong.shape)} for 8 images; expected float32 [8, D]"
        ):
            encoder_run(scripted(fast(wrong)), images)
    with refused("the encoder's mean [8, 2] and log-variance [8, 3] differ in shape"):
        encoder_run(scripted(fast(codes8, np.zeros((8, 3), np.float32))), images, names=("mean", "logvar"))
    with refused(
        "the encoder's output 'mean' is [250, 2] for 256 images, but [8, 2] for 8: its shape must follow the batch alone"
    ):
        encoder_run(scripted(fast(codes8), fast(np.zeros((250, 2), np.float32))), images)
    with refused(f"the encoder takes 0.70 s per 256 images, {SLOW}"):
        encoder_run(scripted(fast(codes8), ([np.zeros((256, 2))], 0.7), ([np.zeros((256, 2))], 0.8)), images)
    name, layout, (encoded,), seconds = encoder_run(scripted(fast(codes8), fast(np.ones((256, 2), np.float32))), images)
    assert (name, layout, seconds) == ("pixels", "flat", 0.01) and (encoded == 1).all()


def test_every_layout_an_open_input_may_take_is_tried_and_each_failure_told(images) -> None:
    model = mlp_encoder(input_dims=("B", "h", "w", "c")).model
    with refused(
        "onnxruntime failed running the encoder on pixels [8, 1, 28, 28]: boom / "
        "onnxruntime failed running the encoder on pixels [8, 28, 28, 1]: boom"
    ):
        encoder_run(scripted(FenceError("boom", "failed"), FenceError("boom", "failed")), images, model)


def decoder_run(runtime, codes):
    graph = kept(user_graph(mlp_decoder().model, "decoder"), ["pixels"])
    return checks._probe_decoder(graph, runtime, codes, False, 0.5)


def test_the_decoders_outputs_must_be_float32_images_in_zero_one_for_the_batch() -> None:
    codes = np.random.default_rng(7).normal(size=(256, 2)).astype(np.float32)
    images8, images = np.full((8, 784), 0.5, np.float32), np.full((256, 784), 0.5, np.float32)
    for wrong in (images8.astype(np.float64), images8[:7]):
        with refused(
            f"the decoder's output 'pixels' is {wrong.dtype} {list(wrong.shape)} for 8 codes; expected float32 "
            "[8, 784], [8, 1, 28, 28], [8, 28, 28, 1] or [8, 28, 28]"
        ):
            decoder_run(scripted(fast(wrong)), codes)
    with refused(f"the decoder takes 0.70 s per 8 codes, {SLOW}"):
        decoder_run(scripted(([images8], 0.7)), codes)
    with refused(f"the decoder takes 0.70 s per 256 codes, {SLOW}"):
        decoder_run(scripted(fast(images8), ([images], 0.7), ([images], 0.7)), codes)
    with refused(
        "the decoder's output 'pixels' is [250, 784] for 256 codes, but [8, 784] for 8: its shape must follow the "
        "batch alone"
    ):
        decoder_run(scripted(fast(images8), fast(images[:250])), codes)
    holed = images.copy()
    holed[3, 100] = np.nan
    with refused("the decoder's output 'pixels' is NaN or infinite for 1 of 256 codes"):
        decoder_run(scripted(fast(images8), fast(holed)), codes)
    bright = images.copy()
    bright[9, 0] = 1.5  # just over 1: not a sigmoid's
    with refused(
        "the decoder's outputs reach 0.5 to 1.5 on test codes, outside [0, 1]. If it gives logits (no sigmoid at "
        "its end), say so with the logits option (--logits)."
    ):
        decoder_run(scripted(fast(images8), fast(bright)), codes)
    name, layout, decoded, seconds = decoder_run(scripted(fast(images8), fast(images)), codes)
    assert (name, layout, seconds) == ("code", "flat", 0.01) and decoded.shape == (256, 1, 28, 28)


# ---------------------------------------------------------------------------------------------
# The probe, further: its options, its own worker, graphs the worker cannot load


class Recording:
    """A real worker, with the seconds each run was given recorded."""

    def __init__(self, worker: Worker) -> None:
        self.worker, self.limit_bytes, self.seconds = worker, worker.limit_bytes, []

    def load(self, key, data, what):
        return self.worker.load(key, data, what)

    def run(self, key, outputs, feed, *, seconds, max_output_bytes):
        self.seconds.append(seconds)
        return self.worker.run(key, outputs, feed, seconds=seconds, max_output_bytes=max_output_bytes)


def test_the_probe_passes_every_option_on_to_its_own_worker(images, worker, monkeypatch) -> None:
    started = []

    class Own:
        """What probe starts when given no worker: here the module's, recorded, and closed as probe leaves."""

        def __enter__(self):
            started.append(Recording(worker))
            return started[-1]

        def __exit__(self, *exc):
            started.append("closed")

    monkeypatch.setattr(checks, "Worker", Own)
    encoder = mlp_encoder(input_dims=("B", "h", "w", "c"), outputs=("a", "b"))  # NCHW or NHWC: both run
    decoder = mlp_decoder(final=None, extra_op="Sigmoid")  # gives logits as pixels, and a second output
    wiring = probe(
        user_graph(encoder.model),
        user_graph(decoder.model, "decoder"),
        images,
        encoder_outputs=["b"],
        decoder_output="pixels",
        input_layout="nhwc",
        logits=True,
        max_seconds=5.0,
    )
    interface = wiring.interface
    assert (interface.encoder_outputs, interface.decoder_output, interface.input_layout, interface.logits) == (
        ("b",),
        "pixels",
        "nhwc",
        True,
    )
    np.testing.assert_allclose(wiring.encoded[0], encoder.reference(images)[1], rtol=1e-4, atol=1e-5)
    own = started[0]
    # per graph a first run on 8 and a timed one on 256 (within 5 s, no second attempt), each given 5 s
    assert started[1:] == ["closed"] and own.seconds == [5.0] * 4


def test_a_decoder_of_two_outputs_must_be_told_which(images, worker) -> None:
    decoder = mlp_decoder(extra_op="Sigmoid")
    with refused("the decoder's outputs has 2 of them, ['pixels', 'extra']: say which with --decoder-output"):
        run_probe(mlp_encoder(), decoder, images, worker)
    with refused("the decoder's outputs has no 'image' among ['pixels', 'extra']"):
        run_probe(mlp_encoder(), decoder, images, worker, decoder_output="image")
    assert run_probe(mlp_encoder(), decoder, images, worker, decoder_output="extra").interface.decoder_output == "extra"


def test_a_graph_the_worker_cannot_load_is_refused_naming_its_custom_operators(images, worker) -> None:
    decoder = mlp_decoder()
    decoder.model.graph.node[3].domain = "com.example"  # the Sigmoid, as an operator onnxruntime does not ship
    decoder.model.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises(
        ImportRefused,
        match=r"^onnxruntime cannot run the decoder: .*; it needs com\.example\.Sigmoid \(for 'pixels'\)$",
    ):
        run_probe(mlp_encoder(), decoder, images, worker)


def test_a_graph_past_the_memory_limit_when_loaded_is_refused(images) -> None:
    class Crowded:
        """A worker whose child runs out of memory loading the decoder."""

        limit_bytes = 3 * 2**30

        def load(self, key, data, what):
            if what == "decoder":
                raise FenceError("the decoder needed more memory to be loaded", "memory")

    with refused("the decoder needed more than 3 GiB of memory when loaded"):
        probe(user_graph(mlp_encoder().model), user_graph(mlp_decoder().model, "decoder"), images, worker=Crowded())


def test_an_encoder_of_rank_three_runs_as_images(images, worker) -> None:
    encoder = mlp_encoder(input_dims=("B", 28, 28))
    wiring = run_probe(encoder, mlp_decoder(), images, worker)
    assert wiring.interface.input_layout == "hw"
    np.testing.assert_allclose(wiring.encoded[0], encoder.reference(images)[0], rtol=1e-4, atol=1e-5)
