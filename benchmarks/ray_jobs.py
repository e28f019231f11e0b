"""Eight training jobs submitted at once: the embedded queue (one thread, jobs in turn) against Ray tasks.

Run from the repository root (needs ``requirements-ray.txt``)::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/ray_jobs.py                  # 8 jobs, 1 epoch, 10,000 images
    OMP_WAIT_POLICY=PASSIVE python benchmarks/ray_jobs.py --jobs 8 --train-images 60000

Each job is one epoch of the 784-400-20 dense AE (batch 128, seeds 0..7) on the first ``--train-images`` MNIST
training images, scored on 2,000 test images. Both backends run in this one process, embedded first: wall time
from the first submit to the last job's end. Ray starts a local instance with one CPU per core and one CPU per job
(``num_cpus=1``); its wall time includes starting the workers (not starting Ray itself, timed apart).

From the Ray run's mean per-job time (``snapshot().elapsed``, the worker's training alone) the script projects the
wall time of the same jobs on N machines of this many cores: ceil(jobs / (N x cores)) rounds of one job time, plus
the worker start-up this run measured. A projection, not a measurement: it assumes the images reach every node
as fast as they reach a local worker.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--train-images", type=int, default=10_000)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    if str(REPO_ROOT) not in sys.path:  # run as a plain script from a checkout, without installing
        sys.path.insert(0, str(REPO_ROOT))

    import ray

    from vae.data import load_dataset
    from vae.jobs import TrainingQueue
    from vae.models import ModelConfig
    from vae.ray_jobs import RayTrainingQueue
    from vae.training.trainer import TrainSettings

    train_images, _ = load_dataset("mnist", "train", args.data_dir)
    test_images, _ = load_dataset("mnist", "test", args.data_dir)
    train_images, test_images = train_images[: args.train_images], test_images[:2000]
    config = ModelConfig(kind="ae", latent_dim=20, hidden=(400,))
    settings = [TrainSettings(epochs=1, batch_size=128, seed=seed) for seed in range(args.jobs)]
    cores = os.cpu_count() or 1

    started = time.perf_counter()
    local = TrainingQueue()
    embedded = [local.submit(config, s, train_images, test_images) for s in settings]
    assert all(job.wait() for job in embedded)
    embedded_wall = time.perf_counter() - started
    embedded_job = sum(job.snapshot().elapsed for job in embedded) / len(embedded)

    init_started = time.perf_counter()
    ray.init(
        num_cpus=cores,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}},
    )
    init_seconds = time.perf_counter() - init_started
    started = time.perf_counter()
    remote = RayTrainingQueue(num_cpus=1)
    jobs = [remote.submit(config, s, train_images, test_images) for s in settings]
    assert all(job.wait() for job in jobs)
    ray_wall = time.perf_counter() - started
    statuses = {job.snapshot().status for job in jobs} | {job.snapshot().status for job in embedded}
    ray_job = sum(job.snapshot().elapsed for job in jobs) / len(jobs)
    same = all(
        all(
            torch.equal(a, b)
            for a, b in zip(r.result.model.state_dict().values(), e.result.model.state_dict().values())
        )
        for r, e in zip(jobs, embedded)
    )
    ray.shutdown()

    rounds_here = math.ceil(args.jobs / cores)
    overhead = max(ray_wall - rounds_here * ray_job, 0.0)  # worker start-up and transfer, as measured here
    print(f"{args.jobs} jobs, 1 epoch each on {len(train_images):,} images, {cores} cores; statuses {sorted(statuses)}")
    print(f"embedded queue : {embedded_wall:6.1f} s wall, {embedded_job:5.2f} s per job (one after another)")
    print(
        f"ray ({cores} CPUs)   : {ray_wall:6.1f} s wall, {ray_job:5.2f} s per job, plus {init_seconds:.1f} s ray.init"
    )
    print(f"ratio embedded / ray wall: {embedded_wall / ray_wall:.2f}; same weights as embedded: {same}")
    for machines in (1, 2, 4, 8):
        rounds = math.ceil(args.jobs / (machines * cores))
        print(f"  projected on {machines} machine(s) of {cores} cores: {rounds * ray_job + overhead:6.1f} s")


if __name__ == "__main__":
    main()
