"""Recording keeps its frame rate when the page is in a background tab (issue #33 item 10).

Clinicians spend the session in the video-call window. Headless Chromium, as a user's Chrome
would run it (Playwright's switches that stop Chromium from backgrounding a page are left out),
records sessions from the fake camera or the fake screen share, and the frames the *server*
receives are counted with the page in front and with another tab in front. The stretches are
bounded by markers the server stamps on its own session clock, and the frames are counted from the
stored per-frame times, so neither the page's clock nor the recorder's write batching enter the
figure.

What "background" does to the page here (measured with ``benchmarks/bench_background_tab.py``):
``document.visibilityState`` stays "visible" in headless Chromium, but the page's rendering is
throttled (requestAnimationFrame from 60 to ~1-5/s, the ``<video>`` element's frames to ~2/s,
``canvas.toBlob`` to ~5/s). Headless, a tab behind another tab alone was not throttled at all in
the first ~20 s of a fresh browser (rAF 60/s, the page's own loop at full rate), and headless
Chromium has no window occlusion; so "behind" here is another tab in front in a minimised window
(the clinician's browser window under the video call), which throttled every time. The test
checks that rendering really was throttled, so it cannot pass because the page never went behind.

Design and timing: two windows record two sessions at once and take turns in front, 2 s each, 4
turns (8 s per source, where the issue's two 10 s windows would take 20). At every moment one
session is recorded from the front and one from behind, on the same machine, server and source,
so a burst of load from other processes falls on both alike. Measured one after the other instead
(one session, 4 s in front then 4 s behind, or alternating every second), the ratio ranged
0.78-1.6 at a load average of 20 on this 2-core machine and failed once in 20 runs each way;
paired, it stayed within 0.93-1.15. The worker gives ~1.0 here, the page's own loop 0.07-0.20
(the issue's 9 frames against 152).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
sync_api = pytest.importorskip("playwright.sync_api")

from serve_helpers import Server, face_frames, running_server, write_y4m  # noqa: E402
from test_serve_browser import BINARY, TIMEOUT_MS, fake_camera_args, start_session  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(BINARY).is_file(),
        reason="needs Chromium (Debian: apt-get install chromium chromium-driver)",
    ),
]
TURNS = 4  # each session twice in front, twice behind
#: How long to wait for Chromium to start throttling a minimised window (see the test).
THROTTLE_WAIT_S = 40.0
TURN_S = 2.0
MIN_RATIO = 0.9
#: Lighter detection leaves the server room above the page's 15 frames/s, so what is measured is
#: the page's pace rather than the server's share of a busy machine.
SERVER_ARGS = ("--max-side", "320", "--detect-every", "3")
#: Playwright's defaults that keep a background page running as if in front; a user's browser
#: has none of them.
UNTHROTTLED = [
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--disable-renderer-backgrounding",
]
# Counts requestAnimationFrame callbacks: proof that the page's rendering was throttled.
COUNT_RAF = """() => { window.rafTimes = []; const tick = () => {
    window.rafTimes.push(performance.now()); requestAnimationFrame(tick); };
    requestAnimationFrame(tick); }"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("serve-background"), *SERVER_ARGS) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, headers=server.auth, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    camera = write_y4m(tmp_path_factory.mktemp("camera") / "face.y4m", face_frames(30))
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=BINARY,
            headless=True,
            args=[
                *fake_camera_args(camera),
                "--auto-select-desktop-capture-source=Entire screen",
            ],
            ignore_default_args=UNTHROTTLED,
        )  # fmt: skip
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.set_default_timeout(TIMEOUT_MS)
        yield context
        context.close()
        browser.close()


def begin(context: Any, server: Server, name: str, source: str) -> tuple[Any, int]:
    """A new tab recording a session from ``source`` (the New session form); the tab, the id."""
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(server.url)
    try:
        start_session(page, "P-033", f"{name}-{time.time_ns()}", source)  # names are unique
    except sync_api.TimeoutError:
        error = page.inner_text("#new-error")
        raise AssertionError(f"no live view at {page.url}; the form says {error!r}") from None
    page.wait_for_function("() => (window.emotraceState.lastResult || {frame: -1}).frame >= 3")
    return page, int(page.evaluate("() => window.emotraceState.live.id"))


