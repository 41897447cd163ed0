"""What a face detector returns, and the protocol every detector follows.

One small typed result per face: its box, the detector's score, and (for YuNet) five landmarks.
Everything downstream (alignment, tracking, records) reads these fields, never a detector's raw
output rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from emotrace.preprocessing import Box

#: Landmark order (YuNet's): the subject's right eye, left eye, nose tip, right and left mouth
#: corners. The subject's right eye is on the image's left in a frontal, unmirrored view.
LANDMARK_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_right", "mouth_left")


@dataclass(frozen=True)
class Detection:
    """One detected face.

    ``box``: ``(x, y, w, h)`` integer pixels, clipped to the image. ``score``: detector confidence
    in ``[0, 1]`` (1.0 for detectors without one, such as Haar). ``landmarks``: ``(5, 2)`` float
    pixel coordinates in :data:`LANDMARK_NAMES` order, or ``None`` for detectors without them.
    Landmarks are not clipped: a face cut by the frame border keeps its true eye positions.
    ``detector``: which detector found it (``"yunet"``, ``"haar"``; ``""`` for boxes from
    elsewhere), so a box without landmarks is framed with that detector's calibration.
    """

    box: Box
    score: float = 1.0
    landmarks: np.ndarray | None = None
    detector: str = ""

    def __post_init__(self) -> None:
        if self.landmarks is not None:
            points = np.asarray(self.landmarks, dtype=np.float64).reshape(5, 2)
            object.__setattr__(self, "landmarks", points)

    @property
    def area(self) -> int:
        """Box area in pixels."""
        return self.box[2] * self.box[3]

    def scaled(self, factor: float, width: int, height: int) -> Detection:
        """This detection in an image ``1 / factor`` the size of the one it was found in,
        e.g. ``factor=0.5`` for a detection on a half-size copy; the box is clipped to
        ``width x height`` (the target image)."""
        x, y, w, h = self.box
        x0, y0 = min(width, max(0, round(x / factor))), min(height, max(0, round(y / factor)))
        x1 = min(width, max(x0, round((x + w) / factor)))
        y1 = min(height, max(y0, round((y + h) / factor)))
        landmarks = None if self.landmarks is None else self.landmarks / factor
        return Detection((x0, y0, x1 - x0, y1 - y0), self.score, landmarks, self.detector)


class FaceDetector(Protocol):
    """Anything that finds faces in a gray or BGR uint8 image."""

    def detect(self, image: np.ndarray) -> list[Detection]:
        """The faces in ``image``, largest first."""
        ...


def largest(detections: list[Detection]) -> Detection | None:
    """The detection with the largest box, or ``None``."""
    return max(detections, key=lambda d: d.area) if detections else None


def boxes_of(detections: list[Detection]) -> list[Box]:
    """The boxes of ``detections``, in order."""
    return [d.box for d in detections]
