"""A real ``emotrace serve`` in a subprocess; fake-camera video of a real face for Chromium."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from conftest import SHARED, sigint_as_in_a_terminal

FACE_VIDEO = SHARED / "media" / "single_face.mp4"


@dataclass
class Server:
    """A running server: its base URL, token and the URL it printed."""

    process: subprocess.Popen[str]
    base: str
    token: str
    url: str
    workspace: Path
    output: list[str] = field(default_factory=list)

    @property
    def auth(self) -> dict[str, str]:
        """The Authorization header."""
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def ws_base(self) -> str:
        """``ws://127.0.0.1:PORT``."""
        return "ws" + self.base[4:]


def _drain(stream: object, lines: list[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.append(line)


@contextmanager
def running_server(
    workspace: Path,
    *args: str,
    command: str = "serve",
    timeout: float = 90,
    env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """Start ``emotrace serve --port 0`` (or ``live``), wait for its URL, stop it with SIGINT.

    ``env`` adds to (or overrides) the environment, ``BROWSER=true`` by default."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "BROWSER": "true", **(env or {})}
    port_args = () if "--port" in args else ("--port", "0")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emotrace",
            command,
            *port_args,
            "--workspace",
            str(workspace),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        preexec_fn=sigint_as_in_a_terminal,  # stopped with SIGINT below, as Ctrl+C stops it
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    url = None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        found = re.search(r"(http://\S+/\?token=(\S+?))(#\S*)?$", line.strip())
        if found:
            url = found.group(1)
            break
    if url is None:
        process.kill()
        raise AssertionError("the server printed no URL:\n" + "".join(lines))
    threading.Thread(target=_drain, args=(process.stdout, lines), daemon=True).start()
    token = url.split("token=")[1]
    server = Server(process, url.split("/?")[0], token, url, workspace, lines)
    try:
        yield server
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def live_session(server: Server, **fields: Any) -> Iterator[tuple[dict[str, Any], Any]]:
    """A new consented session of patient P-001 (``fields`` added, a ``name`` say) and its live
    WebSocket, past the server's ready message: ``(session, socket)``. Needs httpx and websockets
    (the serve extra), imported here so that modules without them can still use the rest."""
    import json

    import httpx
    from websockets.sync import client as ws_client

    session: dict[str, Any] = httpx.post(
        f"{server.base}/api/v1/sessions",
        json={"patient": "P-001", "consent": True, **fields},
        headers=server.auth,
        timeout=60,
    ).json()
    with ws_client.connect(
        f"{server.ws_base}/api/v1/sessions/{session['id']}/live",
        additional_headers=server.auth,
        open_timeout=30,
    ) as ws:
        assert json.loads(ws.recv(timeout=30))["type"] == "ready"
        yield session, ws


def face_frames(n: int = 30, size: tuple[int, int] = (640, 480)) -> list[np.ndarray]:
    """``n`` BGR frames of a real face: the shared clip when present, else the astronaut photo
    drifting slowly (so the tracker and the smoother see motion)."""
    width, height = size
    frames: list[np.ndarray] = []
    if FACE_VIDEO.is_file():
        capture = cv2.VideoCapture(str(FACE_VIDEO))
        while len(frames) < n:
            ok, image = capture.read()
            if not ok:
                break
            scale = min(width / image.shape[1], height / image.shape[0])
            resized = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            canvas = np.full((height, width, 3), 40, np.uint8)
            y0 = (height - resized.shape[0]) // 2
            x0 = (width - resized.shape[1]) // 2
            canvas[y0 : y0 + resized.shape[0], x0 : x0 + resized.shape[1]] = resized
            frames.append(canvas)
        capture.release()
    if len(frames) < n:
        from skimage import data

        face = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
        face = cv2.resize(face, (400, 400), interpolation=cv2.INTER_AREA)
        frames = []
        for i in range(n):
            canvas = np.full((height, width, 3), 40, np.uint8)
            dx = int(20 * np.sin(2 * np.pi * i / max(n, 1)))
            x0, y0 = (width - 400) // 2 + dx, (height - 400) // 2
            canvas[y0 : y0 + 400, x0 : x0 + 400] = face
            frames.append(canvas)
    return frames


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 15) -> Path:
    """A YUV4MPEG2 (I420) file, the format Chromium's fake camera reads."""
    height, width = frames[0].shape[:2]
    with path.open("wb") as handle:
        handle.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            handle.write(b"FRAME\n")
            handle.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


def jpeg(frame: np.ndarray, quality: int = 80) -> bytes:
    """JPEG bytes of a BGR frame."""
    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()
