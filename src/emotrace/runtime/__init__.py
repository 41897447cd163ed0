"""Inference: model metadata, backends (onnxruntime; torch optional), face preprocessing.

Nothing in this package imports torch at module level.
"""

from emotrace.runtime.model_info import ModelSpec

__all__ = ["ModelSpec"]
