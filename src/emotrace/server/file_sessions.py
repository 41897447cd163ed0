"""File sessions: an uploaded video analysed by the server, as ``emotrace analyze`` would.

The page uploads the file (:mod:`emotrace.server.uploads` keeps it in a private temporary
folder); :meth:`FileSessions.start` opens it with OpenCV/FFmpeg (H.264, HEVC, VP9, MJPEG... a
file without a decodable first frame is refused before any session exists), creates the session
and analyses it in a thread of its own with :func:`emotrace.video.analyze_source` and the
server's :class:`~emotrace.video.options.PipelineOptions`: the same frames, tracks and labels as
``emotrace analyze`` on that file. Rows go through the workspace's one writer. The inference
threads that serve live sessions are not used, so a long file never holds up a live session.

How a file session ends: ``complete`` when the whole file was analysed (or the session was
finished through the API); ``interrupted`` when it was cancelled, the file turned out damaged
part-way, or the server stopped; every frame analysed until then is kept. Whatever ends it,
the folder with the video is removed at once. Progress (frames, seconds of video, analysis
frames/s, time left, the patient's valence and arousal so far) is kept in memory for the page.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emotrace.errors import VideoError
from emotrace.sessions.circumplex import RUSSELL_1980
from emotrace.sessions.recorder import SessionRecorder
from emotrace.sessions.types import COMPLETE, INTERRUPTED

if TYPE_CHECKING:
    from emotrace.server.engine import Engine
    from emotrace.server.uploads import UploadArea
    from emotrace.sessions.writer import WorkspaceWriter
    from emotrace.video.frames import FrameSource
    from emotrace.video.pipeline import FrameResult

#: Files analysed at once; beyond, an upload is refused (409) until one ends.
MAX_RUNNING = 2
#: Ended analyses whose final progress stays available to a page that polls late...
KEEP_ENDED = 64
#: ... the last few of them with their timeline points (an hour of video holds ~20 MB of them).
KEEP_POINTS = 4
#: Points of the patient's valence/arousal timeline kept per analysis (~1 h at 30 frames/s).
MAX_POINTS = 120_000
#: Seconds a cancel waits for the analysis thread to stop (one frame takes milliseconds).
CANCEL_WAIT_S = 30.0
#: What the page and the API say about a file OpenCV cannot read (the temporary path, which
#: means nothing to the user, is left out).
UNREADABLE = (
    "this file cannot be read as a video (not a video, an unsupported codec, or a damaged file)"
)

ANALYSING, COMPLETED, CANCELLED, FAILED = "analysing", "complete", "cancelled", "failed"


@dataclass
class FileProgress:
    """How far one file's analysis is (what ``GET .../analysis`` returns)."""

    session_id: int
    state: str = ANALYSING
    frames_done: int = 0
    frames_total: int | None = None
    video_s: float = 0.0
    duration_s: float | None = None
    fps: float = 0.0
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    #: ``(frame, time_s, valence, arousal)`` of the patient per analysed frame (``None``s when
    #: no face), for the page's timeline.
    points: list[tuple[int, float, float | None, float | None]] = field(default_factory=list)

    def as_dict(self, since: int = -1) -> dict[str, Any]:
        """The JSON body; ``points`` only after frame ``since``."""
        elapsed = (self.ended or time.monotonic()) - self.started
        left = None
        if self.state == ANALYSING and self.frames_total and self.fps > 0:
            left = round(max(0, self.frames_total - self.frames_done) / self.fps, 1)
        fraction = None
        if self.frames_total:
            fraction = min(1.0, self.frames_done / self.frames_total)
        if self.state == COMPLETED:
            fraction = 1.0
        start = _first_after(self.points, since)
        return {
            "session_id": self.session_id,
            "state": self.state,
            "frames_done": self.frames_done,
            "frames_total": self.frames_total,
            "fraction": None if fraction is None else round(fraction, 4),
            "video_s": round(self.video_s, 3),
            "duration_s": None if self.duration_s is None else round(self.duration_s, 3),
            "fps": round(self.fps, 2),
            "eta_s": left,
            "elapsed_s": round(elapsed, 2),
            "error": self.error,
            "points": [
                {"frame": f, "time_s": t, "valence": v, "arousal": a}
                for f, t, v, a in self.points[start:]
            ],
        }


