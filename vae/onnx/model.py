"""The imported model: an ONNX encoder and decoder, run by onnxruntime, behind the :class:`LatentModel` interface.

Its graphs are a stranger's program, so they run fenced (:mod:`vae.onnx.fence`): in a warm worker process
of the model's own, with a memory limit, under the rules of :mod:`vae.onnx.graphs` (parsed from bytes, no
external data, CPU only), in chunks of :data:`CHUNK` images or codes, each with a time limit. The model knows nothing of where it is stored: :func:`vae.store.load_model` builds it from a store
entry and returns that entry (a :class:`~vae.store.StoredModel`) beside it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from vae.models import IMAGE_SHAPE, IMPORTED_ARCH, LatentModel, ModelConfig, VariationalAutoEncoder
from vae.onnx.fence import FenceError, Worker, refusal
from vae.onnx.graphs import GraphRefused

# Decoded pixels are clamped this far from 0 and 1 for the BCE, as PCA's loss is: the graph gives
# probabilities, not logits, and float32's sigmoid reaches exactly 1.
BCE_CLAMP = 1e-6
STANDARD_INPUTS = {"encoder": ["x"], "decoder": ["z"]}
# Runs go to the worker in chunks of CHUNK images or codes: memory then grows with the chunk, not with the
# request (a page embeds 70,000 images at once), 4 x the batch the import timed and checked.
CHUNK = 1024
# Each chunk's time limit: what the import allowed per 256 (MAX_SECONDS), times this margin for a busy
# machine, and never under MIN_RUN_SECONDS.
TIME_MARGIN = 10.0
MIN_RUN_SECONDS = 10.0
OUTPUT_BYTES_PER_ITEM = 8 * 1024  # a code of at most 128 numbers (twice), or 784 pixels, each a float64 at most


class OnnxModel(LatentModel):
    """An imported encoder and decoder, run by onnxruntime on the CPU, behind the :class:`LatentModel` interface.

    Built from the two *standard* graphs (:mod:`vae.onnx.export`'s interface: ``x [B, 1, 28, 28] -> embedding
    [, logvar]``, ``z [B, D] -> image [B, 1, 28, 28]`` in [0, 1]). Inference only: the graphs carry no
    gradients, so :meth:`loss` measures a model and cannot train it. Its terms are those of the project's
    models, per image: ``recon`` (BCE in nats on the decoded probabilities, or squared error, summed over
    the pixels) and, for a VAE, ``kl`` on a sampled code, with ``loss = recon (+ kl)``.
    """

    def __init__(self, config: ModelConfig, encoder: bytes, decoder: bytes, worker: Worker | None = None) -> None:
        """``worker``: the fenced worker to run in (the import's own); by default one of the model's own,
        ended when the model is garbage-collected (or the interpreter exits)."""
        super().__init__()
        if config.arch != IMPORTED_ARCH:
            raise ValueError(f"OnnxModel needs arch={IMPORTED_ARCH!r}, got {config.arch!r}")
        self.config = config
        # The standard graphs' bytes, for an export of this model (vae.onnx.export.export_pair) without torch.
        self.standard_encoder, self.standard_decoder = encoder, decoder
        self.worker = Worker() if worker is None else worker
        outputs = ["embedding", "logvar"] if config.kind == "vae" else ["embedding"]
        for what, data, expected in (("encoder", encoder, outputs), ("decoder", decoder, ["image"])):
            try:
                names = self.worker.load(f"standard {what}", data, f"standard {what}")
            except FenceError as error:
                raise GraphRefused(refusal(error, what, 0, "", self.worker.limit_bytes)) from None
            if names != (STANDARD_INPUTS[what], expected):
                raise GraphRefused(
                    f"the standard {what} has inputs and outputs {names}, not {(STANDARD_INPUTS[what], expected)}"
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

    def _run(self, what: str, array: np.ndarray) -> list[np.ndarray]:
        """The standard ``what`` ("encoder", "decoder") on ``array`` in chunks of :data:`CHUNK`, fenced.

        RuntimeError (naming the graph, the limit and the batch) if a chunk passes the worker's memory or
        time limit, fails, or gives outputs that do not have one row per input.
        """
        from vae.onnx.checks import MAX_SECONDS, TIMED_BATCH

        name, unit = ("x", "images") if what == "encoder" else ("z", "codes")
        array = np.ascontiguousarray(array, dtype=np.float32)
        pieces: list[list[np.ndarray]] = []
        for start in range(0, len(array), CHUNK):
            chunk = array[start : start + CHUNK]
            seconds = max(MIN_RUN_SECONDS, TIME_MARGIN * MAX_SECONDS * len(chunk) / TIMED_BATCH)
            try:
                result, _ = self.worker.run(
                    f"standard {what}",
                    None,
                    {name: chunk},
                    seconds=seconds,
                    max_output_bytes=len(chunk) * OUTPUT_BYTES_PER_ITEM,
                )
            except FenceError as error:
                message = refusal(error, what, len(chunk), unit, self.worker.limit_bytes, f"{name} {list(chunk.shape)}")
                raise RuntimeError(message) from None
            if result is None:
                raise RuntimeError(f"the {what} took more than {seconds:g} s on {len(chunk)} {unit}, and was stopped")
            if any(len(r) != len(chunk) for r in result):
                shapes = ", ".join(str(list(r.shape)) for r in result)
                raise RuntimeError(f"the {what} gave outputs {shapes} for {len(chunk)} {unit}")
            pieces.append(result)
        return [np.concatenate(parts) for parts in zip(*pieces)]

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x ``[B, 1, 28, 28]`` -> (mean ``[B, D]``, log-variance ``[B, D]`` or None for an AE), on the CPU."""
        images = x.detach().cpu().float().reshape(-1, *IMAGE_SHAPE)
        if len(images) == 0:
            empty = torch.zeros(0, self.config.latent_dim)
            return empty, (empty.clone() if self.config.kind == "vae" else None)
        outputs = [torch.from_numpy(o) for o in self._run("encoder", images.numpy())]
        return outputs[0], (outputs[1] if self.config.kind == "vae" else None)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z ``[B, D]`` -> images ``[B, 1, 28, 28]`` in [0, 1], on the CPU."""
        codes = z.detach().cpu().float()
        if codes.ndim != 2 or codes.shape[1] != self.config.latent_dim:
            raise ValueError(f"z must have shape [B, {self.config.latent_dim}], got {list(codes.shape)}")
        if len(codes) == 0:
            return torch.zeros(0, *IMAGE_SHAPE)
        return torch.from_numpy(self._run("decoder", codes.numpy())[0])

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
