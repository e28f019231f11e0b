"""The store's timeline: saved in the same atomic save as the weights, read back exactly, and every bad file
refused with the store's errors (missing, truncated, altered, pickled, of another model, a zip bomb) while the
model itself still loads."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save as safetensors_bytes

from tests.conftest import SEED
from vae import store
from vae.models import LatentModel, ModelConfig, build_model
from vae.store import (
    META_FILE,
    CorruptModel,
    IncompatibleModel,
    ModelNotFound,
    NoTimeline,
    StoreError,
    load_model,
    load_timeline,
    read_metadata,
    save_model,
)
from vae.training.timeline import Timeline, decoder_snapshot

REPO = Path(__file__).resolve().parents[1]


def tiny(kind: str = "vae", latent_dim: int = 2, seed: int = 0) -> LatentModel:
    torch.manual_seed(seed)
    return build_model(ModelConfig(kind=kind, latent_dim=latent_dim, hidden=(8,)))


def fake_timeline(
    model: LatentModel, frames: int = 5, points: int = 30, decoders: tuple[int, ...] = (0, 2)
) -> Timeline:
    """A timeline of random codes (what the store must keep, whatever they are) and real decoder snapshots."""
    rng = np.random.default_rng(SEED)
    steps = np.array([0, 1, 2, 4, 8, 10, 16, 20][:frames], dtype=np.int64)
    snapshots = {}
    for frame in decoders:
        with torch.no_grad():
            for tensor in model.parameters():
                tensor.add_(0.1)  # a decoder that differs from frame to frame
        snapshots[frame] = decoder_snapshot(model)
    return Timeline(
        codes=rng.normal(size=(frames, points, model.config.latent_dim)).astype(np.float32),
        steps=steps,
        epochs=steps / 10.0,
        image_index=np.sort(rng.choice(500, points, replace=False)).astype(np.int64),
        train_terms={"loss": rng.uniform(100, 500, frames), "kl": rng.uniform(0, 10, frames)},
        test_terms={"loss": rng.uniform(100, 500, frames), "kl": rng.uniform(0, 10, frames)},
        batches_per_epoch=10,
        decoders=snapshots,
        record_seconds=1.25,
        loss_images=20,
    )


@pytest.fixture
def saved(tmp_path):
    """(folder, model, timeline) of a VAE saved with its timeline."""
    model = tiny()
    timeline = fake_timeline(model)
    return save_model(model, tmp_path / "m", timeline=timeline), model, timeline


def meta_of(folder: Path) -> dict:
    return json.loads((folder / META_FILE).read_text())


def install_timeline(folder: Path, data: bytes) -> Path:
    """Put ``data`` in place of the timeline file with model.json's hash updated to match: the file then
    passes the hash check and must be judged on its contents."""
    meta = meta_of(folder)
    (folder / meta["timeline"]["file"]).unlink()
    digest = hashlib.sha256(data).hexdigest()
    name = f"timeline-{digest[:16]}.npz"
    (folder / name).write_bytes(data)
    meta["timeline"].update(file=name, sha256=digest)
    (folder / META_FILE).write_text(json.dumps(meta))
    return folder / name


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def arrays_of(timeline: Timeline) -> dict[str, np.ndarray]:
    out = {
        "codes": timeline.codes,
        "steps": timeline.steps,
        "epochs": timeline.epochs,
        "image_index": timeline.image_index,
    }
    out.update({f"train_{k}": v for k, v in timeline.train_terms.items()})
    out.update({f"test_{k}": v for k, v in timeline.test_terms.items()})
    return out


def assert_model_still_loads(folder: Path, model: LatentModel) -> None:
    loaded, stored = load_model(folder)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    assert stored.has_timeline  # the entry is reported; only its files are bad


# ---------------------------------------------------------------------------------------------
# Round trip


def test_a_timeline_round_trips_with_its_hash_in_model_json(saved) -> None:
    folder, model, timeline = saved
    meta = meta_of(folder)
    entry = meta["timeline"]
    data = (folder / entry["file"]).read_bytes()
    assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert entry["file"] == f"timeline-{entry['sha256'][:16]}.npz"
    assert (entry["frames"], entry["points"], entry["batches_per_epoch"], entry["loss_images"]) == (5, 30, 10, 20)
    # A plain npz of the documented arrays, readable without pickle by anyone's numpy.
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        assert set(npz.files) == {
            "codes",
            "steps",
            "epochs",
            "image_index",
            "train_loss",
            "train_kl",
            "test_loss",
            "test_kl",
        }
        assert (
            npz["codes"].dtype == np.float32 and npz["steps"].dtype == np.int64 and npz["image_index"].dtype == np.int64
        )

    back = load_timeline(folder)
    for name, array in arrays_of(timeline).items():
        got = arrays_of(back)[name]
        assert got.dtype == array.dtype and np.array_equal(got, array), name
    assert back.batches_per_epoch == 10 and back.record_seconds == 1.25 and back.loss_images == 20
    # Decoders: int8 per row, so close to (not equal to) what was kept, and the biases exact.
    assert sorted(back.decoders) == [0, 2] == entry["decoders"]["frames"]
    for frame, snapshot in timeline.decoders.items():
        for key, tensor in snapshot.items():
            error = float((back.decoders[frame][key] - tensor).abs().max())
            assert error <= float(tensor.abs().max()) / 254 + 1e-7, key
            if tensor.ndim == 1:
                assert torch.equal(back.decoders[frame][key], tensor)
    assert load_timeline(folder, decoders=False).decoders == {}


def test_a_model_without_a_timeline_loads_and_says_so(tmp_path) -> None:
    model = tiny("ae")
    folder = save_model(model, tmp_path / "plain")
    assert "timeline" not in meta_of(folder)  # the layout of every model saved before timelines
    _, stored = load_model(folder)
    assert not stored.has_timeline and stored.timeline_sha256 == ""
    with pytest.raises(NoTimeline, match="no timeline recorded"):
        load_timeline(folder)


def test_the_shipped_conv_models_have_no_timeline_and_still_load() -> None:
    folder = REPO / "models" / "ae-2d-conv"
    if not folder.is_dir():
        pytest.skip("no shipped conv model")
    load_model(folder)
    with pytest.raises(NoTimeline):
        load_timeline(folder)


def test_a_resave_replaces_the_timeline_files_and_a_plain_save_removes_them(saved) -> None:
    folder, model, timeline = saved
    first = meta_of(folder)["timeline"]
    save_model(model, folder, timeline=fake_timeline(model, frames=4, decoders=(1,)))
    second = meta_of(folder)["timeline"]
    assert second["file"] != first["file"] and not (folder / first["file"]).exists()
    assert not (folder / first["decoders"]["file"]).exists()
    assert load_timeline(folder).frames == 4
    save_model(model, folder)
    assert not list(folder.glob("timeline-*")) and not list(folder.glob("decoders-*"))
    with pytest.raises(NoTimeline):
        load_timeline(folder)


def test_a_save_that_fails_before_its_commit_keeps_the_old_model_and_timeline(saved, monkeypatch) -> None:
    folder, model, timeline = saved
    real_write = store.write_atomically

    def fail_on_the_commit(path, data):
        if path.name == META_FILE:
            raise OSError("disk full")
        real_write(path, data)

    monkeypatch.setattr(store, "write_atomically", fail_on_the_commit)
    with pytest.raises(OSError, match="disk full"):
        save_model(tiny(seed=1), folder, timeline=fake_timeline(tiny(seed=1), frames=3))
    monkeypatch.undo()
    assert_model_still_loads(folder, model)
    assert np.array_equal(load_timeline(folder).codes, timeline.codes)  # the old timeline, whole


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: setattr(t, "codes", t.codes[:, :, :1].copy()), "dimensions"),
        (lambda t: setattr(t, "steps", t.steps[::-1].copy()), "increasing"),
        (lambda t: setattr(t, "codes", t.codes.astype(np.float64)), "float32"),
        (lambda t: t.train_terms.update(loss=np.zeros(2)), "float64"),
        (lambda t: t.decoders.update({9: {}}), "frame 9"),
    ],
    ids=["latent-dim", "steps", "dtype", "term-length", "decoder-frame"],
)
def test_an_inconsistent_timeline_is_refused_before_anything_is_written(tmp_path, change, message) -> None:
    model = tiny()
    timeline = fake_timeline(model)
    change(timeline)
    with pytest.raises(ValueError, match=message):
        save_model(model, tmp_path / "never", timeline=timeline)
    assert not (tmp_path / "never").exists()


# ---------------------------------------------------------------------------------------------
# Refusals: each is a StoreError naming the file, and the model itself still loads


def test_a_missing_timeline_file(saved) -> None:
    folder, model, _ = saved
    (folder / meta_of(folder)["timeline"]["file"]).unlink()
    with pytest.raises(ModelNotFound, match="timeline file not found"):
        load_timeline(folder)
    assert_model_still_loads(folder, model)


def test_a_truncated_timeline_file(saved) -> None:
    folder, model, _ = saved
    path = folder / meta_of(folder)["timeline"]["file"]
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CorruptModel, match=f"{path.name}.*does not match the SHA-256"):
        load_timeline(folder)
    assert_model_still_loads(folder, model)


def test_random_bytes_with_a_matching_hash(saved) -> None:
    folder, model, _ = saved
    install_timeline(folder, np.random.default_rng(SEED).bytes(5000))
    with pytest.raises(CorruptModel, match="not a valid npz archive"):
        load_timeline(folder)
    assert_model_still_loads(folder, model)


class Payload:
    """Unpickling this would create the file ``target``: proof that a load executed code."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


