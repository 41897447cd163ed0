"""The clinician's page in a real browser: Debian's Chromium driven by Playwright.

Chromium's fake camera plays a video of a real face (converted from ``../shared/media`` or made
from scikit-image's astronaut), its fake screen capture stands in for a video-call window. One
server and one browser serve the module; screenshots of every page go to ``$EMOTRACE_ARTIFACTS``
(default ``test-artifacts/``) for a person to look at; the README's screenshots in ``docs/images/``
are made by ``scripts/screenshots.py``.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api")

from chromium_helpers import CHROMIUM  # noqa: E402
from conftest import REPO  # noqa: E402
from serve_helpers import Server, face_frames, running_server, write_y4m  # noqa: E402

# Playwright drives the real binary; Debian's /usr/bin/chromium is a shell wrapper around it.
BINARY = next((p for p in ("/usr/lib/chromium/chromium", CHROMIUM) if Path(p).is_file()), CHROMIUM)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(BINARY).is_file(),
        reason="needs Chromium (Debian: apt-get install chromium chromium-driver)",
    ),
]
ARTIFACTS = Path(os.environ.get("EMOTRACE_ARTIFACTS", REPO / "test-artifacts"))
TIMEOUT_MS = 45_000


def fake_camera_args(camera: Path) -> list[str]:
    """Chromium's flags for these tests: headless as the issue asks (no sandbox as root, no
    background connections the closed network refuses), camera and permission faked from
    ``camera`` (a y4m file)."""
    return [
        "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={camera}",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("serve-browser")) as running:
        yield running


@pytest.fixture(scope="module")
def requests_seen() -> list[str]:
    return []


@pytest.fixture(scope="module")
def page(
    server: Server, tmp_path_factory: pytest.TempPathFactory, requests_seen: list[str]
) -> Iterator[Any]:
    camera = write_y4m(tmp_path_factory.mktemp("camera") / "face.y4m", face_frames(30))
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=BINARY,
            headless=True,
            args=[
                *fake_camera_args(camera),
                "--auto-select-desktop-capture-source=Entire screen",
            ],
        )  # fmt: skip
        context = browser.new_context(viewport={"width": 1360, "height": 900})
        tab = context.new_page()
        tab.set_default_timeout(TIMEOUT_MS)
        tab.on("request", lambda request: requests_seen.append(request.url))
        tab.on("websocket", lambda ws: requests_seen.append(ws.url))
        tab.on("dialog", lambda dialog: dialog.accept())
        tab.goto(server.url)
        yield tab
        context.close()
        browser.close()


def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"serve_{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def db_rows(server: Server, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    uri = (server.workspace / "workspace.db").as_uri() + "?mode=ro"
    with sqlite3.connect(uri, uri=True) as db:
        return db.execute(sql, params).fetchall()


def last_result(page: Any) -> dict[str, Any] | None:
    result: dict[str, Any] | None = page.evaluate("() => window.emotraceState.lastResult")
    return result


def wait_for_face(page: Any, after_frame: int = -1) -> dict[str, Any]:
    page.wait_for_function(
        "n => { const r = window.emotraceState.lastResult;"
        " return r && r.frame > n && r.faces.length > 0 && r.patient !== null; }",
        arg=after_frame,
    )
    result = last_result(page)
    assert result is not None
    return result


def start_session(page: Any, patient: str, name: str, source: str) -> None:
    page.click("#nav-new")
    page.fill("#patient", patient)
    page.fill("#session-name", name)
    page.check("#consent")
    page.check(f"input[name=source][value={source}]")
    page.click("#start")
    page.wait_for_selector("#view-live:not([hidden])")


def session_info(server: Server, page: Any, sid: int) -> dict[str, Any]:
    info: dict[str, Any] = page.evaluate(
        "async id => (await fetch('/api/v1/sessions/' + id)).json()", sid
    )
    return info


def test_camera_session_live_marker_reload_resume_stop_report(page: Any, server: Server) -> None:
    page.wait_for_selector("#view-sessions:not([hidden])")
    shot(page, "sessions_empty")
    start_session(page, "P-017", "week-3", "camera")
    started = time.monotonic()
    first = wait_for_face(page)
    assert time.monotonic() - started < 30, "no face box within seconds"
    face = first["faces"][first["patient"]]
    assert face["label"] in face["probabilities"] and face["box"]["w"] > 40
    assert page.inner_text("#patient-label").lower() in face["probabilities"]
    assert page.inner_text("#face-ind") == "Face visible"
    assert "frames/s" in page.inner_text("#fps")
    sid = int(page.evaluate("() => window.emotraceState.live.id"))
    time.sleep(2)  # a few seconds of timeline for the screenshot
    wait_for_face(page, first["frame"] + 3)
    shot(page, "live_view")

    # A marker lands in the SQLite session at the time of the click.
    before = last_result(page)
    assert before is not None
    page.click(".marker-btn[data-label='topic change']")
    page.wait_for_function("() => document.querySelectorAll('#marker-log li').length > 0")
    # A result whose frame the server received after it stored the marker: frames go one at a
    # time, so three results past the one shown when the marker was confirmed (the capture worker
    # may be a result ahead of the page). Under load a result already shown can predate the
    # marker by more than the 0.5 s allowed below.
    shown = last_result(page)
    assert shown is not None
    after = wait_for_face(page, shown["frame"] + 3)
    rows = db_rows(server, "SELECT time_s, label FROM markers WHERE session_id = ?", sid)
    assert len(rows) == 1 and rows[0][1] == "topic change"
    assert before["time_s"] - 0.5 <= rows[0][0] <= after["time_s"] + 0.5, (before, rows, after)
    page.keyboard.press("2")  # keyboard shortcut for the second preset
    page.wait_for_function("() => document.querySelectorAll('#marker-log li').length > 1")
    frames_before_reload = session_info(server, page, sid)["frames"]
    assert frames_before_reload > 3

    # Reloading mid-session: the session is kept as interrupted, the page offers to resume.
    page.reload()
    page.wait_for_selector("#banner:not([hidden])")
    assert "interrupted" in page.inner_text("#banner-text")
    deadline = time.monotonic() + 15
    while session_info(server, page, sid)["status"] != "interrupted":
        assert time.monotonic() < deadline, "the dropped socket was not noticed"
        time.sleep(0.2)
    shot(page, "resume_offer")
    page.click("#resume-btn")
    page.wait_for_selector("#view-live:not([hidden])")
    wait_for_face(page, -1)
    assert int(page.evaluate("() => window.emotraceState.live.id")) == sid
    info = session_info(server, page, sid)
    assert info["status"] == "recording" and info["frames"] > frames_before_reload

    # Stop: a complete session whose report opens in the review page.
    page.click("#stop")
    page.wait_for_selector("#view-review:not([hidden])")
    report = page.frame_locator("#report")
    report.locator("h1").wait_for()
    assert "P-017" in report.locator("body").inner_text()
    info = session_info(server, page, sid)
    assert info["status"] == "complete" and info["markers"] == 2
    shot(page, "review")

    # Markers are editable in the review.
    page.locator("#markers-table tbody tr input").nth(1).fill("topic: family")
    # Wait for the server's answer to the save, not for the input (it holds the text at once):
    # under load the database was read before the PATCH arrived.
    with page.expect_response(
        lambda r: r.request.method == "PATCH" and "/markers/" in r.url
    ) as patched:
        page.locator("#markers-table tbody tr button", has_text="Save").first.click()
    assert patched.value.ok
    labels = [r[0] for r in db_rows(server, "SELECT label FROM markers WHERE session_id = ?", sid)]
    assert "topic: family" in labels
    page.fill("#notes", "calm start")
    page.click("#save-notes")
    page.wait_for_function(
        "() => document.querySelector('#notes-saved').textContent.startsWith('saved to ')"
    )

    page.click("#nav-sessions")
    page.wait_for_selector(f"#sessions-table tr[data-id='{sid}']")
    shot(page, "sessions")


def test_screen_share_source_reaches_the_server(page: Any, server: Server) -> None:
    start_session(page, "P-018", "call-window", "screen")
    page.wait_for_function(
        "() => { const r = window.emotraceState.lastResult; return r && r.width > 0; }"
    )
    sid = int(page.evaluate("() => window.emotraceState.live.id"))
    shot(page, "screen_share")
    page.click("#stop")
    page.wait_for_selector("#view-review:not([hidden])")
    info = session_info(server, page, sid)
    assert info["frames"] > 0 and info["status"] == "complete"
    assert info["settings"]["source"] == "screen"


def test_page_made_no_request_outside_the_server(
    page: Any, server: Server, requests_seen: list[str]
) -> None:
    assert requests_seen, "no request was logged"
    local = (server.base + "/", server.ws_base + "/", "data:", "blob:")
    outside = [url for url in requests_seen if not url.startswith(local)]
    assert outside == []
