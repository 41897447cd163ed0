"""The session rules through the real API: the same answers as the CLI gets."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from emotrace.sessions.recorder import SessionRecorder  # noqa: E402
from serve_helpers import running_server  # noqa: E402
from session_streams import CLASSES  # noqa: E402

pytestmark = pytest.mark.slow


def test_a_taken_name_is_a_409_and_a_session_recorded_elsewhere_cannot_be_finished(
    tmp_path: Path,
) -> None:
    workspace = tmp_path / "ws"
    # Another process's recording (here: this test process, not the server) owns "elsewhere".
    elsewhere = SessionRecorder("elsewhere", "P-001", CLASSES, workspace=workspace).start()
    try:
        with (
            running_server(workspace, "--workers", "1") as server,
            httpx.Client(base_url=server.base, headers=server.auth, timeout=60) as client,
        ):
            body = {"patient": "P-001", "name": "week-1", "consent": True}
            first = client.post("/api/v1/sessions", json=body)
            assert first.status_code == 201, first.text
            again = client.post("/api/v1/sessions", json=body)
            assert again.status_code == 409
            assert again.json() == {
                "error": "conflict",
                "detail": "session 'week-1' already exists; choose another name",
            }
            assert client.get(f"/api/v1/sessions/{first.json()['id']}").json()["status"] == (
                "recording"
            )
            sid = client.get("/api/v1/sessions", params={"patient": "P-001"}).json()[0]["id"]
            refused = client.post(f"/api/v1/sessions/{sid}/finish")
            assert refused.status_code == 409
            assert "being recorded elsewhere" in refused.json()["detail"]
    finally:
        elsewhere.close()
