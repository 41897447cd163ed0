"""Drawing boxes, labels and probability bars on images (OpenCV), shared by predict and video."""

from __future__ import annotations

import cv2
import numpy as np

from emotrace.results import FaceEmotions

#: BGR colour per emotion: warm for negative high-arousal, cool for low arousal, green for happy.
EMOTION_COLORS: dict[str, tuple[int, int, int]] = {
    "angry": (40, 40, 220),
    "disgust": (40, 140, 100),
    "fear": (160, 60, 160),
    "happy": (60, 190, 60),
    "sad": (200, 120, 40),
    "surprise": (0, 200, 230),
    "neutral": (170, 170, 170),
    "contempt": (120, 80, 200),
}
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def color_for(label: str) -> tuple[int, int, int]:
    """The BGR colour of an emotion (grey for unknown names)."""
    return EMOTION_COLORS.get(label, (200, 200, 200))


def _text(
    image: np.ndarray, text: str, origin: tuple[int, int], scale: float, color: tuple[int, int, int]
) -> None:
    thickness = max(1, round(scale * 2))
    (w, h), base = cv2.getTextSize(text, _FONT, scale, thickness)
    x, y = origin
    y = max(h + base, y)
    cv2.rectangle(image, (x, y - h - base), (x + w + 4, y + base // 2), color, -1)
    cv2.putText(
        image, text, (x + 2, y - base // 2), _FONT, scale, (255, 255, 255), thickness, cv2.LINE_AA
    )


def draw_faces(
    image: np.ndarray, faces: FaceEmotions, labels: list[str] | None = None, show_ids: bool = True
) -> np.ndarray:
    """Draw each face's box and ``label NN%`` (and track id) onto a BGR copy of ``image``."""
    canvas = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    scale = max(0.45, min(canvas.shape[:2]) / 900)
    shown = labels if labels is not None else faces.labels
    for i in range(len(faces)):
        x, y, w, h = (int(v) for v in faces.boxes[i])
        label = shown[i]
        color = color_for(label)
        cv2.rectangle(canvas, (x, y), (x + w, y + h), color, max(2, round(scale * 3)))
        confidence = (
            float(faces.probabilities[i][faces.classes.index(label)])
            if label in faces.classes
            else 0.0
        )
        track = int(faces.track_ids[i])
        prefix = f"#{track} " if show_ids and track >= 0 else ""
        _text(canvas, f"{prefix}{label} {confidence:.0%}", (x, y - 4), scale, color)
    return canvas


def draw_probability_bars(
    image: np.ndarray,
    classes: tuple[str, ...],
    probabilities: np.ndarray,
    origin: tuple[int, int] = (8, 8),
) -> None:
    """A small bar chart of all class probabilities, drawn in place (for the largest face)."""
    x0, y0 = origin
    bar_h, width = 14, 120
    for i, (name, p) in enumerate(zip(classes, probabilities, strict=True)):
        y = y0 + i * (bar_h + 3)
        cv2.rectangle(image, (x0, y), (x0 + 70 + width, y + bar_h), (30, 30, 30), -1)
        cv2.rectangle(
            image,
            (x0 + 70, y + 2),
            (x0 + 70 + int(width * float(p)), y + bar_h - 2),
            color_for(name),
            -1,
        )
        cv2.putText(
            image, name[:8], (x0 + 3, y + bar_h - 3), _FONT, 0.4, (255, 255, 255), 1, cv2.LINE_AA
        )
