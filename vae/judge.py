"""The judge: a small convolutional digit (or garment) classifier per dataset, shipped with the project.

It only ever *measures* images a model decodes (is this a confident digit? which one?); no model trains on
it, and nothing it says feeds back into a loss. Where its numbers appear, they are labelled as the judge's.

    judge = vae.judge.load("mnist")                 # the shipped classifier, checked against its SHA-256
    probabilities = judge.predict_proba(images)     # float [B, 1, 28, 28] in [0, 1] -> float32 [B, 10]

Saved as the store saves a model (``vae.store``): the weights in safetensors under a content-addressed name,
beside a JSON record of how it was trained and what it scored, so a file rebuilds its own judge and never
unpickles. ``python -m vae.judge train|evaluate`` trains and checks them (:func:`main`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes
from torch import nn

from vae.data import DATASETS, dataset_sha256, load_dataset
from vae.files import write_atomically
from vae.models import to_float_images

JUDGES_DIR = Path(__file__).resolve().parents[1] / "judges"
RECORD_FILE = "judge.json"
WEIGHTS_PATTERN = re.compile(r"weights-[0-9a-f]{16}\.safetensors")
FORMAT_VERSION = 1
MAX_WEIGHTS_BYTES = 16 * 1024 * 1024
# What the shipped judges must score on their dataset's 10,000 test images.
TARGET_ACCURACY = {"mnist": 0.99, "fashion-mnist": 0.90}

Progress = Callable[[str], None]


class JudgeError(Exception):
    """A judge that cannot be loaded: missing, damaged or from another format; the message names the file."""


class Judge(nn.Module):
    """Two 3 x 3 conv blocks (32 and 64 channels, each max-pooled) and a 128-unit layer: the classic small MNIST
    CNN, about 99 % on MNIST's test set after a few epochs. Dropout only while training."""

    def __init__(self, n_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # [B, 32, 14, 14]
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # [B, 64, 7, 7]
        )  # fmt: skip
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(0.25), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.25),
            nn.Linear(128, n_classes),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x ``[B, 1, 28, 28]`` in [0, 1] -> logits ``[B, 10]``."""
        return self.head(self.features(x))

    @torch.no_grad()
    def predict_proba(self, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """Images uint8 ``[B, 28, 28]`` or float ``[B, 1, 28, 28]`` in [0, 1] -> class probabilities float32 ``[B, 10]``.

        Always in eval mode (no dropout), whatever mode the judge was in, which it is left in.
        """
        images = torch.as_tensor(images)
        if tuple(images.shape[1:]) not in ((28, 28), (1, 28, 28)):
            raise ValueError(f"images must be [B, 28, 28] or [B, 1, 28, 28], got {tuple(images.shape)}")
        x = to_float_images(images)
        was_training = self.training
        self.eval()
        try:
            device = next(self.parameters()).device
            parts = [
                F.softmax(self(x[i : i + batch_size].to(device)), dim=1).cpu() for i in range(0, len(x), batch_size)
            ]
        finally:
            self.train(was_training)
        return torch.cat(parts) if parts else torch.zeros(0, 10)


@dataclass(frozen=True)
class JudgeRecord:
    """``judge.json``: which data the judge saw, how it was trained, what it scored, and its weights file."""

    dataset: str
    dataset_sha256: str
    epochs: int
    batch_size: int
    seed: int
    train_images: int
    test_accuracy: float
    seconds: float
    weights_file: str
    weights_sha256: str
    format_version: int = FORMAT_VERSION


def accuracy(judge: Judge, images: torch.Tensor, labels: torch.Tensor) -> float:
    """The share of ``images`` (uint8 ``[N, 28, 28]``) whose most probable class is their label ``[N]``."""
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"need as many labels as images (and at least one), got {len(images)} and {len(labels)}")
    return float((judge.predict_proba(images).argmax(1) == torch.as_tensor(labels)).float().mean())


def train_judge(
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    epochs: int = 3,
    batch_size: int = 128,
    seed: int = 0,
    progress: Progress | None = None,
) -> Judge:
    """Fit a :class:`Judge` on uint8 images ``[N, 28, 28]`` and labels ``[N]``: Adam, a one-cycle schedule.

    Seeded (weights, batch order, dropout), so the same call gives the same judge on the same machine.
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be at least 1, got {epochs} and {batch_size}")
    if len(train_images) != len(train_labels) or len(train_images) == 0:
        raise ValueError(f"need as many labels as images, got {len(train_images)} and {len(train_labels)}")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    judge = Judge()
    x, y = to_float_images(train_images), torch.as_tensor(train_labels, dtype=torch.int64)
    steps = epochs * math.ceil(len(x) / batch_size)
    optimiser = torch.optim.Adam(judge.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=3e-3, total_steps=steps)
    judge.train()
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for start in range(0, len(x), batch_size):
            batch = order[start : start + batch_size]
            loss = F.cross_entropy(judge(x[batch]), y[batch])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(batch)
        if progress:
            progress(f"epoch {epoch + 1}/{epochs}: cross-entropy {total / len(x):.4f}")
    return judge.eval()


