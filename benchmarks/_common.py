"""Helpers shared by the video benchmarks: what machine the figures come from, and test scenes.

Not a benchmark itself; ``bench_video.py`` and ``bench_e2e.py`` import it (scripts run as
``python benchmarks/NAME.py`` have this folder on ``sys.path``).
"""

from __future__ import annotations

import os
import platform
from functools import cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

#: The instruction-set extensions that change onnxruntime's and OpenCV's kernels (int8 needs VNNI
#: to avoid saturation; AMX only on recent Xeons). Printed with every figure.
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")
SIZE = (640, 480)


def machine() -> dict[str, Any]:
    """CPU model, core count, ISA flags (from ``/proc/cpuinfo``), Python and OpenCV versions."""
    model, flags = "", set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
    return {
        "cpu": model or platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "isa": {flag: flag in flags for flag in ISA_FLAGS},
        "python": platform.python_version(),
        "opencv": cv2.__version__,
    }


def describe(info: dict[str, Any]) -> str:
    """One line: ``AMD EPYC ..., 2 cpus; avx2+ avx512f+ avx512_vnni+ avx512_bf16+ amx-``."""
    isa = info["isa"]
    amx = any(on for flag, on in isa.items() if flag.startswith("amx"))
    marks = [f"{f}{'+' if on else '-'}" for f, on in isa.items() if not f.startswith("amx")]
    marks.append(f"amx{'+' if amx else '-'}")
    return (
        f"{info['cpu']}, {info['cpus']} cpus; {' '.join(marks)}; "
        f"Python {info['python']}, OpenCV {info['opencv']}"
    )


def load() -> tuple[float, float, float]:
    """The 1, 5 and 15-minute load averages, rounded."""
    one, five, fifteen = os.getloadavg()
    return round(one, 2), round(five, 2), round(fifteen, 2)


@cache
def _photos() -> tuple[np.ndarray, ...]:
    """BGR photo textures from scikit-image's bundled data, none of them holding a face."""
    from skimage import data

    colour = [cv2.cvtColor(data.rocket(), cv2.COLOR_RGB2BGR)]
    colour.append(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR))
    gray = [data.brick(), data.grass(), data.gravel()]
    return (*colour, *(cv2.cvtColor(g, cv2.COLOR_GRAY2BGR) for g in gray))


def plain_background() -> np.ndarray:
    """The smooth gradient ``bench_video.py`` has always used (no edges at all)."""
    width, height = SIZE
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 70 + 60 * xx / width + 30 * yy / height
    background = np.clip(np.stack([base, base * 0.9 + 10, base * 0.8 + 20], axis=2), 0, 255)
    return background.astype(np.uint8)


def photo_background() -> np.ndarray:
    """A real outdoor photo (scikit-image's ``rocket``: trees, a gantry, sky) cropped to 640x480:
    the fixed textured background of the speed runs."""
    photo = _photos()[0]
    width, height = SIZE
    scale = max(width / photo.shape[1], height / photo.shape[0])
    big = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    x0, y0 = (big.shape[1] - width) // 2, (big.shape[0] - height) // 2
    return np.ascontiguousarray(big[y0 : y0 + height, x0 : x0 + width])


def textured_background(rng: np.random.Generator) -> np.ndarray:
    """A random 640x480 textured background: a random crop of a photo texture (tinted when gray),
    randomly flipped, with a few translucent stripes and blobs on top. Edges everywhere, no
    faces."""
    photos = _photos()
    photo = photos[int(rng.integers(len(photos)))]
    width, height = SIZE
    scale = max(width / photo.shape[1], height / photo.shape[0]) * rng.uniform(1.0, 1.6)
    big = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    x0 = int(rng.integers(big.shape[1] - width + 1))
    y0 = int(rng.integers(big.shape[0] - height + 1))
    image = big[y0 : y0 + height, x0 : x0 + width].astype(np.float32)
    if np.allclose(image[..., 0], image[..., 1]):
        image *= rng.uniform(0.55, 1.15, size=3).astype(np.float32)
    if rng.random() < 0.5:
        image = image[:, ::-1]
    overlay = np.ascontiguousarray(image)
    for _ in range(int(rng.integers(3, 7))):
        colour = tuple(float(c) for c in rng.uniform(0, 255, size=3))
        layer = overlay.copy()
        if rng.random() < 0.5:
            x = int(rng.integers(-width // 2, width))
            y = int(rng.integers(-height // 2, height))
            cv2.line(layer, (x, 0), (x + y, height), colour, int(rng.integers(6, 30)))
        else:
            centre = (int(rng.integers(width)), int(rng.integers(height)))
            axes = (int(rng.integers(20, 120)), int(rng.integers(20, 120)))
            cv2.ellipse(layer, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
        alpha = rng.uniform(0.25, 0.6)
        overlay = cv2.addWeighted(layer, alpha, overlay, 1 - alpha, 0)
    return np.clip(overlay, 0, 255).astype(np.uint8)
