"""``pca_vs_ae``: does a dense AE learn something like PCA?

PCA, a linear AE, the dense AE, the same AE with tied (transposed) decoder weights, and the VAE at each
latent size; the linear AE's decoder subspace is compared with PCA's by principal angles (Baldi & Hornik,
1989, predict they coincide). Here: its variants, the angles it records, its answer, and the Tied weights
tab's answer and text, which read this study's result (it trains the tied and the untied AE at every size).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from vae.models import LatentModel, ModelConfig
from vae.studies.runner import Study, StudyResult, StudySettings, Variant

# Gradient descent finds PCA's subspace slowly along directions whose eigenvalues are close (the rate is
# set by the eigengap): with batch 128 and lr 1e-3 a 2-D linear AE ends 30-85 degrees off after 10 epochs;
# with batch 32 and lr 3e-3 it ends within 2 degrees (measured on MNIST).
LINEAR_AE = (("batch_size", 32), ("learning_rate", 3e-3))

TIED_INTRO = (
    "A tied AE's decoder uses the encoder's weight matrices transposed, $W_{dec} = W_{enc}^T$ (each layer keeps "
    "its own bias): half the weights, and the decoder is forced to read back along the directions the encoder "
    "reads. Trained beside the untied AE in the PCA study, same layers and settings."
)


def principal_angles_degrees(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Principal angles between the column spaces of ``a [P, D]`` and ``b [P, D]``, largest first, in degrees.

    0 everywhere means the two span the same subspace, whatever basis each uses.
    """
    from scipy.linalg import subspace_angles

    return np.degrees(subspace_angles(np.asarray(a, np.float64), np.asarray(b, np.float64)))


def linear_ae_angles(models: dict[str, LatentModel], dims: Sequence[int]) -> dict[str, dict[str, list[float]]]:
    """Per latent size, the principal angles (degrees) between PCA's subspace and the linear AE's.

    The decoder's columns span the images it can draw; the encoder's rows, the directions it reads.
    """
    out = {}
    for d in dims:
        pca, linear = models.get(f"pca-{d}"), models.get(f"linear-{d}")
        if pca is None or linear is None:
            continue
        components = pca.components.t().numpy()  # [784, D]
        out[str(d)] = {
            "decoder": principal_angles_degrees(components, linear.decoder.head.weight.detach().numpy()).tolist(),
            "encoder": principal_angles_degrees(components, linear.encoder.head.weight.detach().t().numpy()).tolist(),
        }
    return out


def angle_rows(result: StudyResult) -> list[dict[str, Any]]:
    """The principal angles between PCA's subspace and the linear AE's, as rows for
    :func:`vae.plots.studies.metric_curves`: largest and mean angle per latent size and part."""
    return [
        {"family": f"linear AE {part}", "latent_dim": int(d), "largest": max(a), "mean": sum(a) / len(a)}
        for d, per_part in result.extras.get("angles", {}).items()
        for part, a in per_part.items()
    ]


def summarise_tied(result: StudyResult) -> list[str]:
    """Tied vs untied dense AE, from this study's result (which trains both at every size)."""
    rows = {row["key"]: row for row in result.rows}
    dims = [d for d in result.settings.dims if f"tied-{d}" in rows]
    lo, hi = dims[0], dims[-1]
    tied, dense = rows[f"tied-{lo}"], rows[f"dense-{lo}"]
    return [
        f"Tied decoder: {tied['parameters']:,} parameters instead of {dense['parameters']:,} at D={lo}; MSE per pixel "
        f"{tied['test_mse_per_pixel']:.4f} vs {dense['test_mse_per_pixel']:.4f} at D={lo} and "
        f"{rows[f'tied-{hi}']['test_mse_per_pixel']:.4f} vs {rows[f'dense-{hi}']['test_mse_per_pixel']:.4f} at D={hi}; "
        f"kNN-5 at D={lo} {tied['knn5_accuracy']:.3f} vs {dense['knn5_accuracy']:.3f}.",
    ]


