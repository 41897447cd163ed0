"""Crowded frames: recall and speed on video-call galleries of real, moving faces.

    python benchmarks/bench_gallery.py                    # every grid, size and --max-side
    python benchmarks/bench_gallery.py --frames 20 --json gallery.json

A gallery is a ``G`` x ``G`` grid of tiles (2x2 to 5x5) at 1280x720 or 1920x1080, as a video call's
gallery view or a shared call window shows it. Each tile plays real footage from ``--media``
(default ``../shared/media``): ``single_face.mp4`` (a person moving), or a face of
``multi_face.jpg``, ``justin.jpg`` or ``single_face.jpg`` panned slowly, each tile at its own
offset. The truth is what OpenCV's own YuNet (``top_k`` 5000, OpenCV Zoo's thresholds relaxed to
emotrace's 0.7) finds in each tile's source at its source resolution.

For every gallery and ``--max-side`` (640, 960, 1280, full size) it prints:
- recall: faces found with their centre in the right tile (at most the tile's truth) / truth;
- false: faces found beyond a tile's truth, or outside every tile's face;
- processed frames/s: ``EmotionRecognizer.recognize`` per frame (detect + classify every face in
  one batched call), wall clock, with the default threads; and CPU ms per frame.
Then, as the peer measured in the same run, the same galleries with the earlier ``top_k=50``
(recall only, at ``--max-side 640``), and ``single_face.mp4`` frames/s at both ``top_k``.
Every figure comes with the CPU model, its ISA flags and the load average.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from _common import describe, load, machine
from emotrace.faces import make_detector
from emotrace.faces.downscale import DownscaledDetector
from emotrace.faces.yunet import YuNetFaceDetector, bundled_yunet_path
from emotrace.runtime.recognizer import EmotionRecognizer

GRIDS = (2, 3, 4, 5)
SIZES = ((1280, 720), (1920, 1080))
MAX_SIDES: tuple[int | None, ...] = (640, 960, 1280, None)


class Clip:
    """A tile's footage: frames with the number of faces each holds."""

    def __init__(self, frames: list[np.ndarray], faces: list[int]) -> None:
        self.frames, self.faces = frames, faces

    def at(self, t: int) -> tuple[np.ndarray, int]:
        i = t % len(self.frames)
        return self.frames[i], self.faces[i]


def _reference() -> Any:
    return cv2.FaceDetectorYN.create(str(bundled_yunet_path()), "", (320, 320), 0.7, 0.3, 5000)


def _count(net: Any, image: np.ndarray) -> int:
    net.setInputSize((image.shape[1], image.shape[0]))
    _, rows = net.detect(image)
    return 0 if rows is None else len(rows)


def clips(media: Path, frames: int) -> list[Clip]:
    """Real footage for the tiles: the video, and each photo face panned across ``frames``."""
    net = _reference()
    out = []
    capture = cv2.VideoCapture(str(media / "single_face.mp4"))
    video = []
    while len(video) < max(frames, 60):
        ok, frame = capture.read()
        if not ok:
            break
        video.append(frame)
    capture.release()
    if video:
        out.append(Clip(video, [_count(net, f) for f in video]))
    for name in ("multi_face.jpg", "justin.jpg", "single_face.jpg"):
        image = cv2.imread(str(media / name))
        if image is None:
            continue
        net.setInputSize((image.shape[1], image.shape[0]))
        _, rows = net.detect(image)
        for x, y, w, h in rows[:, :4] if rows is not None else []:
            half = int(0.7 * max(w, h))
            panned = []
            for t in range(frames):  # a slow pan: the face drifts by up to 15% of its size
                dx = int(0.15 * w * np.sin(2 * np.pi * t / max(frames, 2)))
                cx, cy = int(x + w / 2) + dx, int(y + h / 2)
                panned.append(image[max(0, cy - half) : cy + half, max(0, cx - half) : cx + half])
            out.append(Clip(panned, [1] * frames))
    return out