def stamp(client: httpx.Client, session_id: int, label: str) -> float:
    """A marker at the server's "now": a time on the session clock the frames are stored with."""
    response = client.post(f"/api/v1/sessions/{session_id}/markers", json={"label": label})
    response.raise_for_status()
    return float(response.json()["time_s"])


def frame_times(client: httpx.Client, session_id: int) -> list[float]:
    response = client.get(f"/api/v1/sessions/{session_id}/records", params={"limit": 10_000})
    response.raise_for_status()
    return [float(row["time_s"]) for row in response.json()["records"]]


def count(times: list[float], start: float, end: float) -> int:
    return sum(start <= t < end for t in times)


def rate(times: list[float], spans: list[tuple[float, float]]) -> float:
    """Events per second of ``times`` that fall in ``spans`` (start, end)."""
    return sum(count(times, a, b) for a, b in spans) / sum(b - a for a, b in spans)


@pytest.mark.parametrize("source", ["camera", "screen"])
def test_a_background_tab_keeps_the_frame_rate(
    context: Any, server: Server, client: httpx.Client, source: str
) -> None:
    # Two windows record two sessions at once and take turns in front: at every moment one
    # session is recorded from the front and one from the back, on the same machine, server and
    # source, so a change in the machine's load falls on both alike. Behind means another tab in
    # front in a minimised window: headless, a tab behind another alone was not throttled at all
    # in the first ~20 s of a fresh browser (rAF 60/s; the page's loop kept its frame rate).
    windows = [context.browser.new_context(viewport={"width": 1280, "height": 800}) for _ in "ab"]
    tabs = [begin(window, server, f"background-{source}", source) for window in windows]
    others = [window.new_page() for window in windows]
    for other in others:
        other.goto(server.base + "/api/v1/health")
    cdps = [page.context.new_cdp_session(page) for page, _ in tabs]
    ids = [cdp.send("Browser.getWindowForTarget")["windowId"] for cdp in cdps]
    for page, _ in tabs:
        in_worker = page.evaluate("() => window.emotraceState.live.inWorker")
        assert in_worker, "Chromium has MediaStreamTrackProcessor: frames go from the worker"
        page.evaluate(COUNT_RAF)

    def show(i: int, front: bool) -> None:
        (tabs[i][0] if front else others[i]).bring_to_front()
        state = "normal" if front else "minimized"
        cdps[i].send(
            "Browser.setWindowBounds", {"windowId": ids[i], "bounds": {"windowState": state}}
        )

    def put_in_front(front: int) -> None:
        show(1 - front, False)
        show(front, True)

    # A fresh headless Chromium may not throttle a minimised window for its first seconds (in a
    # fresh-clone CI run, not at all during the 8 s the turns took): wait until it does, so the
    # turns measure what a page behind the video call gets; a browser that never throttles gives
    # nothing to measure (skip, saying so).
    def raf_per_s(page: Any) -> float:
        before = page.evaluate("() => window.rafTimes.length")
        time.sleep(0.5)
        return (page.evaluate("() => window.rafTimes.length") - before) / 0.5

    deadline = time.monotonic() + THROTTLE_WAIT_S
    for i in range(len(tabs)):
        show(i, False)
    while max(raf_per_s(page) for page, _ in tabs) >= 30:
        if time.monotonic() > deadline:
            pytest.skip(f"this Chromium did not throttle a minimised window in {THROTTLE_WAIT_S} s")
        for i in range(len(tabs)):
            show(i, False)

    spans: list[dict[str, list[tuple[float, float]]]] = [{"front": [], "back": []} for _ in tabs]
    page_spans: list[dict[str, list[tuple[float, float]]]] = [
        {"front": [], "back": []} for _ in tabs
    ]
    for turn in range(TURNS):
        put_in_front(turn % 2)
        front = tabs[turn % 2][0]
        starts = [
            (stamp(client, sid, "turn"), page.evaluate("performance.now()")) for page, sid in tabs
        ]
        time.sleep(TURN_S)
        for i, (page, sid) in enumerate(tabs):
            where = "front" if page is front else "back"
            spans[i][where].append((starts[i][0], stamp(client, sid, "turn")))
            page_spans[i][where].append((starts[i][1], page.evaluate("performance.now()")))

    frames: dict[str, int] = {"front": 0, "back": 0}
    seconds: dict[str, float] = {"front": 0.0, "back": 0.0}
    for i, (page, sid) in enumerate(tabs):
        raf = page.evaluate("() => window.rafTimes")
        raf_front, raf_back = rate(raf, page_spans[i]["front"]), rate(raf, page_spans[i]["back"])
        # ~60 -> ~5/s; under heavy load the switch can lag a turn's first second, hence 0.75.
        assert raf_back < 0.75 * raf_front, (
            f"the page's rendering was not throttled ({raf_front * 1000:.1f} -> "
            f"{raf_back * 1000:.1f} rAF/s): the tab did not go to the back"
        )
        show(i, True)
        page.click("#stop")  # through the worker, as every message of the live view
        page.wait_for_selector("#view-review:not([hidden])")
        assert client.get(f"/api/v1/sessions/{sid}").json()["status"] == "complete"
        page.context.close()
        times = frame_times(client, sid)
        for where in ("front", "back"):
            frames[where] += sum(count(times, a, b) for a, b in spans[i][where])
            seconds[where] += sum(b - a for a, b in spans[i][where])

    in_front, behind = frames["front"] / seconds["front"], frames["back"] / seconds["back"]
    print(f"{source}: {in_front:.1f} frames/s in front, {behind:.1f} behind another tab")
    assert frames["front"] >= 15, f"{frames['front']} frames in front: too few for a ratio"
    assert behind / in_front >= MIN_RATIO, (
        f"{source}: {behind:.1f} frames/s with another tab in front against {in_front:.1f} "
        f"in front ({behind / in_front:.2f} < {MIN_RATIO})"
    )


