"""Training jobs on Ray (vae.ray_jobs): same weights as the embedded queue, live progress, stop, a lost worker.

One local Ray with two CPUs for the whole module (starting one takes seconds); every job is a tiny seeded dense
model on a few hundred random images, so each trains in well under a second once its worker is up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import SEED, torch_threads
from vae.jobs import TrainingQueue
from vae.models import ModelConfig, build_model
from vae.queues import make_queue
from vae.training.trainer import TrainSettings

ray = pytest.importorskip("ray", reason="the Ray backend's tests need requirements-ray.txt")

from vae.ray_jobs import RayTrainingQueue  # noqa: E402 (after the skip: it is only usable with ray)

REPO = Path(__file__).resolve().parents[1]
TINY = ModelConfig(kind="ae", latent_dim=2, hidden=(16,))


@pytest.fixture(scope="module")
def local_ray():
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=200 * 1024**2,
        log_to_driver=False,
        runtime_env={
            # One thread per worker, waiting passively: two workers share the two cores with this process.
            "env_vars": {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)},
        },
    )
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def jobs(local_ray) -> RayTrainingQueue:
    return RayTrainingQueue(num_cpus=1)


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(SEED)
    return torch.rand(256, 1, 28, 28, generator=generator), torch.rand(64, 1, 28, 28, generator=generator)


def test_two_jobs_at_once_complete_with_the_embedded_queues_weights(jobs, data) -> None:
    train_images, test_images = data
    settings = [TrainSettings(epochs=2, batch_size=64, seed=seed) for seed in (SEED, SEED + 1)]
    remote = [jobs.submit(TINY, s, train_images, test_images, f"seed {s.seed}") for s in settings]
    with torch_threads(1):  # the workers train on one thread each (OMP_NUM_THREADS=1, num_cpus=1)
        local = TrainingQueue()
        embedded = [local.submit(TINY, s, train_images, test_images) for s in settings]
        assert all(job.wait(120) for job in embedded)
    assert all(job.wait(180) for job in remote), [job.snapshot() for job in remote]
    for job, twin in zip(remote, embedded):
        snapshot = job.snapshot()
        assert (snapshot.status, snapshot.message) == ("completed", twin.snapshot().message)
        assert (snapshot.epoch, snapshot.batch, snapshot.batches_per_epoch) == (2, 4, 4)
        assert [h["epoch"] for h in snapshot.history] == [1, 2] and snapshot.fraction == 1.0
        ours, theirs = job.result.model.state_dict(), twin.result.model.state_dict()
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours), f"{job.label}: weights differ"
        assert [r.to_dict()["test"] for r in job.result.history] == [h["test"] for h in snapshot.history]
        assert job.result.model.training == twin.result.model.training
        assert jobs.position(job) == 0


def test_progress_is_seen_while_the_job_runs(jobs, data) -> None:
    train_images, test_images = data
    job = jobs.submit(TINY, TrainSettings(epochs=40, batch_size=16, seed=SEED), train_images, test_images)
    seen = []
    deadline = time.monotonic() + 180
    while not job.wait(0.05) and time.monotonic() < deadline:
        snapshot = job.snapshot()
        if snapshot.status == "running":
            seen.append((snapshot.batch, len(snapshot.history)))
    assert job.snapshot().status == "completed"
    assert any(batch > 0 for batch, _ in seen), "no batch progress before the job finished"
    # The last epoch's record can arrive before the result does, so a running job may show all 40: count the others.
    epochs_seen = sorted({n for _, n in seen if n < 40})
    assert len(epochs_seen) >= 2, f"history did not grow while running: {sorted({n for _, n in seen})}"
    assert len(job.snapshot().history) == 40


def wait_for_a_batch(job, timeout: float = 180) -> None:
    """Until the job's worker has trained its first batch (its start, with a cold worker, takes seconds)."""
    deadline = time.monotonic() + timeout
    while job.snapshot().batch == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.snapshot().batch > 0, f"no batch within {timeout} s: {job.snapshot()}"


def test_stop_ends_the_job_stopped_with_its_weights(jobs, data) -> None:
    train_images, _ = data
    job = jobs.submit(TINY, TrainSettings(epochs=10_000, batch_size=16, seed=SEED), train_images)
    wait_for_a_batch(job)
    job.stop()
    asked = time.monotonic()
    assert job.wait(30), "the job did not stop"
    assert time.monotonic() - asked < 10
    snapshot = job.snapshot()
    assert snapshot.status == "stopped" and snapshot.epoch < 10_000
    assert job.result is not None and job.result.status == "stopped"
    assert len(job.result.history) == len(snapshot.history)
    weights = job.result.model.state_dict()  # the weights came back and were rebuilt on the driver
    assert weights.keys() == build_model(TINY).state_dict().keys()
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_a_killed_worker_fails_its_job_and_the_queue_goes_on(jobs, data) -> None:
    train_images, test_images = data
    job = jobs.submit(TINY, TrainSettings(epochs=10_000, batch_size=16, seed=SEED), train_images)
    wait_for_a_batch(job)
    pid = jobs.worker_pid(job)
    assert pid is not None and pid != os.getpid()
    os.kill(pid, signal.SIGKILL)
    assert job.wait(60), "a killed worker left its job unfinished"
    snapshot = job.snapshot()
    assert snapshot.status == "failed"
    assert "WorkerCrashedError" in snapshot.message or "died" in snapshot.message.lower(), snapshot.message
    after = jobs.submit(TINY, TrainSettings(epochs=1, batch_size=64, seed=SEED), train_images, test_images)
    assert after.wait(180) and after.snapshot().status == "completed"


