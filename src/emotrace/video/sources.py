"""Frame sources: a webcam, a video file, an RTSP/HTTP stream, one image or a folder of images.

Every source is an iterator of timestamped :class:`Frame` objects and a context manager. Reading
and decoding run in a capture thread that hands frames over through a bounded queue, so decoding
overlaps with detection and memory stays flat however long the video is.

* Live sources (cameras, live streams) keep only the newest frame: when processing is slower
  than the camera, stale frames are dropped (counted in :attr:`FrameSource.dropped`) so what is
  shown never lags behind reality. When a live source stops delivering, it is reopened a bounded
  number of times, then the iteration ends cleanly (:attr:`FrameSource.stop_reason` is
  ``"stalled"``).
* Files, URLs of finite videos and images are never dropped: the capture thread waits for the
  consumer. ``every=N`` keeps one frame in N (skipped video frames are grabbed, not decoded). A
  video that ends before the frame count in its header raises :class:`VideoError` *after*
  yielding every good frame, so callers can flush what they processed.

Problems opening a source raise :class:`~emotrace.errors.VideoError` with one clear line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from emotrace.data.imageio import is_image_name, read_image
from emotrace.errors import EmotraceError, VideoError
from emotrace.preprocessing import to_bgr
from emotrace.video.capture import CaptureSource
from emotrace.video.frames import Frame, FrameSource, SourceInfo, SourceKind

__all__ = [
    "CaptureSource",
    "Frame",
    "FrameSource",
    "ImageSource",
    "SourceInfo",
    "SourceKind",
    "SourceSpec",
    "open_source",
]

SourceSpec = int | str | Path

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")


class ImageSource(FrameSource):
    """One image, or the images of a folder in name order, as frames ``fps`` apart in time.

    Files that cannot be decoded are skipped and counted in :attr:`skipped`; a folder with no
    readable image at all is a :class:`VideoError`.
    """

    def __init__(
        self, path: Path, *, every: int = 1, fps: float = 1.0, queue_size: int = 4
    ) -> None:
        super().__init__(queue_size)
        self._fps = fps if fps > 0 else 1.0
        if path.is_dir():
            kind: SourceKind = "folder"
            files = sorted((p for p in path.iterdir() if is_image_name(p)), key=_natural_key)
            if not files:
                raise VideoError(f"{path}: folder holds no image files")
        else:
            kind, files = "image", [path]
        self._files = files[:: max(1, every)]
        self._every = max(1, every)
        first = None
        for position, file in enumerate(self._files):
            try:
                first = to_bgr(read_image(file))
                break
            except EmotraceError:
                if kind == "image":
                    raise VideoError(f"{file}: not a readable image") from None
                self.skipped = position + 1
        if first is None:
            raise VideoError(f"{path}: none of the {len(files)} image files is readable")
        self._first: tuple[int, np.ndarray] | None = (self.skipped, first)
        self.info = SourceInfo(
            name=str(path),
            kind=kind,
            live=False,
            fps=self._fps if kind == "folder" else None,
            frame_count=len(files),
            width=int(first.shape[1]),
            height=int(first.shape[0]),
        )

    def _produce(self) -> Iterator[Frame]:
        assert self._first is not None
        start, first = self._first
        self._first = None
        for position in range(start, len(self._files)):
            if position == start:
                image = first
            else:
                try:
                    image = to_bgr(read_image(self._files[position]))
                except EmotraceError:
                    self.skipped += 1
                    continue
            index = position * self._every
            yield Frame(index, round(index / self._fps, 6), image)


def _natural_key(path: Path) -> list[int | str]:
    """Sort ``frame2.png`` before ``frame10.png``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def quiet_opencv() -> None:
    """Silence OpenCV's and FFmpeg's own stderr chatter: errors reach the user as one line."""
    # FFmpeg reads its level once, when OpenCV first opens a video; a user's setting wins.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def open_source(
    source: SourceSpec,
    *,
    every: int = 1,
    timeout_s: float = 10.0,
    reconnects: int = 3,
    image_fps: float = 1.0,
) -> FrameSource:
    """Open what the user named: a camera index (``0`` or ``"0"``), an RTSP/HTTP(S)/… URL, a video
    file, an image file or a folder of images.

    ``every=N`` keeps one frame in N. ``timeout_s`` and ``reconnects`` apply to streams (and
    ``reconnects`` to cameras). ``image_fps`` spaces the timestamps of a folder's images.
    Raises :class:`VideoError` when the source cannot be opened or has no frame.
    """
    if every < 1:
        raise VideoError(f"every must be at least 1, got {every}")
    if isinstance(source, int) or (isinstance(source, str) and source.strip().isdigit()):
        return CaptureSource(int(source), "camera", every=every, reconnects=reconnects)
    text = str(source)
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme:
        if scheme not in STREAM_SCHEMES:
            raise VideoError(
                f"{text}: unsupported stream scheme {scheme!r} (use {', '.join(STREAM_SCHEMES)})"
            )
        return CaptureSource(
            text, "stream", every=every, timeout_s=timeout_s, reconnects=reconnects
        )
    path = Path(text)
    if not path.exists():
        raise VideoError(f"{path}: no such file or folder")
    if path.is_dir() or is_image_name(path):
        return ImageSource(path, every=every, fps=image_fps)
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: empty file (0 bytes)")
    return CaptureSource(path, "file", every=every, timeout_s=timeout_s)
