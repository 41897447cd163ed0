"""Batch benchmark: `emotrace batch` on 8 short real-face videos: the local pool, Ray on a cluster
the command starts, and Ray clusters of 1 and 2 nodes on this machine that the command joins.

    python benchmarks/bench_batch.py                    # about 5 minutes on 2 busy cores
    python benchmarks/bench_batch.py --seconds 2 --engines local --nodes

(a) Eight 640x480 MJPG videos at 25 fps (``--seconds`` each, default 4) are generated from
    scikit-image's astronaut, her head gliding over a gradient background (a different path per
    video). Each configuration runs the real command, ``python -m emotrace batch VIDEOS -o OUT
    --engine E --workers W``, in a fresh process into a fresh OUT_DIR, and is timed by the wall
    clock from process start to exit (Python start-up, model loading, pool or cluster start-up
    and shutdown included). Printed: videos per minute, processed frames per second over all
    workers, and the mean per-video frames/s of a worker (from ``index.csv``).
    With ``--nodes 1 2`` (default) the same archive then goes to Ray clusters that this script
    starts with ``ray.cluster_utils.Cluster`` and token authentication (a random token, given to
    the command as ``RAY_AUTH_MODE=token RAY_AUTH_TOKEN``): 1 node with all the CPUs, and a head
    without CPUs plus 2 nodes sharing them; the command joins with ``--address`` (``--transfer
    send``, videos and records through the object store; on 2 nodes also ``shared``), with one
    worker per CPU. Cluster start-up is outside the timing, joining it inside.
(b) Ray start-up overhead, measured apart in a fresh process: ``ray.init(num_cpus=2)`` of a new
    local cluster, the first actor's model load (a fresh worker process importing emotrace and
    building the recognizer), and ``ray.shutdown()``.
(c) The paper estimate for a 1,000-hour archive on N machines, from the measured per-worker
    frames/s (see benchmarks/README.md).

The machine's CPU model, its SIMD flags and the load average are printed with the figures.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SIZE = (640, 480)
FPS = 25.0
SIMD = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")


def cpu_description() -> str:
    """CPU model and the SIMD flags that matter to OpenCV and onnxruntime."""
    model, flags = platform_cpu(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    present = [f for f in SIMD if f in flags]
    return f"{model}; {os.cpu_count()} logical CPUs; flags: {' '.join(present) or 'unknown'}"


def platform_cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def make_videos(folder: Path, count: int, seconds: float) -> list[Path]:
    """``count`` MJPG videos of the astronaut's head gliding along different paths."""
    from skimage import data

    head = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[30:230, 145:305]
    head = cv2.resize(head, (128, 160), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[0 : SIZE[1], 0 : SIZE[0]].astype(np.float32)
    base = 70 + 60 * xx / SIZE[0] + 30 * yy / SIZE[1]
    background = np.clip(np.stack([base, base * 0.9 + 10, base * 0.8 + 20], 2), 0, 255)
    background = background.astype(np.uint8)
    frames = round(seconds * FPS)
    paths = []
    for v in range(count):
        path = folder / f"session_{v:02d}.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, SIZE)
        for i in range(frames):
            t = i / max(frames - 1, 1)
            x = int(40 + (SIZE[0] - 128 - 80) * (t if v % 2 == 0 else 1 - t))
            y = int(60 + 120 * abs(np.sin(np.pi * (t + v / count))))
            frame = background.copy()
            frame[y : y + 160, x : x + 128] = head
            writer.write(frame)
        writer.release()
        paths.append(path)
    return paths


def run_batch(
    videos: list[Path], out: Path, engine: str, workers: int, *extra: str, label: str = ""
) -> dict[str, Any]:
    """One ``emotrace batch`` process, timed from start to exit."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, "-m", "emotrace", "batch", *map(str, videos), "-o", str(out)]
    command += ["--engine", engine, "--workers", str(workers), *extra]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")
    with (out / "index.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    frames = sum(int(r["frames"]) for r in rows)
    return {
        "engine": label or engine,
        "workers": workers,
        "videos": len(rows),
        "frames": frames,
        "wall_s": wall,
        "videos_per_min": 60 * len(rows) / wall,
        "frames_per_s": frames / wall,
        "worker_fps": float(np.mean([float(r["processed_fps"]) for r in rows])),
        "busy_s": sum(float(r["seconds"]) for r in rows),
    }


RAY_STARTUP = """
import time, logging
t0 = time.perf_counter()
import ray
from emotrace.batch import pipeline_options
from emotrace.batch.worker import VideoAnalyzer
t1 = time.perf_counter()
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
t2 = time.perf_counter()

@ray.remote(num_cpus=1)
class Probe:
    def __init__(self):
        self.analyzer = VideoAnalyzer(pipeline_options(threads=1))
    def ready(self):
        return True

ray.get(Probe.remote().ready.remote())
t3 = time.perf_counter()
ray.shutdown()
t4 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f} {t3 - t2:.3f} {t4 - t3:.3f}")
"""


def ray_startup() -> list[float]:
    """Seconds: import ray + emotrace, ray.init (new local cluster), first actor ready, shutdown."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    result = subprocess.run(
        [sys.executable, "-c", RAY_STARTUP], capture_output=True, text=True, env=env, check=True
    )
    return [float(x) for x in result.stdout.split()[-4:]]


