"""Paired end-to-end comparison of two models on the same composited videos (bench_e2e.py).

    python benchmarks/bench_e2e.py --model default --json a0.json
    python benchmarks/bench_e2e.py --model other.onnx --json b0.json
    python benchmarks/bench_e2e.py --model default --seed 1 --json a1.json     # more faces
    python benchmarks/bench_e2e.py --model other.onnx --seed 1 --json b1.json
    python benchmarks/compare_e2e.py --a a0.json a1.json --b b0.json b1.json

Each pair of files must come from the same video (same seed, faces, fps, detector, detection
interval and dataset); the faces of all pairs are pooled. Both models see the same detections,
so their found frames are the same and only the labels differ: the comparison is paired by face.

Reported for the smoothed labels (what ``analyze`` records) and the raw ones: each model's
accuracy on the found frames, the difference B - A in points, and its 95% interval from a
bootstrap over faces (10,000 resamples of the pooled faces, seed 0): frames of one face are not
independent, faces are. Exit status 2 when the files cannot be paired.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

#: Settings that must agree for two runs to have analysed the same video.
SAME_VIDEO = ("seed", "faces", "fps", "detector", "detect_every", "data")
RESAMPLES = 10_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--a", type=Path, nargs="+", required=True, help="bench_e2e --json files, A")
    p.add_argument("--b", type=Path, nargs="+", required=True, help="the same videos, model B")
    return p.parse_args(argv)


class PairingError(ValueError):
    """The files do not describe the same videos."""


def load(path: Path) -> dict[str, Any]:
    try:
        figures: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PairingError(f"{path}: not readable as JSON ({exc})") from None
    if "per_face" not in figures.get("results", {}):
        raise PairingError(f"{path}: no per-face figures (written by an older bench_e2e.py)")
    return figures


def pooled(a_paths: list[Path], b_paths: list[Path]) -> tuple[dict[str, np.ndarray], list[str]]:
    """Per-face arrays of both models over all pairs, and each model's name."""
    if len(a_paths) != len(b_paths):
        raise PairingError(f"{len(a_paths)} files for A but {len(b_paths)} for B")
    columns: dict[str, list[int]] = {}
    names: set[tuple[str, str]] = set()
    for a_path, b_path in zip(a_paths, b_paths, strict=True):
        a, b = load(a_path), load(b_path)
        differ = [k for k in SAME_VIDEO if a["settings"].get(k) != b["settings"].get(k)]
        fa, fb = a["results"]["per_face"], b["results"]["per_face"]
        if differ or fa["found_frames"] != fb["found_frames"]:
            what = ", ".join(differ) or "found frames"
            raise PairingError(f"{a_path} and {b_path} are not the same video ({what} differ)")
        names.add((str(a["model"]), str(b["model"])))
        columns.setdefault("found", []).extend(fa["found_frames"])
        for stream in ("smoothed", "raw"):
            columns.setdefault(f"a_{stream}", []).extend(fa[f"right_{stream}"])
            columns.setdefault(f"b_{stream}", []).extend(fb[f"right_{stream}"])
    model_a = ", ".join(sorted({a for a, _ in names}))
    model_b = ", ".join(sorted({b for _, b in names}))
    return {k: np.asarray(v, dtype=np.int64) for k, v in columns.items()}, [model_a, model_b]


def paired(found: np.ndarray, right_a: np.ndarray, right_b: np.ndarray) -> dict[str, float]:
    """Accuracy of each over all found frames, B - A, and a face-bootstrap 95% interval."""
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(found), (RESAMPLES, len(found)))
    frames = found[picks].sum(axis=1)
    differences = (right_b[picks].sum(axis=1) - right_a[picks].sum(axis=1)) / np.maximum(frames, 1)
    low, high = np.percentile(differences, [2.5, 97.5])
    total = max(int(found.sum()), 1)
    return {
        "accuracy_a": float(right_a.sum() / total),
        "accuracy_b": float(right_b.sum() / total),
        "difference": float((right_b.sum() - right_a.sum()) / total),
        "difference_ci95": [float(low), float(high)],
        "faces_where_b_is_better": int((right_b > right_a).sum()),
        "faces_where_a_is_better": int((right_a > right_b).sum()),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        data, (model_a, model_b) = pooled(args.a, args.b)
    except PairingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    found = data["found"]
    print(f"A: {model_a}\nB: {model_b}")
    print(
        f"{len(args.a)} video(s), {len(found)} faces, {int((found > 0).sum())} found, "
        f"{int(found.sum())} found frames; bootstrap over faces, {RESAMPLES:,} resamples"
    )
    for stream in ("smoothed", "raw"):
        r = paired(found, data[f"a_{stream}"], data[f"b_{stream}"])
        low, high = r["difference_ci95"]
        print(
            f"{stream:<9} A {r['accuracy_a']:.1%}  B {r['accuracy_b']:.1%}  B - A "
            f"{100 * r['difference']:+.1f} points (95% interval {100 * low:+.1f} to "
            f"{100 * high:+.1f}); faces better with B {r['faces_where_b_is_better']}, "
            f"with A {r['faces_where_a_is_better']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