def test_make_queue_knows_its_words(local_ray) -> None:
    assert type(make_queue("")) is TrainingQueue and type(make_queue("local")) is TrainingQueue
    assert type(make_queue(None)) is type(make_queue(os.environ.get("VAE_JOBS", "")))
    assert isinstance(make_queue("ray"), RayTrainingQueue)
    cluster = make_queue("ray://head:10001", num_cpus=2)
    assert (cluster.address, cluster.num_cpus) == ("ray://head:10001", 2)
    assert make_queue("auto").address == "auto"
    for word in ("Ray", "thread", "ray://", "http://head:10001"):
        with pytest.raises(ValueError, match="VAE_JOBS must be"):
            make_queue(word)
    with pytest.raises(ValueError, match="num_cpus must be a positive integer"):
        make_queue("ray", num_cpus=0)


def test_make_queue_reads_vae_jobs(monkeypatch, local_ray) -> None:
    monkeypatch.setenv("VAE_JOBS", "ray")
    monkeypatch.setenv("VAE_JOBS_CPUS", "2")
    queue = make_queue()
    assert isinstance(queue, RayTrainingQueue) and queue.num_cpus == 2
    monkeypatch.setenv("VAE_JOBS_CPUS", "two")
    with pytest.raises(ValueError, match="VAE_JOBS_CPUS must be a positive integer"):
        make_queue()
    monkeypatch.setenv("VAE_JOBS", "cluster")
    with pytest.raises(ValueError, match="got 'cluster'"):
        make_queue()


def test_importing_vae_jobs_leaves_ray_out() -> None:
    code = "import sys, vae.jobs, vae.queues, vae.ray_jobs, app.cache; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr


WALL_TIME_KEYS = {"seconds", "train_seconds", "created"}


def without_wall_times(value):
    """The JSON with every wall-time field left out, at any depth."""
    if isinstance(value, dict):
        return {k: without_wall_times(v) for k, v in value.items() if k not in WALL_TIME_KEYS}
    if isinstance(value, list):
        return [without_wall_times(v) for v in value]
    return value


def test_a_studys_variants_as_ray_tasks_save_the_sequential_result(local_ray, mnist_subset, tmp_path) -> None:
    import json

    import numpy as np

    from vae.ray_jobs import variant_mapper
    from vae.studies.registry import run_study, save_result
    from vae.studies.runner import StudySettings

    settings = StudySettings(epochs=1, batch_size=64, betas=(0.0, 1.0), map_points=100, seed=SEED)
    with torch_threads(1):  # as the workers train
        sequential = run_study("beta", settings, data=mnist_subset)
    parallel = run_study("beta", settings, data=mnist_subset, map_variants=variant_mapper())
    paths = [save_result(result, tmp_path / name) for result, name in ((sequential, "a"), (parallel, "b"))]
    a, b = (json.loads(path.read_text()) for path in paths)
    assert [row["key"] for row in b["rows"]] == ["beta-0", "beta-1"]
    assert without_wall_times(a) == without_wall_times(b)
    with np.load(paths[0].with_suffix(".npz")) as left, np.load(paths[1].with_suffix(".npz")) as right:
        assert sorted(left.files) == sorted(right.files) and len(left.files) > 1
        for name in left.files:
            assert np.array_equal(left[name], right[name]), name


def test_the_studies_cli_refuses_a_bad_jobs_word(capsys) -> None:
    from vae.studies.cli import main

    assert main(["run", "--study", "beta", "--jobs", "cluster"]) == 2
    assert "VAE_JOBS must be" in capsys.readouterr().err


def test_the_train_page_on_ray_shows_progress_while_both_jobs_run(local_ray, tmp_path, monkeypatch) -> None:
    """VAE_JOBS=ray: the Train page's jobs are Ray tasks, and the page draws their progress while they run."""
    import shutil

    from app import cache
    from tests.conftest import open_dashboard

    if not (REPO / "data" / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file():
        pytest.skip("MNIST not fetched: run `python -m vae.data fetch`")
    shutil.copytree(REPO / "models", tmp_path / "models")
    monkeypatch.setenv("VAE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VAE_JOBS", "ray")
    cache.training_queue.clear()  # the server's one queue is made from VAE_JOBS on first use
    try:
        at = open_dashboard("app_pages/train.py")
        for kind in ("ae", "vae"):
            at.text_input(key=f"{kind}_hidden").set_value("16")
            at.number_input(key=f"{kind}_epochs").set_value(1)
            at.number_input(key=f"{kind}_batch").set_value(512)
        at.run()
        at.button[0].click()  # Train both
        at.run()
        assert not at.exception
        assert isinstance(cache.training_queue(), RayTrainingQueue)
        jobs = [at.session_state["ae_job"], at.session_state["vae_job"]]
        running_bars: list[str] = []
        deadline = time.monotonic() + 240
        while not all(job.snapshot().finished for job in jobs) and time.monotonic() < deadline:
            snapshots = [job.snapshot() for job in jobs]
            at.run()  # what the page's redraw every second does
            assert not at.exception
            if any(s.status == "running" and s.batch > 0 for s in snapshots):
                running_bars += [p.proto.text for p in at.get("progress")]
            time.sleep(0.3)
        assert [job.snapshot().status for job in jobs] == ["completed", "completed"]
        # A bar drawn mid-training: the job running, some batch of an epoch done, on the page's own words.
        assert any(t.startswith("running · epoch") and " · batch 0/" not in t for t in running_bars), running_bars
        assert all(job.result.model.config.hidden == (16,) for job in jobs)
        at.run()
        assert sum("completed" in s.value for s in at.success) == 2
    finally:
        cache.training_queue.clear()