def on_cluster(nodes: int, cpus: int, videos: list[Path], folder: Path) -> list[dict[str, Any]]:
    """The batch on a Ray cluster of ``nodes`` nodes on this machine sharing ``cpus`` CPUs,
    joined by the command; ``send`` (and on several nodes ``shared``) transfer."""
    from ray.cluster_utils import Cluster

    head_cpus = cpus if nodes == 1 else 0
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": head_cpus, "include_dashboard": False}
    )
    results = []
    try:
        for _ in range(nodes if nodes > 1 else 0):
            cluster.add_node(num_cpus=cpus // nodes)
        cluster.wait_for_nodes()
        for transfer in ("send", "shared") if nodes > 1 else ("send",):
            out = folder / f"out-ray-{nodes}node-{transfer}"
            label = f"ray, {nodes} node{'s' if nodes > 1 else ''}, {transfer}"
            extra = ("--address", cluster.address, "--transfer", transfer)
            results.append(run_batch(videos, out, "ray", cpus, *extra, label=label))
    finally:
        cluster.shutdown()
    return results


def show(r: dict[str, Any]) -> None:
    print(
        f"  {r['engine']:22s} {r['workers']} worker(s): {r['wall_s']:6.1f} s wall, "
        f"{r['videos_per_min']:5.1f} videos/min, {r['frames_per_s']:5.1f} frames/s, "
        f"{r['worker_fps']:5.1f} frames/s per worker  (load {load()})"
    )


def archive_estimate(worker_fps: float, every: int, machines: int, cores: int) -> float:
    """Hours for 1,000 hours of 25 fps video with one worker per core (no scaling loss)."""
    frames = 1000 * 3600 * FPS / every
    return frames / (worker_fps * cores * machines) / 3600


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each video")
    parser.add_argument("--engines", nargs="+", default=["local", "ray"])
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    parser.add_argument(
        "--nodes",
        nargs="*",
        type=int,
        default=[1, 2],
        help="Ray clusters of these many nodes on this machine (none: skip)",
    )
    args = parser.parse_args()
    if args.nodes:
        # Token authentication for the clusters started here and the commands joining them; set
        # before Ray is first imported, which reads it once per process.
        import secrets

        os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16))

    print(f"CPU: {cpu_description()}")
    print(f"load average before: {load()}")
    results = []
    with tempfile.TemporaryDirectory(prefix="emotrace-bench-batch-") as tmp:
        folder = Path(tmp)
        videos = make_videos(folder, args.videos, args.seconds)
        print(
            f"{len(videos)} videos of {args.seconds:g} s, {SIZE[0]}x{SIZE[1]} at {FPS:g} fps "
            f"({round(args.seconds * FPS)} frames each)"
        )
        for engine in args.engines:
            for workers in args.workers:
                out = folder / f"out-{engine}-{workers}"
                label = "ray, started by batch" if engine == "ray" else "local"
                results.append(run_batch(videos, out, engine, workers, label=label))
                show(results[-1])
        cpus = max(args.workers)
        for nodes in args.nodes:
            for r in on_cluster(nodes, cpus, videos, folder):
                results.append(r)
                show(r)
    startup = ray_startup() if "ray" in args.engines else None
    if startup is not None:
        print(
            f"Ray start-up: import ray + emotrace {startup[0]:.1f} s, ray.init (local cluster, "
            f"2 CPUs) {startup[1]:.1f} s, first actor with its model {startup[2]:.1f} s, "
            f"shutdown {startup[3]:.1f} s"
        )
    print("\n| engine | workers | wall s | videos/min | frames/s | frames/s per worker |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['engine']} | {r['workers']} | {r['wall_s']:.1f} | {r['videos_per_min']:.1f} "
            f"| {r['frames_per_s']:.1f} | {r['worker_fps']:.1f} |"
        )
    one = [r for r in results if r["workers"] == 1 and r["engine"] == "local"]
    per_worker = one[0]["worker_fps"] if one else results[0]["worker_fps"]
    print(f"\n1,000 h of 25 fps video at {per_worker:.0f} frames/s per worker (one per core):")
    print("| machines x cores | every frame | --every 5 (5 fps) |")
    print("|---|---|---|")
    for machines, cores in ((1, 2), (1, 16), (10, 16), (50, 16)):
        full = archive_estimate(per_worker, 1, machines, cores)
        fifth = archive_estimate(per_worker, 5, machines, cores)
        print(f"| {machines} x {cores} | {full:,.1f} h | {fifth:,.1f} h |")
    print(f"load average after: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
