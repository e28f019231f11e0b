"""What does the fence cost? An import, and an imported model's embed of 10,000 images, fenced vs in-process.

Run from the repository root (no install needed; about a minute)::

    python benchmarks/onnx_fence.py                  # 3 interleaved rounds, prints a table
    python benchmarks/onnx_fence.py --repeats 5 --json fence.json --strict

The model: the project's 784-400-2 dense VAE with its initial (seeded) weights, exported with
``vae.onnx.export.export_pair`` and imported back with ``vae.import_onnx`` (MNIST must be fetched: its
images check and measure the model). Two ways, in one process, interleaved (A B, B A, ...) so that noise
on a shared machine hits both alike:

- ``fenced``: as the project runs it: every run of the imported graphs in a worker process with its memory
  limit (``vae.onnx.fence.Worker``); the embed goes to the model's warm worker in chunks of 1,024.
- ``in-process``: the same calls with ``Worker`` replaced by :class:`InProcess` (onnxruntime sessions in this
  process, the same timer), which is what the import did before the fence.

Timed: ``import_onnx`` (a fresh folder each time: reads, probes, builds the standard graphs, measures the
model on the test set, stores, loads back, so one worker start for the import and one for the model loaded
back), and ``model.embed`` of the first 10,000 test images on a loaded model (warm: its worker has started
and run once). Targets, as ratios of the fastest runs (other jobs only ever add time):

- import fenced / in-process <= 1.5
- embed fenced / in-process <= 1.5

Exit code is 0 whether the targets pass or fail, unless ``--strict`` is given (then 1 on FAIL).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks._report import Table, check_load, save_json, summary, verdict  # noqa: E402

TARGETS = {"import": 1.5, "embed": 1.5}
EMBED_IMAGES = 10_000


class InProcess:
    """:class:`vae.onnx.fence.Worker`'s interface over onnxruntime sessions in this process: the baseline."""

    def __init__(self, limit_bytes: int | None = None) -> None:
        self.limit_bytes = limit_bytes or 0
        self.sessions = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.sessions.clear()

    def load(self, key: str, data: bytes, what: str):
        from vae.onnx.graphs import io_names, session

        self.sessions[key] = session(data, what)
        return io_names(self.sessions[key])

    def run(self, key, outputs, feed, *, seconds, max_output_bytes):
        import onnxruntime

        options = onnxruntime.RunOptions()
        timer = threading.Timer(seconds, setattr, (options, "terminate", True))
        started = time.perf_counter()
        timer.start()
        try:
            result = self.sessions[key].run(outputs, feed, options)
        finally:
            timer.cancel()
        return result, time.perf_counter() - started


@contextmanager
def way(name: str):
    """Within: ``vae.onnx``'s modules use the fence (``fenced``) or :class:`InProcess` (``in-process``)."""
    import vae.onnx.checks
    import vae.onnx.importer
    import vae.onnx.model
    from vae.onnx.fence import Worker

    chosen = Worker if name == "fenced" else InProcess
    modules = (vae.onnx.checks, vae.onnx.importer, vae.onnx.model)
    for module in modules:
        module.Worker = chosen
    try:
        yield
    finally:
        for module in modules:
            module.Worker = Worker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--strict", action="store_true")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from vae.data import load_mnist
    from vae.models import ModelConfig, build_model, to_float_images
    from vae.onnx.export import export_pair
    from vae.onnx.importer import import_onnx

    check_load("the fence benchmark")
    test_images, _ = load_mnist("test", args.data_dir)
    images = to_float_images(test_images[:EMBED_IMAGES])
    root = Path(tempfile.mkdtemp(prefix="onnx-fence-"))
    try:
        torch.manual_seed(0)
        model = build_model(ModelConfig(kind="vae", latent_dim=2, hidden=(400,)))
        pair = export_pair(model, root / "export", images=images[:256])
        times = {(w, m): [] for w in ("fenced", "in-process") for m in ("import", "embed")}
        embeds = {}
        ways = ["fenced", "in-process"]
        for round_ in range(args.repeats + 1):  # round 0 warms both ways up, untimed
            for name in ways if round_ % 2 else ways[::-1]:
                with way(name):
                    out = root / f"{name}-{round_}"
                    started = time.perf_counter()
                    imported, _ = import_onnx(pair.encoder, pair.decoder, out, data_dir=args.data_dir)
                    seconds = time.perf_counter() - started
                    imported.embed(images[:8])  # warm: the worker (or session) has run once
                    started = time.perf_counter()
                    embeds[name] = imported.embed(images).numpy()
                    embed_seconds = time.perf_counter() - started
                    if hasattr(imported.worker, "close"):
                        imported.worker.close()
                if round_:
                    times[name, "import"].append(seconds)
                    times[name, "embed"].append(embed_seconds)
                print(f"round {round_} {name}: import {seconds:.2f} s, embed {embed_seconds:.3f} s", flush=True)
        same = float(np.abs(embeds["fenced"] - embeds["in-process"]).max())
    finally:
        shutil.rmtree(root, ignore_errors=True)

    table = Table()
    results = {"repeats": args.repeats, "max_abs_difference": same, "seconds": {}, "ratios": {}}
    for measure in ("import", "embed"):
        for name in ways:
            stats = summary(times[name, measure])
            results["seconds"][f"{measure} {name}"] = stats
            table.add(f"{measure} {name} (s, median / min)", f"{stats['median']:.3f} / {stats['min']:.3f}")
        ratio = min(times["fenced", measure]) / min(times["in-process", measure])
        results["ratios"][measure] = ratio
        table.add(
            f"{measure} fenced / in-process", f"{ratio:.2f}", f"<= {TARGETS[measure]}", verdict(ratio, TARGETS[measure])
        )
    table.add("embeddings' max abs difference", f"{same:.2g}", "0", verdict(same, 0.0))
    table.print()
    if args.json:
        save_json(args.json, results)
    return 1 if args.strict and table.fails else 0


if __name__ == "__main__":
    sys.exit(main())
