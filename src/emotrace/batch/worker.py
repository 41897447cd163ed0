"""One worker's side of a batch: load the model once, then analyse videos one after another.

A worker runs in a pool process (``local``) or a Ray actor (``ray``). It writes each video's
records into that video's own folder through :func:`emotrace.video.analyze_source` with the
same :class:`~emotrace.video.PipelineOptions` as ``emotrace analyze`` (so the two commands never
drift apart), and returns a small :class:`VideoResult`. It never touches
the session workspace: with sessions, the result carries the raw per-frame faces and the driver,
the workspace's one writer, records them.

Without a shared filesystem (:meth:`VideoAnalyzer.analyze_sent`, the ``send`` transfer) the
worker gets the video's bytes (from the driver, in chunks through Ray's object store) or reads it
from a URL itself, decodes a private copy in a temporary folder of its own, and returns the
records' bytes in the result: the driver alone writes ``OUT_DIR``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emotrace.batch.index import IndexRow
from emotrace.batch.inputs import url_scheme
from emotrace.results import FaceEmotions
from emotrace.video.options import PipelineOptions

if TYPE_CHECKING:
    from emotrace.video.pipeline import FrameResult

#: A worker reports frame progress at most this often (each report is a message to the driver).
PROGRESS_INTERVAL_S = 0.5
#: The ``send`` transfer moves a video in pieces of this size (one object each in Ray's store),
#: so neither the driver nor a worker ever holds a whole video in memory.
CHUNK_BYTES = 8 * 2**20
#: Default largest video the ``send`` transfer moves (``--max-send-mb``): the videos in flight
#: sit in the object store (by default 30 % of each node's memory) until their worker is done.
MAX_SEND_MB = 2048


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
    #: The ``send`` transfer: the records' bytes by file name, for the driver to write.
    files: dict[str, bytes] | None = None


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
        sweep_stale_copies()
        self.options = options
        self.recognizer = options.recognizer()
        self.settings = options.record(self.recognizer.classifier)

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

    def analyze_sent(
        self,
        job: VideoJob,
        chunks: Iterable[bytes],
        progress: Callable[[int], None] | None = None,
    ) -> VideoResult:
        """Analyse a video that is not on this machine's filesystem: ``chunks`` are its bytes
        (sent by the driver, or :func:`read_url`), ``job.video`` only names it. The bytes go to a
        private file (mode 0600 in a fresh 0700 folder, removed afterwards: videos of patients),
        the records into that folder, and the result carries the records' bytes in ``files``;
        nothing is written anywhere else. Never raises for a bad video."""
        started = time.perf_counter()
        tmp = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-"))  # 0700: this user
        try:
            video = tmp / ("video" + Path(job.video.split("?", 1)[0]).suffix[:16])
            try:
                _write_private(video, chunks)
            except Exception as exc:
                result = VideoResult(job.video, job.folder, "failed")
                result.error = f"{job.video}: cannot read it ({describe(exc)})"
            else:
                records = tmp / "records"
                result = self.analyze(VideoJob(str(video), str(records), job.keep_faces), progress)
                result.video, result.folder = job.video, job.folder
                result.error = result.error.replace(str(video), job.video)
                if result.summary is not None:
                    result.summary["source"]["name"] = job.video
                result.files = _collect(records, job.video)
            result.seconds = round(time.perf_counter() - started, 3)
            return result
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


#: A worker's private copies live in ``<temp>/emotrace-batch-<pid>-<random>/``.
TEMP_PREFIX = "emotrace-batch-"


def sweep_stale_copies(folder: str | None = None) -> list[Path]:
    """Remove the private copies left by workers that were killed mid-video (a node lost, a
    SIGKILL): folders in the temp folder whose worker process is gone. Returns them."""
    removed = []
    for path in Path(folder or tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*-*"):
        pid = path.name[len(TEMP_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or not path.is_dir() or path.stat().st_uid != os.getuid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        except OSError:  # alive, another user's
            continue
    return removed


def _write_private(path: Path, chunks: Iterable[bytes]) -> None:
    """Write ``chunks`` into a new file that only this user can read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        for chunk in chunks:
            handle.write(chunk)


def _collect(records: Path, video: str) -> dict[str, bytes]:
    """The bytes of every record file, ``summary.json`` naming ``video`` as its source."""
    from emotrace.video.sinks import SUMMARY_NAME

    if not records.is_dir():
        return {}
    summary = records / SUMMARY_NAME
    if summary.is_file():
        data = json.loads(summary.read_text(encoding="utf-8"))
        data["source"]["name"] = video
        summary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return {p.name: p.read_bytes() for p in sorted(records.iterdir()) if p.is_file()}


def read_url(url: str) -> Iterator[bytes]:
    """The bytes at ``url`` in chunks: ``http(s)`` with the standard library, object stores
    (``s3://``, ``gs://``, ``abfs://``, ``hdfs://``) through ``pyarrow.fs`` with the usual
    credentials of the worker's machine."""
    scheme = url_scheme(url)
    if scheme in ("http", "https"):
        import urllib.request

        with urllib.request.urlopen(url, timeout=60) as response:
            while chunk := response.read(CHUNK_BYTES):
                yield chunk
        return
    filesystem, path = filesystem_for(url)
    with filesystem.open_input_stream(path) as stream:
        while chunk := stream.read(CHUNK_BYTES):
            yield chunk


def filesystem_for(url: str) -> tuple[Any, str]:
    """pyarrow's filesystem for ``url`` and the path in it (what Ray's own storage uses)."""
    from emotrace.errors import MissingDependencyError

    try:
        from pyarrow import fs
    except ImportError:
        raise MissingDependencyError(
            f"{url_scheme(url)}:// URLs are read through pyarrow's filesystems; install pyarrow "
            "(with its support for the store) on every node"
        ) from None
    return fs.FileSystem.from_uri(url)
