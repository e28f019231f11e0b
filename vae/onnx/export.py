"""Every model as a pair of ONNX graphs, so its decoder and encoder can run outside PyTorch (in a browser).

- ``decoder.onnx``: ``z`` float ``[B, D]`` -> ``image`` float ``[B, 1, 28, 28]`` in [0, 1].
- ``encoder.onnx``: ``x`` float ``[B, 1, 28, 28]`` in [0, 1] -> ``embedding`` ``[B, D]`` (the AE's code, the
  VAE's posterior mean, PCA's projection: what :meth:`LatentModel.embed` gives) and, for a VAE only,
  ``logvar`` ``[B, D]``.

The batch axis ``B`` is dynamic. Graphs come from ``torch.onnx.export`` (its ``torch.export``-based exporter,
opset 20), each in one file (no external data); an imported model (:mod:`vae.onnx.importer`) already holds
its standard pair, written at import, and :func:`pair_for` serves those files as they are. An export is
checked before it is kept: the graph passes
``onnx.checker`` and, run by onnxruntime on the CPU, gives the torch model's outputs to within
:data:`~vae.onnx.graphs.TOLERANCE` (max abs difference) on real codes and images; a failed check raises
:class:`OnnxExportError` and leaves nothing behind.

:class:`ExportCache` keeps exports by the weights' SHA-256, so each model is exported once per weights: a
retrained model has new weights, hence a new hash and a new export.

CLI (:mod:`vae.onnx.__main__`): ``python -m vae.onnx export MODEL_DIR --out DIR`` and ``python -m vae.onnx
cache MODELS_DIR --cache DIR``; the exported pair of any model imports back (``python -m vae.onnx import``)
as a model whose ``embed`` and ``decode`` match the original's.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import shutil
import sys
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from vae.models import IMAGE_SHAPE, IMPORTED_ARCH, LatentModel, evaluating, materialised
from vae.onnx.graphs import TOLERANCE, default_opset

if TYPE_CHECKING:
    from vae.store import StoredModel

DECODER_FILE = "decoder.onnx"
ENCODER_FILE = "encoder.onnx"
MANIFEST_FILE = "onnx.json"
OPSET = 20
# Images (and their codes) in the parity check: enough to cover every class and the corners of the plane.
CHECK_BATCH = 256
# 2: the manifest records each graph's SHA-256, checked whenever the pair is read back.
MANIFEST_FORMAT = 2


class OnnxExportError(RuntimeError):
    """A model could not be exported to ONNX, or its export does not compute what the model computes (or a
    folder holds no complete export). Not :class:`vae.export.ExportError`, which is a download that cannot
    be packaged."""


@dataclass(frozen=True)
class OnnxPair:
    """An exported decoder and encoder, and what they were checked against."""

    directory: Path
    kind: str
    latent_dim: int
    weights_sha256: str
    # Max abs difference from the torch model on the check batch, per graph (for an imported model: of the
    # standard graphs from the user's own, measured at import).
    max_abs_error: dict[str, float]
    opset: int = OPSET
    # The files in ``directory``: an export's fixed names, or an imported model's content-addressed ones.
    decoder_file: str = DECODER_FILE
    encoder_file: str = ENCODER_FILE

    @property
    def decoder(self) -> Path:
        return self.directory / self.decoder_file

    @property
    def encoder(self) -> Path:
        return self.directory / self.encoder_file

    @property
    def encoder_outputs(self) -> tuple[str, ...]:
        return ("embedding", "logvar") if self.kind == "vae" else ("embedding",)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "kind": self.kind,
            "latent_dim": self.latent_dim,
            "weights_sha256": self.weights_sha256,
            "max_abs_error": self.max_abs_error,
            "opset": self.opset,
            "decoder": {
                "file": self.decoder_file,
                "inputs": {"z": ["B", self.latent_dim]},
                "outputs": {"image": ["B", *IMAGE_SHAPE]},
            },
            "encoder": {
                "file": self.encoder_file,
                "inputs": {"x": ["B", *IMAGE_SHAPE]},
                "outputs": {name: ["B", self.latent_dim] for name in self.encoder_outputs},
            },
        }


class _Decoder(nn.Module):
    def __init__(self, model: LatentModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # [B, D] -> [B, 1, 28, 28]
        return self.model.decode(z)


class _Encoder(nn.Module):
    def __init__(self, model: LatentModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:  # [B, 1, 28, 28] -> ([B, D], [B, D]?)
        mean, logvar = self.model.encode(x)
        return (mean,) if logvar is None else (mean, logvar)


def check_inputs(
    model: LatentModel, images: torch.Tensor | None = None, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The parity check's batch: images ``[M, 1, 28, 28]`` and codes ``[M + 64, D]``.

    The codes are the model's own embeddings of the images (where real points lie) and 64 draws of
    N(0, s^2 I), with s the embeddings' spread, so empty space between and around the classes is covered
    too. Without ``images``, seeded uniform noise stands in (the encoder must still agree on it).
    """
    generator = torch.Generator().manual_seed(seed)
    if images is None:
        images = torch.rand(CHECK_BATCH, *IMAGE_SHAPE, generator=generator)
    images = images.float().reshape(-1, *IMAGE_SHAPE)
    with torch.no_grad(), evaluating(model):
        embedded = model.embed(images.to(model.device)).cpu()
    spread = embedded.std().clamp_min(1.0)
    extra = torch.randn(64, embedded.shape[1], generator=generator) * spread
    return images, torch.cat([embedded, extra])


