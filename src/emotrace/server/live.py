"""Live sessions: a recorder and its pipeline state, fed by the page's WebSocket.

A session is created by ``POST /api/v1/sessions`` (its recorder starts, the session is
``recording``) and receives frames over ``/api/v1/sessions/{id}/live``. When the socket drops
without a ``stop``, everything received is kept and the session ends as ``interrupted``; so does a
session no page streams into (no frame, no message: created and never attached, or a hung page)
for the server's idle timeout (:attr:`ServerConfig.idle_timeout_s`). A new socket to the same
session resumes it (same session, frames after the stored ones). Only numbers
reach the recorder: decoded frames live in memory for the duration of one analysis.

Recorder and pipeline calls run on the engine's inference threads. A session's own calls (its
frames, patient choice and end) hold its :attr:`LiveSession.lock`, so they never overlap and keep
their order; different sessions run side by side.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emotrace.server.engine import Engine, LiveAnalyzer
from emotrace.server.images import ImageRejected, decode_image, face_records
from emotrace.sessions.circumplex import RUSSELL_1980
from emotrace.sessions.recorder import MAX_TIME_S, SessionRecorder
from emotrace.sessions.types import COMPLETE, INTERRUPTED, SessionInfo
from emotrace.sessions.writer import WorkspaceWriter

#: Frame messages start with the frame's time as a little-endian float64: seconds in the
#: source (a video file's position) or NaN for "now" (cameras, screens: the server's clock).
HEADER = 8


@dataclass
class LiveSession:
    """One session this server records: recorder, pipeline state, attached socket."""

    recorder: SessionRecorder
    analyzer: LiveAnalyzer
    started_at: float
    #: Generation of the attached socket; a newer socket takes over from an older one.
    generation: int = 0
    paused: bool = False
    frames: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    #: When a page last showed signs of life (created, attached, any message), monotonic clock.
    seen: float = field(default_factory=time.monotonic)
    #: Held by every call that touches the recorder or the pipeline of this session.
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Set by :meth:`close`: a frame that waited for the lock meanwhile is not analysed.
    ended: bool = False

    @property
    def session_id(self) -> int:
        """The session's id in the workspace."""
        assert self.recorder.session_id is not None  # set by start()
        return self.recorder.session_id

    def touch(self) -> None:
        """A page is streaming into this session (a frame, a heartbeat, a socket attached)."""
        self.seen = time.monotonic()

    def idle_s(self) -> float:
        """Seconds since a page last showed signs of life."""
        return time.monotonic() - self.seen

    def now(self) -> float:
        """Seconds since the session started (the clock of frames and markers)."""
        return time.time() - self.started_at

    def process_frame(self, engine: Engine, message: bytes) -> dict[str, Any]:
        """Decode, analyse and record one frame message; the result for the page."""
        with self.lock:
            try:
                return self._process_frame(engine, message)
            finally:
                self.touch()

    def _process_frame(self, engine: Engine, message: bytes) -> dict[str, Any]:
        if self.ended:
            # Finished (the API, another socket's stop) after this frame was read but before it
            # got the lock: nothing more is recorded.
            return {"type": "error", "detail": "this session has ended"}
        if len(message) <= HEADER:
            return {"type": "error", "detail": "a frame message is 8 bytes of time + a JPEG"}
        (client_time,) = np.frombuffer(message[:HEADER], "<f8").tolist()
        try:
            image = decode_image(message[HEADER:])
        except ImageRejected as exc:
            return {"type": "error", "detail": str(exc)}
        last = self.recorder.last_time_s
        if math.isnan(client_time):
            # The wall clock may step back (NTP); frames must not.
            time_s = max(self.now(), last if math.isfinite(last) else 0.0)
        elif not math.isfinite(client_time) or client_time < 0 or client_time < last:
            return {"type": "error", "detail": f"frame time {client_time} is before {last}"}
        else:
            time_s = float(client_time)
        if time_s > MAX_TIME_S:
            return {"type": "error", "detail": f"frame time {time_s:g} s is past 24 h"}
        index = self.recorder.last_frame + 1
        t0 = time.perf_counter()
        result = self.analyzer.analyze(index, time_s, image)
        self.recorder.record(index, time_s, result.raw)
        self.frames += 1
        patient = self.recorder.last_patient
        faces = face_records(result.faces)
        for i, face in enumerate(faces):
            face["patient"] = i == patient
        valence = arousal = None
        if patient is not None:
            va = RUSSELL_1980.valence_arousal(result.faces.probabilities[[patient]], engine.classes)
            valence, arousal = round(float(va[0, 0]), 4), round(float(va[0, 1]), 4)
        return {
            "type": "result",
            "frame": index,
            "time_s": round(time_s, 3),
            "width": int(image.shape[1]),
            "height": int(image.shape[0]),
            "faces": faces,
            "patient": patient,
            "valence": valence,
            "arousal": arousal,
            "server_ms": round(1000 * (time.perf_counter() - t0), 2),
            # The cheaper model that classified this crowded frame (the page says so), or null.
            "crowd_model": result.faces.crowd_model or None,
        }

    def set_patient(self, track_id: int | None) -> None:
        """Follow this track as the patient (``None``: the largest, most persistent face)."""
        with self.lock:
            self.recorder.selector.track_id = track_id

    def close(self, status: str) -> SessionInfo:
        """End the recording as ``complete`` or ``interrupted`` (the caller holds the lock)."""
        self.ended = True
        self.analyzer.close()
        return self.recorder.close(status)


