"""Resolve what a user names as a model: ``default``, an ``.onnx`` file, or a checkpoint/run."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Protocol

import numpy as np

from emotrace.errors import ModelError
from emotrace.runtime.model_info import ModelSpec

DEFAULT_MODEL_FILE = "emotrace_default.onnx"


class Backend(Protocol):
    """Anything that turns prepared uint8 batches into logits and describes itself."""

    spec: ModelSpec

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Raw logits ``(N, K)`` for a uint8 batch ``(N, S, S, C)``."""
        ...


def default_model_path() -> Path:
    """The bundled default ONNX model inside the installed package."""
    path = Path(str(resources.files("emotrace") / "assets" / DEFAULT_MODEL_FILE))
    if not path.is_file():
        raise ModelError("no bundled default model in this installation (emotrace/assets)")
    return path


def load_backend(model: str | Path, threads: int | None = 1) -> Backend:
    """A backend for ``model``: ``default``, an ONNX file, or a checkpoint / run folder (torch)."""
    text = str(model)
    if text == "default":
        from emotrace.runtime.onnx_backend import OnnxBackend

        return OnnxBackend(default_model_path(), threads=threads, name="default")
    path = Path(text)
    if not path.exists():
        raise ModelError(f"{text}: no such model (give 'default', an .onnx file or a run folder)")
    if path.suffix == ".onnx":
        from emotrace.runtime.onnx_backend import OnnxBackend

        return OnnxBackend(path, threads=threads)
    from emotrace.runtime.torch_backend import TorchBackend

    return TorchBackend(path, threads=threads)
