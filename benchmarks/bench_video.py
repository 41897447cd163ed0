"""Video benchmark: ``emotrace analyze`` end to end on generated 640x480 videos and real footage.

    python benchmarks/bench_video.py                        # everything (about 20 minutes)
    python benchmarks/bench_video.py --seconds 20 --no-memory --json video.json
    python benchmarks/bench_video.py --parts real,scenes --json video.json   # YuNet vs Haar

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
(f) Real footage (part ``real``): the videos of ``--media`` (default ``../shared/media``:
    ``single_face.mp4``, ``face_noface.mov``, ``no_face.mp4``; a missing one is skipped with a
    note) through ``analyze --detector yunet`` and ``--detector haar``, each with and without
    ``--no-smooth``: processed frames/s, CPU ms, ms per stage, track ids, frames with faces and
    label changes per second of face time (flicker: changes of a track's label between its
    consecutive rows of ``frames.csv``, over the seconds all tracks were on screen).
(g) Scenes (part ``scenes``): 640x480 MJPG at 30 fps, ``--scene-seconds`` (10) long, with 1, 3
    and 6 astronaut heads (150 px tall, each gliding in its own cell of a 3-column grid) over the
    plain gradient of (a) and over a real photo (scikit-image's ``rocket``: trees, a launch
    gantry), analysed with default settings and ``--detector yunet`` or ``haar``: frames/s, CPU
    ms and ms per stage, and track ids against heads shown.

``--parts`` picks parts (``throughput`` = a to c, ``memory`` = d, ``real``, ``scenes``; default
all). Every figure is printed with the CPU model and its ISA flags from ``/proc/cpuinfo``.
Exit status 1 when a run the goal applies to (the default run of (a); the 1-face YuNet scenes
of (g), plain and textured) is below ``--goal`` frames/s of CPU time (30), 0 otherwise.
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import os
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

from _common import SIZE, describe, load, machine, photo_background, plain_background

GOAL_FPS = 30.0
MEDIA_VIDEOS = ("single_face.mp4", "face_noface.mov", "no_face.mp4")
DETECTORS = ("yunet", "haar")
SCENE_FACES = (1, 3, 6)
SCENE_HEAD = 150  # px, head height in the scenes (a face of about 75 px)
PARTS = ("throughput", "memory", "real", "scenes")
PEER_VENV = Path(os.environ.get("EMOTRACE_CACHE", Path.home() / ".cache" / "emotrace"))
PEER_VENV = PEER_VENV / "bench-fer-venv"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60.0, help="length of the 30 fps test video")
    p.add_argument("--variant-seconds", type=float, default=20.0, help="for --detect-every 1/3")
    p.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"comma-separated parts to run (default: all of {','.join(PARTS)})",
    )
    p.add_argument("--no-memory", action="store_true", help="skip the 10-minute memory run")
    p.add_argument("--memory-only", action="store_true", help="only the 10-minute memory run")
    p.add_argument(
        "--media", type=Path, default=Path("../shared/media"), help="folder of the real videos"
    )
    p.add_argument(
        "--scene-seconds", type=float, default=10.0, help="length of each scene video (30 fps)"
    )
    p.add_argument("--goal", type=float, default=GOAL_FPS, help="frames/s goal (CPU time)")
    p.add_argument(
        "--also-models",
        nargs="+",
        default=[],
        metavar="MODEL",
        help="part real: also run these models (YuNet, smoothed) on each video, e.g. accurate fast",
    )
    p.add_argument("--json", type=Path, help="also save every figure here")
    p.add_argument("--memory-worker", nargs=2, metavar=("VIDEO", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    parts = {x.strip() for x in args.parts.split(",") if x.strip()}
    if parts - set(PARTS):
        p.error(f"unknown parts {sorted(parts - set(PARTS))}; choose from {', '.join(PARTS)}")
    if args.memory_only:
        parts = {"memory"}
    if args.no_memory:
        parts.discard("memory")
    args.parts = parts
    return args


def astronaut_head(height: int) -> np.ndarray:
    from skimage import data

    image = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[30:230, 145:305]
    return cv2.resize(image, (round(160 * height / 200), height), interpolation=cv2.INTER_AREA)


def frames(seconds: float, fps: float) -> Iterator[np.ndarray]:
    """A head (about 200 px tall, a 100 px face) moving on a Lissajous path at walking pace."""
    width, height = SIZE
    background = plain_background()
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


def scene_frames(seconds: float, fps: float, background: np.ndarray, count: int):
    """``count`` heads (150 px tall) in a grid of up to 3 columns, each gliding on its own
    Lissajous path inside its cell, over ``background``."""
    width, height = SIZE
    head = astronaut_head(SCENE_HEAD)
    h, w = head.shape[:2]
    columns = min(count, 3)
    rows = -(-count // columns)
    cell_w, cell_h = width // columns, height // rows
    for i in range(round(seconds * fps)):
        t = i / fps
        frame = background.copy()
        for k in range(count):
            cx, cy = (k % columns) * cell_w, (k // columns) * cell_h
            x = cx + (cell_w - w) / 2 + (cell_w - w) / 2.5 * np.sin(0.7 * t + k)
            y = cy + (cell_h - h) / 2 + (cell_h - h) / 2.5 * np.sin(0.9 * t + 1 + 2 * k)
            x, y = round(x), round(y)
            frame[y : y + h, x : x + w] = head
        yield frame


def write_scene(path: Path, seconds: float, background: np.ndarray, count: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, SIZE)
    for frame in scene_frames(seconds, 30.0, background, count):
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


def label_changes(out: Path, fps: float) -> dict[str, Any]:
    """Label changes per second of face time (flicker) from ``frames.csv``: changes of a track's
    recorded label between its consecutive rows, over the time all tracks were on screen."""
    with (out / "frames.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["track_id"]]
    by_track: dict[str, list[tuple[int, str]]] = {}
    for r in rows:
        by_track.setdefault(r["track_id"], []).append((int(r["frame"]), r["label"]))
    changes = 0
    for seq in by_track.values():
        labels = [label for _, label in sorted(seq)]
        changes += sum(a != b for a, b in itertools.pairwise(labels))
    face_seconds = len(rows) / fps if fps > 0 else 0.0
    return {
        "label_changes": changes,
        "face_seconds": round(face_seconds, 2),
        "flicker_per_s": changes / face_seconds if face_seconds > 0 else 0.0,
    }


def real_videos(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Part (f): ``analyze`` on the real videos, YuNet and Haar, smoothed and not."""
    figures: dict[str, Any] = {"media": str(args.media), "videos": {}, "missing": []}
    for name in MEDIA_VIDEOS:
        video = args.media / name
        if not video.is_file():
            figures["missing"].append(name)
            continue
        runs = figures["videos"][name] = {}
        for detector in DETECTORS:
            for smooth in (True, False):
                key = f"{detector}{'' if smooth else ', no smoothing'}"
                out = folder / f"real-{video.stem}-{detector}-{int(smooth)}"
                options = ["--detector", detector] + ([] if smooth else ["--no-smooth"])
                summary = analyze(video, out, *options)
                fps = summary["source"]["fps"] or 30.0
                summary.update(label_changes(out, fps))
                runs[key] = summary
        for model in args.also_models:
            out = folder / f"real-{video.stem}-{model}"
            summary = analyze(video, out, "--model", model)
            summary.update(label_changes(out, summary["source"]["fps"] or 30.0))
            runs[f"yunet, --model {model}"] = summary
    return figures


