"""Optional torch backend: run a training checkpoint that has not been exported to ONNX."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from emotrace.errors import require
from emotrace.runtime.model_info import ModelSpec

if TYPE_CHECKING:
    import torch


class TorchBackend:
    """Logits for prepared uint8 face batches ``(N, S, S, C)`` from a safetensors checkpoint.

    The model runs on ``device`` (the CPU unless told otherwise; a teacher during training runs
    on the student's device, so its answers on each batch cost no copies)."""

    def __init__(
        self, checkpoint: Path | str, threads: int | None = None, device: str | None = None
    ) -> None:
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
        self.device = torch.device("cpu")
        if device is not None:
            self.to(device)

    def to(self, device: str | torch.device) -> TorchBackend:
        """Move the model to ``device`` (``"cuda"``, ``"cpu"``, a :class:`torch.device`)."""
        self.device = self._torch.device(device)
        self._model.to(self.device)
        return self

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Raw (un-tempered) logits ``(N, K)`` for a prepared uint8 batch ``(N, S, S, C)``."""
        x = np.ascontiguousarray(batch.transpose(0, 3, 1, 2)).astype(np.float32) / 255.0
        return self.logits_scaled(x)

    def logits_scaled(self, x: np.ndarray) -> np.ndarray:
        """Raw logits ``(N, K)`` for prepared faces as float32 ``(N, C, S, S)`` in [0, 1]."""
        scaled = self._torch.from_numpy(np.ascontiguousarray(x))
        return self.logits_tensor(scaled).cpu().numpy().astype(np.float32, copy=False)

    def logits_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Raw logits ``(N, K)`` for prepared faces as a tensor ``(N, C, S, S)`` in [0, 1], on
        ``x``'s device (computed on this backend's)."""
        torch = self._torch
        # no_grad, not inference_mode: the result may become a training target, which autograd
        # must be able to save for the backward pass.
        with torch.no_grad():
            t = (x.to(self.device, torch.float32) - self.spec.mean) / self.spec.std
            out = [self._model(t[i : i + 256]) for i in range(0, t.shape[0], 256)]
        if not out:
            return torch.zeros((0, len(self.spec.classes)), device=x.device)
        return torch.cat(out).float().to(x.device)
