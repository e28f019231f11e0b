"""Training in the background: a job per model, one worker thread that runs jobs in turn.

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

import torch

from vae.models import ModelConfig
from vae.train import BatchProgress, EpochRecord, TrainResult, TrainSettings, train

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


@dataclass
class TrainingJob:
    """One model to train; created by :meth:`TrainingQueue.submit`."""

    config: ModelConfig
    settings: TrainSettings
    train_images: torch.Tensor
    test_images: torch.Tensor | None
    label: str = ""
    job_id: int = field(default_factory=lambda: next(_job_ids))
    result: TrainResult | None = None
    _status: JobStatus = "queued"
    _message: str = ""
    _progress: BatchProgress | None = None
    _history: list[dict] = field(default_factory=list)
    _started: float | None = None
    _finished: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _done: threading.Event = field(default_factory=threading.Event)

    def stop(self) -> None:
        """Ask the job to stop after the current batch (or never to start, if still queued)."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has finished; True if it did within ``timeout``."""
        return self._done.wait(timeout)

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            progress = self._progress
            end = self._finished or time.perf_counter()
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
                elapsed=end - self._started if self._started else 0.0,
            )

    def _on_batch(self, progress: BatchProgress) -> None:
        with self._lock:
            self._progress = progress

    def _on_epoch(self, record: EpochRecord) -> None:
        with self._lock:
            self._history.append(record.to_dict())

    def _finish(self, status: JobStatus, message: str) -> None:
        with self._lock:
            self._status, self._message = status, message
            self._finished = time.perf_counter()
        self._done.set()

    def run(self) -> None:
        """Train now, in the calling thread; never raises (a failure becomes status "failed")."""
        if self._stop.is_set():
            self._finish("stopped", "stopped before it started")
            return
        with self._lock:
            self._status, self._started = "running", time.perf_counter()
        try:
            self.result = train(
                self.config,
                self.train_images,
                self.test_images,
                self.settings,
                on_batch=self._on_batch,
                on_epoch=self._on_epoch,
                should_stop=self._stop.is_set,
            )
        except Exception as error:  # shown to the user; the worker thread must survive it
            traceback.print_exc()
            self._finish("failed", f"{type(error).__name__}: {error}")
            return
        self._finish(self.result.status, self.result.message)


class TrainingQueue:
    """A single daemon worker that runs submitted jobs in order."""

    def __init__(self) -> None:
        self._queue: queue.Queue[TrainingJob] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pending: list[TrainingJob] = []

    def submit(
        self,
        config: ModelConfig,
        settings: TrainSettings,
        train_images: torch.Tensor,
        test_images: torch.Tensor | None = None,
        label: str = "",
    ) -> TrainingJob:
        """Queue a job; raises ValueError at once for settings that could never run."""
        if config.kind == "pca":
            raise ValueError("PCA is fitted, not trained")
        if len(train_images) < settings.batch_size:
            raise ValueError(
                f"batch_size ({settings.batch_size}) is larger than the training set ({len(train_images)} images)"
            )
        job = TrainingJob(config, settings, train_images, test_images, label=label or config.describe())
        with self._lock:
            self._pending.append(job)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="training-worker", daemon=True)
                self._worker.start()
        self._queue.put(job)
        return job

    def position(self, job: TrainingJob) -> int:
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
