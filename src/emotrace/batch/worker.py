"""One worker's side of a batch: load the model once, then analyse videos one after another.

A worker runs in a pool process (``local``) or a Ray actor (``ray``). It writes each video's
records into that video's own folder through :func:`emotrace.video.analyze_source` with the
same :class:`~emotrace.video.PipelineOptions` as ``emotrace analyze`` (so the two commands never
drift apart), and returns a small :class:`VideoResult`. It never touches
the session workspace: with sessions, the result carries the raw per-frame faces and the driver,
the workspace's one writer, records them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emotrace.batch.index import IndexRow
from emotrace.results import FaceEmotions
from emotrace.video.options import PipelineOptions

if TYPE_CHECKING:
    from emotrace.video.pipeline import FrameResult

#: A worker reports frame progress at most this often (each report is a message to the driver).
PROGRESS_INTERVAL_S = 0.5


@dataclass(frozen=True)
class VideoJob:
    """One video to analyse: its path, its output folder, and whether to keep raw faces."""

    video: str
    folder: str
    keep_faces: bool = False


@dataclass
class RawFaces:
    """The unsmoothed faces of every processed frame, packed into flat arrays (cheap to send).

    Frame ``i`` has faces ``offsets[i]:offsets[i + 1]`` of ``boxes``, ``probabilities``,
    ``scores`` and ``track_ids``.
    """

    classes: tuple[str, ...]
    frame_index: list[int] = field(default_factory=list)
    time_s: list[float] = field(default_factory=list)
    offsets: list[int] = field(default_factory=lambda: [0])
    boxes: list[np.ndarray] = field(default_factory=list)
    probabilities: list[np.ndarray] = field(default_factory=list)
    scores: list[np.ndarray] = field(default_factory=list)
    track_ids: list[np.ndarray] = field(default_factory=list)

    def add(self, index: int, time_s: float, faces: FaceEmotions) -> None:
        """Append one frame."""
        self.frame_index.append(index)
        self.time_s.append(time_s)
        self.offsets.append(self.offsets[-1] + len(faces))
        if len(faces):
            self.boxes.append(faces.boxes.astype(np.int32))
            self.probabilities.append(faces.probabilities.astype(np.float32))
            self.scores.append(faces.scores.astype(np.float32))
            self.track_ids.append(faces.track_ids.astype(np.int64))

    def pack(self) -> None:
        """Concatenate the per-frame arrays (call once, before sending)."""
        k = len(self.classes)
        self.boxes = [np.concatenate(self.boxes) if self.boxes else np.zeros((0, 4), np.int32)]
        self.probabilities = [
            np.concatenate(self.probabilities) if self.probabilities else np.zeros((0, k))
        ]
        self.scores = [np.concatenate(self.scores) if self.scores else np.zeros(0, np.float32)]
        self.track_ids = [
            np.concatenate(self.track_ids) if self.track_ids else np.zeros(0, np.int64)
        ]

    def frames(self) -> list[tuple[int, float, FaceEmotions]]:
        """``(frame_index, time_s, faces)`` per frame, as a session recorder takes them."""
        self.pack()
        out = []
        for i, (index, time_s) in enumerate(zip(self.frame_index, self.time_s, strict=True)):
            a, b = self.offsets[i], self.offsets[i + 1]
            faces = FaceEmotions(
                boxes=self.boxes[0][a:b],
                probabilities=self.probabilities[0][a:b],
                classes=self.classes,
                scores=self.scores[0][a:b],
                track_ids=self.track_ids[0][a:b],
            )
            out.append((index, time_s, faces))
        return out


@dataclass
class VideoResult(IndexRow):
    """How one video went: its index row (``status``: ``complete`` or ``failed``; ``faces``:
    how many were found; the driver fills in ``session``), plus ``summary``: the video's
    ``summary.json`` (when its records were opened) and ``raw_faces``: raw faces for its
    session."""

    summary: dict[str, Any] | None = None
    raw_faces: RawFaces | None = None


def describe(exc: BaseException) -> str:
    """One line for the index: emotrace's own messages as they are, others with their type."""
    from emotrace.errors import EmotraceError

    text = " ".join(str(exc).split())
    if isinstance(exc, EmotraceError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class VideoAnalyzer:
    """A model loaded once, analysing one video per :meth:`analyze` call.

    ``options``: the pipeline options of ``emotrace analyze``, with ``threads`` the OpenCV and
    onnxruntime threads of this worker.
    """

    def __init__(self, options: PipelineOptions) -> None:
        from emotrace.video.sources import quiet_opencv

        quiet_opencv()
        self.options = options
        self.recognizer = options.recognizer()
        self.settings = options.record(self.recognizer)

    def analyze(self, job: VideoJob, progress: Callable[[int], None] | None = None) -> VideoResult:
        """Analyse ``job.video`` into ``job.folder``; never raises for a bad video (the result
        says ``failed`` and why). ``progress(n)`` is told about processed frames now and then."""
        from emotrace.video import VideoOutputs, analyze_source, open_source

        started = time.perf_counter()
        result = VideoResult(job.video, job.folder, "failed")
        classes = self.recognizer.classifier.classes
        raw = RawFaces(classes) if job.keep_faces else None
        done = reported = 0
        last_report = time.monotonic()

        def on_frame(frame: FrameResult, overlay: Any) -> None:
            nonlocal done, reported, last_report
            done += 1
            if raw is not None:
                raw.add(frame.index, frame.time_s, frame.raw)
            if progress is not None and time.monotonic() - last_report > PROGRESS_INTERVAL_S:
                progress(done - reported)
                reported, last_report = done, time.monotonic()

        try:
            source = open_source(job.video, every=self.options.every)
            info = source.info
            try:
                outputs = VideoOutputs(
                    Path(job.folder),
                    classes,
                    info,
                    fps=info.fps / self.options.every if info.fps else None,
                    settings=self.settings,
                )
            except BaseException:
                source.close()
                raise
            # A bad video never stops the batch: its error is returned, indexed, and the next
            # video goes on (Ctrl+C still ends the worker; the summary says so).
            run = analyze_source(
                source, self.options, self.recognizer, outputs=outputs, on_frame=on_frame,
                errors="return",
            )  # fmt: skip
        except Exception as exc:  # the video could not be opened, or its folder written
            result.error = describe(exc)
        else:
            summary = run.summary or {}
            result.summary = summary
            result.frames = int(summary["frames"])
            result.faces = int(summary["faces"])
            result.processed_fps = float(summary["processed_fps"])
            if run.error is not None:
                result.error = describe(run.error)
            else:
                result.status = "complete"
                if raw is not None:
                    raw.pack()
                    result.raw_faces = raw
        if progress is not None and result.frames > reported:
            progress(result.frames - reported)
        result.seconds = round(time.perf_counter() - started, 3)
        return result