class LiveRegistry:
    """The sessions this server records now, by id."""

    def __init__(
        self, engine: Engine, writer: WorkspaceWriter, lookup: Callable[[int], SessionInfo]
    ) -> None:
        self.engine = engine
        #: The workspace's one writer, shared by every session's recorder.
        self.writer = writer
        #: Reads a session through the server's own workspace connection.
        self.lookup = lookup
        self.sessions: dict[int, LiveSession] = {}
        #: Guards ``sessions`` against inference threads adding and removing at once.
        self._lock = threading.Lock()

    def _settings(self, source: str) -> dict[str, Any]:
        return {
            **self.engine.options.record(self.engine.recognizer.classifier),
            **self.engine.crowd.record(self.engine.crowd_switch),
            "source": source,
            "via": "emotrace serve",
        }

    def start(
        self,
        name: str,
        patient: str,
        *,
        consent: bool,
        notes: str,
        source: str,
        track_id: int | None,
        resume: bool = False,
    ) -> LiveSession:
        """Create (or resume) a session and start recording it (inference thread)."""
        recorder = SessionRecorder(
            name,
            patient,
            self.engine.classes,
            workspace=self.writer.path,
            writer=self.writer,
            source=f"browser:{source}",
            model=self.engine.model_info,
            settings=self._settings(source),
            consent=consent,
            notes=notes,
            track_id=track_id,
            resume=resume,
        ).start()
        try:
            info = self.lookup(recorder.session_id or 0)
            live = LiveSession(recorder, self.engine.analyzer(name), info.started_at)
        except BaseException:
            recorder.close(INTERRUPTED)
            raise
        with self._lock:
            self.sessions[live.session_id] = live
        return live

    def stop(
        self, session_id: int, status: str = COMPLETE, *, idle_s: float | None = None
    ) -> SessionInfo | None:
        """End a live session (inference thread); ``None`` when it was not live.

        ``idle_s``: only if no page has streamed into it for that long, checked once its frame
        being analysed (if any) is done; else ``None`` too."""
        with self._lock:
            live = self.sessions.get(session_id)
        if live is None:
            return None
        # Live until its end is stored: a second finish meanwhile waits for this one on the
        # session's lock, then finds it ended, instead of a "recording" session that is not live.
        with live.lock:
            with self._lock:
                if self.sessions.get(session_id) is not live:
                    return None
            if idle_s is not None and live.idle_s() <= idle_s:
                return None
            try:
                return live.close(status)
            finally:
                with self._lock:
                    del self.sessions[session_id]

    def idle(self, timeout_s: float) -> list[int]:
        """The live sessions no page has streamed into for ``timeout_s`` seconds."""
        with self._lock:
            return [i for i, live in self.sessions.items() if live.idle_s() > timeout_s]

    def stop_all(self) -> None:
        """Server shutdown: every live session ends as interrupted (it can be resumed)."""
        with self._lock:
            ids = list(self.sessions)
        for session_id in ids:
            self.stop(session_id, INTERRUPTED)