def test_a_pickle_in_place_of_the_timeline_is_never_unpickled(saved, tmp_path) -> None:
    folder, model, _ = saved
    target = tmp_path / "pwned"
    install_timeline(folder, pickle.dumps({"codes": Payload(target)}))
    with pytest.raises(CorruptModel, match="is a Python pickle, not an npz archive; it is never loaded"):
        load_timeline(folder)
    assert not target.exists()
    assert_model_still_loads(folder, model)


def test_an_npz_holding_a_pickled_object_array_is_never_unpickled(saved, tmp_path) -> None:
    folder, model, timeline = saved
    target = tmp_path / "pwned"
    arrays = arrays_of(timeline)
    arrays["codes"] = np.array([Payload(target)], dtype=object)
    install_timeline(folder, npz_bytes(**arrays))
    with pytest.raises(CorruptModel, match=r"holds a pickled \(object\) array, which is never loaded"):
        load_timeline(folder)
    assert not target.exists()
    assert_model_still_loads(folder, model)


def test_a_timeline_of_another_model(saved, tmp_path) -> None:
    folder, model, _ = saved
    other = tiny(latent_dim=3)
    install_timeline(folder, npz_bytes(**arrays_of(fake_timeline(other, decoders=()))))
    with pytest.raises(IncompatibleModel, match="3-D codes"):
        load_timeline(folder)
    assert_model_still_loads(folder, model)


