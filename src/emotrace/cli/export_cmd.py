"""``emotrace export`` (checkpoint -> ONNX) and ``emotrace calibrate`` (fit the temperature)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from emotrace.cli._common import console, positive_int


def add_parser(sub: Any) -> None:
    """Register ``export`` and ``calibrate``."""
    p = sub.add_parser("export", help="export a trained checkpoint to ONNX (fp32 or int8)")
    p.add_argument("model", type=Path, help="run folder or .safetensors checkpoint")
    p.add_argument("-o", "--output", type=Path, required=True, help="output .onnx file")
    p.add_argument("--int8", action="store_true", help="quantise to int8 (needs --data)")
    p.add_argument("--data", help="dataset or .npz for int8 calibration (training split)")
    p.add_argument(
        "--calibration-images", type=positive_int, default=512, help="images used for int8"
    )
    p.add_argument(
        "--fp16-weights",
        action="store_true",
        help="store the fp32 model's (or --float-twin's) weights in half precision (half the "
        "size, same speed)",
    )
    p.add_argument(
        "--qat-epochs",
        type=float,
        default=0.0,
        help="with --int8: quantisation-aware fine-tuning, epochs over the training split that "
        "teach the int8 model the fp32 model's answers (default 0: post-training int8 only)",
    )
    p.add_argument("--qat-lr", type=float, default=3e-5, help="peak learning rate of --qat-epochs")
    p.add_argument(
        "--qat-augment",
        action="store_true",
        help="with --qat-epochs: augment the fine-tuning images as the run's training did "
        "(default: mirror only)",
    )
    p.add_argument(
        "--qat-learn-scales",
        action="store_true",
        help="with --qat-epochs: also learn the activation scales (LSQ) instead of keeping the "
        "calibrated ones",
    )
    p.add_argument(
        "--float-twin",
        type=Path,
        metavar="PATH",
        help="with --int8: also write the int8 model computed in float (its weights, activations "
        "clipped to its ranges but not rounded) to PATH, an fp32 model that gives int8's answers",
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
    import numpy as np

    from emotrace.errors import ConfigError
    from emotrace.export import export_onnx
    from emotrace.export.onnx_export import check_onnx_name

    images = qat = held_out = None
    # Written so that NaN (which passes < and <= tests) is refused too.
    if not (0 <= args.qat_epochs < math.inf and 0 < args.qat_lr < math.inf):
        raise ConfigError("--qat-epochs must be >= 0 and --qat-lr > 0")
    if args.qat_epochs and not args.int8:
        raise ConfigError("--qat-epochs fine-tunes for int8: add --int8")
    if (args.qat_augment or args.qat_learn_scales) and not args.qat_epochs:
        raise ConfigError("--qat-augment and --qat-learn-scales need --qat-epochs")
    if args.float_twin and not args.int8:
        raise ConfigError("--float-twin is the float form of the int8 model: add --int8")
    if args.int8 and args.fp16_weights and not args.float_twin:
        raise ConfigError(
            "choose int8 or fp16 weights, not both (with --int8, --fp16-weights "
            "applies to --float-twin)"
        )
    for out in (args.output, args.float_twin):
        # Checked before minutes of calibration or fine-tuning, not when the file is written.
        if out is not None and out.is_dir():
            raise ConfigError(f"{out} is a folder; give the .onnx file to write ({out}/NAME.onnx)")
        if out is not None:
            check_onnx_name(out)
    if args.float_twin and args.float_twin.resolve() == args.output.resolve():
        raise ConfigError("--float-twin must be another file than -o")
    if args.int8:
        if not args.data:
            raise ConfigError("--int8 needs --data (images to calibrate the quantisation on)")
        train, held_out = _int8_images(args.model, args.data)
        picks = np.random.default_rng(0).permutation(len(train))[: args.calibration_images]
        images = train[np.sort(picks)]
        if args.qat_epochs:
            from emotrace.export.qat import QatSettings

            qat = QatSettings(
                train,
                args.qat_epochs,
                args.qat_lr,
                lambda line: console.print(line, highlight=False),
                args.qat_learn_scales,
                _training_augment(args.model) if args.qat_augment else None,
            )
    result = export_onnx(
        args.model,
        args.output,
        int8=args.int8,
        calibration_images=images,
        name=args.name,
        fp16_weights=args.fp16_weights and not args.int8,  # with --int8: the twin's weights
        qat=qat,
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
    if result.fine_tuning:
        ft = result.fine_tuning
        console.print(
            f"int8 fine-tuning: {ft['steps']} steps over {ft['train_images']:,} training images "
            f"({ft['epochs']:g} epochs)"
        )
    if result.int8 and held_out is not None:
        split, held_images = held_out
        agreement = _agreement(args.model, result.path, held_images)
        console.print(
            f"int8 gives the fp32 model's answer on {agreement:.1%} of {len(held_images):,} "
            f"{split} images"
        )
    if args.float_twin:
        from emotrace.export.float_twin import write_float_twin

        write_float_twin(result.path, args.float_twin, args.fp16_weights)
        size = args.float_twin.stat().st_size / 1e6
        weights = "fp16 weights" if args.fp16_weights else "fp32 weights"
        console.print(
            f"wrote {args.float_twin} (float twin of the int8 model, {weights}, {size:.1f} MB)"
        )
        if held_out is not None:
            split, held_images = held_out
            agreement = _agreement(args.float_twin, result.path, held_images)
            console.print(
                f"int8 gives its float twin's answer on {agreement:.1%} of {len(held_images):,} "
                f"{split} images"
            )
    return 0


def _training_augment(model: Path) -> dict[str, Any]:
    """The augmentation the checkpoint was trained with (its config), for fine-tuning."""
    from emotrace.errors import ConfigError
    from emotrace.training.checkpoint import read_metadata

    augment = read_metadata(model).get("config", {}).get("augment")
    if not isinstance(augment, dict):
        raise ConfigError(f"{model}: its metadata holds no training augmentation (--qat-augment)")
    return augment


def _int8_images(model: Path, data: str) -> tuple[Any, tuple[str, Any] | None]:
    """The training split (calibration, fine-tuning) and a held-out split to check agreement."""
    from emotrace.data.prepared import load_prepared
    from emotrace.runtime.model_info import ModelSpec
    from emotrace.training.checkpoint import read_metadata

    spec = ModelSpec.from_metadata(read_metadata(model))
    prepared = load_prepared(data, spec.preprocess)
    split = "train" if "train" in prepared.splits else next(iter(prepared.splits))
    held = next((name for name in ("valid", "test") if name in prepared.splits), None)
    held_out = (held, prepared.splits[held].images) if held and held != split else None
    return prepared.splits[split].images, held_out


def _agreement(reference: Path, int8_path: Path, images: Any) -> float:
    """Share of ``images`` on which the int8 file and ``reference`` (the fp32 checkpoint or an
    ONNX file) agree on the label."""
    from emotrace.runtime.onnx_backend import OnnxBackend
    from emotrace.runtime.torch_backend import TorchBackend

    fp32 = OnnxBackend(reference) if reference.suffix == ".onnx" else TorchBackend(reference)
    int8 = OnnxBackend(int8_path)
    agree = 0
    for start in range(0, len(images), 256):
        chunk = images[start : start + 256]
        agree += int((fp32.logits(chunk).argmax(1) == int8.logits(chunk).argmax(1)).sum())
    return agree / max(1, len(images))


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
