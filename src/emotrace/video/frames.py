"""Timestamped frames and the capture-thread machinery every frame source shares.

A source opens and validates itself in ``__init__`` (so errors surface before the first frame
is asked for), then :meth:`FrameSource._produce` runs in a capture thread that hands frames over
through a bounded queue. Live sources keep only the newest frame (stale ones are dropped and
counted); files wait for the consumer.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from emotrace.errors import EmotraceError, VideoError

SourceKind = Literal["camera", "stream", "file", "image", "folder"]


@dataclass(frozen=True)
class Frame:
    """One decoded frame.

    ``index``: position in the source (0-based; gaps show frames skipped by ``every`` or dropped
    by a live source). ``time_s``: seconds since the start: the container's timestamp for files,
    ``index / fps`` for image folders, wall-clock time since the first frame for live sources.
    ``image``: BGR uint8 ``HxWx3``.
    """

    index: int
    time_s: float
    image: np.ndarray


@dataclass(frozen=True)
class SourceInfo:
    """What is known about a source once it is open.

    ``live``: frames arrive in real time (cameras, live streams): stale ones are dropped and a
    stalled source is reopened. A URL to a finite video (its container knows the frame count) is
    not live: it is read like a file. ``fps``: nominal frame rate (``None`` when the source does
    not say). ``frame_count``: frames in a file or images in a folder (``None`` when unknown).
    ``width``/``height``: of the first frame.
    """

    name: str
    kind: SourceKind
    live: bool
    fps: float | None
    frame_count: int | None
    width: int
    height: int


class _End:
    """Marks the end of the frame queue."""


_END = _End()


class FrameSource:
    """Base class: runs :meth:`_produce` in a capture thread and yields its frames.

    Subclasses set :attr:`info` in ``__init__`` (opening and validating the source there, so
    errors surface before the first frame is requested) and implement :meth:`_produce`.
    A source can be iterated once; :meth:`close` (or leaving the ``with`` block) stops the thread.
    """

    info: SourceInfo

    def __init__(self, queue_size: int = 8) -> None:
        #: Frames a live source dropped because processing was slower than capture.
        self.dropped = 0
        #: Times a live source was reopened after it stopped delivering frames.
        self.reconnects = 0
        #: Images in a folder that could not be decoded (skipped).
        self.skipped = 0
        #: Seconds the capture thread spent producing frames (reading, decoding, and for live
        #: sources waiting for the device): the decode stage, which overlaps with processing.
        self.capture_seconds = 0.0
        #: Why iteration ended: ``"end"``, ``"stalled"`` (live source gone after reconnecting),
        #: ``"closed"`` (the consumer stopped first) or ``"error"``.
        self.stop_reason = "end"
        self._queue_size = queue_size
        self._queue: queue.Queue[Frame | _End | BaseException] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ended = False

    # -- to implement -------------------------------------------------------------------------
    def _produce(self) -> Iterator[Frame]:
        """Yield frames; runs in the capture thread. Raise :class:`VideoError` on failure."""
        raise NotImplementedError

    def _release(self) -> None:
        """Free the underlying device or file (called once, from whichever thread ends last)."""

    # -- iteration ----------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Frame]:
        if self._thread is not None or self._stop.is_set():
            raise VideoError(f"{self.info.name}: a frame source can be iterated only once")
        # Live sources keep one frame: the newest. Files wait for the consumer instead.
        self._queue = queue.Queue(maxsize=1 if self.info.live else self._queue_size)
        self._thread = threading.Thread(
            target=self._capture, name=f"emotrace-capture-{self.info.kind}", daemon=True
        )
        self._thread.start()
        return self._consume(self._queue)

    def _consume(self, frames: queue.Queue[Frame | _End | BaseException]) -> Iterator[Frame]:
        try:
            while True:
                try:
                    # A timeout keeps Ctrl+C responsive while waiting for a slow camera.
                    item = frames.get(timeout=0.25)
                except queue.Empty:
                    continue
                if isinstance(item, _End):
                    self._ended = True
                    return
                if isinstance(item, BaseException):
                    self._ended, self.stop_reason = True, "error"
                    raise item
                yield item
        finally:
            self.close()

    def _capture(self) -> None:
        try:
            frames = self._produce()
            while not self._stop.is_set():
                started = time.perf_counter()
                frame = next(frames, None)
                self.capture_seconds += time.perf_counter() - started
                if frame is None or self._stop.is_set():
                    break
                self._put(frame)
        except EmotraceError as exc:
            self._put(exc)
        except Exception as exc:  # OpenCV and the OS raise many types; report them as one line
            self._put(VideoError(f"{self.info.name}: reading failed ({type(exc).__name__}: {exc})"))
        finally:
            self._release()
            self._put(_END)

    def _put(self, item: Frame | _End | BaseException) -> None:
        assert self._queue is not None
        if self.info.live:
            while True:  # replace whatever is waiting: the newest frame wins
                try:
                    self._queue.put_nowait(item)
                    return
                except queue.Full:
                    try:
                        if isinstance(self._queue.get_nowait(), Frame):
                            self.dropped += 1
                    except queue.Empty:
                        pass
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        """Stop capturing and release the source (safe to call more than once)."""
        if self._thread is not None and not self._ended:
            self.stop_reason = "closed"  # the consumer stopped before the source ended
        self._stop.set()
        if self._thread is None:
            self._release()
            return
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
