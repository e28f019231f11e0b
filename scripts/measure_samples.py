"""Fill the judge's figures (``metrics["samples"]``) into the model.json of models already in the store.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python scripts/measure_samples.py [names...] [--models-dir models] [--missing]

A model saved today gets them when it is saved (``vae.training.saving.judge_metrics``); this measures the ones
saved before, the shipped models among them (``make samples``), the same way: 10,000 seeded samples, for an AE
or PCA from a Gaussian fitted to its codes of the 60,000 training images, and its 10,000 test reconstructions.
Only model.json changes, atomically (``vae.store.update_metrics``): the weights and their SHA-256 stay as they
are. Re-running gives the same numbers. A model of a dataset without a judge is left as it is. About 20-60 s
per model on two busy cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from vae.data import load_dataset  # noqa: E402
from vae.store import list_models, load_model, update_metrics  # noqa: E402
from vae.training.saving import judge_metrics, numbers_line  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="models to measure (default: every model in the store)")
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--missing", action="store_true", help="only the models whose metrics lack the figures")
    args = parser.parse_args(argv)
    listed = {stored.name: stored for stored in list_models(args.models_dir)}
    unknown = sorted(set(args.names) - set(listed))
    if unknown:
        print(f"error: no model named {', '.join(unknown)} in {args.models_dir}", file=sys.stderr)
        return 2
    names = args.names or sorted(listed)
    if args.missing:
        names = [name for name in names if "samples" not in listed[name].metrics]
    for name in names:
        started = time.perf_counter()
        model, stored = load_model(args.models_dir / name)
        train_images, _ = load_dataset(stored.dataset_name, "train", args.data_dir)
        test_images, _ = load_dataset(stored.dataset_name, "test", args.data_dir)
        figures = judge_metrics(model, train_images, test_images, stored.dataset_name)
        if not figures:
            print(f"{name}: no judge for {stored.dataset_name}, left as it is")
            continue
        updated = update_metrics(stored.path, figures)
        if updated.weights_sha256 != stored.weights_sha256:  # update_metrics never touches it; say so if it did
            raise AssertionError(f"{name}: the weights' SHA-256 changed")
        print(f"{name} ({time.perf_counter() - started:.0f} s): {numbers_line(figures)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
