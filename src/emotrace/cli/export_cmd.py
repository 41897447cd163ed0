"""``emotrace export`` (checkpoint -> ONNX) and ``emotrace calibrate`` (fit the temperature)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from emotrace.cli._common import console


def add_parser(sub: Any) -> None:
    """Register ``export`` and ``calibrate``."""
    p = sub.add_parser("export", help="export a trained checkpoint to ONNX (fp32 or int8)")
    p.add_argument("model", type=Path, help="run folder or .safetensors checkpoint")
    p.add_argument("-o", "--output", type=Path, required=True, help="output .onnx file")
    p.add_argument("--int8", action="store_true", help="quantise to int8 (needs --data)")
    p.add_argument("--data", help="dataset or .npz for int8 calibration (training split)")
    p.add_argument("--calibration-images", type=int, default=512, help="images used for int8")
    p.add_argument(
        "--fp16-weights",
        action="store_true",
        help="store the fp32 model's weights in half precision (half the size, same speed)",
    )
    p.add_argument("--name", help="model name stored in the file")
    p.set_defaults(handler=run_export)

    c = sub.add_parser("calibrate", help="fit temperature scaling on a validation split")
    c.add_argument("model", type=Path, help="run folder or .safetensors checkpoint")
    c.add_argument("--data", required=True, help="dataset folder/CSV or prepared .npz")
    c.add_argument("--split", default="valid", help="split to fit on (default valid)")
    c.set_defaults(handler=run_calibrate)


def run_export(args: argparse.Namespace) -> int:
    """Export and report parity with torch."""
    from emotrace.export import export_onnx

    images = None
    if args.int8:
        from emotrace.errors import ConfigError

        if not args.data:
            raise ConfigError("--int8 needs --data (images to calibrate the quantisation on)")
        images = _calibration_images(args.model, args.data, args.calibration_images)
    result = export_onnx(
        args.model,
        args.output,
        int8=args.int8,
        calibration_images=images,
        name=args.name,
        fp16_weights=args.fp16_weights,
    )
    kind = "int8" if result.int8 else "fp32"
    stored = ""
    if result.fp16_weights_diff is not None:
        kind = "fp32 compute, fp16 weights"
        stored = f"; with fp16 weights {result.fp16_weights_diff:.2e}"
    console.print(
        f"wrote {result.path} ({kind}, {result.size_bytes / 1e6:.1f} MB); "
        f"fp32 max |onnx - torch| = {result.max_abs_diff:.2e}{stored}"
    )
    return 0


def _calibration_images(model: Path, data: str, count: int) -> Any:
    import numpy as np

    from emotrace.data.prepared import load_prepared
    from emotrace.runtime.model_info import ModelSpec
    from emotrace.training.checkpoint import read_metadata

    spec = ModelSpec.from_metadata(read_metadata(model))
    prepared = load_prepared(data, spec.preprocess)
    split = "train" if "train" in prepared.splits else next(iter(prepared.splits))
    images = prepared.splits[split].images
    picks = np.random.default_rng(0).permutation(len(images))[:count]
    return images[np.sort(picks)]


def run_calibrate(args: argparse.Namespace) -> int:
    """Fit and store the temperature in the checkpoint metadata."""
    from emotrace.evaluation.temperature import calibrate_checkpoint

    result = calibrate_checkpoint(args.model, args.data, args.split)
    console.print(
        f"temperature {result['temperature']:.3f} fitted on {result['split']} "
        f"({result['n']:,} images): NLL {result['nll_before']:.4f} -> {result['nll_after']:.4f}, "
        f"ECE {result['ece_before']:.4f} -> {result['ece_after']:.4f}"
    )
    return 0
