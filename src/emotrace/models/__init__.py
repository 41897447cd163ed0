"""Model architectures behind one registry (needs the ``train`` extra: torch).

>>> from emotrace.models import build, list_models
>>> model = build("emonet", num_classes=7)
"""

from emotrace.models._registry import (
    ModelInfo,
    build,
    deprecated_models,
    list_models,
    model_info,
    register,
    register_model_deprecations,
)

__all__ = [
    "ModelInfo",
    "build",
    "deprecated_models",
    "list_models",
    "model_info",
    "register",
    "register_model_deprecations",
]