def save_judge(judge: Judge, folder: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Write ``folder/weights-<sha16>.safetensors`` then ``folder/judge.json`` (``record`` plus the weights'
    name and hash), each atomically; the JSON is written last, so a killed save leaves the old judge whole."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = save_safetensors_bytes({k: v.detach().cpu().contiguous() for k, v in judge.state_dict().items()})
    digest = hashlib.sha256(weights).hexdigest()
    name = f"weights-{digest[:16]}.safetensors"
    write_atomically(folder / name, weights)
    full = JudgeRecord(**{**record, "weights_file": name, "weights_sha256": digest})
    write_atomically(folder / RECORD_FILE, (json.dumps(asdict(full), indent=2) + "\n").encode())
    for old in folder.glob("weights-*.safetensors"):
        if old.name != name:
            old.unlink()
    return folder


def read_record(folder: str | os.PathLike) -> JudgeRecord:
    """``folder/judge.json`` checked field by field; raises :class:`JudgeError` naming what is wrong."""
    path = Path(folder) / RECORD_FILE
    try:
        raw = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise JudgeError(f"no judge at {path.parent} ({RECORD_FILE} is missing)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise JudgeError(f"{path} is not valid JSON ({error})") from None
    if not isinstance(raw, dict) or raw.get("format_version") != FORMAT_VERSION:
        raise JudgeError(f"{path}: format_version must be {FORMAT_VERSION}")
    try:
        record = JudgeRecord(**raw)
    except TypeError as error:
        raise JudgeError(f"{path}: {error}") from None
    if not WEIGHTS_PATTERN.fullmatch(str(record.weights_file)):
        raise JudgeError(f"{path} names an invalid weights file {record.weights_file!r}")
    if record.dataset not in DATASETS:
        raise JudgeError(f"{path}: dataset must be one of {sorted(DATASETS)}, got {record.dataset!r}")
    return record


def load(dataset: str = "mnist", folder: str | os.PathLike | None = None) -> Judge:
    """The judge of ``dataset`` (from ``judges/<dataset>/`` unless ``folder`` is given), in eval mode.

    Its weights must match the SHA-256 its record holds; raises :class:`JudgeError` otherwise.
    """
    folder = Path(folder) if folder is not None else JUDGES_DIR / dataset
    record = read_record(folder)
    if record.dataset != dataset:
        raise JudgeError(f"{folder / RECORD_FILE} is the {record.dataset} judge, not the {dataset} one")
    path = folder / record.weights_file
    try:
        if path.stat().st_size > MAX_WEIGHTS_BYTES:
            raise JudgeError(f"{path} is larger than a judge's {MAX_WEIGHTS_BYTES:,} bytes")
        data = path.read_bytes()
    except FileNotFoundError:
        raise JudgeError(f"{path} is missing") from None
    if hashlib.sha256(data).hexdigest() != record.weights_sha256:
        raise JudgeError(f"{path} does not match the SHA-256 recorded in {RECORD_FILE}")
    judge = Judge()
    try:
        judge.load_state_dict(load_safetensors_bytes(data))
    except (SafetensorError, RuntimeError) as error:
        raise JudgeError(f"{path} does not hold a judge's weights ({str(error).splitlines()[0]})") from None
    return judge.eval()


def find(dataset: str, folder: str | os.PathLike | None = None) -> tuple[Judge, JudgeRecord] | None:
    """The judge of ``dataset`` and its record, or None when there is none (no ``judge.json`` in its folder,
    e.g. a dataset no judge was trained for). A judge that is there but damaged raises :class:`JudgeError`."""
    folder = Path(folder) if folder is not None else JUDGES_DIR / dataset
    if not (folder / RECORD_FILE).is_file():
        return None
    return load(dataset, folder), read_record(folder)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vae.judge", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a dataset's judge and save it to judges/<dataset>/")
    train.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    train.add_argument("--epochs", type=int, default=4)
    train.add_argument("--batch-size", type=int, default=128)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", type=Path, help="folder (default judges/<dataset>)")
    train.add_argument("--data-dir", default=None)
    evaluate = commands.add_parser("evaluate", help="a saved judge's accuracy on its dataset's test set")
    evaluate.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    evaluate.add_argument("--folder", type=Path, help="folder (default judges/<dataset>)")
    evaluate.add_argument("--data-dir", default=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    test_images, test_labels = load_dataset(args.dataset, "test", args.data_dir)
    if args.command == "evaluate":
        try:
            judge = load(args.dataset, args.folder)
        except JudgeError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"{args.dataset} judge: {accuracy(judge, test_images, test_labels):.2%} on the 10,000 test images")
        return 0
    train_images, train_labels = load_dataset(args.dataset, "train", args.data_dir)
    started = time.perf_counter()
    judge = train_judge(train_images, train_labels, args.epochs, args.batch_size, args.seed, progress=print)
    seconds = time.perf_counter() - started
    score = accuracy(judge, test_images, test_labels)
    record = {
        "dataset": args.dataset,
        "dataset_sha256": dataset_sha256(args.data_dir, args.dataset),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "train_images": len(train_images),
        "test_accuracy": round(score, 6),
        "seconds": round(seconds, 1),
    }
    folder = save_judge(judge, args.out or JUDGES_DIR / args.dataset, record)
    target = TARGET_ACCURACY[args.dataset]
    print(f"saved {folder}: {score:.2%} on the test images in {seconds:.0f} s (target {target:.0%})")
    return 0 if score >= target else 1


if __name__ == "__main__":
    sys.exit(main())
