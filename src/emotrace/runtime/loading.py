"""Resolve what a user names as a model: ``default``, an ``.onnx`` file, or a checkpoint/run."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Protocol

import numpy as np

from emotrace.errors import ConfigError, ModelError
from emotrace.runtime.model_info import ModelSpec

DEFAULT_MODEL_FILE = "emotrace_default.onnx"
#: Bundled models by the name users give: the fp32 default and its int8 twin (about 2x faster).
BUNDLED_MODELS = {"default": DEFAULT_MODEL_FILE, "default-int8": "emotrace_default_int8.onnx"}


class Backend(Protocol):
    """Anything that turns prepared batches (uint8, or float scaled to [0, 1]) into logits and
    describes itself."""

    spec: ModelSpec

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Raw logits ``(N, K)`` for a uint8 batch ``(N, S, S, C)``."""
        ...

    def logits_scaled(self, x: np.ndarray) -> np.ndarray:
        """Raw logits ``(N, K)`` for prepared faces as float32 ``(N, C, S, S)`` in [0, 1]."""
        ...


def default_model_path(name: str = "default") -> Path:
    """A bundled ONNX model (``default`` or ``default-int8``) inside the installed package."""
    path = Path(str(resources.files("emotrace") / "assets" / BUNDLED_MODELS[name]))
    if not path.is_file():
        raise ModelError(f"no bundled {name} model in this installation (emotrace/assets)")
    return path


def load_backend(model: str | Path, threads: int | None = 1) -> Backend:
    """A backend for ``model``: a bundled name (``default``, ``default-int8``), an ONNX file, or
    a checkpoint / run folder (needs torch). ``threads``: None or 0 for the engine's default
    (every core), else that many."""
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads < 0
    ):
        raise ConfigError(f"threads must be a whole number >= 0 or None, got {threads!r}")
    text = str(model)
    if text in BUNDLED_MODELS:
        from emotrace.runtime.onnx_backend import OnnxBackend

        return OnnxBackend(default_model_path(text), threads=threads, name=text)
    path = Path(text)
    if not path.exists():
        raise ModelError(
            f"{text}: no such model (give default, default-int8, an .onnx file or a run folder)"
        )
    if path.suffix == ".onnx":
        from emotrace.runtime.onnx_backend import OnnxBackend

        return OnnxBackend(path, threads=threads)
    if path.is_file() and path.suffix not in (".safetensors", ".json"):
        raise ModelError(
            f"{text}: not a model (give default, default-int8, an .onnx file, a .safetensors "
            "checkpoint or a run folder)"
        )
    from emotrace.runtime.torch_backend import TorchBackend

    return TorchBackend(path, threads=threads)
