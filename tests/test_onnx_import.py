"""Importing ONNX encoder/decoder pairs: the round trip of the project's own exports, models written here in
layouts that are not the project's (plain torch.nn through torch.onnx.export, and Keras-like graphs built
with onnx.helper), every refusal (through the API and the command line, each leaving no folder behind),
the new config fields, the store's checks of an imported model, and pair_for."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import random
import re
import shutil
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from tests.conftest import REAL_RAW, REPO, SEED
from tests.onnx_graphs import Graph, constant, mlp_decoder, mlp_encoder, model_of, sigmoid, slow_decoder, value
from vae.export import model_zip
from vae.metrics import reconstruction_mse
from vae.models import ModelConfig, OnnxInterface, build_model, fit_pca, to_float_images
from vae.onnx import export as onnx_export
from vae.onnx.__main__ import main as onnx_main
from vae.onnx.checks import kept, read_graph
from vae.onnx.export import ExportCache, export_pair, pair_for, run_onnx
from vae.onnx.importer import ImportRefused, import_onnx
from vae.onnx.model import OnnxModel
from vae.store import (
    CorruptModel,
    IncompatibleModel,
    ModelNotFound,
    bundle_sha256,
    graph_file_name,
    list_models,
    load_model,
    read_metadata,
    save_model,
)
from vae.training.saving import evaluate_for_metadata, judge_metrics

pytestmark = [
    pytest.mark.skipif(
        not all((REAL_RAW / name).is_file() for name in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte")),
        reason="MNIST not fetched: run `python -m vae.data fetch` (an import checks and measures on the test set)",
    ),
    pytest.mark.usefixtures("one_torch_thread"),
]
DATA = REPO / "data"
MB200 = 200 * 1024 * 1024


@pytest.fixture(scope="module")
def mnist():
    from vae.data import load_dataset

    return (*load_dataset("mnist", "train", DATA), *load_dataset("mnist", "test", DATA))


def seeded(config: ModelConfig):
    torch.manual_seed(SEED)
    model = build_model(config).eval()
    with torch.no_grad():  # off the initial scale, so the codes spread like a trained model's
        for parameter in model.parameters():
            parameter.mul_(1.5)
    return model


def fresh(batch: int, dim: int | None = None) -> torch.Tensor:
    generator = torch.Generator().manual_seed(SEED + batch)
    if dim:
        return torch.randn(batch, dim, generator=generator) * 2
    return torch.rand(batch, 1, 28, 28, generator=generator)


def max_diff(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


def assert_same_model(imported, original, batch: int = 7, tolerance: float = 1e-5) -> None:
    x, z = fresh(batch), fresh(batch, original.config.latent_dim)
    with torch.no_grad():
        mean, logvar = imported.encode(x)
        ref_mean, ref_logvar = original.encode(x)
        assert max_diff(mean, ref_mean) <= tolerance * max(1.0, float(ref_mean.abs().max()))
        assert (logvar is None) == (ref_logvar is None)
        if logvar is not None:
            assert max_diff(logvar, ref_logvar) <= tolerance * max(1.0, float(ref_logvar.abs().max()))
        assert max_diff(imported.embed(x), original.embed(x)) <= tolerance * max(1.0, float(ref_mean.abs().max()))
        decoded = imported.decode(z)
        assert decoded.shape == (batch, 1, 28, 28)
        assert max_diff(decoded, original.decode(z)) <= tolerance


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------
# The round trip: every kind of the project's models, exported and imported back


@pytest.fixture(scope="module")
def vae_round_trip(tmp_path_factory, mnist):
    """A dense VAE exported with vae.onnx and imported back: (original, imported, stored, root)."""
    root = tmp_path_factory.mktemp("round_trip")
    original = seeded(ModelConfig(kind="vae", latent_dim=2, hidden=(32,)))
    pair = export_pair(original, root / "exported", images=to_float_images(mnist[2][:256]))
    imported, stored = import_onnx(pair.encoder, pair.decoder, root / "models" / "vae-imported", data_dir=DATA)
    return original, imported, stored, root


def test_an_exported_vae_imports_back_as_the_same_model(vae_round_trip, mnist) -> None:
    original, imported, stored, _ = vae_round_trip
    train_images, train_labels, test_images, test_labels = mnist
    assert isinstance(imported, OnnxModel) and imported.config.kind == "vae" and imported.config.arch == "onnx"
    assert imported.config.latent_dim == 2 and imported.config.describe() == "VAE onnx 2-D (imported)"
    assert imported.config.onnx == OnnxInterface("x", "nchw", ("embedding", "logvar"), "z", "image", "nchw", False)
    assert_same_model(imported, original)
    # The numbers recorded at import are the original's, measured the same way on the same test set.
    reference = evaluate_for_metadata(original, train_images, train_labels, test_images, test_labels)
    assert stored.metrics["test_mse_per_pixel"] == pytest.approx(reference["test_mse_per_pixel"], rel=1e-5)
    assert stored.metrics["test_kl"] == pytest.approx(reference["test_kl"], rel=1e-4)
    assert stored.metrics["knn5_accuracy"] == pytest.approx(reference["knn5_accuracy"], abs=2e-3)
    # The recon term is BCE on the decoded probabilities, not on logits: close to the torch model's, not equal.
    assert stored.metrics["test_recon"] == pytest.approx(reference["test_recon"], rel=2e-3)
    terms = imported.loss(fresh(16))
    assert set(terms) == {"loss", "recon", "kl"} and torch.isclose(terms["loss"], terms["recon"] + terms["kl"])
    # The judge's verdict on its samples, as for a trained model: the original's, through the imported graphs.
    samples = stored.metrics["samples"]
    expected = judge_metrics(original, train_images, test_images, "mnist")["samples"]
    assert samples["n"] == expected["n"] and samples["judge_sha256"] == expected["judge_sha256"]
    for got, want in ((samples, expected), (samples["reconstructions"], expected["reconstructions"])):
        # float32 through onnxruntime may move an image or two across the 0.9 threshold
        assert got["confident_share"] == pytest.approx(want["confident_share"], abs=3 / got["n"])
        assert got["entropy"] == pytest.approx(want["entropy"], abs=0.01)


def test_the_store_entry_holds_every_graph_with_its_hash(vae_round_trip) -> None:
    _, imported, stored, root = vae_round_trip
    meta = json.loads((stored.path / "model.json").read_text())
    assert set(meta["files"]) == {"encoder", "decoder", "standard_encoder", "standard_decoder"}
    for entry in meta["files"].values():
        assert sha256(stored.path / entry["file"]) == entry["sha256"]
    # The user's graphs are copied in byte for byte; the standard ones are new.
    copied = (stored.path / meta["files"]["encoder"]["file"]).read_bytes()
    assert copied == (root / "exported" / "encoder.onnx").read_bytes()
    assert meta["extra"]["onnx"]["files"]["decoder"]["sha256"] == sha256(root / "exported" / "decoder.onnx")
    assert "weights_file" not in meta and meta["extra"]["status"] == "imported"
    assert sorted(p.name for p in stored.path.iterdir() if p.suffix == ".onnx") == sorted(
        e["file"] for e in meta["files"].values()
    )
    assert [m.name for m in list_models(stored.path.parent)] == ["vae-imported"]
    assert stored.weights_sha256 == bundle_sha256({role: e["sha256"] for role, e in meta["files"].items()})


@pytest.mark.parametrize("name", ["ae-conv", "pca"])
def test_other_kinds_round_trip(name, tmp_path, mnist) -> None:
    images = to_float_images(mnist[2][:256])
    original = (
        seeded(ModelConfig(kind="ae", arch="conv", latent_dim=3, hidden=(16,)))
        if name == "ae-conv"
        else fit_pca(mnist[0][:2000], 4)
    )
    pair = export_pair(original, tmp_path / "exported", images=images)
    imported, stored = import_onnx(pair.encoder, pair.decoder, tmp_path / "models" / name, data_dir=DATA)
    assert stored.config.kind == "ae"  # PCA has no posterior: it comes back as an auto-encoder of the same maps
    assert_same_model(imported, original)
    assert stored.metrics["test_mse_per_pixel"] == pytest.approx(reconstruction_mse(original, mnist[2]), rel=1e-5)


def test_pair_for_serves_the_stored_standard_graphs_without_exporting(vae_round_trip, tmp_path, monkeypatch) -> None:
    original, imported, stored, _ = vae_round_trip
    monkeypatch.setattr(onnx_export, "export_pair", lambda *a, **k: pytest.fail("an imported model is never exported"))
    cache = ExportCache(tmp_path / "cache")
    pair = pair_for(stored, imported, cache)
    assert pair.directory == stored.path and not cache.root.exists()
    assert pair.decoder.name == stored.files["standard_decoder"]["file"]
    assert pair.encoder.name == stored.files["standard_encoder"]["file"]
    assert pair.kind == "vae" and pair.latent_dim == 2 and pair.encoder_outputs == ("embedding", "logvar")
    assert pair.to_dict()["decoder"]["file"] == pair.decoder.name
    decoder, encoder = onnx.load(str(pair.decoder)), onnx.load(str(pair.encoder))
    assert [i.name for i in decoder.graph.input] == ["z"] and [o.name for o in decoder.graph.output] == ["image"]
    assert [i.name for i in encoder.graph.input] == ["x"]
    assert [o.name for o in encoder.graph.output] == ["embedding", "logvar"]
    dims = [d.dim_param or d.dim_value for d in decoder.graph.output[0].type.tensor_type.shape.dim]
    assert isinstance(dims[0], str) and dims[1:] == [1, 28, 28]
    z = fresh(5, 2)
    (image,) = run_onnx(pair.decoder, {"z": z.numpy()})
    assert max_diff(image, original.decode(z).detach()) <= 1e-5
    # The entry must be the one the model was loaded from: its standard graphs are the files served.
    other = dataclasses.replace(
        stored, files={**stored.files, "standard_decoder": {**stored.files["standard_decoder"], "sha256": "ab" * 32}}
    )
    with pytest.raises(ValueError, match="not that of the model"):
        pair_for(other, imported, cache)
    with pytest.raises(ValueError, match="arch"):
        pair_for(stored, original, cache)


def test_the_export_of_an_imported_model_imports_back_again(vae_round_trip, tmp_path, capsys) -> None:
    original, _, stored, _ = vae_round_trip
    onnx_main(["export", str(stored.path), "--out", str(tmp_path / "again"), "--data-dir", str(DATA)])
    assert "decoder.onnx" in capsys.readouterr().out
    onnx_main(
        [
            "import",
            str(tmp_path / "again" / "encoder.onnx"),
            str(tmp_path / "again" / "decoder.onnx"),
            "--out",
            str(tmp_path / "models" / "twice"),
            "--data-dir",
            str(DATA),
        ]
    )
    assert "imported twice (VAE onnx 2-D (imported))" in capsys.readouterr().out
    twice, _ = load_model(tmp_path / "models" / "twice")
    assert_same_model(twice, original)


def test_a_replace_swaps_the_model_and_keeps_no_stale_graph(vae_round_trip, tmp_path) -> None:
    _, _, stored, root = vae_round_trip
    target = tmp_path / "models" / "m"
    shutil.copytree(stored.path, target)
    encoder, decoder = mlp_encoder(latent=2), mlp_decoder(latent=2)
    files = [encoder.save(tmp_path / "e.onnx"), decoder.save(tmp_path / "d.onnx")]
    with pytest.raises(ImportRefused, match="exists"):
        import_onnx(*files, target, data_dir=DATA)
    assert load_model(target)[1].weights_sha256 == stored.weights_sha256  # untouched
    model, replaced = import_onnx(*files, target, data_dir=DATA, replace=True)
    assert replaced.config.kind == "ae" and replaced.weights_sha256 != stored.weights_sha256
    assert sorted(p.name for p in target.glob("*.onnx")) == sorted(e["file"] for e in replaced.files.values())


# ---------------------------------------------------------------------------------------------
# Models in layouts that are not the project's


class FlatVAEEncoder(nn.Module):
    """Flat pixels [B, 784] in, mean and log-variance from two heads out, as many tutorials write it."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(784, 48), nn.Tanh())
        self.mu, self.log_var = nn.Linear(48, 3), nn.Linear(48, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.mu(h), self.log_var(h)


class LogitsDecoder(nn.Module):
    """[B, 3] -> logits [B, 784], no sigmoid: the loss used BCE with logits."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 48), nn.ELU(), nn.Linear(48, 784))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class ChannelsLastEncoder(nn.Module):
    """NHWC images [B, 28, 28, 1] (a Keras habit) -> code [B, 2], through a convolution."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, stride=2, padding=1)  # [B, 4, 14, 14]
        self.head = nn.Linear(4 * 14 * 14, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x.permute(0, 3, 1, 2))).flatten(1))


