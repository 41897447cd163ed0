"""One writer thread per workspace: several recordings, their rows, markers and heartbeats."""

from __future__ import annotations

import os
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from emotrace.errors import SessionError, StoreError
from emotrace.sessions.recorder import SessionRecorder
from emotrace.sessions.store import SessionStore
from emotrace.sessions.writer import WorkspaceWriter
from session_streams import CLASSES, stream


def test_recordings_sharing_a_writer_keep_their_own_rows_in_order(tmp_path: Path) -> None:
    with WorkspaceWriter(tmp_path, commit_interval_s=0.05) as writer:
        a = SessionRecorder("a", "P-001", CLASSES, workspace=tmp_path, writer=writer).start()
        b = SessionRecorder("b", "P-002", CLASSES, workspace=tmp_path, writer=writer).start()
        frames_a = list(stream([(2.0, "happy")]))
        frames_b = list(stream([(1.0, "sad"), (1.0, None)]))
        for (ia, ta, fa), (ib, tb, fb) in zip(frames_a, frames_b, strict=True):
            a.record(ia, ta, fa)
            b.record(ib, tb, fb)
        a.mark("exercise")
        info_a, info_b = a.close(), b.close()  # each ends after its own last frame is stored
        assert writer.failed is None
    seen_b = sum(len(faces) for _, _, faces in frames_b)
    assert (info_a.frames, info_a.visible_frames, info_a.markers) == (len(frames_a),) * 2 + (1,)
    assert (info_b.frames, info_b.visible_frames) == (len(frames_b), seen_b)
    assert 0 < seen_b < len(frames_b)
    with SessionStore(tmp_path, readonly=True) as store:
        assert store.load("a").frames.tolist() == [i for i, _, _ in frames_a]
        assert store.load("b").visible.sum() == seen_b
        assert [m.label for m in store.markers(info_a.id)] == ["exercise"]


def test_a_failing_call_fails_only_its_caller(tmp_path: Path) -> None:
    with WorkspaceWriter(tmp_path) as writer:
        with pytest.raises(SessionError, match="no session 'nope'"):
            writer.call(lambda store: store.get("nope"))
        assert writer.call(lambda store: store.path) == tmp_path / "workspace.db"
        assert writer.failed is None
    with pytest.raises(StoreError, match="not running"):
        writer.call(lambda store: None)


def test_an_open_recording_keeps_its_heartbeat_while_no_frame_comes(tmp_path: Path) -> None:
    with WorkspaceWriter(tmp_path) as writer:
        recorder = SessionRecorder("idle", "P-001", CLASSES, workspace=tmp_path, writer=writer)
        recorder.start()
        with SessionStore(tmp_path, readonly=True) as store:
            first = store.conn.execute("SELECT heartbeat FROM sessions").fetchone()[0]
            deadline = time.monotonic() + 5
            while store.conn.execute("SELECT heartbeat FROM sessions").fetchone()[0] == first:
                assert time.monotonic() < deadline, "no heartbeat in 5 s"
                time.sleep(0.1)
            assert store.get("idle").status == "recording"
        recorder.close()


def test_a_server_writes_every_session_through_one_connection(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    pytest.importorskip("websockets.sync.client")
    import json
    import struct

    from serve_helpers import face_frames, jpeg, live_session, running_server

    frame = struct.pack("<d", float("nan")) + jpeg(face_frames(1)[0])
    with running_server(tmp_path / "ws", "--workers", "1") as server:
        fds = Path(f"/proc/{server.process.pid}/fd")
        database = (tmp_path / "ws" / "workspace.db").resolve()
        idle = [f for f in fds.iterdir() if _target(f) == database]
        sockets = ExitStack()
        for i in range(3):
            _, ws = sockets.enter_context(live_session(server, name=f"s{i}"))
            ws.send(frame)
            assert json.loads(ws.recv(timeout=60))["type"] == "result"
        recording = [f for f in fds.iterdir() if _target(f) == database]
        sockets.close()
    # Three live sessions write through the server's one writing connection: before, every
    # session opened a connection (and a writer thread) of its own.
    assert len(recording) == len(idle) > 0, (idle, recording)


def _target(link: Path) -> Path | None:
    try:
        return Path(os.readlink(link))
    except OSError:
        return None
