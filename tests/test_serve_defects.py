"""Issue 33 ("The clinician's app you can trust"), against the real API and CLI: recording needs
consent (4), notes stay out of reports unless asked for (16), a session no page streams into
ends as interrupted (17). The page's side is in ``test_serve_page.py``.

The module's server has a 2 s idle timeout (``EMOTRACE_SERVE_IDLE_TIMEOUT_S``), so a session
nobody streams into is interrupted within seconds instead of 2 minutes.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
ws_client = pytest.importorskip("websockets.sync.client")
ws_exceptions = pytest.importorskip("websockets.exceptions")

from conftest import assert_one_line_error, run_emotrace  # noqa: E402
from conftest import run_emotrace_in_process as emotrace  # noqa: E402
from serve_helpers import Server, running_server  # noqa: E402

pytestmark = pytest.mark.slow
IDLE_S = 2.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"EMOTRACE_SERVE_IDLE_TIMEOUT_S": str(IDLE_S)}
    with running_server(tmp_path_factory.mktemp("serve-defects"), env=env) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, headers=server.auth, timeout=60) as c:
        yield c


def create(client: httpx.Client, name: str, **fields: Any) -> dict[str, Any]:
    # Names are unique per workspace; the suffix lets a test run again on the module's server.
    body = {"patient": "P-033", "name": f"{name}-{time.monotonic_ns()}", "consent": True}
    response = client.post("/api/v1/sessions", json={**body, **fields})
    assert response.status_code == 201, response.text
    session: dict[str, Any] = response.json()
    return session


def status_within(client: httpx.Client, sid: int, status: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        info: dict[str, Any] = client.get(f"/api/v1/sessions/{sid}").json()
        if info["status"] == status or time.monotonic() > deadline:
            return info
        time.sleep(0.1)


@contextmanager
def connect(server: Server, sid: int) -> Iterator[Any]:
    """The live socket of session ``sid``, once the server said ``ready``."""
    with ws_client.connect(
        f"{server.ws_base}/api/v1/sessions/{sid}/live",
        additional_headers=server.auth,
        open_timeout=30,
    ) as ws:
        ready = json.loads(ws.recv(timeout=30))
        assert ready["type"] == "ready" and 0 < ready["heartbeat_s"] < IDLE_S, ready
        yield ws


# -- 4: consent ------------------------------------------------------------------------------


@pytest.mark.parametrize("consent", [{}, {"consent": False}], ids=["missing", "false"])
def test_recording_without_consent_is_refused_with_one_message(
    client: httpx.Client, consent: dict[str, Any]
) -> None:
    before = client.get("/api/v1/sessions").json()
    response = client.post("/api/v1/sessions", json={"patient": "P-033", "name": "nc", **consent})
    assert response.status_code == 422, response.text
    body = response.json()
    assert set(body) == {"error", "detail"} and isinstance(body["detail"], str), body
    assert "consent" in body["detail"]
    assert client.get("/api/v1/sessions").json() == before  # nothing recorded


def test_an_interrupted_session_without_consent_is_not_resumed(
    server: Server, client: httpx.Client
) -> None:
    sid = create(client, name="withdrawn")["id"]
    assert status_within(client, sid, "interrupted", timeout=IDLE_S + 15)["status"] == "interrupted"
    assert client.patch(f"/api/v1/sessions/{sid}", json={"consent": False}).status_code == 200
    with pytest.raises(ws_exceptions.InvalidStatus) as refused:
        ws_client.connect(
            f"{server.ws_base}/api/v1/sessions/{sid}/live", additional_headers=server.auth
        )
    assert refused.value.response.status_code == 409
    assert b"consent" in refused.value.response.body
    assert client.get(f"/api/v1/sessions/{sid}").json()["status"] == "interrupted"
    assert client.patch(f"/api/v1/sessions/{sid}", json={"consent": True}).status_code == 200
    with connect(server, sid) as ws:
        ws.send(json.dumps({"type": "stop"}))
        assert json.loads(ws.recv(timeout=30))["type"] == "finished"


@pytest.mark.parametrize(
    "command",
    [
        ["analyze", "call.avi", "--session", "s1", "--patient", "P-1"],
        ["live", "--no-window", "--camera", "call.avi", "--session", "s1", "--patient", "P-1"],
    ],
    ids=["analyze", "live"],
)
def test_the_cli_records_a_session_only_with_consent(tmp_path: Path, command: list[str]) -> None:
    result = emotrace(*command, "--workspace", tmp_path / "ws", cwd=tmp_path)
    assert_one_line_error(result, "--session needs --consent (the patient's consent to record)")
    assert list(tmp_path.iterdir()) == []  # nothing opened or written


# -- 16: notes -------------------------------------------------------------------------------

NOTES = "private-note-7f3a: mentions her sister"


def test_notes_stay_out_of_the_api_report_unless_asked_for(client: httpx.Client) -> None:
    sid = create(client, name="notes-api", notes=NOTES)["id"]
    assert client.post(f"/api/v1/sessions/{sid}/finish").status_code == 200
    plain = client.get(f"/api/v1/sessions/{sid}/report")
    assert plain.status_code == 200 and NOTES not in plain.text and 'id="notes"' not in plain.text
    download = client.get(f"/api/v1/sessions/{sid}/report", params={"download": "true"})
    assert download.status_code == 200 and NOTES not in download.text
    asked = client.get(f"/api/v1/sessions/{sid}/report", params={"notes": "true"})
    assert asked.status_code == 200 and NOTES in asked.text
    for fmt in ("csv", "jsonl"):
        assert NOTES not in client.get(f"/api/v1/sessions/{sid}/export?format={fmt}").text
    bad = client.get(f"/api/v1/sessions/{sid}/report", params={"notes": "maybe"})
    assert bad.status_code == 422 and set(bad.json()) == {"error", "detail"}
    # The PDF is printed from the same HTML; its notes parameter is documented like the page's.
    schema = client.get("/api/v1/openapi.json").json()
    pdf_params = schema["paths"]["/api/v1/sessions/{session_id}/report.pdf"]["get"]["parameters"]
    assert "notes" in {p["name"] for p in pdf_params}


def test_notes_stay_out_of_the_cli_report_unless_asked_for(tmp_path: Path) -> None:
    from emotrace.sessions.recorder import SessionRecorder
    from session_streams import CLASSES, stream

    workspace = tmp_path / "ws"
    with SessionRecorder("week-1", "P-017", CLASSES, workspace=workspace, notes=NOTES) as rec:
        for index, time_s, faces in stream([(10, "happy")]):
            rec.record(index, time_s, faces)
    plain = emotrace("report", "week-1", "-o", "plain.html", "--workspace", workspace, cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert NOTES not in (tmp_path / "plain.html").read_text()
    asked = emotrace(
        "report", "week-1", "--notes", "-o", "notes.html", "--workspace", workspace, cwd=tmp_path
    )
    assert asked.returncode == 0, asked.stderr
    assert NOTES in (tmp_path / "notes.html").read_text()


# -- 17: sessions nobody streams into --------------------------------------------------------


def test_a_session_never_streamed_becomes_interrupted(client: httpx.Client) -> None:
    sids = [create(client, name=f"never-{i}")["id"] for i in range(3)]
    for sid in sids:
        info = status_within(client, sid, "interrupted", timeout=IDLE_S + 15)
        assert info["status"] == "interrupted" and not info["live"], info
    recording = client.get("/api/v1/sessions", params={"status": "recording"}).json()
    assert [s["id"] for s in recording if s["id"] in sids] == []


def test_a_silent_socket_is_closed_and_its_session_interrupted(
    server: Server, client: httpx.Client
) -> None:
    sid = create(client, name="silent")["id"]
    with connect(server, sid) as ws, pytest.raises(ws_exceptions.ConnectionClosed):
        ws.recv(timeout=IDLE_S + 15)  # the server closes it: no message came
    info = status_within(client, sid, "interrupted", timeout=10)
    assert info["status"] == "interrupted" and not info["live"], info


def test_heartbeats_keep_a_paused_session_recording(server: Server, client: httpx.Client) -> None:
    sid = create(client, name="paused")["id"]
    with connect(server, sid) as ws:
        ws.send(json.dumps({"type": "pause"}))
        assert json.loads(ws.recv(timeout=30))["type"] == "paused"
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(IDLE_S / 8):
                ws.send(json.dumps({"type": "heartbeat"}))

        beating = threading.Thread(target=beat, daemon=True)
        beating.start()
        try:
            with pytest.raises(TimeoutError):
                ws.recv(timeout=3 * IDLE_S)  # a heartbeat gets no answer, and nothing closes
        finally:
            stop.set()
            beating.join()
        info = client.get(f"/api/v1/sessions/{sid}").json()
        assert info["status"] == "recording" and info["live"], info
        ws.send(json.dumps({"type": "stop"}))
        assert json.loads(ws.recv(timeout=30))["type"] == "finished"
    assert client.get(f"/api/v1/sessions/{sid}").json()["status"] == "complete"


@pytest.mark.parametrize("value", ["soon", "0"])
def test_a_bad_idle_timeout_is_a_one_line_error(tmp_path: Path, value: str) -> None:
    result = run_emotrace(
        "serve", "--workspace", tmp_path, env={"EMOTRACE_SERVE_IDLE_TIMEOUT_S": value}, timeout=60
    )
    assert_one_line_error(result, "EMOTRACE_SERVE_IDLE_TIMEOUT_S", "seconds > 0")