class SquareDecoder(nn.Module):
    """[B, 2] -> [B, 28, 28] in [0, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 784), nn.Sigmoid())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, 28, 28)


def torch_export(
    module: nn.Module, example: torch.Tensor, path: Path, names: tuple[list[str], list[str]], dynamo: bool
) -> Path:
    """What a user would type: torch.onnx.export with a dynamic batch (dynamo writes the big weights beside)."""
    inputs, outputs = names
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(
                module,
                (example,),
                str(path),
                dynamo=True,
                input_names=inputs,
                output_names=outputs,
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                verbose=False,
            )
        else:
            axes = {name: {0: "batch"} for name in [*inputs, *outputs]}
            torch.onnx.export(
                module, (example,), str(path), dynamo=False, input_names=inputs, output_names=outputs, dynamic_axes=axes
            )
    return path


def test_a_foreign_torch_vae_with_flat_input_logits_and_external_data_imports(tmp_path) -> None:
    torch.manual_seed(SEED)
    encoder, decoder = FlatVAEEncoder().eval(), LogitsDecoder().eval()
    folder = tmp_path / "mine"
    folder.mkdir()
    torch_export(encoder, torch.rand(2, 784), folder / "encoder.onnx", (["pixels"], ["mu", "log_var"]), dynamo=True)
    torch_export(decoder, torch.randn(2, 3), folder / "decoder.onnx", (["code"], ["logits"]), dynamo=True)
    assert (folder / "encoder.onnx.data").is_file()  # the exporter's default: weights beside the graph
    model, stored = import_onnx(
        folder / "encoder.onnx", folder / "decoder.onnx", tmp_path / "models" / "foreign", data_dir=DATA, logits=True
    )
    assert stored.config.kind == "vae" and stored.config.latent_dim == 3
    assert stored.config.onnx == OnnxInterface("pixels", "flat", ("mu", "log_var"), "code", "logits", "flat", True)
    assert stored.extra["onnx"]["files"]["encoder"]["external_data"] == ["encoder.onnx.data"]
    x, z = fresh(9), fresh(9, 3)
    with torch.no_grad():
        mu, log_var = encoder(x.view(9, 784))
        assert max_diff(model.embed(x), mu) <= 1e-4
        assert max_diff(model.encode(x)[1], log_var) <= 1e-4
        assert max_diff(model.decode(z), torch.sigmoid(decoder(z)).view(9, 1, 28, 28)) <= 1e-4
    # The stored graphs are self-contained: the folder works without the user's data file.
    (folder / "encoder.onnx.data").unlink()
    reloaded, _ = load_model(stored.path)
    assert max_diff(reloaded.embed(x), mu) <= 1e-4


def test_a_foreign_channels_last_ae_from_the_legacy_exporter_imports(tmp_path) -> None:
    torch.manual_seed(SEED)
    encoder, decoder = ChannelsLastEncoder().eval(), SquareDecoder().eval()
    files = [
        torch_export(encoder, torch.rand(2, 28, 28, 1), tmp_path / "enc.onnx", (["input"], ["code"]), dynamo=False),
        torch_export(decoder, torch.randn(2, 2), tmp_path / "dec.onnx", (["z"], ["x"]), dynamo=False),
    ]
    model, stored = import_onnx(*files, tmp_path / "models" / "nhwc", data_dir=DATA)
    interface = stored.config.onnx
    assert (interface.input_layout, interface.output_layout, interface.logits) == ("nhwc", "hw", False)
    # The decoder's own output is called "x", the standard encoder's input name: renamed inside, still right.
    assert interface.decoder_output == "x" and interface.decoder_input == "z"
    x, z = fresh(6), fresh(6, 2)
    with torch.no_grad():
        assert max_diff(model.embed(x), encoder(x.permute(0, 2, 3, 1))) <= 1e-4
        assert max_diff(model.decode(z), decoder(z).unsqueeze(1)) <= 1e-4
        assert model.encode(x)[1] is None


def test_a_keras_like_vae_with_three_outputs_and_nhwc_images_imports(tmp_path) -> None:
    """The layout tf2onnx gives the Keras VAE example: input [None, 28, 28, 1], outputs z_mean, z_log_var and a
    sampled z; a decoder [None, 2] -> [None, 28, 28, 1]. Built with onnx.helper, checked against numpy."""
    encoder = mlp_encoder(
        input_dims=(None, 28, 28, 1), outputs=("z_mean", "z_log_var"), sample=True, input_name="input_1"
    )
    decoder = mlp_decoder(
        output_dims=(28, 28, 1), final=None, input_name="input_2", output_name="conv2d_transpose", input_dims=(None, 2)
    )
    files = [encoder.save(tmp_path / "encoder.onnx"), decoder.save(tmp_path / "decoder.onnx")]
    model, stored = import_onnx(*files, tmp_path / "models" / "keras", data_dir=DATA, logits=True)
    interface = stored.config.onnx
    assert interface.encoder_outputs == ("z_mean", "z_log_var") and interface.input_layout == "nhwc"
    assert interface.output_layout == "nhwc" and stored.config.kind == "vae"
    standard = onnx.load(str(stored.path / stored.files["standard_encoder"]["file"]))
    assert "RandomNormalLike" not in {n.op_type for n in standard.graph.node}  # the sample z was pruned
    x, z = fresh(5), fresh(5, 2).numpy()
    mean, logvar = encoder.reference(x.permute(0, 2, 3, 1).numpy())
    assert max_diff(model.encode(x)[0], mean) <= 1e-4 and max_diff(model.encode(x)[1], logvar) <= 1e-4
    (logits,) = decoder.reference(z)
    assert max_diff(model.decode(torch.from_numpy(z)), sigmoid(logits).reshape(5, 1, 28, 28)) <= 1e-4


def test_an_open_layout_is_settled_by_the_one_that_runs(tmp_path) -> None:
    encoder = mlp_encoder(input_dims=("N", None, None, None), nhwc_only=True)  # runs on [B, 28, 28, 1] only
    files = [encoder.save(tmp_path / "e.onnx"), mlp_decoder().save(tmp_path / "d.onnx")]
    model, stored = import_onnx(*files, tmp_path / "models" / "open", data_dir=DATA)
    assert stored.config.onnx.input_layout == "nhwc"
    x = fresh(4)
    (mean,) = encoder.reference(x.numpy())
    assert max_diff(model.embed(x), mean) <= 1e-5


def test_an_upload_is_bytes_and_is_recorded_under_its_name(tmp_path) -> None:
    encoder, decoder = mlp_encoder(), mlp_decoder()
    model, stored = import_onnx(
        encoder.model.SerializeToString(),
        decoder.model.SerializeToString(),
        tmp_path / "models" / "uploaded",
        data_dir=DATA,
        names=["e.onnx", "d.onnx"],
        origin="dashboard",
    )
    assert stored.extra["onnx"]["files"]["encoder"]["name"] == "e.onnx" and stored.extra["source"] == "dashboard"
    assert 0 < stored.extra["onnx"]["seconds_per_256"]["decoder"] < 1.0


# ---------------------------------------------------------------------------------------------
# Outputs the import does not use: chosen first, cut away with every node only they need, then checked

UNKNOWN_OP = "StatelessRandomNormalV2"  # what tf2onnx 1.17 leaves in the Keras example's encoder


def sampling_pair(tmp_path: Path, outputs=("z_mean", "z_log_var")) -> tuple[Graph, Graph, list[Path]]:
    """The Keras example's layout with the sample drawn by an operator ONNX does not define, and a decoder whose
    second output needs it too."""
    encoder = mlp_encoder(input_dims=(None, 28, 28, 1), outputs=outputs, sample=True, random_op=UNKNOWN_OP)
    decoder = mlp_decoder(extra_op=UNKNOWN_OP)
    return encoder, decoder, [encoder.save(tmp_path / "e.onnx"), decoder.save(tmp_path / "d.onnx")]


def assert_every_node_feeds_an_output(model: onnx.ModelProto) -> None:
    """Written apart from the import's own walk: each node's result is read by a later node or is an output."""
    graph = model.graph
    read = {o.name for o in graph.output}
    for node in reversed(graph.node):
        assert set(node.output) & read, f"{node.op_type} {node.name!r} feeds no output"
        read.update(node.input)
    assert {t.name for t in graph.initializer} <= read and {i.name for i in graph.input} <= read


def test_an_unknown_operator_that_feeds_only_a_dropped_output_is_cut_away(tmp_path, capsys) -> None:
    encoder, decoder, files = sampling_pair(tmp_path)
    with pytest.raises(onnx.checker.ValidationError, match=f"No Op registered for {UNKNOWN_OP}"):
        onnx.checker.check_model(encoder.model, full_check=True)  # the whole graph, as the import once judged it
    model, stored = import_onnx(*files, tmp_path / "models" / "sampled", data_dir=DATA, decoder_output="pixels")
    assert (
        stored.config.onnx.encoder_outputs == ("z_mean", "z_log_var") and stored.config.onnx.decoder_output == "pixels"
    )
    # The sample's six nodes (the draw, 0.5, Mul, Exp, Mul, Add) and the decoder's extra head went.
    assert stored.extra["onnx"]["pruned"] == {
        "encoder": {"outputs": ["z"], "nodes": 6},
        "decoder": {"outputs": ["extra"], "nodes": 1},
    }
    for role in ("standard_encoder", "standard_decoder"):
        standard = onnx.load(str(stored.path / stored.files[role]["file"]))
        assert UNKNOWN_OP not in {n.op_type for n in standard.graph.node}
        assert_every_node_feeds_an_output(standard)
    x, z = fresh(5), fresh(5, 2).numpy()
    mean, logvar = encoder.reference(x.permute(0, 2, 3, 1).numpy())
    assert max_diff(model.encode(x)[0], mean) <= 1e-5 and max_diff(model.encode(x)[1], logvar) <= 1e-5
    assert max_diff(model.decode(torch.from_numpy(z)), decoder.reference(z)[0].reshape(5, 1, 28, 28)) <= 1e-5
    cli = tmp_path / "models" / "cli"
    onnx_main(["import", *map(str, files), "--out", str(cli), "--data-dir", str(DATA), "--decoder-output", "pixels"])
    said = capsys.readouterr().out
    assert "the encoder's output 'z' dropped, with 6 node(s)" in said
    assert "the decoder's output 'extra' dropped, with 1 node(s)" in said


def test_an_unknown_operator_that_a_chosen_output_needs_is_refused_naming_both(tmp_path, capsys) -> None:
    _, _, files = sampling_pair(tmp_path)
    out = tmp_path / "models" / "refused"
    with pytest.raises(
        ImportRefused, match=f"the encoder's output 'z' needs the operator {UNKNOWN_OP} \\(node 'draw'\\)"
    ):
        import_onnx(*files, out, data_dir=DATA, encoder_outputs=["z_mean", "z"], decoder_output="pixels")
    with pytest.raises(ImportRefused, match=f"the decoder's output 'extra' needs the operator {UNKNOWN_OP} "):
        import_onnx(*files, out, data_dir=DATA, decoder_output="extra")
    with pytest.raises(SystemExit) as exit_:
        onnx_main(["import", *map(str, files), "--out", str(out), "--data-dir", str(DATA), "--decoder-output=extra"])
    assert exit_.value.code == 2 and f"'extra' needs the operator {UNKNOWN_OP}" in capsys.readouterr().err
    assert not out.exists()


def test_the_sample_is_found_by_what_it_is_computed_from_when_names_do_not_say(tmp_path) -> None:
    """tf2onnx names Keras's [z_mean, z_log_var, z] output_0..2: the one computed from the other two is the draw."""
    encoder, decoder, files = sampling_pair(tmp_path, outputs=("output_0", "output_1"))
    model, stored = import_onnx(*files, tmp_path / "models" / "generic", data_dir=DATA, decoder_output="pixels")
    assert stored.config.onnx.encoder_outputs == ("output_0", "output_1")
    x = fresh(3)
    assert max_diff(model.encode(x)[1], encoder.reference(x.permute(0, 2, 3, 1).numpy())[1]) <= 1e-5


