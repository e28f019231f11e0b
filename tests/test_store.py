"""Tests for vae.store: bit-exact round trips, atomic replacement, refusal of every bad file, no pickle,
name checking, listing, and crash safety against a real SIGKILL in the middle of a save.

Models are tiny (latent 2, hidden (8,)) except in the crash test, which needs a write that takes
measurable time. Everything is seeded and lives under ``tmp_path``.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import io
import json
import math
import os
import pathlib
import pickle
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save as safetensors_bytes

from vae import store
from vae.models import LatentModel, ModelConfig, build_model, fit_pca
from vae.store import (
    LOCK_FILE,
    META_FILE,
    CorruptModel,
    IncompatibleModel,
    InvalidModelName,
    ModelNotFound,
    StoredModel,
    StoreError,
    check_name,
    list_models,
    load_model,
    model_path,
    read_metadata,
    save_model,
    scan_models,
)

REPO = Path(__file__).resolve().parents[1]

HISTORY = [{"epoch": 1, "loss": 180.5, "recon": 170.25}, {"epoch": 2, "loss": 150.0, "recon": 140.125}]
METRICS = {"test_loss": 149.75, "knn_accuracy": 0.875, "per_class": [0.5, 1.0]}
DATASET = {"name": "mnist", "sha256": "ab" * 32, "n_train": 60000}
EXTRA = {"epochs": 2, "lr": 0.001, "note": "ünïcode ok", "nested": {"a": [1, None, True]}}


# ---------------------------------------------------------------------------------------------
# Helpers


def tiny(kind: str = "vae", arch: str = "dense", tied: bool = False, seed: int = 0, **fields) -> LatentModel:
    """A small model whose every tensor (biases included) is random, so a load that silently kept the
    fresh initialisation of the rebuilt model could never pass for a correct one."""
    torch.manual_seed(seed)
    model = build_model(ModelConfig(kind=kind, arch=arch, latent_dim=2, hidden=(8,), tied=tied, **fields))
    with torch.no_grad():
        for tensor in model.state_dict().values():
            tensor.add_(torch.randn_like(tensor))
    return model


@functools.cache
def _fitted_pca(seed: int) -> LatentModel:
    generator = torch.Generator().manual_seed(seed)
    return fit_pca(torch.rand(20, 1, 28, 28, generator=generator), latent_dim=3)


def tiny_pca(seed: int = 0) -> LatentModel:
    """A PCA fitted on 20 random images (the 784x784 eigendecomposition is fitted once, then copied)."""
    return copy.deepcopy(_fitted_pca(seed))


def sample_images(seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(5, 1, 28, 28, generator=generator)


def read_meta(folder: Path) -> dict:
    return json.loads((folder / META_FILE).read_text())


def write_meta(folder: Path, meta: dict) -> None:
    (folder / META_FILE).write_text(json.dumps(meta))


def edit_meta(folder: Path, **changes) -> None:
    meta = read_meta(folder)
    meta.update(changes)
    write_meta(folder, meta)


def weights_path(folder: Path) -> Path:
    return folder / read_meta(folder)["weights_file"]


def install_weights(folder: Path, data: bytes) -> Path:
    """Put ``data`` in place of the weights, under a proper content-addressed name, with model.json's
    hash updated to match: the file then passes the hash check and must be judged on its contents."""
    meta = read_meta(folder)
    (folder / meta["weights_file"]).unlink()
    digest = hashlib.sha256(data).hexdigest()
    name = f"weights-{digest[:16]}.safetensors"
    (folder / name).write_bytes(data)
    meta.update(weights_file=name, weights_sha256=digest)
    write_meta(folder, meta)
    return folder / name


def saved(tmp_path: Path, model: LatentModel | None = None, name: str = "m") -> Path:
    return save_model(model if model is not None else tiny(), tmp_path / name)


def assert_same_weights(a: LatentModel, b: LatentModel) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert sa[key].dtype == sb[key].dtype, key
        assert torch.equal(sa[key], sb[key]), key


# ---------------------------------------------------------------------------------------------
# Round trip

ROUND_TRIP_CASES = {
    "ae-dense": lambda: tiny("ae", "dense"),
    "ae-dense-tied": lambda: tiny("ae", "dense", tied=True),
    "ae-conv": lambda: tiny("ae", "conv"),
    "vae-dense": lambda: tiny("vae", "dense"),
    "vae-conv": lambda: tiny("vae", "conv"),
    "pca": tiny_pca,
    "ae-invertible": lambda: tiny("ae", invertible=True, recon_loss="mse"),
    "ae-conv-linear": lambda: tiny("ae", "conv", linear=True, recon_loss="mse"),
    "ae-umap-decoupled": lambda: tiny("ae", umap_weight=784.0, decoupled=True),
}


@pytest.mark.parametrize("case", list(ROUND_TRIP_CASES))
def test_round_trip_is_bit_exact(tmp_path: Path, case: str) -> None:
    model = ROUND_TRIP_CASES[case]()
    model.train()  # saved in training mode; must come back in eval mode
    folder = save_model(
        model, tmp_path / f"model-{case}", history=HISTORY, metrics=METRICS, dataset=DATASET, extra=EXTRA
    )

    loaded, stored = load_model(folder)

    assert type(loaded) is type(model)
    assert loaded.config == model.config
    assert_same_weights(loaded, model)
    assert not loaded.training
    assert not any(module.training for module in loaded.modules())

    x = sample_images()
    z = torch.randn(5, model.config.latent_dim, generator=torch.Generator().manual_seed(2))
    model.eval()
    with torch.no_grad():
        assert torch.equal(loaded.embed(x), model.embed(x))
        assert torch.equal(loaded.decode(z), model.decode(z))
        assert torch.equal(loaded.reconstruct(x), model.reconstruct(x))
        (m1, lv1), (m2, lv2) = loaded.encode(x), model.encode(x)
        assert torch.equal(m1, m2)
        assert (lv1 is None) == (lv2 is None)
        if lv1 is not None:
            assert torch.equal(lv1, lv2)

    assert isinstance(stored, StoredModel)
    assert stored.path == folder and stored.name == f"model-{case}"
    assert stored.config == model.config
    assert stored.history == HISTORY
    assert stored.metrics == METRICS
    assert stored.dataset == DATASET
    assert stored.extra == EXTRA
    assert stored.saved_at  # an ISO timestamp was recorded
    # The weights file is content-addressed and its recorded hash is the real one.
    data = (folder / stored.weights_file).read_bytes()
    assert stored.weights_sha256 == hashlib.sha256(data).hexdigest()
    assert stored.weights_file == f"weights-{stored.weights_sha256[:16]}.safetensors"
    assert read_metadata(folder) == stored


def test_tied_decoder_still_shares_the_encoder_weights_after_load(tmp_path: Path) -> None:
    loaded, _ = load_model(saved(tmp_path, tiny("ae", tied=True)))
    assert loaded.decoder._linears[0] is loaded.encoder.head
    # Weights are stored once: the tied decoder only owns its biases.
    assert not any(k.startswith("decoder.") and not k.startswith("decoder.biases") for k in loaded.state_dict())


def test_invertible_weights_stay_orthonormal_and_its_decoder_its_inverse_after_load(tmp_path: Path) -> None:
    loaded, _ = load_model(saved(tmp_path, tiny("ae", invertible=True, recon_loss="mse")))
    w = loaded.encoder.linears[0].weight
    assert torch.allclose(w @ w.t(), torch.eye(len(w)), atol=1e-5)
    z = torch.randn(6, 2, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.allclose(loaded.encoder(loaded.decoder(z)), z, atol=1e-4)
    assert not any(k.startswith("decoder.") for k in loaded.state_dict())  # the inverse has no weights to save


def test_a_model_json_written_before_the_new_config_fields_still_loads(tmp_path: Path) -> None:
    """Files saved before invertible / umap_weight / decoupled existed lack them: the defaults apply."""
    folder = saved(tmp_path, tiny("ae"))
    meta = read_meta(folder)
    for field in ("invertible", "umap_weight", "decoupled"):
        assert field in meta["config"]
        del meta["config"][field]
    write_meta(folder, meta)
    loaded, stored = load_model(folder)
    assert (stored.config.invertible, stored.config.umap_weight, stored.config.decoupled) == (False, 0.0, False)
    assert stored.config == tiny("ae").config


def test_defaults_for_omitted_metadata(tmp_path: Path) -> None:
    _, stored = load_model(save_model(tiny(), tmp_path / "bare"))
    assert (stored.history, stored.metrics, stored.dataset, stored.extra) == ([], {}, {}, {})


# ---------------------------------------------------------------------------------------------
# Replacing a model


def test_saving_twice_replaces_the_model_and_leaves_one_weights_file(tmp_path: Path) -> None:
    first, second = tiny(seed=0), tiny(seed=1)
    folder = save_model(first, tmp_path / "m", metrics={"run": 1})
    old_weights = weights_path(folder).name
    save_model(second, folder, metrics={"run": 2})

    loaded, stored = load_model(folder)
    assert_same_weights(loaded, second)
    assert stored.metrics == {"run": 2}
    assert stored.weights_file != old_weights
    assert sorted(p.name for p in folder.iterdir()) == sorted([LOCK_FILE, META_FILE, stored.weights_file])
    assert len(list(folder.glob("weights-*.safetensors"))) == 1


def test_a_save_removes_what_a_killed_writer_left_behind(tmp_path: Path) -> None:
    folder = save_model(tiny(seed=0), tmp_path / "m")
    leftovers = [folder / ".model.json.k1ll3d.tmp", folder / ".weights-0123456789abcdef.safetensors.x.tmp"]
    for leftover in leftovers:
        leftover.write_bytes(b"half a file")
    save_model(tiny(seed=1), folder)
    assert not any(leftover.exists() for leftover in leftovers)
    assert_same_weights(load_model(folder)[0], tiny(seed=1))


def test_concurrent_saves_to_one_folder_leave_a_loadable_model(tmp_path: Path) -> None:
    import threading

    folder = save_model(tiny(seed=0), tmp_path / "m")
    models = [tiny(seed=s) for s in range(1, 5)]
    errors: list[BaseException] = []

    def save_repeatedly(model: LatentModel) -> None:
        try:
            for _ in range(5):
                save_model(model, folder)
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=save_repeatedly, args=(m,)) for m in models]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    loaded, _ = load_model(folder)
    assert any(all(torch.equal(loaded.state_dict()[k], v) for k, v in m.state_dict().items()) for m in models)
    assert len(list(folder.glob("weights-*.safetensors"))) == 1


def test_saving_the_same_weights_again_keeps_one_file(tmp_path: Path) -> None:
    model = tiny()
    folder = save_model(model, tmp_path / "m")
    save_model(model, folder, extra={"again": True})
    _, stored = load_model(folder)
    assert stored.extra == {"again": True}
    assert sorted(p.name for p in folder.iterdir()) == sorted([LOCK_FILE, META_FILE, stored.weights_file])


def test_save_replaces_a_model_of_another_kind(tmp_path: Path) -> None:
    folder = save_model(tiny("vae", "conv"), tmp_path / "m")
    pca = tiny_pca()
    save_model(pca, folder)
    loaded, stored = load_model(folder)
    assert stored.config.kind == "pca"
    assert_same_weights(loaded, pca)
    assert len(list(folder.glob("weights-*.safetensors"))) == 1


def test_unserialisable_metadata_fails_without_touching_the_disk(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        save_model(tiny(), tmp_path / "new", metrics={"loss": float("nan")})
    assert not (tmp_path / "new").exists()  # not even an empty folder that would list as broken

    model = tiny(seed=0)
    folder = save_model(model, tmp_path / "old")
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(TypeError):
        save_model(tiny(seed=1), folder, extra={"tensor": torch.zeros(1)})
    assert sorted(p.name for p in folder.iterdir()) == before
    assert_same_weights(load_model(folder)[0], model)


# ---------------------------------------------------------------------------------------------
# Missing files


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="no model folder") as info:
        load_model(tmp_path / "nope")
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(FileNotFoundError):
        read_metadata(tmp_path / "nope")


def test_missing_model_json(tmp_path: Path) -> None:
    folder = saved(tmp_path)
    (folder / META_FILE).unlink()
    with pytest.raises(ModelNotFound, match="model metadata not found"):
        load_model(folder)


def test_missing_weights_file(tmp_path: Path) -> None:
    folder = saved(tmp_path)
    weights_path(folder).unlink()
    with pytest.raises(ModelNotFound, match="weights file not found"):
        load_model(folder)


def test_read_metadata_does_not_need_the_weights(tmp_path: Path) -> None:
    model = tiny("ae", "conv")
    folder = save_model(model, tmp_path / "m", history=HISTORY, metrics=METRICS, dataset=DATASET, extra=EXTRA)
    weights_path(folder).unlink()

    stored = read_metadata(folder)
    assert stored.config == model.config
    assert (stored.history, stored.metrics, stored.dataset, stored.extra) == (HISTORY, METRICS, DATASET, EXTRA)
    assert [m.name for m in list_models(tmp_path)] == ["m"]  # listing reads metadata only
    with pytest.raises(ModelNotFound):
        load_model(folder)


# ---------------------------------------------------------------------------------------------
# Bad weights files


def test_empty_weights_file(tmp_path: Path) -> None:
    folder = saved(tmp_path)
    weights_path(folder).write_bytes(b"")
    with pytest.raises(CorruptModel, match="SHA-256"):
        load_model(folder)


def test_truncated_weights_file(tmp_path: Path) -> None:
    folder = saved(tmp_path)
    path = weights_path(folder)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptModel, match="SHA-256"):
        load_model(folder)


def test_one_flipped_byte_in_the_weights(tmp_path: Path) -> None:
    folder = saved(tmp_path)
    path = weights_path(folder)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # inside the last tensor's data: still parses as safetensors
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptModel, match="SHA-256"):
        load_model(folder)


def test_random_bytes_instead_of_weights(tmp_path: Path) -> None:
    folder = saved(tmp_path)
    path = weights_path(folder)
    path.write_bytes(random.Random(0).randbytes(path.stat().st_size))
    with pytest.raises(CorruptModel, match="SHA-256"):
        load_model(folder)


@pytest.mark.parametrize("data", [b"", random.Random(0).randbytes(3000)], ids=["empty", "random"])
def test_unparseable_weights_with_a_matching_hash(tmp_path: Path, data: bytes) -> None:
    folder = saved(tmp_path)
    install_weights(folder, data)
    with pytest.raises(CorruptModel, match="not a valid safetensors file"):
        load_model(folder)


def test_valid_safetensors_with_wrong_shapes(tmp_path: Path) -> None:
    folder = saved(tmp_path, tiny("vae"))
    other = build_model(ModelConfig(kind="vae", latent_dim=2, hidden=(16,)))  # same names, other shapes
    install_weights(folder, safetensors_bytes(dict(other.state_dict())))
    with pytest.raises(
        IncompatibleModel,
        match=r"does not fit VAE dense 784-8-2: decoder\.body\.0\.bias: \(16,\) torch\.float32 "
        r"where the config needs \(8,\)",
    ):
        load_model(folder)


def test_weights_of_another_kind_are_incompatible(tmp_path: Path) -> None:
    folder = saved(tmp_path, tiny("vae"))
    install_weights(folder, safetensors_bytes(dict(tiny_pca().state_dict())))
    with pytest.raises(IncompatibleModel, match=r"does not fit VAE dense 784-8-2: missing decoder\.body\.0\.bias"):
        load_model(folder)


def test_missing_tensor(tmp_path: Path) -> None:
    model = tiny("ae")
    folder = saved(tmp_path, model)
    tensors = dict(model.state_dict())
    del tensors["decoder.head.bias"]
    install_weights(folder, safetensors_bytes(tensors))
    with pytest.raises(IncompatibleModel, match=r"missing decoder\.head\.bias"):
        load_model(folder)


def test_extra_tensor(tmp_path: Path) -> None:
    model = tiny("ae")
    folder = saved(tmp_path, model)
    tensors = {**model.state_dict(), "backdoor.weight": torch.zeros(3)}
    install_weights(folder, safetensors_bytes(tensors))
    with pytest.raises(IncompatibleModel, match=r"unexpected backdoor\.weight"):
        load_model(folder)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.int32])
def test_wrong_dtype(tmp_path: Path, dtype: torch.dtype) -> None:
    model = tiny("vae")
    folder = saved(tmp_path, model)
    tensors = {k: v.to(dtype) for k, v in model.state_dict().items()}
    install_weights(folder, safetensors_bytes(tensors))
    with pytest.raises(IncompatibleModel, match=rf"{dtype} where the config needs .* torch\.float32"):
        load_model(folder)


def test_one_wrong_dtype_among_good_tensors(tmp_path: Path) -> None:
    model = tiny("vae")
    folder = saved(tmp_path, model)
    tensors = {**model.state_dict(), "decoder.head.bias": model.state_dict()["decoder.head.bias"].double()}
    install_weights(folder, safetensors_bytes(tensors))
    with pytest.raises(IncompatibleModel, match=r"decoder\.head\.bias: \(784,\) torch\.float64"):
        load_model(folder)


def test_oversized_weights_are_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = saved(tmp_path)
    weights = weights_path(folder)
    read: list[Path] = []
    real_read_bytes = Path.read_bytes

    def spy(self: Path) -> bytes:
        read.append(Path(self))
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", spy)
    monkeypatch.setattr(store, "MAX_WEIGHTS_BYTES", 100)
    with pytest.raises(CorruptModel, match=r"more than the 100 a model file may have"):
        load_model(folder)
    assert folder / META_FILE in read  # the spy works...
    assert weights not in read  # ...and the weights were never read


def test_oversized_model_json_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = saved(tmp_path)
    monkeypatch.setattr(store, "MAX_META_BYTES", 10)
    with pytest.raises(CorruptModel, match="model metadata is .* bytes, more than the 10"):
        read_metadata(folder)


def test_weights_file_that_is_a_directory(tmp_path: Path) -> None:
    folder = saved(tmp_path)
    path = weights_path(folder)
    path.unlink()
    path.mkdir()
    with pytest.raises(CorruptModel, match="not a regular file"):
        load_model(folder)


# ---------------------------------------------------------------------------------------------
# Bad model.json


@pytest.mark.parametrize(
    "content, error, match",
    [
        (b"{not json", CorruptModel, "is not valid JSON"),
        (b"\xff\xfe\x00garbage", CorruptModel, "is not valid JSON"),
        (b"", CorruptModel, "is not valid JSON"),
        (b"[1, 2, 3]", CorruptModel, "must hold a JSON object"),
        (b'"a string"', CorruptModel, "must hold a JSON object"),
        (b"null", CorruptModel, "must hold a JSON object"),
    ],
    ids=["syntax", "binary", "empty", "list", "string", "null"],
)
def test_model_json_not_a_json_object(tmp_path: Path, content: bytes, error: type, match: str) -> None:
    folder = saved(tmp_path)
    (folder / META_FILE).write_bytes(content)
    with pytest.raises(error, match=match):
        load_model(folder)
    with pytest.raises(error, match=match):
        read_metadata(folder)


def config_with(**changes) -> dict:
    config = tiny().config.to_dict()
    config.update(changes)
    return config


@pytest.mark.parametrize(
    "changes, error, match",
    [
        ({"format_version": 2}, IncompatibleModel, "format_version 2; this version reads 1"),
        ({"format_version": None}, IncompatibleModel, "format_version None"),
        ({"format_version": "1"}, IncompatibleModel, "format_version '1'"),
        ({"config": None}, IncompatibleModel, "invalid config: config must be a JSON object"),
        ({"config": config_with(colour="red")}, IncompatibleModel, "unknown config field.*colour"),
        ({"config": config_with(latent_dim=0)}, IncompatibleModel, "latent_dim must be an integer from 2 to 128"),
        ({"config": config_with(latent_dim=2.5)}, IncompatibleModel, "latent_dim must be an integer"),
        ({"config": config_with(kind="gan")}, IncompatibleModel, "kind must be one of"),
        ({"config": config_with(hidden=[8, 0])}, IncompatibleModel, "hidden must hold integers"),
        ({"config": config_with(hidden=8)}, IncompatibleModel, "invalid config"),
        ({"config": config_with(beta=-1)}, IncompatibleModel, "beta must be a number"),
        ({"weights_file": "../x.safetensors"}, CorruptModel, "invalid weights file '../x.safetensors'"),
        ({"weights_file": "/etc/passwd"}, CorruptModel, "invalid weights file '/etc/passwd'"),
        ({"weights_file": "weights-0123456789abcdef.pt"}, CorruptModel, "invalid weights file"),
        ({"weights_file": "weights-0123456789abcdef.safetensors/../../x"}, CorruptModel, "invalid weights file"),
        ({"weights_file": None}, CorruptModel, "invalid weights file None"),
        ({"weights_sha256": 123}, CorruptModel, "lacks weights_sha256"),
        ({"history": {"epoch": 1}}, CorruptModel, "history must be a JSON list"),
        ({"metrics": [1]}, CorruptModel, "metrics must be a JSON dict"),
    ],
)
def test_invalid_metadata_is_refused(tmp_path: Path, changes: dict, error: type, match: str) -> None:
    folder = saved(tmp_path)
    edit_meta(folder, **changes)
    with pytest.raises(error, match=match):
        read_metadata(folder)
    with pytest.raises(error, match=match):
        load_model(folder)


# ---------------------------------------------------------------------------------------------
# The judge's figures in metrics["samples"] (vae.training.saving.judge_metrics), and updating metrics alone


def verdict(share: float = 0.5, n: int = 100) -> dict:
    return {"n": n, "confident_share": share, "class_shares": [0.5, 0.25, 0.25], "entropy": 1.0397207708399179}


SAMPLES = {
    "judge_sha256": "cd" * 32,
    "seed": 0,
    "confident_at": 0.9,
    **verdict(0.75),
    "reconstructions": verdict(0.875),
}


def samples_with(**changes) -> dict:
    entry = copy.deepcopy(SAMPLES)
    for key, value in changes.items():
        if key.startswith("recon_"):
            entry["reconstructions"][key.removeprefix("recon_")] = value
        elif value is None:
            del entry[key]
        else:
            entry[key] = value
    return entry


BAD_SAMPLES = [
    ("not a dict", [1, 2], "must be a JSON object with exactly the keys .*, got list"),
    ("unknown key", {**SAMPLES, "colour": "red"}, "must be a JSON object with exactly the keys .*'colour'"),
    ("missing key", samples_with(entropy=None), "must be a JSON object with exactly the keys"),
    ("no ceiling", samples_with(reconstructions=None), "must be a JSON object with exactly the keys"),
    ("share above 1", samples_with(confident_share=1.5), "confident_share must be a number in \\[0, 1\\]"),
    ("share a string", samples_with(confident_share="75%"), "confident_share must be a number"),
    ("share a bool", samples_with(confident_share=True), "confident_share must be a number"),
    ("n zero", samples_with(n=0), "n must be a positive integer"),
    ("n float", samples_with(n=100.0), "n must be a positive integer"),
    ("shares not a list", samples_with(class_shares={"0": 1.0}), "class_shares must be a list"),
    ("shares negative", samples_with(class_shares=[1.5, -0.5]), "class_shares must be a list"),
    ("shares sum", samples_with(class_shares=[0.5, 0.25, 0.0]), "class_shares must sum to 1"),
    ("entropy above log C", samples_with(entropy=1.2), "entropy must be a number from 0 to log 3"),
    ("entropy negative", samples_with(entropy=-0.1), "entropy must be a number from 0 to log 3"),
    ("judge sha", samples_with(judge_sha256="abc"), "judge_sha256 must be a hex SHA-256"),
    ("seed", samples_with(seed="0"), "seed must be an integer"),
    ("threshold", samples_with(confident_at=0.0), "confident_at must be a probability"),
    ("threshold above 1", samples_with(confident_at=1.5), "confident_at must be a probability in \\(0, 1\\], got 1.5$"),
    ("ceiling share", samples_with(recon_confident_share=2), "reconstructions confident_share must be"),
    (
        "ceiling key",
        {**SAMPLES, "reconstructions": {**verdict(), "seed": 0}},
        "reconstructions must be a JSON object with exactly the keys \\['class_shares', 'confident_share', 'entropy', "
        "'n'\\], got \\['class_shares', 'confident_share', 'entropy', 'n', 'seed'\\]$",
    ),
    (
        "ceiling not a dict",
        {**SAMPLES, "reconstructions": [1, 2]},
        "reconstructions must be a JSON object .*, got list$",
    ),
    ("one class", samples_with(class_shares=[1.0], entropy=0.0), "class_shares must be a list of at least 2 numbers"),
    (
        "ceiling classes",
        {**SAMPLES, "reconstructions": {**verdict(), "class_shares": [0.5, 0.5], "entropy": 0.5}},
        "reconstructions must have as many class_shares as the samples",
    ),
]


def test_the_judges_figures_round_trip(tmp_path: Path) -> None:
    folder = save_model(tiny(), tmp_path / "m", metrics={**METRICS, "samples": SAMPLES})
    assert read_metadata(folder).metrics == {**METRICS, "samples": SAMPLES}
    store.check_samples(SAMPLES)  # the fixture itself is valid, so each bad case below fails for its own reason


@pytest.mark.parametrize(("entry", "match"), [case[1:] for case in BAD_SAMPLES], ids=[c[0] for c in BAD_SAMPLES])
def test_invalid_samples_are_refused_on_load_and_on_save(tmp_path: Path, entry, match: str) -> None:
    folder = saved(tmp_path)
    edit_meta(folder, metrics={"test_loss": 1.0, "samples": entry})
    with pytest.raises(CorruptModel, match=f"metrics.samples {match}"):
        read_metadata(folder)
    with pytest.raises(CorruptModel, match=match):
        load_model(folder)
    with pytest.raises(ValueError, match=f"cannot save these metrics: samples {match}"):
        save_model(tiny(), tmp_path / "new", metrics={"samples": entry})
    assert not (tmp_path / "new").exists()
    with pytest.raises(ValueError, match=match):
        store.check_samples(entry)


def test_update_metrics_rewrites_model_json_only(tmp_path: Path) -> None:
    folder = save_model(tiny(), tmp_path / "m", history=HISTORY, metrics=METRICS, dataset=DATASET, extra=EXTRA)
    before = read_metadata(folder)
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.name != META_FILE}
    updated = store.update_metrics(folder, {"samples": SAMPLES, "test_loss": 1.5})
    assert updated.metrics == {**METRICS, "samples": SAMPLES, "test_loss": 1.5}
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.name != META_FILE} == files  # weights as they were
    fields = ("config", "history", "dataset", "extra", "weights_file", "weights_sha256", "saved_at", "files")
    assert all(getattr(updated, f) == getattr(before, f) for f in fields)
    loaded, stored = load_model(folder)  # still a whole model, its weights matching their recorded hash
    assert stored == updated
    assert list(folder.glob(store.TEMPORARY_GLOB)) == []


@pytest.mark.parametrize(
    "changes",
    [
        # One sample, all confident, all of one class: every figure at its lower or upper edge.
        {"n": 1, "confident_at": 1.0, "confident_share": 1.0, "class_shares": [1.0, 0.0, 0.0], "entropy": 0.0},
        {"class_shares": [1 / 3] * 3, "entropy": math.log(3)},  # balanced: the entropy's maximum, log C
        {"class_shares": [1 / 3] * 3, "entropy": math.log(3) + 1e-9},  # and the rounding the check allows above it
    ],
    ids=["lower and upper edges", "balanced", "balanced with rounding"],
)
def test_samples_at_the_edges_of_each_range_are_accepted(tmp_path: Path, changes: dict) -> None:
    entry = {**SAMPLES, **changes}
    store.check_samples(entry)
    folder = save_model(tiny(), tmp_path / "m", metrics={"samples": entry})
    assert read_metadata(folder).metrics["samples"] == entry


def test_update_metrics_adds_metrics_to_a_model_json_without_any(tmp_path: Path) -> None:
    folder = saved(tmp_path)
    meta = read_meta(folder)
    del meta["metrics"]  # optional in model.json: a load reads it as {}
    write_meta(folder, meta)
    assert store.update_metrics(folder, {"test_loss": 1.5}).metrics == {"test_loss": 1.5}
    assert read_meta(folder)["metrics"] == {"test_loss": 1.5}


def test_update_metrics_rereads_model_json_under_the_lock(tmp_path: Path, monkeypatch) -> None:
    """What another process does to the folder while an update waits for the lock (here, done as the lock is
    taken) is seen by the update: a removed model.json is not found, a replaced one is checked as a load checks it."""
    folder, other = saved(tmp_path), saved(tmp_path, name="n")
    real_lock = store._folder_lock
    meanwhile: list = []

    def lock_after(path):
        meanwhile.pop()()
        return real_lock(path)

    monkeypatch.setattr(store, "_folder_lock", lock_after)
    meanwhile.append((folder / META_FILE).unlink)
    with pytest.raises(ModelNotFound, match=f"^model metadata not found: {re.escape(str(folder / META_FILE))}$"):
        store.update_metrics(folder, {"test_loss": 1.5})

    meanwhile.append(lambda: edit_meta(other, format_version=2))
    with pytest.raises(IncompatibleModel, match=f"^{re.escape(str(other / META_FILE))} has format_version 2"):
        store.update_metrics(other, {"test_loss": 1.5})
    assert read_meta(other)["format_version"] == 2 and "test_loss" not in read_meta(other)["metrics"]


def test_update_metrics_refuses_bad_figures_and_broken_folders(tmp_path: Path) -> None:
    folder = saved(tmp_path)
    before = (folder / META_FILE).read_bytes()
    with pytest.raises(ValueError, match="cannot save these metrics: samples n must be a positive integer"):
        store.update_metrics(folder, {"samples": samples_with(n=-1)})
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        store.update_metrics(folder, {"loss": float("nan")})
    assert (folder / META_FILE).read_bytes() == before
    with pytest.raises(ModelNotFound, match="no model folder"):
        store.update_metrics(tmp_path / "nowhere", {"samples": SAMPLES})
    edit_meta(folder, format_version=2)
    with pytest.raises(IncompatibleModel, match="format_version 2"):
        store.update_metrics(folder, {"samples": SAMPLES})


def test_metadata_with_a_key_removed(tmp_path: Path) -> None:
    folder = saved(tmp_path)
    meta = read_meta(folder)
    del meta["config"]
    write_meta(folder, meta)
    with pytest.raises(IncompatibleModel, match="invalid config"):
        load_model(folder)


def test_every_store_error_is_a_store_error() -> None:
    for cls in (ModelNotFound, CorruptModel, IncompatibleModel, InvalidModelName):
        assert issubclass(cls, StoreError)
    assert issubclass(ModelNotFound, FileNotFoundError)
    assert issubclass(InvalidModelName, ValueError)


# ---------------------------------------------------------------------------------------------
# Never unpickle


class _TouchOnUnpickle:
    """Unpickling this creates ``marker``: proof that someone ran pickle on our file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_the_pickle_payload_is_live(tmp_path: Path) -> None:
    """Control for the test below: the payload really does create its marker when unpickled."""
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(_TouchOnUnpickle(control)))
    assert control.exists()