def test_pause_resume_and_the_patient_choice_go_through_the_worker(
    context: Any, server: Server, client: httpx.Client
) -> None:
    page, sid = begin(context, server, "worker-controls", "camera")
    assert page.evaluate("() => window.emotraceState.live.inWorker")

    # Following a track that does not exist: the server's results name no patient.
    page.evaluate(
        "() => window.emotraceState.live.ws.send(JSON.stringify({type: 'patient', track_id: 9999}))"
    )
    page.wait_for_function("() => window.emotraceState.lastResult.patient === null")
    page.evaluate(
        "() => window.emotraceState.live.ws.send(JSON.stringify({type: 'patient', track_id: null}))"
    )
    page.wait_for_function("() => window.emotraceState.lastResult.patient !== null")

    page.click("#pause")
    paused = stamp(client, sid, "paused")
    time.sleep(1.5)
    resumed = stamp(client, sid, "resuming")  # frames may follow at once
    page.click("#pause")
    after = page.evaluate("() => window.emotraceState.lastResult.frame")
    page.wait_for_function("n => window.emotraceState.lastResult.frame > n + 3", arg=after)
    page.click("#stop")
    page.wait_for_selector("#view-review:not([hidden])")
    page.close()

    times = frame_times(client, sid)
    # A frame already on its way when Pause was clicked may still land; none after it.
    assert count(times, paused + 0.3, resumed) == 0, "frames were recorded while paused"
    assert count(times, resumed, float("inf")) > 3, "no frame after Resume"
    assert client.get(f"/api/v1/sessions/{sid}").json()["status"] == "complete"


def test_without_media_stream_track_processor_the_page_sends_the_frames(
    context: Any, server: Server, client: httpx.Client
) -> None:
    # Firefox and Safari have no MediaStreamTrackProcessor on the page: the page's own loop.
    without = context.browser.new_context(viewport={"width": 1280, "height": 800})
    without.set_default_timeout(TIMEOUT_MS)
    without.add_init_script("delete window.MediaStreamTrackProcessor")
    page, sid = begin(without, server, "page-loop", "camera")
    assert page.evaluate("() => window.emotraceState.live.inWorker") is False
    first = page.evaluate("() => window.emotraceState.lastResult.frame")
    page.wait_for_function("n => window.emotraceState.lastResult.frame > n + 3", arg=first)
    page.click("#stop")
    page.wait_for_selector("#view-review:not([hidden])")
    without.close()
    info = client.get(f"/api/v1/sessions/{sid}").json()
    assert info["status"] == "complete" and info["frames"] > 5, info