def test_a_frame_count_that_does_not_match_model_json(saved) -> None:
    folder, model, _ = saved
    meta = meta_of(folder)
    meta["timeline"]["frames"] = 7
    (folder / META_FILE).write_text(json.dumps(meta))
    timeline_file = folder / meta["timeline"]["file"]
    expected = f"{folder / META_FILE} records 7 frames, {timeline_file} holds 5"
    with pytest.raises(IncompatibleModel, match=re.escape(expected)):
        load_timeline(folder)
    assert_model_still_loads(folder, model)


@pytest.mark.parametrize(
    ("edit", "error", "message"),
    [
        (lambda a: a.pop("steps"), CorruptModel, "missing arrays \\['steps'\\]"),
        (lambda a: a.update(extra=np.zeros(3)), CorruptModel, "unexpected arrays \\['extra'\\]"),
        (lambda a: a.update(steps=a["steps"][::-1].copy()), CorruptModel, "strictly increasing"),
        (
            lambda a: a.update(image_index=a["image_index"].astype(np.float32)),
            CorruptModel,
            "image_index must be int64",
        ),
        (lambda a: a.update(codes=np.full_like(a["codes"], np.nan)), CorruptModel, "finite"),
        (lambda a: a.update(epochs=a["epochs"][:2]), CorruptModel, "do not fit together"),
    ],
    ids=["missing", "unexpected", "steps", "dtype", "nan", "shapes"],
)
def test_arrays_that_do_not_fit_together(saved, edit, error, message) -> None:
    folder, model, timeline = saved
    arrays = arrays_of(timeline)
    edit(arrays)
    install_timeline(folder, npz_bytes(**arrays))
    with pytest.raises(error, match=message):
        load_timeline(folder)
    assert_model_still_loads(folder, model)


