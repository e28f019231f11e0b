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

from tests.onnx_graphs import Graph, constant, mlp_decoder, mlp_encoder, model_of, sigmoid, value
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
from vae.onnx.fence import Worker

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
