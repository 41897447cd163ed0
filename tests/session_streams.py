"""Synthetic per-frame record streams with known answers, for the session tests."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from emotrace.labels import FER2013_ORDER
from emotrace.results import FaceEmotions
from emotrace.sessions.types import Marker, ModelInfo, SessionData, SessionInfo

CLASSES: tuple[str, ...] = FER2013_ORDER
#: (seconds, emotion) pieces; ``None`` is a stretch without any face.
Spec = Sequence[tuple[float, str | None]]


def onehot(emotion: str, strength: float = 1.0) -> np.ndarray:
    """Probabilities with ``strength`` on ``emotion`` and the rest spread evenly."""
    p = np.full(len(CLASSES), (1 - strength) / (len(CLASSES) - 1), np.float32)
    p[CLASSES.index(emotion)] = strength
    return p


def face(
    emotion: str, track: int = 1, box: tuple[int, int, int, int] = (40, 30, 80, 80)
) -> FaceEmotions:
    """One tracked face showing ``emotion``."""
    return FaceEmotions(
        np.array([box]), onehot(emotion)[None], CLASSES, track_ids=np.array([track])
    )


def stream(
    spec: Spec, fps: float = 10.0, start_frame: int = 0
) -> Iterator[tuple[int, float, FaceEmotions]]:
    """``(frame, time_s, faces)`` for ``spec`` at ``fps``; ``None`` pieces have no face."""
    i = start_frame
    t_end = 0.0
    for seconds, emotion in spec:
        t_end += seconds
        while i / fps < t_end - 1e-9:
            faces = FaceEmotions.empty(CLASSES) if emotion is None else face(emotion)
            yield i, i / fps, faces
            i += 1


def data_from(
    spec: Spec, fps: float = 10.0, markers: Sequence[tuple[float, str]] = ()
) -> SessionData:
    """A :class:`SessionData` straight from ``spec`` (no database), as ``store.load`` builds it."""
    frames, times, visible, probs = [], [], [], []
    for index, time_s, faces in stream(spec, fps):
        frames.append(index)
        times.append(time_s)
        visible.append(len(faces) > 0)
        probs.append(faces.probabilities[0] if len(faces) else np.full(len(CLASSES), np.nan))
    n = len(frames)
    info = SessionInfo(
        id=1, name="synthetic", patient="P-TEST", started_at=1_700_000_000.0, ended_at=None,
        source="", model=ModelInfo("test"), classes=CLASSES, settings={}, consent=True, notes="",
        status="complete", frames=n, visible_frames=int(sum(visible)),
        first_time_s=times[0] if n else None, last_time_s=times[-1] if n else None,
        markers=len(markers),
    )  # fmt: skip
    return SessionData(
        info=info,
        frames=np.array(frames, np.int64),
        times=np.array(times, np.float64),
        visible=np.array(visible, bool),
        probabilities=np.array(probs, np.float32).reshape(n, len(CLASSES)),
        boxes=np.zeros((n, 4)),
        track_ids=np.where(visible, 1, -1).astype(np.int64),
        scores=np.ones(n),
        markers=[Marker(i, t, label) for i, (t, label) in enumerate(markers, start=1)],
    )


def file_digest(*paths: Path) -> dict[str, str]:
    """sha256 of each existing file (absent files map to ``"absent"``)."""
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else "absent"
        for p in paths
    }


def db_files(db: Path) -> list[Path]:
    """The database file and its ``-wal`` and ``-shm`` companions."""
    return [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
