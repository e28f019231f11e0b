"""Training jobs on Ray: the same job objects as :mod:`vae.jobs`, run as Ray tasks on a laptop or a cluster.

Chosen with ``VAE_JOBS`` (see :func:`vae.queues.make_queue`); the embedded thread stays the default. The pages keep
the :class:`vae.jobs.TrainingJob` / :class:`vae.jobs.StudyJob` objects they always had, so they cannot tell which
backend runs them: :class:`RayTrainingQueue` only replaces *where* ``train()`` runs.

How a job travels:

* **Arguments in.** The images (uint8 ``[N, 28, 28]`` or float ``[N, 1, 28, 28]``), labels, config and settings are
  task arguments: Ray puts the large ones in its object store and ships them to whichever node runs the task, and
  :func:`connect` ships the ``vae`` package itself (``runtime_env`` ``py_modules``), so a worker needs the
  project's requirements, neither a checkout nor the dataset (study jobs are the exception: they load
  their data from ``data_dir`` on the worker, as the embedded queue does).
* **Progress out: a streaming-generator task** (``num_returns="streaming"``). The task runs ``train()`` in a thread
  and yields every message (its pid first, then batch progress, epoch records, timeline frames, and the result
  last); a driver thread per job reads the stream and feeds the job's own ``_on_batch``/``_on_epoch``/
  ``_on_frame``, so ``snapshot()`` is exactly the embedded one. Chosen over a progress actor or
  ``ray.util.queue.Queue`` (itself an actor) because it needs no extra process per job, keeps the messages in
  order with the result, and its end of stream (or its error) *is* the task's end: a worker that dies surfaces
  as an exception on the next read instead of a queue that silently stops filling. Batch messages are
  throttled to ten a second (the last one of each epoch is always sent), which keeps the object store traffic
  negligible next to training.
* **Stop: a stop-flag actor**, one per queue, shared by its jobs. ``job.stop()`` only sets the job's event (the
  class is unchanged); a forwarder thread on the driver passes set events to the actor, and the worker's
  ``should_stop`` asks the actor at most every 0.4 s. Training then ends at the next batch boundary with status
  "stopped" and its weights, as in the embedded backend. ``ray.cancel`` is used only for a job stopped while still
  queued (it would interrupt a running one without its weights).
* **Result back as bytes.** The worker sends the model's ``state_dict`` (safetensors bytes), its status, message,
  history and timeline; the driver rebuilds the model from the config (``build_model``) and sets ``job.result``,
  so the pages save it through the store as today.
* **Crashes.** Tasks run with ``max_retries=0`` (a retried job would restart from scratch behind the user's back);
  a worker that dies mid-job raises ``WorkerCrashedError`` (or ``RayTaskError``/``ActorDiedError``) on the driver's
  next read, and the job ends "failed" with that error's name and text. Other jobs are untouched.

Unlike the embedded queue, jobs run side by side, as many as the cluster has CPUs for (``num_cpus`` each, default
1, ``VAE_JOBS_CPUS``); Ray queues the rest in submission order.

``ray`` is imported only inside the functions that use it: importing this module (or :mod:`vae.jobs`) costs nothing
for the embedded default.
"""

from __future__ import annotations

import os
import queue
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from vae.jobs import StudyJob, TrainingJob, TrainingQueue

# Seconds between two questions to the stop-flag actor from one training: a stop takes effect within this
# (plus one batch), and a fast tiny model does not spend its time on actor round trips.
STOP_POLL_SECONDS = 0.4
# Batch progress messages a task sends per second at most (a tiny model runs hundreds of batches a second).
BATCH_MESSAGES_PER_SECOND = 10


def _state_bytes(model: torch.nn.Module) -> bytes:
    """The weights as safetensors bytes: tensors only, read back without unpickling anything."""
    from safetensors.torch import save

    return save({name: tensor.contiguous() for name, tensor in model.state_dict().items()})


def _stop_poller(flags: Any, job_id: int):
    """``should_stop`` for the worker: asks the stop-flag actor, at most every :data:`STOP_POLL_SECONDS`."""
    import ray

    last, stopped = 0.0, False

    def should_stop() -> bool:
        nonlocal last, stopped
        now = time.monotonic()
        if not stopped and now - last >= STOP_POLL_SECONDS:
            last = now
            stopped = bool(ray.get(flags.is_set.remote(job_id)))
        return stopped

    return should_stop


def _stream(work, threads: int):
    """Run ``work(send)`` in a thread and yield what it sends, then ("done", value) or ("failed", message).

    The thread lets ``train()`` keep its callback shape while the generator yields; the first message is
    ("started", pid) so the driver can tell the user (and a test can kill the worker).
    """
    torch.set_num_threads(threads)  # what the task was granted: no oversubscription of a shared node
    messages: queue.Queue = queue.Queue()
    end = object()

    def target() -> None:
        try:
            messages.put(("done", work(messages.put)))
        except Exception as error:  # becomes status "failed" with the same text the embedded job shows
            traceback.print_exc()
            messages.put(("failed", f"{type(error).__name__}: {error}"))
        messages.put(end)

    yield ("started", os.getpid())
    threading.Thread(target=target, name="ray-job", daemon=True).start()
    while (message := messages.get()) is not end:
        yield message


