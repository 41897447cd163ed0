"""Resolve what a user names as a model: ``default``, an ``.onnx`` file, or a checkpoint/run."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Protocol

import numpy as np

# The names and files live in a module that imports nothing (``--help`` lists them).
from emotrace.bundled import BUNDLED_MODELS, DEFAULT_MODEL_FILE, MODEL_CHOICES_HELP
from emotrace.errors import ConfigError, ModelError
from emotrace.runtime.model_info import ModelSpec

__all__ = [
    "BUNDLED_MODELS",
    "DEFAULT_MODEL_FILE",
    "MODEL_CHOICES_HELP",
    "Backend",
    "check_model_exists",
    "default_model_path",
    "load_backend",
]


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
    """A bundled ONNX model (a name in :data:`BUNDLED_MODELS`) inside the installed package."""
    if name not in BUNDLED_MODELS:
        raise ModelError(f"{name}: no such bundled model (give {', '.join(BUNDLED_MODELS)})")
    path = Path(str(resources.files("emotrace") / "assets" / BUNDLED_MODELS[name]))
    if not path.is_file():
        raise ModelError(f"no bundled {name} model in this installation (emotrace/assets)")
    return path


def check_model_exists(model: str | Path) -> None:
    """Refuse (:class:`ModelError`, one line) a model name or path that names nothing, without
    loading it: for a model that is loaded later, on first use."""
    text = str(model)
    if text in BUNDLED_MODELS:
        default_model_path(text)
    elif not Path(text).exists():
        raise ModelError(f"{text}: no such model (give {MODEL_CHOICES_HELP})")


def load_backend(model: str | Path, threads: int | None = 1) -> Backend:
    """A backend for ``model``: a bundled name (:data:`BUNDLED_MODELS`), an ONNX file, or
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
        raise ModelError(f"{text}: no such model (give {MODEL_CHOICES_HELP})")
    if path.suffix == ".onnx":
        from emotrace.runtime.onnx_backend import OnnxBackend

        return OnnxBackend(path, threads=threads)
    if path.is_file() and path.suffix not in (".safetensors", ".json"):
        raise ModelError(
            f"{text}: not a model (give {', '.join(BUNDLED_MODELS)}, an .onnx file, a "
            ".safetensors checkpoint or a run folder)"
        )
    from emotrace.runtime.torch_backend import TorchBackend

    return TorchBackend(path, threads=threads)
