"""Video benchmark: ``emotrace analyze`` end to end on a generated 640x480 video with one face.

    python benchmarks/bench_video.py                        # everything (about 10 minutes)
    python benchmarks/bench_video.py --seconds 20 --no-memory --json video.json

(a) Throughput. A 640x480 MJPG AVI at 30 fps (``--seconds``, default 60) is generated from
    scikit-image's astronaut: her head glides over a gradient background. It is analysed by the
    real command, ``emotrace.cli.main.main(["analyze", VIDEO, "-o", OUT, ...])`` in this process
    (decode in the capture thread, detect, track, classify, smooth, write CSV + JSON Lines +
    summary), with one OpenCV and one onnxruntime thread. Reported from its ``summary.json`` and
    from ``getrusage``: processed frames/s (wall clock), CPU ms per frame of the whole process
    (capture thread included; the figure that does not depend on other processes' load), and ms
    per frame per stage. The default settings run first (detection on every 2nd frame), then
    ``--detect-every 1`` and ``3`` on the first ``--variant-seconds`` of the video.
(b) The annotated video, measured separately: the same default run plus ``--annotated`` (overlay
    and mp4v encoding); its extra cost per frame is the difference.
(c) Records check: one CSV and one JSON Lines row per frame, one track, the annotated video
    holds every frame.
(d) Memory: a fresh process analyses a 10-minute video through the Python API (the code path of
    ``analyze``) and reports peak RSS (``VmHWM``) and current RSS once the first minute of
    video is processed and at the end. To keep the run short the 10-minute video is generated at
    5 fps (3,000 frames, mp4v): the pipeline's state (tracks, smoothing, queues) is bounded by
    time and by queue sizes, not by frame count, and 3,000 frames exercise any per-frame leak.
(e) fer: its video path (``fer.Video`` over ``fer.FER``) imports TensorFlow when ``fer`` is
    imported, and fer requires tensorflow, facenet-pytorch and moviepy; it cannot run without
    TensorFlow, so it is not measured. If ``bench_inference.py``'s TensorFlow-free peer venv
    exists, the import error from there is printed as evidence.

Exit status 1 when the default run is below ``--goal`` frames/s of CPU time (30), 0 otherwise.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2
import numpy as np

GOAL_FPS = 30.0
SIZE = (640, 480)
PEER_VENV = Path(os.environ.get("EMOTRACE_CACHE", Path.home() / ".cache" / "emotrace"))
PEER_VENV = PEER_VENV / "bench-fer-venv"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60.0, help="length of the 30 fps test video")
    p.add_argument("--variant-seconds", type=float, default=20.0, help="for --detect-every 1/3")
    p.add_argument("--no-memory", action="store_true", help="skip the 10-minute memory run")
    p.add_argument("--memory-only", action="store_true", help="only the 10-minute memory run")
    p.add_argument("--goal", type=float, default=GOAL_FPS, help="frames/s goal (CPU time)")
    p.add_argument("--json", type=Path, help="also save every figure here")
    p.add_argument("--memory-worker", nargs=2, metavar=("VIDEO", "OUT"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def astronaut_head(height: int) -> np.ndarray:
    from skimage import data

    image = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[30:230, 145:305]
    return cv2.resize(image, (round(160 * height / 200), height), interpolation=cv2.INTER_AREA)


def frames(seconds: float, fps: float) -> Iterator[np.ndarray]:
    """A head (about 200 px tall, a 100 px face) moving on a Lissajous path at walking pace."""
    width, height = SIZE
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 70 + 60 * xx / width + 30 * yy / height
    background = np.clip(np.stack([base, base * 0.9 + 10, base * 0.8 + 20], axis=2), 0, 255)
    background = background.astype(np.uint8)
    head = astronaut_head(200)
    h, w = head.shape[:2]
    for i in range(round(seconds * fps)):
        t = i / fps
        x = round((width - w) / 2 + (width - w) / 2.5 * np.sin(0.7 * t))
        y = round((height - h) / 2 + (height - h) / 2.5 * np.sin(0.9 * t + 1))
        frame = background.copy()
        frame[y : y + h, x : x + w] = head
        yield frame


def write_video(path: Path, seconds: float, fps: float, codec: str) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, SIZE)
    for frame in frames(seconds, fps):
        writer.write(frame)
    writer.release()
    return path


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def analyze(video: Path, out: Path, *options: str) -> dict[str, Any]:
    """Run ``emotrace analyze`` in this process; its summary plus CPU time per frame."""
    from emotrace.cli.main import main

    cpu = cpu_seconds()
    with redirect_stdout(io.StringIO()):
        code = main(["analyze", str(video), "-o", str(out), *options])
    cpu = cpu_seconds() - cpu
    if code != 0:
        raise SystemExit(f"emotrace analyze failed with exit code {code}")
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    summary["cpu_ms_per_frame"] = 1000 * cpu / max(summary["frames"], 1)
    summary["cpu_fps"] = 1000 / summary["cpu_ms_per_frame"]
    return summary


def check_records(out: Path, frames_expected: int, video: bool) -> dict[str, Any]:
    with (out / "frames.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    jsonl = (out / "frames.jsonl").read_text().splitlines()
    tracks = {r["track_id"] for r in rows}
    check = {
        "csv_rows": len(rows),
        "jsonl_rows": len(jsonl),
        "frames_with_face": sum(r["track_id"] != "" for r in rows),
        "track_ids": sorted(tracks),
    }
    if video:
        cap = cv2.VideoCapture(str(out / "annotated.mp4"))
        count = 0
        while cap.grab():
            count += 1
        check["annotated_frames"] = count
    check["ok"] = (
        len(rows) == len(jsonl) == frames_expected
        and tracks == {"1"}
        and check.get("annotated_frames", frames_expected) == frames_expected
    )
    return check


def rss_mb() -> tuple[float, float]:
    """(peak RSS, current RSS) of this process in MiB, from ``/proc/self/status``.

    Not ``ru_maxrss``: Linux carries it over ``exec`` from the forked parent, so a worker
    started by this script would report the parent's peak.
    """
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(fields["VmHWM"].split()[0]) / 1024, int(fields["VmRSS"].split()[0]) / 1024


def memory_worker(video: Path, out: Path) -> None:
    """Analyse ``video`` like ``analyze`` does; print RSS after 1 minute of video and at the end."""
    cv2.setNumThreads(1)
    from emotrace.faces import make_detector
    from emotrace.runtime.recognizer import EmotionRecognizer
    from emotrace.video import VideoOutputs, open_source, process

    recognizer = EmotionRecognizer(detector=make_detector(), threads=1)
    source = open_source(video)
    marks: dict[str, Any] = {"start": rss_mb()}
    started = time.perf_counter()
    with VideoOutputs(out, recognizer.classifier.classes, source.info) as outputs:
        for result in process(source, recognizer):
            outputs.write(result)
            if "after_1_min" not in marks and result.time_s >= 60.0:
                marks["after_1_min"] = rss_mb()
                marks["frames_at_1_min"] = outputs.stats.frames
    marks["after_10_min"] = rss_mb()
    marks["frames"] = outputs.stats.frames
    marks["wall_s"] = time.perf_counter() - started
    print(json.dumps(marks))


def memory_run(folder: Path) -> dict[str, Any]:
    video = write_video(folder / "ten_minutes.mp4", 600.0, 5.0, "mp4v")
    result = subprocess.run(
        [sys.executable, __file__, "--memory-worker", str(video), str(folder / "mem-out")],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1:]}
    marks: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    marks["video_mb"] = round(video.stat().st_size / 2**20, 1)
    return marks


def fer_status() -> str:
    """Why fer's video path is not measured, with evidence from a TensorFlow-free fer install."""
    python = PEER_VENV / "bin" / "python"
    reason = "fer's video path (fer.classes.Video over fer.fer.FER) imports TensorFlow"
    if not python.exists():
        return f"not measured: {reason} (no TensorFlow-free fer install found at {PEER_VENV})"
    probe = (
        "import importlib.util, pathlib\n"
        "spec = importlib.util.find_spec('fer')\n"
        "source = pathlib.Path(spec.origin).with_name('fer.py').read_text()\n"
        "print('import tensorflow' in source)\n"
        "try:\n"
        "    import fer.fer, fer.classes\n"
        "    print('imported')\n"
        "except Exception as exc:\n"
        "    print(f'{type(exc).__name__}: {exc}')\n"
    )
    result = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=False)
    lines = result.stdout.strip().splitlines()
    if len(lines) < 2:
        return f"not measured: {reason}"
    if lines[1] == "imported":
        return "fer's modules import in the peer venv, but its video path is not wired in here"
    where = "fer/fer.py imports tensorflow at module level; " if lines[0] == "True" else ""
    return f"not measured: {where}`import fer.fer, fer.classes` in {PEER_VENV} fails: {lines[1]}"