def test_a_zip_bomb_is_refused_before_it_is_inflated(saved, monkeypatch) -> None:
    folder, model, timeline = saved
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("codes.npy", b"\0" * 2_000_000)  # 2 MB of zeros in about 2 kB
    install_timeline(folder, buffer.getvalue())
    monkeypatch.setattr(store, "MAX_TIMELINE_BYTES", 1_000_000)
    with pytest.raises(CorruptModel, match="would unpack to 2,000,000 bytes"):
        load_timeline(folder)
    assert_model_still_loads(folder, model)


def test_an_oversized_timeline_file_is_refused_unread(saved, monkeypatch) -> None:
    folder, model, _ = saved
    monkeypatch.setattr(store, "MAX_TIMELINE_BYTES", 100)
    with pytest.raises(CorruptModel, match="more than the 100"):
        load_timeline(folder)
    assert_model_still_loads(folder, model)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("not-an-object", "model.json: the timeline entry must be a JSON object, got str"),
        (
            {"file": "../../etc/passwd", "sha256": "0" * 64},
            "model.json names an invalid timeline file '../../etc/passwd'",
        ),
        ({"file": "timeline-0123456789abcdef.npz"}, "model.json lacks a valid SHA-256 for the timeline file"),
    ],
    ids=["not-an-object", "path", "no-hash"],
)
def test_a_damaged_model_json_entry(saved, entry, message) -> None:
    folder, model, _ = saved
    meta = meta_of(folder)
    meta["timeline"] = entry
    (folder / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(CorruptModel, match="^" + re.escape(f"{folder}/{message}")):
        load_timeline(folder)
    read_metadata(folder)  # listing the store is not disturbed
    assert_model_still_loads(folder, model)


# ---------------------------------------------------------------------------------------------
# Decoder snapshots


def decoders_path(folder: Path) -> Path:
    return folder / meta_of(folder)["timeline"]["decoders"]["file"]


def install_decoders(folder: Path, data: bytes, **entry_changes) -> None:
    meta = meta_of(folder)
    decoders_path(folder).unlink()
    digest = hashlib.sha256(data).hexdigest()
    name = f"decoders-{digest[:16]}.safetensors"
    (folder / name).write_bytes(data)
    meta["timeline"]["decoders"].update(file=name, sha256=digest, **entry_changes)
    (folder / META_FILE).write_text(json.dumps(meta))


def test_missing_or_truncated_decoders(saved) -> None:
    folder, model, _ = saved
    path = decoders_path(folder)
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    with pytest.raises(CorruptModel, match="does not match the SHA-256"):
        load_timeline(folder)
    path.unlink()
    with pytest.raises(ModelNotFound, match="decoder snapshots file not found"):
        load_timeline(folder)
    assert load_timeline(folder, decoders=False).frames == 5  # the codes alone still read
    assert_model_still_loads(folder, model)


def test_decoders_of_another_model(saved) -> None:
    folder, model, _ = saved
    other = build_model(ModelConfig(kind="vae", latent_dim=2, hidden=(16,)))
    tensors = {f"0/{k}": v.contiguous() for k, v in decoder_snapshot(other).items()}
    install_decoders(folder, safetensors_bytes(tensors), frames=[0])
    with pytest.raises(IncompatibleModel, match="does not fit VAE dense 784-8-2"):
        load_timeline(folder)
    assert_model_still_loads(folder, model)


def test_decoders_in_another_encoding_or_at_impossible_frames(saved) -> None:
    folder, model, _ = saved
    data = decoders_path(folder).read_bytes()
    install_decoders(folder, data, encoding="float16")
    with pytest.raises(IncompatibleModel, match=f"{decoders_path(folder).name} uses encoding 'float16'"):
        load_timeline(folder)
    install_decoders(folder, data, encoding="int8-rows", frames=[0, 99])
    with pytest.raises(CorruptModel, match="decoder frames"):
        load_timeline(folder)
    assert_model_still_loads(folder, model)


def test_every_refusal_is_a_store_error() -> None:
    for error in (NoTimeline, CorruptModel, IncompatibleModel, ModelNotFound):
        assert issubclass(error, StoreError)


# ---------------------------------------------------------------------------------------------
# What mutation testing (make mutants) found unchecked


def test_the_entry_rounds_the_recording_time_and_says_when_there_are_no_decoders(tmp_path) -> None:
    model = tiny()
    timeline = fake_timeline(model, decoders=())
    timeline.record_seconds = 1.23456
    entry = meta_of(save_model(model, tmp_path / "m", timeline=timeline))["timeline"]
    assert entry["record_seconds"] == 1.235
    assert "decoders" in entry and entry["decoders"] is None


def test_a_decoder_snapshot_of_another_model_is_refused_before_anything_is_written(tmp_path) -> None:
    model = tiny()
    timeline = fake_timeline(model, decoders=(1,))
    timeline.decoders[1].pop(next(iter(timeline.decoders[1])))
    with pytest.raises(ValueError, match="the decoder snapshot of frame 1 does not hold this model's decoder tensors"):
        save_model(model, tmp_path / "m", timeline=timeline)
    assert not (tmp_path / "m").exists()


def test_float64_decoder_snapshots_are_stored_as_float32(tmp_path) -> None:
    model = tiny()
    timeline = fake_timeline(model, decoders=(0,))
    timeline.decoders[0] = {k: v.double() for k, v in timeline.decoders[0].items()}
    back = load_timeline(save_model(model, tmp_path / "m", timeline=timeline))
    for key, tensor in back.decoders[0].items():
        assert tensor.dtype == torch.float32, key
        if tensor.ndim == 1:
            assert torch.equal(tensor, timeline.decoders[0][key].float()), key


def test_terms_whose_names_hold_an_underscore_round_trip(tmp_path) -> None:
    model = tiny()
    timeline = fake_timeline(model, decoders=())
    timeline.train_terms["kl_weight"] = np.linspace(0.0, 1.0, timeline.frames)
    back = load_timeline(save_model(model, tmp_path / "m", timeline=timeline))
    np.testing.assert_array_equal(back.train_terms["kl_weight"], timeline.train_terms["kl_weight"])


def test_a_term_of_neither_split_is_unexpected(saved) -> None:
    folder, _, timeline = saved
    install_timeline(folder, npz_bytes(**arrays_of(timeline), val_kl=np.zeros(timeline.frames)))
    with pytest.raises(CorruptModel, match=r"unexpected arrays \['val_kl'\]"):
        load_timeline(folder)


@pytest.mark.parametrize("value", ["1.5", None, True, [2]])
def test_a_recording_time_or_image_count_that_is_not_a_number_reads_as_zero(saved, value) -> None:
    folder, _, _ = saved
    meta = meta_of(folder)
    meta["timeline"].update(record_seconds=value, loss_images=value)
    (folder / META_FILE).write_text(json.dumps(meta))
    back = load_timeline(folder)
    assert back.record_seconds == 0.0 and back.loss_images == 0


def test_a_timeline_that_unpacks_to_exactly_the_limit_is_read(saved, monkeypatch) -> None:
    folder, _, timeline = saved
    arrays = arrays_of(timeline)
    arrays["codes"] = np.zeros_like(arrays["codes"])  # compressible: the file is smaller than what it unpacks to
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    install_timeline(folder, buffer.getvalue())
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        unpacked = sum(member.file_size for member in archive.infolist())
    monkeypatch.setattr(store, "MAX_TIMELINE_BYTES", unpacked)
    assert load_timeline(folder, decoders=False).frames == timeline.frames
    monkeypatch.setattr(store, "MAX_TIMELINE_BYTES", unpacked - 1)
    with pytest.raises(CorruptModel, match=f"would unpack to {unpacked:,} bytes"):
        load_timeline(folder, decoders=False)


@pytest.mark.parametrize(
    ("member", "reason"),
    [(b"\x93NUMPY\x01\x00", "reading array header length"), (None, "reading array data")],
    ids=["header", "data"],
)
def test_an_npz_whose_array_cannot_be_read_names_the_file(saved, member, reason) -> None:
    folder, model, _ = saved
    if member is None:  # a whole header, then less data than it announces
        npy = io.BytesIO()
        np.save(npy, np.zeros(100))
        member = npy.getvalue()[:-50]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("codes.npy", member)
    path = install_timeline(folder, buffer.getvalue())
    with pytest.raises(CorruptModel, match=f"{re.escape(str(path))} is not a valid npz archive .*{reason}"):
        load_timeline(folder)
    assert_model_still_loads(folder, model)


def test_an_npz_member_that_fails_its_checksum_names_the_file(saved) -> None:
    folder, model, timeline = saved
    data = bytearray(npz_bytes(**arrays_of(timeline)))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        member = archive.getinfo("codes.npy")
    data[member.header_offset + 30 + len(member.filename) + 200] ^= 0xFF  # a byte of the stored array's data
    path = install_timeline(folder, bytes(data))
    with pytest.raises(CorruptModel, match=f"{re.escape(str(path))} is not a valid npz archive .*Bad CRC-32"):
        load_timeline(folder)
    assert_model_still_loads(folder, model)


def decoder_tensors(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load

    return dict(load(decoders_path(folder).read_bytes()))


def test_decoder_frames_must_lie_below_the_frame_count(saved) -> None:
    folder, _, _ = saved
    data = decoders_path(folder).read_bytes()
    install_decoders(folder, data, frames=[0, 5])  # 5 frames: index 5 is one past the end
    with pytest.raises(CorruptModel, match="decoder frames must be distinct frame indices below 5"):
        load_timeline(folder)


def test_decoder_snapshots_that_are_not_safetensors_name_the_file(saved) -> None:
    folder, _, _ = saved
    install_decoders(folder, b"not safetensors at all")
    with pytest.raises(CorruptModel, match=f"{decoders_path(folder).name} is not a valid safetensors file"):
        load_timeline(folder)


def test_each_fault_of_a_decoder_snapshot_is_named(saved) -> None:
    folder, model, _ = saved
    tensors = decoder_tensors(folder)
    weight = next(k.removeprefix("0/").removesuffix("#int8") for k in tensors if k.startswith("0/") and "#int8" in k)
    bias = next(k.removeprefix("0/") for k in tensors if k.startswith("0/") and "#" not in k)
    shape = tuple(model.state_dict()[weight].shape)
    cases = [
        ({f"0/{weight}#scale": None}, f"missing 0/{weight}#scale"),
        ({f"0/{weight}#int8": None}, f"missing 0/{weight}#int8"),
        (
            {f"0/{weight}#int8": tensors[f"0/{weight}#int8"].to(torch.int16)},
            f"{weight} of frame 0: torch.int16 {shape} where {shape} int8 is needed",
        ),
        (
            {f"0/{weight}#scale": torch.ones(shape[0] + 1)},
            f"{weight} of frame 0: torch.int8 {shape} where {shape} int8 is needed",
        ),
        ({f"0/{bias}": None}, f"missing 0/{bias}"),
        (
            {f"0/{bias}": torch.zeros(3)},
            f"0/{bias}: torch.float32 (3,) where {tuple(model.state_dict()[bias].shape)} float32 is needed",
        ),
        ({f"0/{bias}": None, "0/stray": torch.zeros(1)}, f"missing 0/{bias}; unexpected 0/stray"),
    ]
    for change, message in cases:
        edited = {**tensors, **change}
        install_decoders(folder, safetensors_bytes({k: v.contiguous() for k, v in edited.items() if v is not None}))
        with pytest.raises(IncompatibleModel, match=re.escape(message)):
            load_timeline(folder)


def test_a_decoder_file_with_many_faults_shows_five_and_counts_the_rest(saved) -> None:
    folder, _, _ = saved
    strays, tensors = {f"9/stray.{i}": torch.zeros(1) for i in range(7)}, decoder_tensors(folder)
    install_decoders(folder, safetensors_bytes({**tensors, **strays}))
    shown = "; ".join(f"unexpected 9/stray.{i}" for i in range(5))
    with pytest.raises(IncompatibleModel, match=re.escape(f": {shown}; and 2 more") + "$"):
        load_timeline(folder)
    for kept, count in ((6, "; and 1 more"), (5, "")):
        install_decoders(folder, safetensors_bytes({**tensors, **dict(list(strays.items())[:kept])}))
        with pytest.raises(IncompatibleModel, match=re.escape(f": {shown}{count}") + "$"):
            load_timeline(folder)