def _export(module: nn.Module, example: torch.Tensor, path: Path, input_name: str, output_names: list[str]) -> None:
    batch = torch.export.Dim("batch", min=1, max=65536)
    with warnings.catch_warnings(), _quiet_exporter():
        warnings.simplefilter("ignore")  # the exporter's notes about its own internals, not about our model
        program = torch.onnx.export(
            module,
            (example,),
            dynamo=True,
            input_names=[input_name],
            output_names=output_names,
            dynamic_shapes=({0: batch},),
            opset_version=OPSET,
            external_data=False,
            verbose=False,
        )
        if program is None:
            raise OnnxExportError("torch.onnx.export returned no program")
        program.save(str(path), external_data=False)


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter logs each of its stages at INFO; a page or a test wants none of that."""
    names = ("torch.onnx", "onnxscript", "torch.export", "torch._dynamo", "torch.__trace", "torch.fx.experimental")
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def run_onnx(path: Path | bytes, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run a graph with onnxruntime on the CPU (one thread: a check, not a benchmark) -> its outputs."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    source = path if isinstance(path, bytes) else str(path)
    session = onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    return session.run(None, inputs)


def _run_fenced(path: Path, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """:func:`run_onnx` in a fenced worker (:mod:`vae.onnx.fence`), for graphs this project did not export."""
    from vae.onnx.fence import FenceError, memory_limit, refusal, run_once
    from vae.onnx.model import MIN_RUN_SECONDS, OUTPUT_BYTES_PER_ITEM

    count = len(next(iter(inputs.values())))
    try:
        return run_once(path.read_bytes(), path.stem, inputs, MIN_RUN_SECONDS, count * OUTPUT_BYTES_PER_ITEM)
    except (FenceError, ValueError) as error:  # ValueError: GraphRefused, onnxruntime cannot run it
        reason = (
            refusal(error, path.stem, count, "inputs", memory_limit()) if isinstance(error, FenceError) else str(error)
        )
        raise OnnxExportError(reason) from None


def _max_error(ours: Sequence[np.ndarray], reference: Sequence[torch.Tensor]) -> float:
    """Max abs difference over every output pair."""
    if len(ours) != len(reference):
        raise OnnxExportError(f"the graph gives {len(ours)} outputs, the model {len(reference)}")
    worst = 0.0
    for a, b in zip(ours, reference):
        b = b.detach().cpu().numpy()
        if a.shape != b.shape:
            raise OnnxExportError(f"the graph gives shape {list(a.shape)}, the model {list(b.shape)}")
        worst = max(worst, float(np.abs(a - b).max(initial=0.0)))
    return worst


_EXPORT_LOCK = threading.Lock()  # torch.export is not re-entrant: one export at a time per process


def export_judge(judge: nn.Module, path: str | os.PathLike, tolerance: float = TOLERANCE) -> Path:
    """The judge (``vae.judge.Judge``) with its softmax as one graph: ``x`` float ``[B, 1, 28, 28]`` in [0, 1] ->
    ``probabilities`` ``[B, 10]``, so the page can read what a decoded image is. Checked against torch on
    seeded noise and blank and bright images; written atomically to ``path``. Returns the path."""
    from vae.files import write_atomically

    path = Path(path)
    module = nn.Sequential(judge, nn.Softmax(dim=1)).eval()
    generator = torch.Generator().manual_seed(0)
    example = torch.cat(
        [torch.rand(30, *IMAGE_SHAPE, generator=generator), torch.zeros(1, *IMAGE_SHAPE), torch.ones(1, *IMAGE_SHAPE)]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with _EXPORT_LOCK:
            _export(module, example, scratch, "x", ["probabilities"])
        with torch.no_grad():
            expected = module(example)
        error = _max_error(run_onnx(scratch, {"x": example.numpy()}), [expected])
        if error > tolerance:
            raise OnnxExportError(f"the judge's graph differs from torch by {error:.2e} (> {tolerance:.0e})")
        write_atomically(path, scratch.read_bytes())
    finally:
        scratch.unlink(missing_ok=True)
    return path


def export_pair(
    model: LatentModel,
    out_dir: str | os.PathLike,
    weights_sha256: str = "",
    images: torch.Tensor | None = None,
    tolerance: float = TOLERANCE,
) -> OnnxPair:
    """Export ``model``'s decoder and encoder into ``out_dir`` (created), check both, write the manifest.

    ``images`` (float ``[M, 1, 28, 28]`` in [0, 1]) are the check batch's images; see :func:`check_inputs`.
    Raises :class:`OnnxExportError` when the export fails or a graph's outputs differ from the model's by more
    than ``tolerance``; ``out_dir`` is then removed if this call created it.
    """
    import onnx

    out = Path(out_dir)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        opset = OPSET
        if model.config.arch == IMPORTED_ARCH:  # its standard graphs exist already: copied, then checked alike
            plain = model
            check_images, check_codes = check_inputs(plain, images)
            (out / DECODER_FILE).write_bytes(model.standard_decoder)
            (out / ENCODER_FILE).write_bytes(model.standard_encoder)
            opset = default_opset(onnx.load_model_from_string(model.standard_decoder))
        else:
            # Parametrized weights (the invertible AE's) baked into constants the exporter can trace.
            plain = materialised(model).cpu()
            check_images, check_codes = check_inputs(plain, images)
            _export_torch(plain, check_images, check_codes, out)
        for path in (out / DECODER_FILE, out / ENCODER_FILE):
            onnx.checker.check_model(str(path), full_check=True)
        with torch.no_grad():
            decoded = [plain.decode(check_codes)]
            mean, logvar = plain.encode(check_images)
            encoded = [mean] if logvar is None else [mean, logvar]
        # An imported model's graphs are a stranger's: checked in a fenced worker, not in this process.
        run = _run_fenced if model.config.arch == IMPORTED_ARCH else run_onnx
        errors = {
            "decoder": _max_error(run(out / DECODER_FILE, {"z": check_codes.numpy()}), decoded),
            "encoder": _max_error(run(out / ENCODER_FILE, {"x": check_images.numpy()}), encoded),
        }
        allowed = {"decoder": tolerance, "encoder": tolerance * max(1.0, float(mean.abs().max()))}
        for part, error in errors.items():
            if not error <= allowed[part]:  # also catches NaN
                raise OnnxExportError(
                    f"the exported {part} differs from the model by {error:.3g} (allowed {allowed[part]:.3g})"
                )
        pair = OnnxPair(out, plain.config.kind, plain.config.latent_dim, weights_sha256, errors, opset)
        manifest = pair.to_dict()
        for part, path in (("decoder", pair.decoder), ("encoder", pair.encoder)):
            manifest[part]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1) + "\n")
        return pair
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise


def _export_torch(plain: LatentModel, check_images: torch.Tensor, check_codes: torch.Tensor, out: Path) -> None:
    encoder_outputs = ["embedding", "logvar"] if plain.config.kind == "vae" else ["embedding"]
    with _EXPORT_LOCK:
        try:
            _export(_Decoder(plain), check_codes[:2].clone(), out / DECODER_FILE, "z", ["image"])
            _export(_Encoder(plain), check_images[:2].clone(), out / ENCODER_FILE, "x", encoder_outputs)
        except OnnxExportError:
            raise
        except Exception as error:  # the exporter raises many types; the caller needs one
            raise OnnxExportError(f"torch.onnx.export failed for {plain.config.describe()}: {error}") from error


def read_pair(directory: str | os.PathLike) -> OnnxPair:
    """The pair in ``directory``, from its manifest; :class:`OnnxExportError` if the folder is not a complete one."""
    directory = Path(directory)
    try:
        manifest = json.loads((directory / MANIFEST_FILE).read_text())
        pair = OnnxPair(
            directory,
            str(manifest["kind"]),
            int(manifest["latent_dim"]),
            str(manifest["weights_sha256"]),
            {k: float(v) for k, v in manifest["max_abs_error"].items()},
            int(manifest["opset"]),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise OnnxExportError(f"{directory} holds no complete ONNX export: {error}") from None
    if manifest.get("format") != MANIFEST_FORMAT or not (pair.decoder.is_file() and pair.encoder.is_file()):
        raise OnnxExportError(f"{directory} holds no complete ONNX export (format or files missing)")
    for part, path in (("decoder", pair.decoder), ("encoder", pair.encoder)):
        # A cached graph is served to every page that shows the model: one altered byte must not survive.
        if hashlib.sha256(path.read_bytes()).hexdigest() != manifest[part].get("sha256"):
            raise OnnxExportError(f"{path} does not match the SHA-256 in its manifest (truncated or altered)")
    return pair


class ExportCache:
    """Exports kept under ``<root>/<weights sha256>/``, made once per weights.

    The folder appears complete or not at all: an export is written into a private temporary folder and
    renamed into place, so a reader never sees half a pair and two processes exporting the same model at
    once both end with the same, complete folder.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def get(self, model: LatentModel, weights_sha256: str, images: torch.Tensor | None = None) -> OnnxPair:
        if not weights_sha256 or not all(c in "0123456789abcdef" for c in weights_sha256):
            raise ValueError(f"weights_sha256 must be a hex digest, got {weights_sha256!r}")
        target = self.root / weights_sha256
        with contextlib.suppress(OnnxExportError):
            cached = read_pair(target)
            if cached.weights_sha256 == weights_sha256:
                return cached
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f".{weights_sha256}.{secrets.token_hex(6)}.part"
        try:
            export_pair(model, staging, weights_sha256, images)
            try:
                os.replace(staging, target)
            except OSError:  # another process put a complete export there first (or a damaged one)
                with contextlib.suppress(OnnxExportError):
                    return read_pair(target)
                shutil.rmtree(target, ignore_errors=True)
                os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return read_pair(target)