def _train_task(flags, job_id, threads, config, train_images, test_images, settings, kwargs):
    """The Ray task of one :class:`~vae.jobs.TrainingJob` (a streaming generator; see the module docstring)."""
    from vae.training.trainer import train

    def work(send) -> dict:
        last_sent = [0.0]
        pending: list = [None]  # the latest batch not yet sent

        def on_batch(progress) -> None:
            now = time.monotonic()
            if now - last_sent[0] >= 1 / BATCH_MESSAGES_PER_SECOND:
                last_sent[0], pending[0] = now, None
                send(("batch", progress))
            else:
                pending[0] = progress

        def flush() -> None:
            if pending[0] is not None:
                send(("batch", pending[0]))
                pending[0] = None

        def on_epoch(record) -> None:
            flush()  # the epoch's last batch first, so a finished job reports batch == batches_per_epoch
            send(("epoch", record))

        result = train(
            config,
            train_images,
            test_images,
            settings,
            on_batch=on_batch,
            on_epoch=on_epoch,
            should_stop=_stop_poller(flags, job_id),
            on_frame=(lambda frame: send(("frame", frame))) if kwargs.get("timeline") is not None else None,
            **kwargs,
        )
        flush()
        return {
            "state": _state_bytes(result.model),
            "training": result.model.training,
            "history": result.history,
            "status": result.status,
            "message": result.message,
            "timeline": result.timeline,
        }

    yield from _stream(work, threads)


def _study_task(flags, job_id, threads, study, settings, data_dir):
    """The Ray task of one :class:`~vae.jobs.StudyJob`: runs the study, sends the result back to be saved."""
    from vae.studies.registry import run_study
    from vae.studies.runner import StudyStopped

    def work(send):
        try:
            return run_study(
                study,
                settings,
                data_dir,
                progress=lambda fraction, message: send(("progress", (fraction, message))),
                should_stop=_stop_poller(flags, job_id),
            )
        except StudyStopped:
            return None

    yield from _stream(work, threads)


class _StopFlags:
    """The ids of jobs asked to stop (a Ray actor: the one thing a driver and its workers share)."""

    def __init__(self) -> None:
        self._ids: set[int] = set()

    def set(self, job_id: int) -> None:
        self._ids.add(job_id)

    def is_set(self, job_id: int) -> bool:
        return job_id in self._ids


def connect(address: str | None = None, **init_kwargs: Any) -> None:
    """``ray.init`` unless already connected (a test's fixture or a notebook may have done it).

    address: None starts (or joins) a local Ray; "auto" or "ray://host:10001" joins a cluster.
    """
    import ray

    if ray.is_initialized():
        return
    # The project's own package travels with the job (Ray uploads it once per version), so a worker node
    # needs the requirements but no checkout; OMP's passive wait keeps idle threads off the shared cores.
    runtime_env = {
        "py_modules": [str(Path(__file__).resolve().parent)],
        "env_vars": {"OMP_WAIT_POLICY": "PASSIVE"},
    }
    ray.init(address=address, **{"runtime_env": runtime_env, **init_kwargs})


