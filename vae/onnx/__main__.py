"""``python -m vae.onnx export|import|cache``: the command line of :mod:`vae.onnx.export` and :mod:`vae.onnx.importer`.

- ``export MODEL_DIR --out DIR``: a stored model's ``decoder.onnx``, ``encoder.onnx`` and ``onnx.json``;
- ``import ENCODER DECODER --out models/NAME``: an ONNX pair as a model of the store (exit 2 when refused);
- ``cache MODELS_DIR --cache DIR``: every model of a store exported into the export cache the pages use.

The import's ``model.json`` records this command (``extra.source``), so its name stays ``vae.onnx``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import vae.onnx
from vae.models import PIXEL_LAYOUTS, RECON_LOSSES


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vae.onnx", description=vae.onnx.__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write MODEL_DIR's decoder.onnx and encoder.onnx into --out")
    export.add_argument("model_dir", help="a model folder of the store (holds model.json)")
    export.add_argument("--out", required=True, help="folder for decoder.onnx, encoder.onnx and onnx.json")
    export.add_argument("--data-dir", default=None, help="where the datasets are (default ./data or $VAE_DATA_DIR)")
    warm = commands.add_parser(
        "cache",
        help="export every model of MODELS_DIR into the export cache --cache (what the page runs)",
        description="Export every model of a store folder into an export cache, skipping those already there: "
        "what scripts/setup.sh does, so the first page that shows a model needs no export.",
    )
    warm.add_argument("models_dir", help="a store folder (holds model folders)")
    warm.add_argument("--cache", required=True, help="the export cache (the app's is .cache/onnx)")
    warm.add_argument("--data-dir", default=None, help="where the datasets are (default ./data or $VAE_DATA_DIR)")
    _add_import_arguments(
        commands.add_parser(
            "import",
            help="import ENCODER.onnx and DECODER.onnx as a model of the store (--out models/NAME)",
            description="Import an encoder and a decoder exported to ONNX as a model of the store: both graphs are "
            "checked, normalised to the standard interface and measured on the test set; the model then loads with "
            "vae.load_model like any other. A refusal says why and exits with status 2.",
        )
    )
    args = parser.parse_args(argv)
    if args.command == "import":
        code = _run_import(args)
        if code:
            raise SystemExit(code)
        return
    from vae.onnx.export import MANIFEST_FILE, ExportCache, OnnxExportError, cache_store, check_images_of, export_pair

    if args.command == "cache":
        raise SystemExit(cache_store(args.models_dir, ExportCache(args.cache), args.data_dir))

    from vae.store import StoreError, load_model

    try:
        model, stored = load_model(args.model_dir)
    except StoreError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    images = check_images_of(stored.dataset_name, args.data_dir)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST_FILE).is_file():
        print(f"error: {out} exists and is not an earlier export; choose an empty folder", file=sys.stderr)
        raise SystemExit(2)
    try:
        pair = export_pair(model, out, stored.weights_sha256, images)
    except OnnxExportError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.2f} MB" for p in (pair.decoder, pair.encoder))
    errors = ", ".join(f"{k} {v:.1e}" for k, v in pair.max_abs_error.items())
    print(f"{stored.name}: {sizes} in {out} (max abs difference from the model: {errors})")


def _add_import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "encoder",
        help="ENCODER.onnx: images [B, 1, 28, 28], [B, 28, 28, 1] or [B, 784] -> "
        "[B, D] (AE) or mean and log-variance (VAE)",
    )
    parser.add_argument("decoder", help="DECODER.onnx: [B, D] -> [B, 784] or [B, 1, 28, 28] in [0, 1]")
    parser.add_argument("--out", required=True, help="the new model's folder, e.g. models/my-vae")
    parser.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"], help="what it was trained on")
    parser.add_argument("--logits", action="store_true", help="the decoder gives logits: a sigmoid is appended")
    parser.add_argument(
        "--encoder-outputs",
        default=None,
        metavar="MEAN[,LOGVAR]",
        help="the encoder's outputs to use, by name (when it has several, e.g. Keras's z_mean,z_log_var,z)",
    )
    parser.add_argument("--decoder-output", default=None, metavar="NAME", help="the decoder's image output, by name")
    parser.add_argument(
        "--input-layout",
        default=None,
        choices=list(PIXEL_LAYOUTS),
        help="how the encoder takes the pixels, when its graph leaves it open",
    )
    parser.add_argument(
        "--recon-loss", default="bce", choices=list(RECON_LOSSES), help="the reconstruction term measured"
    )
    parser.add_argument("--replace", action="store_true", help="replace a model of the same name")
    parser.add_argument("--data-dir", default=None, help="where the datasets are (default ./data or $VAE_DATA_DIR)")


def _run_import(args: argparse.Namespace) -> int:
    """The import subcommand: 0 when imported, 2 when refused (with the reason on stderr), 1 when the disk fails."""
    from vae.onnx.importer import ImportRefused, import_onnx, summary

    outputs = [n.strip() for n in args.encoder_outputs.split(",")] if args.encoder_outputs else None
    try:
        model, stored = import_onnx(
            args.encoder,
            args.decoder,
            args.out,
            dataset=args.dataset,
            data_dir=args.data_dir,
            logits=args.logits,
            encoder_outputs=outputs,
            decoder_output=args.decoder_output,
            input_layout=args.input_layout,
            recon_loss=args.recon_loss,
            replace=args.replace,
            origin="python -m vae.onnx import",
        )
    except ImportRefused as error:
        print(f"error: not imported: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: could not write {args.out}: {error}", file=sys.stderr)
        return 1
    print(summary(stored))
    return 0


if __name__ == "__main__":
    main()
