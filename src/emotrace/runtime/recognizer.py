"""Detect faces in a whole image and classify each: the path behind ``predict`` and the video."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emotrace.errors import ConfigError
from emotrace.faces.types import Detection, FaceDetector
from emotrace.preprocessing import Box, check_image
from emotrace.results import FaceEmotions
from emotrace.runtime.classifier import ColorOrder, EmotionClassifier


@dataclass(frozen=True)
class CrowdSwitch:
    """Classify the faces of a frame that holds more than ``above`` faces with ``classifier``
    (the bundled ``fast`` model, say), so that a live view of a group keeps its frame rate.

    The rule is per frame, with no memory: a frame's faces all come from one model, and the
    result names it (:attr:`FaceEmotions.crowd_model`) so the view can say so.
    """

    classifier: EmotionClassifier
    above: int
    name: str = "fast"

    def __post_init__(self) -> None:
        if isinstance(self.above, bool) or not isinstance(self.above, int) or self.above < 1:
            raise ConfigError(f"the crowd threshold must be a whole number >= 1, got {self.above}")


class EmotionRecognizer:
    """A face detector plus an :class:`EmotionClassifier`.

    >>> recognizer = EmotionRecognizer()               # bundled YuNet + bundled model
    >>> faces = recognizer.recognize(cv2.imread("photo.jpg"))
    >>> faces.labels, faces.confidences, faces.landmarks

    ``detector``: any :class:`~emotrace.faces.FaceDetector` (default: the bundled YuNet on frames
    downscaled to 640 px, see :func:`~emotrace.faces.make_detector`). ``crowd``: classify crowded
    frames with a cheaper model (:class:`CrowdSwitch`; live views use one, recorded analyses do
    not).
    """

    def __init__(
        self,
        classifier: EmotionClassifier | None = None,
        detector: FaceDetector | None = None,
        model: str | Path = "default",
        threads: int | None = 1,
        crowd: CrowdSwitch | None = None,
    ) -> None:
        if detector is None:
            from emotrace.faces.factory import make_detector

            detector = make_detector()
        self.classifier = classifier or EmotionClassifier(model, threads=threads)
        self.detector = detector
        if crowd is not None and crowd.classifier.classes != self.classifier.classes:
            raise ConfigError(
                f"the crowd model {crowd.name} has classes {list(crowd.classifier.classes)}, "
                f"not the model's {list(self.classifier.classes)}"
            )
        self.crowd = crowd

    def classify_faces(
        self,
        image: np.ndarray,
        faces: Sequence[Detection | Box],
        color: ColorOrder = "bgr",
    ) -> FaceEmotions:
        """Classify given faces of ``image``: detections (from a detector or a tracker), or plain
        boxes ``(x, y, w, h)``, which are framed like YuNet's boxes."""
        classes = self.classifier.classes
        if not faces:
            return FaceEmotions.empty(classes)
        detections = [f if isinstance(f, Detection) else Detection(f) for f in faces]
        crowded = self.crowd is not None and len(detections) > self.crowd.above
        classifier = self.crowd.classifier if crowded and self.crowd else self.classifier
        crops = classifier.crop_faces(image, detections)
        probs = classifier.predict(crops, color=color)
        nan = np.full((5, 2), np.nan)
        return FaceEmotions(
            np.array([d.box for d in detections]),
            probs,
            classes,
            scores=np.array([d.score for d in detections], np.float32),
            landmarks=np.stack([nan if d.landmarks is None else d.landmarks for d in detections]),
            crowd_model=self.crowd.name if crowded and self.crowd else "",
        )

    def classify_boxes(
        self, image: np.ndarray, boxes: Sequence[Box], color: ColorOrder = "bgr"
    ) -> FaceEmotions:
        """Classify given face boxes of ``image`` (see :meth:`classify_faces`)."""
        return self.classify_faces(image, list(boxes), color)

    def recognize(self, image: np.ndarray, color: ColorOrder = "bgr") -> FaceEmotions:
        """Detect every face in ``image`` (uint8 gray, BGR or BGRA) and classify it."""
        check_image(image)  # before any detector, the user's own included
        return self.classify_faces(image, self.detector.detect(image), color)
