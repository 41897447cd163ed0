"""Per-patient baselines through a real ``emotrace serve`` (issue 35, section 1): the API on
loopback with its errors, and the page in Chromium (the review sets a baseline from a range, the
live view's "relative to baseline" switch shows calibrated bars)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from emotrace.sessions.baseline import calibrate  # noqa: E402
from emotrace.sessions.store import SessionStore  # noqa: E402
from serve_helpers import Server, face_frames, running_server, write_y4m  # noqa: E402
from session_streams import CLASSES  # noqa: E402
from test_baseline import probs, record, resting  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workspace = tmp_path_factory.mktemp("serve-baseline")
    rng = np.random.default_rng(11)
    with SessionStore(workspace, create=True) as store:  # recorded before the server starts
        record(store, "intake", [(30, lambda i: resting(rng)), (10, lambda i: probs(happy=0.8))])
        record(store, "week-2", [(5, lambda i: probs(sad=0.5)), (8, lambda i: None),
                                 (20, lambda i: probs(neutral=0.5))])  # fmt: skip
    with running_server(workspace) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, headers=server.auth, timeout=60) as c:
        yield c


def session_id(client: httpx.Client, patient: str, name: str) -> int:
    found = client.get("/api/v1/sessions", params={"patient": patient}).json()
    return int(next(s["id"] for s in found if s["name"] == name))


def test_api_sets_lists_replaces_and_clears_a_patients_baseline(client: httpx.Client) -> None:
    intake, week2 = session_id(client, "P-017", "intake"), session_id(client, "P-017", "week-2")
    for body, status, text in (
        ({"start_s": 0, "end_s": 13}, 422, "the face is visible for 5.0 s of it"),
        ({"start_s": 20, "end_s": 10}, 422, "must come after its start"),
        ({"start_s": 0}, 422, "end_s"),
        ({"start_s": -1, "end_s": 10}, 422, "start_s"),
    ):
        refused = client.post(f"/api/v1/sessions/{week2}/baseline", json=body)
        assert refused.status_code == status and text in str(refused.json()["detail"]), refused.text
    assert client.post("/api/v1/sessions/99999/baseline", json={"start_s": 0, "end_s": 20}
                       ).status_code == 404  # fmt: skip
    assert client.get("/api/v1/patients/P-017/baseline").status_code == 404
    assert client.get(f"/api/v1/sessions/{intake}/baseline").status_code == 404
    assert client.get("/api/v1/patients/P-017/baselines").json() == []
    assert client.get(f"/api/v1/sessions/{intake}/summary").json()["relative"] is None

    made = client.post(f"/api/v1/sessions/{intake}/baseline", json={"start_s": 0, "end_s": 30})
    assert made.status_code == 201, made.text
    first = made.json()
    assert first["active"] and first["visible_s"] == pytest.approx(30)
    assert first["session_name"] == "intake" and first["stats"]["frames"] == 300
    assert first["reference"] is not None and max(first["reference"], key=first["reference"].get
                                                  ) == "neutral"  # fmt: skip
    assert client.get(f"/api/v1/sessions/{intake}/baseline").json()["id"] == first["id"]
    assert client.get("/api/v1/patients/P-017/baseline").json()["id"] == first["id"]
    summary = client.get(f"/api/v1/sessions/{intake}/summary").json()
    assert summary["time_share"]["neutral"] == 0  # raw: the resting face reads sad
    calibrated = summary["relative"]["calibrated"]
    assert calibrated["time_share"]["neutral"] > 0.9 * 30 / 40
    assert calibrated["time_share"]["happy"] == pytest.approx(10 / 40, abs=0.01)
    assert summary["relative"]["valence"]["z"] > 0  # the happy stretch is above rest
    report = client.get(f"/api/v1/sessions/{intake}/report").text
    assert "Relative to the patient's baseline" in report
    assert "face visible 30.0 s (300 frames)" in report

    second = client.post(f"/api/v1/sessions/{week2}/baseline", json={"start_s": 13, "end_s": 33})
    assert second.status_code == 201 and second.json()["visible_s"] == pytest.approx(20)
    history = client.get("/api/v1/patients/P-017/baselines").json()
    assert [(b["id"], b["active"]) for b in history] == [
        (second.json()["id"], True), (first["id"], False),
    ]  # fmt: skip
    # The intake session keeps the baseline it was analysed against; the other patient has none.
    assert client.get(f"/api/v1/sessions/{intake}/baseline").json()["id"] == first["id"]
    assert client.get("/api/v1/patients/P-018/baselines").json() == []

    cleared = client.delete("/api/v1/patients/P-017/baseline")
    assert cleared.status_code == 200 and cleared.json()["active"] is False
    assert client.get("/api/v1/patients/P-017/baseline").status_code == 404
    again = client.delete("/api/v1/patients/P-017/baseline")
    assert again.status_code == 404 and again.json()["error"] == "not found"
    assert client.get("/api/v1/patients/not%20a%20name/baselines").status_code == 422
    assert client.get("/api/v1/patients/Mar%C3%ADa/baselines").json() == []  # accents are fine


@pytest.mark.slow
@pytest.mark.browser
def test_page_review_sets_a_baseline_and_live_bars_turn_relative(
    server: Server, client: httpx.Client, tmp_path_factory: pytest.TempPathFactory
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    from test_serve_browser import BINARY, TIMEOUT_MS, fake_camera_args, start_session

    if not Path(BINARY).is_file():
        pytest.skip("needs Chromium (Debian: apt-get install chromium chromium-driver)")
    # A patient of this run's own (the test runs again on the same server: --count), recorded by
    # another process while the server runs, as emotrace analyze --session would.
    patient = f"P-B{time.monotonic_ns() % 10**9}"
    with SessionStore(server.workspace) as store:
        rng = np.random.default_rng(13)
        pieces = [(30, lambda i: resting(rng)), (5, lambda i: probs(happy=0.8))]
        intake = record(store, "intake", pieces, patient=patient)
    camera = write_y4m(tmp_path_factory.mktemp("camera") / "face.y4m", face_frames(30))
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=BINARY, headless=True, args=fake_camera_args(camera)
        )
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(server.url)
        page.evaluate("id => { location.hash = `#/review/${id}`; }", intake)
        page.wait_for_selector("#review-baseline-info:has-text('No baseline')")
        # A range picked on the review's timeline (it fills the segment form) is taken over.
        page.fill("#review-marker-time", "0")
        page.fill("#review-marker-end", "4")
        page.click("#review-baseline-pick")
        assert page.input_value("#review-baseline-end") == "4"
        page.click("#review-baseline-form button[type=submit]")
        page.wait_for_selector("#review-baseline-error:has-text('at least 10 s')")
        page.fill("#review-baseline-end", "30")
        page.click("#review-baseline-form button[type=submit]")
        page.wait_for_selector("#review-baseline-info:has-text('Measured against the baseline')")
        assert page.inner_text("#review-baseline-error") == ""
        page.frame_locator("#report").locator("#baseline h3").wait_for()
        baseline = client.get(f"/api/v1/patients/{patient}/baseline").json()
        assert (baseline["session_id"], baseline["start_s"], baseline["end_s"]) == (intake, 0, 30)

        # A new session of the patient is analysed against it: the switch is offered live.
        start_session(page, patient, "week-1", "camera")
        page.wait_for_selector("#relative:not([disabled])")
        # Marking a baseline live: start and end a moment apart is refused with the reason.
        last = "() => { const r = window.emotraceState.lastResult; return r ? r.time_s : -1; }"
        page.wait_for_function(f"() => ({last})() >= 0")
        page.click("#baseline-start")
        page.wait_for_selector("#baseline-note:has-text('Baseline from')")
        started = page.evaluate(last)
        page.wait_for_function(f"() => ({last})() > {started}")  # the live clock moved on
        page.click("#baseline-end")
        page.wait_for_selector("#baseline-note:has-text('at least 10 s')")
        assert client.get(f"/api/v1/patients/{patient}/baseline").json()["id"] == baseline["id"]
        page.check("#relative")
        # A result drawn after the switch (the bars are redrawn per result).
        switched = page.evaluate("() => (window.emotraceState.lastResult || {frame: -1}).frame")
        page.wait_for_function(
            "n => { const r = window.emotraceState.lastResult;"
            " return r && r.frame > n && r.patient !== null; }",
            arg=switched,
        )
        shown: dict[str, Any] = page.evaluate(
            "() => { const r = window.emotraceState.lastResult;"
            " return { probs: r.faces[r.patient].probabilities,"
            " pct: Object.fromEntries([...document.querySelectorAll('#bars .bar')].map("
            " b => [b.dataset.class, b.querySelector('.pct').textContent])),"
            " label: document.querySelector('#patient-label').textContent }; }"
        )
        raw = np.array([shown["probs"][c] for c in CLASSES])
        stats = baseline["stats"]["mean_probabilities"]
        expected = calibrate(raw[None], [stats[c] for c in CLASSES],
                             [baseline["reference"][c] for c in CLASSES])[0]  # fmt: skip
        for c, value in zip(CLASSES, expected, strict=True):
            assert abs(int(shown["pct"][c].rstrip("%")) - 100 * value) <= 0.51, (c, shown)
        assert shown["label"] == CLASSES[int(expected.argmax())]
        page.click("#stop")
        page.wait_for_selector("#view-review:not([hidden])")
        browser.close()