def _first_after(points: list[tuple[int, float, Any, Any]], frame: int) -> int:
    """Index of the first point after ``frame`` (points are in frame order)."""
    lo, hi = 0, len(points)
    while lo < hi:
        mid = (lo + hi) // 2
        if points[mid][0] <= frame:
            lo = mid + 1
        else:
            hi = mid
    return lo


class FileAnalysis:
    """One uploaded video being analysed into its session, in a thread of its own."""

    def __init__(
        self,
        source: FrameSource,
        recorder: SessionRecorder,
        engine: Engine,
        folder: Path,
        on_end: Callable[[FileAnalysis], None],
    ) -> None:
        self.source = source
        self.recorder = recorder
        self.engine = engine
        self.folder = folder
        self._on_end = on_end
        assert recorder.session_id is not None
        info = source.info
        every = engine.options.every
        total = -(-info.frame_count // every) if info.frame_count else None
        if engine.options.max_frames:
            total = min(total or engine.options.max_frames, engine.options.max_frames)
        duration = info.frame_count / info.fps if info.frame_count and info.fps else None
        self.progress = FileProgress(recorder.session_id, frames_total=total, duration_s=duration)
        self._stop = threading.Event()
        self._status = INTERRUPTED  # what a stop asks for: cancel, or finish (complete)
        self.thread = threading.Thread(
            target=self._run, name=f"emotrace-file-{recorder.session_id}", daemon=True
        )

    @property
    def session_id(self) -> int:
        """The session this file is analysed into."""
        return self.progress.session_id

    def stop(self, status: str = INTERRUPTED, wait_s: float = CANCEL_WAIT_S) -> None:
        """Stop after the frame being analysed; what was analysed is kept, the session ends
        as ``status``. Waits for the thread (call from a worker thread)."""
        self._status = status
        self._stop.set()
        if threading.current_thread() is not self.thread:
            self.thread.join(wait_s)

    def _on_frame(self, result: FrameResult, overlay: object) -> bool:
        if self._stop.is_set():
            return False  # checked before recording: a cancelled frame is not kept
        self.recorder.record(result.index, result.time_s, result.raw)
        progress = self.progress
        progress.frames_done += 1
        progress.video_s = result.time_s
        elapsed = time.monotonic() - progress.started
        progress.fps = progress.frames_done / elapsed if elapsed > 0 else 0.0
        patient = self.recorder.last_patient
        valence = arousal = None
        if patient is not None:
            probabilities = result.faces.probabilities[[patient]]
            va = RUSSELL_1980.valence_arousal(probabilities, self.engine.classes)
            valence, arousal = round(float(va[0, 0]), 4), round(float(va[0, 1]), 4)
        if len(progress.points) < MAX_POINTS:
            progress.points.append((result.index, round(result.time_s, 3), valence, arousal))
        return not self._stop.is_set()

    def _run(self) -> None:
        from emotrace.video.run import analyze_source

        progress = self.progress
        # The state the page sees changes last: once it is no longer "analysing", the session
        # has ended and the video is gone.
        status, state, error = COMPLETE, COMPLETED, None
        try:
            # This thread's own detector (OpenCV's are not thread-safe), the shared classifier.
            recognizer = self.engine.file_recognizer()
            run = analyze_source(
                self.source,
                self.engine.file_options,
                recognizer,
                on_frame=self._on_frame,
                errors="return",
            )
            if run.error is not None:
                status, state, error = INTERRUPTED, FAILED, _describe(run.error, progress)
            elif self._stop.is_set():
                status = self._status
                state = CANCELLED if status == INTERRUPTED else COMPLETED
        except BaseException as exc:  # Ctrl+C or a failing writer: end it all
            status, state, error = INTERRUPTED, FAILED, _describe(exc, progress)
        finally:
            self.source.close()
            from emotrace.server.uploads import UploadArea

            UploadArea.remove(self.folder)  # the video goes whatever happened
            try:
                self.recorder.close(status)
            except Exception as exc:  # reported in the progress, never raised
                state, error = FAILED, f"the session could not be ended: {exc}"
            progress.ended = time.monotonic()
            progress.error, progress.state = error, state
            self._on_end(self)


def _describe(exc: BaseException, progress: FileProgress) -> str:
    """One sentence for the page."""
    if isinstance(exc, KeyboardInterrupt):
        return "the server was stopped; the frames analysed until then are kept"
    if isinstance(exc, VideoError):
        return (
            f"the video could not be read past {progress.video_s:.1f} s (damaged or truncated "
            "file); the frames analysed until then are kept"
        )
    return f"the analysis failed: {exc}; the frames analysed until then are kept"


class FileSessions:
    """The file sessions this server analyses now, and the last ones that ended, by id."""

    def __init__(self, engine: Engine, writer: WorkspaceWriter, uploads: UploadArea) -> None:
        self.engine = engine
        self.writer = writer
        self.uploads = uploads
        self.running: dict[int, FileAnalysis] = {}
        self.ended: OrderedDict[int, FileProgress] = OrderedDict()
        self._lock = threading.Lock()

    def busy(self) -> bool:
        """Whether another file would be one too many."""
        with self._lock:
            return len(self.running) >= MAX_RUNNING

    def start(
        self,
        video: Path,
        *,
        name: str,
        patient: str,
        consent: bool,
        notes: str = "",
    ) -> FileAnalysis:
        """Open ``video`` (in its upload folder), create the session and start analysing it
        (call from a worker thread). :class:`VideoError` (with :data:`UNREADABLE`) when OpenCV
        cannot read a first frame: no session is made then. The caller removes the folder
        if this raises."""
        from emotrace.video.sources import open_source, quiet_opencv

        quiet_opencv()
        try:
            source = open_source(video, every=self.engine.options.every)
        except VideoError:
            raise VideoError(UNREADABLE) from None
        if source.info.live or source.info.kind != "file":
            source.close()
            raise VideoError(UNREADABLE)
        try:
            recorder = SessionRecorder(
                name,
                patient,
                self.engine.classes,
                workspace=self.writer.path,
                writer=self.writer,
                source="browser:file",
                model=self.engine.file_model_info,
                settings={
                    **self.engine.file_options.record(self.engine.file_classifier),
                    "source": "file",
                    "via": "emotrace serve",
                },
                consent=consent,
                notes=notes,
            ).start()
        except BaseException:
            source.close()
            raise
        analysis = FileAnalysis(source, recorder, self.engine, video.parent, self._ended)
        with self._lock:
            self.running[analysis.session_id] = analysis
        analysis.thread.start()
        return analysis

    def _ended(self, analysis: FileAnalysis) -> None:
        with self._lock:
            self.running.pop(analysis.session_id, None)
            self.ended[analysis.session_id] = analysis.progress
            while len(self.ended) > KEEP_ENDED:
                self.ended.popitem(last=False)
            for old in list(self.ended.values())[:-KEEP_POINTS]:
                old.points = []

    def progress(self, session_id: int) -> FileProgress | None:
        """The analysis of ``session_id``, running or recently ended; ``None`` if unknown."""
        with self._lock:
            analysis = self.running.get(session_id)
            return analysis.progress if analysis is not None else self.ended.get(session_id)

    def stop(self, session_id: int, status: str = INTERRUPTED) -> bool:
        """Stop a running analysis (cancel: ``interrupted``; finish: ``complete``) and wait for
        it; ``False`` when it was not running (call from a worker thread)."""
        with self._lock:
            analysis = self.running.get(session_id)
        if analysis is None:
            return False
        analysis.stop(status)
        return True

    def stop_all(self) -> None:
        """Server shutdown: every running analysis ends as interrupted, its video removed."""
        with self._lock:
            running = list(self.running.values())
        for analysis in running:  # all at once, then wait for each
            analysis.stop(INTERRUPTED, wait_s=0)
        for analysis in running:
            analysis.thread.join(CANCEL_WAIT_S)
