"""``beta``: what does the KL term do? 2-D VAEs with the KL weighted by each beta (0 is a noisy AE).

Here: its variants, the loss it varies in the page's words, the active units per beta, and its answer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vae.metrics import ACTIVE_VARIANCE, active_units
from vae.models import LatentModel, ModelConfig
from vae.studies.runner import Study, StudyResult, StudySettings, Variant


class Beta(Study):
    name = "beta"
    question = "What does the KL term do?"
    intro = (
        r"The VAE's loss is $\text{recon} + \beta \cdot KL(q(z|x)\,\|\,N(0, I))$; $\beta = 0$ keeps the sampling "
        r"noise but drops the pull towards the prior (a noisy AE), $\beta = 1$ is the ELBO."
    )

    def variants(self, settings: StudySettings) -> list[Variant]:
        return [
            Variant(f"beta-{b:g}", "VAE", ModelConfig(kind="vae", hidden=settings.hidden, beta=b))
            for b in settings.betas
        ]

    def measure(self, model: LatentModel, test_codes: torch.Tensor, settings: StudySettings) -> dict[str, float]:
        # Burda et al. (2016): a dimension is active when its posterior mean varies over the test images.
        return {"active_units": active_units(test_codes), "active_units_images": len(test_codes)}

    def summarise(self, result: StudyResult) -> list[str]:
        ordered = sorted(result.rows, key=lambda row: row["beta"])
        a, b = ordered[0], ordered[-1]
        worst = max(ordered, key=lambda row: row["overlap"])
        kl_falls = all(x["test_kl"] >= y["test_kl"] for x, y in zip(ordered, ordered[1:]))
        return [
            f"From beta {a['beta']:g} to {b['beta']:g} the KL {'falls steadily' if kl_falls else 'moves'} from "
            f"{a['test_kl']:.1f} to {b['test_kl']:.1f} nats while reconstruction rises from {a['test_recon']:.1f} to "
            f"{b['test_recon']:.1f} nats: the codes are pulled into the prior's disc and carry less detail.",
            "Class overlap (share of 5 nearest neighbours from another class) by beta: "
            + ", ".join(f"{row['overlap']:.3f} (β={row['beta']:g})" for row in ordered)
            + f"; most at β={worst['beta']:g}. kNN-5 accuracy: "
            + ", ".join(f"{row['knn5_accuracy']:.3f}" for row in ordered)
            + ".",
        ]


def active_units_by_beta(result: StudyResult) -> list[dict[str, Any]]:
    """Per beta, in increasing order: ``beta``, ``active_units`` of ``latent_dim``, the smallest variance of a
    dimension's posterior mean (``min_variance``, against :data:`vae.metrics.ACTIVE_VARIANCE`) and ``images``,
    how many test images they were measured on.

    A row recorded with ``active_units`` (a run since the study measures them) counts over all the test images;
    for a result recorded before, the count comes from the posterior means of the ``settings.map_points`` test
    images its map stores (a seeded sample of the test set), as does the smallest variance always.
    """
    out = []
    for row in sorted(result.rows, key=lambda row: row["beta"]):
        means = result.maps.get(row["key"])
        variance = np.asarray(means, dtype=np.float64).var(axis=0) if means is not None else None
        if "active_units" in row:
            count, images = int(row["active_units"]), int(row["active_units_images"])
        elif variance is not None:
            count, images = int((variance > ACTIVE_VARIANCE).sum()), len(means)
        else:
            continue  # neither recorded nor mapped: nothing to count from
        out.append(
            {
                "beta": row["beta"],
                "active_units": count,
                "latent_dim": row["latent_dim"],
                "min_variance": float(variance.min()) if variance is not None else float("nan"),
                "images": images,
            }
        )
    return out


def active_units_sentence(by_beta: list[dict[str, Any]]) -> str:
    """:func:`active_units_by_beta` in words, from its numbers: the count per beta, then what the least-used
    dimension says (all kept, or which betas switched dimensions off)."""
    counts = ", ".join(f"β = {row['beta']:g}: {row['active_units']} of {row['latent_dim']}" for row in by_beta)
    images = " / ".join(f"{n:,}" for n in sorted({row["images"] for row in by_beta}))
    sentence = f"{counts} active (over {images} test images)."
    collapsed = [row for row in by_beta if row["active_units"] < row["latent_dim"]]
    least = min(by_beta, key=lambda row: row["min_variance"])
    if not collapsed:
        sentence += (
            f" Every dimension is kept: the least-used varies by {least['min_variance']:.3g} (β = {least['beta']:g}), "
            f"{least['min_variance'] / ACTIVE_VARIANCE:,.0f} times the threshold, so the KL squeezes the code "
            "towards the prior without switching a dimension off."
        )
    else:
        sentence += " Dimensions switched off (collapsed to the prior) at " + ", ".join(
            f"β = {row['beta']:g} ({row['latent_dim'] - row['active_units']})" for row in collapsed
        )
        sentence += "."
    return sentence
