"""Recording a session: pick the patient's face in each frame and store it in small transactions.

The caller's thread only validates a frame, picks the patient and queues one row (microseconds);
the workspace's writer thread (:class:`~emotrace.sessions.writer.WorkspaceWriter`) commits
whatever is queued at least every ``commit_interval_s`` (0.5 s), so after ``kill -9`` every frame
older than one second is on disk, and beats the session's heartbeat once a second while idle; a
recording whose heartbeat stops (or whose process is gone) is reported as ``interrupted`` (see
``store.writer_alive``). A server recording many sessions gives them one writer; a recorder
without one starts its own.

>>> with SessionRecorder("week-3", "P-017", recognizer.classifier.classes,
...                      workspace="~/therapy", model=ModelInfo.from_model("default")) as rec:
...     for index, time_s, faces in frames:            # faces: FaceEmotions with track ids
...         rec.record(index, time_s, faces)
...     rec.mark("exercise start")
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from emotrace.errors import EmotraceError, SessionError, StoreError
from emotrace.results import FaceEmotions
from emotrace.sessions.store import FrameRow, SessionStore
from emotrace.sessions.types import (
    COMPLETE,
    INTERRUPTED,
    ModelInfo,
    SessionInfo,
    check_name,
)
from emotrace.sessions.workspace import WorkspaceBusy
from emotrace.sessions.writer import FINAL_TRIES, WorkspaceWriter

#: Latest frame time a session may have. The analytics work per second and per window, so a
#: frame at 1e12 s (a client's bogus clock) would make the report allocate terabytes; a day is
#: far longer than any session.
MAX_TIME_S = 24 * 3600.0


def _pose(faces: FaceEmotions, index: int) -> tuple[float | None, float | None, float | None]:
    """The chosen face's yaw, pitch, roll rounded to 0.1 degree (``None`` without landmarks)."""
    from emotrace.faces.pose import head_pose

    pose = head_pose(faces.points[index])
    if pose is None:
        return None, None, None
    yaw, pitch, roll = (round(angle, 1) for angle in pose)
    return yaw, pitch, roll


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ax, ay, aw, ah = (float(v) for v in a)
    bx, by, bw, bh = (float(v) for v in b)
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


@dataclass
class _Track:
    """What the selector remembers of one track."""

    weight: float  # decayed sum of box areas, as of weight_time
    weight_time: float
    first_seen: float
    last_seen: float
    box: np.ndarray


class PatientSelector:
    """Which face in a frame is the patient's.

    With ``track_id`` given (the face the clinician chose), that track, followed when the tracker
    re-identifies it under a new id where it was (missing when absent). Otherwise each track
    accumulates its box area, decaying with ``half_life_s``: the patient is the track with the
    largest weight, that is the largest and most persistent face. When that track is absent the
    frame is missing (a visitor's face is never recorded in its place), unless a new track appears
    where the patient was (box IoU >= ``reacquire_iou``), which is the tracker re-identifying the
    patient under a new id. Untracked faces (id -1): the largest face of the frame.
    """

    def __init__(
        self, track_id: int | None = None, half_life_s: float = 10.0, reacquire_iou: float = 0.3
    ) -> None:
        self.track_id = track_id
        self.half_life_s = half_life_s
        self.reacquire_iou = reacquire_iou
        self._tracks: dict[int, _Track] = {}

    def _weight(self, track: int, time_s: float) -> float:
        state = self._tracks[track]
        return state.weight * 0.5 ** ((time_s - state.weight_time) / self.half_life_s)

    def select(self, time_s: float, faces: FaceEmotions) -> int | None:
        """Index into ``faces`` of the patient's face, or ``None`` when it is not there."""
        ids = faces.track_ids
        if len(faces) and (ids < 0).all():
            return faces.largest() if self.track_id is None else None
        for i, track in enumerate(ids.tolist()):
            if track < 0:
                continue
            area = float(faces.boxes[i, 2] * faces.boxes[i, 3])
            if track in self._tracks:
                state = self._tracks[track]
                state.weight, state.weight_time = self._weight(track, time_s) + area, time_s
                state.last_seen, state.box = time_s, faces.boxes[i].copy()
            else:
                self._tracks[track] = _Track(area, time_s, time_s, time_s, faces.boxes[i].copy())
        if not self._tracks:
            return None
        weights = {t: self._weight(t, time_s) for t in self._tracks}
        best = max(weights, key=weights.__getitem__)
        # Forget tracks that no longer matter, so the table stays small over an hour.
        keep = {best, self.track_id}
        for track in [t for t, w in weights.items() if w < 1e-3 * weights[best] and t not in keep]:
            del self._tracks[track]
        present = {t: i for i, t in enumerate(ids.tolist()) if t >= 0}
        if self.track_id is not None:  # the face the clinician chose, wherever its id goes
            if self.track_id not in present:
                self.track_id = self._reacquired(self.track_id, present, faces) or self.track_id
            return present.get(self.track_id)
        if best not in present:
            found = self._reacquired(best, present, faces)
            if found is not None:
                state = self._tracks[found]
                state.weight = self._weight(found, time_s) + weights[best]
                state.weight_time = time_s
                del self._tracks[best]
                best = found
        return present.get(best)

    def _reacquired(self, lost_id: int, present: dict[int, int], faces: FaceEmotions) -> int | None:
        """A track that appeared where ``lost_id`` was last seen, after it was: the tracker
        re-identifying the same face under a new id."""
        lost = self._tracks.get(lost_id)
        if lost is None:
            return None
        for track, i in present.items():
            state = self._tracks[track]
            if (
                state.first_seen > lost.last_seen
                and _iou(faces.boxes[i], lost.box) >= self.reacquire_iou
            ):
                return track
        return None


