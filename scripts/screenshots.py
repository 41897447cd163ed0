"""Current screenshots of the web app for the README, in ``docs/images/`` (a dev script).

    .venv/bin/python scripts/screenshots.py            # all of them, into docs/images/
    .venv/bin/python scripts/screenshots.py --out /tmp/shots --only live_view review

Starts a real ``emotrace serve`` on loopback with a throw-away workspace and Debian's Chromium
(Playwright) with the fake camera playing ``../shared/media/single_face.mp4`` (a person at rest,
then smiling; scikit-image's astronaut where the shared media is absent), in a 1280x800 window
(the two live views whole, so the timeline below the video shows too):

* ``live_view.png``: a live session with markers and twenty seconds of timeline (whole page);
* ``head_pose.png``: the same with the "Head orientation" switch on (yaw, pitch, roll per face);
* ``baseline.png``: the same relative to the patient's baseline (calibrated bars, the timeline in
  baseline SDs; whole page);
* ``review.png``: the review of an earlier session (report, notes, markers);
* ``segments.png``: that review's timeline and marker table with segments and an excluded
  stretch (hatched), beside the report's segments and exclusions;
* ``file_session.png``: a video file being analysed by the server (the shared HEVC clip, looped
  so that the shot falls mid-analysis);
* ``spanish.png``: the review in Spanish (chosen in the page's language menu).

The earlier session is recorded through the API (frames of the same clip with their times), so
its review has half a minute of data; its first 12 s, the patient at rest, are the baseline.
Each PNG is optimised (palette of 256 colours where that keeps it under ``--max-kb``).
"""

from __future__ import annotations

import argparse
import json
import math
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import httpx
from PIL import Image
from websockets.sync.client import connect

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the tests' server and fake-camera helpers

from serve_helpers import SHARED, Server, face_frames, jpeg, running_server, write_y4m  # noqa: E402
from test_serve_browser import BINARY, fake_camera_args  # noqa: E402

SHOTS = ("live_view", "head_pose", "baseline", "review", "segments", "file_session", "spanish")
VIEWPORT = {"width": 1280, "height": 800}
PATIENT = "P-017"
HEVC = SHARED / "media" / "face_noface.mov"


def record_session(server: Server, name: str) -> int:
    """A complete session through the API: the clip's 20 resting frames every 0.6 s (0-11.4 s),
    then its smiling frames every 0.3 s; markers, two segments and an excluded stretch; its
    resting stretch set as the patient's baseline."""
    with httpx.Client(base_url=server.base, headers=server.auth, timeout=60) as http:
        body = {"patient": PATIENT, "name": name, "consent": True}
        sid: int = http.post("/api/v1/sessions", json=body).raise_for_status().json()["id"]
        frames = face_frames(72)
        times = [0.6 * i for i in range(20)] + [12 + 0.3 * i for i in range(len(frames) - 20)]
        url = f"{server.ws_base}/api/v1/sessions/{sid}/live"
        with connect(url, additional_headers=server.auth, open_timeout=30) as ws:
            json.loads(ws.recv(timeout=30))
            for frame, at in zip(frames, times, strict=True):
                ws.send(struct.pack("<d", at) + jpeg(frame))
                json.loads(ws.recv(timeout=60))
            ws.send(json.dumps({"type": "stop"}))
            ws.recv(timeout=30)
        for marker in (
            {"time_s": 4.0, "label": "topic change"},
            {"time_s": 0.5, "end_s": 11.5, "label": "at rest"},
            {"time_s": 12.5, "end_s": 19.0, "label": "exercise"},
            {"time_s": 20.0, "end_s": 23.0, "label": "phone rang", "excluded": True},
            {"time_s": 15.0, "label": "strong reaction"},
        ):
            http.post(f"/api/v1/sessions/{sid}/markers", json=marker).raise_for_status()
        http.post(f"/api/v1/sessions/{sid}/baseline", json={"start_s": 0.0, "end_s": 11.5})
        http.patch(
            f"/api/v1/sessions/{sid}",
            json={"notes": "Calm at the start; smiled when talking about the holidays."},
        ).raise_for_status()
    return sid


def long_video(folder: Path, loops: int = 4) -> Path:
    """The HEVC clip ``loops`` times over (MPEG-4 Part 2, which every OpenCV build writes), so the
    file view is caught mid-analysis; the H.264 clip where the HEVC one is absent."""
    source = HEVC if HEVC.is_file() else SHARED / "media" / "single_face.mp4"
    capture = cv2.VideoCapture(str(source))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    if not frames:
        raise SystemExit(f"cannot read {source}")
    path = folder / "consultation.mp4"
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for _ in range(loops):
        for image in frames:
            writer.write(image)
    writer.release()
    return path