def pair_for(
    stored: StoredModel, model: LatentModel, cache: ExportCache, images: torch.Tensor | None = None
) -> OnnxPair:
    """The standard pair (names and shapes as in this module's docstring) of a stored model -> its files.

    ``stored`` and ``model`` are what :func:`vae.store.load_model` returned together. What the page runs for
    any model of the store: the project's own models are exported once per weights and kept in ``cache``; an
    imported model's standard graphs, written and checked at import, are served from its own folder (no
    export, nothing cached). Raises ValueError if ``stored`` is not the entry ``model`` was loaded from, as
    far as an imported model's graphs show it.
    """
    if stored.config.arch != model.config.arch:
        raise ValueError(f"{stored.path} holds a model of arch {stored.config.arch!r}, not {model.config.arch!r}")
    if stored.config.arch == IMPORTED_ARCH:
        return _imported_pair(stored, model)
    return cache.get(model, stored.weights_sha256, images)


def _imported_pair(stored: StoredModel, model: LatentModel) -> OnnxPair:
    for role in ("standard_decoder", "standard_encoder"):
        # The graphs the model runs must be the files served, or the page would run another model.
        if hashlib.sha256(getattr(model, role)).hexdigest() != stored.files[role]["sha256"]:
            raise ValueError(f"the model's {role.replace('_', ' ')} is not that of the model stored in {stored.path}")
    onnx_extra = stored.extra.get("onnx") if isinstance(stored.extra.get("onnx"), dict) else {}
    recorded = onnx_extra.get("max_abs_error") if isinstance(onnx_extra.get("max_abs_error"), dict) else {}
    errors = {k: float(v) for k, v in recorded.items() if k in ("decoder", "encoder") and isinstance(v, (int, float))}
    opsets = onnx_extra.get("opset") if isinstance(onnx_extra.get("opset"), dict) else {}
    opset = opsets.get("decoder") if isinstance(opsets.get("decoder"), int) else 0  # the user's graph's own
    return OnnxPair(
        stored.path,
        stored.config.kind,
        stored.config.latent_dim,
        stored.weights_sha256,
        errors,
        opset,
        decoder_file=stored.files["standard_decoder"]["file"],
        encoder_file=stored.files["standard_encoder"]["file"],
    )


