"""Checkpoint -> ONNX with a dynamic batch axis and emotrace metadata, checked against torch.

The metadata JSON (classes, input size, normalisation, preprocessing, temperature, version,
metrics) is stored in the file's ``metadata_props`` under the key ``emotrace``, so one
``.onnx`` file is a complete model for :class:`emotrace.EmotionClassifier`.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emotrace import __version__
from emotrace.errors import ModelError, require
from emotrace.export.onnx_file import store_weights_fp16, write_metadata

if TYPE_CHECKING:
    from emotrace.export.qat import QatSettings

PARITY_TOLERANCE = 1e-4
#: Logits of a model whose weights are stored in half precision (computed in fp32) may move by
#: the rounding of every weight (relative 2**-11); more than this means a broken conversion.
FP16_WEIGHTS_TOLERANCE = 2e-2


@dataclass
class ExportResult:
    """The written file and how closely it matches the torch model."""

    path: Path
    max_abs_diff: float
    int8: bool
    size_bytes: int
    quantization: dict[str, Any] | None = None
    #: Max |logit difference| to torch after storing the weights in half precision, if asked.
    fp16_weights_diff: float | None = None

    @property
    def fine_tuning(self) -> dict[str, Any] | None:
        """What quantisation-aware fine-tuning did, if asked (part of the int8 recipe)."""
        return (self.quantization or {}).get("fine_tuning")


def onnx_metadata(meta: dict[str, Any], name: str) -> dict[str, Any]:
    """The subset of checkpoint metadata inference needs (no training config)."""
    keep = (
        "architecture",
        "model_options",
        "classes",
        "input_size",
        "channels",
        "normalization",
        "preprocess",
        "temperature",
        "metrics",
        "dataset_key",
        "epoch",
    )
    out = {k: meta[k] for k in keep if k in meta}
    out["name"] = name
    out["emotrace_version"] = __version__
    return out


def _torch_export(model: Any, channels: int, size: int, path: Path) -> None:
    import torch

    example = (torch.randn(2, channels, size, size),)
    # The exporter logs a warning per missing torchvision op and a progress line per step.
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    logging.getLogger("onnxscript").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            example,
            input_names=["input"],
            output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},),
            dynamo=True,
            opset_version=18,
            verbose=False,
        )
    if program is None:
        raise ModelError("torch.onnx.export returned no program")
    program.save(str(path))


def parity(model: Any, path: Path, channels: int, size: int, batch: int = 8) -> float:
    """Max absolute logit difference between torch and onnxruntime on a random batch."""
    import torch

    from emotrace.runtime.onnx_backend import OnnxBackend

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch, size, size, channels), dtype=np.uint8)
    backend = OnnxBackend(path, threads=None)
    onnx_logits = backend.logits(images)
    x = torch.from_numpy(images.transpose(0, 3, 1, 2).astype(np.float32))
    x = (x / 255.0 - backend.spec.mean) / backend.spec.std
    with torch.inference_mode():
        torch_logits = model(x).numpy()
    return float(np.abs(onnx_logits - torch_logits).max())


def check_onnx_name(path: Path | str) -> None:
    """Refuse an output that is not named ``*.onnx``: ``-o RUN/model.safetensors`` (or its
    ``.json``) wrote the ONNX file over the checkpoint it was exported from."""
    if Path(path).suffix.lower() != ".onnx":
        raise ModelError(f"{path}: an ONNX model is written to a file named *.onnx")


def export_onnx(
    checkpoint: Path | str,
    output: Path | str,
    int8: bool = False,
    calibration_images: np.ndarray | None = None,
    name: str | None = None,
    fp16_weights: bool = False,
    qat: QatSettings | None = None,
) -> ExportResult:
    """Export a checkpoint (run folder or ``.safetensors``) to ONNX and verify it.

    fp32 logits must match torch within :data:`PARITY_TOLERANCE` or a :class:`ModelError` is raised.
    ``int8`` quantises statically (QDQ, per-channel) with ``calibration_images`` (uint8
    ``(N, S, S, C)`` prepared like the model's input; a few hundred are plenty).
    ``fp16_weights`` stores the fp32 model's weights in half precision (half the file, same
    speed); its logits must stay within :data:`FP16_WEIGHTS_TOLERANCE` of torch's.
    ``qat`` (int8 only) fine-tunes a copy of the model under simulated int8 rounding to give the
    fp32 model's answers, then quantises that copy (:mod:`emotrace.export.qat`).
    """
    require("torch", "train")
    require("onnxscript", "train")
    from emotrace.training.checkpoint import load_checkpoint

    if int8 and fp16_weights:
        raise ModelError("choose int8 or fp16 weights, not both")
    if qat is not None and not int8:
        raise ModelError("quantisation-aware fine-tuning is for int8 export (add --int8)")

    check_onnx_name(output)
    loaded = load_checkpoint(checkpoint)
    meta = loaded.meta
    if qat is not None:
        from emotrace.export.qat import SUPPORTED as SUPPORTED_QAT

        if meta["architecture"] not in SUPPORTED_QAT:
            raise ModelError(
                f"quantisation-aware fine-tuning supports {', '.join(SUPPORTED_QAT)}, "
                f"not {meta['architecture']}"
            )
    channels, size = int(meta["channels"]), int(meta["input_size"])
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Everything is written beside ``out`` and moved onto it only once checked: a failed parity
    # check or an interrupted run never replaces a good model with a bad or half-written one.
    fp32_path = out.with_name(out.stem + ".fp32.tmp.onnx")
    ptq_path = out.with_name(out.stem + ".ptq.tmp.onnx")
    fp16_diff = quant_info = None
    try:
        _torch_export(loaded.model, channels, size, fp32_path)
        metadata = onnx_metadata(meta, name or loaded.path.parent.name)
        write_metadata(fp32_path, metadata)
        diff = parity(loaded.model, fp32_path, channels, size)
        if diff > PARITY_TOLERANCE:
            raise ModelError(f"ONNX export differs from torch by {diff:.2e} (> {PARITY_TOLERANCE})")
        if fp16_weights:
            store_weights_fp16(fp32_path)
            fp16_diff = parity(loaded.model, fp32_path, channels, size)
            if fp16_diff > FP16_WEIGHTS_TOLERANCE:
                raise ModelError(
                    f"fp16-weight export differs from torch by {fp16_diff:.2e} "
                    f"(> {FP16_WEIGHTS_TOLERANCE})"
                )
        if not int8:
            os.replace(fp32_path, out)
        else:
            from emotrace.export.quantize import quantize_int8

            if calibration_images is None or len(calibration_images) == 0:
                raise ModelError("int8 export needs calibration images (pass --data)")
            if qat is None:
                quant_info = quantize_int8(fp32_path, out, calibration_images, metadata)
            else:
                # The post-training model is only the reference for the fine-tuning's rounding.
                quantize_int8(fp32_path, ptq_path, calibration_images, metadata)
                fine_tuning, scales = _fine_tune_for_int8(loaded, ptq_path, fp32_path, qat)
                quant_info = quantize_int8(
                    fp32_path,
                    out,
                    calibration_images,
                    metadata,
                    {"fine_tuning": fine_tuning},
                    activation_scales=scales,
                )
    finally:
        fp32_path.unlink(missing_ok=True)
        ptq_path.unlink(missing_ok=True)
    return ExportResult(out, diff, int8, out.stat().st_size, quant_info, fp16_diff)


def _fine_tune_for_int8(
    loaded: Any, int8_path: Path, fp32_path: Path, qat: QatSettings
) -> tuple[dict[str, Any], dict[str, tuple[float, int]]]:
    """Fine-tune ``loaded.model`` against the rounding of ``int8_path``; re-export it to
    ``fp32_path``; return the recipe and the activation scales it was tuned against.
    The checkpoint on disk is not touched."""
    from emotrace.export.qat import fine_tune_for_int8
    from emotrace.runtime.model_info import ModelSpec

    meta = loaded.meta
    spec = ModelSpec.from_metadata(meta)
    result = fine_tune_for_int8(
        loaded.model,
        int8_path,
        qat.images,
        spec.mean,
        spec.std,
        qat.epochs,
        qat.lr,
        log=qat.log,
        learn_scales=qat.learn_scales,
        augment=qat.augment,
    )
    loaded.model.eval()
    channels, size = int(meta["channels"]), int(meta["input_size"])
    _torch_export(loaded.model, channels, size, fp32_path)
    write_metadata(fp32_path, onnx_metadata(meta, "fine-tuned"))
    return result.to_dict(), {name: (r.scale, r.zero) for name, r in result.scales.items()}
