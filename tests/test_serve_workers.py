"""``emotrace serve --workers``: every core serves, and sessions never mix.

Each inference thread has its own face detector; a session's frames may run on any of them, one
at a time. Two sessions streamed at once over two workers must give exactly what each gives
alone: same faces, same track ids, same probabilities, same records.
"""

from __future__ import annotations

import json
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
ws_client = pytest.importorskip("websockets.sync.client")

from conftest import assert_one_line_error, run_emotrace  # noqa: E402
from serve_helpers import Server, face_frames, jpeg, live_session, running_server  # noqa: E402

pytestmark = pytest.mark.slow


def _stream(server: Server, frames: list[bytes], name: str) -> tuple[int, list[dict[str, Any]]]:
    """A session fed ``frames`` at 15 frames/s of video time; its id and the results."""
    results = []
    with live_session(server, name=name) as (session, ws):
        for i, data in enumerate(frames):
            ws.send(struct.pack("<d", i / 15) + data)
            reply = json.loads(ws.recv(timeout=60))
            assert reply["type"] == "result", reply
            results.append({k: reply[k] for k in ("frame", "time_s", "faces", "patient")})
        ws.send(json.dumps({"type": "stop"}))
        assert json.loads(ws.recv(timeout=30))["type"] == "finished"
    return session["id"], results


def test_two_sessions_at_once_on_two_workers_give_what_each_gives_alone(tmp_path: Path) -> None:
    # Two different streams: the face moving forwards, and the same frames backwards.
    forwards = [jpeg(f) for f in face_frames(16)]
    backwards = forwards[::-1]
    with running_server(tmp_path / "ws", "--workers", "2") as server:
        _, alone_forwards = _stream(server, forwards, "alone-f")
        _, alone_backwards = _stream(server, backwards, "alone-b")
        with ThreadPoolExecutor(2) as pool:
            at_once = list(
                pool.map(
                    lambda job: _stream(server, job[0], job[1]),
                    [(forwards, "together-f"), (backwards, "together-b")],
                )
            )
        (id_f, together_forwards), (id_b, together_backwards) = at_once
        assert together_forwards == alone_forwards
        assert together_backwards == alone_backwards
        assert {face["track_id"] for r in together_forwards for face in r["faces"]} == {1}
        with httpx.Client(base_url=server.base, headers=server.auth, timeout=60) as client:
            for sid in (id_f, id_b):
                info = client.get(f"/api/v1/sessions/{sid}").json()
                assert (info["status"], info["frames"]) == ("complete", 16)


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_workers_must_be_a_positive_count(value: str, tmp_path: Path) -> None:
    assert_one_line_error(run_emotrace("serve", "--workers", value, "--workspace", tmp_path))


def test_the_servers_pipeline_settings_reach_its_sessions(tmp_path: Path) -> None:
    # `live` falling back to the web page used to drop --smooth-window and --max-age: the server
    # built its tracker and smoother with their defaults.
    frames = [jpeg(f) for f in face_frames(3)]
    args = ("--detect-every", "3", "--max-age", "0.5", "--smooth-window", "0.8", "--workers", "1")
    with running_server(tmp_path / "ws", *args) as server:
        sid, _ = _stream(server, frames, "settings")
        info = httpx.get(
            f"{server.base}/api/v1/sessions/{sid}", headers=server.auth, timeout=30
        ).json()
    settings = info["settings"]
    assert (settings["detect_every"], settings["max_age_s"]) == (3, 0.5)
    assert settings["smoothing"] == {"method": "ema", "window_s": 0.8, "hysteresis": 0.1}
    assert settings["detector"] == "yunet" and settings["max_side"] == 640
