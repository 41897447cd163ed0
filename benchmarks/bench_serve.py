"""Load benchmark of ``emotrace serve``: simulated pages streaming a real face over WebSockets.

    python benchmarks/bench_serve.py                     # 1, 4 and 8 clients, 20 s each
    python benchmarks/bench_serve.py --clients 1 4 --seconds 10 --json serve.json
    python benchmarks/bench_serve.py --workers 1 2      # one inference thread against two

A real server process (``emotrace serve --port 0 --workers W``, a throw-away workspace) is started
on loopback for each ``--workers`` value (default: 1, then the server's own default, one per
core up to 4), one after the other in the same run, so the totals compare. Each simulated
client creates a session over the REST API and then does what the page does: send one 640x480
JPEG (quality 80) of a real face (the shared clip ``../shared/media/single_face.mp4`` when
present, else scikit-image's astronaut), wait for the result, send the next, as fast as results
come back (no 15 frames/s cap as in the page), for ``--seconds``; then it stops the session.
Reported per number of clients: per-frame round trip p50/p99 (ms), frames/s per client and in
total, the server's CPU ms per frame and the load average, then each total as a ratio of the
one-worker total. The CPU's flags (AVX2, AVX-512...) are printed, since onnxruntime's speed
depends on them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
from websockets.sync.client import connect

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EMOTRACE_SHARED", REPO.parent / "shared"))


def cpu_flags() -> str:
    """Model name and the SIMD flags that matter for onnxruntime."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    model = re.search(r"model name\s*:\s*(.+)", info)
    flags = set((re.search(r"flags\s*:\s*(.+)", info) or [None, ""])[1].split())
    wanted = ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile"]
    return f"{model.group(1) if model else 'unknown CPU'}; flags: " + " ".join(
        f for f in wanted if f in flags
    )


def face_jpegs(n: int = 30) -> list[bytes]:
    """``n`` 640x480 JPEG frames of a real face."""
    frames: list[np.ndarray] = []
    clip = SHARED / "media" / "single_face.mp4"
    if clip.is_file():
        capture = cv2.VideoCapture(str(clip))
        while len(frames) < n:
            ok, image = capture.read()
            if not ok:
                break
            frames.append(cv2.resize(image, (640, 480), interpolation=cv2.INTER_AREA))
    if not frames:
        from skimage import data

        face = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
        frames = [cv2.resize(np.roll(face, 4 * i, axis=1), (640, 480)) for i in range(n)]
    return [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes() for f in frames]


def start_server(workspace: Path, workers: int | None) -> tuple[subprocess.Popen[str], str, str]:
    """``emotrace serve`` on a free loopback port; its process, base URL and token."""
    command = [sys.executable, "-m", "emotrace", "serve", "--port", "0"]
    command += ["--workspace", str(workspace)]
    command += [] if workers is None else ["--workers", str(workers)]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert process.stdout is not None
    for line in process.stdout:
        found = re.search(r"(http://\S+)/\?token=(\S+)", line)
        if found:
            return process, found.group(1), found.group(2)
    raise RuntimeError("the server printed no URL")


def server_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def client(
    base: str, token: str, index: int, frames: list[bytes], seconds: float, out: list[float]
) -> None:
    """One simulated page: a session, then one frame per result until the time is up."""
    headers = {"Authorization": f"Bearer {token}"}
    session = httpx.post(
        f"{base}/api/v1/sessions",
        json={
            "patient": f"B-{index}",
            "name": f"bench-{index}-{time.time_ns()}",
            "source": "api",
            "consent": True,
        },
        headers=headers,
        timeout=60,
    ).json()
    url = f"ws{base[4:]}/api/v1/sessions/{session['id']}/live"
    nan = struct.pack("<d", math.nan)
    with connect(url, additional_headers=headers, max_size=None) as ws:
        json.loads(ws.recv())
        end = time.perf_counter() + seconds
        i = 0
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            ws.send(nan + frames[i % len(frames)])
            reply = json.loads(ws.recv())
            out.append(time.perf_counter() - t0)
            assert reply["type"] == "result", reply
            i += 1
        ws.send(json.dumps({"type": "stop"}))
        json.loads(ws.recv())


def run(
    base: str, token: str, pid: int, n: int, seconds: float, frames: list[bytes]
) -> dict[str, Any]:
    """``n`` clients at once; latency and throughput figures."""
    times: list[list[float]] = [[] for _ in range(n)]
    threads = [
        threading.Thread(target=client, args=(base, token, i, frames, seconds, times[i]))
        for i in range(n)
    ]
    cpu0, wall0 = server_cpu(pid), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall, cpu = time.perf_counter() - wall0, server_cpu(pid) - cpu0
    every = np.array([t for ts in times for t in ts]) * 1000
    per_client = [len(ts) / seconds for ts in times]
    return {
        "clients": n,
        "frames": int(every.size),
        "rtt_p50_ms": round(float(np.percentile(every, 50)), 1),
        "rtt_p99_ms": round(float(np.percentile(every, 99)), 1),
        "fps_per_client_mean": round(float(np.mean(per_client)), 1),
        "fps_per_client_min": round(float(np.min(per_client)), 1),
        "fps_total": round(every.size / seconds, 1),
        "server_cpu_ms_per_frame": round(1000 * cpu / max(every.size, 1), 2),
        "wall_s": round(wall, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1, 0],
        help="inference threads of each server (0: the server's default); default: 1 0",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPU core(s), load average {os.getloadavg()[0]:.2f}")
    print(cpu_flags())
    frames = face_jpegs()
    print(
        f"{len(frames)} frames of 640x480, JPEG {np.mean([len(f) for f in frames]) / 1024:.0f} KiB"
    )
    results = []
    for workers in args.workers:
        label = f"workers={workers or 'default'}"
        with tempfile.TemporaryDirectory(prefix="emotrace-bench-serve-") as folder:
            process, base, token = start_server(Path(folder), workers or None)
            try:
                client(base, token, 99, frames, 2.0, [])  # warm-up: model, allocator, caches
                for n in args.clients:
                    result = run(base, token, process.pid, n, args.seconds, frames)
                    result |= {"workers": workers or "default", "load": os.getloadavg()[0]}
                    results.append(result)
                    print(
                        f"{label}, {n} client(s): round trip p50 {result['rtt_p50_ms']} ms, p99 "
                        f"{result['rtt_p99_ms']} ms; {result['fps_per_client_mean']} frames/s "
                        f"per client (min {result['fps_per_client_min']}), "
                        f"{result['fps_total']} in total; server CPU "
                        f"{result['server_cpu_ms_per_frame']} ms/frame; "
                        f"load average {result['load']:.2f}"
                    )
            finally:
                process.send_signal(signal.SIGINT)
                process.wait(timeout=30)
    one = {r["clients"]: r["fps_total"] for r in results if r["workers"] == 1}
    for r in results:
        if r["workers"] != 1 and r["clients"] in one:
            ratio = r["fps_total"] / max(one[r["clients"]], 1e-9)
            print(f"workers={r['workers']}, {r['clients']} client(s): {ratio:.2f}x the total of 1")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_flags(), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