@pytest.mark.parametrize("fmt", ["pickle", "torch.save"])
def test_a_pickle_is_never_unpickled(tmp_path: Path, fmt: str) -> None:
    marker = tmp_path / "PWNED"
    payload_obj = {"encoder.head.weight": _TouchOnUnpickle(marker)}
    if fmt == "pickle":
        payload = pickle.dumps(payload_obj)
    else:
        buffer = io.BytesIO()
        torch.save(payload_obj, buffer)
        payload = buffer.getvalue()

    # As the weights file, with model.json's hash matching it, so the hash check lets it through.
    folder = saved(tmp_path / "models", name="as-weights")
    install_weights(folder, payload)
    with pytest.raises(StoreError, match="not a valid safetensors file"):
        load_model(folder)
    assert not marker.exists()

    # As model.json.
    folder = saved(tmp_path / "models", name="as-meta")
    (folder / META_FILE).write_bytes(payload)
    for reader in (load_model, read_metadata):
        with pytest.raises(StoreError, match="is not valid JSON"):
            reader(folder)
    assert scan_models(tmp_path / "models")[0][0] == folder  # listed as broken, not unpickled
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------
# Names

BAD_NAMES = [
    "../x",
    "/abs",
    ".hidden",
    "a/b",
    "",
    "a" * 65,
    "x..y",  # paths, hidden, empty, too long, ".."
    "..",
    ".",
    "-x",
    "a b",
    "a\\b",
    "é",
    "a\x00b",
    "a\n",  # and other unportable names
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidModelName, match="invalid model name") as info:
        check_name(name)
    assert isinstance(info.value, ValueError)
    with pytest.raises(InvalidModelName, match="invalid model name"):
        model_path(tmp_path, name)


