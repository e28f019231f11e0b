"""What does recording a timeline cost? The same training with and without it, interleaved in one run.

Run from the repository root (no install needed)::

    python benchmarks/timeline_overhead.py                    # Train page defaults: 10 epochs, both kinds
    python benchmarks/timeline_overhead.py --epochs 30 --kinds ae --repeats 1 --json out.json

Each round trains the Train page's default models (dense 784-512-256-2, BCE, batch 128, Adam at 1e-3,
cosine schedule, seed 0) on the 60,000 MNIST training images with the test set scored after every epoch,
as the dashboard and ``python -m vae.train`` run them, once with ``timeline=TimelineSettings()`` and once
without, alternating which goes first. Recording changes no weight (``tests/test_timeline.py``), so both
runs do the same training; the difference is the recording alone.

Reported per kind:

- wall seconds of the whole ``train()`` call, fastest of the rounds, each way, and their ratio
  (target: with / without <= 1.05). Other jobs on a shared machine only ever add time, so the fastest runs
  are the steadier estimate, and interleaving exposes both ways to the same load;
- the recorder's own clock (``Timeline.record_seconds``, measured inside the run) as a share of the
  training time of the same run: the same quantity without the noise of comparing two runs;
- from those: the cost of one frame in batches of training, and what it makes of the geometric schedule
  for 1, 3, 10 and 30 epochs (the first epoch holds most frames, so short runs pay more).

Exit code 0 unless ``--strict`` is given and the ratio misses the target.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.05
BATCH_SIZE = 128


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python benchmarks/timeline_overhead.py", description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10, help="epochs per training (default 10, the Train page's)")
    parser.add_argument("--repeats", type=int, default=2, help="rounds of (with, without) per kind (default 2)")
    parser.add_argument("--kinds", default="ae,vae", help="comma-separated: ae, vae (default both)")
    parser.add_argument("--data-dir", default=None, help="MNIST location (default: $VAE_DATA_DIR or ./data)")
    parser.add_argument("--json", metavar="PATH", default=None, help="also write the results to this JSON file")
    parser.add_argument("--strict", action="store_true", help="exit with code 1 if a ratio misses the target")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.repeats < 1 or args.epochs < 1:
        raise SystemExit("--repeats and --epochs must be at least 1")
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if not kinds or any(k not in ("ae", "vae") for k in kinds):
        raise SystemExit(f"--kinds takes ae and/or vae, got {args.kinds!r}")
    if str(REPO_ROOT) not in sys.path:  # run as a plain script from a checkout, without installing
        sys.path.insert(0, str(REPO_ROOT))

    import torch

    from vae.data import load_mnist, resolve_data_dir
    from vae.models import ModelConfig
    from vae.training.timeline import TimelineSettings, recording_steps
    from vae.training.trainer import TrainSettings, train

    data_dir = resolve_data_dir(args.data_dir)
    train_images, train_labels = load_mnist("train", data_dir)
    test_images, test_labels = load_mnist("test", data_dir)
    settings = TrainSettings(epochs=args.epochs, batch_size=BATCH_SIZE, learning_rate=1e-3, seed=0)
    batches_per_epoch = -(-len(train_images) // BATCH_SIZE)
    print(
        f"dense 784-512-256-2, batch {BATCH_SIZE}, {args.epochs} epochs of {len(train_images):,} images, test set scored "
        f"every epoch; torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, Python {platform.python_version()}"
    )

    results: dict[str, dict] = {}
    for kind in kinds:
        config = ModelConfig(kind=kind, latent_dim=2, hidden=(512, 256))
        seconds: dict[str, list[float]] = {"with": [], "without": []}
        recorded: list[tuple[float, float, int]] = []  # (record seconds, training seconds, frames) per run
        for r in range(args.repeats):
            for way in ("with", "without") if r % 2 == 0 else ("without", "with"):
                gc.collect()
                started = time.perf_counter()
                result = train(
                    config,
                    train_images,
                    test_images,
                    settings,
                    train_labels=train_labels,
                    test_labels=test_labels,
                    timeline=TimelineSettings() if way == "with" else None,
                )
                elapsed = time.perf_counter() - started
                if result.status != "completed":
                    raise RuntimeError(f"{kind} {way}: training ended {result.status!r}: {result.message}")
                seconds[way].append(elapsed)
                line = f"  {kind} round {r + 1}/{args.repeats} {way:<8} {elapsed:7.1f} s"
                if result.timeline is not None:
                    train_seconds = sum(record.seconds for record in result.history)
                    recorded.append((result.timeline.record_seconds, train_seconds, result.timeline.frames))
                    line += (
                        f"  ({result.timeline.frames} frames, recording {result.timeline.record_seconds:.2f} s "
                        f"= {result.timeline.record_seconds / train_seconds:.1%} of the training)"
                    )
                print(line, flush=True)
        ratio = min(seconds["with"]) / min(seconds["without"])
        record_s, train_s, frames = min(recorded, key=lambda item: item[0] / item[1])
        # One frame's cost in batches of training, from the quieter of the recorded runs.
        frame_in_batches = (record_s / frames) / (train_s / (args.epochs * batches_per_epoch))
        projected = {
            e: len(recording_steps(batches_per_epoch, e)) * frame_in_batches / (e * batches_per_epoch)
            for e in (1, 3, 10, 30)
        }
        results[kind] = {
            "seconds": seconds,
            "ratio_of_fastest": ratio,
            "record_seconds": record_s,
            "train_seconds": train_s,
            "frames": frames,
            "own_clock_share": record_s / train_s,
            "frame_in_batches": frame_in_batches,
            "projected_share_by_epochs": projected,
            "status": "PASS" if ratio <= TARGET else "FAIL",
        }

    print()
    print(
        f"{'kind':<5}{'without s':>11}{'with s':>9}{'with/without':>14}{'recorder clock':>16}{'frame = batches':>17}{'':>6}"
    )
    for kind, r in results.items():
        print(
            f"{kind:<5}{min(r['seconds']['without']):>11.1f}{min(r['seconds']['with']):>9.1f}{r['ratio_of_fastest']:>14.3f}"
            f"{r['own_clock_share']:>16.1%}{r['frame_in_batches']:>17.1f}{r['status']:>6}"
        )
    print()
    print("projected share of the training time, from one frame's cost and the schedule's frame count:")
    for kind, r in results.items():
        parts = ", ".join(
            f"{e} epochs ({len(recording_steps(batches_per_epoch, e))} frames) {share:.1%}"
            for e, share in r["projected_share_by_epochs"].items()
        )
        print(f"  {kind}: {parts}")
    failed = [kind for kind, r in results.items() if r["status"] == "FAIL"]
    print()
    print(
        ("FAIL: " + ", ".join(failed) + f" above {TARGET:g}x")
        if failed
        else f"PASS: with / without <= {TARGET:g} for every kind"
    )
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {
                    "benchmark": "timeline_overhead",
                    "epochs": args.epochs,
                    "repeats": args.repeats,
                    "batch_size": BATCH_SIZE,
                    "torch": torch.__version__,
                    "results": results,
                },
                indent=2,
            )
            + "\n"
        )
        print(f"wrote {path}")
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
