"""The one result container that flows from detector to classifier, tracker, overlay and store."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emotrace.errors import InputError

#: Head orientation fields of a record, in degrees (see :mod:`emotrace.faces.pose`).
POSE_NAMES = ("yaw", "pitch", "roll")


@dataclass
class FaceEmotions:
    """The faces found in one image and their emotion probabilities.

    ``boxes``: ``(N, 4)`` int ``x, y, w, h`` in image pixels. ``probabilities``: ``(N, K)`` float32,
    calibrated, columns in ``classes`` order. ``scores``: detector confidence per face (1.0 when
    the detector gives none). ``track_ids``: stable ids from a tracker, or -1 when untracked.
    ``held_label_ids``: the smoother's shown class per face. ``landmarks``: ``(N, 5, 2)`` float32
    eyes, nose tip and mouth corners in image pixels (see :data:`emotrace.faces.LANDMARK_NAMES`),
    NaN rows for faces whose detector gives none (Haar, a user's boxes). ``crowd_model``: the
    name of the cheaper model that classified these faces when a live view's crowd switch took
    over (more faces than its threshold; see :class:`~emotrace.runtime.recognizer.CrowdSwitch`),
    else empty.
    """

    boxes: np.ndarray
    probabilities: np.ndarray
    classes: tuple[str, ...]
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    track_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    held_label_ids: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    crowd_model: str = ""

    def __post_init__(self) -> None:
        n, k = len(self.boxes), len(self.classes)
        self.boxes = np.asarray(self.boxes, dtype=np.int64).reshape(n, 4)
        self.probabilities = np.asarray(self.probabilities, dtype=np.float32).reshape(n, k)
        if self.landmarks is None:
            self.landmarks = np.full((n, 5, 2), np.nan, np.float32)
        else:
            self.landmarks = np.asarray(self.landmarks, dtype=np.float32).reshape(n, 5, 2)
        if len(self.scores) == 0:
            self.scores = np.ones(n, np.float32)
        if len(self.track_ids) == 0:
            self.track_ids = np.full(n, -1, np.int64)
        if not len(self.scores) == len(self.track_ids) == n:
            raise InputError(
                f"FaceEmotions: {n} boxes but {len(self.scores)} scores, "
                f"{len(self.track_ids)} track ids"
            )
        if self.held_label_ids is not None:
            self.held_label_ids = np.asarray(self.held_label_ids, dtype=np.int64).reshape(-1)
            if len(self.held_label_ids) != n:
                raise InputError(f"FaceEmotions: {n} boxes but {len(self.held_label_ids)} labels")
            if n and not (0 <= self.held_label_ids.min() <= self.held_label_ids.max() < k):
                raise InputError(f"FaceEmotions: held label ids outside 0..{k - 1}")

    @classmethod
    def empty(cls, classes: tuple[str, ...]) -> FaceEmotions:
        """No faces."""
        return cls(np.zeros((0, 4), np.int64), np.zeros((0, len(classes)), np.float32), classes)

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def label_ids(self) -> np.ndarray:
        """Class index per face: the held class when smoothed, else the most probable one."""
        if self.held_label_ids is not None:
            return self.held_label_ids
        return self.probabilities.argmax(axis=1) if len(self) else np.zeros(0, np.int64)

    @property
    def labels(self) -> list[str]:
        """Most probable class name per face."""
        return [self.classes[i] for i in self.label_ids]

    @property
    def confidences(self) -> np.ndarray:
        """Probability of each face's label (see :attr:`label_ids`)."""
        if not len(self):
            return np.zeros(0, np.float32)
        return self.probabilities[np.arange(len(self)), self.label_ids]

    def largest(self) -> int | None:
        """Index of the face with the largest box, or ``None``."""
        if not len(self):
            return None
        return int((self.boxes[:, 2] * self.boxes[:, 3]).argmax())

    def select(self, index: np.ndarray | list[int]) -> FaceEmotions:
        """A subset of faces (boolean mask or indices)."""
        return FaceEmotions(
            self.boxes[index],
            self.probabilities[index],
            self.classes,
            self.scores[index],
            self.track_ids[index],
            None if self.held_label_ids is None else self.held_label_ids[index],
            self.points[index],
            self.crowd_model,
        )

    @property
    def points(self) -> np.ndarray:
        """:attr:`landmarks` as a non-optional ``(N, 5, 2)`` array (NaN where unknown)."""
        assert self.landmarks is not None  # set by __post_init__
        return self.landmarks

    def replace(self, **changes: Any) -> FaceEmotions:
        """A copy with some fields changed (the others shared, as arrays are never mutated)."""
        return dataclasses.replace(self, **changes)

    def head_poses(self) -> np.ndarray:
        """``(N, 3)`` approximate yaw, pitch, roll in degrees from the landmarks (NaN without
        them); see :mod:`emotrace.faces.pose` for the conventions and how approximate."""
        from emotrace.faces.pose import head_poses

        return head_poses(self.points)

    def records(self) -> Iterator[dict[str, Any]]:
        """One plain dict per face: box, detector score, landmarks (``[[x, y], ...]`` or
        ``None``), head pose (``yaw``, ``pitch``, ``roll`` in degrees, or ``None``), label,
        confidence, probabilities, track id."""
        poses = self.head_poses()
        for i in range(len(self)):
            x, y, w, h = (int(v) for v in self.boxes[i])
            points = self.points[i]
            yield {
                "box": {"x": x, "y": y, "w": w, "h": h},
                "score": round(float(self.scores[i]), 4),
                "landmarks": None
                if np.isnan(points).any()
                else [[round(float(px), 1), round(float(py), 1)] for px, py in points],
                **{
                    name: None if np.isnan(value) else round(float(value), 1)
                    for name, value in zip(POSE_NAMES, poses[i], strict=True)
                },
                "label": self.classes[int(self.label_ids[i])],
                "confidence": round(float(self.confidences[i]), 4),
                "probabilities": {
                    c: round(float(p), 4)
                    for c, p in zip(self.classes, self.probabilities[i], strict=True)
                },
                "track_id": int(self.track_ids[i]),
            }
