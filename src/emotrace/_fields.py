"""Checking a settings dataclass's values against its annotations, for one-line config errors.

YAML and ``key=value`` overrides hand over whatever was typed: ``size: abc``, ``augment: 3`` or
``lr: 3e-4`` (which YAML 1.1 reads as text). Settings classes call :func:`check_fields` first
so a wrong type fails naming its key instead of deep inside training or preprocessing.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import fields
from typing import Any

from emotrace.errors import ConfigError


def _number(value: Any) -> Any:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return float(value)
    return value


def check_fields(instance: Any, prefix: str = "") -> None:
    """Check ``instance``'s fields against their annotations; numeric text and ints become floats.

    Checks fields annotated ``int``, ``float``, ``bool``, their ``| None`` forms and
    ``dict[...]``; other annotations are left to the class. Raises :class:`ConfigError` naming
    ``prefix + field`` for a value of the wrong kind. Frozen dataclasses are updated too.
    """
    for f in fields(instance):
        kind = str(f.type).replace(" ", "")
        value = getattr(instance, f.name)
        optional = kind.endswith("|None")
        kind = kind.removesuffix("|None")
        name = prefix + f.name
        if optional and value is None:
            continue
        if kind == "float":
            number = _number(value)
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise ConfigError(f"{name} must be a number, got {value!r}")
            if not math.isfinite(number):
                raise ConfigError(f"{name} must be a finite number, got {value!r}")
            if number is not value or isinstance(value, int):
                # object.__setattr__ also reaches frozen dataclasses (Preprocess, Framing).
                object.__setattr__(instance, f.name, float(number))
        elif kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f"{name} must be a whole number, got {value!r}")
        elif kind == "bool" and not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {value!r}")
        elif kind.startswith("dict[") and not isinstance(value, dict):
            raise ConfigError(f"{name} must be a mapping of key: value, got {value!r}")
