"""Model architectures behind one registry (needs the ``train`` extra: torch).

>>> from emotrace.models import build, list_models
>>> model = build("emonet", num_classes=7)
"""

# The architectures register themselves when imported. Any import of emotrace.models.* runs
# this file first, so the registry is complete before anyone can ask it (and the registry
# itself never imports the architectures: they import it).
from emotrace.models import cnn, emonet, mobilenet_v2, mobilevit  # noqa: F401
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
