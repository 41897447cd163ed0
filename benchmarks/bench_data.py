"""Data-path benchmark: FER2013 cache load time and batched augmentation throughput.

    python benchmarks/bench_data.py            # full run (a few seconds per measurement)
    python benchmarks/bench_data.py --quick    # shorter timings, fewer repeats

(a) Builds the FER2013 cache once (``--data``, default ``../shared/datasets/fer2013``) into
``<cache dir>/datasets/<key>.npz`` — the place ``emotrace`` itself reuses — unless it is already
there, then times :func:`emotrace.data.load` (median of 5). Goal: under 2 s.
(b) Times :class:`~emotrace.data.augment.BatchAugment` with the default config on 48x48 gray
batches of 128 and 512 with ``torch.set_num_threads(2)`` (``--threads``). Goal: at least 10,000
images/s.

Figures depend on what else runs on the machine; the load average is printed with them. On a
saturated machine extra torch threads wait for CPU time at every parallel step, so compare with
``--threads 2 1`` there.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "datasets" / "fer2013"
LOAD_GOAL_S = 2.0
AUGMENT_GOAL = 10_000.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="FER2013 image folder")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="where the cache is looked for and built (default: emotrace's cache dir)",
    )
    parser.add_argument(
        "--temp-cache",
        action="store_true",
        help="build the cache in a temporary folder that is removed afterwards",
    )
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[2],
        help="torch thread counts for augmentation (e.g. --threads 2 1 to compare)",
    )
    parser.add_argument(
        "--batch-sizes", type=int, nargs="+", default=[128, 512], help="augmentation batch sizes"
    )
    parser.add_argument("--quick", action="store_true", help="short timings (about 1 s each)")
    parser.add_argument(
        "--only", choices=["cache", "augment"], default=None, help="run one part only"
    )
    return parser.parse_args(argv)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def bench_cache(data: Path, cache_dir: Path, repeats: int) -> tuple[int, float]:
    """Build the cache if absent, then the median seconds of ``repeats`` loads; (images, s)."""
    from emotrace.data import load, prepare, save
    from emotrace.data.cache import dataset_key
    from emotrace.data.readers import read_class_folders
    from emotrace.errors import CacheError
    from emotrace.preprocessing import Preprocess

    settings = Preprocess(size=48, gray=True)
    index = read_class_folders(data)
    started = time.perf_counter()
    path = cache_dir / "datasets" / f"{dataset_key(index, settings)}.npz"
    print(
        f"cache key computed over {len(index.entries):,} files in "
        f"{time.perf_counter() - started:.1f} s"
    )
    try:
        load(path)
        print(f"cache: reusing {path}")
    except CacheError:
        print(f"cache: building {path} ...", flush=True)
        started = time.perf_counter()
        save(prepare(index, settings), path)
        print(
            f"cache: built in {time.perf_counter() - started:.1f} s "
            f"({path.stat().st_size / 1e6:.1f} MB)"
        )
    times = []
    images = 0
    for _ in range(repeats):
        started = time.perf_counter()
        dataset = load(path)
        times.append(time.perf_counter() - started)
        images = sum(len(split.labels) for split in dataset.splits.values())
    return images, statistics.median(times)


def bench_augment(batch_size: int, seconds: float) -> float:
    """Augmented 48x48 gray images per second with the default config (after a warm-up)."""
    import torch

    from emotrace.data.augment import AugmentConfig, BatchAugment

    augment = BatchAugment(AugmentConfig(), seed=0)
    # uint8-like pixels as training feeds them: quantised to 1/255 steps.
    batch = torch.randint(0, 256, (batch_size, 1, 48, 48), dtype=torch.uint8).float() / 255
    for _ in range(3):
        augment(batch)
    done = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        augment(batch)
        done += batch_size
    return done / elapsed


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from emotrace.data.cache import default_cache_dir

    print(
        f"python {sys.version.split()[0]}, torch {torch.__version__}, "
        f"{os.cpu_count()} CPU core(s), load average {os.getloadavg()[0]:.2f} "
        "(other jobs on the machine slow every figure below)"
    )
    rows: list[tuple[str, str, str, str]] = []
    failed = False

    if args.only in (None, "cache"):
        if not args.data.is_dir():
            print(f"cache: skipped, no FER2013 folder at {args.data} (set --data)")
        else:
            repeats = 3 if args.quick else 5
            with tempfile.TemporaryDirectory(prefix="emotrace-bench-") as tmp:
                cache_dir = Path(tmp) if args.temp_cache else args.cache_dir or default_cache_dir()
                images, seconds = bench_cache(args.data, cache_dir, repeats)
            ok = seconds < LOAD_GOAL_S
            failed |= not ok
            rows.append(
                (
                    f"cache load, median of {repeats}",
                    f"{images:,} images in {seconds:.2f} s",
                    f"< {LOAD_GOAL_S:g} s",
                    verdict(ok),
                )
            )

    if args.only in (None, "augment"):
        seconds = 1.0 if args.quick else 3.0
        for threads in args.threads:
            torch.set_num_threads(threads)
            for batch_size in args.batch_sizes:
                rate = bench_augment(batch_size, seconds)
                ok = rate >= AUGMENT_GOAL
                failed |= not ok
                rows.append(
                    (
                        f"augment 48x48 gray, batch {batch_size}, {threads} thread(s)",
                        f"{rate:,.0f} images/s",
                        f">= {AUGMENT_GOAL:,.0f}/s",
                        verdict(ok),
                    )
                )

    header = ("measurement", "result", "goal", "")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    print()
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