@pytest.mark.parametrize("name", [None, 3, b"abc"])
def test_non_string_names_are_refused(tmp_path: Path, name: object) -> None:
    with pytest.raises(InvalidModelName):
        check_name(name)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["vae-2d_v1.0", "a", "A" * 64, "0.5", "model_final-v2"])
def test_good_names_are_accepted(tmp_path: Path, name: str) -> None:
    assert check_name(name) == name
    assert model_path(tmp_path, name) == tmp_path / name


@pytest.mark.parametrize("name", [".hidden", "x..y", "a" * 65])
def test_save_refuses_a_bad_folder_name_and_writes_nothing(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidModelName):
        save_model(tiny(), tmp_path / name)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# Listing


def test_list_and_scan_models(tmp_path: Path) -> None:
    root = tmp_path / "models"
    models = {"gamma": tiny("ae"), "alpha": tiny_pca(), "beta-2d": tiny("vae", "conv")}
    for name, model in models.items():
        save_model(model, root / name)
    broken = root / "broken"
    broken.mkdir()
    (broken / META_FILE).write_text("{oops")
    empty = root / "empty"
    empty.mkdir()
    (root / "notes.txt").write_text("not a model")  # files are not models
    hidden = root / ".hidden"  # a name the store could never have written
    hidden.mkdir()
    (hidden / META_FILE).write_text("{oops")

    listed = list_models(root)
    assert [m.name for m in listed] == ["alpha", "beta-2d", "gamma"]
    assert all(isinstance(m, StoredModel) for m in listed)
    assert {m.name: m.config for m in listed} == {name: model.config for name, model in models.items()}

    scanned = scan_models(root)
    assert [e.name if isinstance(e, StoredModel) else e[0].name for e in scanned] == [
        "alpha",
        "beta-2d",
        "broken",
        "empty",
        "gamma",
    ]
    errors = {e[0].name: e[1] for e in scanned if not isinstance(e, StoredModel)}
    assert isinstance(errors["broken"], CorruptModel) and "not valid JSON" in str(errors["broken"])
    assert isinstance(errors["empty"], ModelNotFound) and "model metadata not found" in str(errors["empty"])
    assert errors["broken"].__class__ is CorruptModel


