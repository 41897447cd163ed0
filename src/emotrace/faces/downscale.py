"""Detect faces on a smaller copy of large frames, then scale the boxes back.

A 4K frame has 27 times the pixels of 640x480; the Haar cascade's cost grows with them, while
faces in such frames are large anyway. Downscaling the detector's input keeps detection time flat.
"""

from __future__ import annotations

import cv2
import numpy as np

from emotrace.errors import ConfigError
from emotrace.faces.types import Detection, FaceDetector
from emotrace.preprocessing import check_image


class DownscaledDetector:
    """Wrap a face detector so it sees frames at most ``max_side`` pixels on their longer side.

    Boxes come back in the original frame's pixels. Faces smaller than the wrapped detector's
    minimum size *after* downscaling are missed, so with ``max_side=640`` a 4K frame's smallest
    detectable face is six times the detector's ``min_size``.
    """

    def __init__(self, detector: FaceDetector, max_side: int = 640) -> None:
        if max_side < 64:
            raise ConfigError(f"max_side must be at least 64 pixels, got {max_side}")
        self.detector = detector
        self.max_side = max_side

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in ``image`` (boxes and landmarks in original pixels), largest first."""
        height, width = check_image(image).shape[:2]
        scale = self.max_side / max(height, width)
        if scale >= 1.0:
            return list(self.detector.detect(image))
        small = cv2.resize(
            image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA
        )
        return [d.scaled(scale, width, height) for d in self.detector.detect(small)]
