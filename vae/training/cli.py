"""``python -m vae.train``: train an AE or a VAE (or fit PCA) on MNIST or Fashion-MNIST and save it to the store.

``vae/train.py`` runs :func:`main`; the training itself is :func:`vae.training.trainer.train`, the
measuring and saving :func:`vae.training.saving.measure_and_save`.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from pathlib import Path

import torch

from vae.data import DATASETS
from vae.models import ModelConfig
from vae.training.saving import measure_and_save, numbers_line
from vae.training.timeline import TimelineSettings
from vae.training.trainer import BatchProgress, EpochRecord, TrainSettings, pick_device, train


def _parse_hidden(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--hidden takes comma-separated integers, e.g. 512,256; got {text!r}"
        ) from None


def _parse_steps(text: str) -> tuple[int, ...]:
    if text.strip().lower() == "none":
        return ()
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--timeline-decoders takes comma-separated batch counts, e.g. 0,32,256,2048, or none; got {text!r}"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    defaults, settings = ModelConfig(), TrainSettings()
    parser = argparse.ArgumentParser(
        prog="python -m vae.train",
        description="Train an AE or a VAE on MNIST or Fashion-MNIST and save it to the model store.",
    )
    model = parser.add_argument_group("model")
    model.add_argument("--kind", choices=["ae", "vae", "pca"], default=defaults.kind, help="pca fits, no training")
    model.add_argument("--arch", choices=["dense", "conv"], default=defaults.arch)
    model.add_argument("--latent-dim", type=int, default=defaults.latent_dim)
    model.add_argument("--hidden", type=_parse_hidden, default=defaults.hidden, help="e.g. 400 or 512,256")
    model.add_argument("--recon-loss", choices=["bce", "mse"], default=defaults.recon_loss)
    model.add_argument("--beta", type=float, default=defaults.beta, help="KL weight (VAE only)")
    model.add_argument("--sparsity", type=float, default=defaults.sparsity, help="L1 weight on z (AE only)")
    model.add_argument("--tied", action="store_true", help="decoder reuses the encoder's weights (dense AE)")
    model.add_argument(
        "--linear", action="store_true", help="linear AE: no hidden layers, MSE (overrides --hidden and --recon-loss)"
    )
    model.add_argument(
        "--class-weight",
        type=float,
        default=defaults.class_weight,
        help="weight of the class-aware term (uses the labels)",
    )
    model.add_argument(
        "--invertible",
        action="store_true",
        help="dense AE whose decoder is its encoder's exact inverse (orthonormal weights; needs --recon-loss mse)",
    )
    model.add_argument(
        "--umap-weight",
        type=float,
        default=defaults.umap_weight,
        help="weight of the UMAP term on the training images' neighbour graph (AE; no labels)",
    )
    model.add_argument(
        "--decoupled",
        action="store_true",
        help="the decoder learns from stop-gradient codes: only the UMAP term shapes the map",
    )
    opt = parser.add_argument_group("training")
    opt.add_argument("--epochs", type=int, default=settings.epochs)
    opt.add_argument("--batch-size", type=int, default=settings.batch_size)
    opt.add_argument("--lr", type=float, default=settings.learning_rate)
    opt.add_argument("--schedule", choices=["constant", "cosine"], default=settings.schedule)
    opt.add_argument("--weight-decay", type=float, default=settings.weight_decay)
    opt.add_argument("--seed", type=int, default=settings.seed)
    opt.add_argument("--max-seconds", type=float, default=None, help="stop training after this long")
    opt.add_argument(
        "--precision",
        default=settings.precision,
        help="float32 or bfloat16: each batch's loss under CPU autocast (needs a CPU with bfloat16; see the README's figures)",
    )
    timeline = parser.add_argument_group("timeline (see vae.training.timeline)")
    timeline.add_argument(
        "--no-timeline", action="store_true", help="do not record the codes of 2,000 test images while training"
    )
    timeline.add_argument(
        "--timeline-decoders",
        type=_parse_steps,
        default=TimelineSettings().decoder_steps,
        metavar="STEPS",
        help="batches seen at which to keep the decoder (default 0,32,256,2048)",
    )
    io = parser.add_argument_group("input and output")
    io.add_argument("--dataset", choices=list(DATASETS), default="mnist", help="what to train on (default: mnist)")
    io.add_argument("--data-dir", default=None, help="data location (default: $VAE_DATA_DIR or ./data)")
    io.add_argument("--out", required=True, help="model folder to write, e.g. models/my-vae")
    io.add_argument("--limit", type=int, default=None, help="train on the first N images only (quick tries)")
    return parser


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    from vae.data import DatasetUnavailableError, load_dataset
    from vae.store import StoreError, check_name

    args = build_parser().parse_args(argv)
    command = "python -m vae.train " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        check_name(Path(args.out).name)
        config = ModelConfig(
            kind=args.kind,
            arch=args.arch,
            latent_dim=args.latent_dim,
            hidden=() if args.kind == "pca" or args.linear else args.hidden,
            recon_loss="mse" if args.linear else args.recon_loss,
            beta=args.beta,
            sparsity=args.sparsity,
            tied=args.tied,
            linear=args.linear,
            class_weight=args.class_weight,
            invertible=args.invertible,
            umap_weight=args.umap_weight,
            decoupled=args.decoupled,
        )
        settings = TrainSettings(
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.lr,
            schedule=args.schedule,
            weight_decay=args.weight_decay,
            seed=args.seed,
            max_seconds=args.max_seconds,
            precision=args.precision,
        )
        recorded = not args.no_timeline and args.kind != "pca"
        timeline = TimelineSettings(decoder_steps=args.timeline_decoders) if recorded else None
        if args.limit is not None and args.limit < 1:
            raise ValueError(f"--limit must be a positive number of images, got {args.limit}")
        train_images, train_labels = load_dataset(args.dataset, "train", args.data_dir)
        test_images, test_labels = load_dataset(args.dataset, "test", args.data_dir)
    except (ValueError, StoreError, DatasetUnavailableError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.limit is not None:
        train_images, train_labels = train_images[: args.limit], train_labels[: args.limit]
        if timeline is not None and timeline.loss_images > len(train_images):  # a quick try on few images
            timeline = dataclasses.replace(timeline, loss_images=max(10, len(train_images)))

    if config.kind == "pca":
        return _fit_and_save_pca(args, config, command, train_images, train_labels, test_images, test_labels)
    print(f"training {config.describe()} on {len(train_images):,} {args.dataset} images, device {pick_device()}")
    bar = tqdm(total=settings.epochs * math.ceil(len(train_images) / settings.batch_size), unit="batch")

    def on_batch(progress: BatchProgress) -> None:
        bar.update(1)
        if progress.batch % 20 == 0:
            bar.set_postfix(epoch=progress.epoch, **{k: f"{v:.2f}" for k, v in progress.terms.items()})

    def on_epoch(record: EpochRecord) -> None:
        test = ", ".join(f"{k} {v:.3f}" for k, v in record.test.items())
        bar.write(f"epoch {record.epoch}: {record.seconds:.1f} s, test {test}")

    started = time.perf_counter()
    try:
        result = train(
            config,
            train_images,
            test_images,
            settings,
            on_batch=on_batch,
            on_epoch=on_epoch,
            train_labels=train_labels,
            test_labels=test_labels,
            timeline=timeline,
        )
    except ValueError as error:
        bar.close()
        print(f"error: {error}", file=sys.stderr)
        return 2
    bar.close()
    seconds = time.perf_counter() - started
    if result.status == "diverged":
        print(f"training diverged: {result.message}", file=sys.stderr)
        if not result.history:
            print("no epoch completed, so nothing was saved", file=sys.stderr)
            return 1
    train_seconds = sum(record.seconds for record in result.history)
    if result.timeline is not None:
        share = result.timeline.record_seconds / max(train_seconds, 1e-9)
        print(
            f"timeline: {result.timeline.frames} frames of {result.timeline.points:,} test images, "
            f"{len(result.timeline.decoders)} decoders kept; recording took "
            f"{result.timeline.record_seconds:.1f} s ({share:.1%} of the training time)"
        )
    path, metrics = measure_and_save(
        result.model,
        args.out,
        (train_images, train_labels, test_images, test_labels),
        dataset=args.dataset,
        data_dir=args.data_dir,
        recorded={"train_seconds": train_seconds, "epochs_completed": len(result.history)},
        history=[record.to_dict() for record in result.history],
        extra={
            "settings": dataclasses.asdict(settings),
            "status": result.status,
            "message": result.message,
            "wall_seconds": seconds,
            "device": str(pick_device()),
            "torch": torch.__version__,
            "command": command,
        },
        timeline=result.timeline,
    )
    print(f"saved {path} ({result.status}): {numbers_line(metrics)}")
    return 0 if result.status != "diverged" else 1


def _fit_and_save_pca(
    args: argparse.Namespace,
    config: ModelConfig,
    command: str,
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
) -> int:
    from vae.models import fit_pca

    started = time.perf_counter()
    model = fit_pca(train_images, config.latent_dim, recon_loss=config.recon_loss)
    seconds = time.perf_counter() - started
    path, metrics = measure_and_save(
        model,
        args.out,
        (train_images, train_labels, test_images, test_labels),
        dataset=args.dataset,
        data_dir=args.data_dir,
        recorded={"train_seconds": seconds},
        extra={"status": "fitted", "command": command},
    )
    print(f"saved {path}: {numbers_line(metrics)}")
    return 0
