"""Recording a timeline while training: which images and steps, that recording changes no weight, that the
last frame is the final model, stops and divergence, decoder snapshots, and what the page computes from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import SEED
from vae.metrics import embed_images, knn_accuracy_within, overlap_matrix
from vae.models import ModelConfig, build_model
from vae.training import cli
from vae.training import trainer as train_module
from vae.training.timeline import (
    DEFAULT_DECODER_STEPS,
    Timeline,
    TimelineSettings,
    common_steps,
    decode_with_snapshots,
    decoder_state_keys,
    dequantize_rows,
    frame_at,
    frame_metrics,
    is_recording_step,
    plane_range,
    quantize_rows,
    recording_steps,
    stratified_sample,
    view_of_frames,
    with_decoder,
)
from vae.training.trainer import TrainSettings, train

TINY_VAE = ModelConfig(kind="vae", latent_dim=2, hidden=(32,))
TINY_AE = ModelConfig(kind="ae", latent_dim=2, hidden=(32,))
SMALL = TimelineSettings(points=200, loss_images=100, decoder_steps=(0, 4, 16))


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def train_recorded(config, data, settings, timeline=SMALL, **kwargs):
    train_images, train_labels, test_images, test_labels = data
    return train(
        config,
        train_images,
        test_images,
        settings,
        train_labels=train_labels,
        test_labels=test_labels,
        timeline=timeline,
        **kwargs,
    )


@pytest.fixture(scope="module")
def small_data(mnist_subset):
    """640 training and 500 test images: 10 batches of 64 per epoch."""
    train_images, train_labels, test_images, test_labels = mnist_subset
    return train_images[:640], train_labels[:640], test_images, test_labels


# ---------------------------------------------------------------------------------------------
# Which images, which steps


def test_the_sample_is_stratified_fixed_and_nested() -> None:
    labels = np.repeat(np.arange(10), [50, 60, 70, 80, 90, 100, 110, 120, 130, 5])  # class 9 is rare
    pick = stratified_sample(labels, 200)
    assert pick.dtype == np.int64 and len(pick) == 200 and len(np.unique(pick)) == 200
    assert np.all(np.diff(pick) > 0)
    counts = np.bincount(labels[pick], minlength=10)
    # Nine classes share what the rare one cannot give: 5 of class 9, the rest as equal as can be.
    assert counts[9] == 5 and counts[:9].max() - counts[:9].min() <= 1
    assert np.array_equal(pick, stratified_sample(labels, 200))  # the same set every time
    assert set(stratified_sample(labels, 100)) <= set(pick)  # the loss images are among the points
    assert not np.array_equal(pick, stratified_sample(labels, 200, seed=1))


@pytest.mark.parametrize("n", [0, -1, 2.5, True, 1001])
def test_the_sample_refuses_impossible_sizes(n) -> None:
    with pytest.raises(ValueError, match="n must be"):
        stratified_sample(np.arange(1000) % 10, n)


def test_recording_steps_are_geometric_plus_every_epoch_end() -> None:
    assert [s for s in range(40) if is_recording_step(s, 10)] == [0, 1, 2, 4, 8, 10, 16, 20, 30, 32]
    steps = recording_steps(469, 30)  # the shipped 2-D models: batch 128, 30 epochs
    assert steps[0] == 0 and steps[-1] == 469 * 30 and np.all(np.diff(steps) > 0)
    assert set(469 * np.arange(1, 31)) <= set(steps.tolist())
    assert {2**k for k in range(14)} <= set(steps.tolist())
    assert len(recording_steps(469, 1)) >= 10  # even one epoch gives at least ten frames


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"points": 5}, "points"),
        ({"loss_images": 3000}, "loss_images"),
        ({"points": 100, "loss_images": 200}, "exceed"),
        ({"decoder_steps": (-1,)}, "decoder_steps"),
        ({"decoder_steps": (4, 4)}, "distinct"),
        ({"points": 2.5}, "points"),
    ],
)
def test_invalid_timeline_settings_are_refused(fields, message) -> None:
    with pytest.raises(ValueError, match=message):
        TimelineSettings(**fields)


def test_recording_needs_labels_and_enough_images(small_data) -> None:
    train_images, train_labels, test_images, test_labels = small_data
    settings = TrainSettings(epochs=1, batch_size=64)
    with pytest.raises(ValueError, match="needs test_images, test_labels and train_labels"):
        train(TINY_AE, train_images, test_images, settings, timeline=SMALL)
    with pytest.raises(ValueError, match="records 5000 test images"):
        train_recorded(TINY_AE, small_data, settings, TimelineSettings(points=5000))


# ---------------------------------------------------------------------------------------------
# Recording during training


@pytest.mark.parametrize("config", [TINY_AE, TINY_VAE], ids=["ae", "vae"])
def test_a_recorded_training_has_a_frame_at_every_recording_step(config, small_data) -> None:
    frames = []
    result = train_recorded(
        config, small_data, TrainSettings(epochs=3, batch_size=64, seed=SEED), on_frame=frames.append
    )
    timeline = result.timeline
    assert result.status == "completed" and isinstance(timeline, Timeline)
    timeline.check(config.latent_dim)  # dtypes and shapes as the store writes them
    assert timeline.steps.tolist() == recording_steps(10, 3).tolist() == [0, 1, 2, 4, 8, 10, 16, 20, 30]
    assert np.allclose(timeline.epochs, timeline.steps / 10)
    assert timeline.codes.shape == (9, 200, 2) and timeline.codes.dtype == np.float32
    assert np.array_equal(timeline.image_index, stratified_sample(small_data[3], 200))
    terms = {"loss", "recon"} | ({"kl"} if config.kind == "vae" else set())
    assert set(timeline.train_terms) == set(timeline.test_terms) == terms
    # Learning shows in the per-frame losses: the last frame is well below the untrained first.
    assert timeline.test_terms["loss"][-1] < 0.95 * timeline.test_terms["loss"][0]
    assert timeline.train_terms["loss"][-1] < 0.95 * timeline.train_terms["loss"][0]
    # Frames were reported as they came, with the codes that were kept.
    assert [f.step for f in frames] == timeline.steps.tolist()
    assert all(np.array_equal(f.codes, timeline.codes[f.index]) for f in frames)
    # Decoders at the requested steps the training reached; never the last (the model itself is that one).
    assert sorted(timeline.decoders) == [timeline.steps.tolist().index(s) for s in (0, 4, 16)]
    assert timeline.record_seconds > 0
    assert all(record.seconds > 0 for record in result.history)


@pytest.mark.parametrize("config", [TINY_AE, TINY_VAE], ids=["ae", "vae"])
def test_recording_changes_no_weight(config, small_data) -> None:
    settings = TrainSettings(epochs=2, batch_size=64, seed=SEED)
    recorded = train_recorded(config, small_data, settings)
    plain = train(config, small_data[0], small_data[2], settings)
    assert plain.timeline is None and recorded.timeline is not None
    a, b = weights(recorded.model), weights(plain.model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r.test for r in recorded.history] == [r.test for r in plain.history]


@pytest.mark.parametrize("config", [TINY_AE, TINY_VAE], ids=["ae", "vae"])
def test_the_last_frame_is_the_final_model(config, small_data) -> None:
    result = train_recorded(config, small_data, TrainSettings(epochs=2, batch_size=64, seed=SEED))
    timeline = result.timeline
    final = embed_images(result.model, small_data[2][timeline.image_index]).numpy()
    np.testing.assert_allclose(timeline.codes[-1], final, rtol=0, atol=1e-6)
    # ...and not merely any frame: the first one (the untrained model) is somewhere else entirely.
    assert np.abs(timeline.codes[0] - final).max() > 0.1


def test_a_stopped_training_ends_on_a_frame_of_its_final_weights(small_data) -> None:
    calls = []

    def stop_after_13_batches() -> bool:
        calls.append(1)
        return len(calls) > 13

    batches = []
    result = train_recorded(
        TINY_AE,
        small_data,
        TrainSettings(epochs=5, batch_size=64, seed=SEED),
        should_stop=stop_after_13_batches,
        on_batch=batches.append,
    )
    assert result.status == "stopped" and len(batches) == 12  # 13 polls: 12 batches and the one between epochs
    timeline = result.timeline
    assert timeline.steps.tolist() == [0, 1, 2, 4, 8, 10, 12]  # 12: where it stopped, between two steps
    final = embed_images(result.model, small_data[2][timeline.image_index]).numpy()
    np.testing.assert_allclose(timeline.codes[-1], final, rtol=0, atol=1e-6)


def test_a_diverged_training_drops_the_frames_of_the_weights_it_dropped(monkeypatch, small_data) -> None:
    real_build = train_module.build_model

    def build_model_that_blows_up_in_epoch_three(config):
        model = real_build(config)
        real_loss, training_calls = model.loss, []

        def loss(x, labels=None):
            terms = real_loss(x, labels)
            if model.training:  # the recorder's evaluations run in eval mode and do not count
                training_calls.append(1)
                if len(training_calls) == 25:  # epoch 3, batch 5
                    terms["loss"] = terms["loss"] * float("nan")
            return terms

        model.loss = loss
        return model

    monkeypatch.setattr(train_module, "build_model", build_model_that_blows_up_in_epoch_three)
    result = train_recorded(TINY_AE, small_data, TrainSettings(epochs=4, batch_size=64, seed=SEED))
    assert result.status == "diverged" and len(result.history) == 2
    timeline = result.timeline
    assert timeline.steps.tolist() == [0, 1, 2, 4, 8, 10, 16, 20]  # step 24, recorded in epoch 3, is gone
    final = embed_images(result.model, small_data[2][timeline.image_index]).numpy()
    np.testing.assert_allclose(timeline.codes[-1], final, rtol=0, atol=1e-6)


def test_a_class_aware_model_records_its_class_term(small_data) -> None:
    config = ModelConfig(kind="ae", latent_dim=2, hidden=(32,), class_weight=1.0)
    timeline = train_recorded(config, small_data, TrainSettings(epochs=1, batch_size=64, seed=SEED)).timeline
    assert "class" in timeline.test_terms and np.isfinite(timeline.test_terms["class"]).all()


def test_the_default_settings_keep_the_documented_decoders() -> None:
    assert TimelineSettings().decoder_steps == DEFAULT_DECODER_STEPS == (0, 32, 256, 2048)
    assert all(is_recording_step(step, 469) for step in DEFAULT_DECODER_STEPS)  # each is a frame


# ---------------------------------------------------------------------------------------------
# Decoder snapshots


def test_int8_rows_round_trip_within_half_a_step() -> None:
    generator = torch.Generator().manual_seed(SEED)
    weight = torch.randn(64, 33, generator=generator) * torch.logspace(-3, 1, 64)[:, None]  # rows of every scale
    weight[5] = 0.0  # an all-zero row
    q, scale = quantize_rows(weight)
    assert q.dtype == torch.int8 and q.shape == weight.shape and scale.shape == (64,)
    error = (dequantize_rows(q, scale) - weight).abs()
    assert torch.all(error <= scale[:, None] / 2 + 1e-12)
    assert torch.equal(dequantize_rows(q, scale)[5], weight[5])
    kernel = torch.randn(8, 4, 3, 3, generator=generator)  # a conv kernel: rows along the first axis
    q, scale = quantize_rows(kernel)
    assert dequantize_rows(q, scale).shape == kernel.shape
    assert (dequantize_rows(q, scale) - kernel).abs().max() <= scale.max() / 2 + 1e-7


@pytest.mark.parametrize(
    "config",
    [
        TINY_AE,
        TINY_VAE,
        ModelConfig(kind="ae", latent_dim=2, hidden=(16,), tied=True),
        ModelConfig(kind="vae", arch="conv", latent_dim=2, hidden=(16,)),
    ],
    ids=["ae", "vae", "tied-ae", "conv-vae"],
)
def test_a_snapshot_draws_as_the_decoder_did_then(config) -> None:
    torch.manual_seed(SEED)
    before = build_model(config).eval()
    snapshot = {k: v.clone() for k, v in before.state_dict().items() if k in decoder_state_keys(before)}
    after = build_model(config).eval()  # other weights: "the final model"
    with torch.no_grad():
        for tensor in after.parameters():
            tensor.add_(0.5)
    z = torch.randn(6, config.latent_dim, generator=torch.Generator().manual_seed(1))
    drawn = with_decoder(after, snapshot)
    with torch.no_grad():
        assert torch.allclose(drawn.decode(z), before.decode(z), atol=1e-6)
        assert not torch.allclose(after.decode(z), before.decode(z), atol=1e-3)
        x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(2))
        if not config.tied:  # the encoder stays the final one (a tied decoder *is* the encoder, transposed)
            assert torch.equal(drawn.embed(x), after.embed(x))
    with pytest.raises(ValueError, match="does not fit"):
        with_decoder(after, {k: v for k, v in list(snapshot.items())[1:]})


def test_decodes_at_a_pinned_point_follow_the_kept_decoders(small_data) -> None:
    # A high rate, so that 30 batches take the decoder visibly away from where it started.
    result = train_recorded(TINY_VAE, small_data, TrainSettings(epochs=3, batch_size=64, learning_rate=1e-2, seed=SEED))
    timeline = result.timeline
    snapshots = {frame: with_decoder(result.model, state) for frame, state in timeline.decoders.items()}
    pin = np.array([0.3, -0.2], dtype=np.float32)
    drawings = decode_with_snapshots(result.model, snapshots, pin, final_frame=timeline.frames - 1)
    assert [frame for frame, _ in drawings] == [*sorted(timeline.decoders), timeline.frames - 1]
    assert all(image.shape == (28, 28) and 0 <= image.min() and image.max() <= 1 for _, image in drawings)
    z = torch.from_numpy(pin[None])
    with torch.no_grad():
        torch.manual_seed(SEED)  # the weights training started from
        untrained = build_model(TINY_VAE).eval().decode(z)[0, 0].numpy()
        final = result.model.decode(z)[0, 0].numpy()
    assert np.array_equal(drawings[-1][1], final)
    np.testing.assert_allclose(drawings[0][1], untrained, atol=0.01)  # frame 0 kept the untrained decoder
    assert np.abs(drawings[0][1] - final).max() > 0.05


# ---------------------------------------------------------------------------------------------
# What the page computes


def test_frame_metrics_tell_mixed_classes_from_separated_ones() -> None:
    rng = np.random.default_rng(SEED)
    labels = np.arange(600) % 3
    mixed = rng.normal(size=(600, 2))
    centres = np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0]])
    apart = centres[labels] + rng.normal(size=(600, 2))
    codes = np.stack([mixed, apart]).astype(np.float32)  # [2, 600, 2]
    metrics = frame_metrics(codes, labels)
    assert metrics["knn"][1] == 1.0 and metrics["overlap"][1] == 0.0
    assert metrics["knn"][0] < 0.5 and metrics["overlap"][0] > 0.5  # about 1/3 and 2/3 by chance
    # The same numbers as the metrics module's own functions give for one frame.
    assert metrics["knn"][0] == knn_accuracy_within(mixed, labels, k=5)
    assert metrics["overlap"][0] == pytest.approx(1 - np.mean(np.diag(overlap_matrix(mixed, labels, k=5, n_classes=3))))


def test_the_final_frames_view_is_applied_to_every_frame() -> None:
    rng = np.random.default_rng(SEED)
    codes2 = rng.normal(size=(3, 50, 2)).astype(np.float32)
    view, points = view_of_frames(codes2)
    assert view.name == "identity" and np.array_equal(points, codes2)  # a 2-D latent is shown as it is
    codes3 = rng.normal(size=(4, 50, 3)).astype(np.float32) * np.array([5.0, 1.0, 0.1], dtype=np.float32)
    view, points = view_of_frames(codes3)
    assert view.name == "pca" and points.shape == (4, 50, 2) and points.dtype == np.float32
    np.testing.assert_allclose(points[-1], view.embedding_, atol=1e-5)  # fitted on the final frame...
    np.testing.assert_allclose(points[0], view.transform(codes3[0]), atol=1e-6)  # ...applied to the others


def test_ranges_steps_and_frames_of_a_shared_slider() -> None:
    (x0, x1), (y0, y1) = plane_range(np.array([[0.0, 0.0], [10.0, 2.0]]))
    assert (x0, x1) == pytest.approx((-0.5, 10.5)) and (y0, y1) == pytest.approx((-0.1, 2.1))
    union = common_steps([0, 1, 2, 4, 10], [0, 1, 2, 4, 8, 16])
    assert union.tolist() == [0, 1, 2, 4, 8, 10, 16]
    assert frame_at(np.array([0, 1, 2, 4, 10]), union).tolist() == [0, 1, 2, 3, 3, 4, 4]


# ---------------------------------------------------------------------------------------------
# Where timelines are asked for: the command line and background jobs


def test_the_command_line_records_a_timeline_unless_told_not_to(tmp_path, mnist_subset) -> None:
    from vae.store import NoTimeline, load_model, load_timeline

    data = str(Path(__file__).resolve().parents[1] / "data")
    common = [
        "--kind",
        "ae",
        "--hidden",
        "16",
        "--epochs",
        "1",
        "--batch-size",
        "100",
        "--limit",
        "500",
        "--data-dir",
        data,
    ]
    assert cli.main([*common, "--timeline-decoders", "0,2", "--out", str(tmp_path / "with")]) == 0
    timeline = load_timeline(tmp_path / "with")
    assert timeline.steps.tolist() == [0, 1, 2, 4, 5] and sorted(timeline.decoders) == [0, 2]  # 5 batches
    assert timeline.points == 2000 and timeline.loss_images == 500  # --limit 500: as many training images as there are
    assert cli.main([*common, "--timeline-decoders", "none", "--out", str(tmp_path / "bare")]) == 0
    assert load_timeline(tmp_path / "bare").decoders == {} and not list((tmp_path / "bare").glob("decoders-*"))
    assert cli.main([*common, "--no-timeline", "--out", str(tmp_path / "without")]) == 0
    load_model(tmp_path / "without")
    with pytest.raises(NoTimeline):
        load_timeline(tmp_path / "without")


def test_the_command_line_refuses_bad_decoder_steps(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--timeline-decoders", "0,abc", "--out", str(tmp_path / "x")])
    assert "--timeline-decoders takes comma-separated batch counts" in capsys.readouterr().err
    assert cli.main(["--timeline-decoders", "4,4", "--out", str(tmp_path / "x")]) == 2
    assert "distinct" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_a_job_reports_its_latest_frame_and_refuses_a_timeline_without_labels(small_data) -> None:
    from vae.jobs import TrainingQueue

    train_images, train_labels, test_images, test_labels = small_data
    jobs = TrainingQueue()
    with pytest.raises(ValueError, match="needs test_images, train_labels and test_labels"):
        jobs.submit(TINY_AE, TrainSettings(epochs=1, batch_size=64), train_images, test_images, timeline=SMALL)
    job = jobs.submit(
        TINY_AE,
        TrainSettings(epochs=2, batch_size=64, seed=SEED),
        train_images,
        test_images,
        train_labels=train_labels,
        test_labels=test_labels,
        timeline=SMALL,
    )
    assert job.wait(120) and job.snapshot().status == "completed"
    snapshot = job.snapshot()
    assert snapshot.frame.step == 20 and snapshot.frame.index == job.result.timeline.frames - 1
    assert np.array_equal(snapshot.frame.codes, job.result.timeline.codes[-1])
    assert np.array_equal(snapshot.frame_labels, test_labels.numpy()[job.result.timeline.image_index])
    plain = jobs.submit(TINY_AE, TrainSettings(epochs=1, batch_size=64), train_images, test_images)
    assert plain.wait(120) and plain.snapshot().frame is None and plain.result.timeline is None