def test_list_models_only_lists_names_the_store_can_open(tmp_path: Path) -> None:
    good = saved(tmp_path, name="good")
    # A folder written by hand under a name that model_path refuses must not be offered for opening.
    sneaky = tmp_path / "x..y"
    sneaky.mkdir()
    for path in good.iterdir():
        (sneaky / path.name).write_bytes(path.read_bytes())
    names = [m.name for m in list_models(tmp_path)]
    assert names == ["good"]
    for name in names:
        model_path(tmp_path, name)


def test_listing_a_missing_or_empty_dir(tmp_path: Path) -> None:
    assert list_models(tmp_path / "absent") == []
    assert scan_models(tmp_path / "absent") == []
    assert list_models(tmp_path) == []
    (tmp_path / "file").write_text("x")
    assert scan_models(tmp_path / "file") == []  # a file, not a folder


# ---------------------------------------------------------------------------------------------
# Crash safety: SIGKILL a real process in the middle of saving

# A fork server: import torch once (about 2 s), then fork one saver per round, so each kill costs only
# the sleep. Every saver starts from the same seeded model and writes, in a loop, versions that differ
# from it only in a marker tensor filled with ``round * 1000 + iteration``; so any complete state the
# folder can hold is "the base weights plus a constant marker", and a mix of two saves would show.
CRASH_CONFIG = dict(kind="vae", arch="dense", latent_dim=2, hidden=(2048, 2048))  # ~46 MB of weights
MARKER = "encoder.head.bias"
SERVER = f"""
import itertools, os, sys
import torch
from vae.models import ModelConfig, build_model
from vae.store import save_model

torch.manual_seed(0)
model = build_model(ModelConfig(**{CRASH_CONFIG!r}))
marker = model.state_dict()[{MARKER!r}]
folder = sys.argv[1]
print("ready", flush=True)
for line in sys.stdin:
    round_ = int(line)
    pid = os.fork()
    if pid == 0:
        try:
            for i in itertools.count(1):
                marker.fill_(round_ * 1000 + i)
                save_model(model, folder)
        finally:
            os._exit(3)
    print(pid, flush=True)
    sys.stdin.readline()  # reap only once the parent has sent its kill, so the pid cannot be reused
    _, status = os.waitpid(pid, 0)
    print(status, flush=True)
"""


