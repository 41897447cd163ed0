"""Exploratory data analysis of a dataset: the engine behind ``emotrace data inspect``.

One pass decodes every image exactly once (in threads: OpenCV and hashlib release the GIL) and
keeps only a few numbers per image, plus thumbnails for the sample grid. From those it writes
``summary.json`` (for scripts) and a self-contained ``report.html`` (for people).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from emotrace import __version__
from emotrace.data._report_html import render_report
from emotrace.data.types import DatasetIndex, Entry
from emotrace.errors import DatasetError, UnreadableImageError
from emotrace.preprocessing import box_outside, crop

#: Longest list (duplicate groups, leaks, skipped files) written to the summary and the report.
LIST_LIMIT = 200
#: Histogram bins for per-image brightness (mean, 0-255) and contrast (std, 0-128).
HIST_BINS = 32
BRIGHTNESS_RANGE = (0.0, 256.0)
CONTRAST_RANGE = (0.0, 128.0)
#: Thumbnails larger than this (longest side, pixels) are shrunk before embedding.
THUMB_MAX = 128
#: Entries decoded per thread task: one future per image costs more than decoding a 48x48 JPEG.
_BATCH = 256


@dataclass(frozen=True, slots=True)
class _Stat:
    """What the report keeps of one decoded image."""

    height: int
    width: int
    colour: bool
    mean: float
    std: float
    digest: bytes
    thumb: bytes | None


def inspect_dataset(
    index: DatasetIndex,
    out_dir: Path | str,
    samples_per_class: int = 8,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Analyse ``index`` and write ``out_dir/report.html`` and ``out_dir/summary.json``.

    Every entry is decoded once; images that fail to decode are listed under ``skipped`` together
    with what the reader already skipped, and are not counted anywhere else. ``progress`` is called
    with the number of entries just processed. ``out_dir`` is created; it may not lie inside the
    dataset folder (the report never writes there). Returns the summary that was written.
    """
    if samples_per_class < 0:
        raise ValueError(f"samples_per_class must be >= 0, got {samples_per_class}")
    out = Path(out_dir)
    _refuse_inside_dataset(out, Path(index.root))
    started = time.perf_counter()
    entries = index.entries
    wanted = _sample_candidates(entries, samples_per_class)
    stats = _measure_all(entries, wanted, progress)

    summary, thumbs = _summarise(index, stats, wanted, samples_per_class)
    summary["elapsed_s"] = round(time.perf_counter() - started, 2)

    out.mkdir(parents=True, exist_ok=True)
    _write_atomic(out / "summary.json", json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    _write_atomic(out / "report.html", render_report(summary, thumbs))
    return summary


def _refuse_inside_dataset(out: Path, root: Path) -> None:
    root_r = root.resolve()
    if not root_r.is_dir():
        return  # a single-file dataset (CSV): nothing can be written "inside" it
    out_r = out.resolve()
    if out_r == root_r or root_r in out_r.parents:
        raise DatasetError(
            f"{out}: the report folder is inside the dataset {root}; choose another -o folder"
        )


def _write_atomic(path: Path, text: str) -> None:
    # A crash or Ctrl-C while writing leaves the previous report intact rather than half a file.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _sample_candidates(entries: Sequence[Entry], per_class: int) -> dict[int, int]:
    """Entry index -> preference rank of the images the sample grid may show.

    Picks are evenly spaced through each class (so a grid spans splits and file names rather than
    showing the first eight files), with twice as many candidates as needed so that a few
    unreadable files still leave a full grid.
    """
    if per_class == 0:
        return {}
    by_class: dict[str, list[int]] = defaultdict(list)
    for i, entry in enumerate(entries):
        by_class[entry.label].append(i)
    wanted: dict[int, int] = {}
    for idxs in by_class.values():
        n = min(len(idxs), 2 * per_class)
        picks = np.linspace(0, len(idxs) - 1, n).round().astype(int)
        for rank, p in enumerate(dict.fromkeys(picks.tolist())):
            wanted[idxs[p]] = rank
    return wanted


def _measure(entry: Entry, want_thumb: bool) -> _Stat | str:
    """Decode ``entry`` and reduce it to a :class:`_Stat`, or the reason it is unreadable."""
    try:
        image = entry.load()
    except UnreadableImageError as exc:
        return str(exc)
    if entry.face_box is not None:
        # The face is what is measured (and hashed: two faces of one photo are no duplicates).
        if (outside := box_outside(entry.face_box, image)) is not None:
            return outside
        image = crop(image, entry.face_box)
    colour = image.ndim == 3
    # Brightness/contrast are measured on luma so gray and colour images are comparable.
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if colour else image
    mean, std = cv2.meanStdDev(gray)
    # The shape is hashed too: the same bytes as 48x48 and as 24x96 are different images.
    digest = hashlib.blake2b(repr(image.shape).encode(), digest_size=16)
    digest.update(np.ascontiguousarray(image).data)
    thumb = _thumbnail_png(image) if want_thumb else None
    return _Stat(
        height=int(image.shape[0]),
        width=int(image.shape[1]),
        colour=colour,
        mean=float(mean[0, 0]),
        std=float(std[0, 0]),
        digest=digest.digest(),
        thumb=thumb,
    )


def _thumbnail_png(image: np.ndarray) -> bytes | None:
    h, w = image.shape[:2]
    scale = THUMB_MAX / max(h, w)
    if scale < 1:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".png", image)
    return buf.tobytes() if ok else None