def check_images_of(dataset: str, data_dir: str | os.PathLike | None) -> torch.Tensor | None:
    """The first test images of ``dataset`` for the parity check, or None (noise then) without the data."""
    from vae.data import DatasetUnavailableError, load_dataset
    from vae.models import to_float_images

    try:  # real digits make the parity check mean more; without the data, noise still checks the graphs
        test_images, _ = load_dataset(dataset, "test", data_dir)
        return to_float_images(test_images[:CHECK_BATCH])
    except DatasetUnavailableError:
        return None


def cache_store(models_dir: str | os.PathLike, cache: ExportCache, data_dir: str | os.PathLike | None = None) -> int:
    """Export every model of the store ``models_dir`` into ``cache`` -> 0, or 1 if any failed (each said)."""
    from vae.store import StoreError, list_models, load_model

    failed, ready, exported = 0, 0, []
    for stored in list_models(models_dir):
        if stored.config.arch == IMPORTED_ARCH:
            continue  # its standard graphs live in its own folder
        if (cache.root / stored.weights_sha256 / MANIFEST_FILE).is_file():
            ready += 1  # read_pair in cache.get checks it when it is used
            continue
        try:
            model, stored = load_model(stored.path)
            cache.get(model, stored.weights_sha256, check_images_of(stored.dataset_name, data_dir))
            exported.append(stored.name)
        except (StoreError, OnnxExportError) as error:
            failed = 1
            print(f"onnx: {stored.name}: {error}", file=sys.stderr)
    note = f", exported now: {', '.join(exported)}" if exported else ""
    print(f"onnx: {ready + len(exported)} models' decoders and encoders ready in {cache.root}{note}")
    return failed