def test_sigkill_during_save_always_leaves_a_loadable_model(tmp_path: Path) -> None:
    folder = tmp_path / "crash"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    worker: int | None = None
    try:
        # While the server imports torch: the same seeded base model, saved first with marker 0.
        torch.manual_seed(0)
        base = build_model(ModelConfig(**CRASH_CONFIG))
        with torch.no_grad():
            base.state_dict()[MARKER].zero_()
        save_model(base, folder)
        base_state = base.state_dict()
        assert server.stdout.readline().strip() == "ready"

        rng = random.Random(20240601)
        start = time.monotonic()
        rounds, last_value = 0, 0.0
        for round_ in range(1, 5):
            if time.monotonic() - start > 3:  # a slow machine runs fewer rounds, never a longer test
                break
            before = read_metadata(folder).weights_file
            server.stdin.write(f"{round_}\n")
            server.stdin.flush()
            worker = int(server.stdout.readline())
            committed = False
            if round_ % 2 == 0:
                # Even rounds: let this saver commit once (polling model.json, which a concurrent reader
                # must always find valid), so the kill lands in a later save and the new model must stay.
                deadline = time.monotonic() + 3
                while not committed and time.monotonic() < deadline:
                    committed = read_metadata(folder).weights_file != before
                    time.sleep(0.005)
            time.sleep(rng.uniform(0.02, 0.4))
            os.kill(worker, signal.SIGKILL)
            server.stdin.write("reap\n")
            server.stdin.flush()
            status = int(server.stdout.readline())
            worker = None
            # It died of our SIGKILL, not of an error of its own.
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status
            rounds += 1

            loaded, stored = load_model(folder)  # the key assertion: it always loads
            state = loaded.state_dict()
            assert state.keys() == base_state.keys()
            for key, tensor in base_state.items():
                if key != MARKER:
                    assert torch.equal(state[key], tensor), key
            marker = state[MARKER]
            value = marker[0].item()
            assert torch.all(marker == value), "marker tensor mixes two saves"
            # Either still the previous state, or a version this round's saver wrote; never older.
            assert value == last_value or round_ * 1000 < value < (round_ + 1) * 1000, (value, last_value)
            if committed:
                assert value > round_ * 1000, "a committed save was lost"
            last_value = value
            data = (folder / stored.weights_file).read_bytes()
            assert hashlib.sha256(data).hexdigest() == stored.weights_sha256
        assert rounds >= 2

        # The folder stays usable: the next save cleans out any orphaned weights file.
        save_model(tiny(), folder)
        assert len(list(folder.glob("weights-*.safetensors"))) == 1
        assert_same_weights(load_model(folder)[0], tiny())
    finally:
        if worker is not None:
            try:
                os.kill(worker, signal.SIGKILL)
            except ProcessLookupError:
                pass
        server.stdin.close()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# A kill placed inside the write of model.json itself, deterministically: the random SIGKILL above rarely