def save(page: Any, out: Path, name: str, max_kb: int, **options: Any) -> Path:
    """Screenshot to ``out/name.png``, optimised; a 256-colour palette when it is too large."""
    path = out / f"{name}.png"
    page.screenshot(path=str(path), **options)
    image = Image.open(path).convert("RGB")
    image.save(path, optimize=True)
    if path.stat().st_size > max_kb * 1024:
        image.quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    print(f"{path}  {image.width}x{image.height}  {path.stat().st_size // 1024} KB")
    return path


def wait_results(page: Any, n: int) -> None:
    """Until the live view has drawn ``n`` more results with the face."""
    start = page.evaluate("() => (window.emotraceState.lastResult || {frame: -1}).frame")
    page.wait_for_function(
        "n => { const r = window.emotraceState.lastResult;"
        " return r && r.frame >= n && r.faces.length > 0; }",
        arg=start + n,
        timeout=120_000,
    )


def open_review(page: Any, sid: int) -> None:
    page.evaluate("h => { location.hash = h; }", f"#/review/{sid}")
    page.wait_for_function(
        "id => window.emotraceState.review && window.emotraceState.review.id === id", arg=sid
    )
    page.frame_locator("#report").locator("#header").wait_for()
    page.wait_for_timeout(500)  # the review timeline draws after the markers arrive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    parser.add_argument("--only", nargs="+", choices=SHOTS, default=list(SHOTS))
    parser.add_argument("--max-kb", type=int, default=250)
    args = parser.parse_args(argv)
    if not Path(BINARY).is_file():
        raise SystemExit("needs Chromium (Debian: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    wanted = set(args.only)
    with tempfile.TemporaryDirectory(prefix="emotrace-shots-") as tmp, running_server(
        Path(tmp) / "workspace"
    ) as server, sync_playwright() as playwright:  # fmt: skip
        earlier = record_session(server, "week-1")
        camera = write_y4m(Path(tmp) / "face.y4m", face_frames(72))
        browser = playwright.chromium.launch(
            executable_path=BINARY, headless=True, args=fake_camera_args(camera)
        )
        page = browser.new_context(viewport=VIEWPORT).new_page()
        page.set_default_timeout(60_000)
        page.on("dialog", lambda dialog: dialog.accept())
        page.goto(server.url)
        page.wait_for_selector("#view-sessions:not([hidden])")

        if wanted & {"live_view", "head_pose", "baseline"}:
            page.click("#nav-new")
            page.fill("#patient", PATIENT)
            page.fill("#session-name", "week-2")
            page.check("#consent")
            page.click("#start")
            page.wait_for_selector("#view-live:not([hidden])")
            wait_results(page, 8)
            page.keyboard.press("1")
            page.keyboard.press("m")
            page.keyboard.type("talks about work")
            page.keyboard.press("Enter")
            wait_results(page, 30)
            if "live_view" in wanted:
                save(page, args.out, "live_view", args.max_kb, full_page=True)
            if "head_pose" in wanted:
                page.check("#show-pose")
                wait_results(page, 2)
                save(page, args.out, "head_pose", args.max_kb)
                page.uncheck("#show-pose")
            if "baseline" in wanted:
                page.wait_for_selector("#relative:not([disabled])")
                page.check("#relative")
                wait_results(page, 12)
                save(page, args.out, "baseline", args.max_kb, full_page=True)
            page.click("#stop")
            page.wait_for_selector("#view-review:not([hidden])")

        if wanted & {"review", "segments"}:
            open_review(page, earlier)
            if "review" in wanted:
                save(page, args.out, "review", args.max_kb)
            if "segments" in wanted:
                report = page.frame_locator("#report")
                report.locator("#parts").scroll_into_view_if_needed()
                page.locator("#review-timeline").scroll_into_view_if_needed()
                save(page, args.out, "segments", args.max_kb)

        if "file_session" in wanted:
            page.click("#nav-new")
            page.fill("#patient", "P-022")
            page.fill("#session-name", "phone-video")
            page.check("#consent")
            page.set_input_files("#video-file", str(long_video(Path(tmp))))
            page.click("#start")
            page.wait_for_selector("#view-file:not([hidden])", timeout=120_000)
            page.wait_for_function(
                "() => { const p = window.emotraceState.fileProgress;"
                " return p && p.fraction !== null && p.fraction >= 0.35; }",
                timeout=300_000,
                polling=100,
            )
            save(page, args.out, "file_session", args.max_kb)
            page.click("#file-cancel")

        if "spanish" in wanted:
            page.evaluate("() => { location.hash = '#/'; }")
            with page.expect_navigation():  # choosing a language reloads the page in it
                page.select_option("#lang", "es")
            page.wait_for_function("() => document.documentElement.lang === 'es'")
            open_review(page, earlier)
            save(page, args.out, "spanish", args.max_kb)
        browser.close()
    return 0


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"done in {math.ceil(time.monotonic() - started)} s")
    sys.exit(code)
