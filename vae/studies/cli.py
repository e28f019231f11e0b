"""The brief's open questions as experiments: train what each needs, measure it on the test set, save it.

``python -m vae.experiments run [--study NAME ...] [--quick] [--out DIR]`` (``vae/experiments.py`` runs
:func:`main`): each study is run by :func:`vae.studies.registry.run_study` and saved as
``<study>.json`` + ``<study>.npz``; ``--save-models`` also keeps the variants a study names in its
``store_names`` in the model store; ``--study NAME --variant KEY`` trains only that variant and puts its row
into the saved result (a new model beside the others, without retraining them).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vae.models import LatentModel
from vae.studies.registry import STUDIES, load_result, run_study, save_result
from vae.studies.runner import QUICK, ExperimentFileError, Study, StudySettings, Variant, merge_results


def _model_saver(
    models_dir: str | None, study: Study, settings: StudySettings, data_dir: str | None, arguments: str
) -> Callable[[Variant, LatentModel, dict[str, Any], list[dict[str, Any]]], None] | None:
    if models_dir is None:
        return None
    from vae.data import load_dataset
    from vae.store import save_model
    from vae.training.saving import dataset_entry, judge_metrics

    suffix = "" if settings.dataset == "mnist" else f"-{settings.dataset}"

    def save(variant: Variant, model: LatentModel, row: dict[str, Any], history: list[dict[str, Any]]) -> None:
        if variant.key not in study.store_names:
            return
        metrics = {k: v for k, v in row.items() if k.startswith("test_") or k in ("knn5_accuracy", "train_seconds")}
        # The judge's figures, as every saved model has them: samples fitted to all 60,000 training images' codes.
        train_images, _ = load_dataset(settings.dataset, "train", data_dir)
        test_images, _ = load_dataset(settings.dataset, "test", data_dir)
        metrics |= judge_metrics(model, train_images, test_images, settings.dataset)
        save_model(
            model,
            Path(models_dir) / f"{study.store_names[variant.key]}{suffix}",
            metrics=metrics,
            history=history,
            dataset=dataset_entry(settings.dataset, data_dir, study.training_images(settings)),
            extra={
                "settings": settings.to_dict(),
                "study": study.name,
                "status": row.get("status", "completed"),
                "command": f"python -m vae.experiments {arguments}",
            },
        )

    return save


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vae.experiments", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train and measure studies, saving each result")
    run.add_argument("--study", action="append", choices=list(STUDIES), help="repeatable; default: all")
    run.add_argument("--quick", action="store_true", help="the minute-scale settings the page's quick recompute uses")
    run.add_argument("--dataset", default="mnist")
    run.add_argument("--epochs", type=int, default=None, help="override the epochs per model")
    run.add_argument("--out", default="experiments", help="folder for <study>.json/.npz (default: experiments)")
    run.add_argument("--data-dir", default=None)
    run.add_argument(
        "--save-models",
        metavar="DIR",
        default=None,
        help="also save the conv study's conv AE and VAE and the decoupled study's UMAP encoder (with its "
        "decoder) into the model store DIR, to explore them",
    )
    run.add_argument(
        "--variant",
        action="append",
        metavar="KEY",
        help="repeatable: train only these variants of the one --study and put their rows into its saved result "
        "in --out (which must exist, with the same settings); the other rows stay as saved",
    )
    run.add_argument(
        "--jobs",
        default="local",
        help='where the variants train: "local" (in turn, here), "ray" (parallel Ray tasks on a local Ray), '
        '"auto" or "ray://host:10001" (a Ray cluster); the same words as VAE_JOBS',
    )
    args = parser.parse_args(argv)
    from vae.queues import parse_jobs

    try:
        backend, address = parse_jobs(args.jobs)
    except ValueError as error:
        print(f"error: --jobs: {error}", file=sys.stderr)
        return 2
    map_variants = None
    if backend == "ray":
        from vae.ray_jobs import variant_mapper

        map_variants = variant_mapper(address)

    base = QUICK if args.quick else StudySettings()
    try:
        settings = dataclasses.replace(
            base, dataset=args.dataset, epochs=base.epochs if args.epochs is None else args.epochs
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    names = args.study or list(STUDIES)
    if args.variant and len(names) != 1:
        print("error: --variant needs exactly one --study", file=sys.stderr)
        return 2
    for name in names:
        study = STUDIES[name]
        print(f"== {name}: {study.question}")
        last = [0.0]

        def report(fraction: float, message: str, last: list[float] = last) -> None:
            print(
                f"  [{fraction:4.0%}] {message} (+{time.perf_counter() - last[0]:.0f} s)" if last[0] else f"  {message}"
            )
            last[0] = time.perf_counter()

        arguments = " ".join(sys.argv[1:] if argv is None else argv)
        keep = _model_saver(args.save_models, study, settings, args.data_dir, arguments)
        try:
            saved = load_result(args.out, name) if args.variant else None
            result = run_study(
                name,
                settings,
                args.data_dir,
                progress=report,
                on_model=keep,
                map_variants=map_variants,
                only=args.variant,
            )
            if saved is not None:
                result = merge_results(saved, result, [v.key for v in study.variants(settings)])
        except (ValueError, ExperimentFileError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        path = save_result(result, args.out)
        print(f"  saved {path} in {result.seconds:.0f} s")
        for row in result.rows:
            print(
                f"  {row['key']:>18}: mse {row['test_mse_per_pixel']:.4f}  kNN {row['knn5_accuracy']:.3f}  "
                f"silhouette {row['silhouette']:+.3f}  overlap {row['overlap']:.3f}"
            )
    return 0
