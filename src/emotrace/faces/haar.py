"""OpenCV's Haar cascade frontal-face detector, loaded from the cv2 package's data folder."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from emotrace.errors import ConfigError, ModelError
from emotrace.faces.defaults import TUNING_DEFAULTS
from emotrace.faces.types import Detection
from emotrace.preprocessing import check_image, to_gray

DEFAULT_CASCADE = "haarcascade_frontalface_default.xml"
#: The image-pyramid step: each level is this much smaller (smaller steps: more recall, slower).
DEFAULT_SCALE_FACTOR = TUNING_DEFAULTS["haar"]["scale_factor"]


def cascade_path(name: str = DEFAULT_CASCADE) -> Path:
    """Path of a cascade file shipped inside opencv-python(-headless)."""
    folder = Path(cv2.data.haarcascades)  # type: ignore[attr-defined]
    path = folder / name
    if not path.is_file():
        raise ModelError(
            f"Haar cascade {name} not found in OpenCV's data folder ({folder}); "
            "install opencv-python-headless>=4.10,<5"
        )
    return path


class HaarFaceDetector:
    """Detect frontal faces; returns :class:`Detection` s (boxes only) largest first.

    ``min_size`` is the smallest face side in pixels; ``scale_factor`` and ``min_neighbors`` are the
    cascade's speed/recall trade-offs (OpenCV's meaning).
    """

    def __init__(
        self,
        min_size: int = 30,
        scale_factor: float = DEFAULT_SCALE_FACTOR,
        min_neighbors: int = 5,
        cascade: str | Path | None = None,
    ) -> None:
        # OpenCV would assert on these inside detectMultiScale, at the first frame.
        if not (scale_factor > 1.0 and math.isfinite(scale_factor)):
            raise ConfigError(f"Haar scale factor must be a finite number > 1, got {scale_factor}")
        if min_neighbors < 0 or min_size < 0:
            raise ConfigError("Haar min_neighbors and min_size must not be negative")
        path = Path(cascade) if cascade is not None else cascade_path()
        if not path.is_file():
            raise ModelError(f"{path}: no such Haar cascade file")
        try:
            self._cascade = cv2.CascadeClassifier(str(path))
        except (cv2.error, SystemError):  # OpenCV's Python binding wraps parse errors in both
            raise ModelError(f"{path}: not a valid Haar cascade file") from None
        if self._cascade.empty():
            raise ModelError(f"{path}: not a valid Haar cascade file")
        self.min_size = min_size
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in ``image`` (gray, BGR or BGRA uint8), largest first; no scores or landmarks."""
        gray = to_gray(check_image(image))
        if min(gray.shape[:2]) < self.min_size:
            return []
        found = self._cascade.detectMultiScale(
            gray,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size),
        )
        boxes = [
            (int(x), int(y), int(w), int(h)) for x, y, w, h in np.asarray(found).reshape(-1, 4)
        ]
        boxes.sort(key=lambda b: b[2] * b[3], reverse=True)
        return [Detection(box, detector="haar") for box in boxes]
