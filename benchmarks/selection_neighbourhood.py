"""How long does a selection's neighbourhood take at the largest size the explorer shows?

Run from the repository root (no install needed; MNIST fetched, the shipped models present)::

    python benchmarks/selection_neighbourhood.py                 # 3 rounds, prints a table
    python benchmarks/selection_neighbourhood.py --repeats 5 --json neighbourhood.json --strict

The data: the shipped ``vae-16d`` and ``ae-16d`` codes of all 70,000 MNIST images (test, then train), and a
selection of 20,000 of them made as a lasso would make one: the 20,000 nearest one class's centroid in the
first two principal components (a contiguous region of the plane, mostly of that class, with its border mixed),
and for comparison a lasso of 2,000 made the same way.

Timed: ``vae.selection.neighbourhood(codes, labels, selection, k=5)`` (exact 5 nearest neighbours of each
selected image among all 70,000 in all 16 dimensions, by scikit-learn's brute-force search in float64, and the
two shares), and ``vae.selection.spread`` on the 2-D PCA coordinates. Rounds alternate the two models.

Also timed: what the explorer asks for (``app.selection.stats``), the same shares measured from an even
sample of 2,000 of the selected images (``queries=``), with both estimates printed beside the exact ones.

Target: median of the sampled measure at 20,000 selected <= 1 s per model on the two shared cores (the exact
one took 4-5 s with the machine's load at 3-4, 7 s at 6; the page asks for it once per selection and caches it per model and selection, so a rerun costs nothing); the time grows
linearly with the selection's size. A k-d tree (``algorithm="kd_tree"``) took 10-15 s here, a ball tree 39 s.

Exit code is 0 whether the target passes or fails, unless ``--strict`` is given (then 1 on FAIL).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

TARGET_SECONDS = 1.0  # what the page waits for: the sampled measure at 20,000 selected
SELECTED = 20_000
SMALL = 2_000


def codes_of(name: str):
    import torch

    from vae.data import load_subset
    from vae.metrics import embed_images
    from vae.store import load_model

    torch.set_num_threads(2)
    model, _ = load_model(REPO / "models" / name)
    images, labels = load_subset("mnist", "all", REPO / "data")
    return embed_images(model, images).numpy(), labels.numpy()


def lasso_like(codes, labels, count: int, digit: int = 4):
    import numpy as np
    from sklearn.decomposition import PCA

    plane = PCA(2, random_state=0).fit_transform(codes)
    centre = plane[labels == digit].mean(axis=0)
    return np.sort(np.argsort(np.linalg.norm(plane - centre, axis=1))[:count]), plane


def main(argv: list[str] | None = None) -> int:
    from _report import check_load, summary, verdict

    from app.selection import NEIGHBOURHOOD_SAMPLE
    from vae.selection import class_counts, even_sample, neighbourhood, spread

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--strict", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    data = {}
    for name in ("vae-16d", "ae-16d"):
        codes, labels = codes_of(name)
        selection, plane = lasso_like(codes, labels, SELECTED)
        data[name] = (codes, labels, selection, plane)
        data[f"{name} ({SMALL:,})"] = (codes, labels, lasso_like(codes, labels, SMALL)[0], plane)
        print(
            f"{name}: codes {list(codes.shape)}, {len(selection):,} selected, classes {class_counts(labels, selection, 10).tolist()}"
        )

    check_load("timing")
    times: dict[str, list[float]] = {
        f"{name} {what}": [] for name in data for what in ("neighbourhood", "sampled", "spread")
    }
    results, sampled = {}, {}
    for _ in range(args.repeats):
        for name, (codes, labels, selection, plane) in data.items():
            started = time.perf_counter()
            results[name] = neighbourhood(codes, labels, selection, k=5)
            times[f"{name} neighbourhood"].append(time.perf_counter() - started)
            # What the page asks for: the same shares from an even sample of the selected images.
            started = time.perf_counter()
            queries = even_sample(selection, NEIGHBOURHOOD_SAMPLE)
            sampled[name] = neighbourhood(codes, labels, selection, k=5, queries=queries)
            times[f"{name} sampled"].append(time.perf_counter() - started)
            started = time.perf_counter()
            spread(plane, selection)
            times[f"{name} spread"].append(time.perf_counter() - started)

    failed = False
    print(f"\n{'timed':<36} {'median s':>9} {'min s':>7} {'max s':>7}  target")
    report = {}
    for what, values in times.items():
        stats = summary(values)
        report[what] = stats
        target = ""
        if what.endswith("sampled") and "(" not in what:
            target = f"<= {TARGET_SECONDS} s {verdict(stats['median'], TARGET_SECONDS)}"
            failed |= stats["median"] > TARGET_SECONDS
        print(f"{what:<36} {stats['median']:>9.3f} {stats['min']:>7.3f} {stats['max']:>7.3f}  {target}")
    for name, result in results.items():
        estimate = sampled[name]
        print(
            f"{name}: share selected {result.share_selected:.3f} (from {NEIGHBOURHOOD_SAMPLE:,} sampled: "
            f"{estimate.share_selected:.3f}), share of another class {result.share_other_class:.3f} "
            f"(sampled: {estimate.share_other_class:.3f})"
        )
    if args.json:
        import json

        args.json.write_text(json.dumps({"seconds": report, "selected": [SELECTED, SMALL], "points": 70_000}, indent=2))
    return 1 if (failed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
