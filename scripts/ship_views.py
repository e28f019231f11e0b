"""Fit the UMAP views of the shipped models with D > 2 and write them to views/, which is committed.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python scripts/ship_views.py [--models ae-16d vae-16d] [--subsets test all]

The dashboard reads views/ before its own cache (app/cache.py), so a fresh clone opens these views without
fitting UMAP (about a minute for 10,000 points and several for 70,000 on two cores). Each file is checked,
on load, against the codes it is used for: retrained weights simply miss it. Re-run after retraining.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from vae.data import SUBSETS, load_subset  # noqa: E402
from vae.metrics import embed_images  # noqa: E402
from vae.projections import ViewCache, make_view, view_cache_key  # noqa: E402
from vae.store import load_model  # noqa: E402

SHIPPED_VIEWS = REPO / "views"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["ae-16d", "vae-16d"])
    parser.add_argument("--subsets", nargs="+", choices=list(SUBSETS), default=list(SUBSETS))
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    args = parser.parse_args(argv)
    cache = ViewCache(SHIPPED_VIEWS)
    for name in args.models:
        model, stored = load_model(args.models_dir / name)
        for subset in args.subsets:
            images, _ = load_subset(stored.dataset_name, subset)
            codes = embed_images(model, images).numpy()
            key = view_cache_key(stored.weights_sha256, "umap", len(codes))
            if cache.load(key, codes) is not None:
                print(f"{name} / {subset}: already shipped ({key[:12]}…)")
                continue
            started = time.perf_counter()
            cache.save(key, make_view("umap").fit(codes, progress=lambda message: print(f"  {message}", flush=True)))
            print(f"{name} / {subset}: fitted on {len(codes):,} points in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