class RayTrainingQueue(TrainingQueue):
    """:class:`vae.jobs.TrainingQueue`'s ``submit``/``enqueue``/``position`` with the jobs run as Ray tasks.

    ``submit`` (inherited) validates and builds the same :class:`~vae.jobs.TrainingJob`; ``enqueue`` sends it
    to Ray instead of to the worker thread. num_cpus: CPUs each job asks Ray for (and the torch threads it uses).
    """

    def __init__(self, address: str | None = None, *, num_cpus: int = 1, **init_kwargs: Any) -> None:
        if isinstance(num_cpus, bool) or not isinstance(num_cpus, int) or num_cpus < 1:
            raise ValueError(f"num_cpus must be a positive integer, got {num_cpus!r}")
        super().__init__()
        self.address, self.num_cpus, self._init_kwargs = address, num_cpus, init_kwargs
        self._flags = None  # the stop-flag actor, made on the first enqueue (so building a queue connects nothing)
        self._forwarded: set[int] = set()
        self._forwarder: threading.Thread | None = None
        self._pids: dict[int, int] = {}

    def _remote(self):
        """Connect on first use; returns the remote train and study functions."""
        import ray

        connect(self.address, **self._init_kwargs)
        if self._flags is None:
            # num_cpus=0: the actor only holds a set, it must not take a CPU a training could use.
            self._flags = ray.remote(num_cpus=0)(_StopFlags).remote()
        options = {"num_cpus": self.num_cpus, "num_returns": "streaming", "max_retries": 0}
        return ray.remote(**options)(_train_task), ray.remote(**options)(_study_task)

    def enqueue(self, job: TrainingJob | StudyJob) -> TrainingJob | StudyJob:
        """Send ``job`` to Ray now (Ray starts it when a CPU is free); returns the same job object."""
        train_task, study_task = self._remote()
        if isinstance(job, TrainingJob):
            kwargs = {"train_labels": job.train_labels, "test_labels": job.test_labels, "timeline": job.timeline}
            stream = train_task.remote(
                self._flags,
                job.job_id,
                self.num_cpus,
                job.config,
                job.train_images,
                job.test_images,
                job.settings,
                kwargs,
            )
        elif isinstance(job, StudyJob):
            stream = study_task.remote(self._flags, job.job_id, self.num_cpus, job.study, job.settings, job.data_dir)
        else:
            raise TypeError(f"the Ray queue runs TrainingJob and StudyJob, not {type(job).__name__}")
        with self._lock:
            self._pending.append(job)
            if self._forwarder is None or not self._forwarder.is_alive():
                self._forwarder = threading.Thread(target=self._forward_stops, name="ray-stops", daemon=True)
                self._forwarder.start()
        threading.Thread(target=self._follow, args=(job, stream), name=f"ray-job-{job.job_id}", daemon=True).start()
        return job

    def worker_pid(self, job: TrainingJob | StudyJob) -> int | None:
        """The pid of the worker process running ``job`` (on its node), once it has started; for diagnostics."""
        with self._lock:
            return self._pids.get(job.job_id)

    def _forward_stops(self) -> None:
        """Pass each job's stop request to the stop-flag actor (``job.stop()`` only sets a local event)."""
        while True:
            with self._lock:
                jobs = list(self._pending)
            for job in jobs:
                if job._stop.is_set() and job.job_id not in self._forwarded:
                    self._forwarded.add(job.job_id)
                    self._flags.set.remote(job.job_id)
            time.sleep(0.1)

    def _follow(self, job: TrainingJob | StudyJob, stream) -> None:
        """Read the task's stream into ``job`` until it ends; never raises (a lost worker makes it "failed")."""
        import ray

        try:
            for ref in stream:
                kind, value = ray.get(ref)
                if kind == "started":
                    with self._lock:
                        self._pids[job.job_id] = value
                    if not job._begin():  # stopped while queued: it never trains, as in the embedded queue
                        ray.cancel(stream, force=True)
                        return
                elif kind == "batch":
                    job._on_batch(value)
                elif kind == "epoch":
                    job._on_epoch(value)
                elif kind == "frame":
                    job._on_frame(value)
                elif kind == "progress":
                    job._progress(*value)
                elif kind == "failed":
                    job._finish("failed", value)
                elif kind == "done":
                    self._done(job, value)
            if not job.snapshot().finished:
                job._finish("failed", "the Ray task ended without a result")
        except ray.exceptions.RayError as error:  # WorkerCrashedError, RayTaskError, ActorDiedError, ...
            job._finish("failed", f"{type(error).__name__}: {error}")
        except Exception as error:  # a bad message or a save that failed: the job must still finish
            traceback.print_exc()
            job._finish("failed", f"{type(error).__name__}: {error}")
        finally:
            with self._lock:
                self._pending = [j for j in self._pending if j is not job]

    def _done(self, job: TrainingJob | StudyJob, value) -> None:
        if isinstance(job, StudyJob):
            if value is None:
                job._finish("stopped", "stopped on request; the previous result is kept")
                return
            from vae.studies.registry import save_result

            save_result(value, job.out_dir)  # on the driver: the pages read their results from its disk
            job._finish("completed", f"saved in {value.seconds:.0f} s")
            return
        from vae.models import build_model
        from vae.training.trainer import TrainResult

        model = build_model(job.config)
        from safetensors.torch import load

        model.load_state_dict(load(value["state"]))
        model.train(value["training"])
        job.result = TrainResult(
            model=model,
            settings=job.settings,
            history=value["history"],
            status=value["status"],
            message=value["message"],
            timeline=value["timeline"],
        )
        job._finish(value["status"], value["message"])


def _variant_task(fn, shared, variant, threads):
    torch.set_num_threads(threads)
    return fn(variant, **shared)


def variant_mapper(address: str | None = None, *, num_cpus: int = 1, **init_kwargs: Any):
    """A ``map_variants`` for :func:`vae.studies.runner.run`: every variant of a study as its own Ray task.

    Each task gets the same shared arguments (the images travel once, through the object store) and seeds itself
    from the study's settings, so the rows, images and maps equal the sequential run's (wall times apart).
    """

    def map_variants(fn, shared: dict[str, Any], todo: list) -> list:
        import ray

        connect(address, **init_kwargs)
        task = ray.remote(num_cpus=num_cpus, max_retries=0)(_variant_task)
        shared_ref = ray.put(shared)
        return ray.get([task.remote(fn, shared_ref, variant, num_cpus) for variant in todo])

    return map_variants
