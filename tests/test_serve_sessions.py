"""The session rules through the real API: the same answers as the CLI gets."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from emotrace.sessions.recorder import SessionRecorder  # noqa: E402
from serve_helpers import live_session, running_server  # noqa: E402
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
                "detail": "session 'week-1' already exists for patient P-001; choose another name",
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


def test_a_still_group_keeps_its_ids_and_the_chosen_patient_after_a_pause(
    shared_dir: Path, tmp_path: Path
) -> None:
    # The walk-through: a fake camera showing a group photo, a click on face #2, and every track
    # renumbered (ids 1-5 became 6-10) with "No face" shown: the page had paused 1.5 s.
    import json
    import math
    import struct
    import time

    import cv2

    pytest.importorskip("websockets.sync.client")
    photo = cv2.imread(str(shared_dir / "media" / "multi_face.jpg"))
    if photo is None:
        pytest.skip("needs ../shared/media/multi_face.jpg")
    scale = 640 / photo.shape[1]
    frame = cv2.imencode(".jpg", cv2.resize(photo, None, fx=scale, fy=scale))[1].tobytes()
    message = struct.pack("<d", math.nan) + frame
    results = []
    with (
        running_server(tmp_path / "ws", "--workers", "1") as server,
        live_session(server) as (_, ws),
    ):
        for i in range(12):
            if i == 4:
                ws.send(json.dumps({"type": "patient", "track_id": 2}))
            if i == 8:
                time.sleep(1.5)  # longer than a track's 1 s without being seen
            ws.send(message)
            reply = json.loads(ws.recv(timeout=60))
            while reply["type"] != "result":  # the patient message's acknowledgement
                reply = json.loads(ws.recv(timeout=60))
            results.append(reply)
    ids = [sorted(face["track_id"] for face in r["faces"]) for r in results]
    assert ids == [[1, 2, 3, 4, 5]] * 12
    patients = [r["faces"][r["patient"]]["track_id"] for r in results[5:]]
    assert patients == [2] * 7
