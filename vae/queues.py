"""Which queue runs the training jobs: ``VAE_JOBS`` names the embedded worker thread (:mod:`vae.jobs`, the
default) or Ray (:mod:`vae.ray_jobs`). Its own module so that the Ray queue, built on :mod:`vae.jobs`, and the
choice between them import each other in one direction only; ``ray`` is imported only when a Ray is named."""

from __future__ import annotations

import os
from typing import Literal

from vae.jobs import TrainingQueue

JOBS_HELP = 'VAE_JOBS must be "" or "local" (a worker thread), "ray" (a local Ray), "auto" or "ray://host:port"'


def parse_jobs(spec: str) -> tuple[Literal["local", "ray"], str | None]:
    """("local", None), ("ray", None) for a Ray on this machine, or ("ray", address); ValueError for other words."""
    word = spec.strip()
    if word in ("", "local"):
        return "local", None
    if word == "ray":
        return "ray", None
    if word == "auto" or (word.startswith("ray://") and len(word) > len("ray://")):
        return "ray", word
    raise ValueError(f"{JOBS_HELP}, got {spec!r}")


def make_queue(spec: str | None = None, *, num_cpus: int | None = None) -> TrainingQueue:
    """The training queue ``spec`` names (by default the ``VAE_JOBS`` environment variable).

    None, "" or "local": this process's worker thread (:class:`TrainingQueue`), the default. "ray": Ray tasks
    on a Ray started on this machine; "auto" or "ray://host:port": Ray tasks on a running cluster
    (:class:`vae.ray_jobs.RayTrainingQueue`, which needs ``requirements-ray.txt``). num_cpus: CPUs per Ray job
    (``VAE_JOBS_CPUS``, default 1). Raises ValueError for any other word, before anything connects.
    """
    if spec is None:
        spec = os.environ.get("VAE_JOBS", "")
    backend, address = parse_jobs(spec)
    if backend == "local":
        return TrainingQueue()
    if num_cpus is None:
        raw = os.environ.get("VAE_JOBS_CPUS", "1")
        try:
            num_cpus = int(raw)
        except ValueError:
            raise ValueError(f"VAE_JOBS_CPUS must be a positive integer, got {raw!r}") from None
    try:
        import ray  # noqa: F401 (only to say what is missing now rather than at the first job)

        from vae.ray_jobs import RayTrainingQueue
    except ModuleNotFoundError as error:
        raise ValueError(f"VAE_JOBS={spec!r} needs Ray: pip install -r requirements-ray.txt ({error})") from None
    return RayTrainingQueue(address, num_cpus=num_cpus)