def test_the_cut_graph_holds_only_what_the_chosen_outputs_reach(tmp_path) -> None:
    encoder = mlp_encoder(outputs=("mean", "spare"), sample=True, random_op=UNKNOWN_OP)
    encoder.model.graph.input.append(value("temperature", [1]))  # read by nothing: cut away with the rest
    encoder.model.graph.node.append(helper.make_node("Neg", ["h"], ["dead"]))  # feeds no output at all
    graph = read_graph(encoder.model.SerializeToString(), "encoder")
    cut = kept(graph, ["mean"])
    assert_every_node_feeds_an_output(cut.proto)
    assert [o.name for o in cut.proto.graph.output] == ["mean"] and [i.name for i in cut.proto.graph.input] == [
        "pixels"
    ]
    assert {t.name for t in cut.proto.graph.initializer} == {"w1", "b1", "w_0", "b_0"}
    assert cut.dropped_outputs == ("spare", "z")
    assert cut.dropped_nodes == len(graph.proto.graph.node) - len(cut.proto.graph.node) == 8  # spare, sample, dead
    assert onnx.load_model_from_string(cut.data) == cut.proto  # what is run is what was checked
    model, _ = import_onnx(
        encoder.model.SerializeToString(),
        mlp_decoder().model.SerializeToString(),
        tmp_path / "models" / "cut",
        data_dir=DATA,
        encoder_outputs=["mean"],
    )
    assert max_diff(model.embed(fresh(2)), encoder.reference(fresh(2).numpy())[0]) <= 1e-5


