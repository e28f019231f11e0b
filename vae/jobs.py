"""Training in the background: a job per model (or per recomputed experiment), one worker thread that
runs jobs in turn.

A web server shares two CPU cores among every open tab. Running jobs one at a time (first come, first
served) keeps one person's training from starving another's clicks, and the progress of every job can be
read from any thread at any time through :meth:`TrainingJob.snapshot`.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from vae.models import ModelConfig
from vae.studies.registry import run_study, save_result, variants
from vae.studies.runner import StudySettings, StudyStopped
from vae.training.timeline import Frame, TimelineSettings
from vae.training.trainer import BatchProgress, EpochRecord, TrainResult, TrainSettings, train

JobStatus = Literal["queued", "running", "completed", "stopped", "time_limit", "diverged", "failed"]
FINISHED: frozenset[str] = frozenset({"completed", "stopped", "time_limit", "diverged", "failed"})

_job_ids = itertools.count(1)


@dataclass(frozen=True)
class JobSnapshot:
    """A consistent copy of a job's progress, safe to render while training goes on."""

    job_id: int
    label: str
    status: JobStatus
    message: str
    epoch: int  # the epoch in progress (1-based), 0 before the first batch
    epochs: int
    batch: int
    batches_per_epoch: int
    batch_terms: dict[str, float]
    history: list[dict]  # EpochRecord.to_dict() per completed epoch
    elapsed: float
    frame: Frame | None = None  # the latest timeline frame, when the job records one
    frame_labels: np.ndarray | None = None  # int64 [N]: the class of each of the frame's images

    @property
    def fraction(self) -> float:
        """Share of all batches done, for a progress bar."""
        if self.status == "completed":
            return 1.0
        total = self.epochs * max(self.batches_per_epoch, 1)
        return min(1.0, ((max(self.epoch, 1) - 1) * self.batches_per_epoch + self.batch) / total)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class _Lifecycle:
    """What every queued job shares: a stop request, a done event, and a status that only moves forward.

    Subclasses provide ``_lock``, ``_stop``, ``_done``, ``_status``, ``_message``, ``_started``, ``_finished``.
    """

    _lock: threading.Lock
    _stop: threading.Event
    _done: threading.Event
    _status: JobStatus
    _message: str
    _started: float | None
    _finished: float | None

    def stop(self) -> None:
        """Ask the job to stop at its next check (or never to start, if still queued)."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has finished; True if it did within ``timeout``."""
        return self._done.wait(timeout)

    def _begin(self) -> bool:
        """Mark the job running; False, with the job finished as "stopped", if it was stopped while queued."""
        if self._stop.is_set():
            self._finish("stopped", "stopped before it started")
            return False
        with self._lock:
            self._status, self._started = "running", time.perf_counter()
        return True

    def _finish(self, status: JobStatus, message: str) -> None:
        with self._lock:
            self._status, self._message, self._finished = status, message, time.perf_counter()
        self._done.set()

    def _elapsed(self) -> float:
        """Seconds since the job started (until it finished); call with ``_lock`` held."""
        if not self._started:
            return 0.0
        return (self._finished or time.perf_counter()) - self._started


@dataclass
class TrainingJob(_Lifecycle):
    """One model to train; created by :meth:`TrainingQueue.submit`."""

    config: ModelConfig
    settings: TrainSettings
    train_images: torch.Tensor
    test_images: torch.Tensor | None
    label: str = ""
    train_labels: torch.Tensor | None = None  # int64 [N]; only a class-aware loss uses them
    test_labels: torch.Tensor | None = None
    dataset: str = "mnist"  # where the images came from, recorded when the model is saved
    timeline: TimelineSettings | None = None  # record one (needs train_labels and test_labels)
    job_id: int = field(default_factory=lambda: next(_job_ids))
    result: TrainResult | None = None
    _status: JobStatus = "queued"
    _message: str = ""
    _progress: BatchProgress | None = None
    _history: list[dict] = field(default_factory=list)
    _frame: Frame | None = None
    _frame_labels: np.ndarray | None = None
    _started: float | None = None
    _finished: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _done: threading.Event = field(default_factory=threading.Event)

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            progress = self._progress
            return JobSnapshot(
                job_id=self.job_id,
                label=self.label,
                status=self._status,
                message=self._message,
                epoch=progress.epoch if progress else 0,
                epochs=self.settings.epochs,
                batch=progress.batch if progress else 0,
                batches_per_epoch=progress.batches_per_epoch if progress else 0,
                batch_terms=dict(progress.terms) if progress else {},
                history=list(self._history),
                elapsed=self._elapsed(),
                frame=self._frame,
                frame_labels=self._frame_labels,
            )

    def _on_batch(self, progress: BatchProgress) -> None:
        with self._lock:
            self._progress = progress

    def _on_epoch(self, record: EpochRecord) -> None:
        with self._lock:
            self._history.append(record.to_dict())

    def _on_frame(self, frame: Frame) -> None:
        labels = self._frame_labels
        if labels is None:  # the same images in every frame: their classes are looked up once
            labels = self.test_labels.numpy()[frame.image_index].astype(np.int64)
            labels.setflags(write=False)
        with self._lock:
            self._frame, self._frame_labels = frame, labels

    def run(self) -> None:
        """Train now, in the calling thread; never raises (a failure becomes status "failed")."""
        if not self._begin():
            return
        try:
            self.result = train(
                self.config,
                self.train_images,
                self.test_images,
                self.settings,
                on_batch=self._on_batch,
                on_epoch=self._on_epoch,
                should_stop=self._stop.is_set,
                train_labels=self.train_labels,
                test_labels=self.test_labels,
                timeline=self.timeline,
                on_frame=self._on_frame if self.timeline is not None else None,
            )
        except Exception as error:  # shown to the user; the worker thread must survive it
            traceback.print_exc()
            self._finish("failed", f"{type(error).__name__}: {error}")
            return
        self._finish(self.result.status, self.result.message)


