"""``conv_filters``: what does a conv AE's first layer learn, local PCAs of its patches?

The conv AE and a linear conv AE, their 4 x 4 filters (and what training changed in them) against the
principal components of the patches they see (:mod:`vae.studies.patches`). Here: its variants, the patch
PCA and per-model filter comparison it records, the method in the page's words, its answer, and the rows
and banks its figures draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from vae.models import CONV_KERNEL, LatentModel, ModelConfig, build_model
from vae.studies.patches import filter_energy, filter_subspace_angles, patch_pca
from vae.studies.runner import Study, StudyResult, StudySettings, Variant

# The share of patch variance whose components the filters are compared with: the first few, which carry
# almost all of it (the rest is where the filters' random start can linger, Chowers & Weiss, 2023).
VARIANCE_SHARE = 0.8


def first_layer_filters(model: LatentModel) -> np.ndarray:
    """A conv model's first-layer filters, float64 ``[C, k * k]``."""
    weight = model.encoder.body[0].weight.detach().cpu()  # [C, 1, k, k]
    return weight.reshape(len(weight), -1).double().numpy()


def initial_model(config: ModelConfig, seed: int) -> LatentModel:
    """The untrained model :func:`vae.training.trainer.train` starts from with this seed (it seeds, then builds)."""
    torch.manual_seed(seed)
    return build_model(config)


def conv_filter_extras(
    models: dict[str, LatentModel], configs: dict[str, ModelConfig], train_images: torch.Tensor, seed: int
) -> dict[str, Any]:
    """The patch PCA the first layers are compared with, and per model its filters' angles and energies:
    the trained filters, the ones it started from, and what training changed (trained - initial)."""
    pca = patch_pca(train_images, CONV_KERNEL, stride=2, padding=1)  # the conv stack's first layer's patches
    out: dict[str, Any] = {
        "patch_pca": {
            "components": pca.components.tolist(),
            "explained_variance": pca.explained_variance.tolist(),
            "mean": pca.mean.tolist(),
            "kernel": pca.kernel,
            "n_patches": pca.n_patches,
        },
        "filters": {},
    }
    for key, model in models.items():
        trained = first_layer_filters(model)
        initial = first_layer_filters(initial_model(configs[key], seed))
        banks = {"trained": trained, "initial": initial, "change": trained - initial}
        out["filters"][key] = {
            "weights": {name: bank.tolist() for name, bank in banks.items()},
            "angles": {name: filter_subspace_angles(bank, pca) for name, bank in banks.items()},
            "energy": {name: filter_energy(bank, pca).tolist() for name, bank in banks.items()},
            "change_norm_ratio": float(np.linalg.norm(trained - initial) / np.linalg.norm(initial)),
        }
    return out


def leading_components(explained_variance: Sequence[float], share: float = VARIANCE_SHARE) -> int:
    """The smallest k whose top-k components carry ``share`` of the variance."""
    ratio = np.cumsum(explained_variance) / np.sum(explained_variance)
    return int(np.searchsorted(ratio, share) + 1)


def derivative_likeness(components: np.ndarray, kernel: int) -> dict[str, float]:
    """How much patch components ``[P, P]`` look like a flat patch and the two first derivatives.

    ``flat``: |cosine| between the first component and a constant patch; ``gradients``: the largest principal
    angle (degrees) between the span of components 2-3 and the span of a horizontal and a vertical ramp.
    """
    from scipy.linalg import subspace_angles

    ramp = np.arange(kernel) - (kernel - 1) / 2
    flat = np.ones(kernel * kernel) / kernel
    ramps = np.stack([np.tile(ramp, kernel), np.repeat(ramp, kernel)], axis=1)  # [P, 2]: along x, along y
    return {
        "flat": float(abs(components[0] @ flat)),
        "gradients": float(np.degrees(subspace_angles(components[1:3].T, ramps)).max()),
    }


