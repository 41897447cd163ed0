"""Pauses and interruptions are breaks in the recording, not missing face (issue 33, item 3).

One face-visible figure (``emotrace.sessions.coverage``: the share of the recorded time with the
patient's face) is the same in the analytics, the store, the API (list, session, summary,
report), the page (sessions list, review header, report) and the exports; the live timeline
never joins its points across a pause. Analytics on synthetic streams, the rest on a real SQLite
workspace, a real server on loopback and Debian's Chromium on the real page.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from emotrace.sessions import coverage
from emotrace.sessions.analytics import summarize
from emotrace.sessions.export import export_session
from emotrace.sessions.report import render_report
from emotrace.sessions.store import SessionStore
from session_streams import CLASSES, data_from, onehot

PAUSE_S = 30.0


def paused(data: Any, at_s: float, pause_s: float) -> Any:
    """``data`` with no frame for ``pause_s`` after ``at_s`` (Pause ... Resume)."""
    data.times[data.times >= at_s] += pause_s
    return data


def test_a_pause_is_a_break_and_lowers_no_face_visible_figure() -> None:
    # 20 s face, 10 s no face, 30 s face; a 30 s pause after 40 s.
    s = summarize(paused(data_from([(20, "happy"), (10, None), (30, "sad")]), 40.0, PAUSE_S))
    assert s.visible_ratio == pytest.approx(50 / 60)  # of the recorded time; the pause is not in
    assert s.recorded_s == pytest.approx(60.0) and s.duration_s == pytest.approx(90.0)
    assert [(round(g.start_s, 1), round(g.end_s, 1)) for g in s.breaks] == [(40.0, 70.0)]
    assert s.not_recorded_s == pytest.approx(PAUSE_S, abs=0.01)
    # The face-missing gap is the 10 s without a face, never the pause.
    assert [(round(g.start_s, 1), round(g.end_s, 1)) for g in s.gaps] == [(20.0, 30.0)]
    assert s.to_dict()["breaks"][0]["duration_s"] == pytest.approx(PAUSE_S, abs=0.01)
    # A 30 s window straddling the pause is judged on the time that was recorded in it.
    (w,) = [w for w in s.windows[30.0] if w.start_s == 30.0]
    assert w.dominant == "sad" and w.visible == pytest.approx(1.0)


def test_coverage_leaves_excluded_stretches_out_and_they_are_no_break() -> None:
    times = np.arange(0, 60, 0.1)
    face = np.ones(len(times), bool)
    face[100:200] = False  # 10-20 s without a face
    kept = coverage.measure(times, face)
    assert kept.visible_ratio == pytest.approx(50 / 60) and kept.breaks == ()
    # Excluding 5-25 s (the clinician: "patient left the room"): neither recorded nor a break.
    cut = coverage.measure(times, face, excluded=[(5.0, 25.0)])
    assert cut.recorded_s == pytest.approx(40.0) and cut.visible_ratio == pytest.approx(1.0)
    assert cut.breaks == () and cut.not_recorded_s == 0.0
    assert np.isnan(coverage.measure(np.zeros(0), np.zeros(0, bool)).visible_ratio)


def _record(store: SessionStore, name: str, patient: str = "P-017") -> int:
    """A finished session: 20 s face, 10 s none, 30 s face at 10 frames/s, paused 30 s at 40 s."""
    sid = store.create_session(name, patient, CLASSES)
    rows = []
    for i in range(600):
        t = i / 10 + (PAUSE_S if i >= 400 else 0.0)
        if 200 <= i < 300:
            rows.append((i, t, 0, None, None, None, None, None, None, None))
        else:
            p = onehot("happy" if i < 200 else "sad").astype("<f4").tobytes()
            rows.append((i, t, 1, 1, 10, 10, 80, 80, 0.9, p))
    store.append(sid, rows)
    store.finish(sid)
    return sid


def test_the_store_and_the_summary_give_one_figure_and_exports_carry_the_break(
    tmp_path: Path,
) -> None:
    with SessionStore(tmp_path, create=True) as store:
        sid = _record(store, "week-1")
        (listed,) = store.sessions()
        data = store.load(sid)
    summary = summarize(data)
    assert listed.coverage is not None
    assert listed.coverage.visible_ratio == pytest.approx(summary.visible_ratio)
    assert listed.to_dict()["visible_ratio"] == pytest.approx(50 / 60, abs=1e-6)
    assert listed.to_dict()["not_recorded_s"] == pytest.approx(PAUSE_S, abs=0.01)
    # One duration too: the list and the review header show the report's (it counted the last
    # frame's own interval, they did not: 0:27 beside 0:28).
    assert listed.duration_s == pytest.approx(summary.duration_s)
    html = render_report(summary)
    assert "face visible 83% of the recorded time" in html
    assert "not recorded (paused or interrupted) 0:30" in html
    export_session(data, tmp_path / "out.csv")
    with (tmp_path / "out.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    jumps = [(r["frame"], float(r["break_before_s"])) for r in rows if r["break_before_s"] != "0.0"]
    assert jumps == [("400", pytest.approx(PAUSE_S, abs=0.01))]


# -- the real server and page --------------------------------------------------------------

# The analytics tests above run without the web extra; these need it and Chromium.
try:
    httpx = pytest.importorskip("httpx")
    sync_api = pytest.importorskip("playwright.sync_api")
    pytest.importorskip("fastapi")
    from serve_helpers import Server, face_frames, running_server, write_y4m
    from test_serve_browser import (
        BINARY,
        TIMEOUT_MS,
        fake_camera_args,
        start_session,
        wait_for_face,
    )

    BROWSER = Path(BINARY).is_file()
    WHY = "needs Chromium (Debian: apt-get install chromium chromium-driver)"
except pytest.skip.Exception as missing:
    BROWSER, WHY = False, f"needs the web extra and Playwright ({missing})"

needs_browser = pytest.mark.skipif(not BROWSER, reason=WHY)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workspace = tmp_path_factory.mktemp("serve-gaps")
    with SessionStore(workspace, create=True) as store:  # recorded before the server starts
        _record(store, "paused-1")
    with running_server(workspace) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, headers=server.auth, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def page(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    camera = write_y4m(tmp_path_factory.mktemp("camera") / "face.y4m", face_frames(30))
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=BINARY, headless=True, args=fake_camera_args(camera)
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        tab = context.new_page()
        tab.set_default_timeout(TIMEOUT_MS)
        tab.on("dialog", lambda dialog: dialog.accept())
        tab.goto(server.url)
        tab.wait_for_selector("#view-sessions:not([hidden])")
        yield tab
        context.close()
        browser.close()


@pytest.mark.slow
@pytest.mark.browser
@needs_browser
def test_list_review_report_and_api_show_the_same_face_visible_figure(
    client: httpx.Client, page: Any
) -> None:
    (listed,) = [s for s in client.get("/api/v1/sessions").json() if s["name"] == "paused-1"]
    sid = listed["id"]
    one = client.get(f"/api/v1/sessions/{sid}").json()
    summary = client.get(f"/api/v1/sessions/{sid}/summary").json()
    report = client.get(f"/api/v1/sessions/{sid}/report").text
    ratio = listed["visible_ratio"]
    assert ratio == pytest.approx(50 / 60, abs=1e-6)
    assert one["visible_ratio"] == ratio
    raw = summary.get("raw", summary)  # the summary route may wrap raw and relative figures
    assert raw["visible_ratio"] == pytest.approx(ratio, abs=1e-6)
    assert listed["not_recorded_s"] == pytest.approx(PAUSE_S, abs=0.01)
    pct = f"{round(100 * ratio)}%"
    assert f"face visible {pct} of the recorded time" in report

    page.evaluate("() => { location.hash = '#/sessions'; }")
    row = page.locator(f'#sessions-table tr[data-id="{sid}"]')
    row.wait_for()
    assert pct in row.inner_text().split()
    page.evaluate(f"() => {{ location.hash = '#/review/{sid}'; }}")
    meta = page.locator("#review-meta")
    page.wait_for_function("() => document.querySelector('#review-meta').textContent.length > 0")
    assert f"face visible {pct}" in meta.inner_text()
    assert "not recorded (paused or interrupted) 0:30" in meta.inner_text()
    frame = page.frame_locator("#report")
    assert f"face visible {pct} of the recorded time" in frame.locator("#header").inner_text()
    # Issue 33 (15): the report fits its frame (it was 900 px of charts inside 817).
    for width in (1280, 800):
        page.set_viewport_size({"width": width, "height": 900})
        sizes = frame.locator("body").evaluate(
            "b => [b.ownerDocument.documentElement.scrollWidth, window.innerWidth]"
        )
        assert sizes[0] <= sizes[1], (width, sizes)
    page.set_viewport_size({"width": 1280, "height": 900})


#: Colours the live timeline draws its lines with (valence; arousal), as RGB.
LINE_COLOURS = [(0x00, 0x72, 0xB2), (0xB8, 0x77, 0x00)]


def _timeline_across_the_pause(page: Any) -> dict[str, Any]:
    """Where the live timeline drew its longest jump between results (``drawTimeline``'s axis:
    the last 300 s, at least 10 s), and how many pixels between those two points are near each
    line colour (counted in the page: the canvas is too big to ship pixel by pixel)."""
    result: dict[str, Any] = page.evaluate(
        """(colours) => {
          const live = window.emotraceState.live, canvas = document.querySelector('#timeline');
          const times = live.history.map((p) => p.t);
          const now = times[times.length - 1];
          const start = Math.max(0, now - 300), end = Math.max(now, start + 10);
          const left = 30, right = canvas.width - 8;
          const x = (t) => left + ((t - start) / (end - start)) * (right - left);
          let jump = 0;
          for (let i = 1; i < times.length; i++) {
            if (times[i] - times[i - 1] > times[jump + 1] - times[jump]) jump = i - 1;
          }
          const x0 = Math.floor(x(times[jump])) + 3, x1 = Math.ceil(x(times[jump + 1])) - 2;
          const d = canvas.getContext('2d').getImageData(x0, 0, x1 - x0, canvas.height).data;
          const near = colours.map(([r, g, b]) => {
            let n = 0;
            for (let i = 0; i < d.length; i += 4) {
              const off = Math.abs(d[i] - r) + Math.abs(d[i + 1] - g) + Math.abs(d[i + 2] - b);
              if (d[i + 3] > 0 && off < 60) n++;
            }
            return n;
          });
          return { jump_s: times[jump + 1] - times[jump], width: x1 - x0, near };
        }""",
        LINE_COLOURS,
    )
    return result


@pytest.mark.slow
@pytest.mark.browser
@needs_browser
def test_the_live_timeline_does_not_join_points_across_a_pause(
    page: Any, client: httpx.Client
) -> None:
    start_session(page, "P-033", f"pause-live-{time.monotonic_ns()}", "camera")
    first = wait_for_face(page, wait_for_face(page)["frame"])  # two points before the pause
    page.click("#pause")
    page.wait_for_selector("#live-status:text('paused')")
    time.sleep(2.5)  # well over the 1 s that makes a break
    page.click("#pause")  # Resume
    wait_for_face(page, wait_for_face(page, first["frame"])["frame"])  # and two after it
    drawn = _timeline_across_the_pause(page)
    assert drawn["jump_s"] > 2.0, "the pause left no jump in the results"
    assert drawn["width"] > 20
    for colour, count in zip(LINE_COLOURS, drawn["near"], strict=True):
        assert count == 0, f"a line of colour {colour} crosses the pause ({count} pixels)"
    # The page keeps the breaks it drew (a loaded machine may add short ones of its own).
    spans = page.evaluate("() => window.emotraceState.live.breaks")
    assert any(b - a > 2.0 for a, b in spans), spans
    sid = int(page.evaluate("() => window.emotraceState.live.id"))
    page.click("#stop")
    page.wait_for_selector("#view-review:not([hidden])")
    info = client.get(f"/api/v1/sessions/{sid}").json()
    # The server saw the same break: not recorded, and no face missing because of it.
    assert info["not_recorded_s"] >= 1.5
    assert info["visible_ratio"] > 0.9


@pytest.mark.slow
@pytest.mark.browser
@needs_browser
def test_head_orientation_is_drawn_in_the_live_view_on_demand(page: Any) -> None:
    # Issue 35 (2): the server sends yaw, pitch and roll per face; the page draws them when
    # "Head orientation" is ticked, and marks a face turned beyond the analytics' limits.
    start_session(page, "P-035", f"pose-live-{time.monotonic_ns()}", "camera")
    result = wait_for_face(page)
    face = result["faces"][result["patient"]]
    assert all(isinstance(face[k], int | float) for k in ("yaw", "pitch", "roll")), face

    def label_pixels() -> int:
        """Pixels of the pose label's dark backing (rgba(13, 17, 23, 0.75)) on the overlay."""
        count: int = page.evaluate(
            """() => {
              const c = document.querySelector('#overlay');
              const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
              let n = 0;
              for (let i = 0; i < d.length; i += 4) {
                const dark = d[i] === 13 && d[i + 1] === 17 && d[i + 2] === 23;
                if (dark && Math.abs(d[i + 3] - 191) < 3) n++;
              }
              return n;
            }"""
        )
        return count

    assert not page.is_checked("#show-pose")
    assert label_pixels() == 0
    page.check("#show-pose")  # redraws the last result at once
    assert label_pixels() > 500
    turned = page.evaluate(
        """async () => {
          const draw = await import('/static/js/live_draw.js');
          return [draw.tooTurned({yaw: 30, pitch: 0}), draw.tooTurned({yaw: 10, pitch: -21}),
                  draw.tooTurned({yaw: 24, pitch: 19}), draw.tooTurned({yaw: null, pitch: null})];
        }"""
    )
    assert turned == [True, True, False, False]
    page.reload()  # remembered
    page.wait_for_selector("#view-live:not([hidden]), #view-sessions:not([hidden])")
    assert page.is_checked("#show-pose")
    page.uncheck("#show-pose")
    page.evaluate("() => { location.hash = '#/sessions'; }")