def _measure_all(
    entries: Sequence[Entry],
    wanted: dict[int, int],
    progress: Callable[[int], None] | None,
) -> list[_Stat | str]:
    def work(span: range) -> list[_Stat | str]:
        return [_measure(entries[i], i in wanted) for i in span]

    spans = [range(i, min(i + _BATCH, len(entries))) for i in range(0, len(entries), _BATCH)]
    results: list[_Stat | str] = []
    # More threads than cores: file reads wait on the disk, decoding runs without the GIL.
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        for span, batch in zip(spans, pool.map(work, spans), strict=True):
            results.extend(batch)
            if progress is not None:
                progress(len(span))
    return results


def _summarise(
    index: DatasetIndex,
    stats: list[_Stat | str],
    wanted: dict[int, int],
    samples_per_class: int,
) -> tuple[dict[str, Any], dict[str, list[dict[str, str]]]]:
    """Reduce per-image stats to the summary dict and the sample thumbnails per class."""
    entries = index.entries
    splits = index.splits()
    classes = index.classes()
    counts: Counter[tuple[str, str]] = Counter()
    sizes: Counter[tuple[int, int]] = Counter()
    modes: Counter[str] = Counter()
    means: dict[str, list[float]] = defaultdict(list)
    stds: dict[str, list[float]] = defaultdict(list)
    by_digest: dict[bytes, list[int]] = defaultdict(list)
    thumbs_ranked: dict[str, list[tuple[int, int, bytes]]] = defaultdict(list)
    skipped = [{"source": s.source, "reason": s.reason} for s in index.skipped]

    for i, (entry, stat) in enumerate(zip(entries, stats, strict=True)):
        if isinstance(stat, str):
            skipped.append({"source": entry.source, "reason": stat})
            continue
        counts[entry.split, entry.label] += 1
        sizes[stat.width, stat.height] += 1
        modes["colour" if stat.colour else "gray"] += 1
        means[entry.label].append(stat.mean)
        stds[entry.label].append(stat.std)
        by_digest[stat.digest].append(i)
        if stat.thumb is not None:
            thumbs_ranked[entry.label].append((wanted[i], i, stat.thumb))

    split_counts = {s: {c: counts[s, c] for c in classes} for s in splits}
    class_totals = {c: sum(split_counts[s][c] for s in splits) for c in classes}
    total = sum(class_totals.values())
    dup = _duplicates(entries, by_digest, splits)

    summary: dict[str, Any] = {
        "emotrace_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": {"root": str(index.root), "format": index.format},
        "total_images": total,
        "indexed_entries": len(entries),
        "classes": classes,
        "split_order": splits,
        "splits": split_counts,
        "split_totals": {s: sum(split_counts[s].values()) for s in splits},
        "class_totals": class_totals,
        "imbalance": {
            **{s: _imbalance(split_counts[s]) for s in splits},
            "overall": _imbalance(class_totals),
        },
        "image_sizes": _sizes(sizes),
        "colour_modes": {"gray": modes["gray"], "colour": modes["colour"]},
        "brightness": {c: _distribution(means[c], BRIGHTNESS_RANGE) for c in classes},
        "contrast": {c: _distribution(stds[c], CONTRAST_RANGE) for c in classes},
        "histogram": {
            "bins": HIST_BINS,
            "brightness_range": list(BRIGHTNESS_RANGE),
            "contrast_range": list(CONTRAST_RANGE),
        },
        **dup,
        "skipped_total": len(skipped),
        "skipped": skipped[:LIST_LIMIT],
        "list_limit": LIST_LIMIT,
        "truncated": {
            "duplicate_groups": dup["duplicate_group_total"] > LIST_LIMIT,
            "cross_split_groups": dup["cross_split_group_total"] > LIST_LIMIT,
            "skipped": len(skipped) > LIST_LIMIT,
        },
        "definitions": {
            "duplicates": "images whose decoded pixels (and shape) equal an earlier image's; "
            "a group of k identical images counts k-1",
            "cross_split_duplicates": "images whose pixels also occur in an earlier split "
            "(split_order); e.g. a valid image identical to a train image",
            "cross_split_by_pair": "'a/b': images of split b whose pixels occur in split a",
            "imbalance": "largest class / smallest class; null when a class has no images",
            "brightness": "per-image mean luma (0-255), summarised per class",
            "contrast": "per-image standard deviation of luma, summarised per class",
        },
    }
    thumbs = {
        c: [
            {"source": entries[i].source, "split": entries[i].split, "png": _b64(png)}
            for _, i, png in sorted(thumbs_ranked[c])[:samples_per_class]
        ]
        for c in classes
    }
    return summary, thumbs


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _imbalance(counts: dict[str, int]) -> float | None:
    values = list(counts.values())
    if not values or min(values) == 0:
        return None
    return round(max(values) / min(values), 3)


