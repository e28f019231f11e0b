"""The one interface every model has (:class:`LatentModel`; shapes in ``vae.models``) and the small helpers
that work on any of them."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator

import torch
from torch import nn

from vae.models.config import IMAGE_SHAPE, ModelConfig


class LatentModel(nn.Module, ABC):
    """The interface every page and script relies on; see the module docstring for shapes."""

    config: ModelConfig

    @abstractmethod
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x ``[B, 1, 28, 28]`` -> (mean ``[B, D]``, log-variance ``[B, D]`` or None)."""

    @abstractmethod
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z ``[B, D]`` -> images ``[B, 1, 28, 28]`` in [0, 1]."""

    @abstractmethod
    def loss(
        self, x: torch.Tensor, labels: torch.Tensor | None = None, neighbours: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """x ``[B, 1, 28, 28]`` -> {"loss", "recon", ...}: scalars, mean over the batch of per-image sums.

        labels ``[B]`` (int64) are needed only when ``config.class_weight`` > 0; the term is then "class".
        neighbours ``[B, 1, 28, 28]``: image i is joined to ``x[i]`` by an edge of the training set's
        neighbour graph; read only when ``config.umap_weight`` > 0 (the term is then "umap"). Without them
        (e.g. on the test set, which is not in the graph) that term is left out.
        """

    @property
    def device(self) -> torch.device:
        """Where the weights live, so callers can move inputs there."""
        for tensor in (*self.parameters(), *self.buffers()):
            return tensor.device
        return torch.device("cpu")

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """x ``[B, 1, 28, 28]`` -> ``[B, D]``: the deterministic code that is plotted."""
        return self.encode(x)[0]

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """x ``[B, 1, 28, 28]`` -> ``[B, 1, 28, 28]`` through the deterministic code."""
        return self.decode(self.embed(x))


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode for the block, then the mode the model was in: safe in the middle of training."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def to_float_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[N, 28, 28]`` -> float ``[N, 1, 28, 28]`` in [0, 1], the models' input format."""
    if images.dtype == torch.uint8:
        images = images.float().div_(255.0)
    return images.reshape(-1, *IMAGE_SHAPE)
