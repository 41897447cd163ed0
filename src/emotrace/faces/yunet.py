"""OpenCV's YuNet face detector (``cv2.FaceDetectorYN``) behind the same interface as Haar.

YuNet is a small CNN (opencv_zoo ``face_detection_yunet_2023mar.onnx``, ~230 kB) that finds
profile, tilted and small faces the Haar cascade misses. Its weights are not bundled: the user
passes the ONNX file. OpenCV's ``detect`` returns one row per face: ``x, y, w, h``, five landmark
points (eyes, nose tip, mouth corners) as ten numbers, then the score.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from emotrace.errors import ModelError
from emotrace.preprocessing import Box, to_bgr

#: Where users find the weights (named in errors so the fix is one download away).
YUNET_URL = "https://github.com/opencv/opencv_zoo/tree/main/models/face_detection_yunet"


def _reason(exc: BaseException) -> str:
    """The useful part of a ``cv2.error`` ("OpenCV(4.x) file.cpp:398: error: (-215...) ...")."""
    text = " ".join(str(exc).split())
    text = text.split(" error: ", 1)[-1].split(" in function ", 1)[0]
    return text[:120] or type(exc).__name__


class YuNetFaceDetector:
    """Detect faces with a YuNet ONNX file; returns boxes ``(x, y, w, h)`` largest first.

    ``score_threshold`` drops weak detections, ``nms_threshold`` merges overlapping ones (OpenCV's
    meaning), ``min_size`` drops faces smaller than this many pixels. Boxes are clipped to the
    image, so faces at the border never produce negative coordinates.
    """

    def __init__(
        self,
        model: str | Path,
        score_threshold: float = 0.8,
        nms_threshold: float = 0.3,
        top_k: int = 50,
        min_size: int = 0,
    ) -> None:
        path = Path(model)
        if not path.is_file():
            raise ModelError(f"{path}: no such YuNet model file (download it from {YUNET_URL})")
        if path.stat().st_size == 0:
            raise ModelError(f"{path}: empty file, not a YuNet ONNX model")
        self.min_size = min_size
        self._size = (160, 120)
        try:
            self._net = cv2.FaceDetectorYN.create(
                str(path), "", self._size, score_threshold, nms_threshold, top_k
            )
            # A graph that loads but is not YuNet (another ONNX model) only fails at the first
            # forward pass; run one now so the error comes at start-up, not mid-video.
            self._net.detect(np.zeros((self._size[1], self._size[0], 3), np.uint8))
        except cv2.error as exc:
            raise ModelError(f"{path}: not a loadable YuNet ONNX model ({_reason(exc)})") from None

    def detect(self, image: np.ndarray) -> list[Box]:
        """Face boxes in ``image`` (gray or BGR uint8), largest first."""
        bgr = to_bgr(image)
        height, width = bgr.shape[:2]
        if (width, height) != self._size:
            # The network's input size must match the frame; resetting it is cheap.
            self._size = (width, height)
            self._net.setInputSize(self._size)
        _, found = self._net.detect(bgr)
        if found is None:
            return []
        boxes = []
        for x, y, w, h in np.asarray(found, dtype=np.float64)[:, :4].tolist():
            x0, y0 = max(0, round(x)), max(0, round(y))
            x1, y1 = min(width, round(x + w)), min(height, round(y + h))
            if x1 - x0 >= max(1, self.min_size) and y1 - y0 >= max(1, self.min_size):
                boxes.append((x0, y0, x1 - x0, y1 - y0))
        return sorted(boxes, key=lambda b: b[2] * b[3], reverse=True)
