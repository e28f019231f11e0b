"""Where one pass of the decoupled conv Parametric UMAP model goes, and how fast it can be made on this CPU.

Run from the repository root (no install needed; a few minutes)::

    python benchmarks/umap_pass.py
    python benchmarks/umap_pass.py --steps 12 --json umap_pass.json

The model is the conv encoder of ``ModelConfig(kind="ae", arch="conv", hidden=(256, 256), umap_weight=1,
decoupled=True)`` (conv 32 and 64 filters, 4 x 4 stride 2, dense 256, 256, 2) with its stop-gradient decoder,
trained as the trainer trains it: batches of 512 edges drawn from a neighbour graph (heads and tails in one
encoder pass of 1,024 images, 5 negatives per edge taken from the batch's tails, so no third pass), the
decoder on the heads' detached codes. For each layout (contiguous or channels_last) and precision (float32, or
bfloat16 CPU autocast where oneDNN has it) it times whole training steps and, apart, the step's pieces: the data
path (drawing the edges and gathering their images), the encoder's forward and backward on 1,024 images, the
decoder's on 512 codes. FLOPs per step come from ``torch.utils.flop_counter`` (matmuls and convolutions,
forward and backward), so GFLOP/s can be read against a plain 2048 x 2048 matmul timed in the same process. Each measurement
runs in a fresh process, as a training run does.
``--threads 1`` shows what one thread does; on a machine whose cores are shared with another process,
bfloat16 on every core can fall far behind it (see the README). A pass is 50,000 edges (Parametric UMAP's 50,000-image protocol), so seconds per pass = step x 50,000 / 512.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from precision import matmul_gflops  # noqa: E402

from vae.data import load_mnist  # noqa: E402
from vae.models import ModelConfig, build_model, to_float_images  # noqa: E402
from vae.training.graph import fuzzy_graph  # noqa: E402
from vae.training.trainer import bfloat16_supported, precision_context  # noqa: E402

CONFIG = ModelConfig(kind="ae", arch="conv", hidden=(256, 256), umap_weight=1.0, decoupled=True)
BATCH = 512
PASS_EDGES = 50_000


def median_ms(fn: Callable[[], object], steps: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def step_flops(images: torch.Tensor, graph) -> int:
    """FLOPs of one training step, counted once in float32 on a fresh model (the count is the same in any
    dtype; counting under autocast slows the later steps of that model by orders of magnitude)."""
    torch.manual_seed(0)
    model = build_model(CONFIG)
    heads, tails = graph.sample(BATCH, torch.Generator().manual_seed(0))
    with FlopCounterMode(display=False) as counter:
        model.loss(images.index_select(0, heads), None, images.index_select(0, tails))["loss"].backward()
    return counter.get_total_flops()


def measure(images: torch.Tensor, graph, precision: str, channels_last: bool, steps: int) -> dict:
    """Timings of one layout and precision; ``images`` float ``[N, 1, 28, 28]``."""
    torch.manual_seed(0)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = build_model(CONFIG).to(memory_format=layout)
    images = images.contiguous(memory_format=layout)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)

    def batch() -> tuple[torch.Tensor, torch.Tensor]:
        heads, tails = graph.sample(BATCH, generator)
        return images.index_select(0, heads), images.index_select(0, tails)

    def step() -> torch.Tensor:
        x, neighbours = batch()
        with precision_context(precision):
            terms = model.loss(x, None, neighbours)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
        return terms["loss"]

    both = torch.cat(batch())  # [2B, 1, 28, 28]
    codes = torch.randn(BATCH, CONFIG.latent_dim)

    def encoder() -> None:
        with precision_context(precision):
            out = model.encoder(both).float().sum()
        out.backward()

    def decoder() -> None:
        with precision_context(precision):
            out = model.decoder(codes).float().sum()
        out.backward()

    step_ms = median_ms(step, steps)
    flops = step_flops(images, graph)
    return {
        "precision": precision,
        "channels_last": channels_last,
        "step_ms": step_ms,
        "pass_s": step_ms / 1000 * PASS_EDGES / BATCH,
        "data_ms": median_ms(batch, steps),
        "encoder_ms": median_ms(encoder, steps),
        "decoder_ms": median_ms(decoder, steps),
        "gflop_per_step": flops / 1e9,
        "gflops": flops / (step_ms / 1000) / 1e9,
    }


def one(args: argparse.Namespace) -> dict:
    """One layout and precision measured in this process (``--one PRECISION:LAYOUT``)."""
    precision, layout = args.one.split(":")
    train_images, _ = load_mnist("train", args.data_dir)
    subset = train_images[: args.graph_images]
    graph = fuzzy_graph(subset)  # a step's cost does not depend on the graph's size, only its batch
    row = measure(to_float_images(subset), graph, precision, layout == "channels_last", args.steps)
    row["peak_gflops"] = matmul_gflops(getattr(torch, precision))
    row["share_of_peak"] = row["gflops"] / row["peak_gflops"]
    return row


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="timed steps per measurement (median; default 8)")
    parser.add_argument("--graph-images", type=int, default=10_000, help="images in the graph (default 10,000)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own, one per core)")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--json", metavar="PATH", default=None)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # PRECISION:LAYOUT, in a child process
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.one is not None:
        print(json.dumps(one(args)))
        return 0
    print(f"torch threads: {torch.get_num_threads()}")
    precisions = ("float32", "bfloat16") if bfloat16_supported() else ("float32",)
    rows = []
    for precision in precisions:
        for layout in ("contiguous", "channels_last"):
            # Each in a fresh process, as a training run is: oneDNN's kernels and caches start cold in each,
            # and one measurement's leftovers cannot slow the next.
            command = [sys.executable, __file__, "--one", f"{precision}:{layout}", "--steps", str(args.steps)]
            command += ["--graph-images", str(args.graph_images), "--data-dir", args.data_dir]
            command += ["--threads", str(torch.get_num_threads())]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(
                f"{precision:8s} {layout:13s} step {row['step_ms']:5.0f} ms = {row['pass_s']:5.1f} s per pass | "
                f"data {row['data_ms']:4.1f} ms, encoder {row['encoder_ms']:4.0f} ms, decoder "
                f"{row['decoder_ms']:4.0f} ms | {row['gflop_per_step']:.1f} GFLOP/step, {row['gflops']:4.0f} GFLOP/s "
                f"({row['share_of_peak']:.0%} of the {row['peak_gflops']:.0f} GFLOP/s matmul peak)",
                flush=True,
            )
    base = rows[0]["step_ms"]
    for row in rows[1:]:
        layout = "channels_last" if row["channels_last"] else "contiguous"
        print(f"float32 contiguous / {row['precision']} {layout}: {base / row['step_ms']:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "args": vars(args)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
