"""Auto-encoders and variational auto-encoders on MNIST and Fashion-MNIST, and what their latent spaces look like.

The public names are imported lazily (PEP 562), so ``import vae`` costs nothing until one is used and
``python -m vae.data`` does not import torch before it needs to.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "load_mnist": "vae.data",
    "load_dataset": "vae.data",
    "ensure_mnist": "vae.data",
    "ensure_dataset": "vae.data",
    "MnistUnavailableError": "vae.data",
    "DatasetUnavailableError": "vae.data",
    "run_study": "vae.experiments",
    "ModelConfig": "vae.models",
    "LatentModel": "vae.models",
    "build_model": "vae.models",
    "fit_pca": "vae.models",
    "TrainSettings": "vae.training.trainer",
    "train": "vae.training.trainer",
    "save_model": "vae.store",
    "load_model": "vae.store",
    "list_models": "vae.store",
    "import_onnx": "vae.onnx_import",
    "StoreError": "vae.store",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'vae' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return __all__
