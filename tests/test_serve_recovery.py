"""Issue 33 items 6, 7, 8: a reload mid-session, interrupted sessions, two tabs on one session.

Against a real ``emotrace serve`` process: the WebSocket take-over protocol and the series route
through the API; the page through Debian's Chromium (Playwright) with the fake camera of a real
face (``test_serve_browser.py``'s set-up). One server and one browser serve the module; the
restart test starts its own two servers on one port (a restart hands out a new token).
"""

from __future__ import annotations

import json
import math
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
ws_client = pytest.importorskip("websockets.sync.client")
ws_exceptions = pytest.importorskip("websockets.exceptions")
sync_api = pytest.importorskip("playwright.sync_api")

from serve_helpers import Server, face_frames, jpeg, running_server, write_y4m  # noqa: E402
from test_serve_browser import (  # noqa: E402
    BINARY,
    TIMEOUT_MS,
    fake_camera_args,
    session_info,
    start_session,
    wait_for_face,
)

pytestmark = pytest.mark.slow
browser_test = pytest.mark.browser
needs_browser = pytest.mark.skipif(
    not Path(BINARY).is_file(),
    reason="needs Chromium (Debian: apt-get install chromium chromium-driver)",
)
#: Close codes of the live socket (server/websocket.py).
LIVE_ELSEWHERE, TAKEN_OVER = 4409, 4410


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("serve-recovery")) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, headers=server.auth, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def frames() -> list[bytes]:
    return [jpeg(f) for f in face_frames(8)]