def gallery(
    sources: list[Clip], grid: int, width: int, height: int, t: int
) -> tuple[np.ndarray, list[int]]:
    """Frame ``t`` of a ``grid`` x ``grid`` gallery, and the faces each tile holds."""
    canvas = np.full((height, width, 3), 40, np.uint8)
    tile_w, tile_h = width // grid, height // grid
    truth = []
    for i in range(grid * grid):
        image, faces = sources[i % len(sources)].at(t + 7 * i)
        scale = 0.95 * min(tile_w / image.shape[1], tile_h / image.shape[0])
        tile = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        y = (i // grid) * tile_h + (tile_h - tile.shape[0]) // 2
        x = (i % grid) * tile_w + (tile_w - tile.shape[1]) // 2
        canvas[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
        truth.append(faces)
    return canvas, truth


def score(
    boxes: np.ndarray, truth: list[int], grid: int, width: int, height: int
) -> tuple[int, int]:
    """(faces found in their tile, up to its truth; faces found beyond it)."""
    per_tile = [0] * (grid * grid)
    for x, y, w, h in boxes:
        row = min(grid - 1, int((y + h / 2) // (height // grid)))
        col = min(grid - 1, int((x + w / 2) // (width // grid)))
        per_tile[row * grid + col] += 1
    hits = sum(min(found, want) for found, want in zip(per_tile, truth, strict=True))
    extra = sum(max(0, found - want) for found, want in zip(per_tile, truth, strict=True))
    return hits, extra


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(
    recognizer: EmotionRecognizer, frames: list[tuple[np.ndarray, list[int]]], grid: int
) -> dict[str, Any]:
    """Recall, false faces, frames/s and CPU ms per frame of ``recognizer`` over ``frames``."""
    height, width = frames[0][0].shape[:2]
    recognizer.recognize(frames[0][0])  # warm-up: sessions, input size
    hits = extra = want = 0
    wall, cpu = time.perf_counter(), _cpu()
    for image, truth in frames:
        found = recognizer.recognize(image)
        h, e = score(found.boxes, truth, grid, width, height)
        hits, extra, want = hits + h, extra + e, want + sum(truth)
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    return {
        "recall": round(hits / max(want, 1), 4),
        "false": extra,
        "faces": want,
        "fps": round(len(frames) / wall, 2),
        "cpu_ms": round(1e3 * cpu / len(frames), 1),
    }


def _figures(row: dict[str, Any]) -> str:
    return f"{row['recall']:7.3f} {row['false']:5d} {row['fps']:6.1f} {row['cpu_ms']:7.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--media", type=Path, default=Path(__file__).parents[1].parent / "shared" / "media"
    )
    parser.add_argument("--frames", type=int, default=30, help="gallery frames per setting")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if not (args.media / "single_face.mp4").is_file():
        print(f"bench_gallery: needs the real media in {args.media}", file=sys.stderr)
        return 2
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # rows as they come
    info = machine()
    print(describe(info))
    print(f"load average before: {load()}")
    sources = clips(args.media, args.frames)
    results: list[dict[str, Any]] = []
    print(f"{'gallery':>16} {'max-side':>8} {'recall':>7} {'false':>5} {'fps':>6} {'cpu ms':>7}")
    for grid in GRIDS:
        for width, height in SIZES:
            frames = [gallery(sources, grid, width, height, t) for t in range(args.frames)]
            for max_side in MAX_SIDES:
                recognizer = EmotionRecognizer(detector=make_detector(max_side=max_side))
                row = {"grid": grid, "size": f"{width}x{height}", "max_side": max_side or "full"}
                row |= run(recognizer, frames, grid)
                results.append(row)
                print(f"{grid}x{grid} {width}x{height:<5} {row['max_side']!s:>8} {_figures(row)}")
            old = EmotionRecognizer(
                detector=DownscaledDetector(YuNetFaceDetector(top_k=50, min_size=10), 640)
            )
            row = {"grid": grid, "size": f"{width}x{height}", "max_side": 640, "top_k": 50}
            row |= run(old, frames, grid)
            results.append(row)
            print(f"{'':>16} {'640 k50':>8} {_figures(row)}   (the earlier top_k=50)")
    video = [(f, [n]) for f, n in zip(sources[0].frames, sources[0].faces, strict=True)]
    speeds = {}
    for _ in range(3):  # interleaved, so both see the same load
        for top_k in (50, 5000):
            detector = DownscaledDetector(YuNetFaceDetector(top_k=top_k, min_size=10), 640)
            speeds.setdefault(top_k, []).append(run(EmotionRecognizer(detector=detector), video, 1))
    for top_k, runs in speeds.items():
        fps = float(np.median([r["fps"] for r in runs]))
        print(f"single_face.mp4, top_k={top_k}: {fps:.1f} frames/s (median of 3)")
    ratio = np.median([r["fps"] for r in speeds[5000]]) / np.median([r["fps"] for r in speeds[50]])
    print(f"top_k 5000 / 50 frames/s on single_face.mp4: {ratio:.2f}")
    print(f"load average after: {load()}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"machine": info, "galleries": results, "single_face_top_k": speeds}, indent=1
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