# ---------------------------------------------------------------------------------------------
# Refusals: each through the API and the command line, none leaving a folder behind


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def sparse(path: Path, size: int) -> Path:
    """A file that reports ``size`` bytes without taking them on disk."""
    with open(path, "wb") as handle:
        handle.truncate(size)
    return path


def external(graph: Graph, path: Path, location: str, length: int | None = None, offset: int = 0) -> Path:
    """Save ``graph`` with its first weight moved to external data at ``location``."""
    model = graph.model
    tensor = model.graph.initializer[0]
    n_bytes = len(numpy_helper.to_array(tensor).tobytes())
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value_ in (("location", location), ("offset", str(offset)), ("length", str(length or n_bytes))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value_
    return write(path, model.SerializeToString())


def weight_bytes(graph: Graph) -> bytes:
    return numpy_helper.to_array(graph.model.graph.initializer[0]).tobytes()


def case_random_bytes(tmp: Path):
    return write(tmp / "e.onnx", random.Random(SEED).randbytes(4096)), None, {}


def case_empty(tmp: Path):
    return write(tmp / "e.onnx", b""), None, {}


def case_checker(tmp: Path):
    model = model_of(
        [helper.make_node("Relu", ["nowhere"], ["mean"])], [value("pixels", ("B", 784))], [value("mean", ("B", 2))]
    )
    return write(tmp / "e.onnx", model.SerializeToString()), None, {}


def case_external_parent(tmp: Path):
    graph = mlp_encoder()
    write(tmp / "outside.bin", weight_bytes(graph))  # it exists, one folder up: still never read
    return external(graph, tmp / "graphs" / "e.onnx", "../outside.bin"), None, {}


def case_external_absolute(tmp: Path):
    graph = mlp_encoder()
    secret = write(tmp / "secret.bin", weight_bytes(graph))
    return external(graph, tmp / "graphs" / "e.onnx", str(secret.resolve())), None, {}


def case_external_symlink(tmp: Path):
    graph = mlp_encoder()
    secret = write(tmp / "secret.bin", weight_bytes(graph))
    path = external(graph, tmp / "graphs" / "e.onnx", "weights.bin")
    (tmp / "graphs" / "weights.bin").symlink_to(secret)
    return path, None, {}


def case_external_subfolder(tmp: Path):
    graph = mlp_encoder()
    write(tmp / "graphs" / "sub" / "weights.bin", weight_bytes(graph))  # a real file: refused by name alone
    return external(graph, tmp / "graphs" / "e.onnx", "sub/weights.bin"), None, {}


def case_external_symlinked_folder(tmp: Path):
    # O_NOFOLLOW guards only the last component: a symlinked folder on the way would lead outside.
    graph = mlp_encoder()
    write(tmp / "outside" / "secret.bin", weight_bytes(graph))
    (tmp / "graphs").mkdir(parents=True)
    (tmp / "graphs" / "link").symlink_to(tmp / "outside", target_is_directory=True)
    return external(graph, tmp / "graphs" / "e.onnx", "link/secret.bin"), None, {}


def case_external_backslash(tmp: Path):
    # On Windows a folder separator; on Linux a legal file name, which exists here so only the name refuses it.
    graph = mlp_encoder()
    write(tmp / "graphs" / "sub\\weights.bin", weight_bytes(graph))
    return external(graph, tmp / "graphs" / "e.onnx", "sub\\weights.bin"), None, {}


def case_external_colon(tmp: Path):
    # A Windows drive ("C:x") or alternate data stream ("x:y"); on Linux a legal name, present here.
    graph = mlp_encoder()
    write(tmp / "graphs" / "weights.bin:stream", weight_bytes(graph))
    return external(graph, tmp / "graphs" / "e.onnx", "weights.bin:stream"), None, {}


def case_external_nul(tmp: Path):
    # C would stop at the NUL and read "weights.bin": refused by name before any open.
    graph = mlp_encoder()
    write(tmp / "graphs" / "weights.bin", weight_bytes(graph))
    return external(graph, tmp / "graphs" / "e.onnx", "weights.bin\x00.txt"), None, {}


def case_external_beyond_its_file(tmp: Path):
    graph = mlp_encoder()
    write(tmp / "graphs" / "weights.bin", weight_bytes(graph)[:1000])  # shorter than the tensor
    return external(graph, tmp / "graphs" / "e.onnx", "weights.bin"), None, {}


def case_external_over_the_cap(tmp: Path):
    (tmp / "graphs").mkdir(parents=True)
    sparse(tmp / "graphs" / "big.bin", MB200)
    return external(mlp_encoder(), tmp / "graphs" / "e.onnx", "big.bin", length=MB200), None, {}


def case_file_over_the_cap(tmp: Path):
    tmp.mkdir(parents=True, exist_ok=True)
    return sparse(tmp / "e.onnx", MB200 + 1), None, {}


def case_rank(tmp: Path):
    return mlp_encoder(input_dims=("B", 1, 1, 28, 28)).save(tmp / "e.onnx"), None, {}


def case_sizes(tmp: Path):
    return mlp_encoder(input_dims=("B", 3, 32, 32)).save(tmp / "e.onnx"), None, {}


def case_fixed_batch(tmp: Path):
    return mlp_encoder(input_dims=(1, 784)).save(tmp / "e.onnx"), None, {}


def case_two_inputs(tmp: Path):
    """A second input the mean needs (one that nothing reads is cut away with what no output uses)."""
    graph = mlp_encoder()
    graph.model.graph.input.append(value("temperature", [1]))
    head = next(node for node in graph.model.graph.node if "mean" in node.output)
    head.output[0] = "cold_mean"
    graph.model.graph.node.append(helper.make_node("Div", ["cold_mean", "temperature"], ["mean"]))
    return graph.save(tmp / "e.onnx"), None, {}


def case_integer_input(tmp: Path):
    return mlp_encoder(input_type=TensorProto.INT64).save(tmp / "e.onnx"), None, {}


def case_latent_too_small(tmp: Path):
    return mlp_encoder(latent=1).save(tmp / "e.onnx"), mlp_decoder(latent=1).save(tmp / "d.onnx"), {}


def case_latent_too_large(tmp: Path):
    return mlp_encoder(latent=129).save(tmp / "e.onnx"), mlp_decoder(latent=129).save(tmp / "d.onnx"), {}


def case_decoder_takes_another_size(tmp: Path):
    return None, mlp_decoder(latent=3).save(tmp / "d.onnx"), {}


def case_decoder_gives_another_size(tmp: Path):
    return None, mlp_decoder(output_dims=(392, 2)).save(tmp / "d.onnx"), {}


def case_nan_codes(tmp: Path):
    graph = mlp_encoder()
    nodes = graph.model.graph.node
    # sqrt(pixels - 2): NaN for every pixel in [0, 1], so every code is NaN.
    nodes.insert(0, constant("two", np.array(2.0, dtype=np.float32)))
    nodes.insert(1, helper.make_node("Sub", ["pixels", "two"], ["shifted"]))
    nodes.insert(2, helper.make_node("Sqrt", ["shifted"], ["rooted"]))
    for node in nodes[3:]:
        for i, name in enumerate(node.input):
            if name == "pixels":
                node.input[i] = "rooted"
    return graph.save(tmp / "e.onnx"), None, {}


def case_infinite_images(tmp: Path):
    graph = mlp_decoder()
    nodes = graph.model.graph.node
    reshape = nodes[-1]
    nodes.insert(len(nodes) - 1, constant("zero", np.array(0.0, dtype=np.float32)))
    nodes.insert(len(nodes) - 1, helper.make_node("Div", [reshape.input[0], "zero"], ["divided"]))
    reshape.input[0] = "divided"
    return None, graph.save(tmp / "d.onnx"), {}


def case_outside_zero_one(tmp: Path):
    return None, mlp_decoder(final=None).save(tmp / "d.onnx"), {}


def case_unknown_operator(tmp: Path):
    model = model_of(
        [helper.make_node("Decode", ["code"], ["pixels"], domain="com.example.custom")],
        [value("code", ("B", 2))],
        [value("pixels", ("B", 784))],
        extra_opsets=[("com.example.custom", 1)],
    )
    return None, write(tmp / "d.onnx", model.SerializeToString()), {}


def case_slow_decoder(tmp: Path):
    return None, slow_decoder().save(tmp / "d.onnx"), {}


def case_three_unnamed_outputs(tmp: Path):
    return mlp_encoder(outputs=("a", "b", "c")).save(tmp / "e.onnx"), None, {}


def case_layout_that_does_not_fit(tmp: Path):
    return None, None, {"input_layout": "nhwc"}


REFUSALS = {
    "random bytes": (case_random_bytes, "not an ONNX model"),
    "empty file": (case_empty, "not an ONNX model"),
    "fails onnx.checker": (case_checker, "fails onnx.checker"),
    "external data in ../": (case_external_parent, "not a plain file name beside the graph.*never \\.\\./"),
    "external data at an absolute path": (case_external_absolute, "not a plain file name beside the graph"),
    "external data through a symlink": (case_external_symlink, "is a symlink"),
    "external data in a subfolder": (case_external_subfolder, "not a plain file name beside the graph"),
    "external data through a symlinked folder": (
        case_external_symlinked_folder,
        "not a plain file name beside the graph",
    ),
    "external data behind a backslash": (case_external_backslash, "not a plain file name beside the graph"),
    "external data behind a colon": (case_external_colon, "not a plain file name beside the graph"),
    "external data with a NUL": (case_external_nul, "not a plain file name beside the graph"),
    "external data beyond its file": (case_external_beyond_its_file, "lies outside 'weights.bin'"),
    "external data over 200 MB": (case_external_over_the_cap, "over the 200.0 MB limit"),
    "a file over 200 MB": (case_file_over_the_cap, "is 200.0 MB, over the 200.0 MB limit"),
    "wrong rank": (case_rank, "has rank 5"),
    "wrong sizes": (case_sizes, "expected 784 pixels"),
    "fixed batch size": (case_fixed_batch, "fixed batch size of 1"),
    "two inputs": (case_two_inputs, "has 2 inputs"),
    "integer pixels": (case_integer_input, "is INT64: it must be float32"),
    "D below 2": (case_latent_too_small, "D = 1 numbers; D must be from 2 to 128"),
    "D above 128": (case_latent_too_large, "D = 129 numbers"),
    "decoder of another D": (case_decoder_takes_another_size, "takes codes of 3 numbers .* the encoder gives 2"),
    "decoder of another image size": (case_decoder_gives_another_size, "expected float32 \\[8, 784\\]"),
    "NaN codes": (case_nan_codes, "is NaN or infinite for 256 of 256 test images"),
    "infinite images": (case_infinite_images, "decoder's output 'pixels' is NaN or infinite"),
    "images outside [0, 1]": (
        case_outside_zero_one,
        "outside \\[0, 1\\]\\. If it gives logits .* the logits option \\(--logits\\)",
    ),
    "an operator onnxruntime cannot run": (
        case_unknown_operator,
        "onnxruntime cannot run the decoder: .*; it needs com\\.example\\.custom\\.Decode \\(for 'pixels'\\)",
    ),
    "a decoder slower than 1 s per 256 codes": (case_slow_decoder, "decoder takes over 1 s per (256|8) codes"),
    "three outputs without names": (case_three_unnamed_outputs, "3 outputs \\['a', 'b', 'c'\\]: name the mean"),
    "a layout that does not fit": (case_layout_that_does_not_fit, "input layout 'nhwc' .* does not fit"),
}


def refusal_case(name: str, tmp_path: Path) -> tuple[Path, Path, dict, Path]:
    build, _ = REFUSALS[name]
    encoder, decoder, options = build(tmp_path / "in")
    encoder = encoder or mlp_encoder().save(tmp_path / "in" / "good-e.onnx")
    decoder = decoder or mlp_decoder().save(tmp_path / "in" / "good-d.onnx")
    return encoder, decoder, options, tmp_path / "models" / "new"


@pytest.mark.parametrize("name", list(REFUSALS))
def test_every_bad_pair_is_refused_and_leaves_no_folder(name, tmp_path) -> None:
    encoder, decoder, options, out = refusal_case(name, tmp_path)
    started = time.perf_counter()
    with pytest.raises(ImportRefused, match=REFUSALS[name][1]):
        import_onnx(encoder, decoder, out, data_dir=DATA, **options)
    assert not out.exists() and not out.parent.exists()
    assert time.perf_counter() - started < 30  # a slow graph is stopped, not waited for


@pytest.mark.parametrize("name", list(REFUSALS))
def test_the_command_line_refuses_with_exit_2_and_leaves_no_folder(name, tmp_path, capsys) -> None:
    encoder, decoder, options, out = refusal_case(name, tmp_path)
    flags = [f"--{key.replace('_', '-')}={value_}" for key, value_ in options.items()]
    with pytest.raises(SystemExit) as exit_:
        onnx_main(["import", str(encoder), str(decoder), "--out", str(out), "--data-dir", str(DATA), *flags])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("error: not imported: ")

    assert re.search(REFUSALS[name][1], error)
    assert not out.exists() and not out.parent.exists()


def test_refusals_that_only_the_api_can_meet(tmp_path) -> None:
    out = tmp_path / "models" / "new"
    e, d = mlp_encoder(), mlp_decoder()
    uploaded = external(mlp_encoder(), tmp_path / "x" / "e.onnx", "weights.bin").read_bytes()
    with pytest.raises(ImportRefused, match="external data files, which an upload cannot carry"):
        import_onnx(uploaded, d.model.SerializeToString(), out, data_dir=DATA)
    with pytest.raises(ImportRefused, match="is 0.0 MB, over the 0.0 MB limit"):
        import_onnx(e.model.SerializeToString(), d.model.SerializeToString(), out, data_dir=DATA, max_bytes=100)
    # The time limit is a parameter: an ordinary pair is refused under a limit no graph can meet.
    with pytest.raises(ImportRefused, match="encoder takes .* per 8 images, more than the 1e-09 s allowed"):
        import_onnx(e.model.SerializeToString(), d.model.SerializeToString(), out, data_dir=DATA, max_seconds=1e-9)
    with pytest.raises(ImportRefused, match="invalid model name"):
        import_onnx(
            e.model.SerializeToString(), d.model.SerializeToString(), tmp_path / "models" / "a b", data_dir=DATA
        )
    with pytest.raises(ImportRefused, match="dataset must be one of"):
        import_onnx(e.model.SerializeToString(), d.model.SerializeToString(), out, data_dir=DATA, dataset="cifar")
    (tmp_path / "models" / "busy").mkdir(parents=True)
    (tmp_path / "models" / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ImportRefused, match="is not a model folder"):
        import_onnx(
            e.model.SerializeToString(),
            d.model.SerializeToString(),
            tmp_path / "models" / "busy",
            data_dir=DATA,
            replace=True,
        )
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["busy"]
    assert [p.name for p in (tmp_path / "models" / "busy").iterdir()] == ["notes.txt"]


def test_named_outputs_resolve_what_the_graph_leaves_open(tmp_path) -> None:
    encoder = mlp_encoder(outputs=("a", "b", "c"))
    files = [encoder.save(tmp_path / "e.onnx"), mlp_decoder().save(tmp_path / "d.onnx")]
    with pytest.raises(ImportRefused, match="must be 1 or 2 different names"):
        import_onnx(*files, tmp_path / "models" / "x", data_dir=DATA, encoder_outputs=["a", "nope"])
    model, stored = import_onnx(*files, tmp_path / "models" / "x", data_dir=DATA, encoder_outputs=["c", "a"])
    assert stored.config.onnx.encoder_outputs == ("c", "a") and stored.config.kind == "vae"
    x = fresh(3)
    a, _, c = encoder.reference(x.numpy())
    mean, logvar = model.encode(x)
    assert max_diff(mean, c) <= 1e-5 and max_diff(logvar, a) <= 1e-5


# ---------------------------------------------------------------------------------------------
# The config of an imported model


INTERFACE = dict(
    encoder_input="x",
    input_layout="nchw",
    encoder_outputs=("mean",),
    decoder_input="z",
    decoder_output="image",
    output_layout="flat",
)


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"input_layout": "chw"}, "input_layout"),
        ({"output_layout": None}, "output_layout"),
        ({"encoder_input": ""}, "encoder_input"),
        ({"decoder_input": 3}, "decoder_input"),
        ({"decoder_output": "x" * 257}, "decoder_output"),
        ({"decoder_output": "a\nb"}, "decoder_output"),
        ({"encoder_outputs": ()}, "encoder_outputs"),
        ({"encoder_outputs": ("a", "b", "c")}, "encoder_outputs"),
        ({"encoder_outputs": ("a", "a")}, "encoder_outputs"),
        ({"encoder_outputs": ("a", "")}, "encoder_outputs"),
        ({"logits": "yes"}, "logits"),
    ],
)
def test_each_interface_field_is_validated_by_name(changes, field) -> None:
    with pytest.raises(ValueError, match=field):
        OnnxInterface(**{**INTERFACE, **changes})


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"onnx": None}, "onnx"),
        ({"arch": "dense"}, "onnx applies to arch='onnx'"),
        ({"kind": "pca"}, "kind"),
        ({"kind": "vae"}, "encoder_outputs"),
        ({"hidden": (8,)}, "hidden"),
        ({"tied": True}, "tied"),
        ({"sparsity": 0.5}, "sparsity"),
        ({"class_weight": 1.0}, "class_weight"),
        ({"invertible": True}, "invertible"),
        ({"umap_weight": 1.0}, "umap_weight"),
        ({"decoupled": True}, "decoupled"),
        ({"recon_loss": "l1"}, "recon_loss"),
        ({"latent_dim": 200}, "latent_dim"),
        ({"onnx": {**INTERFACE, "colour": "red"}}, "unknown onnx field"),
        ({"onnx": {"encoder_input": "x"}}, "onnx"),
    ],
)
def test_an_imported_config_refuses_what_does_not_apply(changes, field) -> None:
    base = dict(kind="ae", arch="onnx", latent_dim=2, hidden=(), onnx=OnnxInterface(**INTERFACE))
    with pytest.raises(ValueError, match=field):
        ModelConfig(**{**base, **changes})