# lands in the few microseconds that write takes. A fork server imports the store once; each saver it forks
# installs an audit hook (sys.addaudithook) that watches for the save opening model.json's bytes for writing
# (its temporary file, or model.json itself) and then either caps the file size there (RLIMIT_FSIZE with
# SIGXFSZ at its default action: the kernel kills the saver after exactly ``limit`` bytes of that file) or
# SIGKILLs itself before the ``n``-th audited call after that open (the rename, the folder's fsync, the
# clean-up). Whatever a save does with model.json's bytes, every cut point is tried and the folder must
# hold the old model (marker 0) or the new one (marker 1), complete.
CUT_SERVER = """
import os, resource, signal, sys
import torch
from vae.models import ModelConfig, build_model
from vae.store import save_model

torch.manual_seed(0)
model = build_model(ModelConfig(kind="ae", arch="dense", latent_dim=2, hidden=(8,)))
with torch.no_grad():
    model.state_dict()["encoder.head.bias"].fill_(1.0)
folder = sys.argv[1]
print("ready", flush=True)
for line in sys.stdin:
    mode, which, amount = line.split()
    which, amount = int(which), int(amount)
    pid = os.fork()
    if pid == 0:
        state = {"opens": 0, "after": 0}

        def hook(event, args):
            if event == "open" and "model.json" in os.path.basename(str(args[0])) and args[2] & (os.O_WRONLY | os.O_RDWR):
                state["opens"] += 1
                if mode == "bytes" and state["opens"] == which:
                    resource.setrlimit(resource.RLIMIT_FSIZE, (amount, resource.RLIM_INFINITY))
                return
            if mode == "event" and state["opens"] >= 1:
                state["after"] += 1
                if state["after"] == amount:
                    os.kill(os.getpid(), signal.SIGKILL)

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores it; the kernel's default kills
        sys.addaudithook(hook)
        try:
            save_model(model, folder)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    print(status, flush=True)
"""


