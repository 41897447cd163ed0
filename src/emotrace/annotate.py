"""Drawing boxes, labels, probability bars and the video overlay (OpenCV), for predict and video."""

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
        points = faces.points[i]
        if np.isfinite(points).all():
            radius = max(2, round(scale * 3))
            for px, py in points:
                cv2.circle(canvas, (round(px), round(py)), radius, color, -1, cv2.LINE_AA)
    return canvas


def draw_probability_bars(
    image: np.ndarray,
    classes: tuple[str, ...],
    probabilities: np.ndarray,
    origin: tuple[int, int] = (8, 8),
    scale: float = 1.0,
) -> None:
    """A small bar chart of all class probabilities, drawn in place (for the largest face)."""
    x0, y0 = origin
    bar_h, width, label_w = round(14 * scale), round(120 * scale), round(70 * scale)
    gap, font = max(2, round(3 * scale)), 0.4 * scale
    for i, (name, p) in enumerate(zip(classes, probabilities, strict=True)):
        y = y0 + i * (bar_h + gap)
        cv2.rectangle(image, (x0, y), (x0 + label_w + width, y + bar_h), (30, 30, 30), -1)
        cv2.rectangle(
            image,
            (x0 + label_w, y + 2),
            (x0 + label_w + int(width * float(p)), y + bar_h - 2),
            color_for(name),
            -1,
        )
        cv2.putText(
            image,
            name[:8],
            (x0 + 3, y + bar_h - 3),
            _FONT,
            font,
            (255, 255, 255),
            max(1, round(scale)),
            cv2.LINE_AA,
        )


def draw_overlay(
    image: np.ndarray, faces: FaceEmotions, fps: float | None = None, bars: bool = True
) -> np.ndarray:
    """The video overlay on a BGR copy of ``image``: every face's box, track id, label and
    confidence; a bar chart of the largest face's probabilities; the FPS.

    The chart goes in the top corner away from the largest face (the FPS in the other one), so
    it does not hide the face it describes; sizes follow the frame, from 640x480 to 4K. When a
    live view's crowd switch classified the frame, the FPS line names the model that did.
    """
    canvas = draw_faces(image, faces)
    height, width = canvas.shape[:2]
    scale = max(1.0, min(height, width) / 480)
    largest = faces.largest()
    chart_left = True
    if largest is not None:
        x, _, w, _ = (int(v) for v in faces.boxes[largest])
        chart_left = x + w / 2 >= width / 2
    if bars and largest is not None:
        chart_w = round(190 * scale) + 8
        origin = (8, 8) if chart_left else (max(8, width - chart_w), 8)
        draw_probability_bars(
            canvas, faces.classes, faces.probabilities[largest], origin, scale=scale
        )
    if fps is not None:
        text = f"{fps:.1f} FPS"
        if faces.crowd_model:
            text += f" - {len(faces)} faces: {faces.crowd_model} model"
        size, thickness = 0.5 * scale, max(1, round(scale))
        (w, h), _ = cv2.getTextSize(text, _FONT, size, thickness)
        margin = round(10 * scale)
        x = width - w - margin if chart_left else margin
        y = h + margin
        cv2.rectangle(canvas, (x - 4, y - h - 4), (x + w + 4, y + 6), (30, 30, 30), -1)
        cv2.putText(canvas, text, (x, y), _FONT, size, (255, 255, 255), thickness, cv2.LINE_AA)
    return canvas