@pytest.fixture(scope="module")
def camera(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_y4m(tmp_path_factory.mktemp("camera") / "face.y4m", face_frames(30))


@pytest.fixture(scope="module")
def browser(camera: Path) -> Iterator[Any]:
    if not Path(BINARY).is_file():
        pytest.skip("needs Chromium (Debian: apt-get install chromium chromium-driver)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=BINARY, headless=True, args=fake_camera_args(camera)
        )
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh browser profile (cookies, localStorage) per test: its tabs share it."""
    ctx = browser.new_context(viewport={"width": 1360, "height": 900})
    yield ctx
    ctx.close()


def new_tab(
    context: Any, url: str, dialogs: list[str] | None = None, answers: list[bool] | None = None
) -> Any:
    """A tab on ``url``: dialogs are answered from ``answers`` (then accepted), their messages
    noted in ``dialogs``."""
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    # Counts the pages' requests for a camera: a complete session must never open it.
    tab.add_init_script(
        "window.cameraRequests = 0; const gum = navigator.mediaDevices.getUserMedia.bind("
        "navigator.mediaDevices); navigator.mediaDevices.getUserMedia = (c) => "
        "{ window.cameraRequests += 1; return gum(c); };"
    )

    def answer(dialog: Any) -> None:
        if dialogs is not None:
            dialogs.append(dialog.message)
        if answers and not answers.pop(0):
            dialog.dismiss()
            return
        dialog.accept()

    tab.on("dialog", answer)
    tab.goto(url)
    return tab


def go(page: Any, hash_: str) -> None:
    page.evaluate("h => { location.hash = h; }", hash_)


def frame_message(data: bytes) -> bytes:
    return struct.pack("<d", math.nan) + data


def connect(server: Server, sid: int, query: str = "") -> Any:
    return ws_client.connect(
        f"{server.ws_base}/api/v1/sessions/{sid}/live{query}",
        additional_headers=server.auth,
        open_timeout=30,
    )


def new_session(client: httpx.Client, name: str) -> int:
    body = {"patient": "P-066", "name": f"{name}-{time.monotonic_ns()}", "consent": True}
    created = client.post("/api/v1/sessions", json=body)
    assert created.status_code == 201, created.text
    sid: int = created.json()["id"]
    return sid


def wait_status(client: httpx.Client, sid: int, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        info: dict[str, Any] = client.get(f"/api/v1/sessions/{sid}").json()
        if info["status"] == status:
            return info
        assert time.monotonic() < deadline, info
        time.sleep(0.1)


def interrupted_session(server: Server, client: httpx.Client, frames: list[bytes]) -> int:
    sid = new_session(client, "interrupted")
    with connect(server, sid) as ws:
        assert json.loads(ws.recv(timeout=30))["type"] == "ready"
        for data in frames:
            ws.send(frame_message(data))
            assert json.loads(ws.recv(timeout=60))["type"] == "result"
    wait_status(client, sid, "interrupted")
    return sid


def close_code(ws: Any) -> int:
    """The code the server closed ``ws`` with (after any messages it sent)."""
    with pytest.raises(ws_exceptions.ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=30)
    assert closed.value.rcvd is not None
    code: int = closed.value.rcvd.code
    return code


# -- the server: take-over protocol, series, markers ---------------------------------------


def test_a_second_socket_is_refused_unless_it_takes_over(
    server: Server, client: httpx.Client, frames: list[bytes]
) -> None:
    sid = new_session(client, "two-sockets")
    with connect(server, sid) as first:
        assert json.loads(first.recv(timeout=30))["type"] == "ready"
        first.send(frame_message(frames[0]))
        assert json.loads(first.recv(timeout=60))["frame"] == 0
        assert client.get(f"/api/v1/sessions/{sid}").json()["streaming"] is True

        # A second page is told the session is live elsewhere, and the first goes on.
        with connect(server, sid) as second:
            told = json.loads(second.recv(timeout=30))
            assert told["type"] == "live_elsewhere" and "another tab" in told["detail"]
            assert close_code(second) == LIVE_ELSEWHERE
        first.send(frame_message(frames[1]))
        assert json.loads(first.recv(timeout=60))["frame"] == 1

        # Asked for, a take-over: the first is told and closed, the recording goes on.
        with connect(server, sid, "?take_over=1") as third:
            ready = json.loads(third.recv(timeout=30))
            assert ready["type"] == "ready" and ready["resumed"] is False
            lost = json.loads(first.recv(timeout=30))
            assert lost["type"] == "taken_over" and "took this session over" in lost["detail"]
            assert close_code(first) == TAKEN_OVER
            third.send(frame_message(frames[2]))
            assert json.loads(third.recv(timeout=60))["frame"] == 2
            info = client.get(f"/api/v1/sessions/{sid}").json()
            assert info["status"] == "recording" and info["streaming"] is True
            third.send(json.dumps({"type": "stop"}))
            assert json.loads(third.recv(timeout=30))["session"]["frames"] == 3
    info = client.get(f"/api/v1/sessions/{sid}").json()
    assert info["status"] == "complete" and not info["streaming"] and not info["live"]
    # A complete session is not resumed, taken over or not.
    for query in ("", "?take_over=1"):
        with pytest.raises(ws_exceptions.InvalidStatus, match="409"):
            connect(server, sid, query)


def test_the_series_is_the_stored_valence_and_arousal_paged(
    server: Server, client: httpx.Client, frames: list[bytes]
) -> None:
    sid = interrupted_session(server, client, frames)
    series = client.get(f"/api/v1/sessions/{sid}/series").json()
    rows = client.get(f"/api/v1/sessions/{sid}/records").json()["records"]
    assert series["total"] == len(rows) == len(frames) and series["offset"] == 0
    assert series["time_s"] == pytest.approx([r["time_s"] for r in rows], abs=1e-3)
    for key in ("valence", "arousal"):
        stored = [r[key] for r in rows]
        assert [v is None for v in series[key]] == [v is None for v in stored]
        assert [v for v in series[key] if v is not None] == pytest.approx(
            [v for v in stored if v is not None], abs=1e-4
        )
    assert any(v is not None for v in series["valence"]), "no face in the stored frames"
    page = client.get(f"/api/v1/sessions/{sid}/series", params={"offset": 5, "limit": 2}).json()
    assert page["offset"] == 5 and page["time_s"] == series["time_s"][5:7]
    assert page["valence"] == series["valence"][5:7]
    for bad in ({"offset": -1}, {"limit": 0}, {"limit": 10_001}):
        answer = client.get(f"/api/v1/sessions/{sid}/series", params=bad)
        assert answer.status_code == 422 and answer.json()["error"], answer.text
    missing = client.get(f"/api/v1/sessions/{sid + 10_000}/series")
    assert missing.status_code == 404 and missing.json()["detail"] == f"no session {sid + 10_000}"


def test_a_marker_on_an_interrupted_session_gets_the_session_clock(
    server: Server, client: httpx.Client, frames: list[bytes]
) -> None:
    sid = interrupted_session(server, client, frames[:2])
    started = client.get(f"/api/v1/sessions/{sid}").json()["started_at"]
    before = time.time() - started
    marker = client.post(f"/api/v1/sessions/{sid}/markers", json={"label": "during the reload"})
    after = time.time() - started
    assert marker.status_code == 201, marker.text
    assert before - 0.5 <= marker.json()["time_s"] <= after + 0.5
    client.post(f"/api/v1/sessions/{sid}/finish").raise_for_status()
    refused = client.post(f"/api/v1/sessions/{sid}/markers", json={"label": "after the end"})
    assert refused.status_code == 422 and "give time_s" in refused.json()["detail"]


# -- the page ------------------------------------------------------------------------------


def wait_status_pill(page: Any, text: str) -> None:
    page.wait_for_function(
        "t => document.querySelector('#live-status').textContent === t", arg=text
    )


def parked_state(page: Any) -> dict[str, Any]:
    found: dict[str, Any] = page.evaluate(
        """() => {
          const p = window.emotraceState.parked, c = document.querySelector('#timeline');
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let ink = 0;
          for (let i = 3; i < d.length; i += 4) ink += d[i] > 0;
          return { id: p && p.id, history: p ? p.history.length : 0, ink,
                   height: c.getBoundingClientRect().height,
                   markers: document.querySelectorAll('#marker-log li').length,
                   status: document.querySelector('#live-status').textContent,
                   text: document.querySelector('#resume-text').textContent,
                   say: document.querySelector('#resume-hint .resume-say').textContent };
        }"""
    )
    return found


@browser_test
@needs_browser
def test_a_reload_mid_session_shows_the_session_as_stored_and_every_control_acts(
    context: Any, server: Server
) -> None:
    page = new_tab(context, server.url)
    start_session(page, "P-066", f"reload-{time.monotonic_ns()}", "camera")
    first = wait_for_face(page)
    sid = int(page.evaluate("() => window.emotraceState.live.id"))
    page.keyboard.press("1")
    page.keyboard.press("2")
    page.wait_for_function("() => document.querySelectorAll('#marker-log li').length === 2")
    wait_for_face(page, first["frame"] + 3)

    page.reload()
    page.wait_for_selector("#resume-hint:not([hidden])")
    wait_status_pill(page, "interrupted")
    stored = session_info(server, page, sid)
    assert stored["status"] == "interrupted" and stored["frames"] > 3
    page.wait_for_function(
        "n => window.emotraceState.parked && window.emotraceState.parked.history.length === n",
        arg=stored["frames"],
    )
    shown = parked_state(page)
    assert shown["id"] == sid and shown["markers"] == 2
    assert shown["ink"] > 500, "the stored timeline is not drawn"
    assert shown["height"] < 200, f"the timeline card is {shown['height']} px of blank space"
    assert "interrupted" in shown["text"] and "Resume" in shown["text"]
    assert page.inner_text("#live-title").endswith(stored["name"])

    # Every control acts or says why not: a marker is saved on the session's clock...
    page.keyboard.press("4")
    page.wait_for_function("() => document.querySelectorAll('#marker-log li').length === 3")
    labels = [m["label"] for m in session_info(server, page, sid)["marker_list"]]
    assert sorted(labels) == ["exercise start", "strong reaction", "topic change"]
    # ...Pause says there is nothing to pause...
    page.keyboard.press(" ")
    assert "nothing to pause" in parked_state(page)["say"]
    # ...and Resume records into the same session, after the stored frames.
    page.click("#resume-here")
    page.wait_for_selector("#resume-hint", state="hidden")
    resumed = wait_for_face(page, stored["frames"] - 1)
    assert int(page.evaluate("() => window.emotraceState.live.id")) == sid
    assert resumed["frame"] >= stored["frames"]
    # The resumed view goes on from the stored timeline and markers, not from an empty view.
    page.wait_for_function(
        "n => window.emotraceState.live.history.length > n", arg=stored["frames"]
    )
    first_stored = page.evaluate(
        "async id => (await (await fetch(`/api/v1/sessions/${id}/series`)).json()).time_s[0]", sid
    )
    assert page.evaluate("() => window.emotraceState.live.history[0].t") == first_stored
    assert page.locator("#marker-log li").count() == 3
    page.click("#stop")
    page.wait_for_selector("#view-review:not([hidden])")
    info = session_info(server, page, sid)
    assert info["status"] == "complete" and info["markers"] == 3


@browser_test
@needs_browser
def test_stop_on_a_reloaded_page_finishes_the_session(context: Any, server: Server) -> None:
    page = new_tab(context, server.url)
    start_session(page, "P-066", f"reload-stop-{time.monotonic_ns()}", "camera")
    wait_for_face(page)
    sid = int(page.evaluate("() => window.emotraceState.live.id"))
    page.reload()
    wait_status_pill(page, "interrupted")
    page.click("#stop")  # asks (accepted), then finishes
    page.wait_for_selector("#view-review:not([hidden])")
    assert session_info(server, page, sid)["status"] == "complete"
    assert page.is_hidden("#review-live")


@browser_test
@needs_browser
def test_a_second_tab_asks_before_taking_over_and_the_first_says_it_lost_the_session(
    context: Any, server: Server
) -> None:
    first = new_tab(context, server.url)
    start_session(first, "P-066", f"two-tabs-{time.monotonic_ns()}", "camera")
    wait_for_face(first)
    sid = int(first.evaluate("() => window.emotraceState.live.id"))

    dialogs: list[str] = []
    answers = [False]  # the first question is declined
    second = new_tab(context, f"{server.base}/#/live/{sid}", dialogs, answers)
    wait_status_pill(second, "recording elsewhere")
    assert second.inner_text("#resume-here") == "Take over here"
    assert "another tab or window" in second.inner_text("#resume-text")
    assert not second.is_visible("#banner")  # no "Resume" offered for a session live elsewhere
    # Declined: nothing changes.
    second.click("#resume-here")
    deadline = time.monotonic() + 10
    while answers:  # Playwright answers dialogs only while it is called
        assert time.monotonic() < deadline, "the second tab asked nothing"
        second.wait_for_timeout(50)
    before = wait_for_face(first)
    assert second.evaluate("() => window.emotraceState.live") is None
    assert second.evaluate("() => window.cameraRequests") == 0
    wait_for_face(first, before["frame"])

    second.click("#resume-here")
    second.wait_for_function("() => window.emotraceState.live !== null")
    wait_for_face(second)
    assert any("another tab or window" in d and "Take it over" in d for d in dialogs), dialogs
    assert int(second.evaluate("() => window.emotraceState.live.id")) == sid

    # The first tab says so, and shows no live data: no bars, no boxes, no camera.
    wait_status_pill(first, "taken over")
    assert "took this session over" in first.inner_text("#resume-text")
    lost = first.evaluate(
        """() => ({ live: window.emotraceState.live, result: window.emotraceState.lastResult,
                   bars: document.querySelectorAll('#bars .bar').length,
                   face: document.querySelector('#face-ind').textContent,
                   camera: document.querySelector('#video').srcObject })"""
    )
    assert lost == {"live": None, "result": None, "bars": 0, "face": "No face yet", "camera": None}

    second.click("#stop")
    second.wait_for_selector("#view-review:not([hidden])")
    first.wait_for_selector("#view-review:not([hidden])")  # the parked tab follows the session
    assert session_info(server, first, sid)["status"] == "complete"


@browser_test
@needs_browser
def test_a_complete_session_offers_no_resume_and_never_opens_the_camera(
    context: Any, server: Server, client: httpx.Client, frames: list[bytes]
) -> None:
    sid = interrupted_session(server, client, frames[:2])
    done = interrupted_session(server, client, frames[:2])
    client.post(f"/api/v1/sessions/{done}/finish").raise_for_status()
    page = new_tab(context, server.url)
    page.wait_for_selector(f"#sessions-table tr[data-id='{sid}'] button.resume")
    row = page.locator(f"#sessions-table tr[data-id='{done}']")
    assert row.locator("button.resume").count() == 0 and row.locator("button.finish").count() == 0
    go(page, f"#/review/{done}")
    page.frame_locator("#report").locator("h1").wait_for()
    assert page.is_hidden("#review-live")
    go(page, f"#/live/{done}")  # a link to a complete session's live view: its review
    page.wait_for_function(
        "id => location.hash === `#/review/${id}` && !document.querySelector('#view-review')"
        ".hidden",
        arg=done,
    )

    # The banner offers to resume the session this tab streamed into; it is finished meanwhile
    # (by another tab): Resume says so and goes to the review, and the camera stays closed.
    info = client.get(f"/api/v1/sessions/{sid}").json()
    active = {"id": sid, "name": info["name"], "patient": info["patient"], "source": "camera"}
    page.evaluate("s => localStorage.setItem('emotrace.active', JSON.stringify(s))", active)
    go(page, "#/")
    page.reload()
    page.wait_for_selector("#banner:not([hidden])")
    client.post(f"/api/v1/sessions/{sid}/finish").raise_for_status()
    page.click("#resume-btn")
    page.wait_for_function("id => location.hash === `#/review/${id}`", arg=sid)
    assert "cannot be resumed" in page.inner_text("#banner-text")
    assert page.evaluate("() => window.cameraRequests") == 0
    assert page.evaluate("() => window.emotraceState.live") is None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@browser_test
@needs_browser
def test_after_a_restart_with_a_new_token_the_page_says_so_and_resumes_from_list_and_review(
    context: Any, tmp_path: Path
) -> None:
    port = str(free_port())
    with running_server(tmp_path, "--port", port) as before:
        page = new_tab(context, before.url)
        start_session(page, "P-066", "restarted", "camera")
        wait_for_face(page)
        sid = int(page.evaluate("() => window.emotraceState.live.id"))
    # The server stopped (Ctrl+C): the session was kept as interrupted.
    with running_server(tmp_path, "--port", port) as after:
        assert after.token != before.token and after.base == before.base
        # The open page's sign-in is no longer valid: it says so and where the address is.
        page.wait_for_selector("#signed-out:not([hidden])")
        message = page.inner_text("#signed-out")
        assert "restarted" in message and "emotrace serve" in message and "?token=" in message
        assert "--open" in message
        # A page loaded afresh with the old cookie: the server's own page says the same.
        stale = context.new_page()
        answer = stale.goto(after.base + "/")
        assert answer is not None and answer.status == 401
        assert "restarted server has a new token" in stale.content()
        stale.close()

        page.goto(after.url)  # the new address, as printed
        page.wait_for_selector(f"#sessions-table tr[data-id='{sid}'] button.resume")
        assert page.is_hidden("#signed-out")
        stored = session_info(after, page, sid)
        assert stored["status"] == "interrupted"
        page.click(f"#sessions-table tr[data-id='{sid}'] button.resume")
        page.wait_for_selector("#view-live:not([hidden])")
        resumed = wait_for_face(page, stored["frames"] - 1)
        assert int(page.evaluate("() => window.emotraceState.live.id")) == sid
        assert session_info(after, page, sid)["status"] == "recording"

        # Interrupted again (a reload); from its review this time.
        page.reload()
        wait_status_pill(page, "interrupted")
        go(page, f"#/review/{sid}")
        page.wait_for_selector("#review-live:not([hidden])")
        assert "interrupted" in page.inner_text("#review-live-text")
        page.click("#review-resume")
        page.wait_for_selector("#view-live:not([hidden])")
        wait_for_face(page, resumed["frame"])
        page.click("#stop")
        page.wait_for_selector("#view-review:not([hidden])")
        assert session_info(after, page, sid)["status"] == "complete"
        assert page.is_hidden("#review-live")
