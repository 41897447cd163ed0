"""The settings of a video analysis, defined once: what runs, how faces are tracked and smoothed.

    >>> options = PipelineOptions(detect_every=1, smooth_window=0.8)
    >>> options = options.replace(detector=DetectorSettings(kind="haar"))

``analyze``, ``live``, ``batch`` and ``serve`` translate their options into one of these, and
:func:`emotrace.video.analyze_source` (files, cameras, streams, batch workers) and the server's
live sessions run from it, so a setting has one name, one default and one check everywhere.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emotrace.errors import ConfigError
from emotrace.faces.settings import DetectorSettings
from emotrace.video.defaults import (
    DEFAULT_CROWD_FACES,
    DEFAULT_CROWD_MODEL,
    DEFAULT_DETECT_EVERY,
    DEFAULT_HYSTERESIS,
    DEFAULT_MAX_AGE_S,
    DEFAULT_SMOOTH_WINDOW_S,
    SMOOTH_METHODS,
)

__all__ = [
    "DEFAULT_DETECT_EVERY",
    "DEFAULT_HYSTERESIS",
    "DEFAULT_MAX_AGE_S",
    "DEFAULT_SMOOTH_WINDOW_S",
    "SMOOTH_METHODS",
    "CrowdOptions",
    "PipelineOptions",
]

if TYPE_CHECKING:
    from emotrace.runtime.classifier import EmotionClassifier
    from emotrace.runtime.recognizer import CrowdSwitch, EmotionRecognizer
    from emotrace.video.smoothing import EmotionSmoother, SmoothingMethod
    from emotrace.video.tracking import FaceTracker


@dataclass(frozen=True)
class PipelineOptions:
    """Every setting of a video analysis, checked when made (a :class:`ConfigError` names the
    option as the command line spells it).

    ``model``: a bundled model (``default``, ``accurate``, ``fast``; see
    :data:`emotrace.runtime.loading.BUNDLED_MODELS`), an ``.onnx`` file or a run folder;
    ``threads``: onnxruntime and OpenCV threads; ``detector``: :class:`DetectorSettings`;
    ``detect_every``: detect on every N-th frame, track in between; ``max_age``: seconds
    before an unseen face gets a new id; ``smooth``: smooth each track's probabilities over
    ``smooth_window`` seconds with ``smooth_method`` (``ema`` or ``window``) and
    ``hysteresis``; ``every``: process one frame in N of a file; ``max_frames``: stop after N
    processed frames.
    """

    model: str | Path = "default"
    threads: int = 1
    detector: DetectorSettings = field(default_factory=DetectorSettings)
    detect_every: int = DEFAULT_DETECT_EVERY
    max_age: float = DEFAULT_MAX_AGE_S
    smooth: bool = True
    smooth_window: float = DEFAULT_SMOOTH_WINDOW_S
    smooth_method: SmoothingMethod = "ema"
    hysteresis: float = DEFAULT_HYSTERESIS
    every: int = 1
    max_frames: int | None = None

    def __post_init__(self) -> None:
        for name in ("threads", "detect_every", "every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{_flag(name)} must be a whole number >= 1, got {value!r}")
        if self.max_frames is not None and (
            isinstance(self.max_frames, bool)
            or not isinstance(self.max_frames, int)
            or self.max_frames < 1
        ):
            raise ConfigError(f"--max-frames must be a whole number >= 1, got {self.max_frames!r}")
        if not _finite(self.max_age) or self.max_age < 0:
            raise ConfigError(f"--max-age must be a finite number >= 0, got {self.max_age!r}")
        if not _finite(self.smooth_window) or self.smooth_window <= 0:
            raise ConfigError(
                f"--smooth-window must be a finite number > 0, got {self.smooth_window!r}"
            )
        if self.smooth_method not in SMOOTH_METHODS:
            raise ConfigError(f"--smooth-method must be ema or window, got {self.smooth_method!r}")
        if not _finite(self.hysteresis) or not 0 <= self.hysteresis < 1:
            raise ConfigError(f"--hysteresis must be in [0, 1), got {self.hysteresis!r}")
        if not isinstance(self.detector, DetectorSettings):
            raise ConfigError("detector must be a DetectorSettings")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PipelineOptions:
        """From keyword values, naming any unknown one (a typo is an error, not a default)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"unknown pipeline option(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        return cls(**values)

    def replace(self, **changes: Any) -> PipelineOptions:
        """A copy with ``changes`` (checked like a new one)."""
        return PipelineOptions.from_dict({**self._fields(), **changes})

    def _fields(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    # -- what the options build ---------------------------------------------------------------
    def recognizer(self, crowd: CrowdOptions | None = None) -> EmotionRecognizer:
        """The model and detector these options name, loaded (one per worker: it holds a
        detector, which is not thread-safe); ``crowd``: a live view's switch to a cheaper model
        on crowded frames."""
        import cv2

        from emotrace.runtime.recognizer import EmotionRecognizer

        cv2.setNumThreads(self.threads)
        return EmotionRecognizer(
            model=self.model,
            detector=self.detector.build(),
            threads=self.threads,
            crowd=None if crowd is None else crowd.switch(self.model, self.threads),
        )

    def tracker(self) -> FaceTracker:
        """A fresh tracker (one per video or session: ids start at 1)."""
        from emotrace.video.tracking import FaceTracker

        return FaceTracker(max_age_s=self.max_age)

    def smoother(self) -> EmotionSmoother | None:
        """A fresh smoother, or ``None`` with ``smooth=False``."""
        from emotrace.video.smoothing import EmotionSmoother

        if not self.smooth:
            return None
        return EmotionSmoother(self.smooth_window, self.smooth_method, self.hysteresis)

    def record(self, classifier: EmotionClassifier) -> dict[str, Any]:
        """The settings as ``summary.json`` and session records store them, with ``classifier``
        (the model these settings run with) described by its spec."""
        smoothing = None
        if self.smooth:
            smoothing = {
                "method": self.smooth_method,
                "window_s": self.smooth_window,
                "hysteresis": self.hysteresis,
            }
        return {
            "model": classifier.spec.summary(),
            **self.detector.record(),
            "detect_every": self.detect_every,
            "every": self.every,
            "max_age_s": self.max_age,
            "smoothing": smoothing,
        }


@dataclass(frozen=True)
class CrowdOptions:
    """A live view's switch to a cheaper model for crowded frames: a frame with more than
    ``above`` faces is classified by ``model`` (``above=0``: never). ``live`` and ``serve``'s
    live sessions use it; recorded analyses (``analyze``, ``batch``, file sessions) keep one model
    throughout, so they take no such option."""

    model: str | Path = DEFAULT_CROWD_MODEL
    above: int = DEFAULT_CROWD_FACES

    def __post_init__(self) -> None:
        if isinstance(self.above, bool) or not isinstance(self.above, int) or self.above < 0:
            raise ConfigError(f"--crowd-faces must be a whole number >= 0, got {self.above!r}")

    def switch(self, model: str | Path, threads: int | None = 1) -> CrowdSwitch | None:
        """The loaded switch for a live view running ``model``; ``None`` when off or when
        ``model`` is the crowd model itself."""
        if self.above == 0 or str(self.model) == str(model):
            return None
        from emotrace.runtime.classifier import EmotionClassifier
        from emotrace.runtime.loading import BUNDLED_MODELS
        from emotrace.runtime.recognizer import CrowdSwitch

        name = str(self.model) if str(self.model) in BUNDLED_MODELS else Path(self.model).stem
        return CrowdSwitch(EmotionClassifier(self.model, threads=threads), self.above, name)

    def record(self, switch: CrowdSwitch | None) -> dict[str, Any]:
        """What session settings store about it (``crowd: null`` when no switch runs)."""
        if switch is None:
            return {"crowd": None}
        return {
            "crowd": {
                "model": switch.classifier.spec.summary(),
                "name": switch.name,
                "above_faces": switch.above,
            }
        }


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")
