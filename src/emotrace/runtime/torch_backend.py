"""Optional torch backend: run a training checkpoint that has not been exported to ONNX."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emotrace.errors import require
from emotrace.runtime.model_info import ModelSpec


class TorchBackend:
    """Logits for prepared uint8 face batches ``(N, S, S, C)`` from a safetensors checkpoint."""

    def __init__(self, checkpoint: Path | str, threads: int | None = None) -> None:
        require("torch", "train")
        import torch

        from emotrace.training.checkpoint import load_checkpoint

        if threads:
            torch.set_num_threads(threads)
        loaded = load_checkpoint(checkpoint)
        self._torch = torch
        self._model = loaded.model
        self.spec = ModelSpec.from_metadata(loaded.meta, name=loaded.path.parent.name)
        self.path = loaded.path

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Raw (un-tempered) logits ``(N, K)`` for a prepared uint8 batch ``(N, S, S, C)``."""
        x = np.ascontiguousarray(batch.transpose(0, 3, 1, 2)).astype(np.float32) / 255.0
        return self.logits_scaled(x)

    def logits_scaled(self, x: np.ndarray) -> np.ndarray:
        """Raw logits ``(N, K)`` for prepared faces as float32 ``(N, C, S, S)`` in [0, 1]."""
        torch = self._torch
        t = (torch.from_numpy(np.ascontiguousarray(x)).float() - self.spec.mean) / self.spec.std
        with torch.inference_mode():
            out = [self._model(t[i : i + 256]) for i in range(0, t.shape[0], 256)]
        return (
            torch.cat(out).numpy().astype(np.float32)
            if out
            else np.zeros((0, len(self.spec.classes)), np.float32)
        )
