"""Model registry: a name maps to a builder; :func:`build` makes any registered model.

Each architecture file registers its builders with :func:`register`. Builders take
``num_classes``, ``in_channels``, ``input_size`` and ``pretrained`` plus their own keyword options.
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from emotrace.errors import ModelError

Builder = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about a model before building it."""

    name: str
    builder: Builder
    default_input_size: int
    default_channels: int
    summary: str


_REGISTRY: dict[str, ModelInfo] = {}
#: Builder arguments the training data and config decide, not ``model_options``.
_GEOMETRY_AND_WEIGHTS = ("num_classes", "in_channels", "input_size", "pretrained")


def register(
    name: str, *, input_size: int, channels: int, summary: str
) -> Callable[[Builder], Builder]:
    """Decorator registering a builder under ``name`` with its default input geometry."""

    def wrap(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = ModelInfo(name, builder, input_size, channels, summary)
        return builder

    return wrap


def _ensure_loaded() -> None:
    # Importing the architecture modules runs their @register decorators.
    from emotrace.models import cnn, emonet, mobilenet_v2, mobilevit  # noqa: F401


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern``, sorted."""
    _ensure_loaded()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def model_info(name: str) -> ModelInfo:
    """Registry entry for ``name``; unknown names raise :class:`ModelError` listing valid ones."""
    _ensure_loaded()
    if name not in _REGISTRY:
        raise ModelError(f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def build(
    name: str,
    num_classes: int = 7,
    in_channels: int | None = None,
    input_size: int | None = None,
    pretrained: bool = False,
    **options: Any,
) -> nn.Module:
    """Build a registered model. ``None`` options fall back to the model's own defaults."""
    info = model_info(name)
    kwargs = {k: v for k, v in options.items() if v is not None}
    accepted = [
        p for p in inspect.signature(info.builder).parameters if p not in _GEOMETRY_AND_WEIGHTS
    ]
    unknown = sorted(set(kwargs).difference(accepted))
    if unknown:
        raise ModelError(
            f"{name} has no option(s) {', '.join(unknown)}; its model_options: "
            f"{', '.join(accepted) or 'none'}"
        )
    return info.builder(
        num_classes=num_classes,
        in_channels=in_channels if in_channels is not None else info.default_channels,
        input_size=input_size if input_size is not None else info.default_input_size,
        pretrained=pretrained,
        **kwargs,
    )
