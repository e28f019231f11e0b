"""Does bfloat16 autocast pay for the ordinary trainer, per model family?

Run from the repository root (no install needed; some minutes with the defaults)::

    python benchmarks/precision.py                     # prints the table
    python benchmarks/precision.py --images 20000 --epochs 3 --repeats 3 --json precision.json

For each family (the dense 784-400-2 VAE at batch 128 and at batch 512, the conv VAE at batch 128) it trains
the same seeded model twice per round, ``TrainSettings(precision="float32")`` and ``"bfloat16"``, on the first
``--images`` MNIST training images, and evaluates both on 2,000 test images in float32 (the trainer's own
evaluation). Rounds alternate the order (float32 first, then bfloat16 first) so a shared machine's noise
hits both alike. Reported per family: the median seconds per epoch of each precision, their ratio
(float32 / bfloat16: above 1 means bfloat16 is faster), and both final test losses (same seed) and their
relative difference. A plain float32 and bfloat16 matmul (2048 x 2048, timed in the same run) gives the
machine's peak GFLOP/s of each, so the ratios can be read against what the CPU can do at best.

Needs a CPU with bfloat16 support (``vae.training.trainer.bfloat16_supported``); exits 1 without one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vae.data import load_mnist  # noqa: E402
from vae.models import ModelConfig  # noqa: E402
from vae.training.trainer import TrainSettings, bfloat16_supported, train  # noqa: E402

FAMILIES = {
    "dense, batch 128": (ModelConfig(kind="vae", latent_dim=2, hidden=(400,)), 128),
    "dense, batch 512": (ModelConfig(kind="vae", latent_dim=2, hidden=(400,)), 512),
    "conv, batch 128": (ModelConfig(kind="vae", arch="conv", latent_dim=2), 128),
}
PRECISIONS = ("float32", "bfloat16")


def matmul_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    """The best GFLOP/s of an n x n matmul in ``dtype`` over ``repeats`` runs (after one warm-up)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best / 1e9


def run(config: ModelConfig, batch: int, precision: str, train_images, test_images, epochs: int) -> tuple[float, float]:
    """(seconds per epoch, the last epoch's test loss) of one seeded training."""
    settings = TrainSettings(epochs=epochs, batch_size=batch, seed=0, precision=precision)
    result = train(config, train_images, test_images, settings)
    seconds = statistics.median(record.seconds for record in result.history)
    return seconds, result.history[-1].test["loss"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000, help="training images (default 10,000)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per training (default 2)")
    parser.add_argument("--repeats", type=int, default=2, help="rounds per family (default 2)")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--json", metavar="PATH", default=None)
    args = parser.parse_args(argv)
    if not bfloat16_supported():
        print("this CPU has no bfloat16 support (oneDNN): nothing to compare", file=sys.stderr)
        return 1
    train_images, _ = load_mnist("train", args.data_dir)
    test_images, _ = load_mnist("test", args.data_dir)
    train_images, test_images = train_images[: args.images], test_images[:2000]
    peaks = {"float32": matmul_gflops(torch.float32), "bfloat16": matmul_gflops(torch.bfloat16)}
    print(f"matmul peak: float32 {peaks['float32']:.0f} GFLOP/s, bfloat16 {peaks['bfloat16']:.0f} GFLOP/s")
    rows = []
    for family, (config, batch) in FAMILIES.items():
        seconds: dict[str, list[float]] = {p: [] for p in PRECISIONS}
        losses: dict[str, float] = {}
        for round_ in range(args.repeats):
            for precision in PRECISIONS if round_ % 2 == 0 else PRECISIONS[::-1]:
                s, loss = run(config, batch, precision, train_images, test_images, args.epochs)
                seconds[precision].append(s)
                losses[precision] = loss  # the same seed each round: the same loss
        f32, b16 = (statistics.median(seconds[p]) for p in PRECISIONS)
        row = {
            "family": family,
            "float32_s_per_epoch": f32,
            "bfloat16_s_per_epoch": b16,
            "speedup": f32 / b16,
            "float32_test_loss": losses["float32"],
            "bfloat16_test_loss": losses["bfloat16"],
            "loss_rel_diff": losses["bfloat16"] / losses["float32"] - 1,
        }
        rows.append(row)
        print(
            f"{family:18s}  float32 {f32:6.2f} s/epoch  bfloat16 {b16:6.2f} s/epoch  ratio {f32 / b16:4.2f}  "
            f"test loss {losses['float32']:.2f} vs {losses['bfloat16']:.2f} ({row['loss_rel_diff']:+.2%})"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"peaks_gflops": peaks, "rows": rows, "args": vars(args)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
