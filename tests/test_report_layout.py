"""The report's layout (issue 33, item 15) and its attention section (issue 35, section 2).

The report fits the review page's frame (817 px at a 1280 px window, narrower below): no chart
or table wider than the page; marker labels are shown whole; the comparison charts keep each
measure's own fixed scale (valence -1..1, shares 0..100 %), not the span of the values shown.
The page's own frame is checked in ``test_session_gaps.py``; here the report file in Chromium.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from emotrace.sessions import _svg
from emotrace.sessions.analytics import AnalyticsConfig, summarize
from emotrace.sessions.report import render_report
from session_streams import data_from

LONG_LABEL = "patient talks about the argument with her sister at the weekend (strong)"


def _sessions() -> tuple[Any, Any]:
    first = data_from([(40, "happy"), (20, "neutral")], markers=[(5.0, LONG_LABEL)])
    second = data_from([(38, "happy"), (22, "neutral")], markers=[(30.0, "exercise start")])
    second.info = type(second.info)(**{**vars(second.info), "id": 2, "name": "week-2",
                                       "started_at": second.info.started_at + 86400})  # fmt: skip
    return summarize(first), summarize(second)


def _chart(html: str, title: str) -> str:
    match = re.search(rf'<svg[^>]*aria-label="{re.escape(title)}".*?</svg>', html, re.S)
    assert match, title
    return match.group(0)


def test_comparison_charts_keep_each_measures_fixed_scale() -> None:
    first, second = _sessions()
    html = render_report(second, [first])
    height = 130  # small_trend's
    span = height - _svg._TOP - _svg._BOTTOM
    for title, values, (lo, hi) in (
        ("mean valence", [first.mean_valence, second.mean_valence], (-1.0, 1.0)),
        ("face visible (%)", [100.0, 100.0], (0.0, 100.0)),
        ("happy share (%)", [100 * first.time_share["happy"], 100 * second.time_share["happy"]],
         (0.0, 100.0)),
    ):  # fmt: skip
        chart = _chart(html, title)
        ys = [float(y) for y in re.findall(r'<circle cx="[\d.]+" cy="([\d.]+)"', chart)]
        expected = [_svg._TOP + (hi - v) / (hi - lo) * span for v in values]
        assert ys == pytest.approx(expected, abs=0.1), title
    # Two close valences stay close: 0.02 apart is under 2 px, not the chart's full height.
    valence = _chart(html, "mean valence")
    ys = [float(y) for y in re.findall(r'<circle cx="[\d.]+" cy="([\d.]+)"', valence)]
    assert abs(ys[0] - ys[1]) < 0.05 * span
    assert "1 = " in html and "week-2" in html  # the x axis numbers the sessions, the key names


def test_the_attention_section_gives_facing_turned_and_looked_away() -> None:
    data = data_from([(30, "happy")])
    data.poses = np.zeros((len(data), 3))
    data.poses[100:150, 0] = 40.0  # 5 s turned 40 degrees away (frames 10-15 s)
    s = summarize(data, AnalyticsConfig())
    html = render_report(s)
    section = re.search(r'<section id="attention">.*?</section>', html, re.S)
    assert section
    text = re.sub(r"<[^>]+>", " ", section.group(0))
    assert "Facing the camera 83%" in text and "turned beyond that 17%" in text
    assert "1 time(s)" in text and "0:10" in text and "0:15" in text


@pytest.mark.slow
@pytest.mark.browser
def test_the_report_fits_its_frame_and_shows_marker_labels_whole(tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    from test_serve_browser import BINARY

    if not Path(BINARY).is_file():
        pytest.skip("needs Chromium (Debian: apt-get install chromium chromium-driver)")
    first, second = _sessions()
    path = tmp_path / "report.html"
    path.write_text(render_report(first, [second]), encoding="utf-8")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=BINARY, headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])  # fmt: skip
        page = browser.new_page()
        page.goto(path.as_uri())
        for width in (817, 600):  # the review's frame at a 1280 px window, and a narrow one
            page.set_viewport_size({"width": width, "height": 900})
            overflow = page.evaluate(
                """() => {
                  const w = document.documentElement.clientWidth;
                  const wide = [...document.querySelectorAll('svg, table, section')]
                    .filter((e) => !e.closest('.scroll') || e.tagName !== 'TABLE')
                    .filter((e) => e.getBoundingClientRect().right > w + 0.5)
                    .map((e) => e.tagName + (e.getAttribute('aria-label') || e.id || ''));
                  return [document.documentElement.scrollWidth, w, wide];
                }"""
            )
            assert overflow[0] <= overflow[1] and not overflow[2], (width, overflow)
            cell = page.locator("#markers td", has_text=LONG_LABEL)
            assert cell.inner_text() == LONG_LABEL
            box = cell.bounding_box()
            assert box is not None and box["x"] + box["width"] <= width, (width, box)
        browser.close()
