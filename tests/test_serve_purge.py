"""``DELETE /api/v1/sessions/{id}`` while another process reads the workspace: a real server, a
real second process holding a read transaction, real bytes on disk."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from emotrace.sessions.recorder import SessionRecorder  # noqa: E402
from emotrace.sessions.workspace import resolve_workspace  # noqa: E402
from serve_helpers import running_server  # noqa: E402
from session_streams import CLASSES, db_files, stream  # noqa: E402

pytestmark = pytest.mark.slow

NOTES = "NOTE-PURGE-UNIQUE-7301"

#: A second process that opens a read transaction on the workspace, says so, and keeps it open
#: until a line arrives on its stdin: another emotrace (or sqlite3 shell) reading meanwhile.
READER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN")
print(conn.execute("SELECT count(*) FROM sessions").fetchone()[0], flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
conn.close()
"""


def _leaked(db: Path) -> bool:
    """Whether the deleted session's notes are still anywhere in the database or its WAL."""
    return any(p.exists() and NOTES.encode() in p.read_bytes() for p in db_files(db)[:2])


def test_delete_during_a_read_answers_at_once_and_purges_when_the_reader_leaves(
    tmp_path: Path,
) -> None:
    for name, notes in (("keep", ""), ("gone", NOTES)):
        with SessionRecorder(name, "P-001", CLASSES, workspace=tmp_path, notes=notes) as rec:
            for index, time_s, faces in stream([(3, "happy")]):
                rec.record(index, time_s, faces)
    db = resolve_workspace(tmp_path)
    with (
        running_server(tmp_path) as server,
        httpx.Client(base_url=server.base, headers=server.auth, timeout=60) as client,
    ):
        gone = next(s["id"] for s in client.get("/api/v1/sessions").json() if s["name"] == "gone")
        reader = subprocess.Popen(
            [sys.executable, "-c", READER, str(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert reader.stdout is not None and reader.stdin is not None
            assert reader.stdout.readline().strip() == "2"  # the read transaction is open
            answer: dict[str, httpx.Response | float] = {}

            def delete() -> None:
                start = time.monotonic()
                answer["response"] = client.delete(f"/api/v1/sessions/{gone}")
                answer["took"] = time.monotonic() - start

            deleting = threading.Thread(target=delete)
            deleting.start()
            # Other requests are served while the delete runs (and after, while the purge
            # waits for the reader): none waits on the delete's lock.
            health_times = []
            while deleting.is_alive() or len(health_times) < 3:
                start = time.monotonic()
                assert client.get("/api/v1/health").status_code == 200
                listed = client.get("/api/v1/sessions")
                health_times.append(time.monotonic() - start)
                assert listed.status_code == 200
            deleting.join()
            response = answer["response"]
            assert isinstance(response, httpx.Response)
            assert answer["took"] < 3.0, answer
            assert max(health_times) < 3.0, health_times
            assert response.status_code == 202, response.text
            body = response.json()
            assert body["id"] == gone and body["purged"] is False
            assert "pending" in body["detail"]
            assert [s["name"] for s in client.get("/api/v1/sessions").json()] == ["keep"]
            # The reader still sees its snapshot, so the notes cannot have left the WAL yet.
            assert _leaked(db)
            reader.stdin.write("done\n")
            reader.stdin.flush()
            assert reader.wait(timeout=30) == 0
            # The server finishes the purge on its own, without a restart or another request.
            deadline = time.monotonic() + 20
            while _leaked(db) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not _leaked(db), "the deleted notes are still in the workspace files"
            assert client.get(f"/api/v1/sessions/{gone}").status_code == 404
            assert client.get("/api/v1/health").status_code == 200
        finally:
            if reader.poll() is None:
                reader.kill()
                reader.wait()
    assert any("purge" in line and "pending" in line for line in server.output), server.output
