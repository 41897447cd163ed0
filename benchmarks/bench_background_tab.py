"""Frames a live session records with the page in a background tab, against the page in front.

    python benchmarks/bench_background_tab.py        # camera and screen, 4 turns of 3 s per tab
    python benchmarks/bench_background_tab.py --rounds 6 --seconds 5 --json background.json

A real ``emotrace serve`` on loopback (throw-away workspace) and headless Chromium driven by
Playwright, as a user's browser runs it: Playwright's switches that keep background pages running
(``--disable-background-timer-throttling``, ``--disable-backgrounding-occluded-windows``,
``--disable-renderer-backgrounding``) are left out. Chromium's fake camera plays the shared clip
``../shared/media/single_face.mp4`` (else scikit-image's astronaut) at 15 frames/s; its fake
screen capture stands in for a video-call window. For each source two tabs record two sessions at
once and take turns in front, ``--seconds`` each, ``--rounds`` times each: at every moment one
session is recorded from the front and one from behind, on the same machine, server and source,
so a change in the machine's load falls on both (measured one after the other, single 3 s
stretches varied 0.8-1.8x at a load average of 18). ``--hide minimize`` minimises the window of
the tab behind instead (headless Chromium has no window occlusion; a minimised window is the
nearest to a window covered by the video call). Frames are counted at the server: markers the
server stamps on each session's clock bound each stretch, and the stored frame times are counted
in them.

Each source runs twice in the same run: with the capture worker (``capture_worker.js``, what
Chromium gets) and with the page's own loop (``drawImage`` + ``toBlob`` + ``send``, what browsers
without ``MediaStreamTrackProcessor`` get; here forced by removing it from the page), so the two
ratios compare. Also printed: the page's requestAnimationFrame rate in front and behind (how much
Chromium throttles the page itself), the CPU's flags and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np

from bench_serve import SHARED, cpu_flags

CHROMIUM = next(
    (p for p in ("/usr/lib/chromium/chromium", "/usr/bin/chromium") if Path(p).is_file()), ""
)
UNTHROTTLED = [
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--disable-renderer-backgrounding",
]
COUNT_RAF = """() => { window.rafTimes = []; const tick = () => {
    window.rafTimes.push(performance.now()); requestAnimationFrame(tick); };
    requestAnimationFrame(tick); }"""


def camera_y4m(path: Path, n: int = 30) -> Path:
    """A 640x480 YUV4MPEG2 clip of a real face at 15 frames/s (Chromium's fake camera)."""
    frames: list[np.ndarray] = []
    capture = cv2.VideoCapture(str(SHARED / "media" / "single_face.mp4"))
    while len(frames) < n:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(cv2.resize(image, (640, 480), interpolation=cv2.INTER_AREA))
    if not frames:
        from skimage import data

        face = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
        frames = [cv2.resize(np.roll(face, 4 * i, axis=1), (640, 480)) for i in range(n)]
    with path.open("wb") as handle:
        handle.write(b"YUV4MPEG2 W640 H480 F15:1 Ip A1:1 C420jpeg\n")
        for frame in frames:
            handle.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


def start_server(workspace: Path) -> tuple[subprocess.Popen[str], str, str]:
    """``emotrace serve --port 0``; its base URL and token."""
    env = {**os.environ, "BROWSER": "true", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "emotrace", "serve", "--port", "0", "--workspace", str(workspace)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    for line in process.stdout:
        found = re.search(r"(http://\S+?)/\?token=(\S+)", line)
        if found:
            return process, found.group(1), found.group(2)
    raise RuntimeError("the server printed no address")


Spans = list[tuple[float, float]]


def count(times: list[float], spans: Spans) -> int:
    """How many of ``times`` fall inside ``spans`` (start, end)."""
    return sum(a <= t < b for a, b in spans for t in times)


def rate(times: list[float], spans: Spans) -> float:
    """Events per second of ``times`` inside ``spans``."""
    return count(times, spans) / sum(b - a for a, b in spans)


def open_session(context: Any, url: str, source: str, worker: bool) -> tuple[Any, int]:
    """A tab recording a new session from ``source``; the tab and the session id."""
    page = context.new_page()
    if not worker:  # a browser without MediaStreamTrackProcessor: the page's own loop
        page.add_init_script("delete window.MediaStreamTrackProcessor")
    page.goto(url)
    page.click("#nav-new")
    page.fill("#patient", "P-BENCH")
    page.fill("#session-name", f"{source}-{'worker' if worker else 'page'}-{time.time_ns()}")
    page.check("#consent")
    page.check(f"input[name=source][value={source}]")
    page.click("#start")
    page.wait_for_function("() => (window.emotraceState.lastResult || {frame: -1}).frame >= 5")
    sid, in_worker = page.evaluate(
        "() => { const l = window.emotraceState.live; return [l.id, l.inWorker]; }"
    )
    assert bool(in_worker) == worker, (in_worker, worker)
    page.evaluate(COUNT_RAF)
    return page, int(sid)


def measure(
    browser: Any,
    url: str,
    client: httpx.Client,
    source: str,
    worker: bool,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Two sessions from ``source`` taking turns in front; frames/s at the server in front and
    behind, over the same moments."""
    # Tabs of one context share a window: to minimise one, each gets a context (window) of its own.
    contexts = [browser.new_context(viewport={"width": 1280, "height": 800})]
    if args.hide == "minimize":
        contexts.append(browser.new_context(viewport={"width": 1280, "height": 800}))
    for context in contexts:
        context.set_default_timeout(60_000)
    tabs = [open_session(contexts[i % len(contexts)], url, source, worker) for i in range(2)]
    cdps = [page.context.new_cdp_session(page) for page, _ in tabs]
    windows = [cdp.send("Browser.getWindowForTarget")["windowId"] for cdp in cdps]
    assert args.hide != "minimize" or windows[0] != windows[1], "the two tabs share a window"

    def put_in_front(front: int) -> None:
        if args.hide == "minimize":  # headless has no occlusion: a minimised window stands in
            for i, (cdp, window) in enumerate(zip(cdps, windows, strict=True)):
                state = "normal" if i == front else "minimized"
                bounds = {"windowId": window, "bounds": {"windowState": state}}
                cdp.send("Browser.setWindowBounds", bounds)
        tabs[front][0].bring_to_front()

    def stamp(sid: int) -> float:
        response = client.post(f"/api/v1/sessions/{sid}/markers", json={"label": "turn"})
        response.raise_for_status()
        return float(response.json()["time_s"])

    # spans[i][where]: stretches on tab i's session clock; page_spans: on its page's clock
    spans: list[dict[str, Spans]] = [{"front": [], "back": []} for _ in tabs]
    page_spans: list[dict[str, Spans]] = [{"front": [], "back": []} for _ in tabs]
    per_turn: list[tuple[int, tuple[float, float], tuple[float, float]]] = []
    for turn in range(2 * args.rounds):
        front = turn % 2
        put_in_front(front)
        starts = [(stamp(sid), page.evaluate("performance.now()")) for page, sid in tabs]
        time.sleep(args.seconds)
        for i, (page, sid) in enumerate(tabs):
            where = "front" if i == front else "back"
            spans[i][where].append((starts[i][0], stamp(sid)))
            page_spans[i][where].append((starts[i][1], page.evaluate("performance.now()")))
        per_turn.append((front, spans[front]["front"][-1], spans[1 - front]["back"][-1]))
    rafs = [page.evaluate("() => window.rafTimes") for page, _ in tabs]
    times: list[list[float]] = []
    for page, sid in tabs:
        page.bring_to_front()
        page.click("#stop")
        page.wait_for_selector("#view-review:not([hidden])")
        page.close()
        rows = client.get(f"/api/v1/sessions/{sid}/records", params={"limit": 10_000}).json()
        times.append([float(r["time_s"]) for r in rows["records"]])
    for context in contexts:
        context.close()

    def total(where: str) -> float:
        frames = sum(count(times[i], spans[i][where]) for i in range(2))
        return frames / sum(b - a for i in range(2) for a, b in spans[i][where])

    front_fps, back_fps = total("front"), total("back")
    ratios = [
        rate(times[1 - f], [back]) / max(rate(times[f], [front]), 1e-9)
        for f, front, back in per_turn
    ]

    def raf(where: str) -> float:
        return sum(1000 * rate(rafs[i], page_spans[i][where]) for i in range(2)) / 2

    return {
        "source": source,
        "hidden_by": "a second tab" if args.hide == "tab" else "minimising the window",
        "capture": "worker" if worker else "page loop",
        "front_fps": round(front_fps, 2),
        "back_fps": round(back_fps, 2),
        "ratio": round(back_fps / front_fps, 3) if front_fps else None,
        "ratio_per_turn": [round(r, 2) for r in ratios],
        "raf_front": round(raf("front"), 1),
        "raf_back": round(raf("back"), 1),
    }


def describe(result: dict[str, Any]) -> str:
    """One line of figures."""
    r = result
    return (
        f"{r['source']:6s} {r['capture']:9s}: {r['front_fps']:5.1f} frames/s in front, "
        f"{r['back_fps']:5.1f} behind ({r['hidden_by']}), ratio {r['ratio']:.2f} (per turn "
        f"{r['ratio_per_turn']}); page rAF {r['raf_front']:.0f}/s in front, {r['raf_back']:.0f}/s "
        "behind"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", nargs="+", default=["camera", "screen"])
    parser.add_argument("--rounds", type=int, default=4, help="turns in front per tab")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each stretch")
    parser.add_argument(
        "--hide",
        choices=["tab", "minimize"],
        default="tab",
        help="behind: a second tab in front (default), or the page's window minimised",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if not CHROMIUM:
        print("needs Chromium (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    print(cpu_flags())
    print(f"os.cpu_count()={os.cpu_count()}; load average at start {os.getloadavg()[0]:.1f}")
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="emotrace-bench-bg-") as tmp:
        camera = camera_y4m(Path(tmp) / "face.y4m")
        process, base, token = start_server(Path(tmp) / "workspace")
        try:
            with (
                httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as client,
                sync_playwright() as playwright,
            ):
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM,
                    headless=True,
                    ignore_default_args=UNTHROTTLED,
                    args=[
                        "--no-sandbox", "--disable-gpu", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", "--use-fake-ui-for-media-stream",
                        "--use-fake-device-for-media-stream",
                        f"--use-file-for-fake-video-capture={camera}",
                        "--auto-select-desktop-capture-source=Entire screen",
                    ],
                )  # fmt: skip
                for source in args.sources:
                    for worker in (True, False):
                        result = measure(
                            browser, f"{base}/?token={token}", client, source, worker, args
                        )
                        results.append(result)
                        print(describe(result), flush=True)
                browser.close()
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_flags(), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