def test_configs_round_trip_through_json_and_old_files_still_read() -> None:
    config = ModelConfig(kind="ae", arch="onnx", latent_dim=2, hidden=(), onnx=OnnxInterface(**INTERFACE))
    again = ModelConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config and hash(again) == hash(config) and again.onnx.encoder_outputs == ("mean",)
    trained = ModelConfig(kind="vae", latent_dim=2, hidden=(16,))
    assert "onnx" not in trained.to_dict()  # model.json of a trained model is what it was before imports
    old = json.loads((REPO / "models" / "vae-2d" / "model.json").read_text())["config"]
    assert ModelConfig.from_dict(old).onnx is None
    with pytest.raises(ValueError, match="no layers to build"):
        build_model(config)


# ---------------------------------------------------------------------------------------------
# The store's checks of an imported model


@pytest.fixture
def stored_copy(vae_round_trip, tmp_path) -> Path:
    _, _, stored, _ = vae_round_trip
    return shutil.copytree(stored.path, tmp_path / "models" / "copy")


def graph_path(folder: Path, role: str) -> Path:
    return folder / json.loads((folder / "model.json").read_text())["files"][role]["file"]


@pytest.mark.parametrize("role", ["standard_decoder", "encoder"])
def test_a_changed_or_truncated_graph_is_refused_on_load(stored_copy, role) -> None:
    path = graph_path(stored_copy, role)
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(CorruptModel, match="does not match the SHA-256"):
        load_model(stored_copy)
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptModel, match="truncated or altered"):
        load_model(stored_copy)
    path.unlink()
    with pytest.raises(ModelNotFound):
        load_model(stored_copy)


