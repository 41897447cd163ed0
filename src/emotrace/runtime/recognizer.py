"""Detect faces in a whole image and classify each: the path behind ``predict`` and the video."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from emotrace.preprocessing import Box
from emotrace.results import FaceEmotions
from emotrace.runtime.classifier import ColorOrder, EmotionClassifier


class FaceDetector(Protocol):
    """Anything that returns face boxes ``(x, y, w, h)`` for a gray or BGR image."""

    def detect(self, image: np.ndarray) -> list[Box]:
        """Face boxes, largest first."""
        ...


class EmotionRecognizer:
    """A face detector plus an :class:`EmotionClassifier`.

    >>> recognizer = EmotionRecognizer()               # Haar cascade + bundled model
    >>> faces = recognizer.recognize(cv2.imread("photo.jpg"))
    >>> faces.labels, faces.confidences
    """

    def __init__(
        self,
        classifier: EmotionClassifier | None = None,
        detector: FaceDetector | None = None,
        model: str | Path = "default",
        threads: int | None = 1,
    ) -> None:
        if detector is None:
            from emotrace.faces import HaarFaceDetector

            detector = HaarFaceDetector()
        self.classifier = classifier or EmotionClassifier(model, threads=threads)
        self.detector = detector

    def classify_boxes(
        self, image: np.ndarray, boxes: list[Box], color: ColorOrder = "bgr"
    ) -> FaceEmotions:
        """Classify given face boxes of ``image`` (e.g. from a tracker)."""
        classes = self.classifier.classes
        if not boxes:
            return FaceEmotions.empty(classes)
        crops = self.classifier.crop_faces(image, boxes)
        probs = self.classifier.predict(crops, color=color)
        return FaceEmotions(np.array(boxes), probs, classes)

    def recognize(self, image: np.ndarray, color: ColorOrder = "bgr") -> FaceEmotions:
        """Detect every face in ``image`` and classify it."""
        return self.classify_boxes(image, self.detector.detect(image), color)
