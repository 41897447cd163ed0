"""Static int8 quantisation of an exported model with onnxruntime's quantisation tools."""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from emotrace._atomic import staged_file
from emotrace.export.onnx_file import write_metadata
from emotrace.runtime.model_info import ModelSpec


class _Calibration:
    """onnxruntime CalibrationDataReader over prepared uint8 images."""

    def __init__(self, images: np.ndarray, spec: ModelSpec, batch: int = 32) -> None:
        # Histogram calibrators stack batches, so every batch must have the same size.
        usable = max(batch, len(images) - len(images) % batch)
        x = images[:usable].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        self._x = (x - spec.mean) / spec.std
        self._batch = batch
        self._pos = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._pos >= len(self._x):
            return None
        chunk = self._x[self._pos : self._pos + self._batch]
        self._pos += self._batch
        return {"input": chunk}

    def rewind(self) -> None:
        self._pos = 0


def classifier_nodes(path: Path) -> list[str]:
    """Names of the Gemm/MatMul (and bias Add) nodes that write the graph's output."""
    import onnx

    graph = onnx.load(str(path)).graph
    outputs = {o.name for o in graph.output}
    producer = {out: node for node in graph.node for out in node.output}
    names: list[str] = []
    for name in outputs:
        node = producer.get(name)
        if node is not None and node.op_type == "Add":  # MatMul + bias
            names.append(node.name)
            node = next((producer[i] for i in node.input if i in producer), None)
        if node is not None and node.op_type in ("Gemm", "MatMul"):
            names.append(node.name)
    return names


def quantize_int8(
    fp32_path: Path,
    output: Path,
    images: np.ndarray,
    metadata: dict[str, Any],
    recipe: dict[str, Any] | None = None,
    activation_scales: dict[str, tuple[float, int]] | None = None,
) -> dict[str, Any]:
    """Write an int8 QDQ model to ``output`` (with the same metadata) and describe the recipe.

    ``recipe``: more facts for the ``quantization`` entry of the metadata (fine-tuning, say).
    ``activation_scales``: (scale, zero point) by tensor name, used instead of calibrating those
    tensors (a model fine-tuned against given roundings keeps them).
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    spec = ModelSpec.from_metadata(metadata)
    # Quantised beside ``output`` and moved onto it complete, metadata included: an interrupted
    # or failed export never leaves half a model, or a model without its metadata, at ``output``.
    with staged_file(output, "int8") as staged, tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        head = classifier_nodes(prepared)
        extra: dict[str, Any] = {"CalibPercentile": 99.99}
        if activation_scales:
            extra["TensorQuantOverrides"] = {
                name: [{"scale": np.array(s, np.float32), "zero_point": np.array(z, np.uint8)}]
                for name, (s, z) in activation_scales.items()
            }
        # onnxruntime's calibrators print their progress to stdout; the CLI reports for itself.
        with contextlib.redirect_stdout(io.StringIO()):
            quantize_static(
                str(prepared),
                str(staged),
                _Calibration(images, spec),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.Percentile,
                extra_options=extra,
                # 7-bit weights: onnxruntime's u8s8 kernels on x86 CPUs without VNNI (AVX2 only)
                # add pairs of u8*s8 products in int16 with saturation, which full 8-bit weights
                # overflow (the 0.1.0 int8 model lost 3.5 points on an AVX2-only CPU). With 7 bits
                # no pair can overflow, so every x86 CPU computes the same result.
                reduce_range=True,
                # The classifier stays float: its few MACs (1280x7 for MobileNetV2) cost nothing,
                # while 8-bit logits would flip near-ties and clip the top logit.
                nodes_to_exclude=head,
            )
        info = {
            "format": "QDQ",
            "per_channel": True,
            "reduce_range": True,
            "calibration": "percentile 99.99",
            "calibration_images": len(images),
            "float_nodes": len(head),
            **(recipe or {}),
        }
        write_metadata(staged, {**metadata, "quantization": info})
    return info
