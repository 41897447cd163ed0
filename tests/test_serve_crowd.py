"""A live session in the web app: crowded frames are classified by the fast model, the page is told
which frames, and the session's settings keep the rule."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
ws_client = pytest.importorskip("websockets.sync.client")

import cv2  # noqa: E402

from serve_helpers import live_session, running_server  # noqa: E402

pytestmark = pytest.mark.slow


def test_a_live_session_switches_to_the_fast_model_above_the_crowd_threshold(
    shared_dir: Path, tmp_path: Path
) -> None:
    photo = cv2.imread(str(shared_dir / "media" / "multi_face.jpg"))
    if photo is None:
        pytest.skip("needs ../shared/media/multi_face.jpg")
    group = cv2.resize(photo, None, fx=640 / photo.shape[1], fy=640 / photo.shape[1])
    # The same photo cut to its right-hand third: two faces.
    pair = group[:, 2 * group.shape[1] // 3 - 60 :]

    def message(image: object) -> bytes:
        return struct.pack("<d", math.nan) + cv2.imencode(".jpg", image)[1].tobytes()

    replies = []
    with running_server(tmp_path / "ws", "--workers", "1", "--crowd-faces", "3") as server:
        with live_session(server) as (session, ws):
            for image in (group, group, pair, pair, group):
                ws.send(message(image))
                replies.append(json.loads(ws.recv(timeout=60)))
            ws.send(json.dumps({"type": "stop"}))
        stored = httpx.get(
            f"{server.base}/api/v1/sessions/{session['id']}", headers=server.auth, timeout=60
        ).json()
    faces = [len(r["faces"]) for r in replies]
    assert faces[0] == 5 and faces[2] <= 3, faces
    assert [r["crowd_model"] for r in replies] == ["fast" if n > 3 else None for n in faces], (
        replies
    )
    crowd = stored["settings"]["crowd"]
    assert crowd["name"] == "fast" and crowd["above_faces"] == 3
    assert crowd["model"]["input_size"] == 64


@pytest.mark.browser
def test_the_live_view_says_when_the_fast_model_classifies_a_crowded_frame(
    shared_dir: Path, tmp_path: Path
) -> None:
    """A fake camera showing a group photo (five faces) in headless Chromium: the live view's
    note names the fast model and the number of faces; in Spanish too."""
    sync_api = pytest.importorskip("playwright.sync_api")
    from serve_helpers import write_y4m
    from test_serve_browser import BINARY, TIMEOUT_MS, fake_camera_args, start_session

    if not Path(BINARY).is_file():
        pytest.skip("needs Chromium (Debian: apt-get install chromium chromium-driver)")
    photo = cv2.imread(str(shared_dir / "media" / "multi_face.jpg"))
    if photo is None:
        pytest.skip("needs ../shared/media/multi_face.jpg")
    frame = cv2.resize(photo, (640, 426))
    canvas = cv2.copyMakeBorder(frame, 27, 27, 0, 0, cv2.BORDER_CONSTANT, value=(40, 40, 40))
    camera = write_y4m(tmp_path / "group.y4m", [canvas] * 10)
    with (
        running_server(tmp_path / "ws", "--crowd-faces", "3") as server,
        sync_api.sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(
            executable_path=BINARY, headless=True, args=fake_camera_args(camera)
        )
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            for lang, words in (("en", "faces: the fast model is classifying"),
                                ("es", "caras: clasifica el modelo fast")):  # fmt: skip
                page.goto(server.url)
                # The page's language choice, remembered as the language menu remembers it.
                page.evaluate("l => localStorage.setItem('emotrace.lang', l)", lang)
                page.reload()
                page.wait_for_selector("#view-sessions:not([hidden])")
                start_session(page, "P-001", f"group-{lang}", "camera")
                page.wait_for_selector("#crowd-note:not([hidden])")
                note = page.inner_text("#crowd-note")
                assert words in note and note.split()[0].isdigit() and int(note.split()[0]) > 3
                page.click("#stop")
                page.wait_for_selector("#view-review:not([hidden])")
        finally:
            browser.close()