def test_a_kill_inside_the_write_of_model_json_leaves_the_old_or_the_new_model(tmp_path: Path) -> None:
    folder = tmp_path / "cut"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen(
        [sys.executable, "-c", CUT_SERVER, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:
        torch.manual_seed(0)
        old = build_model(ModelConfig(kind="ae", arch="dense", latent_dim=2, hidden=(8,)))
        with torch.no_grad():
            old.state_dict()["encoder.head.bias"].zero_()
        assert server.stdout.readline().strip() == "ready"
        meta_size = len((save_model(old, folder) / META_FILE).read_bytes())

        def cut(mode: str, which: int, amount: int) -> tuple[str, float]:
            """Restore the old model, run one save cut at this point; how it ended and the marker loaded."""
            save_model(old, folder)
            server.stdin.write(f"{mode} {which} {amount}\n")
            server.stdin.flush()
            status = int(server.stdout.readline())
            if os.WIFSIGNALED(status):
                assert os.WTERMSIG(status) in (signal.SIGKILL, signal.SIGXFSZ), status
                ended = "killed"
            else:
                assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
                ended = "done"
            loaded, stored = load_model(folder)  # the key assertion: it always loads
            assert hashlib.sha256((folder / stored.weights_file).read_bytes()).hexdigest() == stored.weights_sha256
            marker = loaded.state_dict()["encoder.head.bias"]
            assert torch.all(marker == marker[0]), "the marker mixes two saves"
            value = marker[0].item()
            assert value in (0.0, 1.0), value
            if ended == "done":
                assert value == 1.0, "a save that finished left the old model"
            return ended, value

        # Cut after 0, 1, half and all but one of model.json's bytes, in each file its bytes are opened for.
        killed_in_write = 0
        for which in (1, 2, 3):
            for limit in (0, 1, meta_size // 2, meta_size - 1):
                ended, value = cut("bytes", which, limit)
                killed_in_write += ended == "killed"
                if which == 1:
                    assert ended == "killed" and value == 0.0, "a save cut in the write of model.json committed"
        assert killed_in_write >= 4
        # Killed before each audited call after model.json's bytes were opened, until the save runs through.
        outcomes = []
        for n in range(1, 200):
            ended, value = cut("event", 0, n)
            outcomes.append(value)
            if ended == "done":
                break
        else:
            pytest.fail("the save never finished")
        assert outcomes[0] == 0.0 and outcomes[-1] == 1.0  # the rename was among the cut points
        assert outcomes == sorted(outcomes), "a kill after the commit point brought the old model back"
    finally:
        server.stdin.close()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# ---------------------------------------------------------------------------------------------
# What mutation testing (make mutants) found unchecked: the imported model's entry, defaults of an
# omitted key, boundaries of the size limits, and the messages that name the file and the fault.


def test_a_trained_models_entry_lists_its_weights_file_with_its_hash(tmp_path: Path) -> None:
    folder = saved(tmp_path)
    stored = read_metadata(folder)
    data = weights_path(folder).read_bytes()
    assert stored.files == {"weights": {"file": weights_path(folder).name, "sha256": hashlib.sha256(data).hexdigest()}}


def test_keys_absent_from_model_json_read_as_empty_values(tmp_path: Path) -> None:
    folder = saved(tmp_path)
    meta = read_meta(folder)
    for key in ("history", "metrics", "dataset", "extra", "saved_at"):
        del meta[key]
    write_meta(folder, meta)
    stored = read_metadata(folder)
    assert (stored.history, stored.metrics, stored.dataset, stored.extra, stored.saved_at) == ([], {}, {}, {}, "")
    edit_meta(folder, saved_at="2024-01-02T03:04:05+00:00")
    assert read_metadata(folder).saved_at == "2024-01-02T03:04:05+00:00"


@pytest.mark.parametrize("key", ["dataset", "extra"])
def test_a_dataset_or_extra_that_is_not_an_object_is_refused(tmp_path: Path, key: str) -> None:
    folder = saved(tmp_path)
    edit_meta(folder, **{key: ["not", "an", "object"]})
    with pytest.raises(CorruptModel, match=f"model.json: {key} must be a JSON dict"):
        read_metadata(folder)


def test_saved_at_is_the_time_of_the_save_in_utc(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    before = datetime.now(UTC).replace(microsecond=0)
    stamp = read_metadata(saved(tmp_path)).saved_at
    assert stamp.endswith("+00:00")  # an aware UTC time, not the machine's local one
    assert before <= datetime.fromisoformat(stamp) <= before + timedelta(seconds=60)


def test_a_model_json_of_exactly_the_limit_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = saved(tmp_path)
    monkeypatch.setattr(store, "MAX_META_BYTES", (folder / META_FILE).stat().st_size)
    assert read_metadata(folder).config == tiny().config


def test_a_first_save_that_fails_mid_write_leaves_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(path, data) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "write_atomically", disk_full)
    with pytest.raises(OSError, match="No space left on device"):
        save_model(tiny(), tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_save_refuses_an_imported_model_saying_where_it_is_stored(tmp_path: Path) -> None:
    model = tiny()
    model.config = imported_config()
    with pytest.raises(
        ValueError, match="^an imported ONNX model is stored by vae.import_onnx: its graphs are its weights$"
    ):
        save_model(model, tmp_path / "as-weights")
    assert not (tmp_path / "as-weights").exists()


def test_the_load_goes_to_the_device_asked_for(tmp_path: Path) -> None:
    model, _ = load_model(saved(tmp_path), device="meta")  # a device no tensor of the file is on
    assert {p.device.type for p in model.parameters()} == {"meta"}


def test_an_incompatible_file_names_five_problems_and_counts_the_rest(tmp_path: Path) -> None:
    folder = saved(tmp_path)
    tensors = {k: v.contiguous() for k, v in tiny().state_dict().items()}
    tensors.update({f"stray.{i}": torch.zeros(1) for i in range(7)})
    install_weights(folder, safetensors_bytes(tensors))
    shown = "; ".join(f"unexpected stray.{i}" for i in range(5))
    with pytest.raises(IncompatibleModel, match=f": {shown}; and 2 more$"):
        load_model(folder)
    for strays, count in ((6, "; and 1 more"), (5, "")):  # five: all shown, no count
        tensors = {k: v.contiguous() for k, v in tiny().state_dict().items()}
        tensors.update({f"stray.{i}": torch.zeros(1) for i in range(strays)})
        install_weights(folder, safetensors_bytes(tensors))
        with pytest.raises(IncompatibleModel, match=f": {shown}{count}$"):
            load_model(folder)


# An imported model's folder, with small hand-made standard graphs (x [B, 1, 28, 28] -> embedding [B, 2],
# z [B, 2] -> image [B, 1, 28, 28]): the store's rules for it need no import and no torch export.


def imported_config() -> ModelConfig:
    from vae.models import OnnxInterface

    interface = OnnxInterface(
        encoder_input="x",
        input_layout="nchw",
        encoder_outputs=("embedding",),
        decoder_input="z",
        decoder_output="image",
        output_layout="nchw",
    )
    return ModelConfig(kind="ae", arch="onnx", latent_dim=2, hidden=(), onnx=interface)


def _graph(nodes, inputs, outputs, initializers) -> bytes:
    from onnx import helper

    graph = helper.make_graph(nodes, "g", inputs, outputs, initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def standard_pair(scale: float = 1.0) -> tuple[bytes, bytes, np.ndarray]:
    """(encoder, decoder, W [784, 2]): embedding = flat(x) @ W, image = sigmoid(z @ W.T)."""
    from onnx import TensorProto, helper, numpy_helper

    w = (scale * np.linspace(-1.0, 1.0, 784 * 2, dtype=np.float32)).reshape(784, 2)
    flat, square = np.array([-1, 784], dtype=np.int64), np.array([-1, 1, 28, 28], dtype=np.int64)
    encoder = _graph(
        [helper.make_node("Reshape", ["x", "flat"], ["f"]), helper.make_node("MatMul", ["f", "w"], ["embedding"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 1, 28, 28])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["B", 2])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(flat, "flat")],
    )
    decoder = _graph(
        [
            helper.make_node("MatMul", ["z", "wt"], ["m"]),
            helper.make_node("Sigmoid", ["m"], ["p"]),
            helper.make_node("Reshape", ["p", "square"], ["image"]),
        ],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["B", 2])],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["B", 1, 28, 28])],
        [numpy_helper.from_array(np.ascontiguousarray(w.T), "wt"), numpy_helper.from_array(square, "square")],
    )
    return encoder, decoder, w


