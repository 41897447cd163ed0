"""Model registry: a name maps to a builder; :func:`build` makes any registered model.

Each architecture file registers its builders with :func:`register`. Builders take
``num_classes``, ``in_channels``, ``input_size`` and ``pretrained`` plus their own keyword options.
``pretrained`` is ``True`` for the architecture's own pretrained weights, or the path of a weights
file of the same layout to use in their place; a builder without pretrained weights refuses both.

Names are retired with :func:`register_model_deprecations` (after timm's): a retired name keeps
building, with a warning that names its successor, so checkpoints that record it still load; it
is no longer listed.
"""

from __future__ import annotations

import fnmatch
import inspect
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
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
#: Retired name -> the name to use instead (see :func:`register_model_deprecations`).
_DEPRECATED: dict[str, str] = {}
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


def register_model_deprecations(deprecations: Mapping[str, str]) -> None:
    """Retire model names: each maps to the registered name that replaces it.

    A retired name that still has its own builder keeps building that architecture (a checkpoint
    records its architecture's name, so one trained under the old name must still load); a name
    without one builds its successor, as timm's deprecation shims do. Either way :func:`build`
    warns with a :class:`FutureWarning` naming the successor, and :func:`list_models` leaves the
    name out unless asked.
    """
    for old, new in deprecations.items():
        if new not in _REGISTRY:
            raise ValueError(f"model {old!r} is retired in favour of unregistered {new!r}")
        if old in _DEPRECATED:
            raise ValueError(f"model {old!r} retired twice")
        _DEPRECATED[old] = new


def list_models(pattern: str = "*", include_deprecated: bool = False) -> list[str]:
    """Registered model names matching a shell-style ``pattern``, sorted; retired names only
    with ``include_deprecated``."""
    names = (
        set(_REGISTRY) | set(_DEPRECATED) if include_deprecated else _REGISTRY.keys() - _DEPRECATED
    )
    return sorted(n for n in names if fnmatch.fnmatch(n, pattern))


def deprecated_models() -> dict[str, str]:
    """Retired model names, each with the name that replaces it."""
    return dict(_DEPRECATED)


def model_info(name: str) -> ModelInfo:
    """Registry entry for ``name`` (a retired name without a builder of its own gives its
    successor's); unknown names raise :class:`ModelError` listing valid ones."""
    if name not in _REGISTRY and name in _DEPRECATED:
        name = _DEPRECATED[name]
    if name not in _REGISTRY:
        raise ModelError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return _REGISTRY[name]


def build(
    name: str,
    num_classes: int = 7,
    in_channels: int | None = None,
    input_size: int | None = None,
    pretrained: bool | str | Path = False,
    **options: Any,
) -> nn.Module:
    """Build a registered model. ``None`` options fall back to the model's own defaults.

    A retired name warns (:class:`FutureWarning`) and names its successor."""
    info = model_info(name)
    if name in _DEPRECATED:
        # stacklevel 2: the warning points at the caller that asked for the retired name.
        warnings.warn(
            f"model {name!r} is deprecated and will be removed; use {_DEPRECATED[name]!r}",
            FutureWarning,
            stacklevel=2,
        )
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
