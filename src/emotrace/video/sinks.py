"""Where pipeline results go: CSV and JSON Lines records, an annotated video, ``summary.json``.

Records are flushed to the operating system after every frame, so when anything fails later (a
truncated file, Ctrl+C, a crash inside OpenCV) every frame processed before it is on disk. The
summary is written when the outputs close, whether the run completed or not, and says which.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import cv2
import numpy as np

from emotrace.errors import VideoError
from emotrace.video.pipeline import FrameResult, record_columns
from emotrace.video.sources import SourceInfo

CSV_NAME = "frames.csv"
JSONL_NAME = "frames.jsonl"
VIDEO_NAME = "annotated.mp4"
SUMMARY_NAME = "summary.json"
#: A live recording repeats frames to keep real-time playback, but never more than this many
#: seconds' worth at once (after a stall, a frozen picture is not worth megabytes).
MAX_REPEAT_S = 2.0


class RecordWriter:
    """Per-face rows (:meth:`FrameResult.rows`) to ``frames.csv`` and ``frames.jsonl``.

    CSV cells of frames without faces are empty; in JSON Lines they are ``null``.
    """

    def __init__(self, folder: Path, classes: tuple[str, ...]) -> None:
        self.columns = record_columns(classes)
        self.csv_path, self.jsonl_path = folder / CSV_NAME, folder / JSONL_NAME
        self._csv_file: IO[str] = self.csv_path.open("w", newline="", encoding="utf-8")
        self._jsonl: IO[str] = self.jsonl_path.open("w", encoding="utf-8")
        self._csv = csv.DictWriter(self._csv_file, self.columns, extrasaction="raise")
        self._csv.writeheader()
        self.rows = 0

    def write(self, result: FrameResult) -> None:
        """Append the rows of one frame and flush them."""
        rows = result.rows()
        self._csv.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
        self._jsonl.writelines(json.dumps(row, separators=(",", ":")) + "\n" for row in rows)
        # One write() system call per file and frame: cheap, and nothing processed is lost.
        self._csv_file.flush()
        self._jsonl.flush()
        self.rows += len(rows)

    def close(self) -> None:
        """Flush and close both files."""
        self._csv_file.close()
        self._jsonl.close()


class AnnotatedVideoWriter:
    """Annotated frames to an MP4 file (MPEG-4 Part 2 ``mp4v``, which every OpenCV wheel writes).

    The file opens at the first frame (its size decides the video's); later frames of another
    size (a folder of mixed images) are resized to it. ``live=True`` repeats frames so that
    playback runs in real time even though a live source dropped frames.
    """

    def __init__(self, path: Path, fps: float, live: bool = False, codec: str = "mp4v") -> None:
        self.path, self.fps, self.live, self.codec = path, fps, live, codec
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None

    def write(self, image: np.ndarray, time_s: float = 0.0) -> None:
        """Append one BGR frame (``time_s`` matters for live recordings only)."""
        if self._writer is None:
            self._size = (image.shape[1], image.shape[0])
            fourcc = cv2.VideoWriter_fourcc(*self.codec)  # type: ignore[attr-defined]
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, self._size)
            if not self._writer.isOpened():
                self._writer = None
                raise VideoError(f"{self.path}: cannot write a {self.codec} video here")
        if (image.shape[1], image.shape[0]) != self._size:
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        copies = 1
        if self.live and self.frames:
            due = round(time_s * self.fps) + 1  # frames a real-time video has by now
            copies = max(1, min(due - self.frames, round(MAX_REPEAT_S * self.fps)))
        for _ in range(copies):
            self._writer.write(image)
        self.frames += copies

    def close(self) -> None:
        """Finish the file (its index is written now; an unclosed MP4 is unreadable)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None


@dataclass
class RunStats:
    """Counts and per-stage time totals over a run, for ``summary.json``."""

    frames: int = 0
    frames_with_faces: int = 0
    faces: int = 0
    detections: int = 0
    track_ids: set[int] = field(default_factory=set)
    first_time_s: float | None = None
    last_time_s: float = 0.0
    stage_s: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def add(self, result: FrameResult) -> None:
        """Count one processed frame."""
        self.frames += 1
        self.faces += len(result.faces)
        self.frames_with_faces += bool(len(result.faces))
        self.detections += result.detected
        self.track_ids.update(int(t) for t in result.faces.track_ids if t >= 0)
        if self.first_time_s is None:
            self.first_time_s = result.time_s
        self.last_time_s = result.time_s
        for name, seconds in result.timings.as_dict().items():
            self.add_time(name, seconds)

    def add_time(self, stage: str, seconds: float) -> None:
        """Add time spent outside the pipeline (overlay, writing) under ``stage``."""
        self.stage_s[stage] = self.stage_s.get(stage, 0.0) + seconds

    def as_dict(self) -> dict[str, Any]:
        """The figures of ``summary.json``."""
        wall = time.perf_counter() - self.started
        per_frame = max(self.frames, 1)
        return {
            "frames": self.frames,
            "frames_with_faces": self.frames_with_faces,
            "faces": self.faces,
            "tracks": len(self.track_ids),
            "detector_runs": self.detections,
            "video_seconds": round(self.last_time_s - (self.first_time_s or 0.0), 3),
            "wall_seconds": round(wall, 3),
            "processed_fps": round(self.frames / wall, 2) if wall > 0 else 0.0,
            "stages_ms_per_frame": {
                k: round(1000 * v / per_frame, 3) for k, v in self.stage_s.items()
            },
        }


class VideoOutputs:
    """Everything ``analyze`` and ``live --record`` write into one folder, as a context manager.

    >>> with VideoOutputs(out, classes, source.info, annotated=True) as outputs:
    ...     for result in process(source, recognizer):
    ...         outputs.write(result, draw_overlay(result.image, result.faces))

    ``summary.json`` is written on exit in every case: ``completed`` is false and ``error`` holds
    the message when the block raised, ``stop_reason`` says why the run ended (``end``,
    ``stalled``, ``key``, ``interrupted``, ``max-frames``, ``error``; the caller sets it).
    """

    def __init__(
        self,
        folder: Path,
        classes: tuple[str, ...],
        source: SourceInfo,
        *,
        annotated: bool = False,
        fps: float | None = None,
        settings: dict[str, Any] | None = None,
    ) -> None:
        if folder.exists() and not folder.is_dir():
            raise VideoError(f"{folder}: exists and is not a folder")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self.records = RecordWriter(folder, classes)
        except OSError as exc:
            raise VideoError(f"{folder}: cannot write here ({exc.strerror or exc})") from None
        self.folder, self.source, self.settings = folder, source, settings or {}
        self.stats = RunStats()
        self.stop_reason = "end"
        #: Extra figures for the summary (dropped frames, reconnects, ...), set by the caller.
        self.extra: dict[str, Any] = {}
        self.video: AnnotatedVideoWriter | None = None
        self._summary: dict[str, Any] | None = None
        if annotated:
            rate = fps or source.fps or 30.0
            try:
                self.video = AnnotatedVideoWriter(folder / VIDEO_NAME, rate, live=source.live)
            except BaseException:
                self.records.close()
                raise

    def write(self, result: FrameResult, annotated: np.ndarray | None = None) -> None:
        """Record one frame, and append its annotated image when a video is written."""
        t0 = time.perf_counter()
        self.records.write(result)
        self.stats.add(result)  # after the records, so the summary never counts a lost frame
        t1 = time.perf_counter()
        self.stats.add_time("write_records", t1 - t0)
        if self.video is not None and annotated is not None:
            self.video.write(annotated, result.time_s - (self.stats.first_time_s or 0.0))
            self.stats.add_time("write_video", time.perf_counter() - t1)

    def __enter__(self) -> VideoOutputs:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(exc)

    def close(self, error: BaseException | None = None) -> dict[str, Any]:
        """Close every file and write ``summary.json`` (once); returns the summary."""
        if self._summary is not None:
            return self._summary
        self.records.close()
        if self.video is not None:
            self.video.close()
        if isinstance(error, KeyboardInterrupt):
            self.stop_reason = "interrupted"
        elif error is not None:
            self.stop_reason = "error"
        outputs = {"csv": CSV_NAME, "jsonl": JSONL_NAME}
        if self.video is not None and self.video.frames:
            outputs["video"] = VIDEO_NAME
        summary = {
            "source": {
                "name": self.source.name,
                "kind": self.source.kind,
                "live": self.source.live,
                "fps": self.source.fps,
                "frame_count": self.source.frame_count,
                "width": self.source.width,
                "height": self.source.height,
            },
            "settings": self.settings,
            **self.stats.as_dict(),
            **self.extra,
            "completed": error is None,
            "stop_reason": self.stop_reason,
            "error": None if error is None or isinstance(error, KeyboardInterrupt) else str(error),
            "outputs": outputs,
        }
        path = self.folder / SUMMARY_NAME
        path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        self._summary = summary
        return summary