def filter_rows(result: StudyResult) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The study as rows for :func:`vae.plots.studies.metric_curves`: (energy share per patch component, with
    the patches' own variance share; largest principal angle per k), one family per bank."""
    pca = result.extras["patch_pca"]
    variance = np.asarray(pca["explained_variance"])
    energy = [
        {"family": "patches' variance", "component": j + 1, "share": float(v)}
        for j, v in enumerate(variance / variance.sum())
    ]
    energy.append({"family": "no preference", "component": 1, "share": 1 / len(variance)})
    energy.append({"family": "no preference", "component": len(variance), "share": 1 / len(variance)})
    angles = []
    names = {"trained": "filters", "change": "change in training", "initial": "random start"}
    for row in result.rows:
        f = result.extras["filters"][row["key"]]
        for bank, name in names.items():
            if bank == "initial" and row is not result.rows[0]:
                continue  # one random start is enough to show the chance level
            family = f"{row['family']}: {name}" if bank != "initial" else f"random filters ({row['family']}'s start)"
            energy += [{"family": family, "component": j + 1, "share": e} for j, e in enumerate(f["energy"][bank])]
            angles += [
                {"family": family, "k": k + 1, "largest": max(a), "mean": float(np.mean(a))}
                for k, a in enumerate(f["angles"][bank])
            ]
    return energy, angles


def filter_bank_images(result: StudyResult) -> dict[str, Any]:
    """The study's banks to draw, title -> ``[K, k, k]``: the patch components, then each model's trained
    filters and their change in training, then the random start they share."""
    banks = {"principal components of the patches, largest variance first": result.extras["patch_pca"]["components"]}
    for row in result.rows:
        weights = result.extras["filters"][row["key"]]["weights"]
        banks[f"{row['family']}: trained filters"] = weights["trained"]
        banks[f"{row['family']}: change in training"] = weights["change"]
    banks["random start (conv AE)"] = result.extras["filters"][result.rows[0]["key"]]["weights"]["initial"]
    return banks


class ConvFilters(Study):
    name = "conv_filters"
    question = "What does a convolutional AE's first layer learn: local PCAs of its patches?"
    intro = (
        "Each filter of the conv AE's first layer is a 4 x 4 weight pattern applied to every 4 x 4 patch "
        "(stride 2). If the layer learned *local PCA*, its filters would span the top principal components of "
        "those patches. Compared here: the conv AE's filters, a **linear** conv AE's (the same layers without "
        "any non-linearity, trained on MSE), the random filters they started from, and what training changed "
        "(trained minus initial). Principal angles compare spans, not bases: 0° means the k strongest "
        "directions of the filters span the same space as the top-k patch components."
    )

    def variants(self, settings: StudySettings) -> list[Variant]:
        conv = settings.conv_hidden
        return [
            Variant("conv-ae", "conv AE", ModelConfig(kind="ae", arch="conv", hidden=conv)),
            Variant(
                "linear-conv-ae",
                "linear conv AE",
                ModelConfig(kind="ae", arch="conv", hidden=conv, linear=True, recon_loss="mse"),
            ),
        ]

    def keeps(self, variant: Variant) -> bool:
        return True  # every model's first layer is compared

    def extras(
        self,
        models: dict[str, LatentModel],
        variants: list[Variant],
        train_images: torch.Tensor,
        settings: StudySettings,
    ) -> dict[str, Any]:
        return conv_filter_extras(models, {v.key: v.config for v in variants}, train_images, settings.seed)

    def summarise(self, result: StudyResult) -> list[str]:
        pca = result.extras["patch_pca"]
        variance = np.asarray(pca["explained_variance"])
        k = leading_components(variance)
        size = len(variance)
        shape = derivative_likeness(np.asarray(pca["components"]), pca["kernel"])
        lines = [
            f"The {pca['kernel']} x {pca['kernel']} patches the first layer sees ({pca['n_patches']:,} of them) put "
            f"{variance[:k].sum() / variance.sum():.0%} of their variance in their top {k} principal components. "
            + (
                f"These are derivative-like: the first is the patch's mean level (cosine {shape['flat']:.2f} with a "
                f"flat patch), the next two span the horizontal and vertical gradients (largest angle "
                f"{shape['gradients']:.0f}° to the span of two ramps)."
                if shape["flat"] > 0.9 and shape["gradients"] < 20
                else f"They are not simply a mean level and two gradients here: cosine {shape['flat']:.2f} between the "
                f"first and a flat patch, {shape['gradients']:.0f}° between the next two and the span of two ramps."
            )
        ]
        for row in result.rows:
            f = result.extras["filters"][row["key"]]
            top = {name: float(np.sum(f["energy"][name][:k])) for name in ("trained", "initial", "change")}
            angle = {name: max(f["angles"][name][k - 1]) for name in ("trained", "initial", "change")}
            mean = {name: float(np.mean(f["angles"][name][k - 1])) for name in ("trained", "initial", "change")}
            verdict = "are close to a local PCA" if angle["trained"] < 20 else "are not a local PCA"
            change = (
                "lies in those components"
                if angle["change"] < 20
                else "lies mostly in those components"
                if top["change"] > 2 * k / size
                else "does not line up with them either"
            )
            family = row["family"][0].upper() + row["family"][1:]
            ratio = f["change_norm_ratio"]
            lines.append(
                f"{family}: the trained filters {verdict}: the principal angles between the span of their {k} "
                f"strongest directions and the top-{k} patch components are {angle['trained']:.0f}° (largest) and "
                f"{mean['trained']:.0f}° (mean) (the random filters they started from: {angle['initial']:.0f}° and "
                f"{mean['initial']:.0f}°), and they put {top['trained']:.0%} of their energy in those components "
                f"(the patches' variance: {variance[:k].sum() / variance.sum():.0%}; no preference: {k / size:.0%}). "
                f"What training changed {change}: {top['change']:.0%} of the change's energy, angles "
                f"{angle['change']:.0f}° (largest) and {mean['change']:.0f}° (mean); the change is {ratio:.0%} of "
                f"the starting filters' norm, so the random start "
                f"{'still dominates' if ratio < 1 else 'no longer dominates'} the filters."
            )
        return lines
