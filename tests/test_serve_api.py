"""``emotrace serve``: the REST API and the live WebSocket against a real server process.

One server (on a free loopback port, 1 MB upload limit) serves the whole module; each test makes
its own sessions.
"""

from __future__ import annotations

import json
import math
import sqlite3
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
ws_client = pytest.importorskip("websockets.sync.client")

from conftest import assert_one_line_error, run_emotrace  # noqa: E402
from serve_helpers import Server, face_frames, jpeg, running_server  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workspace = tmp_path_factory.mktemp("serve-api")
    with running_server(workspace, "--max-upload-mb", "1") as running:
        yield running


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, headers=server.auth, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def frames() -> list[bytes]:
    return [jpeg(f) for f in face_frames(12)]


def frame_message(data: bytes, time_s: float = math.nan) -> bytes:
    return struct.pack("<d", time_s) + data


def new_session(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    body = {"patient": "P-001", "consent": True, **fields}
    response = client.post("/api/v1/sessions", json=body)
    assert response.status_code == 201, response.text
    session: dict[str, Any] = response.json()
    return session


def stream(server: Server, session_id: int, frames: list[bytes], **kw: Any) -> list[dict[str, Any]]:
    """Send ``frames`` over the live socket, one at a time; the results."""
    results = []
    with ws_client.connect(
        f"{server.ws_base}/api/v1/sessions/{session_id}/live",
        additional_headers=server.auth,
        open_timeout=30,
    ) as ws:
        ready = json.loads(ws.recv(timeout=30))
        assert ready["type"] == "ready"
        results.append(ready)
        for data in frames:
            ws.send(frame_message(data))
            results.append(json.loads(ws.recv(timeout=60)))
        if kw.get("stop"):
            ws.send(json.dumps({"type": "stop"}))
            results.append(json.loads(ws.recv(timeout=30)))
    return results


def wait_status(client: httpx.Client, sid: int, status: str, timeout: float = 15) -> dict[str, Any]:
    """The session once it has ``status`` (the server notices a closed socket asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        info: dict[str, Any] = client.get(f"/api/v1/sessions/{sid}").json()
        if info["status"] == status or time.monotonic() > deadline:
            return info
        time.sleep(0.1)


def assert_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "detail"}, body
    return body


# -- access ----------------------------------------------------------------------------------

ENDPOINTS = [
    ("GET", "/api/v1/info"),
    ("POST", "/api/v1/analyze"),
    ("GET", "/api/v1/sessions"),
    ("POST", "/api/v1/sessions"),
    ("GET", "/api/v1/sessions/1"),
    ("PATCH", "/api/v1/sessions/1"),
    ("POST", "/api/v1/sessions/1/finish"),
    ("DELETE", "/api/v1/sessions/1"),
    ("GET", "/api/v1/sessions/1/markers"),
    ("POST", "/api/v1/sessions/1/markers"),
    ("PATCH", "/api/v1/sessions/1/markers/1"),
    ("DELETE", "/api/v1/sessions/1/markers/1"),
    ("GET", "/api/v1/sessions/1/records"),
    ("GET", "/api/v1/sessions/1/export"),
    ("GET", "/api/v1/sessions/1/report"),
    ("GET", "/api/v1/sessions/1/report.pdf"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/nowhere"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_needs_the_token(server: Server, method: str, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Cookie": "emotrace_token=wrong"}):
        response = httpx.request(method, server.base + path, headers=headers, timeout=30)
        body = assert_error(response, 401)
        assert body["error"] == "unauthorized"


def test_health_is_open_and_the_page_and_static_files_are_not(server: Server) -> None:
    assert httpx.get(server.base + "/api/v1/health").json()["status"] == "ok"
    for path in ("/", "/static/js/main.js", "/static/style.css"):
        response = httpx.get(server.base + path)
        assert response.status_code == 401
        assert "token" in response.text


def test_the_token_url_gives_an_httponly_strict_cookie(server: Server) -> None:
    assert server.url.startswith("http://127.0.0.1:")
    response = httpx.get(server.url, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and server.token in cookie
    with httpx.Client(base_url=server.base) as browser:
        page = browser.get(
            server.url, follow_redirects=True
        )  # follows the redirect, keeps the cookie
        assert page.status_code == 200 and "<title>emotrace</title>" in page.text
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert browser.get("/api/v1/sessions").status_code == 200  # the cookie works for the API
    # The token in the query works only on the page's address, nowhere else.
    assert httpx.get(f"{server.base}/api/v1/sessions?token={server.token}").status_code == 401


def test_no_external_docs_page(client: httpx.Client) -> None:
    # FastAPI's /docs loads scripts from a CDN; it is switched off.
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404
    schema = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/analyze" in schema["paths"]
    face = schema["components"]["schemas"]["Face"]
    assert "landmarks" in face["properties"] and "landmarks" not in face.get("required", [])


def test_info(client: httpx.Client) -> None:
    info = client.get("/api/v1/info").json()
    assert info["model"]["classes"][:2] == ["angry", "disgust"]
    assert info["max_upload_bytes"] == 1024 * 1024
    assert {"numpy", "opencv", "onnxruntime", "fastapi"} <= set(info["versions"])


# -- analyze ---------------------------------------------------------------------------------


def test_analyze_jpeg_and_png_like_predict_json(client: httpx.Client, frames: list[bytes]) -> None:
    response = client.post("/api/v1/analyze", files={"file": ("face.jpg", frames[0], "image/jpeg")})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["file"] == "face.jpg" and result["error"] is None
    assert (result["width"], result["height"]) == (640, 480)
    assert len(result["faces"]) >= 1
    face = result["faces"][0]
    assert {"box", "label", "confidence", "probabilities", "landmarks"} <= set(face)
    assert face["label"] in face["probabilities"]
    # The default detector (YuNet) gives five landmarks inside the face's box.
    box = face["box"]
    assert len(face["landmarks"]) == 5
    for x, y in face["landmarks"]:
        assert box["x"] <= x <= box["x"] + box["w"] and box["y"] <= y <= box["y"] + box["h"]
    assert math.isclose(sum(face["probabilities"].values()), 1.0, abs_tol=1e-2)
    image = cv2.imdecode(np.frombuffer(frames[0], np.uint8), cv2.IMREAD_COLOR)
    png = cv2.imencode(".png", image)[1].tobytes()
    as_png = client.post("/api/v1/analyze", files={"file": ("face.png", png, "image/png")})
    assert as_png.status_code == 200 and len(as_png.json()["faces"]) >= 1


def test_analyze_errors(client: httpx.Client, frames: list[bytes]) -> None:
    body = assert_error(
        client.post("/api/v1/analyze", files={"file": ("a.txt", b"hello", "text/plain")}), 415
    )
    assert "JPEG or PNG" in body["detail"]
    assert_error(client.post("/api/v1/analyze", files={"file": ("a.jpg", frames[0][:300])}), 422)
    assert_error(client.post("/api/v1/analyze", files={"other": ("a.jpg", frames[0])}), 422)
    assert_error(client.post("/api/v1/analyze", content=b"not multipart"), 422)
    # A PNG header claiming a gigantic image is refused before decoding.
    bomb = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + struct.pack(">II", 100_000, 100_000)
    assert_error(client.post("/api/v1/analyze", files={"file": ("b.png", bomb + b"\0" * 64)}), 422)


def test_body_limit_413_declared_and_streamed(client: httpx.Client) -> None:
    big = b"\xff\xd8\xff" + b"\0" * (1024 * 1024 + 10)
    body = assert_error(client.post("/api/v1/analyze", files={"file": ("big.jpg", big)}), 413)
    assert "limit" in body["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while reading
        yield b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n'
        for _ in range(40):
            yield b"\0" * 65536

    response = client.post(
        "/api/v1/analyze",
        content=chunks(),
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert_error(response, 413)


# -- sessions, markers, records --------------------------------------------------------------


def test_session_lifecycle(server: Server, client: httpx.Client, frames: list[bytes]) -> None:
    session = new_session(client, name="lifecycle-1", notes="first")
    sid = session["id"]
    assert session["status"] == "recording" and session["live"] and session["consent"]
    assert_error(
        client.post(
            "/api/v1/sessions", json={"patient": "P-001", "name": "lifecycle-1", "consent": True}
        ),
        409,
    )
    assert_error(client.delete(f"/api/v1/sessions/{sid}"), 409)  # live: stop first

    results = stream(server, sid, frames[:6])
    assert [r["type"] for r in results[1:]] == ["result"] * 6
    assert all(len(r["faces"]) >= 1 for r in results[3:])
    seen = [r for r in results[1:] if r["patient"] is not None]
    assert seen and seen[-1]["faces"][seen[-1]["patient"]]["patient"] is True
    assert -1 <= seen[-1]["valence"] <= 1
    times = [r["time_s"] for r in results[1:]]
    assert times == sorted(times)

    # The socket closed without "stop": interrupted, everything kept.
    info = wait_status(client, sid, "interrupted")
    assert info["status"] == "interrupted" and info["frames"] == 6 and not info["live"]

    # Connecting again resumes the same session.
    more = stream(server, sid, frames[6:9], stop=True)
    assert more[0]["resumed"] is True
    assert [r["frame"] for r in more[1:4]] == [6, 7, 8]
    assert more[-1]["type"] == "finished" and more[-1]["session"]["status"] == "complete"
    info = client.get(f"/api/v1/sessions/{sid}").json()
    assert info["frames"] == 9 and info["status"] == "complete" and info["notes"] == "first"

    # A complete session is not resumed.
    with pytest.raises(Exception, match="409"):
        stream(server, sid, [])

    listed = client.get("/api/v1/sessions", params={"patient": "P-001"}).json()
    assert sid in [s["id"] for s in listed]
    assert client.get("/api/v1/sessions", params={"patient": "nobody"}).json() == []
    assert client.get("/api/v1/sessions", params={"status": "complete"}).status_code == 200

    patched = client.patch(f"/api/v1/sessions/{sid}", json={"notes": "second", "consent": False})
    assert patched.status_code == 200 and patched.json()["consent"] is False
    assert client.get(f"/api/v1/sessions/{sid}").json()["notes"] == "second"
    assert client.post(f"/api/v1/sessions/{sid}/finish").json()["status"] == "complete"

    assert client.delete(f"/api/v1/sessions/{sid}").status_code == 204
    assert_error(client.get(f"/api/v1/sessions/{sid}"), 404)
    db = sqlite3.connect((server.workspace / "workspace.db").as_uri() + "?mode=ro", uri=True)
    assert db.execute("SELECT count(*) FROM frames WHERE session_id = ?", (sid,)).fetchone() == (0,)
    db.close()


def test_markers_records_exports_report(
    server: Server, client: httpx.Client, frames: list[bytes]
) -> None:
    sid = new_session(client, name="markers-1")["id"]
    stream(server, sid, frames[:3])
    assert wait_status(client, sid, "interrupted")["frames"] == 3
    stream(server, sid, [])  # resumed, nothing sent: still fine
    assert wait_status(client, sid, "interrupted")["status"] == "interrupted"
    session = new_session(client, name="markers-live")
    live_marker = client.post(f"/api/v1/sessions/{session['id']}/markers", json={"label": "now"})
    assert live_marker.status_code == 201 and live_marker.json()["time_s"] >= 0
    assert client.post(f"/api/v1/sessions/{session['id']}/finish").status_code == 200

    # A marker of a complete session needs its time (an interrupted one's is now: issue 33 (6)).
    finished = session["id"]
    assert_error(client.post(f"/api/v1/sessions/{finished}/markers", json={"label": "x"}), 422)
    marker = client.post(f"/api/v1/sessions/{sid}/markers", json={"label": "topic", "time_s": 0.1})
    assert marker.status_code == 201
    mid = marker.json()["id"]
    edited = client.patch(f"/api/v1/sessions/{sid}/markers/{mid}", json={"label": "family"})
    point = {"end_s": None, "excluded": False}  # a point marker: no end, not excluded
    assert edited.json() == {"id": mid, "time_s": 0.1, "label": "family", **point}
    moved = client.patch(f"/api/v1/sessions/{sid}/markers/{mid}", json={"time_s": 0.2})
    assert moved.json()["time_s"] == 0.2
    assert client.get(f"/api/v1/sessions/{sid}/markers").json() == [
        {"id": mid, "time_s": 0.2, "label": "family", **point}
    ]
    for bad in ({"label": "   "}, {"label": ""}, {"time_s": -1}, {"label": 3}, {"extra": 1}):
        assert_error(client.patch(f"/api/v1/sessions/{sid}/markers/{mid}", json=bad), 422)
    # Far past the end of a 3-frame session: refused, and the marker keeps its time.
    late = {"label": "late", "time_s": 1e6}
    body = assert_error(client.post(f"/api/v1/sessions/{sid}/markers", json=late), 422)
    assert "after the end of session" in body["detail"]
    assert_error(client.patch(f"/api/v1/sessions/{sid}/markers/{mid}", json={"time_s": 1e6}), 422)
    assert_error(client.patch(f"/api/v1/sessions/{sid}/markers/999999", json={"label": "a"}), 404)
    assert_error(client.delete(f"/api/v1/sessions/{session['id']}/markers/{mid}"), 404)

    page = client.get(f"/api/v1/sessions/{sid}/records", params={"offset": 1, "limit": 1}).json()
    assert page["total"] == 3 and page["offset"] == 1 and len(page["records"]) == 1
    assert page["records"][0]["frame"] == 1 and "p_happy" in page["records"][0]
    csv_text = client.get(f"/api/v1/sessions/{sid}/export", params={"format": "csv"})
    assert csv_text.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv_text.headers["content-disposition"]
    assert len(csv_text.text.strip().splitlines()) == 4
    lines = client.get(f"/api/v1/sessions/{sid}/export?format=jsonl").text.splitlines()
    assert json.loads(lines[0])["type"] == "session" and json.loads(lines[-1])["type"] == "marker"
    parquet = client.get(f"/api/v1/sessions/{sid}/export?format=parquet")
    assert parquet.status_code == 200 and parquet.content[:4] == b"PAR1"
    assert_error(client.get(f"/api/v1/sessions/{sid}/export?format=xlsx"), 422)

    report = client.get(f"/api/v1/sessions/{sid}/report", params={"compare": True})
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert (
        "family" in report.text
        and "frame-ancestors 'self'" in report.headers["content-security-policy"]
    )
    download = client.get(f"/api/v1/sessions/{sid}/report?download=true")
    assert "_report.html" in download.headers["content-disposition"]

    assert client.delete(f"/api/v1/sessions/{sid}/markers/{mid}").status_code == 204
    assert client.get(f"/api/v1/sessions/{sid}/markers").json() == []


@pytest.mark.parametrize(
    ("method", "path"),
    [(m, p.replace("/1", "/987654")) for m, p in ENDPOINTS if "/sessions/1" in p],
)
def test_unknown_session_is_404(client: httpx.Client, method: str, path: str) -> None:
    body = {"label": "x", "time_s": 1.0} if "markers" in path and method != "GET" else None
    if method == "PATCH" and "markers" not in path:
        body = {"notes": "x"}
    assert_error(client.request(method, path, json=body), 404)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"patient": "Jane Doe"},
        {"patient": "../etc"},
        {"patient": "P1", "name": "a/b"},
        {"patient": "P1", "consent": "yes"},
        {"patient": "P1", "source": "fax"},
        {"patient": "P1", "notes": "\ud800"},
        {"patient": "P1", "unknown": 1},
    ],
)
def test_bad_session_fields_are_422(client: httpx.Client, body: dict[str, Any]) -> None:
    response = client.post("/api/v1/sessions", content=json.dumps(body).encode())
    assert_error(response, 422)


def test_bad_ids_and_json_are_422_never_500(client: httpx.Client) -> None:
    for path in ("/api/v1/sessions/0", "/api/v1/sessions/abc", f"/api/v1/sessions/{2**70}"):
        assert_error(client.get(path), 422)
    response = client.post(
        "/api/v1/sessions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_error(response, 422)
    assert_error(client.get("/api/v1/sessions/1/records", params={"limit": 0}), 422)
    wrong_method = client.put("/api/v1/sessions")
    assert_error(wrong_method, 405)
    assert set(wrong_method.headers["allow"].split(", ")) == {"GET", "POST"}


# -- websocket access ------------------------------------------------------------------------


def test_websocket_needs_token_and_same_origin(server: Server, client: httpx.Client) -> None:
    from websockets.exceptions import InvalidStatus

    sid = new_session(client, name="ws-auth")["id"]
    url = f"{server.ws_base}/api/v1/sessions/{sid}/live"
    with pytest.raises(InvalidStatus) as denied:
        ws_client.connect(url, open_timeout=10)
    assert denied.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as foreign:
        ws_client.connect(
            url, additional_headers=server.auth, origin="http://evil.example", open_timeout=10
        )
    assert foreign.value.response.status_code == 403
    with ws_client.connect(
        url, additional_headers=server.auth, origin=server.base, open_timeout=10
    ) as same:
        assert json.loads(same.recv(timeout=10))["type"] == "ready"
        same.send(b"\x00" * 4)
        assert json.loads(same.recv(timeout=10))["type"] == "error"
        same.send(frame_message(b"not an image"))
        assert "JPEG or PNG" in json.loads(same.recv(timeout=10))["detail"]
        same.send("garbage")
        assert json.loads(same.recv(timeout=10))["type"] == "error"
        for track in ("2", True, 1.5):  # JSON true is no track id, though Python's bool is an int
            same.send(json.dumps({"type": "patient", "track_id": track}))
            assert json.loads(same.recv(timeout=10)) == {
                "type": "error",
                "detail": "track_id: int or null",
            }
        same.send(json.dumps({"type": "patient", "track_id": None}))
        assert json.loads(same.recv(timeout=10)) == {"type": "patient", "track_id": None}
    with pytest.raises(InvalidStatus) as missing:
        ws_client.connect(
            f"{server.ws_base}/api/v1/sessions/987654/live", additional_headers=server.auth
        )
    assert missing.value.response.status_code == 404
    client.post(f"/api/v1/sessions/{sid}/finish")


def test_finish_through_the_api_tells_the_socket(
    server: Server, client: httpx.Client, frames: list[bytes]
) -> None:
    sid = new_session(client, name="finish-api")["id"]
    with ws_client.connect(
        f"{server.ws_base}/api/v1/sessions/{sid}/live", additional_headers=server.auth
    ) as ws:
        json.loads(ws.recv(timeout=30))
        ws.send(frame_message(frames[0]))
        assert json.loads(ws.recv(timeout=60))["type"] == "result"
        assert client.post(f"/api/v1/sessions/{sid}/finish").json()["status"] == "complete"
        finished = json.loads(ws.recv(timeout=30))
        assert finished["type"] == "finished" and finished["session"]["frames"] == 1


def test_finishing_twice_at_once_is_no_conflict(
    server: Server, client: httpx.Client, frames: list[bytes]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    sid = new_session(client, name="finish-twice")["id"]
    stream(server, sid, frames[:1])
    assert wait_status(client, sid, "interrupted")["status"] == "interrupted"
    with ws_client.connect(
        f"{server.ws_base}/api/v1/sessions/{sid}/live", additional_headers=server.auth
    ) as ws:
        assert json.loads(ws.recv(timeout=30))["resumed"] is True
        # The second of two clicks on Stop used to be a 409 "recorded elsewhere" while the
        # first was still storing the session's end.
        with ThreadPoolExecutor(4) as pool:
            answers = list(
                pool.map(lambda _: client.post(f"/api/v1/sessions/{sid}/finish"), "abcd")
            )
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    assert {a.json()["status"] for a in answers} == {"complete"}


def test_a_closed_tab_leaves_no_traceback_in_the_log(
    server: Server, client: httpx.Client, frames: list[bytes]
) -> None:
    # The server closed the socket again after the client had gone (WebSocketDisconnect),
    # which uvicorn logged as "Exception in ASGI application" with a traceback.
    before = len(server.output)
    sid = new_session(client, name="closed-tab")["id"]
    for _ in range(6):
        stream(server, sid, frames[:1])
        assert wait_status(client, sid, "interrupted")["status"] == "interrupted"
    time.sleep(0.5)
    log = "".join(server.output[before:])
    assert "Traceback" not in log, log


def test_video_file_times_come_from_the_client(
    server: Server, client: httpx.Client, frames: list[bytes]
) -> None:
    sid = new_session(client, name="file-times", source="file")["id"]
    with ws_client.connect(
        f"{server.ws_base}/api/v1/sessions/{sid}/live", additional_headers=server.auth
    ) as ws:
        json.loads(ws.recv(timeout=30))
        for t in (0.0, 0.1, 0.2):
            ws.send(frame_message(frames[0], t))
            assert json.loads(ws.recv(timeout=60))["time_s"] == t
        ws.send(frame_message(frames[0], 0.05))  # back in time: refused, not recorded
        assert json.loads(ws.recv(timeout=60))["type"] == "error"
        # A bogus clock far in the future: refused (its report used to be a 500, or gigabytes).
        for bogus in (1e300, 86400.5):
            ws.send(frame_message(frames[0], bogus))
            assert json.loads(ws.recv(timeout=60)) == {
                "type": "error",
                "detail": f"frame time {bogus:g} s is past 24 h",
            }
        # Paused: frames are not recorded (they were, though the server answered "paused").
        ws.send(json.dumps({"type": "pause"}))
        assert json.loads(ws.recv(timeout=30)) == {"type": "paused"}
        ws.send(frame_message(frames[0], 0.3))
        assert json.loads(ws.recv(timeout=60)) == {
            "type": "error",
            "detail": "paused: send resume first",
        }
        ws.send(json.dumps({"type": "resume"}))
        assert json.loads(ws.recv(timeout=30)) == {"type": "resumed"}
        ws.send(json.dumps({"type": "pause"}))
        assert json.loads(ws.recv(timeout=30)) == {"type": "paused"}
        # A page that takes over (issue 33 (8): it asks) goes on unpaused.
        with ws_client.connect(
            f"{server.ws_base}/api/v1/sessions/{sid}/live?take_over=1",
            additional_headers=server.auth,
        ) as reloaded:
            assert json.loads(reloaded.recv(timeout=30))["type"] == "ready"
            reloaded.send(frame_message(frames[0], 0.3))
            assert json.loads(reloaded.recv(timeout=60))["type"] == "result"
            reloaded.send(json.dumps({"type": "stop"}))
            assert json.loads(reloaded.recv(timeout=30))["session"]["frames"] == 4
    assert client.get(f"/api/v1/sessions/{sid}/report").status_code == 200


# -- in-process: the catch-all handler, the CLI's checks ------------------------------------


def test_unexpected_errors_are_json_500(tmp_path: Path) -> None:
    import asyncio

    from emotrace.server.app import ServerConfig, create_app

    app = create_app(ServerConfig(workspace=tmp_path, token="t"))

    @app.get("/api/v1/boom")
    def boom() -> None:
        raise RuntimeError("kaboom")

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        # The Host must be one of this machine's names (DNS-rebinding check).
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as test:
            return await test.get("/api/v1/boom", headers={"Authorization": "Bearer t"})

    body = assert_error(asyncio.run(get()), 500)
    assert body["error"] == "internal error" and "kaboom" in body["detail"]
    app.state.emotrace.engine.close()
    app.state.emotrace.store.close()


def test_remote_host_needs_allow_remote(tmp_path: Path) -> None:
    result = run_emotrace("serve", "--host", "0.0.0.0", "--port", "0", "--workspace", tmp_path)
    assert_one_line_error(result, "--allow-remote")


@pytest.mark.parametrize(
    ("option", "value", "fragment"),
    [
        # bind() raises OverflowError for these ports, which used to surface as a traceback.
        ("--port", "-1", "--port: must be 0-65535"),
        ("--port", "70000", "--port: must be 0-65535"),
        ("--max-upload-mb", "0", "--max-upload-mb: must be a finite number > 0"),
        ("--max-upload-mb", "inf", "--max-upload-mb: must be a finite number > 0"),
    ],
)
def test_server_options_out_of_range_are_one_line_errors(
    option: str, value: str, fragment: str, tmp_path: Path
) -> None:
    result = run_emotrace("serve", option, value, "--workspace", tmp_path)
    assert_one_line_error(result, fragment)


def test_live_without_opencv_window_starts_the_web_app(tmp_path: Path) -> None:
    gui = cv2.getBuildInformation()
    if "GUI:" in gui and "NONE" not in gui.split("GUI:")[1].split("\n")[0].upper():
        pytest.skip("this OpenCV build has window support")
    args = ("--session", "s1", "--patient", "P-9", "--consent")
    with running_server(tmp_path, *args, command="live") as server:
        assert "#/new?" in "".join(server.output) and "patient=P-9" in "".join(server.output)
        assert httpx.get(server.base + "/api/v1/health").status_code == 200


def test_serve_passes_every_detector_setting_to_its_detector() -> None:
    from emotrace.cli.main import build_parser
    from emotrace.cli.serve_cmd import config_from
    from emotrace.server.engine import Engine

    def detector_of(*argv: str) -> Any:
        config = config_from(build_parser().parse_args(["serve", *argv]))
        found = Engine(config.pipeline, workers=1).recognizer.detector
        return getattr(found, "detector", found)  # the detector inside the downscaling wrapper

    yunet = detector_of("--score-threshold", "0.8", "--nms-threshold", "0.45")
    assert (yunet.score_threshold, yunet.nms_threshold) == (0.8, 0.45)
    assert detector_of("--detector", "haar", "--scale-factor", "1.25").scale_factor == 1.25
    assert detector_of("--max-side", "0").__class__.__name__ == "YuNetFaceDetector"


def test_the_pdf_report_is_printed_by_chromium_as_documented(client: httpx.Client) -> None:
    """The 200 answer of ``report.pdf`` as the OpenAPI schema gives it (test_serve_fuzz fuzzes
    the route on a server without Chromium: one print here instead of one per fuzzed call)."""
    from emotrace.sessions.report import find_chromium

    if find_chromium() is None:
        pytest.skip("needs Chromium to print the PDF (Debian: apt-get install chromium)")
    sid = new_session(client, name="pdf-report")["id"]
    assert client.post(f"/api/v1/sessions/{sid}/finish").status_code == 200
    pdf = client.get(f"/api/v1/sessions/{sid}/report.pdf", params={"compare": True, "notes": True})
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    disposition = pdf.headers["content-disposition"]
    assert disposition.startswith("attachment") and "_report.pdf" in disposition
    assert pdf.content[:5] == b"%PDF-" and len(pdf.content) > 5_000


def test_a_pdf_without_chromium_is_a_503_that_names_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-chromium-here"
    monkeypatch.setenv("EMOTRACE_CHROMIUM", str(missing))
    with (
        running_server(tmp_path / "ws") as other,
        httpx.Client(base_url=other.base, headers=other.auth, timeout=60) as c,
    ):
        sid = new_session(c)["id"]
        body = assert_error(c.get(f"/api/v1/sessions/{sid}/report.pdf"), 503)
        assert body["detail"] == f"EMOTRACE_CHROMIUM={missing}: no such executable"
        assert c.get(f"/api/v1/sessions/{sid}/report").status_code == 200, "HTML still works"


def test_a_frame_that_reaches_a_finished_session_is_refused_not_left_hanging() -> None:
    # A frame read from the socket just before the API finished the session reaches the
    # analyzer after close(): next() on the closed pipeline raised StopIteration into the
    # executor's future, which asyncio cannot complete, so the socket's handler hung.
    import asyncio

    from emotrace.errors import SessionError
    from emotrace.server.engine import Engine
    from emotrace.video.options import PipelineOptions

    engine = Engine(PipelineOptions(), workers=1)
    try:
        analyzer = engine.analyzer("test")
        image = np.zeros((120, 160, 3), np.uint8)
        analyzer.analyze(0, 0.0, image)  # a live pipeline answers
        analyzer.close()

        async def late_frame() -> None:
            await asyncio.wait_for(engine.call(analyzer.analyze, 1, 0.1, image), timeout=30)

        with pytest.raises(SessionError, match="ended"):
            asyncio.run(late_frame())
    finally:
        engine.close()
