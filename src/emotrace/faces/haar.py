"""OpenCV's Haar cascade frontal-face detector, loaded from the cv2 package's data folder."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from emotrace.errors import ModelError
from emotrace.preprocessing import Box, to_gray

DEFAULT_CASCADE = "haarcascade_frontalface_default.xml"


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
    """Detect frontal faces; returns boxes ``(x, y, w, h)`` largest first.

    ``min_size`` is the smallest face side in pixels; ``scale_factor`` and ``min_neighbors`` are the
    cascade's speed/recall trade-offs (OpenCV's meaning).
    """

    def __init__(
        self,
        min_size: int = 30,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        cascade: str | Path | None = None,
    ) -> None:
        path = Path(cascade) if cascade is not None else cascade_path()
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise ModelError(f"{path}: not a valid Haar cascade file")
        self.min_size = min_size
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors

    def detect(self, image: np.ndarray) -> list[Box]:
        """Face boxes in ``image`` (gray or BGR uint8), largest first."""
        gray = to_gray(image)
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
        return sorted(boxes, key=lambda b: b[2] * b[3], reverse=True)


def largest(boxes: list[Box]) -> Box | None:
    """The box with the largest area, or ``None``."""
    return max(boxes, key=lambda b: b[2] * b[3]) if boxes else None
