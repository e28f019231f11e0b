"""What a saved model records of itself, measured the same way for every model, and the one call that saves it.

Every path that puts a model in the store (``python -m vae.train``, the Train page, the studies' saved
models, an ONNX import) records the same test numbers (:func:`evaluate_for_metadata`) and the same entry
for the data it came from (:func:`dataset_entry`, with the dataset's SHA-256), so two models' metadata
compare like with like wherever they were made.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from vae.data import dataset_sha256
from vae.metrics import embed_images, knn_accuracy, reconstruction_mse
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
) -> tuple[Path, dict[str, float]]:
    """Measure ``model`` on ``data`` (:func:`evaluate_for_metadata`) and save it with what it was trained on.

    ``recorded``: numbers measured while training (``train_seconds``, ``epochs_completed``) added to the
    metrics. Returns the saved folder and the metrics as saved.
    """
    metrics = {**evaluate_for_metadata(model, *data), **(recorded or {})}
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
