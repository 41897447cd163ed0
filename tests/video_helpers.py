"""Test videos built from real faces: scikit-image's astronaut and FER2013 images."""

from __future__ import annotations

import http.server
import socketserver
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest

#: The astronaut's head with hair and chin (Haar finds the face inside at about 177, 66, 95, 95).
ASTRONAUT_HEAD = (slice(30, 230), slice(145, 305))


def astronaut_head() -> np.ndarray:
    """BGR crop of Eileen Collins' head from ``skimage.data.astronaut()`` (200 x 160)."""
    data = pytest.importorskip("skimage.data", reason="scikit-image (demo extra) not installed")
    image = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    return np.ascontiguousarray(image[ASTRONAUT_HEAD])


def background(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth coloured gradient with a little noise: no face-like structure."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 70 + 60 * (xx / max(width, 1)) + 30 * (yy / max(height, 1))
    image = np.stack([base, base * 0.9 + 10, base * 0.8 + 20], axis=2)
    image += rng.normal(0, 3, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def paste(frame: np.ndarray, patch: np.ndarray, x: int, y: int) -> np.ndarray:
    """Paste ``patch`` with its top-left corner at ``(x, y)``, clipped at the frame's borders."""
    h, w = patch.shape[:2]
    fx0, fy0 = max(x, 0), max(y, 0)
    fx1, fy1 = min(x + w, frame.shape[1]), min(y + h, frame.shape[0])
    if fx1 > fx0 and fy1 > fy0:
        frame[fy0:fy1, fx0:fx1] = patch[fy0 - y : fy1 - y, fx0 - x : fx1 - x]
    return frame


def head_of_height(height: int) -> np.ndarray:
    """The astronaut's head resized to ``height`` pixels."""
    head = astronaut_head()
    width = round(head.shape[1] * height / head.shape[0])
    return cv2.resize(head, (width, height), interpolation=cv2.INTER_AREA)


Placement = tuple[np.ndarray, int, int]


def render(
    n: int,
    size: tuple[int, int],
    place: Callable[[int], list[Placement]],
    seed: int = 0,
) -> list[np.ndarray]:
    """``n`` frames of ``size`` (width, height): the background plus what ``place(i)`` puts."""
    base = background(*size, seed=seed)
    frames = []
    for i in range(n):
        frame = base.copy()
        for patch, x, y in place(i):
            paste(frame, patch, x, y)
        frames.append(frame)
    return frames


def write_video(
    path: Path, frames: Iterable[np.ndarray], fps: float = 10.0, codec: str = "MJPG"
) -> Path:
    """Write BGR frames with ``cv2.VideoWriter`` (MJPG in .avi by default)."""
    frames = list(frames)
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (width, height))
    assert writer.isOpened(), f"cannot write {codec} to {path}"
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def moving_head_video(
    path: Path,
    n: int = 30,
    size: tuple[int, int] = (320, 240),
    head_height: int = 150,
    fps: float = 10.0,
    codec: str = "MJPG",
) -> Path:
    """One head moving left to right across the frame."""
    head = head_of_height(head_height)
    span = size[0] - head.shape[1]

    def place(i: int) -> list[Placement]:
        return [(head, round(span * i / max(n - 1, 1)), (size[1] - head_height) // 2)]

    return write_video(path, render(n, size, place), fps, codec)


def read_all_frames(path: Path) -> int:
    """How many frames OpenCV decodes from a video file."""
    cap = cv2.VideoCapture(str(path))
    count = 0
    while cap.read()[0]:
        count += 1
    cap.release()
    return count


@contextmanager
def stalling_mjpeg_server(frames: list[np.ndarray]) -> Iterator[str]:
    """A local MJPEG-over-HTTP camera (what IP cameras serve) that sends ``frames`` on each
    connection, then stays connected and silent: a stalled live stream. Yields its URL."""
    jpegs = [cv2.imencode(".jpg", f)[1].tobytes() for f in frames]
    release = threading.Event()

    class Camera(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace;boundary=frame")
            self.end_headers()
            for jpeg in jpegs:
                head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                self.wfile.write(head.encode() + jpeg + b"\r\n")
                self.wfile.flush()
                time.sleep(0.02)
            release.wait(20)  # stall: connected, but no more frames

        def log_message(self, *args: object) -> None:
            pass

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Camera)
    server.daemon_threads = True
    # A short poll: shutdown() waits for the loop to see its flag (0.5 s by default).
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    ).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/camera.mjpg"
    finally:
        release.set()
        server.shutdown()
        server.server_close()


#: The clips of a batch: two patients, three sessions.
BATCH_NAMES = ("p01_week1", "p01_week2", "p02_week1")


def batch_videos(folder: Path) -> Path:
    """Three 12-frame clips of a real face moving across the frame (:data:`BATCH_NAMES`), and a
    corrupt ``.mp4``, in ``folder``."""
    import os

    for i, name in enumerate(BATCH_NAMES):
        moving_head_video(folder / f"{name}.avi", n=12 + i, size=(240, 180), head_height=120)
    (folder / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    return folder
