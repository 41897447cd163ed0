"""The video pipeline as a generator: frames in, one :class:`FrameResult` per processed frame out.

    >>> from emotrace.video import process
    >>> for result in process("consultation.mp4"):
    ...     for row in result.rows():            # frame, time_s, track_id, box, label, p_<class>
    ...         store(row)

Per frame: detect faces (every ``detect_every`` frames; in between, the tracker's predicted boxes
are classified instead), classify each face with the model's own preprocessing, give it a stable
track id, smooth its probabilities per track. Everything runs on the caller's thread except
frame capture, so stateful consumers (a SQLite writer, a web socket) need no locks. Timings of
every stage travel with each result.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from emotrace.errors import ConfigError
from emotrace.faces.types import Detection
from emotrace.results import POSE_NAMES, FaceEmotions
from emotrace.runtime.recognizer import EmotionRecognizer
from emotrace.video import defaults
from emotrace.video.smoothing import EmotionSmoother
from emotrace.video.sources import FrameSource, SourceSpec, open_source
from emotrace.video.tracking import FaceTracker

#: Predicted boxes narrower than this (pixels, after clipping to the frame) are not classified.
MIN_BOX_SIDE = 4
#: Run the face detector on every 2nd frame and classify the tracked faces in between: the
#: detector costs several times the classifier, and at 25-30 fps a face moves a few pixels between
#: two frames, which the tracker's velocity prediction absorbs. 1 detects on every frame.
#: (Written once, in ``video.defaults``.)
DEFAULT_DETECT_EVERY = defaults.DEFAULT_DETECT_EVERY


@dataclass(frozen=True)
class StageTimes:
    """Seconds spent on one frame per stage, on the pipeline's thread.

    ``read``: waiting for the capture thread (near 0 when decoding keeps up). ``detect``: the
    face detector (0 on frames between detections). ``track``: association or box prediction.
    ``classify``: cropping, preprocessing and the model. ``smooth``: temporal smoothing.
    """

    read: float = 0.0
    detect: float = 0.0
    track: float = 0.0
    classify: float = 0.0
    smooth: float = 0.0

    @property
    def total(self) -> float:
        """Sum of all stages."""
        return self.read + self.detect + self.track + self.classify + self.smooth

    def as_dict(self) -> dict[str, float]:
        """Stage name -> seconds."""
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}


def record_columns(classes: tuple[str, ...]) -> list[str]:
    """Column names of per-face records: the CSV header and the JSON Lines keys."""
    return [
        "frame",
        "time_s",
        "track_id",
        "x",
        "y",
        "w",
        "h",
        "yaw",
        "pitch",
        "roll",
        "label",
        "confidence",
        *(f"p_{c}" for c in classes),
    ]


@dataclass(frozen=True)
class FrameResult:
    """What the pipeline saw in one frame.

    ``index``/``time_s``: the frame's position and timestamp in the source (see
    :class:`~emotrace.video.sources.Frame`). ``image``: the BGR frame (not a copy; do not modify
    it if you keep it). ``faces``: tracked and smoothed faces: what the overlay shows and the
    records hold (``faces.labels`` are the held labels, ``faces.probabilities`` the smoothed
    ones; with smoothing off, the same as ``raw``). ``raw``: the same faces before smoothing.
    ``detected``: whether the detector ran on this frame (else boxes come from the tracker).
    ``timings``: seconds per stage.
    """

    index: int
    time_s: float
    image: np.ndarray
    faces: FaceEmotions
    raw: FaceEmotions
    detected: bool
    timings: StageTimes

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names, in the order of the probability columns."""
        return self.faces.classes

    def rows(self, decimals: int = 4) -> list[dict[str, Any]]:
        """One flat record per face (keys: :func:`record_columns`); a frame without faces gives
        one record whose face fields are ``None``, so every processed frame is accounted for."""
        base = {"frame": self.index, "time_s": round(self.time_s, 3)}
        if not len(self.faces):
            return [{**base, **dict.fromkeys(record_columns(self.classes)[2:])}]
        rows = []
        labels, confidences = self.faces.labels, self.faces.confidences
        poses = self.faces.head_poses()
        for i in range(len(self.faces)):
            x, y, w, h = (int(v) for v in self.faces.boxes[i])
            track = int(self.faces.track_ids[i])
            row = {
                **base,
                "track_id": track if track >= 0 else None,
                "x": x,
                "y": y,
                "w": w,
                "h": h,
                **{
                    name: None if np.isnan(value) else round(float(value), 1)
                    for name, value in zip(POSE_NAMES, poses[i], strict=True)
                },
                "label": labels[i],
                "confidence": round(float(confidences[i]), decimals),
            }
            for name, p in zip(self.classes, self.faces.probabilities[i].tolist(), strict=True):
                row[f"p_{name}"] = round(p, decimals)
            rows.append(row)
        return rows


