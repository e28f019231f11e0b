"""What a saved model records of itself, measured the same way for every model, and the one call that saves it.

Every path that puts a model in the store (``python -m vae.train``, the Train page, the studies' saved
models, an ONNX import) records the same test numbers (:func:`evaluate_for_metadata`), the same judge's
verdict on its samples (:func:`judge_metrics`, when the dataset has a judge) and the same entry for the data
it came from (:func:`dataset_entry`, with the dataset's SHA-256), so two models' metadata compare like with
like wherever they were made.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from vae import judge as judges
from vae.data import dataset_sha256
from vae.metrics import (
    CONFIDENT,
    SampleQuality,
    embed_images,
    knn_accuracy,
    reconstruction_mse,
    reconstruction_quality,
    sample_quality,
)
from vae.models import LatentModel, to_float_images
from vae.store import save_model
from vae.training.timeline import Timeline
from vae.training.trainer import evaluate

# Train images, train labels, test images, test labels: uint8 [N, 28, 28] and int64 [N] each.
Data = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def evaluate_for_metadata(
    model: LatentModel,
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    seed: int = 0,
) -> dict[str, float]:
    """The quality numbers recorded with a saved model: test loss terms, per-pixel MSE, kNN-5 accuracy."""
    torch.manual_seed(seed)  # the VAE's test loss samples z: make the recorded number reproducible
    y_test = test_labels.to(model.device) if model.config.class_weight else None
    x_test = to_float_images(test_images).to(model.device)
    metrics = {f"test_{k}": v for k, v in evaluate(model, x_test, labels=y_test).items()}
    metrics["test_mse_per_pixel"] = reconstruction_mse(model, test_images)
    metrics["knn5_accuracy"] = knn_accuracy(
        embed_images(model, train_images), train_labels, embed_images(model, test_images), test_labels, k=5
    )
    return metrics


# Samples the judge reads for a model's metrics: a share measured on 10,000 is within about 1 point (2 standard
# errors at 70 %) of the model's true share; the seed makes it the same number on every machine. Read at each
# call, so a test suite may lower it for its many small saves (tests/conftest.py).
SAMPLES = 10_000
SAMPLES_SEED = 0
# VAE_JUDGED_IMAGES=n caps both the samples and the test reconstructions the judge reads, in this process and
# every process it starts (the fenced ONNX import's workers): for test suites, whose many small saves would
# otherwise each spend seconds on 20,000 judged images. A figure measured under it says its own n.
JUDGED_IMAGES_ENV = "VAE_JUDGED_IMAGES"


def judged_cap() -> int | None:
    """The cap ``VAE_JUDGED_IMAGES`` sets (a positive integer), or None."""
    text = os.environ.get(JUDGED_IMAGES_ENV, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{JUDGED_IMAGES_ENV} must be a positive integer, got {text!r}")
    return int(text)


def _verdict(quality: SampleQuality) -> dict[str, Any]:
    return {
        "n": quality.n,
        "confident_share": quality.confident_share,
        "class_shares": [float(share) for share in quality.class_shares],
        "entropy": quality.entropy,
    }


def judge_metrics(
    model: LatentModel,
    train_images: torch.Tensor,
    test_images: torch.Tensor,
    dataset: str,
    *,
    n: int | None = None,
    seed: int = SAMPLES_SEED,
    judges_folder: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """``{"samples": ...}``: what the dataset's judge (``vae.judge``) says of ``n`` (default :data:`SAMPLES`)
    seeded samples decoded by ``model`` and, as their ceiling, of its reconstructions of ``test_images`` (uint8
    ``[N, 28, 28]``); ``{}`` when the dataset has no judge (``judges_folder``: the judge's folder instead of
    ``judges/<dataset>``).

    A VAE's samples come from its prior; an AE's or PCA's from a Gaussian fitted to its codes of
    ``train_images`` (``vae.metrics.sample_codes``). The judge only measures: nothing here trains on it.
    The entry's format is checked by ``vae.store.check_samples``.
    """
    found = judges.find(dataset, judges_folder)
    if found is None:
        return {}
    judge, record = found
    cap = judged_cap()
    count = SAMPLES if n is None else n
    if cap is not None:
        count, test_images = min(count, cap), test_images[:cap]
    fit_codes = None if model.config.kind == "vae" else embed_images(model, train_images)
    samples = sample_quality(model, judge, count, seed=seed, fit_codes=fit_codes)
    reconstructions = reconstruction_quality(model, judge, test_images)
    return {
        "samples": {
            "judge_sha256": record.weights_sha256,
            "seed": seed,
            "confident_at": CONFIDENT,
            **_verdict(samples),
            "reconstructions": _verdict(reconstructions),
        }
    }


def numbers_line(metrics: dict[str, Any]) -> str:
    """The metrics in one line for a terminal: the plain numbers, then the judge's figures when there are some."""
    parts = [f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, (int, float))]
    samples = metrics.get("samples")
    if isinstance(samples, dict):
        parts.append(
            f"the judge is confident of {samples['confident_share']:.1%} of {samples['n']:,} samples (class "
            f"entropy {samples['entropy']:.2f}) and of {samples['reconstructions']['confident_share']:.1%} of "
            "the test reconstructions"
        )
    return ", ".join(parts)


def dataset_entry(name: str, data_dir: str | os.PathLike | None, train_images: int) -> dict[str, Any]:
    """``model.json``'s ``dataset``: the dataset's name, the SHA-256 of its files, how many images trained it."""
    return {"name": name, "sha256": dataset_sha256(data_dir, name), "train_images": int(train_images)}


def measure_and_save(
    model: LatentModel,
    path: str | os.PathLike,
    data: Data,
    *,
    dataset: str,
    data_dir: str | os.PathLike | None = None,
    recorded: dict[str, float] | None = None,
    history: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
    timeline: Timeline | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Measure ``model`` on ``data`` (:func:`evaluate_for_metadata`, :func:`judge_metrics`) and save it with what
    it was trained on.

    ``recorded``: numbers measured while training (``train_seconds``, ``epochs_completed``) added to the
    metrics. Returns the saved folder and the metrics as saved.
    """
    metrics = {
        **evaluate_for_metadata(model, *data),
        **judge_metrics(model, data[0], data[2], dataset),
        **(recorded or {}),
    }
    saved = save_model(
        model,
        path,
        history=history,
        metrics=metrics,
        dataset=dataset_entry(dataset, data_dir, len(data[0])),
        extra=extra,
        timeline=timeline,
    )
    return saved, metrics
