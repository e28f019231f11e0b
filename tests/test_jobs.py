"""Background training: jobs run in order on one worker, report progress, stop, and survive failures."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

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
            study, settings, data=mnist_subset, progress=lambda f, m: (progress(f, m), seen.append((f, m))), **kwargs
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
    # Each variant's start and the end, with each variant's one epoch reported between its start and the next.
    assert [f for f, m in seen[1:] if "epoch" not in m] == [0.0, 0.5, 1.0]
    assert [f for f, m in seen[1:] if "epoch 1/1" in m] == [0.5, 1.0]
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


# ---------------------------------------------------------------------------------------------
# The queue's order, one job at a time, positions and stops: a stand-in for train() that records when each
# job starts and ends and can be held at its start, so nothing depends on how long a real training takes.


class Recorder:
    """Replaces vae.jobs.train: logs ("start"/"end", label), counts jobs running at once, holds on a gate."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0
        self.gates: dict[str, threading.Event] = {}
        self.started: dict[str, threading.Event] = {}

    def hold(self, label: str) -> threading.Event:
        self.started[label] = threading.Event()
        self.gates[label] = gate = threading.Event()
        return gate

    def __call__(self, config, train_images, test_images, settings, **kwargs) -> SimpleNamespace:
        label = self.current  # the running job's label, set by the recorder fixture
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.log.append(("start", label))
        if label in self.gates:
            self.started[label].set()
            assert self.gates[label].wait(30)
        time.sleep(0.001)  # long enough for a second worker, if there were one, to start beside it
        with self.lock:
            self.running -= 1
            self.log.append(("end", label))
        return SimpleNamespace(status="completed", message="done")


@pytest.fixture
def recorder(monkeypatch) -> Recorder:
    import vae.jobs

    fake = Recorder()
    real_run = vae.jobs.TrainingJob.run

    def run(job) -> None:
        fake.current = job.label
        real_run(job)

    monkeypatch.setattr(vae.jobs, "train", fake)
    monkeypatch.setattr(vae.jobs.TrainingJob, "run", run)
    return fake


def starts(recorder: Recorder) -> list[str]:
    return [label for event, label in recorder.log if event == "start"]


def assert_one_at_a_time(recorder: Recorder) -> None:
    """Every start is followed by its own end before the next start."""
    assert recorder.most_at_once == 1
    events = recorder.log
    assert all(a[0] == "start" and b == ("end", a[1]) for a, b in zip(events[::2], events[1::2])), events


def test_jobs_start_in_the_order_submitted_one_at_a_time(data, recorder) -> None:
    train_images, _ = data
    jobs = TrainingQueue()
    labels = [f"job {i}" for i in range(6)]
    submitted = [jobs.submit(TINY, TrainSettings(epochs=1, batch_size=64), train_images, label=x) for x in labels]
    assert all(job.wait(30) for job in submitted)
    assert starts(recorder) == labels
    assert_one_at_a_time(recorder)


def test_positions_of_waiting_jobs_count_down_as_the_queue_moves(data, recorder) -> None:
    train_images, _ = data
    jobs = TrainingQueue()
    gate_a, gate_b = recorder.hold("a"), recorder.hold("b")
    a = jobs.submit(TINY, TrainSettings(epochs=1, batch_size=64), train_images, label="a")
    assert recorder.started["a"].wait(30)
    b, c, d = (jobs.submit(TINY, TrainSettings(epochs=1, batch_size=64), train_images, label=x) for x in "bcd")
    assert [jobs.position(job) for job in (a, b, c, d)] == [0, 1, 2, 3]  # a runs; b is next
    gate_a.set()
    assert recorder.started["b"].wait(30)
    assert [jobs.position(job) for job in (a, b, c, d)] == [0, 0, 1, 2]
    c.stop()  # stopped while waiting: it never starts, and d moves up once the worker passes it
    gate_b.set()
    assert d.wait(30) and c.wait(30)
    assert c.snapshot().status == "stopped" and c.snapshot().message == "stopped before it started"
    assert starts(recorder) == ["a", "b", "d"]
    assert [jobs.position(job) for job in (a, b, c, d)] == [0, 0, 0, 0]


