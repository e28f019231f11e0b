"""Bring your own model: an ONNX encoder and decoder become a model of the store.

:func:`import_onnx` (and ``python -m vae.onnx import``) takes

- an encoder: float images in [0, 1] as ``[B, 1, 28, 28]``, ``[B, 28, 28, 1]`` (Keras), ``[B, 28, 28]`` or
  ``[B, 784]`` -> one output ``[B, D]`` (an AE) or two, mean and log-variance (a VAE);
- a decoder: ``[B, D]`` -> ``[B, 784]``, ``[B, 1, 28, 28]``, ``[B, 28, 28, 1]`` or ``[B, 28, 28]`` in [0, 1]
  (or logits, with ``logits=True``),

chooses the outputs it uses and cuts both graphs down to what those need, checks the cut graphs
(:mod:`vae.onnx.checks`), writes normalised copies with the standard interface of
:mod:`vae.onnx.export` (``x -> embedding [, logvar]``, ``z -> image [B, 1, 28, 28]``; :mod:`vae.onnx.standard`),
measures the model on the test set and stores all four graphs (``vae.store.save_imported_model``). The model then loads through ``vae.load_model`` as an
:class:`~vae.onnx.model.OnnxModel`, like any other.

Every refusal raises :class:`ImportRefused` (exit 2 on the command line) before anything is written, so a
refused import leaves no folder behind. Refused, for the whole file as read: files over :data:`MAX_BYTES`;
bytes that are not ONNX; external data anywhere but in plain files beside the graph (see
:func:`~vae.onnx.checks.read_graph`). Refused, for the graph cut to the outputs used (so that an operator
feeding only a dropped output, like the random draw tf2onnx cannot convert in a Keras encoder, does not
matter): an operator ONNX does not define, named with the output that needs it; a graph that fails
``onnx.checker`` (full check); inputs or outputs of the wrong type, rank or size; a fixed batch size; D outside
2..128; outputs that are NaN, infinite or (for the decoder) outside [0, 1]; operators onnxruntime cannot
run (no custom operator library is ever loaded); an encoder or decoder slower than :data:`MAX_SECONDS`
per :data:`TIMED_BATCH` images or codes, or that needs more memory than the fence allows
(:func:`vae.onnx.fence.memory_limit`, 2 GiB by default: every run of the user's graphs is in a worker
process of its own, :mod:`vae.onnx.fence`); subgraphs nested deeper than
:data:`~vae.onnx.graphs.MAX_SUBGRAPH_DEPTH`; outputs whose shape follows the input values, not the batch.

Names are found from the graphs. Each graph must have one input (the images, the codes): the standard
graphs feed nothing else. The encoder's outputs: one is an AE's code; two are (mean, log-variance) in
order, unless only the first one's name mentions "var"; of three or more, the one named like "mean" and
the one like "log_var" / "logvar" are taken (Keras's ``z_mean, z_log_var, z``); of three whose names do not
say (tf2onnx's ``output_0..2``), the one the graph computes from the other two is the sample z and the other
two are taken as two; else ``encoder_outputs`` must name them. A decoder with several outputs needs ``decoder_output``. An encoder input whose layout the
graph leaves open (``[B, ?, ?, ?]``) is tried as ``nchw``, then ``nhwc``, unless ``input_layout`` says.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vae.models import IMPORTED_ARCH, RECON_LOSSES, ModelConfig, to_float_images
from vae.onnx.checks import MAX_BYTES, MAX_SECONDS, TIMED_BATCH, ImportRefused, probe, read_graph
from vae.onnx.fence import Worker
from vae.onnx.graphs import GraphRefused, default_opset
from vae.onnx.model import OnnxModel
from vae.onnx.standard import check_standard, standard_graphs
from vae.store import META_FILE, StoredModel, StoreError, check_name, load_model, save_imported_model

# What a caller of import_onnx needs besides it: its refusal and its limits (defined with the checks).
__all__ = ["MAX_BYTES", "MAX_SECONDS", "ImportRefused", "import_onnx", "summary"]


def import_onnx(
    encoder: str | os.PathLike | bytes,
    decoder: str | os.PathLike | bytes,
    out: str | os.PathLike,
    *,
    dataset: str = "mnist",
    data_dir: str | os.PathLike | None = None,
    logits: bool = False,
    encoder_outputs: Sequence[str] | None = None,
    decoder_output: str | None = None,
    input_layout: str | None = None,
    recon_loss: str = "bce",
    replace: bool = False,
    names: Sequence[str] | None = None,
    origin: str = "python",
    max_bytes: int = MAX_BYTES,
    max_seconds: float = MAX_SECONDS,
) -> tuple[OnnxModel, StoredModel]:
    """Import an encoder and decoder (files, or bytes for an upload) as the store entry ``out``.

    ``dataset`` is what the model was trained on ("mnist" or "fashion-mnist"): its test images check the
    graphs and measure the model (test loss terms, MSE per pixel, kNN-5 fitted on the training images,
    as for every model of the store). ``names``: the file names recorded for bytes. Returns what
    ``vae.load_model(out)`` returns, read back from the folder. Raises :class:`ImportRefused`.
    """
    from vae.data import DATASETS, DatasetUnavailableError, load_dataset
    from vae.judge import JudgeError
    from vae.training.saving import dataset_entry, evaluate_for_metadata, judge_metrics

    started = time.perf_counter()
    out = Path(out)
    try:
        check_name(out.name)
    except StoreError as error:
        raise ImportRefused(str(error)) from None
    if out.exists() and not replace:
        raise ImportRefused(f"{out} exists: choose another name, or replace it")
    if out.exists() and not (out / META_FILE).is_file() and (not out.is_dir() or any(out.iterdir())):
        raise ImportRefused(f"{out} exists and is not a model folder: it is never replaced")
    if dataset not in DATASETS:
        raise ImportRefused(f"dataset must be one of {list(DATASETS)}, got {dataset!r}")
    if recon_loss not in RECON_LOSSES:
        raise ImportRefused(f"recon_loss must be one of {RECON_LOSSES}, got {recon_loss!r}")
    labels = list(names or (None, None))
    graphs = [
        read_graph(source, what, max_bytes, label)
        for source, what, label in zip((encoder, decoder), ("encoder", "decoder"), labels)
    ]
    try:
        test_images, test_labels = load_dataset(dataset, "test", data_dir)
        train_images, train_labels = load_dataset(dataset, "train", data_dir)
    except DatasetUnavailableError as error:
        raise ImportRefused(f"the {DATASETS[dataset].title} images check and measure the model: {error}") from None
    images = to_float_images(test_images[:TIMED_BATCH]).numpy()
    with Worker() as worker:  # every run of the user's graphs, and of the standard ones around them, is fenced
        wiring = probe(
            *graphs,
            images,
            encoder_outputs=encoder_outputs,
            decoder_output=decoder_output,
            input_layout=input_layout,
            logits=logits,
            max_seconds=max_seconds,
            worker=worker,
        )
        kind = "vae" if len(wiring.interface.encoder_outputs) == 2 else "ae"
        config = ModelConfig(
            kind=kind,
            arch=IMPORTED_ARCH,
            latent_dim=wiring.latent_dim,
            hidden=(),
            recon_loss=recon_loss,
            onnx=wiring.interface,
        )
        standard = standard_graphs(wiring.encoder, wiring.decoder, wiring)
        try:
            model = OnnxModel(config, standard["standard_encoder"], standard["standard_decoder"], worker=worker)
            errors = check_standard(model, wiring)
            metrics = evaluate_for_metadata(model, train_images, train_labels, test_images, test_labels)
            for key, number in metrics.items():  # e.g. a log-variance so large that its exp, hence the KL, is infinite
                if not np.isfinite(number):
                    raise ImportRefused(
                        f"the model's {key} on the test set is {number}: its outputs are finite but not sane"
                    )
            # The judge's verdict on its samples, as for every model of the store (none without a judge).
            metrics |= judge_metrics(model, train_images, test_images, dataset)
        except (GraphRefused, RuntimeError) as error:  # a limit passed on the test set, or a wrong shape
            raise ImportRefused(str(error)) from None
        except JudgeError as error:  # the judge shipped for the dataset is damaged: say so, store nothing
            raise ImportRefused(f"the judge that measures the model's samples cannot be read: {error}") from None
    encoder_graph, decoder_graph = graphs
    extra = {
        "status": "imported",
        "source": origin,
        "onnx": {
            "files": {g.what: g.source for g in graphs},
            "opset": {g.what: default_opset(g.proto) for g in graphs},
            "producer": {g.what: f"{g.proto.producer_name} {g.proto.producer_version}".strip() for g in graphs},
            # What the import cut away: the outputs it does not use, and the nodes only they needed.
            "pruned": {
                g.what: {"outputs": list(g.dropped_outputs), "nodes": g.dropped_nodes}
                for g in (wiring.encoder, wiring.decoder)
            },
            "max_abs_error": errors,
            "seconds_per_256": wiring.seconds,
            "import_seconds": time.perf_counter() - started,
        },
    }
    save_imported_model(
        out,
        config,
        {"encoder": encoder_graph.data, "decoder": decoder_graph.data, **standard},
        metrics=metrics,
        dataset=dataset_entry(dataset, data_dir, len(train_images)),
        extra=extra,
    )
    return load_model(out)


def summary(stored: StoredModel) -> str:
    """One paragraph on an imported model: what it is, how it was wired, what it measured."""
    interface, metrics = stored.config.onnx, stored.metrics
    outputs = " and ".join(repr(n) for n in interface.encoder_outputs)
    numbers = f"test MSE/pixel {metrics['test_mse_per_pixel']:.4f}, kNN-5 {metrics['knn5_accuracy']:.3f}"
    if "test_kl" in metrics:
        numbers += f", KL {metrics['test_kl']:.1f} nats"
    return (
        f"imported {stored.name} ({stored.config.describe()}) into {stored.path}: encoder {interface.encoder_input!r} "
        f"({interface.input_layout}) -> {outputs}; decoder {interface.decoder_input!r} -> {interface.decoder_output!r} "
        f"({interface.output_layout}{', logits' if interface.logits else ''}); {numbers}{_pruned_text(stored)}"
    )


def _pruned_text(stored: StoredModel) -> str:
    """What the import cut away from each graph (``extra.onnx.pruned``; absent in imports made before it cut)."""
    parts = []
    for what, cut in stored.extra.get("onnx", {}).get("pruned", {}).items():
        outputs, nodes = cut.get("outputs", []), cut.get("nodes", 0)
        if outputs:
            names = ", ".join(repr(n) for n in outputs)
            parts.append(f"the {what}'s output{'s' if len(outputs) > 1 else ''} {names} dropped, with {nodes} node(s)")
        elif nodes:
            parts.append(f"{nodes} node(s) of the {what} that feed no output dropped")
    return f"; {'; '.join(parts)}" if parts else ""
