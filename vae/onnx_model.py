"""ONNX graphs run safely, and the imported model that runs them behind the :class:`LatentModel` interface.

Safety rules, applied to every graph before onnxruntime (or ``onnx``) reads it:

- a graph arrives as bytes and is parsed with ``onnx.load_model_from_string``, which never opens a file;
- a graph that still refers to external data is refused here: the import folds data that sits beside the
  user's file into the graph first (``vae.onnx_import``), so the graphs this module runs are self-contained,
  and onnxruntime never resolves a path (not ``../``, not an absolute one, not one beside the working folder);
- sessions use the CPU provider only, and no custom operator library is ever registered, so a graph can
  only call operators onnxruntime ships.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
import torch
import torch.nn.functional as F

from vae.models import IMAGE_SHAPE, IMPORTED_ARCH, LatentModel, ModelConfig, VariationalAutoEncoder

if TYPE_CHECKING:
    import onnxruntime

    from vae.store import StoredModel

# Decoded pixels are clamped this far from 0 and 1 for the BCE, as PCA's loss is: the graph gives
# probabilities, not logits, and float32's sigmoid reaches exactly 1.
BCE_CLAMP = 1e-6
STANDARD_INPUTS = {"encoder": ["x"], "decoder": ["z"]}


class GraphRefused(ValueError):
    """A graph that is not ONNX, refers to files, or that onnxruntime cannot run; the message says which."""


def parse_graph(data: bytes, what: str) -> onnx.ModelProto:
    """ONNX bytes -> the model proto, without reading any file; :class:`GraphRefused` if it is not one."""
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as error:
        raise GraphRefused(f"the {what} is not an ONNX model ({error or 'unreadable'})") from None
    # Random bytes can parse as a protobuf message; a real model has a graph with nodes and an IR version.
    if model.ir_version < 1 or not model.HasField("graph") or not model.graph.node or not model.graph.output:
        raise GraphRefused(f"the {what} is not an ONNX model (no graph with nodes and outputs)")
    return model


def _graph_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    yield from _node_tensors(graph.node)


def _node_tensors(nodes: Any) -> Iterator[onnx.TensorProto]:
    for node in nodes:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("sparse_tensor"):
                yield attribute.sparse_tensor.values
                yield attribute.sparse_tensor.indices
            for sparse in attribute.sparse_tensors:
                yield sparse.values
                yield sparse.indices
            if attribute.HasField("g"):
                yield from _graph_tensors(attribute.g)
            for subgraph in attribute.graphs:
                yield from _graph_tensors(subgraph)


def all_tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    """Every tensor a model stores: initializers, constants, and those of subgraphs and local functions."""
    yield from _graph_tensors(model.graph)
    for function in model.functions:
        yield from _node_tensors(function.node)


def uses_external_data(tensor: onnx.TensorProto) -> bool:
    return tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data) > 0


def refuse_external_data(model: onnx.ModelProto, what: str) -> None:
    """No tensor of ``model`` may live in another file (onnxruntime would open that path)."""
    names = [tensor.name or "(unnamed)" for tensor in all_tensors(model) if uses_external_data(tensor)]
    if names:
        raise GraphRefused(
            f"the {what} keeps {len(names)} tensor(s) in external data files ({', '.join(names[:3])}"
            f"{', ...' if len(names) > 3 else ''}): export it as one file (torch.onnx.export(..., external_data=False))"
        )


def session(data: bytes, what: str) -> onnxruntime.InferenceSession:
    """A CPU onnxruntime session over self-contained ONNX bytes; :class:`GraphRefused` if it cannot run them."""
    import onnxruntime

    refuse_external_data(parse_graph(data, what), what)
    options = onnxruntime.SessionOptions()
    # One thread that sleeps when idle: the machine's cores are shared with training jobs and other sessions.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 4  # refusals are reported by the caller, not logged by the runtime
    try:
        return onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own pybind exception types (Fail, InvalidGraph, ...)
        raise GraphRefused(f"onnxruntime cannot run the {what}: {_first_line(error)}") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:500] if text else type(error).__name__


def io_names(runtime: onnxruntime.InferenceSession) -> tuple[list[str], list[str]]:
    return [i.name for i in runtime.get_inputs()], [o.name for o in runtime.get_outputs()]


class OnnxModel(LatentModel):
    """An imported encoder and decoder, run by onnxruntime on the CPU, behind the :class:`LatentModel` interface.

    Built from the two *standard* graphs (``vae/onnx.py``'s interface: ``x [B, 1, 28, 28] -> embedding
    [, logvar]``, ``z [B, D] -> image [B, 1, 28, 28]`` in [0, 1]). Inference only: the graphs carry no
    gradients, so :meth:`loss` measures a model and cannot train it. Its terms are those of the project's
    models, per image: ``recon`` (BCE in nats on the decoded probabilities, or squared error, summed over
    the pixels) and, for a VAE, ``kl`` on a sampled code, with ``loss = recon (+ kl)``.
    """

    def __init__(self, config: ModelConfig, encoder: bytes, decoder: bytes, stored: StoredModel | None = None) -> None:
        super().__init__()
        if config.arch != IMPORTED_ARCH:
            raise ValueError(f"OnnxModel needs arch={IMPORTED_ARCH!r}, got {config.arch!r}")
        self.config = config
        # The standard graphs' bytes, for an export of this model (vae.onnx.export_pair) without torch.
        self.standard_encoder, self.standard_decoder = encoder, decoder
        # Where they are stored, if they are: what vae.onnx.pair_for serves.
        self.stored = stored
        self._encoder = session(encoder, "standard encoder")
        self._decoder = session(decoder, "standard decoder")
        outputs = ["embedding", "logvar"] if config.kind == "vae" else ["embedding"]
        for what, runtime, expected in (("encoder", self._encoder, outputs), ("decoder", self._decoder, ["image"])):
            if io_names(runtime) != (STANDARD_INPUTS[what], expected):
                raise GraphRefused(f"the standard {what} has inputs and outputs {io_names(runtime)}, "
                                   f"not {(STANDARD_INPUTS[what], expected)}")  # fmt: skip
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
            raise RuntimeError(f"onnxruntime failed on the {'encoder' if name == 'x' else 'decoder'}: "
                               f"{_first_line(error)}") from None  # fmt: skip

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

    @property
    def folder(self) -> Path | None:
        return None if self.stored is None else self.stored.path
