"""Stable face identities across frames: IoU association with a centroid fallback.

Faces in a consultation or a webcam feed move slowly and rarely cross, so a greedy matcher is enough
(no Hungarian solver, no appearance model): each detection goes to the track whose predicted box
overlaps it most; when nothing overlaps (a fast move, or detection every N frames) the nearest track
of similar size within ``max_distance`` face sizes is taken instead. A track survives missed
detections for ``max_age_s`` seconds; a face that is gone longer comes back with a new id (gone:
missing from a processed frame; a pause between frames removes no one). A face missed for more than
``max_gap_s`` (longer than a detector's hiccup) is only picked up again where it was last seen (by
overlap, without velocity or centroid fallback): a face that shows up elsewhere after a gap is a new
person, not the old one moved. Time, not frame count, decides, so the behaviour does not depend on
the frame rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from emotrace.errors import ConfigError
from emotrace.results import FaceEmotions
from emotrace.video.defaults import DEFAULT_MAX_AGE_S

#: Predict motion at most this far ahead: beyond it a constant velocity is a worse guess than
#: standing still (faces stop, turn, or were misdetected).
MAX_PREDICTION_S = 0.5
#: Weight of the newest displacement in the velocity estimate (damps detector jitter).
VELOCITY_SMOOTHING = 0.5


@dataclass
class Track:
    """One face followed over time. ``box`` is ``x, y, w, h`` (float) where it was last seen,
    ``landmarks`` its ``(5, 2)`` landmarks then (NaN when the detector gives none);
    ``velocity`` its centre's motion in pixels per second."""

    track_id: int
    box: np.ndarray
    first_seen: float
    last_seen: float
    hits: int = 1
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    landmarks: np.ndarray = field(default_factory=lambda: np.full((5, 2), np.nan))

    def _shift(self, time_s: float) -> np.ndarray:
        dt = min(max(time_s - self.last_seen, 0.0), MAX_PREDICTION_S)
        return np.asarray(self.velocity * dt)

    def predicted_box(self, time_s: float) -> np.ndarray:
        """Where the box should be at ``time_s`` under constant velocity (bounded horizon)."""
        box = self.box.copy()
        box[:2] += self._shift(time_s)
        return box

    def predicted_landmarks(self, time_s: float) -> np.ndarray:
        """The last landmarks moved with the box, so frames between detections are aligned like
        the detected ones rather than framed from a box."""
        return np.asarray(self.landmarks + self._shift(time_s))


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``a`` (M, 4) with every box in ``b`` (N, 4)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    ax0, ay0 = a[:, None, 0], a[:, None, 1]
    ax1, ay1 = ax0 + a[:, None, 2], ay0 + a[:, None, 3]
    bx0, by0 = b[None, :, 0], b[None, :, 1]
    bx1, by1 = bx0 + b[None, :, 2], by0 + b[None, :, 3]
    inter = np.clip(np.minimum(ax1, bx1) - np.maximum(ax0, bx0), 0, None) * np.clip(
        np.minimum(ay1, by1) - np.maximum(ay0, by0), 0, None
    )
    union = a[:, None, 2] * a[:, None, 3] + b[None, :, 2] * b[None, :, 3] - inter
    return np.asarray(inter / np.maximum(union, 1e-9))