def imported_graphs() -> dict[str, bytes]:
    """The user's pair (scale 2) differs from the standard pair (scale 1): a load that ran the wrong role shows."""
    user_encoder, user_decoder, _ = standard_pair(scale=2.0)
    encoder, decoder, _ = standard_pair()
    return {"encoder": user_encoder, "decoder": user_decoder, "standard_encoder": encoder, "standard_decoder": decoder}


def test_an_imported_model_stores_each_graph_under_its_role_and_hash(tmp_path: Path) -> None:
    graphs = imported_graphs()
    folder = store.save_imported_model(
        tmp_path / "imp", imported_config(), graphs, metrics={"m": 1}, dataset={"name": "mnist"}, extra={"e": 2}
    )
    stored = read_metadata(folder)
    hashes = {role: hashlib.sha256(data).hexdigest() for role, data in graphs.items()}
    names = {role: f"{role.replace('_', '-')}-{hashes[role][:16]}.onnx" for role in graphs}
    assert stored.files == {role: {"file": names[role], "sha256": hashes[role]} for role in store.GRAPH_ROLES}
    for role, data in graphs.items():
        assert (folder / names[role]).read_bytes() == data
    bundle = "".join(f"{role}:{hashes[role]}\n" for role in sorted(hashes))
    assert stored.weights_sha256 == hashlib.sha256(bundle.encode()).hexdigest()
    assert (stored.weights_file, stored.metrics, stored.dataset, stored.extra) == (
        "",
        {"m": 1},
        {"name": "mnist"},
        {"e": 2},
    )
    assert stored.history == [] and stored.config == imported_config()
    assert read_meta(folder)["format_version"] == store.FORMAT_VERSION


def test_an_imported_model_loads_and_runs_its_standard_graphs(tmp_path: Path) -> None:
    folder = store.save_imported_model(tmp_path / "imp", imported_config(), imported_graphs())
    model, stored = load_model(folder)
    _, _, w = standard_pair()
    images = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    expected = images.reshape(3, 784).numpy().astype(np.float64) @ w
    np.testing.assert_allclose(model.embed(images).numpy(), expected, rtol=1e-4, atol=1e-3)
    assert stored.name == "imp" and model.config == imported_config()


def test_save_imported_model_refuses_another_arch_or_other_roles(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="stores arch='onnx' models, got arch='dense'"):
        store.save_imported_model(tmp_path / "a", tiny().config, imported_graphs())
    graphs = imported_graphs()
    del graphs["standard_decoder"]
    with pytest.raises(
        ValueError, match=r"graphs must hold exactly .*, got \['decoder', 'encoder', 'standard_encoder'\]"
    ):
        store.save_imported_model(tmp_path / "b", imported_config(), graphs)
    with pytest.raises(InvalidModelName):
        store.save_imported_model(tmp_path / "..", imported_config(), imported_graphs())
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.pop("files"), "model.json: files must name the graphs encoder, decoder, standard_encoder, "),
        (lambda m: m.update(files=["encoder"]), "model.json: files must name the graphs"),
        (lambda m: m["files"].update(extra=m["files"]["encoder"]), "model.json: files must name the graphs"),
        (lambda m: m["files"].update(decoder="decoder.onnx"), "model.json: the decoder file's sha256 is not a hex"),
        (lambda m: m["files"]["decoder"].update(sha256="0" * 63), "model.json: the decoder file's sha256 is not a hex"),
        (lambda m: m["files"]["decoder"].pop("sha256"), "model.json: the decoder file's sha256 is not a hex"),
        (lambda m: m["files"]["decoder"].pop("file"), "model.json names an invalid decoder file None"),
        (lambda m: m["files"]["decoder"].update(file=7), "model.json names an invalid decoder file 7"),
        (
            lambda m: m["files"]["decoder"].update(file="sub/" + m["files"]["decoder"]["file"]),
            "model.json names an invalid decoder file 'sub/decoder-",
        ),
        (  # another role's file, whose name and hash are both valid
            lambda m: m["files"].update(decoder=m["files"]["encoder"]),
            "model.json names an invalid decoder file 'encoder-",
        ),
        (  # the right name pattern, but not the name of this hash
            lambda m: m["files"]["decoder"].update(file="decoder-" + "0" * 16 + ".onnx"),
            "model.json names an invalid decoder file 'decoder-0000000000000000.onnx'",
        ),
        (lambda m: m.update(weights_sha256="0" * 64), "model.json: weights_sha256 does not match the hashes of its"),
        (lambda m: m.pop("weights_sha256"), "model.json: weights_sha256 does not match the hashes of its graphs"),
    ],
)
def test_an_imported_models_entry_is_checked_field_by_field(tmp_path: Path, change, message: str) -> None:
    folder = store.save_imported_model(tmp_path / "imp", imported_config(), imported_graphs())
    meta = read_meta(folder)
    change(meta)
    write_meta(folder, meta)
    with pytest.raises(CorruptModel, match=re.escape(message)):
        read_metadata(folder)


def test_an_imported_models_graph_is_checked_before_it_is_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = store.save_imported_model(tmp_path / "imp", imported_config(), imported_graphs())
    files = read_metadata(folder).files
    path = folder / files["standard_decoder"]["file"]
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(CorruptModel, match=f"{re.escape(str(path))} does not match the SHA-256 recorded in model.json"):
        load_model(folder)
    path.unlink()
    with pytest.raises(ModelNotFound, match=f"ONNX standard decoder graph not found: {re.escape(str(path))}"):
        load_model(folder)
    graphs = imported_graphs()
    graphs["standard_decoder"] += bytes(64)  # the one graph over the limit; read in role order, it is the last
    folder = store.save_imported_model(tmp_path / "big", imported_config(), graphs)
    monkeypatch.setattr(store, "MAX_GRAPH_BYTES", len(graphs["standard_decoder"]) - 1)
    with pytest.raises(CorruptModel, match="ONNX standard decoder graph is .* bytes, more than the"):
        load_model(folder)


def test_an_imported_model_whose_graphs_are_not_onnx_is_incompatible(tmp_path: Path) -> None:
    graphs = {role: f"not a graph: {role}".encode() for role in store.GRAPH_ROLES}
    folder = store.save_imported_model(tmp_path / "imp", imported_config(), graphs)
    with pytest.raises(IncompatibleModel, match=f"^{re.escape(str(folder))}: "):
        load_model(folder)
