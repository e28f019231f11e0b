"""The loss terms beyond a model's own: the reconstruction error, the class-aware soft nearest-neighbour
loss and Parametric UMAP's cross-entropy."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def reconstruction_error(logits: torch.Tensor, x: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-image reconstruction error summed over pixels, averaged over the batch -> scalar.

    BCE: -log p(x|z) for a Bernoulli decoder, in nats. MSE: squared error summed over the 784 pixels.
    """
    if kind == "bce":
        per_pixel = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    else:
        per_pixel = (torch.sigmoid(logits) - x) ** 2
    return per_pixel.flatten(1).sum(1).mean()


def soft_nearest_neighbour_loss(z: torch.Tensor, labels: torch.Tensor | None, temperature: float = 0.1) -> torch.Tensor:
    """How entangled the classes of codes z ``[B, D]`` with labels ``[B]`` are -> scalar >= 0 (nats).

    Frosst, Papernot & Hinton (2019), eq. (1): for each point, minus the log of the share of its
    soft neighbours (weights exp(-d^2 / T)) that carry its own label, averaged over the batch. 0 when
    every point's near neighbours are its own class; log(C) when the classes are fully mixed.
    Distances are divided by their batch mean, so the term is blind to scale: an encoder cannot lower it
    by spreading every code further apart, only by separating the classes.
    """
    if labels is None:
        raise ValueError("this model's loss has a class-aware term (class_weight > 0): it needs the labels")
    if labels.shape != z.shape[:1]:
        raise ValueError(f"labels must have shape [{len(z)}], got {list(labels.shape)}")
    squared = torch.cdist(z, z).pow(2)  # [B, B]
    others = ~torch.eye(len(z), dtype=torch.bool, device=z.device)
    scaled = squared / squared[others].mean().clamp_min(1e-12)
    logits = (-scaled / temperature).masked_fill(~others, float("-inf"))
    same = (labels.unsqueeze(0) == labels.unsqueeze(1)) & others
    has_partner = same.any(1)  # a point alone in its class in this batch has no term
    # l_sn = -1/b sum_i log( sum_{j != i, y_j = y_i} e^{-d_ij / T} / sum_{k != i} e^{-d_ik / T} )
    log_same = torch.logsumexp(logits.masked_fill(~same, float("-inf")), dim=1)
    log_all = torch.logsumexp(logits, dim=1)
    return (log_all - log_same)[has_partner].mean()


# UMAP's q(d) = 1 / (1 + a d^(2b)) for its defaults spread = 1, min_dist = 0.1: the values
# umap.umap_.find_ab_params(1.0, 0.1) fits (tests check them against it; importing umap here would cost seconds).
UMAP_A, UMAP_B = 1.5769434604035554, 0.8950608781603632
# Negative samples per edge and the floor of probabilities inside the logs: Parametric UMAP's defaults.
UMAP_NEGATIVE_RATE = 5
UMAP_EPS = 1e-4


def umap_negatives(
    batch_size: int,
    rate: int = UMAP_NEGATIVE_RATE,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """``[B, rate]`` indices into a batch of edge tails: the tails each head is pushed away from.

    Parametric UMAP repeats the tails ``rate`` times and shuffles them, so every tail serves ``rate`` times.
    """
    return (torch.randperm(batch_size * rate, generator=generator, device=device) // rate).view(batch_size, rate)


def umap_cross_entropy(
    heads: torch.Tensor, tails: torch.Tensor, negatives: torch.Tensor, a: float = UMAP_A, b: float = UMAP_B
) -> torch.Tensor:
    """UMAP's fuzzy-set cross-entropy on a batch of graph edges -> scalar (nats per pair, mean).

    heads, tails ``[B, D]``: codes of the two ends of B edges drawn in proportion to their membership
    strength, so each counts with probability 1; negatives ``[B, R]``: for each head, R tails of other
    edges (:func:`umap_negatives`), counted with probability 0. With q(d) = 1 / (1 + a d^(2b)) (McInnes
    et al., 2018, sec. 3.2), the term is -log q for an edge and -log(1 - q) for a negative pair, each
    probability floored at 1e-4, averaged over the B (1 + R) pairs, as Parametric UMAP computes it
    (Sainburg, McInnes & Gentner, 2021, eq. 2 and umap-learn's ``umap_loss``).
    """
    if heads.shape != tails.shape or negatives.shape[0] != len(heads):
        raise ValueError(
            f"heads {list(heads.shape)}, tails {list(tails.shape)} and negatives "
            f"{list(negatives.shape)} must describe the same B edges"
        )
    # At least float32 whatever the autocast: codes start close together, and in bfloat16 (8 bits of mantissa)
    # 1 - q rounds to zero, where the floor below leaves no gradient (the encoder never leaves its start).
    dtype = torch.promote_types(heads.dtype, torch.float32)
    heads, tails = heads.to(dtype), tails.to(dtype)
    # Squared distances, floored so that (d^2)^b has a finite gradient when two codes coincide.
    positive = (heads - tails).pow(2).sum(1).clamp_min(1e-12)  # [B]
    negative = (heads.unsqueeze(1) - tails[negatives]).pow(2).sum(2).clamp_min(1e-12)  # [B, R]
    q_positive = 1.0 / (1.0 + a * positive.pow(b))
    q_negative = 1.0 / (1.0 + a * negative.pow(b))
    attraction = -torch.log(q_positive.clamp(UMAP_EPS, 1.0))  # [B]
    repulsion = -torch.log((1.0 - q_negative).clamp(UMAP_EPS, 1.0))  # [B, R]
    return (attraction.sum() + repulsion.sum()) / (attraction.numel() + repulsion.numel())


def add_class_term(
    terms: dict[str, torch.Tensor], z: torch.Tensor, labels: torch.Tensor | None, weight: float
) -> dict[str, torch.Tensor]:
    if weight:
        terms["class"] = soft_nearest_neighbour_loss(z, labels)
        terms["loss"] = terms["loss"] + weight * terms["class"]
    return terms