def edit_meta(folder: Path, change) -> None:
    meta = json.loads((folder / "model.json").read_text())
    change(meta)
    (folder / "model.json").write_text(json.dumps(meta))


def test_a_tampered_model_json_is_refused(stored_copy) -> None:
    edit_meta(stored_copy, lambda m: m.update(weights_sha256="0" * 64))
    with pytest.raises(CorruptModel, match="weights_sha256 does not match"):
        read_metadata(stored_copy)
    edit_meta(stored_copy, lambda m: m["files"]["decoder"].update(file="../../decoder.onnx"))
    with pytest.raises(CorruptModel, match="invalid decoder file"):
        read_metadata(stored_copy)
    edit_meta(stored_copy, lambda m: m["files"].pop("decoder"))
    with pytest.raises(CorruptModel, match="files must name the graphs"):
        read_metadata(stored_copy)


def rehash(folder: Path, role: str, data: bytes) -> None:
    """Replace a graph and rewrite model.json to match, as someone crafting a folder by hand could."""
    digest = hashlib.sha256(data).hexdigest()
    graph_path(folder, role).unlink()
    (folder / graph_file_name(role, digest)).write_bytes(data)

    def change(meta):
        meta["files"][role] = {"file": graph_file_name(role, digest), "sha256": digest}
        meta["weights_sha256"] = bundle_sha256({r: e["sha256"] for r, e in meta["files"].items()})

    edit_meta(folder, change)