class FaceTracker:
    """Assign stable ``track_ids`` to faces, frame after frame.

    >>> tracker = FaceTracker(max_age_s=1.0)
    >>> faces = tracker.update(recognizer.recognize(frame), time_s)   # faces.track_ids: 1, 2, ...

    ``iou_threshold``: least overlap for an IoU match. ``max_distance``: centroid fallback, in
    face sizes (``sqrt(w*h)`` of the larger box); faces whose sizes differ by more than 2x never
    match this way. ``max_age_s``: how long a face may go undetected and keep its id.
    ``max_gap_s``: after this long undetected, a face keeps its id only by overlapping where it
    was last seen.
    """

    def __init__(
        self,
        iou_threshold: float = 0.2,
        max_distance: float = 1.0,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        max_gap_s: float = 0.25,
    ) -> None:
        if not 0.0 < iou_threshold <= 1.0:
            raise ConfigError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
        if max_distance < 0 or max_age_s < 0 or max_gap_s < 0:
            raise ConfigError("max_distance, max_age_s and max_gap_s must not be negative")
        self.iou_threshold = iou_threshold
        self.max_distance = max_distance
        self.max_age_s = max_age_s
        self.max_gap_s = max_gap_s
        self.tracks: list[Track] = []
        self._next_id = 1
        self._last_update: float | None = None

    def reset(self) -> None:
        """Forget every track (ids keep increasing, so old ids are never reused)."""
        self.tracks.clear()
        self._last_update = None

    def update(self, faces: FaceEmotions, time_s: float) -> FaceEmotions:
        """Match this frame's detections to tracks; returns ``faces`` with ``track_ids`` set."""
        # Only a face that a processed frame showed missing can be gone: time without frames (a
        # paused page, a busy machine, a browser tab in the background) proves nothing, so a
        # track seen in the last frame always gets this frame to be matched in. Before, a
        # 1.5 s pause between two frames of a still scene renumbered every face.
        self.tracks = [
            t
            for t in self.tracks
            if t.last_seen == self._last_update or time_s - t.last_seen <= self.max_age_s
        ]
        boxes = faces.boxes.astype(np.float64)
        points = faces.points
        ids = np.full(len(faces), -1, np.int64)
        for ti, di in self._associate(boxes, time_s):
            track = self.tracks[ti]
            dt = time_s - track.last_seen
            if dt > 0:
                moved = _centre(boxes[di]) - _centre(track.box)
                track.velocity = (
                    VELOCITY_SMOOTHING * moved / dt + (1 - VELOCITY_SMOOTHING) * track.velocity
                )
            track.box, track.last_seen = boxes[di], time_s
            track.landmarks = points[di].astype(np.float64)
            track.hits += 1
            ids[di] = track.track_id
        for di in np.flatnonzero(ids < 0).tolist():
            track = Track(self._next_id, boxes[di], time_s, time_s)
            track.landmarks = points[di].astype(np.float64)
            self.tracks.append(track)
            ids[di] = self._next_id
            self._next_id += 1
        self._last_update = time_s
        return faces.replace(track_ids=ids)

    def predict(self, time_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes ``(N, 4)`` float, ids and landmarks ``(N, 5, 2)`` (NaN where unknown) of the
        faces seen at the last :meth:`update`, moved to where they should be at ``time_s``: what
        to classify on frames without detection."""
        visible = [t for t in self.tracks if t.last_seen == self._last_update]
        if not visible:
            return np.zeros((0, 4)), np.zeros(0, np.int64), np.zeros((0, 5, 2))
        boxes = np.stack([t.predicted_box(time_s) for t in visible])
        points = np.stack([t.predicted_landmarks(time_s) for t in visible])
        return boxes, np.array([t.track_id for t in visible], np.int64), points

    def _associate(self, boxes: np.ndarray, time_s: float) -> list[tuple[int, int]]:
        """Greedy matching: (track index, detection index) pairs, best similarity first."""
        if not self.tracks or not len(boxes):
            return []
        stale = np.array([time_s - t.last_seen > self.max_gap_s for t in self.tracks])
        predicted = np.stack(
            [
                t.box if old else t.predicted_box(time_s)
                for t, old in zip(self.tracks, stale, strict=True)
            ]
        )
        iou = iou_matrix(predicted, boxes)
        sizes_t = np.sqrt(predicted[:, 2] * predicted[:, 3])[:, None]
        sizes_d = np.sqrt(boxes[:, 2] * boxes[:, 3])[None, :]
        centres_t = predicted[:, :2] + predicted[:, 2:] / 2
        centres_d = boxes[:, :2] + boxes[:, 2:] / 2
        distance = np.linalg.norm(centres_t[:, None, :] - centres_d[None, :, :], axis=2)
        relative = distance / np.maximum(np.maximum(sizes_t, sizes_d), 1e-9)
        similar_size = np.maximum(sizes_t, sizes_d) <= 2 * np.minimum(sizes_t, sizes_d)
        # IoU matches score in (1, 2], centroid matches in [0, 1]: overlap always wins.
        score = np.where(
            iou >= self.iou_threshold,
            1.0 + iou,
            np.where(
                (relative <= self.max_distance) & similar_size & ~stale[:, None],
                1.0 - relative / max(self.max_distance, 1e-9),
                -1.0,
            ),
        )
        pairs: list[tuple[int, int]] = []
        used_t: set[int] = set()
        used_d: set[int] = set()
        for flat in np.argsort(-score, axis=None):
            ti, di = divmod(int(flat), score.shape[1])
            if score[ti, di] < 0:
                break
            if ti in used_t or di in used_d:
                continue
            pairs.append((ti, di))
            used_t.add(ti)
            used_d.add(di)
        return pairs


def _centre(box: np.ndarray) -> np.ndarray:
    return np.asarray(box[:2] + box[2:] / 2)
