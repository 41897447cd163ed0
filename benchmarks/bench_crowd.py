"""Crowded frames: the live pipeline's frame rate with the default, fast and accurate models.

    python benchmarks/bench_crowd.py                       # 1 to 9 faces, 60 frames each
    python benchmarks/bench_crowd.py --faces 1 4 6 --frames 100 --json crowd.json

Each frame is a 1280x720 video-call gallery (a grid of tiles, as a call's gallery view shows it)
holding N real faces from ``--media`` (default ``../shared/media``: the five faces of
``multi_face.jpg``, ``justin.jpg`` and ``single_face.jpg``, each cut with room around it and
placed in its own tile). The same frame is fed ``--frames`` times to
:func:`emotrace.video.process` (detection every 2nd frame, tracking, smoothing: what a live view
runs) with one thread, as ``emotrace live`` and each ``serve`` worker run; the figure is the
median wall time per frame after a warm-up, taken in interleaved rounds so load changes hit every
model alike.

It prints, per N, ms per frame and frames/s for each model, and the crowd threshold: the largest
number of faces found at which ``default`` still keeps ``--target-fps`` (30, a camera's rate) on
a CPU ``--slowdown`` times slower than this one (2: the laptops users run live views on are
slower than a server core); a live view switches to ``fast`` above it
(``emotrace.video.defaults.DEFAULT_CROWD_FACES``). The CPU
model, its ISA flags and the load average come with the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from _common import describe, load, machine
from emotrace.runtime.recognizer import EmotionRecognizer
from emotrace.video.frames import Frame, FrameSource, SourceInfo
from emotrace.video.pipeline import process

SIZE = (1280, 720)
MODELS = ("default", "fast", "accurate")


class RepeatedFrame(FrameSource):
    """One image as ``count`` frames 1/30 s apart (a still camera pointed at a gallery)."""

    def __init__(self, image: np.ndarray, count: int) -> None:
        super().__init__(queue_size=4)
        self._image, self._count = image, count
        self.info = SourceInfo("gallery", "folder", False, 30.0, count, SIZE[0], SIZE[1])

    def _produce(self) -> Iterator[Frame]:
        for index in range(self._count):
            yield Frame(index, index / 30.0, self._image)


def face_crops(media: Path) -> list[np.ndarray]:
    """Every face the bundled detector finds in the media photos, with half a box around it."""
    recognizer = EmotionRecognizer()
    crops = []
    for name in ("multi_face.jpg", "justin.jpg", "single_face.jpg"):
        image = cv2.imread(str(media / name))
        if image is None:
            sys.exit(f"{media / name}: not found (give --media)")
        for x, y, w, h in recognizer.recognize(image).boxes:
            x0, y0 = max(0, x - w // 2), max(0, y - h // 2)
            crops.append(image[y0 : y + h + h // 2, x0 : x + w + w // 2])
    return crops


def gallery(crops: list[np.ndarray], faces: int) -> np.ndarray:
    """A 1280x720 frame of ``faces`` tiles in the smallest square grid that holds them."""
    grid = int(np.ceil(np.sqrt(faces)))
    tile_w, tile_h = SIZE[0] // grid, SIZE[1] // grid
    frame = np.full((SIZE[1], SIZE[0], 3), 40, np.uint8)
    for i in range(faces):
        crop = crops[i % len(crops)]
        scale = min(tile_w / crop.shape[1], tile_h / crop.shape[0]) * 0.9
        resized = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        row, col = divmod(i, grid)
        y = row * tile_h + (tile_h - resized.shape[0]) // 2
        x = col * tile_w + (tile_w - resized.shape[1]) // 2
        frame[y : y + resized.shape[0], x : x + resized.shape[1]] = resized
    return frame


def frame_times(recognizer: EmotionRecognizer, image: np.ndarray, frames: int) -> list[float]:
    """Wall seconds per processed frame (the first 5, warm-up, left out)."""
    times = []
    start = time.perf_counter()
    for _ in process(RepeatedFrame(image, frames + 5), recognizer, detect_every=2):
        now = time.perf_counter()
        times.append(now - start)
        start = now
    return times[5:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", type=Path, default=Path("../shared/media"))
    parser.add_argument("--faces", type=int, nargs="+", default=list(range(1, 10)))
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--target-fps", type=float, default=30.0)
    parser.add_argument(
        "--slowdown",
        type=float,
        default=2.0,
        help="the threshold is set for a CPU this many times slower than this one (default 2: "
        "an AVX2 laptop against this AVX-512 Xeon)",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    crops = face_crops(args.media)
    recognizers = {m: EmotionRecognizer(model=m, threads=1) for m in MODELS}
    samples: dict[tuple[str, int], list[float]] = {(m, n): [] for m in MODELS for n in args.faces}
    found: dict[int, int] = {}
    for _ in range(args.rounds):
        for n in args.faces:
            image = gallery(crops, n)
            found[n] = len(recognizers["default"].recognize(image))
            for model in MODELS:
                samples[(model, n)] += frame_times(recognizers[model], image, args.frames)
    info = machine()
    print(describe(info))
    print(f"load average: {' '.join(f'{x:.2f}' for x in load())}")
    print(f"{'faces':>5} {'found':>5}  " + "  ".join(f"{m + ' ms':>12} {'fps':>6}" for m in MODELS)
          + "  fast/default")  # fmt: skip
    rows = []
    for n in args.faces:
        ms = {m: 1000 * statistics.median(samples[(m, n)]) for m in MODELS}
        rows.append({"faces": n, "found": found[n], "ms_per_frame": ms})
        print(f"{n:>5} {found[n]:>5}  "
              + "  ".join(f"{ms[m]:>12.2f} {1000 / ms[m]:>6.1f}" for m in MODELS)
              + f"  {ms['fast'] / ms['default']:>11.2f}")  # fmt: skip
    thresholds = {}
    for slowdown in (1.0, args.slowdown):
        budget = 1000 / args.target_fps / slowdown
        keeps = [r["found"] for r in rows if r["ms_per_frame"]["default"] <= budget]
        thresholds[slowdown] = threshold = max(keeps) if keeps else 0
        where = "this machine" if slowdown == 1 else f"a CPU {slowdown:g}x slower"
        print(f"default keeps {args.target_fps:g} frames/s up to {threshold} faces on {where}")
    threshold = thresholds[args.slowdown]
    print(f"crowd threshold (live views switch to fast above it): {threshold}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"machine": info, "load": load(), "rows": rows, "threshold": threshold},
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
