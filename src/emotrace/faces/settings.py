"""Face-detector settings as one checked value, from the command line or code to the detector.

    >>> settings = DetectorSettings(score_threshold=0.8)      # YuNet, frames downscaled to 640
    >>> detector = settings.build()
    >>> DetectorSettings(kind="haar", score_threshold=0.8)    # ConfigError: a YuNet setting

``predict``, ``analyze``, ``live``, ``batch`` and ``serve`` all carry one of these (inside
:class:`~emotrace.video.PipelineOptions` for the video commands and the server), so a setting
means the same everywhere and is checked once, where it is made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emotrace.errors import ConfigError
from emotrace.faces.defaults import (
    DEFAULT_MAX_SIDE,
    DEFAULT_MIN_SIZE,
    DETECTOR_KINDS,
    TUNING_DEFAULTS,
    DetectorKind,
    detector_kind,
)

if TYPE_CHECKING:
    from emotrace.faces.types import FaceDetector

__all__ = [
    "DEFAULT_MAX_SIDE",
    "DEFAULT_MIN_SIZE",
    "DETECTOR_KINDS",
    "TUNING_DEFAULTS",
    "DetectorKind",
    "DetectorSettings",
    "detector_kind",
]


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class DetectorSettings:
    """Which face detector, and how it is tuned.

    ``kind``: ``"yunet"`` or ``"haar"`` (``None``: Haar for a cascade ``.xml`` ``model``, YuNet
    otherwise). ``model``: your own YuNet ``.onnx`` or Haar ``.xml`` (``None``: the bundled
    one). ``min_size``: smallest face side reported, in the pixels the detector sees (``None``:
    YuNet 10, Haar 30). ``score_threshold``/``nms_threshold`` tune YuNet, ``scale_factor``
    Haar; ``None`` takes the detector's default, and a setting of the other detector is an
    error (it would otherwise be ignored without a word). ``max_side``: frames are detected on a
    copy at most this long on their longer side (``None`` or 0: never downscaled).
    """

    kind: DetectorKind | None = None
    model: Path | None = None
    min_size: int | None = None
    score_threshold: float | None = None
    nms_threshold: float | None = None
    scale_factor: float | None = None
    max_side: int | None = DEFAULT_MAX_SIDE
    #: The kind in use, resolved from ``kind`` and ``model``.
    detector: DetectorKind = field(init=False)

    def __post_init__(self) -> None:
        if self.model is not None and not isinstance(self.model, Path):
            object.__setattr__(self, "model", Path(self.model))
        object.__setattr__(self, "detector", detector_kind(self.kind, self.model))
        if self.max_side == 0:
            object.__setattr__(self, "max_side", None)
        for owner, defaults in TUNING_DEFAULTS.items():
            for name in defaults:
                value = getattr(self, name)
                if value is not None and owner != self.detector:
                    raise ConfigError(
                        f"{_flag(name)} tunes the {owner} detector; this run uses {self.detector}"
                    )
        if self.min_size is not None and self.min_size < 0:
            raise ConfigError(f"--min-face must be 0 or more, got {self.min_size}")
        for name in ("score_threshold", "nms_threshold"):
            value = getattr(self, name)
            if value is not None and not 0.0 < value <= 1.0:
                raise ConfigError(f"{_flag(name)} must be in (0, 1], got {value}")
        if self.scale_factor is not None and not (
            self.scale_factor > 1.0 and math.isfinite(self.scale_factor)
        ):
            raise ConfigError(
                f"--scale-factor must be a finite number > 1, got {self.scale_factor}"
            )
        if self.max_side is not None and self.max_side < 64:
            raise ConfigError(
                f"--max-side: must be 0 (never downscale) or at least 64, got {self.max_side}"
            )

    def tuning(self, *, used_only: bool = False) -> dict[str, float]:
        """The thresholds with defaults filled in (``used_only``: the detector's in use only)."""
        out: dict[str, float] = {}
        for owner, defaults in TUNING_DEFAULTS.items():
            if used_only and owner != self.detector:
                continue
            for name, default in defaults.items():
                value = getattr(self, name)
                out[name] = default if value is None else value
        return out

    def build(self) -> FaceDetector:
        """A new detector with these settings (each thread that detects needs its own)."""
        from emotrace.faces.factory import make_detector

        tuning = self.tuning()
        return make_detector(
            self.detector,
            self.model,
            min_size=self.min_size,
            score_threshold=tuning["score_threshold"],
            nms_threshold=tuning["nms_threshold"],
            scale_factor=tuning["scale_factor"],
            max_side=self.max_side,
        )

    def record(self) -> dict[str, Any]:
        """What runs, for ``summary.json`` and session settings."""
        return {
            "detector": self.detector,
            "detector_tuning": self.tuning(used_only=True),
            "min_face": self.min_size,
            "max_side": self.max_side,
        }