def row(name: str, s: dict[str, Any]) -> str:
    st = s["stages_ms_per_frame"]
    stages = " ".join(
        f"{k}={st[k]:.1f}"
        for k in ("read", "detect", "track", "classify", "smooth", "write_records", "overlay")
        if k in st
    )
    extra = st.get("write_video")
    video = f" write_video={extra:.1f}" if extra is not None else ""
    return (
        f"{name:<34} {s['frames']:>6} {s['processed_fps']:>8.1f} {s['cpu_ms_per_frame']:>8.1f} "
        f"{s['cpu_fps']:>8.1f}  capture={s['capture_thread_ms_per_frame']:.1f} {stages}{video}"
    )


def throughput(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Parts (a) to (c): the analyze runs and the records check."""
    figures: dict[str, Any] = {}
    started = time.perf_counter()
    video = write_video(folder / "one_face.avi", args.seconds, 30.0, "MJPG")
    figures["generate_s"] = round(time.perf_counter() - started, 1)
    frames_total = round(args.seconds * 30)
    variant = str(round(args.variant_seconds * 30))
    figures["runs"] = runs = {
        "default (detect every 2nd frame)": analyze(video, folder / "default"),
        "detect every frame": analyze(
            video, folder / "d1", "--detect-every", "1", "--max-frames", variant
        ),
        "detect every 3rd frame": analyze(
            video, folder / "d3", "--detect-every", "3", "--max-frames", variant
        ),
        "default + annotated video": analyze(video, folder / "annotated", "--annotated"),
    }
    figures["records"] = check_records(folder / "default", frames_total, video=False)
    figures["annotated_records"] = check_records(folder / "annotated", frames_total, True)
    base, annotated = runs["default (detect every 2nd frame)"], runs["default + annotated video"]
    figures["annotated_extra_cpu_ms_per_frame"] = round(
        annotated["cpu_ms_per_frame"] - base["cpu_ms_per_frame"], 2
    )
    return figures


def print_throughput(figures: dict[str, Any], seconds: float) -> None:
    print(f"640x480, one face, {seconds:g} s at 30 fps")
    print(
        f"{'run':<34} {'frames':>6} {'fps':>8} {'cpu ms':>8} {'cpu fps':>8}  "
        "ms per frame by stage (capture = decode thread)"
    )
    for name, summary in figures["runs"].items():
        print(row(name, summary))
    print(
        f"annotated video (overlay + mp4v): +{figures['annotated_extra_cpu_ms_per_frame']} "
        "CPU ms per frame"
    )
    print(f"records: {figures['records']}")
    print(f"annotated run records: {figures['annotated_records']}")


def print_memory(m: dict[str, Any]) -> None:
    if "error" in m:
        print(f"memory run failed: {m['error']}")
        return
    print(
        "memory, 10-minute video (5 fps, {frames} frames, {wall:.0f} s): peak/current RSS "
        "{s[0]:.0f}/{s[1]:.0f} MiB after loading, {a[0]:.0f}/{a[1]:.0f} MiB after 1 minute "
        "({f1} frames), {b[0]:.0f}/{b[1]:.0f} MiB after 10 minutes".format(
            frames=m["frames"],
            wall=m["wall_s"],
            s=m["start"],
            a=m["after_1_min"],
            b=m["after_10_min"],
            f1=m["frames_at_1_min"],
        )
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.memory_worker:
        memory_worker(Path(args.memory_worker[0]), Path(args.memory_worker[1]))
        return 0
    figures: dict[str, Any] = {
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, {platform.python_version()}",
        "load_before": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory(prefix="emotrace-bench-video-") as tmp:
        if not args.memory_only:
            figures.update(throughput(args, Path(tmp)))
        if not args.no_memory:
            figures["memory"] = memory_run(Path(tmp))
    figures["fer"] = fer_status()
    figures["load_after"] = os.getloadavg()

    print("emotrace video benchmark")
    print(f"machine: {figures['machine']}; load average before {figures['load_before']}")
    if "runs" in figures:
        print_throughput(figures, args.seconds)
    if "memory" in figures:
        print_memory(figures["memory"])
    print(f"fer: {figures['fer']}")
    print(f"load average after {figures['load_after']}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    if "runs" not in figures:
        return 0
    base = figures["runs"]["default (detect every 2nd frame)"]
    ok = base["cpu_fps"] >= args.goal and figures["records"]["ok"]
    print(
        f"goal >= {args.goal:g} frames/s (CPU time, default settings): "
        f"{'met' if ok else 'MISSED'} ({base['cpu_fps']:.1f}; wall clock "
        f"{base['processed_fps']:.1f} with the load above)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
