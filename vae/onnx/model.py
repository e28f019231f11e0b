"""The imported model: an ONNX encoder and decoder, run by onnxruntime, behind the :class:`LatentModel` interface.

Its graphs are run under the rules of :mod:`vae.onnx.graphs` (parsed from bytes, no external data, CPU
only). The model knows nothing of where it is stored: :func:`vae.store.load_model` builds it from a store
entry and returns that entry (a :class:`~vae.store.StoredModel`) beside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from vae.models import IMAGE_SHAPE, IMPORTED_ARCH, LatentModel, ModelConfig, VariationalAutoEncoder
from vae.onnx.graphs import GraphRefused, first_line, io_names, session

if TYPE_CHECKING:
    import onnxruntime

# Decoded pixels are clamped this far from 0 and 1 for the BCE, as PCA's loss is: the graph gives
# probabilities, not logits, and float32's sigmoid reaches exactly 1.
BCE_CLAMP = 1e-6
STANDARD_INPUTS = {"encoder": ["x"], "decoder": ["z"]}


class OnnxModel(LatentModel):
    """An imported encoder and decoder, run by onnxruntime on the CPU, behind the :class:`LatentModel` interface.

    Built from the two *standard* graphs (:mod:`vae.onnx.export`'s interface: ``x [B, 1, 28, 28] -> embedding
    [, logvar]``, ``z [B, D] -> image [B, 1, 28, 28]`` in [0, 1]). Inference only: the graphs carry no
    gradients, so :meth:`loss` measures a model and cannot train it. Its terms are those of the project's
    models, per image: ``recon`` (BCE in nats on the decoded probabilities, or squared error, summed over
    the pixels) and, for a VAE, ``kl`` on a sampled code, with ``loss = recon (+ kl)``.
    """

    def __init__(self, config: ModelConfig, encoder: bytes, decoder: bytes) -> None:
        super().__init__()
        if config.arch != IMPORTED_ARCH:
            raise ValueError(f"OnnxModel needs arch={IMPORTED_ARCH!r}, got {config.arch!r}")
        self.config = config
        # The standard graphs' bytes, for an export of this model (vae.onnx.export.export_pair) without torch.
        self.standard_encoder, self.standard_decoder = encoder, decoder
        self._encoder = session(encoder, "standard encoder")
        self._decoder = session(decoder, "standard decoder")
        outputs = ["embedding", "logvar"] if config.kind == "vae" else ["embedding"]
        for what, runtime, expected in (("encoder", self._encoder, outputs), ("decoder", self._decoder, ["image"])):
            if io_names(runtime) != (STANDARD_INPUTS[what], expected):
                raise GraphRefused(
                    f"the standard {what} has inputs and outputs {io_names(runtime)}, "
                    f"not {(STANDARD_INPUTS[what], expected)}"
                )
        # One image and its code through both graphs: sizes that disagree with the config fail here, at load.
        try:
            code = self.embed(torch.zeros(1, *IMAGE_SHAPE))
            if code.shape != (1, config.latent_dim):
                raise GraphRefused(f"the standard encoder gives shape {list(code.shape)}, not [1, {config.latent_dim}]")
            image = self.decode(code)
        except (RuntimeError, ValueError) as error:
            raise GraphRefused(str(error)) from None
        if image.shape != (1, *IMAGE_SHAPE):
            raise GraphRefused(f"the standard decoder gives shape {list(image.shape)}, not [1, 1, 28, 28]")

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def _run(self, runtime: onnxruntime.InferenceSession, name: str, array: np.ndarray) -> list[np.ndarray]:
        try:
            return runtime.run(None, {name: np.ascontiguousarray(array, dtype=np.float32)})
        except Exception as error:  # onnxruntime's own exception types; the message says what failed
            raise RuntimeError(
                f"onnxruntime failed on the {'encoder' if name == 'x' else 'decoder'}: {first_line(error)}"
            ) from None

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x ``[B, 1, 28, 28]`` -> (mean ``[B, D]``, log-variance ``[B, D]`` or None for an AE), on the CPU."""
        images = x.detach().cpu().float().reshape(-1, *IMAGE_SHAPE)
        if len(images) == 0:
            empty = torch.zeros(0, self.config.latent_dim)
            return empty, (empty.clone() if self.config.kind == "vae" else None)
        outputs = [torch.from_numpy(o) for o in self._run(self._encoder, "x", images.numpy())]
        return outputs[0], (outputs[1] if self.config.kind == "vae" else None)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z ``[B, D]`` -> images ``[B, 1, 28, 28]`` in [0, 1], on the CPU."""
        codes = z.detach().cpu().float()
        if codes.ndim != 2 or codes.shape[1] != self.config.latent_dim:
            raise ValueError(f"z must have shape [B, {self.config.latent_dim}], got {list(codes.shape)}")
        if len(codes) == 0:
            return torch.zeros(0, *IMAGE_SHAPE)
        return torch.from_numpy(self._run(self._decoder, "z", codes.numpy())[0])

    def loss(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """x ``[B, 1, 28, 28]`` -> {"loss", "recon"(, "kl")}: scalars, mean over the batch of per-image sums."""
        x = x.detach().cpu().float().reshape(-1, *IMAGE_SHAPE)
        mean, logvar = self.encode(x)
        z = mean if logvar is None else VariationalAutoEncoder.reparameterize(mean, logvar)
        decoded = self.decode(z)
        if self.config.recon_loss == "bce":
            per_pixel = F.binary_cross_entropy(decoded.clamp(BCE_CLAMP, 1 - BCE_CLAMP), x, reduction="none")
        else:
            per_pixel = (decoded - x) ** 2
        recon = per_pixel.flatten(1).sum(1).mean()
        terms = {"loss": recon, "recon": recon}
        if logvar is not None:
            terms["kl"] = VariationalAutoEncoder.kl_to_standard_normal(mean, logvar).mean()
            terms["loss"] = recon + terms["kl"]
        return terms
