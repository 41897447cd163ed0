"""File sessions of ``emotrace serve`` against ``emotrace analyze`` on the same video, same run.

    python benchmarks/bench_file_session.py                      # the shared HEVC and H.264 clips
    python benchmarks/bench_file_session.py --video talk.mov --repeat 5 --json files.json
    python benchmarks/bench_file_session.py --loop 10   # also the H.264 clip 10 times over (MPEG-4)

A real server (``emotrace serve --port 0``, a throw-away workspace and temporary folder) is started
on loopback; for each video, ``--repeat`` times in alternation, the video is uploaded to
``POST /api/v1/file-sessions`` and followed until its analysis is complete, and ``emotrace
analyze VIDEO -o DIR`` runs on it in a process of its own. Both use the default settings (the
server's are ``analyze``'s). Reported per video: the analysis speed in frames/s (the server's
own figure from ``GET .../analysis``; ``analyze``'s from its ``summary.json``, both timed from
the first frame, after the model is loaded), their ratio, the upload time and the whole
request-to-complete time of the file session; and, since wall-clock speed on a shared machine
says as much about the neighbours as about the code, the CPU time per frame of each (the server
process's during the file session; ``analyze``'s beyond what a one-frame run of it costs, which is
start-up and model loading), with its ratio too. ``analyze`` starts cold (a new process), the
server is warm: on clips of a few seconds that weighs; ``--loop N`` adds a longer video (the
last one N times over, written as MPEG-4 Part 2, which every OpenCV build writes). The CPU
model and its flags are printed, since onnxruntime's speed depends on them; compare ratios, not
absolute figures, on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from _common import describe, load, machine
from bench_serve import server_cpu, start_server

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EMOTRACE_SHARED", REPO.parent / "shared"))
VIDEOS = [SHARED / "media" / "face_noface.mov", SHARED / "media" / "single_face.mp4"]


def file_session(base: str, token: str, pid: int, video: Path, name: str) -> dict[str, float]:
    """Upload ``video``, wait for its analysis; frames, frames/s, upload and total seconds, and
    the server's CPU milliseconds per frame."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"}
    params = {"patient": "BENCH", "name": name, "consent": "true"}
    with httpx.Client(base_url=base, headers=headers, timeout=600) as http:
        cpu0, t0 = server_cpu(pid), time.perf_counter()
        response = http.post("/api/v1/file-sessions", params=params, content=video.read_bytes())
        uploaded = time.perf_counter() - t0
        response.raise_for_status()
        sid = response.json()["id"]
        while True:
            progress = http.get(f"/api/v1/sessions/{sid}/analysis", params={"since": 10**12})
            progress.raise_for_status()
            state = progress.json()
            if state["state"] != "analysing":
                break
            time.sleep(0.5)  # as the page polls
        total = time.perf_counter() - t0
        cpu = server_cpu(pid) - cpu0
    if state["state"] != "complete":
        raise RuntimeError(f"{video.name}: the analysis ended {state['state']}: {state['error']}")
    return {
        "frames": state["frames_done"],
        "fps": state["fps"],
        "upload_s": round(uploaded, 3),
        "total_s": round(total, 3),
        "cpu_ms": 1000 * cpu / max(state["frames_done"], 1),
    }


def analyze(video: Path, *extra: str) -> dict[str, float]:
    """``emotrace analyze VIDEO -o DIR`` in its own process; frames, frames/s, CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory(prefix="emotrace-bench-analyze-") as out:
        subprocess.run(
            [sys.executable, "-m", "emotrace", "analyze", str(video), "-o", out, *extra],
            check=True,
            capture_output=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        summary = json.loads((Path(out) / "summary.json").read_text())
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"frames": summary["frames"], "fps": summary["processed_fps"], "cpu_s": cpu}


def looped(video: Path, times: int, folder: Path) -> Path:
    """``video`` ``times`` times over, as an MPEG-4 Part 2 ``.mp4`` in ``folder``."""
    import cv2

    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    out = folder / f"{video.stem}_x{times}.mp4"
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for _ in range(times):
        for frame in frames:
            writer.write(frame)
    writer.release()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--video", type=Path, nargs="+", default=VIDEOS)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, alternating")
    parser.add_argument("--loop", type=int, default=0, help="add the last video N times over")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    videos = [v for v in args.video if v.is_file()]
    if not videos:
        print(f"no video found among {', '.join(map(str, args.video))}", file=sys.stderr)
        return 2
    info = machine()
    print(describe(info))
    print(f"load average {load()}")
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="emotrace-bench-files-") as folder:
        os.environ["TMPDIR"] = folder  # the server's uploads go here, and go with it
        if args.loop > 1:
            videos.append(looped(videos[-1], args.loop, Path(folder)))
        process, base, token = start_server(Path(folder) / "workspace", None)
        try:
            file_session(base, token, process.pid, videos[0], "warm-up")  # model, allocator, caches
            for video in videos:
                served, analysed, starts = [], [], []
                for i in range(args.repeat):
                    name = f"{video.stem}-{i}"
                    served.append(file_session(base, token, process.pid, video, name))
                    analysed.append(analyze(video))
                    starts.append(analyze(video, "--max-frames", "1"))
                if {s["frames"] for s in served} != {a["frames"] for a in analysed}:
                    raise RuntimeError(f"{video.name}: frame counts differ: {served} {analysed}")
                server_fps = statistics.median(s["fps"] for s in served)
                cli_fps = statistics.median(a["fps"] for a in analysed)
                frames = served[0]["frames"]
                server_cpu_ms = statistics.median(s["cpu_ms"] for s in served)
                cli_cpu_ms = 1000 * statistics.median(
                    (a["cpu_s"] - b["cpu_s"]) / max(frames - 1, 1)
                    for a, b in zip(analysed, starts, strict=True)
                )
                result = {
                    "video": video.name,
                    "frames": frames,
                    "server_fps": round(server_fps, 1),
                    "analyze_fps": round(cli_fps, 1),
                    "ratio": round(server_fps / cli_fps, 3),
                    "server_cpu_ms_per_frame": round(server_cpu_ms, 1),
                    "analyze_cpu_ms_per_frame": round(cli_cpu_ms, 1),
                    "cpu_ratio": round(server_cpu_ms / cli_cpu_ms, 3),
                    "upload_s": statistics.median(s["upload_s"] for s in served),
                    "total_s": statistics.median(s["total_s"] for s in served),
                    "load": load()[0],
                }
                results.append(result)
                print(
                    f"{video.name} ({result['frames']} frames): file session "
                    f"{result['server_fps']} frames/s, emotrace analyze {result['analyze_fps']} "
                    f"frames/s: ratio {result['ratio']:.2f}; CPU per frame "
                    f"{result['server_cpu_ms_per_frame']} ms against "
                    f"{result['analyze_cpu_ms_per_frame']} ms: ratio {result['cpu_ratio']:.2f}; "
                    f"upload {result['upload_s']} s, "
                    f"upload to complete {result['total_s']} s (medians of {args.repeat}); "
                    f"load average {result['load']}"
                )
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
