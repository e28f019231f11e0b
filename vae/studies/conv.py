"""``conv``: what does a convolutional AE change? The dense and the conv AE/VAE pair in 2-D.

Here: its four variants, the two of them the model store keeps (``--save-models``), and its answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from vae.models import ModelConfig
from vae.studies.runner import Study, StudyResult, StudySettings, Variant


class Conv(Study):
    name = "conv"
    question = "What does a convolutional AE change?"
    store_names: ClassVar[Mapping[str, str]] = {"conv-ae": "ae-2d-conv", "conv-vae": "vae-2d-conv"}

    def variants(self, settings: StudySettings) -> list[Variant]:
        hidden, conv = settings.hidden, settings.conv_hidden
        return [
            Variant("dense-ae", "dense", ModelConfig(kind="ae", hidden=hidden)),
            Variant("dense-vae", "dense", ModelConfig(kind="vae", hidden=hidden)),
            Variant("conv-ae", "conv", ModelConfig(kind="ae", arch="conv", hidden=conv)),
            Variant("conv-vae", "conv", ModelConfig(kind="vae", arch="conv", hidden=conv)),
        ]

    def summarise(self, result: StudyResult) -> list[str]:
        r = {row["key"]: row for row in result.rows}
        return [
            f"Conv vs dense, MSE per pixel: AE {r['conv-ae']['test_mse_per_pixel']:.4f} vs "
            f"{r['dense-ae']['test_mse_per_pixel']:.4f}, VAE {r['conv-vae']['test_mse_per_pixel']:.4f} vs "
            f"{r['dense-vae']['test_mse_per_pixel']:.4f}; kNN-5 accuracy AE {r['conv-ae']['knn5_accuracy']:.3f} vs "
            f"{r['dense-ae']['knn5_accuracy']:.3f}, VAE {r['conv-vae']['knn5_accuracy']:.3f} vs "
            f"{r['dense-vae']['knn5_accuracy']:.3f}; silhouette AE {r['conv-ae']['silhouette']:+.3f} vs "
            f"{r['dense-ae']['silhouette']:+.3f}.",
            f"The price: {r['conv-ae']['parameters']:,} parameters instead of {r['dense-ae']['parameters']:,} (most "
            f"in the layer between the 64 x 7 x 7 feature maps and the code) and "
            f"{r['conv-ae']['train_seconds'] / r['dense-ae']['train_seconds']:.1f}x the training time on this CPU.",
        ]