class SessionRecorder:
    """Record one session into a workspace; a context manager (see the module docstring).

    Leaving the ``with`` block normally ends the session as ``complete``; an exception ends it
    as ``interrupted``. ``record`` raises :class:`SessionError` for frames that go back in time,
    classes that differ from the session's, or non-finite probabilities.

    With ``resume=True`` the recorder continues the interrupted session ``name`` (same patient
    and classes) instead of creating one; frames must then come after the stored ones.
    ``writer``: the workspace's writer to share (a server's); without one the recorder starts
    its own for ``workspace`` and stops it when it closes.
    """

    def __init__(
        self,
        name: str,
        patient: str,
        classes: Sequence[str],
        *,
        workspace: str | Path | None = None,
        source: str = "",
        model: ModelInfo | None = None,
        settings: dict[str, Any] | None = None,
        consent: bool = False,
        notes: str = "",
        track_id: int | None = None,
        commit_interval_s: float = 0.5,
        max_batch: int = 1000,
        resume: bool = False,
        writer: WorkspaceWriter | None = None,
    ) -> None:
        self.name = check_name(name, "session name")
        self.patient = check_name(patient, "patient pseudonym")
        self.classes = tuple(classes)
        if not self.classes:
            raise SessionError("a session needs the model's class names")
        self.workspace = workspace
        self.source = source
        self.model = model
        self.settings = {**(settings or {}), "patient_track": track_id}
        self.consent = consent
        self.notes = notes
        self.selector = PatientSelector(track_id)
        self.commit_interval_s = commit_interval_s
        self.max_batch = max_batch
        self.session_id: int | None = None
        self.frames_recorded = 0
        self.frames_with_face = 0
        self.info: SessionInfo | None = None
        self.resume = resume
        #: Index into the faces of the last recorded frame of the patient's face (None: absent).
        self.last_patient: int | None = None
        self._shared_writer = writer
        self._writer: WorkspaceWriter | None = None
        self._last_frame = -1
        self._last_time = -math.inf

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> SessionRecorder:
        """Create (or reopen) the session through the workspace's writer."""
        if self._writer is not None or self.info is not None:
            raise SessionError("a recorder records one session; create another recorder")
        writer = self._shared_writer
        if writer is None:
            writer = WorkspaceWriter(
                self.workspace, commit_interval_s=self.commit_interval_s, max_batch=self.max_batch
            ).start()
        try:
            if self.resume:
                writer.call(self._reopen)
            else:
                self.session_id = writer.call(self._create)
            assert self.session_id is not None
            writer.hold(self.session_id)
        except BaseException:
            if writer is not self._shared_writer:
                writer.close()
            raise
        self._writer = writer
        return self

    def _create(self, store: SessionStore) -> int:
        return store.create_session(
            self.name,
            self.patient,
            self.classes,
            source=self.source,
            model=self.model,
            settings=self.settings,
            consent=self.consent,
            notes=self.notes,
        )

    def _reopen(self, store: SessionStore) -> None:
        info = store.get(f"{self.patient}/{self.name}")
        if info.patient != self.patient or info.classes != self.classes:
            raise SessionError(
                f"session {self.name!r} is patient {info.patient!r} with classes {info.classes}; "
                "it cannot be resumed with other ones"
            )
        info, last_frame = store.reopen(info.id)
        self.session_id = info.id
        self._last_frame = last_frame
        self._last_time = info.last_time_s if info.last_time_s is not None else -math.inf
        self.frames_recorded, self.frames_with_face = info.frames, info.visible_frames

    def close(self, status: str = COMPLETE) -> SessionInfo:
        """Store what is queued, end the session with ``status`` and return its final metadata
        (``interrupted`` whatever ``status`` says when the writer failed: what it holds is all
        that was stored)."""
        writer, self._writer = self._writer, None
        if writer is None or self.session_id is None:
            raise SessionError("the recorder is not running")
        session_id = self.session_id
        failed: BaseException | None = None
        try:
            writer.release(session_id)
            self.info = writer.call(lambda store: self._finish(store, session_id, status))
        except StoreError as exc:
            failed = exc
        finally:
            if writer is not self._shared_writer:
                try:
                    writer.close()
                except StoreError as exc:
                    failed = failed or exc
        if failed is not None:
            if self.info is None:  # the writer is gone: end the session on our own, if we can
                with suppress(EmotraceError), SessionStore(self.workspace) as store:
                    store.finish(session_id, INTERRUPTED)
                    self.info = store.get(session_id)
            raise failed
        assert self.info is not None
        return self.info

    @staticmethod
    def _finish(store: SessionStore, session_id: int, status: str) -> SessionInfo:
        # Ending a session must not be lost to another process holding the lock for a while.
        for attempt in range(FINAL_TRIES):
            try:
                store.finish(session_id, status)
                break
            except WorkspaceBusy:
                if attempt == FINAL_TRIES - 1:
                    raise
        return store.get(session_id)

    def __enter__(self) -> SessionRecorder:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._writer is not None:
            self.close(COMPLETE if exc_type is None else INTERRUPTED)

    @property
    def last_frame(self) -> int:
        """Index of the last recorded frame (-1 before the first)."""
        return self._last_frame

    @property
    def last_time_s(self) -> float:
        """Time of the last recorded frame (-inf before the first)."""
        return self._last_time

    # -- recording ---------------------------------------------------------------------------

    def record(self, frame_index: int, time_s: float, faces: FaceEmotions) -> bool:
        """Queue one frame; returns whether the patient's face was in it."""
        writer = self._writer
        if writer is None or self.session_id is None:
            raise SessionError("the recorder is not running (use it as a context manager)")
        if writer.failed is not None:
            raise StoreError(f"recording stopped: {writer.failed}")
        frame_index, time_s = int(frame_index), float(time_s)
        if frame_index <= self._last_frame:
            raise SessionError(f"frame {frame_index} after frame {self._last_frame}")
        if not math.isfinite(time_s) or time_s < self._last_time:
            raise SessionError(f"frame {frame_index}: time {time_s} after {self._last_time}")
        if time_s > MAX_TIME_S:
            raise SessionError(
                f"frame {frame_index}: time {time_s:g} s is past a session's limit of "
                f"{MAX_TIME_S:g} s (24 h)"
            )
        if tuple(faces.classes) != self.classes:
            raise SessionError(
                f"frame {frame_index}: classes {faces.classes} differ from the session's "
                f"{self.classes}"
            )
        self._last_frame, self._last_time = frame_index, time_s
        index = self.selector.select(time_s, faces)
        self.last_patient = index
        row: FrameRow
        if index is None:
            row = (frame_index, time_s, 0, *[None] * 10)
        else:
            probs = faces.probabilities[index]
            if not np.isfinite(probs).all():
                raise SessionError(f"frame {frame_index}: non-finite probabilities")
            x, y, w, h = (int(v) for v in faces.boxes[index])
            row = (
                frame_index,
                time_s,
                1,
                int(faces.track_ids[index]),
                x,
                y,
                w,
                h,
                float(faces.scores[index]),
                probs.astype("<f4").tobytes(),
                *_pose(faces, index),
            )
            self.frames_with_face += 1
        self.frames_recorded += 1
        writer.record(self.session_id, row)
        return index is not None

    def mark(self, label: str, time_s: float | None = None) -> None:
        """A marker at ``time_s``, by default the time of the last recorded frame."""
        if not label.strip():
            raise SessionError("a marker needs a label")
        if self._writer is None or self.session_id is None:
            raise SessionError("the recorder is not running (use it as a context manager)")
        at = time_s if time_s is not None else max(self._last_time, 0.0)
        self._writer.mark(self.session_id, float(at), label.strip())


def record_session(
    frames: Iterable[tuple[int, float, FaceEmotions]],
    name: str,
    patient: str,
    classes: Sequence[str],
    **options: Any,
) -> SessionInfo:
    """Record ``(frame_index, time_s, FaceEmotions)`` items into a new session; its metadata.

    ``options`` are :class:`SessionRecorder`'s keyword arguments (``workspace``, ``source``,
    ``model``, ``settings``, ``consent``, ``notes``, ``track_id``).
    """
    recorder = SessionRecorder(name, patient, classes, **options)
    with recorder:
        for frame_index, time_s, faces in frames:
            recorder.record(frame_index, time_s, faces)
    assert recorder.info is not None  # set by close()
    return recorder.info
