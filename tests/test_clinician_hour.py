"""A clinician's hour in a minute (issue 33, "Done when"): one walk through the real page.

Debian's Chromium (Playwright) with the fake camera of a real face, one real ``emotrace serve``
on loopback: a camera session with preset and free-text markers, pause and resume, a reload
and Resume, a second tab that asks before taking the session over (the first says it lost it),
Stop; the review with notes saved and a marker edited; a second session of the same pseudonym
with the comparison ticked; the HEVC video of ``../shared/media`` analysed by the server to the
end; the CSV, JSON Lines and Parquet downloads; a delete. At every stage the numbers the page
shows (frames, face visible, duration, status, markers and their times) are checked against
what the API returns for that session at that moment.

The server, the browser and its profiles are ``test_serve_recovery``'s fixtures.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
pytest.importorskip("playwright.sync_api")
pyarrow_parquet = pytest.importorskip("pyarrow.parquet")

from conftest import SHARED  # noqa: E402
from emotrace.sessions.types import clock as report_clock  # noqa: E402
from serve_helpers import Server  # noqa: E402
from test_serve_browser import start_session, wait_for_face  # noqa: E402

# test_serve_recovery's fixtures, reused (pytest finds them here by name; the test's arguments
# of the same names are what ruff calls redefinitions, F811).
from test_serve_recovery import (  # noqa: E402, F401
    browser,
    camera,
    client,
    context,
    go,
    needs_browser,
    new_tab,
    server,
    wait_status_pill,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser]

MEDIA = SHARED / "media"


# -- the page's own formatting (util.js), applied to the API's numbers ----------------------


def js_round(value: float) -> int:
    """``Math.round``: halves go up (Python's ``round`` goes to even)."""
    return math.floor(value + 0.5)


def js_clock(seconds: float) -> str:
    """util.js ``clock``."""
    s = max(0, js_round(seconds))
    h, m, r = s // 3600, (s % 3600) // 60, s % 60
    return f"{h}:{m:02d}:{r:02d}" if h else f"{m}:{r:02d}"


def js_visible(info: dict[str, Any]) -> str:
    """util.js ``faceVisible``."""
    ratio = info["visible_ratio"]
    return "–" if ratio is None else f"{js_round(100 * ratio)}%"


def marker_lines(markers: list[dict[str, Any]]) -> list[str]:
    """The live view's marker log of these markers, oldest first."""
    return [f"{js_clock(m['time_s'])} {m['label']}" for m in markers]


def hevc_video() -> Path | None:
    """The HEVC video of the shared media (as phones record), found by its codec: ffprobe where
    installed, else the FFmpeg inside OpenCV."""
    for video in sorted(MEDIA.glob("*")) if MEDIA.is_dir() else []:
        if video.suffix.lower() not in {".mov", ".mp4", ".mkv", ".m4v"}:
            continue
        if shutil.which("ffprobe"):
            probe = subprocess.run(
                ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                 "stream=codec_name", "-of", "csv=p=0", str(video)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            codec = probe.stdout.strip()
        else:
            import cv2

            fourcc = int(cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FOURCC))
            codec = fourcc.to_bytes(4, "little").decode("latin-1").strip("\x00").lower()
        if codec in {"hevc", "h265", "hev1", "hvc1"}:
            return video
    return None


# -- what the page shows, against the API ------------------------------------------------------


def api(page: Any, path: str) -> Any:
    """``GET /api/v1{path}`` from the page, with its sign-in, at this moment."""
    return page.evaluate("async p => (await fetch('/api/v1' + p)).json()", path)


def live_log(page: Any) -> list[str]:
    """The live view's marker log, oldest first."""
    items: list[str] = page.eval_on_selector_all(
        "#marker-log li", "els => els.map(e => e.textContent)"
    )
    return items[::-1]


def check_review(page: Any, sid: int) -> dict[str, Any]:
    """The review of ``sid`` (open): header, marker table and report equal the API's figures."""
    page.wait_for_function(
        "id => window.emotraceState.review && window.emotraceState.review.id === id "
        "&& document.querySelector('#review-meta').textContent.includes(' frames')",
        arg=sid,
    )
    info: dict[str, Any] = api(page, f"/sessions/{sid}")
    summary: dict[str, Any] = api(page, f"/sessions/{sid}/summary")
    meta = page.inner_text("#review-meta").split(" · ")
    figures = f"{info['frames']} frames, face visible {js_visible(info)}"
    assert meta[1:4] == [js_clock(info["duration_s"]), info["status"], figures], meta
    if info["not_recorded_s"] >= 1:
        breaks = js_clock(info["not_recorded_s"])
        assert meta[4] == f"not recorded (paused or interrupted) {breaks}", meta
    assert page.inner_text("#review-title") == f"{info['patient']} · {info['name']}"
    rows = page.eval_on_selector_all(
        "#markers-table tbody tr",
        "rows => rows.map(r => [...r.querySelectorAll('input')].slice(0, 2).map(i => i.value))",
    )
    assert rows == [[f"{m['time_s']:.1f}", m["label"]] for m in info["marker_list"]]

    report = page.frame_locator("#report")
    header = report.locator("#header").inner_text()
    assert f"Duration\t{report_clock(summary['duration_s'])}" in header, header
    pct = f"{summary['visible_ratio']:.0%}"
    assert f"face visible {pct} of the recorded time" in header, header
    assert f"recording {info['status']}" in header
    assert summary["visible_ratio"] == pytest.approx(info["visible_ratio"], abs=1e-9)
    quality = report.locator("#quality tbody td").all_inner_texts()
    assert quality[:4] == [str(info["frames"]), report_clock(summary["recorded_s"]),
                           str(info["visible_frames"]), pct], quality  # fmt: skip
    listed = report.locator("#markers tr:has(td)").all_inner_texts()
    expected = [f"{i}\t{report_clock(m['time_s'])}\t{m['label']}"
                for i, m in enumerate(summary["markers"], start=1)]  # fmt: skip
    assert ["\t".join(row.split("\t")[:3]) for row in listed] == expected, listed
    assert len(summary["markers"]) == info["markers"] == len(info["marker_list"])
    return info


def check_list_row(page: Any, info: dict[str, Any]) -> None:
    """The sessions list's row of ``info``: duration, status and face visible as the API says."""
    row = page.locator(f"#sessions-table tr[data-id='{info['id']}']")
    row.wait_for()
    cells = row.locator("td").all_inner_texts()
    assert cells[0] == info["patient"] and cells[1] == info["name"]
    assert cells[3:6] == [js_clock(info["duration_s"]), info["status"], js_visible(info)], cells


def download(page: Any, link: str, folder: Path) -> Path:
    """Click a download link of the page; the file it saved."""
    with page.expect_download() as started:
        page.click(link)
    path = folder / started.value.suggested_filename
    started.value.save_as(path)
    return path


def check_exports(page: Any, info: dict[str, Any], folder: Path) -> None:
    """CSV, JSON Lines and Parquet downloaded from the review hold the session's rows."""
    sid, n = info["id"], info["frames"]
    labels = sorted(m["label"] for m in info["marker_list"])

    rows = list(csv.DictReader(io.StringIO(download(page, "#dl-csv", folder).read_text())))
    assert len(rows) == n and {r["session_id"] for r in rows} == {str(sid)}
    assert sum(r["face_visible"] in ("1", "True", "true") for r in rows) == info["visible_frames"]

    lines = [json.loads(x) for x in download(page, "#dl-jsonl", folder).read_text().splitlines()]
    kinds = [x["type"] for x in lines]
    assert kinds.count("session") == 1 and kinds.count("frame") == n
    assert sorted(x["label"] for x in lines if x["type"] == "marker") == labels
    assert [x["frame"] for x in lines if x["type"] == "frame"] == [int(r["frame"]) for r in rows]

    table = pyarrow_parquet.read_table(download(page, "#dl-parquet", folder))
    assert table.num_rows == n and set(table.column("session_id").to_pylist()) == {sid}
    stored = json.loads(table.schema.metadata[b"emotrace.markers"])
    assert sorted(m["label"] for m in stored) == labels


# -- the hour ------------------------------------------------------------------------------------


@needs_browser
def test_a_clinicians_hour_in_a_minute(
    context: Any,  # noqa: F811
    server: Server,  # noqa: F811
    client: httpx.Client,  # noqa: F811
    tmp_path: Path,
) -> None:
    # A patient of its own: the comparison counts every earlier session of the pseudonym.
    patient = f"P-hour-{time.monotonic_ns()}"
    first_name = "week-1"
    dialogs: list[str] = []
    tab = new_tab(context, server.url, dialogs)

    # 1. A camera session: a preset marker and a free-text one, shown as the server stored them.
    start_session(tab, patient, first_name, "camera")
    seen = wait_for_face(tab)
    sid = int(tab.evaluate("() => window.emotraceState.live.id"))
    wait_status_pill(tab, "recording")
    tab.keyboard.press("1")
    tab.keyboard.press("m")
    tab.keyboard.type("mentions her sister")
    tab.keyboard.press("Enter")
    tab.wait_for_function("() => document.querySelectorAll('#marker-log li').length === 2")
    info = api(tab, f"/sessions/{sid}")
    assert info["status"] == "recording" and info["streaming"] is True
    assert sorted(live_log(tab)) == sorted(marker_lines(info["marker_list"]))
    assert {m["label"] for m in info["marker_list"]} == {"topic change", "mentions her sister"}

    # 2. Pause and resume: the pill says so; frames go on after it.
    tab.keyboard.press(" ")
    wait_status_pill(tab, "paused")
    tab.wait_for_timeout(1500)
    paused = api(tab, f"/sessions/{sid}")
    assert paused["status"] == "recording"
    tab.keyboard.press(" ")
    wait_status_pill(tab, "recording")
    seen = wait_for_face(tab, seen["frame"])

    # 3. A reload: the session as stored (interrupted, its frames and markers), then Resume.
    tab.reload()
    wait_status_pill(tab, "interrupted")
    tab.wait_for_function(
        "() => /\\(\\d+ frames kept\\)/.test(document.querySelector('#resume-text').textContent)"
    )
    stored = api(tab, f"/sessions/{sid}")
    assert stored["status"] == "interrupted" and not stored["streaming"]
    assert f"({stored['frames']} frames kept)" in tab.inner_text("#resume-text")
    assert live_log(tab) == marker_lines(stored["marker_list"])
    tab.click("#resume-here")
    tab.wait_for_selector("#resume-hint", state="hidden")
    wait_status_pill(tab, "recording (resumed)")
    wait_for_face(tab, stored["frames"] - 1)
    assert api(tab, f"/sessions/{sid}")["status"] == "recording"
    assert live_log(tab) == marker_lines(stored["marker_list"])

    # 4. A second tab: it shows the session live elsewhere, asks before taking it over; the first
    # says it lost it and shows no live data.
    second = new_tab(context, f"{server.base}/#/live/{sid}", dialogs)
    wait_status_pill(second, "recording elsewhere")
    assert api(second, f"/sessions/{sid}")["streaming"] is True
    assert live_log(second) == marker_lines(api(second, f"/sessions/{sid}")["marker_list"])
    asked = len(dialogs)
    second.click("#resume-here")
    second.wait_for_function("() => window.emotraceState.live !== null")
    assert any("Take it over" in d for d in dialogs[asked:]), dialogs
    wait_status_pill(tab, "taken over")
    assert "took this session over" in tab.inner_text("#resume-text")
    assert tab.evaluate("() => window.emotraceState.live") is None
    assert tab.locator("#bars .bar").count() == 0
    tab.close()  # one camera at a time from here on
    wait_for_face(second)
    second.keyboard.press("4")
    second.wait_for_function("() => document.querySelectorAll('#marker-log li').length === 3")
    live = api(second, f"/sessions/{sid}")
    assert live["status"] == "recording" and live["markers"] == 3
    assert live_log(second) == marker_lines(live["marker_list"])

    # 5. Stop; the review: header, marker table and report as the API has them; notes saved,
    # a marker edited (label and time) and shown as stored.
    second.click("#stop")
    second.wait_for_selector("#view-review:not([hidden])")
    done = check_review(second, sid)
    assert done["status"] == "complete" and done["not_recorded_s"] > 1  # the pause, the reload
    second.fill("#notes", "calm, then talked about her sister")
    second.click("#save-notes")
    second.wait_for_function(
        "() => document.querySelector('#notes-saved').textContent.startsWith('saved to ')"
    )
    assert api(second, f"/sessions/{sid}")["notes"] == "calm, then talked about her sister"
    edit = next(i for i, m in enumerate(done["marker_list"]) if m["label"] == "mentions her sister")
    row = second.locator("#markers-table tbody tr").nth(edit)
    new_time = round(done["marker_list"][edit]["time_s"] + 0.5, 1)
    row.locator("input").nth(0).fill(f"{new_time:.1f}")
    row.locator("input").nth(1).fill("sister: conflict")
    with second.expect_response(lambda r: r.request.method == "PATCH") as patched:
        row.locator("button", has_text="Save").click()
    assert patched.value.ok
    second.wait_for_function(
        "() => [...document.querySelectorAll('#markers-table tbody input')]"
        ".some(i => i.value === 'sister: conflict')"
    )
    second.frame_locator("#report").locator("#markers").get_by_text("sister: conflict").wait_for()
    edited = check_review(second, sid)
    assert {"time_s": new_time, "label": "sister: conflict"}.items() <= next(
        m for m in edited["marker_list"] if m["label"] == "sister: conflict"
    ).items()

    # 6. A second session of the same pseudonym, compared with the first.
    second_name = "week-2"
    start_session(second, patient, second_name, "camera")
    seen = wait_for_face(second)
    wait_for_face(second, seen["frame"] + 2)
    sid2 = int(second.evaluate("() => window.emotraceState.live.id"))
    second.click("#stop")
    second.wait_for_selector("#view-review:not([hidden])")
    check_review(second, sid2)
    earlier = [s for s in api(second, f"/sessions?patient={patient}") if s["id"] != sid2]
    assert [s["id"] for s in earlier] == [sid]
    assert second.inner_text("#compare-patient") == f"{patient} ({len(earlier)})"
    second.check("#compare")
    trend = second.frame_locator("#report").locator("#trend")
    trend.wait_for()
    assert first_name in trend.inner_text() and second_name in trend.inner_text()

    # 7. The HEVC video, analysed by the server to its end; the figures the page showed during
    # the analysis are the API's.
    video = hevc_video()
    sid3 = None
    if video is None:
        warnings.warn(f"the file session was left out: no HEVC video in {MEDIA}", stacklevel=1)
    else:
        second.click("#nav-new")
        second.fill("#patient", patient)
        second.fill("#session-name", "phone-video")
        second.check("#consent")
        second.set_input_files("#video-file", str(video))
        assert second.is_checked("input[name=source][value=file]")
        second.click("#start")
        second.wait_for_selector("#view-file:not([hidden])")
        sid3 = int(second.evaluate("() => location.hash").split("/")[-1])
        second.wait_for_selector("#view-review:not([hidden])", timeout=120_000)
        shown = second.evaluate("() => window.emotraceState.fileProgress")
        analysis = api(second, f"/sessions/{sid3}/analysis?since=1000000000")
        file_info = check_review(second, sid3)
        assert shown["state"] == analysis["state"] == "complete"
        assert shown["frames_done"] == analysis["frames_done"] == file_info["frames"] > 0
        assert shown["frames_total"] == analysis["frames_total"] == file_info["frames"]
        done_text = second.evaluate("() => document.querySelector('#file-done').textContent")
        assert f"{file_info['frames']} / {file_info['frames']} frames" in done_text
        face_text = second.evaluate("() => document.querySelector('#file-face').textContent")
        share = js_round(100 * file_info["visible_frames"] / file_info["frames"])
        assert face_text == f"Face visible in {share}% of the frames so far", face_text

    # 8. Exports of the first session, from its review.
    go(second, f"#/review/{sid}")
    final = check_review(second, sid)
    check_exports(second, final, tmp_path)

    # 9. The list shows each session as the API does; delete the second session.
    go(second, "#/")
    for each in (sid, sid2, sid3):
        if each is not None:
            check_list_row(second, api(second, f"/sessions/{each}"))
    second.click(f"#sessions-table tr[data-id='{sid2}'] button:has-text('Delete')")
    second.wait_for_selector(f"#sessions-table tr[data-id='{sid2}']", state="detached")
    assert any("erased for good" in d for d in dialogs), dialogs
    assert client.get(f"/api/v1/sessions/{sid2}").status_code == 404
    assert client.get(f"/api/v1/sessions/{sid}").json()["markers"] == 3
    second.close()