@dataclass(frozen=True)
class StudySnapshot:
    study: str
    status: JobStatus
    fraction: float
    message: str
    elapsed: float

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class StudyJob(_Lifecycle):
    """Recompute one study (``vae.studies``) and save it to ``out_dir``; run by the same queue as
    the training jobs, so a recompute and a training take turns on the CPU instead of halving each other."""

    def __init__(self, study: str, settings: StudySettings, out_dir: str, data_dir: str | None = None) -> None:
        variants(study, settings)  # refuse an unknown study or bad settings now, not in the worker
        self.study, self.settings, self.out_dir, self.data_dir = study, settings, out_dir, data_dir
        self.job_id = next(_job_ids)
        self._lock = threading.Lock()
        self._stop, self._done = threading.Event(), threading.Event()
        self._status: JobStatus = "queued"
        self._fraction, self._message = 0.0, "waiting for the CPU"
        self._started: float | None = None
        self._finished: float | None = None

    def snapshot(self) -> StudySnapshot:
        with self._lock:
            return StudySnapshot(self.study, self._status, self._fraction, self._message, self._elapsed())

    def _progress(self, fraction: float, message: str) -> None:
        with self._lock:
            self._fraction, self._message = fraction, message

    def _finish(self, status: JobStatus, message: str) -> None:
        if status == "completed":
            with self._lock:
                self._fraction = 1.0
        super()._finish(status, message)

    def run(self) -> None:
        """Run now, in the calling thread; never raises (a failure becomes status "failed")."""
        if not self._begin():
            return
        try:
            result = run_study(
                self.study, self.settings, self.data_dir, progress=self._progress, should_stop=self._stop.is_set
            )
            save_result(result, self.out_dir)
        except StudyStopped:
            self._finish("stopped", "stopped on request; the previous result is kept")
        except Exception as error:  # shown to the user; the worker thread must survive it
            traceback.print_exc()
            self._finish("failed", f"{type(error).__name__}: {error}")
        else:
            self._finish("completed", f"saved in {result.seconds:.0f} s")


class TrainingQueue:
    """A single daemon worker that runs submitted jobs in order."""

    def __init__(self) -> None:
        self._queue: queue.Queue[TrainingJob | StudyJob] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pending: list[TrainingJob | StudyJob] = []

    def submit(
        self,
        config: ModelConfig,
        settings: TrainSettings,
        train_images: torch.Tensor,
        test_images: torch.Tensor | None = None,
        label: str = "",
        *,
        train_labels: torch.Tensor | None = None,
        test_labels: torch.Tensor | None = None,
        dataset: str = "mnist",
        timeline: TimelineSettings | None = None,
    ) -> TrainingJob:
        """Queue a job; raises ValueError at once for settings that could never run."""
        if config.class_weight and train_labels is None:
            raise ValueError("class_weight > 0 trains on labels: pass train_labels")
        if timeline is not None and (test_images is None or train_labels is None or test_labels is None):
            raise ValueError("recording a timeline needs test_images, train_labels and test_labels")
        if config.kind == "pca":
            raise ValueError("PCA is fitted, not trained")
        if len(train_images) < settings.batch_size:
            raise ValueError(
                f"batch_size ({settings.batch_size}) is larger than the training set ({len(train_images)} images)"
            )
        job = TrainingJob(
            config,
            settings,
            train_images,
            test_images,
            label=label or config.describe(),
            train_labels=train_labels,
            test_labels=test_labels,
            dataset=dataset,
            timeline=timeline,
        )
        return self.enqueue(job)

    def enqueue(self, job: TrainingJob | StudyJob) -> TrainingJob | StudyJob:
        """Queue any job with ``run()`` and ``snapshot().status`` behind the ones already waiting."""
        with self._lock:
            # Listed and queued under one lock, so the order position() reports is the order jobs run in,
            # whichever threads submit at once.
            self._pending.append(job)
            self._queue.put(job)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="training-worker", daemon=True)
                self._worker.start()
        return job

    def position(self, job: TrainingJob | StudyJob) -> int:
        """0 while running or finished; n when n - 1 jobs are ahead of it in the queue."""
        with self._lock:
            waiting = [j for j in self._pending if j.snapshot().status == "queued"]
        return waiting.index(job) + 1 if job in waiting else 0

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            try:
                job.run()
            finally:
                with self._lock:
                    self._pending = [j for j in self._pending if j is not job]
                self._queue.task_done()