def scenes(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Part (g): 1, 3 and 6 heads over a plain and a textured background, YuNet and Haar."""
    runs: dict[str, Any] = {}
    backgrounds = {"plain": plain_background(), "textured": photo_background()}
    for background, image in backgrounds.items():
        for count in SCENE_FACES:
            video = write_scene(
                folder / f"scene-{background}-{count}.avi", args.scene_seconds, image, count
            )
            for detector in DETECTORS:
                out = folder / f"scene-{background}-{count}-{detector}"
                summary = analyze(video, out, "--detector", detector)
                summary["faces_shown"] = count
                runs[f"{background}, {count} face{'s' if count > 1 else ''}, {detector}"] = summary
    return {"seconds": args.scene_seconds, "runs": runs}


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


def header() -> str:
    return f"{'run':<34} {'frames':>6} {'fps':>8} {'cpu ms':>8} {'cpu fps':>8}  " + (
        "ms per frame by stage (capture = decode thread)"
    )


def print_real(figures: dict[str, Any]) -> None:
    print(f"real videos in {figures['media']}: `analyze --detector D [--no-smooth]`")
    if figures["missing"]:
        print(f"  skipped, not found: {', '.join(figures['missing'])}")
    for name, runs in figures["videos"].items():
        first = next(iter(runs.values()))["source"]
        print(
            f"{name}: {first['width']}x{first['height']}, {first['frame_count']} frames at "
            f"{first['fps']:.1f} fps"
        )
        print(header())
        for key, summary in runs.items():
            print(row(key, summary))
        print(
            f"  {'run':<32} {'tracks':>6} {'frames with faces':>18} {'changes':>8} {'flicker/s':>9}"
        )
        for key, m in runs.items():
            print(
                f"  {key:<32} {m['tracks']:>6} {m['frames_with_faces']:>18} "
                f"{m['label_changes']:>8} {m['flicker_per_s']:>9.2f}"
            )
        if "yunet" in runs and "haar" in runs:
            print(f"  yunet/haar, same run: {speedup(runs['yunet'], runs['haar'])}")


def speedup(ours: dict[str, Any], peer: dict[str, Any]) -> str:
    """YuNet's frames/s over Haar's, by CPU time and by the wall clock."""
    return (
        f"{ours['cpu_fps'] / peer['cpu_fps']:.2f}x the frames/s by CPU time, "
        f"{ours['processed_fps'] / peer['processed_fps']:.2f}x by the wall clock"
    )


def print_scenes(figures: dict[str, Any]) -> None:
    print(
        f"640x480 scenes, {figures['seconds']:g} s at 30 fps, heads {SCENE_HEAD} px tall, "
        "default settings but the detector (plain: gradient; textured: a real photo)"
    )
    print(header())
    runs = figures["runs"]
    for key, summary in runs.items():
        print(row(key, summary))
    for key in runs:
        if key.endswith(", yunet") and key[: -len("yunet")] + "haar" in runs:
            peer = runs[key[: -len("yunet")] + "haar"]
            print(f"  {key[: -len(', yunet')]}: yunet/haar {speedup(runs[key], peer)}")
    print(
        "tracks per scene: "
        + ", ".join(
            f"{key}: {s['tracks']}/{s['faces_shown']}" for key, s in figures["runs"].items()
        )
    )


def goals(figures: dict[str, Any], goal: float) -> list[tuple[str, float, float, bool]]:
    """(run, CPU fps, wall fps, met) for every run the goal applies to."""
    checks = []
    if "runs" in figures:
        base = figures["runs"]["default (detect every 2nd frame)"]
        met = base["cpu_fps"] >= goal and figures["records"]["ok"]
        checks.append(
            ("plain, 1 face (part a, 200 px head)", base["cpu_fps"], base["processed_fps"], met)
        )
    if "scenes" in figures:
        for background in ("plain", "textured"):
            key = f"{background}, 1 face, yunet"
            s = figures["scenes"]["runs"][key]
            checks.append((key, s["cpu_fps"], s["processed_fps"], s["cpu_fps"] >= goal))
    return checks


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.memory_worker:
        memory_worker(Path(args.memory_worker[0]), Path(args.memory_worker[1]))
        return 0
    info = machine()
    figures: dict[str, Any] = {"machine": info, "load_before": load()}
    with tempfile.TemporaryDirectory(prefix="emotrace-bench-video-") as tmp:
        if "throughput" in args.parts:
            figures.update(throughput(args, Path(tmp)))
        if "memory" in args.parts:
            figures["memory"] = memory_run(Path(tmp))
        if "real" in args.parts:
            figures["real"] = real_videos(args, Path(tmp))
        if "scenes" in args.parts:
            figures["scenes"] = scenes(args, Path(tmp))
    figures["fer"] = fer_status()
    figures["load_after"] = load()

    print("emotrace video benchmark")
    print(f"machine: {describe(info)}")
    print(f"load average before {figures['load_before']}")
    if "runs" in figures:
        print_throughput(figures, args.seconds)
    if "memory" in figures:
        print_memory(figures["memory"])
    if "real" in figures:
        print_real(figures["real"])
    if "scenes" in figures:
        print_scenes(figures["scenes"])
    print(f"fer: {figures['fer']}")
    print(f"load average after {figures['load_after']}")
    checks = goals(figures, args.goal)
    figures["goal"] = [
        {"run": n, "cpu_fps": c, "processed_fps": w, "met": m} for n, c, w, m in checks
    ]
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    for name, cpu, wall, met in checks:
        print(
            f"goal >= {args.goal:g} frames/s (CPU time, default settings), {name}: "
            f"{'met' if met else 'MISSED'} ({cpu:.1f}; wall clock {wall:.1f} with the load above)"
        )
    return 0 if all(met for *_, met in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
