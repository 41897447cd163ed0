"""The clinician's report: self-contained HTML, rendered in headless Chromium, no network."""

from __future__ import annotations

import re
from html import escape
from pathlib import Path

import cv2
import numpy as np
import pytest

from chromium_helpers import RequestLog, chromium, needs_chromium
from conftest import run_emotrace as emotrace
from emotrace.sessions.analytics import summarize
from emotrace.sessions.recorder import SessionRecorder
from emotrace.sessions.report import CAUTION, render_report
from emotrace.sessions.store import SessionStore
from session_streams import CLASSES, stream

SECTIONS = ("header", "caution", "quality", "timeline", "affect", "distribution", "segments",
            "markers", "transitions", "trend", "method")  # fmt: skip
HOSTILE = '<script>alert("x")</script> <img src="https://example.com/t.png">'


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report-workspace")
    sessions = {
        "week-1": [(36, "happy"), (4, None), (20, "sad")],
        "week-2": [(30, "happy"), (30, "neutral")],
        "no-face": [(20, None)],
    }
    for name, spec in sessions.items():
        with SessionRecorder(name, "P-017", CLASSES, workspace=root, consent=True) as recorder:
            for index, time_s, faces in stream(spec):
                recorder.record(index, time_s, faces)
            if name == "week-1":
                recorder.mark("topic: family", 30.0)
                recorder.mark(HOSTILE, 45.0)
    return root


def _html(workspace: Path, name: str, compare: tuple[str, ...] = ()) -> str:
    with SessionStore(workspace, readonly=True) as store:
        summary = summarize(store.load(name))
        others = [summarize(store.load(c)) for c in compare]
    return render_report(summary, others)


def test_the_report_is_one_self_contained_file_with_every_section(workspace: Path) -> None:
    html = _html(workspace, "week-1", ("week-2",))
    for section in SECTIONS:
        assert f'<section id="{section}">' in html, section
    assert "<script>" not in html and escape(HOSTILE) in html  # marker text is only text
    # Text between tags is only text (a label on the marker track may be shortened there).
    markup = re.sub(r">[^<]*<", "><", html)
    assert "http://" not in markup and "https://" not in markup
    assert not re.search(r"\s(src|href)\s*=|url\((?!#)", markup), "nothing is loaded or linked"
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert escape(CAUTION) in html and "not a diagnosis" in html
    assert "P-017" in html and "week-1" in html
    assert html.count("<svg") >= 5 and 'fill="url(#missing)"' in html  # the gap is drawn


def test_a_session_without_a_face_says_so_instead_of_empty_charts(workspace: Path) -> None:
    html = _html(workspace, "no-face")
    assert '<section id="no-face">' in html and "was not detected" in html
    for absent in ("timeline", "affect", "distribution", "segments"):
        assert f'<section id="{absent}">' not in html
    assert "<polygon" not in html and "<polyline" not in html


@needs_chromium
@pytest.mark.slow
def test_the_report_renders_in_headless_chromium_without_any_request(
    workspace: Path, tmp_path: Path
) -> None:
    result = emotrace(
        "report", "week-1", "--compare", "week-2", "--workspace", workspace, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    report = tmp_path / "P-017_session1_report.html"  # pseudonym and id, no name
    assert report.is_file() and report.name in result.stdout

    log = RequestLog()
    try:
        control = tmp_path / "control.html"
        control.write_text('<p>control</p><img src="http://emotrace-control.invalid/x.png">')
        chromium(control, log, "--dump-dom")
        assert "emotrace-control.invalid" in log.page_hosts(), "the request log must see pages"
        log.lines.clear()

        dom = chromium(report, log, "--dump-dom").stdout.decode()
        shot = tmp_path / "report.png"
        chromium(report, log, f"--screenshot={shot}", "--window-size=1000,2600")
        assert log.page_hosts() == set(), log.lines
    finally:
        log.close()

    for section in SECTIONS:
        assert f'<section id="{section}">' in dom, section
    assert dom.count("<svg") >= 5 and "topic: family" in dom
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (2600, 1000)
    assert float(image.std()) > 20, "the screenshot is not blank"
    happy = np.array([0x00, 0x9F, 0xE6])  # the timeline's happy colour, BGR
    assert (np.abs(image.astype(int) - happy).sum(axis=2) < 30).sum() > 5000


@needs_chromium
@pytest.mark.slow
def test_the_report_prints_to_pdf(workspace: Path, tmp_path: Path) -> None:
    result = emotrace(
        "report",
        "week-2",
        "-o",
        tmp_path / "r.html",
        "--pdf",
        "--workspace",
        workspace,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    pdf = tmp_path / "r.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 10_000


def test_a_pdf_without_chromium_is_one_line_and_the_html_is_kept(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import assert_one_line_error

    monkeypatch.setenv("EMOTRACE_CHROMIUM", str(tmp_path / "no-chromium-here"))
    page = tmp_path / "r.html"
    result = emotrace("report", "week-2", "-o", page, "--pdf", "--workspace", workspace)
    assert_one_line_error(result, "no such executable", f"the HTML report was written to {page}")
    assert "<section" in page.read_text() and not page.with_suffix(".pdf").exists()


@needs_chromium
@pytest.mark.slow
def test_analyze_a_generated_video_into_a_session_and_report_it(tmp_path: Path) -> None:
    from video_helpers import head_of_height, render, write_video

    head = head_of_height(150)
    frames = render(60, (320, 240), lambda i: [] if 20 <= i < 35 else [(head, 80, 45)])
    video = write_video(tmp_path / "call.avi", frames, fps=10)
    ws = tmp_path / "ws"
    analyzed = emotrace(
        "analyze",
        video,
        "--session",
        "video-1",
        "--patient",
        "P-VID",
        "--consent",
        "--detect-every",
        "1",
        "--workspace",
        ws,
        cwd=tmp_path,
    )
    assert analyzed.returncode == 0, analyzed.stderr
    assert "session video-1 (complete): 60 frames" in analyzed.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["call.avi", "ws"]  # no other files
    live = emotrace(
        "live",
        "--camera",
        video,
        "--no-window",
        "--session",
        "video-2",
        "--patient",
        "P-VID",
        "--consent",
        "--workspace",
        ws,
        cwd=tmp_path,
    )
    assert live.returncode == 0 and "session video-2 (complete)" in live.stdout, live.stderr
    assert (
        emotrace(
            "sessions",
            "mark",
            "video-2",
            "looks away",
            "--at",
            "2",
            "--workspace",
            ws,
            cwd=tmp_path,
        ).returncode
        == 0
    )

    with SessionStore(ws, readonly=True) as store:
        data = store.load("video-1")
    assert len(data) == 60 and not data.visible[20:35].any() and data.visible.sum() >= 40
    assert data.info.model.sha256 and data.info.consent and data.info.source.endswith("call.avi")

    # The trend of a report is the patient's earlier sessions: video-2's report shows video-1.
    reported = emotrace(
        "report", "video-2", "--trend", "-o", "r.html", "--workspace", ws, cwd=tmp_path
    )
    assert reported.returncode == 0, reported.stderr
    log = RequestLog()
    try:
        dom = chromium(tmp_path / "r.html", log, "--dump-dom").stdout.decode()
        assert log.page_hosts() == set(), log.lines
    finally:
        log.close()
    for section in SECTIONS:
        assert f'<section id="{section}">' in dom, section
    assert "looks away" in dom and "P-VID" in dom
