"""onnxruntime backend: the inference path, with no torch anywhere."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from emotrace.errors import ModelError
from emotrace.runtime.model_info import ModelSpec
from emotrace.runtime.onnx_check import refuse_external_data

#: Key under which emotrace stores its metadata JSON in the ONNX ``metadata_props``.
METADATA_KEY = "emotrace"


class OnnxBackend:
    """Logits for prepared uint8 face batches ``(N, S, S, C)`` from an emotrace ONNX file."""

    def __init__(self, model: Path | str | bytes, threads: int | None = 1, name: str = "") -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if not isinstance(model, bytes) and not Path(model).is_file():
            raise ModelError(f"{model}: no such model file")
        where = "model bytes" if isinstance(model, bytes) else str(model)
        # Checked and loaded from the same bytes: the file cannot change in between.
        source = model if isinstance(model, bytes) else Path(model).read_bytes()
        refuse_external_data(source, where)
        try:
            self._session = ort.InferenceSession(
                source, options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            first = (
                str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            )
            raise ModelError(f"{where}: not a loadable ONNX model ({first})") from None
        props = self._session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in props:
            raise ModelError(f"{name or model!s}: ONNX file has no emotrace metadata")
        meta = json.loads(props[METADATA_KEY])
        default_name = Path(model).stem if not isinstance(model, bytes) else "onnx"
        self.spec = ModelSpec.from_metadata(meta, name=name or meta.get("name") or default_name)
        self.meta = meta
        self._input = self._session.get_inputs()[0].name

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Raw (un-tempered) logits ``(N, K)`` for a prepared uint8 batch ``(N, S, S, C)``."""
        x = batch.transpose(0, 3, 1, 2).astype(np.float32)
        x *= 1.0 / (255.0 * self.spec.std)
        x -= self.spec.mean / self.spec.std
        out = self._session.run(None, {self._input: x})[0]
        return np.asarray(out, dtype=np.float32)

    def logits_scaled(self, x: np.ndarray) -> np.ndarray:
        """Raw logits ``(N, K)`` for prepared faces as float32 ``(N, C, S, S)`` in [0, 1] (an
        augmented training batch, say), normalised as the model's metadata says."""
        x = (x - np.float32(self.spec.mean)) / np.float32(self.spec.std)
        out = self._session.run(None, {self._input: x.astype(np.float32, copy=False)})[0]
        return np.asarray(out, dtype=np.float32)