class FpsMeter:
    """Frames per second over the last ``size`` ticks (for the overlay)."""

    def __init__(self, size: int = 30) -> None:
        self._ticks: deque[float] = deque(maxlen=size)

    def tick(self) -> None:
        """Record that a frame was finished now."""
        self._ticks.append(time.perf_counter())

    @property
    def fps(self) -> float:
        """Recent frame rate, 0 until two frames were seen."""
        if len(self._ticks) < 2:
            return 0.0
        span = self._ticks[-1] - self._ticks[0]
        return (len(self._ticks) - 1) / span if span > 0 else 0.0


def clip_boxes(boxes: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer boxes clipped to the frame, and the mask of those still large enough to use."""
    if not len(boxes):
        return np.zeros((0, 4), np.int64), np.zeros(0, bool)
    x0 = np.clip(np.round(boxes[:, 0]), 0, width)
    y0 = np.clip(np.round(boxes[:, 1]), 0, height)
    x1 = np.clip(np.round(boxes[:, 0] + boxes[:, 2]), 0, width)
    y1 = np.clip(np.round(boxes[:, 1] + boxes[:, 3]), 0, height)
    clipped = np.stack([x0, y0, x1 - x0, y1 - y0], axis=1).astype(np.int64)
    keep = (clipped[:, 2] >= MIN_BOX_SIDE) & (clipped[:, 3] >= MIN_BOX_SIDE)
    return clipped, keep


def process(
    source: FrameSource | SourceSpec,
    recognizer: EmotionRecognizer | None = None,
    *,
    detect_every: int = DEFAULT_DETECT_EVERY,
    tracker: FaceTracker | None = None,
    smoother: EmotionSmoother | None = None,
    smooth: bool = True,
    max_frames: int | None = None,
) -> Generator[FrameResult, None, None]:
    """Run the pipeline over ``source``, yielding one :class:`FrameResult` per processed frame.

    ``source``: an open :class:`FrameSource`, or anything :func:`open_source` accepts (camera
    index, URL, file, image, folder). ``recognizer``: detector plus classifier (default: the
    bundled YuNet on frames downscaled to 640 px, and the bundled model). ``detect_every=N``
    runs the detector on every N-th frame (default 2) and classifies the tracked faces, moved by
    their velocity, in between (1: every frame).
    ``tracker``/``smoother``: defaults ``FaceTracker()`` and ``EmotionSmoother()``;
    ``smooth=False`` turns smoothing off. ``max_frames`` stops early.

    The source is closed when the generator finishes, fails or is closed. Errors of the source
    (e.g. a truncated file) are raised after every good frame was yielded.
    """
    if detect_every < 1:
        raise ConfigError(f"detect_every must be at least 1, got {detect_every}")
    opened = source if isinstance(source, FrameSource) else open_source(source)
    try:
        if recognizer is None:
            recognizer = EmotionRecognizer()
        tracker = tracker or FaceTracker()
        smoother = (smoother or EmotionSmoother()) if smooth else None
    except BaseException:
        opened.close()
        raise
    frames = iter(opened)
    # Boxes predicted between detections are framed with the calibration of the detector that
    # found them (landmarks, when it gives them, travel with the track instead).
    detector_kind = ""
    try:
        count = 0
        while max_frames is None or count < max_frames:
            t0 = time.perf_counter()
            frame = next(frames, None)
            t1 = time.perf_counter()
            if frame is None:
                return
            image = frame.image
            detected = count % detect_every == 0
            if detected:
                detections = recognizer.detector.detect(image)
                if detections:
                    detector_kind = detections[0].detector
                t2 = time.perf_counter()
                raw = recognizer.classify_faces(image, detections)
                t3 = time.perf_counter()
                raw = tracker.update(raw, frame.time_s)
                t4 = time.perf_counter()
                times = StageTimes(read=t1 - t0, detect=t2 - t1, classify=t3 - t2, track=t4 - t3)
            else:
                predicted, ids, points = tracker.predict(frame.time_s)
                clipped, keep = clip_boxes(predicted, image.shape[1], image.shape[0])
                kept = [
                    Detection(
                        (int(x), int(y), int(w), int(h)),
                        landmarks=None if np.isnan(p).any() else p,
                        detector=detector_kind,
                    )
                    for (x, y, w, h), p in zip(clipped[keep], points[keep], strict=True)
                ]
                t2 = time.perf_counter()
                raw = recognizer.classify_faces(image, kept)
                if len(raw):
                    raw = raw.replace(track_ids=ids[keep])
                t3 = time.perf_counter()
                times = StageTimes(read=t1 - t0, track=t2 - t1, classify=t3 - t2)
            t5 = time.perf_counter()
            faces = smoother.update(raw, frame.time_s) if smoother is not None else raw
            times = StageTimes(**{**times.as_dict(), "smooth": time.perf_counter() - t5})
            yield FrameResult(frame.index, frame.time_s, image, faces, raw, detected, times)
            count += 1
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()
        opened.close()  # also when the frame generator never started
