"""Segments and excluded stretches through a real ``emotrace serve``: the API (markers with an
end, 422 sentences, ``GET .../segments`` against the store's own figures) and, in Chromium on the
real page, the live view's ``s`` key and the review's segment form.

The server, client and browser tab are ``test_serve_page``'s fixtures (one of each per module).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
ws_client = pytest.importorskip("websockets.sync.client")

from emotrace.sessions import SessionStore, summarize  # noqa: E402
from serve_helpers import Server, face_frames, jpeg  # noqa: E402
from test_serve_api import assert_error, frame_message  # noqa: E402
from test_serve_browser import BINARY, session_info, start_session, wait_for_face  # noqa: E402

# test_serve_page's fixtures, reused (pytest finds them here by name; the tests' arguments of the
# same names are what ruff calls redefinitions, F811).
from test_serve_page import client, page, server  # noqa: E402, F401


def recorded_session(server: Server, client: httpx.Client) -> int:  # noqa: F811
    """A complete session: 12 frames of a face at 0-5.5 s, then 8 without one at 6-9.5 s."""
    body = {"patient": "P-035", "name": f"seg-{time.monotonic_ns()}", "consent": True}
    sid: int = client.post("/api/v1/sessions", json=body).json()["id"]
    blank = jpeg(np.full((240, 320, 3), 128, np.uint8))
    frames = [jpeg(f) for f in face_frames(12, (320, 240))] + [blank] * 8
    with ws_client.connect(
        f"{server.ws_base}/api/v1/sessions/{sid}/live", additional_headers=server.auth,
        open_timeout=30,
    ) as ws:  # fmt: skip
        assert '"ready"' in ws.recv(timeout=30)
        for i, data in enumerate(frames):
            ws.send(frame_message(data, 0.5 * i))
            assert '"result"' in ws.recv(timeout=60)
        ws.send('{"type": "stop"}')
        assert '"finished"' in ws.recv(timeout=30)
    assert client.get(f"/api/v1/sessions/{sid}").json()["status"] == "complete"
    return sid


def test_segments_through_the_api(server: Server, client: httpx.Client) -> None:  # noqa: F811
    sid = recorded_session(server, client)
    url = f"/api/v1/sessions/{sid}/markers"
    intake = client.post(url, json={"label": "intake", "time_s": 0, "end_s": 6})
    assert intake.status_code == 201, intake.text
    assert intake.json() | {"id": 0} == {"id": 0, "time_s": 0.0, "label": "intake",
                                         "end_s": 6.0, "excluded": False}  # fmt: skip
    left = client.post(url, json={"label": "camera moved", "time_s": 2, "end_s": 4,
                                  "excluded": True})  # fmt: skip
    assert left.status_code == 201 and left.json()["excluded"] is True
    later = client.post(url, json={"label": "no face", "time_s": 6, "end_s": 10})
    assert later.status_code == 201

    # Bad segments: 422 with a sentence naming the field; nothing is stored.
    for bad, field, words in [
        ({"label": "x", "time_s": 5, "end_s": 3}, "end_s", "must come after the start (5 s)"),
        ({"label": "x", "time_s": 5, "excluded": True}, "excluded", "needs an end"),
        ({"label": "x", "time_s": 5, "end_s": -1}, "end_s", "greater than or equal to 0"),
        ({"label": "x", "time_s": 5, "end_s": "soon"}, "end_s", "valid number"),
    ]:
        detail = assert_error(client.post(url, json=bad), 422)["detail"]
        assert detail[0]["loc"][-1] == field and words in detail[0]["msg"], detail
    late = assert_error(client.post(url, json={"label": "x", "time_s": 5, "end_s": 600}), 422)
    assert "after the end of session" in late["detail"]
    mid = intake.json()["id"]
    # The stored start (0) is checked too when only the end changes.
    shrunk = assert_error(client.patch(f"{url}/{mid}", json={"end_s": 0}), 422)
    assert "must come after its start" in str(shrunk["detail"]), shrunk
    assert len(client.get(url).json()) == 3

    # Figures per segment: the store's own, with the excluded stretch left out of them.
    answer = client.get(f"/api/v1/sessions/{sid}/segments")
    assert answer.status_code == 200, answer.text
    figures = answer.json()
    with SessionStore(server.workspace, readonly=True) as store:
        summary = summarize(store.load(sid))
    expected = summary.to_dict()
    assert figures["segments"] == expected["segment_stats"]
    assert [s["label"] for s in figures["segments"]] == ["intake", "no face"]
    first, second = figures["segments"]
    assert first["excluded_s"] == 2.0 and first["visible"] == pytest.approx(1.0, abs=0.1)
    assert first["dominant"] is not None and math.isclose(sum(
        v for v in first["time_share"].values()), 1.0, abs_tol=1e-6)  # fmt: skip
    assert second["dominant"] is None and second["visible"] == 0.0  # no face in it
    assert [m["label"] for m in figures["excluded"]] == ["camera moved"]
    assert figures["excluded_s"] == 2.0
    assert_error(client.get("/api/v1/sessions/999999/segments"), 404)

    # A segment becomes a point marker again with "end_s": null (excluded cleared with it).
    point = client.patch(f"{url}/{left.json()['id']}", json={"end_s": None, "excluded": False})
    assert point.status_code == 200 and point.json()["end_s"] is None
    assert client.get(f"/api/v1/sessions/{sid}/segments").json()["excluded"] == []
    kept = client.patch(f"{url}/{mid}", json={"label": "intake and consent"})
    assert kept.json()["end_s"] == 6.0  # leaving end_s out keeps it


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(not __import__("pathlib").Path(BINARY).is_file(), reason="needs Chromium")
def test_live_segment_key_and_review_form(page: Any, server: Server) -> None:  # noqa: F811
    start_session(page, "P-035", f"seg-live-{time.monotonic_ns()}", "camera")
    first = wait_for_face(page)
    sid = int(page.evaluate("() => window.emotraceState.live.id"))
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.fill("#marker-text", "exercise")
    page.press("#marker-text", "Escape")  # back to the page, the text stays for the segment
    wait_for_face(page, first["frame"] + 1)
    started_at = session_info(server, page, sid)["started_at"]
    pressed = time.time() - started_at  # the server's clock: the same machine's
    page.keyboard.press("s")
    page.wait_for_selector("#segment-open:not([hidden])")
    assert "exercise" in page.inner_text("#segment-open")
    opened = page.evaluate("() => window.emotraceState.live.openSegment.start")
    # The page's estimate of the session clock is the moment of the key press (the analysis
    # time of the last frame included: without it, it lagged by that much under load).
    assert abs(opened - pressed) < 0.4, (opened, pressed)
    wait_for_face(page, first["frame"] + 3)  # the segment lasts a few frames
    with page.expect_response(lambda r: r.request.method == "POST" and "/markers" in r.url) as r:
        page.keyboard.press("s")
    assert r.value.status == 201, r.value.text()
    assert page.is_hidden("#segment-open")
    # Escape cancels an open segment: nothing is stored.
    page.keyboard.press("s")
    page.wait_for_selector("#segment-open:not([hidden])")
    page.keyboard.press("Escape")
    page.wait_for_selector("#segment-open", state="hidden")
    markers = session_info(server, page, sid)["marker_list"]
    assert [(m["label"], m["excluded"]) for m in markers] == [("exercise", False)]
    segment = markers[0]
    assert segment["end_s"] > segment["time_s"] >= 0
    assert page.evaluate("() => window.emotraceState.live.markers.length") == 1

    # A segment open across a reload: the resumed live view shows it open, s stores it whole.
    page.fill("#marker-text", "discussion")
    page.press("#marker-text", "Escape")
    page.keyboard.press("s")
    page.wait_for_selector("#segment-open:not([hidden])")
    opened = page.evaluate("() => window.emotraceState.live.openSegment.start")
    page.reload()
    page.wait_for_selector("#resume-hint:not([hidden])")
    page.click("#resume-here")
    page.wait_for_selector("#segment-open:not([hidden])")
    assert "discussion" in page.inner_text("#segment-open")
    resumed = wait_for_face(page)
    assert resumed["time_s"] > opened
    with page.expect_response(lambda r: r.request.method == "POST" and "/markers" in r.url) as r:
        page.keyboard.press("s")
    assert r.value.status == 201, r.value.text()
    across = r.value.json()
    assert across["label"] == "discussion" and across["time_s"] == pytest.approx(opened)
    assert across["end_s"] >= resumed["time_s"]

    page.click("#stop")
    page.wait_for_selector("#view-review:not([hidden])")
    assert page.evaluate("() => localStorage.getItem('emotrace.openSegment')") is None
    row = page.locator(f"#markers-table tbody tr[data-id='{segment['id']}']")
    assert float(row.locator("input").nth(2).input_value()) == round(segment["end_s"], 1)
    # An excluded stretch with its reason, its times picked by dragging across the timeline.
    page.wait_for_function("() => window.emotraceState.review?.timeline?.times.length > 0")
    span = page.evaluate(
        "() => { const v = window.emotraceState.review.timeline;"
        " return Math.max(1, ...v.times, ...v.markers.map(m => m.end_s ?? m.time_s)); }"
    )
    box = page.locator("#review-timeline").bounding_box()
    assert box is not None
    middle = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 0.2 * box["width"], middle)
    page.mouse.down()
    page.mouse.move(box["x"] + 0.6 * box["width"], middle, steps=5)
    page.mouse.up()
    start = float(page.input_value("#review-marker-time"))
    end = float(page.input_value("#review-marker-end"))
    assert end - start == pytest.approx(0.4 * span * box["width"] / (box["width"] - 8), abs=0.2)
    assert page.evaluate("() => document.activeElement.id") == "review-marker-label"
    page.keyboard.type("camera moved")
    page.check("#review-marker-excluded")
    with page.expect_response(lambda r: r.request.method == "POST" and "/markers" in r.url) as r:
        page.click("#review-marker-form button[type=submit]")
    assert r.value.status == 201, r.value.text()
    stored = r.value.json()
    assert (stored["time_s"], stored["end_s"], stored["excluded"]) == (start, end, True)
    page.wait_for_selector("#markers-table tbody tr.excluded")
    page.frame_locator("#report").locator("#excluded-stretches").wait_for()
    assert "camera moved" in page.frame_locator("#report").locator("#parts").inner_text()
    # A refused end says why, in a sentence.
    page.fill("#review-marker-time", "1")
    page.fill("#review-marker-label", "x")
    page.fill("#review-marker-end", "0.5")
    page.click("#review-marker-form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#review-error').textContent !== ''")
    error = page.inner_text("#review-error")
    assert "End must come after the start" in error and "[" not in error, error
    assert len(session_info(server, page, sid)["marker_list"]) == 3
