"""Session recording overhead and report generation time for a synthetic 10-minute session.

    .venv/bin/python benchmarks/bench_sessions.py                 # 10 min at 30 fps
    .venv/bin/python benchmarks/bench_sessions.py --minutes 60 --pdf

The stream imitates a video call: the patient's tracked face in most frames, the clinician's
small self-view in every frame, stretches without the patient, markers every two minutes, and
probabilities drawn from a Dirichlet distribution. Frames are fed as fast as possible, so the
figures are the cost of recording, not of waiting for a camera.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from emotrace.labels import FER2013_ORDER
from emotrace.results import FaceEmotions
from emotrace.sessions.analytics import summarize
from emotrace.sessions.recorder import SessionRecorder
from emotrace.sessions.report import find_chromium, render_report, write_report
from emotrace.sessions.store import SessionStore


def synthetic_frames(
    minutes: float, fps: float, seed: int = 0
) -> list[tuple[int, float, FaceEmotions]]:
    """Pre-built frames, so building them is not timed."""
    rng = np.random.default_rng(seed)
    classes = FER2013_ORDER
    n = round(minutes * 60 * fps)
    frames = []
    for i in range(n):
        t = i / fps
        boxes, tracks = [[560, 20, 60, 60]], [2]  # the clinician's self-view
        if (t % 97.0) > 6.0:  # the patient looks away for 6 s every 97 s
            boxes.insert(0, [200, 120, 180, 180])
            tracks.insert(0, 1)
        probs = rng.dirichlet(np.full(len(classes), 0.4), size=len(boxes)).astype(np.float32)
        frames.append(
            (i, t, FaceEmotions(np.array(boxes), probs, classes, track_ids=np.array(tracks)))
        )
    return frames


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--pdf", action="store_true", help="also time printing the PDF (Chromium)")
    args = parser.parse_args()

    frames = synthetic_frames(args.minutes, args.fps)
    classes = frames[0][2].classes
    with tempfile.TemporaryDirectory(prefix="emotrace-bench-") as tmp:
        workspace = Path(tmp)
        per_frame = []
        wall0, cpu0 = time.perf_counter(), _cpu()
        with SessionRecorder("bench", "P-BENCH", classes, workspace=workspace) as recorder:
            for index, time_s, faces in frames:
                t0 = time.perf_counter()
                recorder.record(index, time_s, faces)
                per_frame.append(time.perf_counter() - t0)
                if index and index % round(120 * args.fps) == 0:
                    recorder.mark(f"marker at {time_s:.0f} s")
            t_close = time.perf_counter()
        close_s = time.perf_counter() - t_close
        wall, cpu = time.perf_counter() - wall0, _cpu() - cpu0
        db = workspace / "workspace.db"

        t0 = time.perf_counter()
        store = SessionStore(workspace, readonly=True)
        open_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        data = store.load("bench")
        load_s = time.perf_counter() - t0
        store.close()
        t0 = time.perf_counter()
        summary = summarize(data)
        summarize_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        html = render_report(summary)
        render_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        write_report(summary, workspace / "report.html")
        write_s = time.perf_counter() - t0
        pdf_s = None
        if args.pdf and find_chromium():
            t0 = time.perf_counter()
            write_report(summary, workspace / "report.html", pdf=workspace / "report.pdf")
            pdf_s = time.perf_counter() - t0
        db_mb = db.stat().st_size / 1e6

    n = len(frames)
    us = sorted(x * 1e6 for x in per_frame)
    print(
        f"synthetic session: {args.minutes:g} min at {args.fps:g} fps = {n} frames "
        f"({data.info.visible_frames} with the patient), {len(data.markers)} markers"
    )
    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, Python "
        f"{sys.version.split()[0]}"
    )
    print("recording (caller's thread, per frame):")
    print(
        f"  record() median {statistics.median(us):.1f} us, mean {statistics.fmean(us):.1f} us, "
        f"p99 {us[int(0.99 * (n - 1))]:.1f} us, max {us[-1] / 1000:.2f} ms"
    )
    print(
        f"  whole process CPU incl. writer thread: {cpu / n * 1e3:.3f} ms/frame "
        f"({cpu / (n / args.fps) * 100:.2f} % of one core in real time)"
    )
    print(
        f"  wall {wall:.2f} s for {n / args.fps:.0f} s of video; final flush on close "
        f"{close_s * 1e3:.0f} ms; database {db_mb:.1f} MB"
    )
    print("report:")
    print(
        f"  open workspace (integrity_check) {open_s * 1e3:.0f} ms, load {load_s * 1e3:.0f} ms, "
        f"analytics {summarize_s * 1e3:.0f} ms, render HTML {render_s * 1e3:.0f} ms "
        f"({len(html) / 1e3:.0f} kB)"
    )
    total = open_s + load_s + summarize_s + write_s
    print(f"  report generation total (open + load + analytics + write): {total:.2f} s")
    if pdf_s is not None:
        print(f"  with PDF (Chromium --print-to-pdf): {pdf_s:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