def test_submits_from_several_threads_run_once_each_in_the_order_positions_told(data, recorder) -> None:
    train_images, _ = data
    jobs = TrainingQueue()
    gate = recorder.hold("first")
    first = jobs.submit(TINY, TrainSettings(epochs=1, batch_size=64), train_images, label="first")
    assert recorder.started["first"].wait(30)
    submitted: dict[str, list] = {}
    barrier = threading.Barrier(4)

    def submit_five(thread: int) -> None:
        barrier.wait()
        submitted[thread] = [
            jobs.submit(TINY, TrainSettings(epochs=1, batch_size=64), train_images, label=f"{thread}.{i}")
            for i in range(5)
        ]

    threads = [threading.Thread(target=submit_five, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    waiting = [job for each in submitted.values() for job in each]
    positions = {job.label: jobs.position(job) for job in waiting}
    assert sorted(positions.values()) == list(range(1, 21))  # every waiting job has its own place
    gate.set()
    assert first.wait(30) and all(job.wait(30) for job in waiting)
    ran = starts(recorder)
    assert ran == ["first", *sorted(positions, key=positions.get)]  # the queue ran them as positions said
    for thread, each in submitted.items():  # and each thread's jobs in the order that thread submitted them
        mine = [label for label in ran if label.startswith(f"{thread}.")]
        assert mine == [job.label for job in each]
    assert_one_at_a_time(recorder)


def test_stopping_a_running_study_stops_it_and_the_queue_goes_on(data, recorder, tmp_path, monkeypatch) -> None:
    import vae.jobs
    from vae.jobs import StudyJob
    from vae.studies.runner import StudySettings, StudyStopped

    running, checks, saved = threading.Event(), [], []

    def slow_study(study, settings, data_dir=None, *, progress, should_stop):
        progress(0.25, "variant 1 of 4")
        running.set()
        while not should_stop():  # a real study checks between batches
            checks.append(1)
            time.sleep(0.001)
        raise StudyStopped("stopped")

    monkeypatch.setattr(vae.jobs, "run_study", slow_study)
    monkeypatch.setattr(vae.jobs, "save_result", lambda *a: saved.append(a))
    train_images, _ = data
    jobs = TrainingQueue()
    study = jobs.enqueue(StudyJob("beta", StudySettings(epochs=1, batch_size=64, betas=(0.0,)), str(tmp_path)))
    after = jobs.submit(TINY, TrainSettings(epochs=1, batch_size=64), train_images, label="after")
    assert running.wait(30)
    snapshot = study.snapshot()
    assert (snapshot.status, snapshot.fraction, snapshot.message) == ("running", 0.25, "variant 1 of 4")
    assert jobs.position(after) == 1 and starts(recorder) == []  # the training waits for the study
    study.stop()
    assert study.wait(30)
    snapshot = study.snapshot()
    assert snapshot.status == "stopped" and snapshot.message == "stopped on request; the previous result is kept"
    assert snapshot.fraction == 0.25 and saved == [] and checks  # nothing saved over the previous result
    assert after.wait(30) and after.snapshot().status == "completed" and starts(recorder) == ["after"]


def test_a_job_carries_what_it_was_submitted_with_and_reports_nothing_before_it_starts(data, recorder) -> None:
    """What mutation testing found unchecked: submit's pass-through, the first snapshot, the worker thread."""
    import vae.jobs
    from vae.jobs import StudyJob
    from vae.studies.runner import StudySettings
    from vae.training.timeline import TimelineSettings

    train_images, test_images = data
    labels = torch.arange(len(train_images)) % 10
    test_labels = torch.arange(len(test_images)) % 10
    timeline = TimelineSettings()
    jobs = TrainingQueue()
    gate = recorder.hold("held")
    held = jobs.submit(TINY, TrainSettings(epochs=3, batch_size=64), train_images, label="held")
    assert recorder.started["held"].wait(30)
    job = jobs.submit(
        TINY,
        TrainSettings(epochs=2, batch_size=64),
        train_images,
        test_images,
        train_labels=labels,
        test_labels=test_labels,
        dataset="fashion-mnist",
        timeline=timeline,
    )
    assert job.train_labels is labels and job.test_labels is test_labels and job.timeline is timeline
    assert job.dataset == "fashion-mnist" and held.dataset == "mnist"
    before = job.snapshot()
    assert (before.job_id, before.status, before.epoch, before.epochs) == (job.job_id, "queued", 0, 2)
    assert (before.batch, before.batches_per_epoch, before.batch_terms, before.elapsed) == (0, 0, {}, 0.0)
    assert before.frame is None and before.frame_labels is None and before.fraction == 0.0
    assert job.job_id > held.job_id
    worker = jobs._worker
    assert worker.name == "training-worker" and worker.daemon  # a daemon: it never holds the server open
    study = StudyJob("beta", StudySettings(epochs=1, batch_size=64, betas=(0.0,)), "out")
    snapshot = study.snapshot()
    assert (snapshot.study, snapshot.status, snapshot.fraction, snapshot.message) == (
        "beta",
        "queued",
        0.0,
        "waiting for the CPU",
    )
    assert snapshot.elapsed == 0.0 and study.job_id > job.job_id
    gate.set()
    job.stop()
    assert held.wait(30) and job.wait(30)
    assert held.snapshot().elapsed > 0 and vae.jobs.FINISHED >= {held.snapshot().status}


def test_submit_refusals_say_exactly_what_is_wrong(data) -> None:
    train_images, test_images = data
    labels = torch.zeros(len(train_images), dtype=torch.long)
    jobs = TrainingQueue()
    with pytest.raises(ValueError, match=r"^class_weight > 0 trains on labels: pass train_labels$"):
        jobs.submit(ModelConfig(kind="ae", hidden=(8,), class_weight=1.0), TrainSettings(batch_size=8), train_images)
    with pytest.raises(ValueError, match=r"^PCA is fitted, not trained$"):
        jobs.submit(ModelConfig(kind="pca", hidden=()), TrainSettings(batch_size=8), train_images)
    from vae.training.timeline import TimelineSettings

    needs = r"^recording a timeline needs test_images, train_labels and test_labels$"
    for missing in ("test_images", "train_labels", "test_labels"):
        given = {"test_images": test_images, "train_labels": labels, "test_labels": labels[:64]}
        given[missing] = None
        with pytest.raises(ValueError, match=needs):
            jobs.submit(
                TINY,
                TrainSettings(batch_size=8),
                train_images,
                given["test_images"],
                train_labels=given["train_labels"],
                test_labels=given["test_labels"],
                timeline=TimelineSettings(),
            )
    # A batch as large as the training set is one batch, and allowed.
    job = jobs.submit(TINY, TrainSettings(epochs=1, batch_size=len(train_images)), train_images)
    job.stop()
    assert job.wait(30)


# ---------------------------------------------------------------------------------------------
# What mutation testing (make mutants) found unchecked: the trainer's wiring, the frames a job shows, the
# failure messages, the elapsed time and the progress fraction.


def test_a_job_hands_the_trainer_its_inputs_and_callbacks_and_shows_what_they_report(data, monkeypatch) -> None:
    import numpy as np

    import vae.jobs
    from vae.training.timeline import Frame, TimelineSettings
    from vae.training.trainer import BatchProgress, EpochRecord

    train_images, test_images = data
    labels, test_labels = torch.arange(len(train_images)) % 10, (torch.arange(len(test_images)) * 7) % 10
    calls, seen = [], []

    def fake_train(config, images, held_out, settings, **kwargs):
        calls.append((config, images, held_out, settings, kwargs))
        job = running[0]
        seen.append(job.snapshot())  # before any callback: nothing reported
        kwargs["on_batch"](BatchProgress(epoch=2, batch=3, batches_per_epoch=4, terms={"loss": 1.5}))
        kwargs["on_epoch"](EpochRecord(epoch=1, seconds=0.5, train={"loss": 2.0}, test={"loss": 2.5}))
        if kwargs["on_frame"] is not None:
            codes = np.zeros((3, 2), dtype=np.float32)
            kwargs["on_frame"](Frame(0, 0, 0.0, codes, {}, {}, np.array([5, 0, 2])))
            seen.append(job.snapshot())
            kwargs["on_frame"](Frame(1, 4, 1.0, codes, {}, {}, np.array([1, 1, 1])))  # the same images, by contract
        seen.append(job.snapshot())
        return SimpleNamespace(status="time_limit", message="stopped at the time limit")

    running: list = []
    monkeypatch.setattr(vae.jobs, "train", fake_train)
    settings, timeline = TrainSettings(epochs=3, batch_size=64), TimelineSettings()
    job = vae.jobs.TrainingJob(
        TINY, settings, train_images, test_images, train_labels=labels, test_labels=test_labels, timeline=timeline
    )
    running.append(job)
    job.run()
    config, images, held_out, given, kwargs = calls[0]
    assert (config, images, held_out, given) == (TINY, train_images, test_images, settings)
    assert kwargs["train_labels"] is labels and kwargs["test_labels"] is test_labels and kwargs["timeline"] is timeline
    assert kwargs["should_stop"]() is False
    job.stop()
    assert kwargs["should_stop"]() is True  # the trainer polls the job's own stop request
    assert seen[0].batch_terms == {} and seen[0].history == [] and seen[0].frame is None
    with_frame = seen[1]
    assert with_frame.frame.index == 0 and with_frame.frame_labels.tolist() == [5 * 7 % 10, 0, 2 * 7 % 10]
    assert with_frame.frame_labels.dtype == np.int64 and not with_frame.frame_labels.flags.writeable
    last = seen[2]
    assert (last.epoch, last.batch, last.batches_per_epoch, last.batch_terms) == (2, 3, 4, {"loss": 1.5})
    assert last.history == [{"epoch": 1, "seconds": 0.5, "train": {"loss": 2.0}, "test": {"loss": 2.5}}]
    assert last.frame.index == 1 and last.frame_labels is with_frame.frame_labels  # looked up once
    assert (job.snapshot().status, job.snapshot().message) == ("time_limit", "stopped at the time limit")

    calls.clear()
    plain = vae.jobs.TrainingJob(TINY, settings, train_images, None)
    running[0] = plain
    plain.run()
    assert calls[0][4]["on_frame"] is None and calls[0][4]["timeline"] is None  # no timeline, no frames


def test_a_failure_is_reported_with_its_exception_type(data, monkeypatch, tmp_path) -> None:
    import vae.jobs
    from vae.jobs import StudyJob
    from vae.studies.runner import StudySettings

    train_images, _ = data

    def fail(*args, **kwargs):
        raise MemoryError("out of memory")

    monkeypatch.setattr(vae.jobs, "train", fail)
    monkeypatch.setattr(vae.jobs, "run_study", fail)
    job = vae.jobs.TrainingJob(TINY, TrainSettings(epochs=1, batch_size=64), train_images, None)
    job.run()
    assert (job.snapshot().status, job.snapshot().message) == ("failed", "MemoryError: out of memory")
    study = StudyJob("beta", StudySettings(epochs=1, batch_size=64, betas=(0.0,)), str(tmp_path))
    study.run()
    assert (study.snapshot().status, study.snapshot().message) == ("failed", "MemoryError: out of memory")
    assert study.snapshot().fraction == 0.0  # only a completed study is complete
    assert job.wait() and study.wait()  # finished: waiting without a timeout returns at once


def test_elapsed_runs_from_the_start_and_stops_at_the_finish(data, monkeypatch) -> None:
    import vae.jobs

    clock = iter([10.0, 11.0, 12.5, 99.0])
    monkeypatch.setattr(vae.jobs.time, "perf_counter", lambda: next(clock))
    job = vae.jobs.TrainingJob(TINY, TrainSettings(epochs=1, batch_size=64), data[0], None)
    assert job.snapshot().elapsed == 0.0  # not started: no clock read
    assert job._begin()  # starts at 10.0
    assert job.snapshot().elapsed == 1.0  # running, read at 11.0
    job._finish("completed", "done")  # finished at 12.5
    assert job.snapshot().elapsed == 2.5 and job.snapshot().elapsed == 2.5  # fixed once finished


@pytest.mark.parametrize(
    ("status", "epoch", "batch", "batches_per_epoch", "fraction"),
    [
        ("running", 2, 1, 4, 5 / 12),  # one whole epoch of 4 batches and one batch of the second, of 3 x 4
        ("running", 0, 0, 0, 0.0),  # before the first batch
        ("running", 1, 3, 4, 3 / 12),
        ("running", 3, 4, 4, 1.0),
        ("stopped", 9, 9, 4, 1.0),  # never more than all of it
        ("completed", 1, 1, 4, 1.0),  # a completed job is done, however few batches it reported
    ],
)
def test_the_progress_fraction_counts_batches_done_of_all(status, epoch, batch, batches_per_epoch, fraction) -> None:
    from vae.jobs import JobSnapshot

    snapshot = JobSnapshot(1, "x", status, "", epoch, 3, batch, batches_per_epoch, {}, [], 0.0)
    assert snapshot.fraction == pytest.approx(fraction)
    assert snapshot.finished == (status != "running")


def test_a_completed_study_hands_on_its_data_folder_and_reports_itself_done(monkeypatch, tmp_path) -> None:
    """Run in this thread, not on the queue: a wrong call of _finish then fails here instead of killing the
    worker (and leaving the test to wait out its timeout)."""
    import vae.jobs
    from vae.jobs import StudyJob
    from vae.studies.runner import StudySettings

    calls, saved = [], []
    result = SimpleNamespace(seconds=2.6)

    def fake_study(study, settings, data_dir=None, *, progress, should_stop):
        calls.append((study, settings, data_dir))
        progress(0.5, "variant 1 of 2")  # the last report falls short of 1.0: completion alone makes it whole
        return result

    monkeypatch.setattr(vae.jobs, "run_study", fake_study)
    monkeypatch.setattr(vae.jobs, "save_result", lambda *a: saved.append(a))
    settings = StudySettings(epochs=1, batch_size=64, betas=(0.0,))
    study = StudyJob("beta", settings, str(tmp_path / "out"), data_dir=str(tmp_path / "images"))
    study.run()
    assert calls == [("beta", settings, str(tmp_path / "images"))]
    assert saved == [(result, str(tmp_path / "out"))]
    snapshot = study.snapshot()
    assert (snapshot.status, snapshot.fraction, snapshot.message) == ("completed", 1.0, "saved in 3 s")
    assert study.wait(0)


def test_a_short_wait_on_a_job_still_running_returns_false(data, recorder) -> None:
    train_images, _ = data
    jobs = TrainingQueue()
    gate = recorder.hold("held")
    held = jobs.submit(TINY, TrainSettings(epochs=1, batch_size=64), train_images, label="held")
    assert recorder.started["held"].wait(30)
    # Released later in any case: a wait that ignored its timeout then returns True (and fails) rather than hang.
    release = threading.Timer(5, gate.set)
    release.start()
    try:
        assert held.wait(0.01) is False
        assert held.snapshot().status == "running"
    finally:
        release.cancel()
        gate.set()
    assert held.wait(30) and held.snapshot().status == "completed"