def test_a_stored_graph_that_points_at_a_file_is_refused_before_onnxruntime_reads_it(stored_copy, tmp_path) -> None:
    model = onnx.load(str(graph_path(stored_copy, "standard_decoder")))
    tensor = max(model.graph.initializer, key=lambda t: len(t.raw_data))
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "/etc/passwd"
    rehash(stored_copy, "standard_decoder", model.SerializeToString())
    with pytest.raises(IncompatibleModel, match="keeps 1 tensor\\(s\\) in external data files"):
        load_model(stored_copy)


def test_a_standard_graph_of_the_wrong_interface_is_refused(stored_copy) -> None:
    # The user's decoder where the standard one belongs: other names than z -> image.
    rehash(stored_copy, "standard_decoder", mlp_decoder().model.SerializeToString())
    with pytest.raises(IncompatibleModel, match="inputs and outputs"):
        load_model(stored_copy)


def test_an_imported_model_zips_with_its_graphs_and_is_never_saved_as_weights(vae_round_trip, tmp_path) -> None:
    original, imported, stored, _ = vae_round_trip
    with zipfile.ZipFile(io.BytesIO(model_zip(stored.path))) as archive:
        assert sorted(archive.namelist()) == sorted(
            ["vae-imported/model.json", *(f"vae-imported/{e['file']}" for e in stored.files.values())]
        )
        archive.extractall(tmp_path)
    unzipped, _ = load_model(tmp_path / "vae-imported")
    assert_same_model(unzipped, original)
    with pytest.raises(ValueError, match="stored by vae.import_onnx"):
        save_model(imported, tmp_path / "as-weights")
    assert not (tmp_path / "as-weights").exists()


