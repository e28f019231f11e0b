"""ONNX export: every model kind and architecture, checked against torch through onnxruntime; the cache."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

from tests.conftest import REPO, SEED
from vae.models import ModelConfig, build_model, fit_pca
from vae.onnx import export as onnx_export
from vae.onnx.__main__ import main as onnx_main
from vae.onnx.export import ExportCache, OnnxExportError, export_pair, read_pair, run_onnx
from vae.store import load_model, save_model

# Small but real variants of every kind the store can hold (hidden sizes kept small so exports are quick).
VARIANTS = {
    "ae-dense": ModelConfig(kind="ae", latent_dim=2, hidden=(32, 16)),
    "ae-conv": ModelConfig(kind="ae", arch="conv", latent_dim=2, hidden=(16,)),
    "vae-dense": ModelConfig(kind="vae", latent_dim=2, hidden=(32,)),
    "vae-conv": ModelConfig(kind="vae", arch="conv", latent_dim=3, hidden=(16,)),
    "vae-dense-16d": ModelConfig(kind="vae", latent_dim=16, hidden=(32,)),
    "ae-tied": ModelConfig(kind="ae", latent_dim=2, hidden=(32,), tied=True),
    "ae-linear": ModelConfig(kind="ae", latent_dim=4, hidden=(), linear=True, recon_loss="mse"),
    "ae-class-aware": ModelConfig(kind="ae", latent_dim=2, hidden=(32,), class_weight=10.0),
    "vae-class-aware": ModelConfig(kind="vae", latent_dim=2, hidden=(32,), class_weight=10.0, beta=2.0),
    "ae-sparse": ModelConfig(kind="ae", latent_dim=8, hidden=(32,), sparsity=0.1),
    # Orthonormal weights are a parametrization (a QR at every access): exported as plain constants.
    "ae-invertible": ModelConfig(kind="ae", latent_dim=3, hidden=(32,), invertible=True, recon_loss="mse"),
    "ae-conv-linear": ModelConfig(kind="ae", arch="conv", latent_dim=2, hidden=(16,), linear=True, recon_loss="mse"),
    "ae-umap-decoupled": ModelConfig(kind="ae", latent_dim=2, hidden=(32,), umap_weight=1.0, decoupled=True),
}


def seeded_model(config: ModelConfig):
    torch.manual_seed(SEED)
    model = build_model(config).eval()
    with torch.no_grad():  # lift the weights off their initial scale so codes spread like a trained model's
        for parameter in model.parameters():
            parameter.mul_(1.5)
    return model


def pca_model(latent_dim: int = 2):
    generator = torch.Generator().manual_seed(SEED)
    return fit_pca(torch.rand(200, 1, 28, 28, generator=generator), latent_dim)


def fresh_batch(batch: int, dim: int | None = None) -> np.ndarray:
    generator = np.random.default_rng(SEED + batch)
    shape = (batch, dim) if dim else (batch, 1, 28, 28)
    return (generator.normal(size=shape) * 2).astype(np.float32) if dim else generator.random(shape, dtype=np.float32)


def assert_matches_torch(model, pair, batch: int) -> None:
    """On a batch the export never saw, and of another size (the batch axis is dynamic)."""
    codes = fresh_batch(batch, model.config.latent_dim)
    images = fresh_batch(batch)
    (decoded,) = run_onnx(pair.decoder, {"z": codes})
    with torch.no_grad():
        expected = model.decode(torch.from_numpy(codes)).numpy()
        mean, logvar = model.encode(torch.from_numpy(images))
    assert decoded.shape == (batch, 1, 28, 28)
    assert np.abs(decoded - expected).max() <= 1e-5
    assert decoded.min() >= 0.0 and decoded.max() <= 1.0
    outputs = run_onnx(pair.encoder, {"x": images})
    assert len(outputs) == (1 if logvar is None else 2)
    scale = max(1.0, float(mean.abs().max()))
    assert np.abs(outputs[0] - mean.numpy()).max() <= 1e-5 * scale
    if logvar is not None:
        assert np.abs(outputs[1] - logvar.numpy()).max() <= 1e-5 * max(1.0, float(logvar.abs().max()))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_kind_and_architecture_exports_a_matching_pair(name, tmp_path) -> None:
    model = seeded_model(VARIANTS[name])
    pair = export_pair(model, tmp_path / name, weights_sha256="ab" * 32)
    assert pair.max_abs_error["decoder"] <= 1e-5
    for batch in (1, 7):
        assert_matches_torch(model, pair, batch)


def test_pca_exports_a_matching_pair(tmp_path) -> None:
    model = pca_model(2)
    pair = export_pair(model, tmp_path / "pca")
    assert_matches_torch(model, pair, 5)
    assert pair.encoder_outputs == ("embedding",)


def test_the_graphs_declare_named_inputs_outputs_and_a_dynamic_batch(tmp_path) -> None:
    pair = export_pair(seeded_model(VARIANTS["vae-dense-16d"]), tmp_path / "vae")
    decoder, encoder = onnx.load(str(pair.decoder)), onnx.load(str(pair.encoder))

    def dims(value_info):
        return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]

    assert [i.name for i in decoder.graph.input] == ["z"] and [o.name for o in decoder.graph.output] == ["image"]
    assert [i.name for i in encoder.graph.input] == ["x"]
    assert [o.name for o in encoder.graph.output] == ["embedding", "logvar"]
    assert isinstance(dims(decoder.graph.input[0])[0], str)  # a symbolic batch size
    assert dims(decoder.graph.input[0])[1:] == [16] and dims(decoder.graph.output[0])[1:] == [1, 28, 28]
    assert dims(encoder.graph.input[0])[1:] == [1, 28, 28] and dims(encoder.graph.output[1])[1:] == [16]
    assert not pair.decoder.with_suffix(".onnx.data").exists()  # one file each, weights inside
    assert all(o.version == onnx_export.OPSET for o in decoder.opset_import if o.domain in ("", "ai.onnx"))
    manifest = json.loads((pair.directory / onnx_export.MANIFEST_FILE).read_text())
    assert manifest["encoder"]["outputs"] == {"embedding": ["B", 16], "logvar": ["B", 16]}
    assert read_pair(pair.directory) == pair


def test_an_export_that_does_not_match_the_model_is_refused_and_leaves_nothing(tmp_path, monkeypatch) -> None:
    real = onnx_export.run_onnx
    monkeypatch.setattr(onnx_export, "run_onnx", lambda path, inputs: [a + 1e-3 for a in real(path, inputs)])
    with pytest.raises(OnnxExportError, match="differs from the model"):
        export_pair(seeded_model(VARIANTS["ae-dense"]), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_exporter_failure_is_an_export_error(tmp_path, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(OnnxExportError, match="unsupported operator"):
        export_pair(seeded_model(VARIANTS["ae-dense"]), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_read_pair_refuses_an_incomplete_folder(tmp_path) -> None:
    with pytest.raises(OnnxExportError):
        read_pair(tmp_path)
    pair = export_pair(seeded_model(VARIANTS["ae-dense"]), tmp_path / "pair")
    pair.encoder.unlink()
    with pytest.raises(OnnxExportError, match="no complete"):
        read_pair(pair.directory)
    (pair.directory / onnx_export.MANIFEST_FILE).write_text("{not json")
    with pytest.raises(OnnxExportError, match="no complete"):
        read_pair(pair.directory)


def test_the_cache_exports_once_per_weights_and_again_after_retraining(tmp_path, monkeypatch) -> None:
    model = seeded_model(VARIANTS["vae-dense"])
    save_model(model, tmp_path / "models" / "m")
    _, stored = load_model(tmp_path / "models" / "m")
    cache = ExportCache(tmp_path / "onnx")
    calls = []
    real = onnx_export.export_pair
    monkeypatch.setattr(onnx_export, "export_pair", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = cache.get(model, stored.weights_sha256)
    again = cache.get(model, stored.weights_sha256)
    assert len(calls) == 1 and again == first and first.directory.name == stored.weights_sha256
    assert not [p for p in cache.root.iterdir() if p.name.startswith(".")]  # no staging folder left behind

    # "Retrained": new weights under the same name give a new hash, hence a new export of the new weights.
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    save_model(model, tmp_path / "models" / "m")
    loaded, retrained = load_model(tmp_path / "models" / "m")
    assert retrained.weights_sha256 != stored.weights_sha256
    second = cache.get(loaded, retrained.weights_sha256)
    assert len(calls) == 2 and second.directory != first.directory
    assert_matches_torch(loaded, second, 4)
    codes = fresh_batch(4, 2)
    (old,), (new,) = run_onnx(first.decoder, {"z": codes}), run_onnx(second.decoder, {"z": codes})
    assert np.abs(old - new).max() > 1e-3  # the old export is not served for the new weights


def test_the_cache_replaces_a_damaged_entry_and_refuses_a_bad_key(tmp_path) -> None:
    model = seeded_model(VARIANTS["ae-dense"])
    cache = ExportCache(tmp_path)
    sha = "cd" * 32
    (tmp_path / sha).mkdir()
    (tmp_path / sha / "decoder.onnx").write_bytes(b"half a file")
    pair = cache.get(model, sha)
    assert_matches_torch(model, pair, 3)
    # A complete-looking entry whose graph was altered afterwards is refused on reading, and made again.
    data = bytearray(pair.decoder.read_bytes())
    data[len(data) // 2] ^= 0x01
    pair.decoder.write_bytes(bytes(data))
    with pytest.raises(OnnxExportError, match="SHA-256"):
        read_pair(pair.directory)
    assert_matches_torch(model, cache.get(model, sha), 3)
    for bad in ("", "../escape", "ABC!"):
        with pytest.raises(ValueError, match="hex digest"):
            cache.get(model, bad)


def test_the_command_line_exports_a_stored_model(tmp_path, capsys) -> None:
    model = seeded_model(VARIANTS["ae-conv"])
    save_model(model, tmp_path / "models" / "conv")
    onnx_main(["export", str(tmp_path / "models" / "conv"), "--out", str(tmp_path / "out")])
    assert "decoder.onnx" in capsys.readouterr().out
    pair = read_pair(tmp_path / "out")
    loaded, stored = load_model(tmp_path / "models" / "conv")
    assert pair.weights_sha256 == stored.weights_sha256
    assert_matches_torch(loaded, pair, 2)


def test_python_m_vae_onnx_offers_export_import_and_cache() -> None:
    """The package's ``__main__`` is the command scripts/setup.sh and the README run."""
    result = subprocess.run(
        [sys.executable, "-m", "vae.onnx", "--help"], capture_output=True, text=True, cwd=REPO, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m vae.onnx [-h] {export,cache,import} ...")


def test_the_command_line_refuses_a_missing_model_and_a_foreign_folder(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as missing:
        onnx_main(["export", str(tmp_path / "nothing"), "--out", str(tmp_path / "out")])
    assert missing.value.code == 2
    save_model(seeded_model(VARIANTS["ae-dense"]), tmp_path / "models" / "m")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit) as foreign:
        onnx_main(["export", str(tmp_path / "models" / "m"), "--out", str(tmp_path / "busy")])
    assert foreign.value.code == 2
    assert "not an earlier export" in capsys.readouterr().err
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"


def test_the_cache_command_exports_every_model_of_a_store_once(tmp_path, capsys) -> None:
    for name in ("a", "b"):
        save_model(
            seeded_model(VARIANTS["ae-dense"] if name == "a" else VARIANTS["vae-dense"]), tmp_path / "store" / name
        )
    with pytest.raises(SystemExit) as first:
        onnx_main(["cache", str(tmp_path / "store"), "--cache", str(tmp_path / "onnx")])
    assert first.value.code == 0
    assert "exported now: a, b" in capsys.readouterr().out
    for name in ("a", "b"):
        model, stored = load_model(tmp_path / "store" / name)
        assert_matches_torch(model, read_pair(tmp_path / "onnx" / stored.weights_sha256), 2)
    with pytest.raises(SystemExit) as again:
        onnx_main(["cache", str(tmp_path / "store"), "--cache", str(tmp_path / "onnx")])
    assert again.value.code == 0
    out = capsys.readouterr().out
    assert "2 models" in out and "exported now" not in out  # nothing to do the second time