class PcaVsAe(Study):
    name = "pca_vs_ae"
    question = "Does a dense AE learn something like PCA?"

    def variants(self, settings: StudySettings) -> list[Variant]:
        hidden = settings.hidden
        out = []
        for d in settings.dims:
            out += [
                Variant(f"pca-{d}", "PCA", ModelConfig(kind="pca", latent_dim=d, hidden=(), recon_loss="mse")),
                Variant(
                    f"linear-{d}",
                    "linear AE",
                    ModelConfig(kind="ae", latent_dim=d, hidden=(), linear=True, recon_loss="mse"),
                    LINEAR_AE,
                ),
                Variant(f"dense-{d}", "dense AE", ModelConfig(kind="ae", latent_dim=d, hidden=hidden)),
                Variant(f"tied-{d}", "tied AE", ModelConfig(kind="ae", latent_dim=d, hidden=hidden, tied=True)),
                Variant(f"vae-{d}", "VAE", ModelConfig(kind="vae", latent_dim=d, hidden=hidden)),
            ]
        return out

    def keeps(self, variant: Variant) -> bool:
        return variant.config.kind == "pca" or variant.config.linear  # the pair the angles compare

    def extras(
        self,
        models: dict[str, LatentModel],
        variants: list[Variant],
        train_images: torch.Tensor,
        settings: StudySettings,
    ) -> dict[str, Any]:
        return {"angles": linear_ae_angles(models, settings.dims)}

    def summarise(self, result: StudyResult) -> list[str]:
        rows = {row["key"]: row for row in result.rows}
        mse = lambda key: rows[key]["test_mse_per_pixel"]  # noqa: E731
        dims = [d for d in result.settings.dims if f"pca-{d}" in rows]
        lo, hi = dims[0], dims[-1]
        gain = {d: 1 - mse(f"dense-{d}") / mse(f"pca-{d}") for d in dims}
        best = max(gain, key=gain.get)
        angles = result.extras.get("angles", {})
        decoder = {d: max(angles[str(d)]["decoder"]) for d in dims if str(d) in angles}
        encoder = [a for d in dims if str(d) in angles for a in angles[str(d)]["encoder"]]
        vae_worse = sum(mse(f"vae-{d}") > mse(f"dense-{d}") for d in dims)
        off = max(abs(mse(f"linear-{d}") / mse(f"pca-{d}") - 1) for d in dims)
        # "Learned" needs both: reconstructions as good as PCA's and a decoder spanning nearly its subspace.
        learned = off < 0.05 and max(decoder.values(), default=0.0) < 20
        return [
            f"Dense AE vs PCA, MSE per pixel: {mse(f'dense-{lo}'):.4f} vs {mse(f'pca-{lo}'):.4f} at D={lo}, "
            f"{mse(f'dense-{hi}'):.4f} vs {mse(f'pca-{hi}'):.4f} at D={hi}; the non-linear AE is better than PCA "
            f"at {sum(g > 0 for g in gain.values())} of {len(dims)} sizes, by {gain[best]:.0%} at best (D={best}).",
            (
                f"The linear AE learns PCA's subspace: its MSE is within {off:.1%} of PCA's at every size, and "
                if learned
                else f"The linear AE reconstructs as well as PCA (MSE within {off:.1%} at every size) and spans nearly "
                "its subspace, except along directions of almost equal variance, which gradient descent finds "
                "slowly: "
                if off < 0.05
                else f"In this run the linear AE has not reached PCA's subspace yet (its MSE is up to {off:.0%} off "
                "PCA's; it needs more training steps), and "
            )
            + "the largest principal angle between its decoder's columns and PCA's axes is "
            + ", ".join(f"{a:.1f}° (D={d})" for d, a in decoder.items())
            + (
                f". Its encoder's rows stray further ({min(encoder):.0f}-{max(encoder):.0f}°): along directions "
                "in which the images barely vary, misreading costs almost nothing, so gradient descent never "
                "corrects it."
                if learned and encoder
                else "."
            ),
            f"The VAE reconstructs worse than the AE at {vae_worse} of {len(dims)} sizes ({mse(f'vae-{lo}'):.4f} at "
            f"D={lo}, {mse(f'vae-{hi}'):.4f} at D={hi}): the price of its sampling noise and its KL term.",
        ]
