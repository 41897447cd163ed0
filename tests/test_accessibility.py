"""WCAG 2.2 AA for every page of ``emotrace serve`` (issue 35 §5), checked by axe-core in Chromium.

axe-core comes from npm (``tests/a11y/package.json``, pinned; ``make unit`` installs it when npm is
present) and is injected by the test browser only: the app never loads it. The rules axe cannot
judge alone are asserted here too: live regions that announce status, recording state and the
patient's label; the timeline's text alternative (a summary and a data table).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
sync_api = pytest.importorskip("playwright.sync_api")

from serve_helpers import Server, face_frames, running_server, write_y4m  # noqa: E402
from test_serve_browser import (  # noqa: E402
    BINARY,
    TIMEOUT_MS,
    fake_camera_args,
    start_session,
    wait_for_face,
)

AXE = Path(
    os.environ.get(
        "EMOTRACE_AXE", Path(__file__).parent / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
    )
)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(BINARY).is_file(),
        reason="needs Chromium (Debian: apt-get install chromium chromium-driver)",
    ),
    pytest.mark.skipif(
        not AXE.is_file(), reason=f"needs axe-core ({AXE}): npm ci --prefix tests/a11y"
    ),
]
#: WCAG 2.0, 2.1 and 2.2, levels A and AA.
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("serve-a11y")) as running:
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
        # Injected by the browser into every document and frame, as a user's extension would be;
        # the page's own Content-Security-Policy still forbids it to load anything like it.
        context.add_init_script(path=str(AXE))
        tab = context.new_page()
        tab.set_default_timeout(TIMEOUT_MS)
        tab.on("dialog", lambda dialog: dialog.accept())
        tab.goto(server.url)
        tab.wait_for_selector("#view-sessions:not([hidden])")
        yield tab
        context.close()
        browser.close()


def violations(page: Any) -> list[str]:
    """axe's serious and critical WCAG A/AA violations on the page as it is now, one per line."""
    found: list[dict[str, Any]] = page.evaluate(
        """tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})
            .then(r => r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => ({id: v.id, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))})))""",
        WCAG_TAGS,
    )
    return [f"{v['id']}: {v['help']} ({', '.join(v['nodes'][:4])})" for v in found]


def finished_session(client: httpx.Client, patient: str) -> int:
    body = {"patient": patient, "name": f"a11y-{time.monotonic_ns()}", "consent": True}
    created = client.post("/api/v1/sessions", json=body)
    assert created.status_code == 201, created.text
    sid: int = created.json()["id"]
    assert client.post(f"/api/v1/sessions/{sid}/finish").status_code == 200
    return sid


def test_every_page_passes_axe_and_announces_what_changes(
    page: Any, server: Server, client: httpx.Client
) -> None:
    problems: dict[str, list[str]] = {}
    page.goto(server.url)  # the app, whatever page an earlier run left open
    page.wait_for_selector("#view-sessions:not([hidden])")
    # A recorded session to list, review and report.
    page.click("#nav-new")
    page.wait_for_selector("#view-new:not([hidden])")
    problems["new session"] = violations(page)
    start_session(page, "P-035", f"a11y-live-{time.time_ns()}", "camera")  # names are unique
    wait_for_face(page)
    problems["live view"] = violations(page)
    # Status, recording state and the patient's label are announced as they change.
    for selector in ("#live-status", "#face-ind", "#patient-label"):
        live = page.eval_on_selector(
            selector,
            "e => e.closest('[aria-live], [role=status], [role=alert]') !== null",
        )
        if not live:
            problems["live view"].append(f"{selector} is not announced (no live region)")
    # The timeline has a text alternative: a summary and a data table of what it draws
    # (rebuilt every 2 s, and at once for a session's first result).
    page.wait_for_function("() => document.querySelectorAll('#timeline-table tbody tr').length")
    if page.locator("#timeline-summary").count() == 0:
        problems["live view"].append("the timeline has no text summary (#timeline-summary)")
    elif "valence" not in page.inner_text("#timeline-summary").lower():
        problems["live view"].append("the timeline's summary does not state the valence")
    if page.locator("#timeline-table tbody tr").count() == 0:
        problems["live view"].append("the timeline has no data table (#timeline-table)")
    # The patient can be chosen from the keyboard too (not only by a click on the video), and the
    # focused control shows a focus ring.
    page.focus("#stop")
    for _ in range(12):
        if page.evaluate("() => document.activeElement.id") == "patient-select":
            break
        page.keyboard.press("Tab")
    else:
        problems["live view"].append("Tab from Stop never reaches the patient list")
    ring = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    if ring == "none":
        problems["live view"].append("the focused control shows no focus ring")
    page.keyboard.press("ArrowDown")  # the first face in view
    page.wait_for_function(
        "() => document.querySelector('#patient-choice').textContent.includes('(chosen)')"
    )
    page.click("#stop")
    page.wait_for_selector("#view-review:not([hidden])")
    page.frame_locator("#report").locator("h1").wait_for()
    problems["review"] = violations(page)
    sid = page.evaluate("() => window.emotraceState.review.id")
    page.click("#nav-sessions")
    page.wait_for_selector("#sessions-table tbody tr")
    problems["sessions"] = violations(page)
    finished_session(client, "P-035")
    page.goto(page.url.split("#")[0].rstrip("/") + f"/api/v1/sessions/{sid}/report")
    problems["report"] = violations(page)
    bad = {name: found for name, found in problems.items() if found}
    assert not bad, "\n".join(f"{name}: {line}" for name, lines in bad.items() for line in lines)
