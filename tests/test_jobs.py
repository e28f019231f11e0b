"""Background training: jobs run in order on one worker, report progress, stop, and survive failures."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import SEED
from vae.jobs import TrainingQueue
from vae.models import ModelConfig
from vae.training.trainer import TrainSettings

TINY = ModelConfig(kind="vae", latent_dim=2, hidden=(16,))


@pytest.fixture
def data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(SEED)
    return torch.rand(256, 1, 28, 28, generator=generator), torch.rand(64, 1, 28, 28, generator=generator)


def test_jobs_run_in_order_and_report_progress(data) -> None:
    train_images, test_images = data
    jobs = TrainingQueue()
    first = jobs.submit(TINY, TrainSettings(epochs=2, batch_size=64, seed=SEED), train_images, test_images, "first")
    second = jobs.submit(TINY, TrainSettings(epochs=1, batch_size=64, seed=SEED), train_images, test_images)
    assert first.wait(60) and second.wait(60)
    a, b = first.snapshot(), second.snapshot()
    assert (a.status, b.status) == ("completed", "completed")
    assert a.label == "first" and b.label == TINY.describe()
    assert [h["epoch"] for h in a.history] == [1, 2] and set(a.history[0]["test"]) == {"loss", "recon", "kl"}
    assert (a.epoch, a.batch, a.batches_per_epoch) == (2, 4, 4)
    assert a.fraction == 1.0 and a.finished and a.elapsed > 0
    assert first.result is not None and first.result.status == "completed"
    assert jobs.position(first) == 0


def test_a_job_queued_behind_another_waits_its_turn(data) -> None:
    train_images, _ = data
    jobs = TrainingQueue()
    long = jobs.submit(TINY, TrainSettings(epochs=200, batch_size=64), train_images)
    queued = jobs.submit(TINY, TrainSettings(epochs=1, batch_size=64), train_images)
    assert queued.snapshot().status == "queued"
    assert jobs.position(queued) >= 1
    queued.stop()  # stopping a queued job means it never starts
    long.stop()
    assert long.wait(60) and queued.wait(60)
    assert long.snapshot().status == "stopped"
    assert queued.snapshot().status == "stopped" and queued.result is None


def test_a_failing_job_is_reported_and_the_worker_goes_on(data, monkeypatch) -> None:
    train_images, _ = data
    jobs = TrainingQueue()
    import vae.jobs

    real_train = vae.jobs.train
    monkeypatch.setattr(vae.jobs, "train", lambda *a, **k: (_ for _ in ()).throw(MemoryError("out of memory")))
    failing = jobs.submit(TINY, TrainSettings(epochs=1, batch_size=64), train_images)
    assert failing.wait(60)
    assert failing.snapshot().status == "failed" and "out of memory" in failing.snapshot().message
    monkeypatch.setattr(vae.jobs, "train", real_train)
    after = jobs.submit(TINY, TrainSettings(epochs=1, batch_size=64), train_images)
    assert after.wait(60) and after.snapshot().status == "completed"


def test_submit_refuses_what_could_never_run(data) -> None:
    train_images, _ = data
    jobs = TrainingQueue()
    with pytest.raises(ValueError, match="larger than the training set"):
        jobs.submit(TINY, TrainSettings(batch_size=512), train_images)
    with pytest.raises(ValueError, match="PCA"):
        jobs.submit(ModelConfig(kind="pca", hidden=()), TrainSettings(batch_size=8), train_images)
    with pytest.raises(ValueError, match="labels"):
        jobs.submit(ModelConfig(kind="ae", hidden=(8,), class_weight=1.0), TrainSettings(batch_size=8), train_images)


def test_a_study_job_takes_its_turn_on_the_queue_and_saves_its_result(data, mnist_subset, tmp_path, monkeypatch):
    import dataclasses

    import vae.jobs
    from vae.jobs import StudyJob
    from vae.studies.registry import load_result, run_study
    from vae.studies.runner import StudySettings

    settings = StudySettings(epochs=1, batch_size=64, betas=(0.0, 1.0), map_points=100, seed=SEED)
    seen = []

    def on_subset(study, settings, data_dir=None, **kwargs):
        seen.append(training.snapshot().status)  # what the training job ahead was doing when the study began
        progress = kwargs.pop("progress")
        return run_study(
            study, settings, data=mnist_subset, progress=lambda f, m: (progress(f, m), seen.append(f)), **kwargs
        )

    monkeypatch.setattr(vae.jobs, "run_study", on_subset)
    train_images, test_images = data
    jobs = TrainingQueue()
    training = jobs.submit(TINY, TrainSettings(epochs=2, batch_size=64, seed=SEED), train_images, test_images)
    study = jobs.enqueue(StudyJob("beta", settings, str(tmp_path / "out")))
    assert study.snapshot().status in ("queued", "running")
    assert study.wait(120), "the study did not finish"
    snapshot = study.snapshot()
    assert snapshot.status == "completed" and snapshot.fraction == 1.0 and "saved" in snapshot.message
    assert seen[0] == "completed"  # one job at a time: the study waited for the training
    assert seen[1:] == [0.0, 0.5, 1.0]
    assert [row["key"] for row in load_result(tmp_path / "out", "beta").rows] == ["beta-0", "beta-1"]

    stopped = StudyJob("beta", dataclasses.replace(settings, betas=(2.0,)), str(tmp_path / "out"))
    stopped.stop()
    jobs.enqueue(stopped)
    assert stopped.wait(60) and stopped.snapshot().status == "stopped"
    assert [row["key"] for row in load_result(tmp_path / "out", "beta").rows] == ["beta-0", "beta-1"]  # kept

    monkeypatch.setattr(vae.jobs, "run_study", lambda *a, **k: (_ for _ in ()).throw(MemoryError("out of memory")))
    failing = jobs.enqueue(StudyJob("beta", settings, str(tmp_path / "out")))
    assert failing.wait(60) and failing.snapshot().status == "failed" and "out of memory" in failing.snapshot().message
    after = jobs.submit(TINY, TrainSettings(epochs=1, batch_size=64), train_images)
    assert after.wait(60) and after.snapshot().status == "completed"  # the worker survived
    with pytest.raises(ValueError, match="study must be one of"):
        StudyJob("gan", settings, str(tmp_path))