def test_a_graph_newer_than_the_page_reads_is_brought_down_when_its_opset_allows(tmp_path, monkeypatch) -> None:
    from vae.onnx import checks

    encoder, decoder = mlp_encoder(latent=2), mlp_decoder(latent=2)
    encoder.model.ir_version = decoder.model.ir_version = checks.PAGE_MAX_IR_VERSION + 1
    files = [encoder.save(tmp_path / "e.onnx"), decoder.save(tmp_path / "d.onnx")]
    _, stored = import_onnx(*files, tmp_path / "models" / "new-ir", data_dir=DATA)
    for entry in stored.files.values():
        saved = onnx.load(str(stored.path / entry["file"]))
        assert saved.ir_version == checks.PAGE_MAX_IR_VERSION  # what onnxruntime-web in the page loads
    # An operator set that needs a newer IR than the page reads cannot be brought down: refused, named.
    needed = onnx.helper.find_min_ir_version_for(list(decoder.model.opset_import), ignore_unknown=True)
    monkeypatch.setattr(checks, "PAGE_MAX_IR_VERSION", needed - 1)
    with pytest.raises(ImportRefused, match=r"imports operator set \d+, which needs ONNX IR version \d+: newer than"):
        import_onnx(*files, tmp_path / "models" / "too-new", data_dir=DATA)
    assert not (tmp_path / "models" / "too-new").exists()