def _sizes(sizes: Counter[tuple[int, int]]) -> dict[str, Any]:
    widths = [w for w, _ in sizes]
    heights = [h for _, h in sizes]
    return {
        "distinct": len(sizes),
        "most_common": [
            {"width": w, "height": h, "count": n} for (w, h), n in sizes.most_common(20)
        ],
        "width_range": [min(widths), max(widths)] if widths else None,
        "height_range": [min(heights), max(heights)] if heights else None,
    }


def _distribution(values: list[float], value_range: tuple[float, float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None, "histogram": []}
    arr = np.asarray(values)
    # Values on the upper edge (pure white, std 127.5+) are clipped into the last bin.
    hist, _ = np.histogram(np.clip(arr, *value_range), bins=HIST_BINS, range=value_range)
    return {
        "n": int(arr.size),
        "mean": round(float(arr.mean()), 2),
        "std": round(float(arr.std()), 2),
        "min": round(float(arr.min()), 2),
        "max": round(float(arr.max()), 2),
        "histogram": hist.tolist(),
    }


def _duplicates(
    entries: Sequence[Entry], by_digest: dict[bytes, list[int]], splits: list[str]
) -> dict[str, Any]:
    """Exact-duplicate groups, and the ones that leak across splits."""
    rank = {s: r for r, s in enumerate(splits)}
    groups = sorted((g for g in by_digest.values() if len(g) > 1), key=lambda g: (-len(g), g[0]))
    cross: list[list[int]] = []
    leaked = 0
    pairs: Counter[str] = Counter()
    conflicts = 0
    for g in groups:
        if len({entries[i].label for i in g}) > 1:
            conflicts += 1
        present = sorted({entries[i].split for i in g}, key=rank.__getitem__)
        if len(present) < 2:
            continue
        cross.append(g)
        leaked += sum(1 for i in g if entries[i].split != present[0])
        for a_pos, a in enumerate(present):
            for b in present[a_pos + 1 :]:
                pairs[f"{a}/{b}"] += sum(1 for i in g if entries[i].split == b)

    def listing(gs: list[list[int]]) -> list[list[dict[str, str]]]:
        return [
            [
                {"source": entries[i].source, "split": entries[i].split, "label": entries[i].label}
                for i in g
            ]
            for g in gs[:LIST_LIMIT]
        ]

    return {
        "duplicates": sum(len(g) - 1 for g in groups),
        "duplicate_group_total": len(groups),
        "duplicate_label_conflicts": conflicts,
        "duplicate_groups": listing(groups),
        "cross_split_duplicates": leaked,
        "cross_split_group_total": len(cross),
        "cross_split_by_pair": dict(pairs),
        "cross_split_groups": listing(cross),
    }
