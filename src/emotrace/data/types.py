"""The shapes every dataset reader produces: an index of entries, decoded samples, skip reports."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emotrace.errors import DatasetError, UnreadableImageError
from emotrace.labels import ordered

#: Split names readers produce. A folder without split sub-folders is one split named ``all``.
SPLIT_ALIASES: dict[str, str] = {
    "train": "train",
    "training": "train",
    "valid": "valid",
    "validation": "valid",
    "val": "valid",
    "publictest": "valid",
    "test": "test",
    "testing": "test",
    "privatetest": "test",
}

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Sample:
    """One decoded image: uint8 ``HxW`` (gray) or ``HxWx3`` (BGR, OpenCV's order)."""

    image: np.ndarray
    label: str
    split: str
    source: str


@dataclass(frozen=True)
class Skipped:
    """Something a reader did not use, and why."""

    source: str
    reason: str


@dataclass(frozen=True)
class Entry:
    """One labelled image before decoding. ``load`` raises :class:`UnreadableImageError`."""

    source: str
    label: str
    split: str
    load: Callable[[], np.ndarray]
    #: Face box ``(x, y, w, h)`` given by the dataset's annotation, if any (AffectNet CSV).
    face_box: Box | None = None
    #: Bytes that identify the entry's content for cache keys (file bytes are read lazily).
    fingerprint: Callable[[], bytes] | None = None


@dataclass
class DatasetIndex:
    """All entries of a dataset, plus what the reader skipped while indexing and decoding."""

    format: str
    root: Path
    entries: list[Entry]
    skipped: list[Skipped] = field(default_factory=list)

    def splits(self) -> list[str]:
        """Split names present, in train/valid/test/all order."""
        order = ["train", "valid", "test", "all"]
        present = {e.split for e in self.entries}
        return [s for s in order if s in present] + sorted(present.difference(order))

    def classes(self) -> list[str]:
        """Canonical class names present, in the taxonomy's order."""
        return ordered({e.label for e in self.entries})

    def counts(self) -> dict[str, dict[str, int]]:
        """``{split: {class: n}}`` over the indexed entries (before decoding)."""
        out: dict[str, dict[str, int]] = {}
        for split in self.splits():
            c = Counter(e.label for e in self.entries if e.split == split)
            out[split] = {k: c[k] for k in ordered(c)}
        return out

    def select(self, split: str | None) -> list[Entry]:
        """Entries of one split (all entries for ``None``); a missing split is a one-line error."""
        if split is None:
            return list(self.entries)
        name = SPLIT_ALIASES.get(split.lower(), split.lower())
        chosen = [e for e in self.entries if e.split == name]
        if not chosen:
            raise DatasetError(
                f"{self.root}: no split {split!r}; this dataset has: {', '.join(self.splits())}"
            )
        return chosen

    def iter_samples(self, split: str | None = None) -> Iterator[Sample]:
        """Decode entries one by one; unreadable ones are appended to :attr:`skipped`."""
        for entry in self.select(split):
            try:
                image = entry.load()
            except UnreadableImageError as exc:
                self.skipped.append(Skipped(entry.source, str(exc)))
                continue
            yield Sample(image=image, label=entry.label, split=entry.split, source=entry.source)


def refuse_inside_dataset(out: Path | str, dataset: Path | str, what: str) -> None:
    """Raise :class:`DatasetError` when ``out`` is a dataset folder or lies inside one.

    Outputs written there become part of the dataset: a folder reads as an unknown class, a file
    as a skipped one. A single-file dataset (CSV) or a prepared ``.npz`` has no inside.
    """
    root = Path(dataset).expanduser().resolve()
    if not root.is_dir():
        return
    target = Path(out).expanduser().resolve()
    if target == root or root in target.parents:
        raise DatasetError(
            f"{out}: the {what} would go inside the dataset folder {dataset}; write it "
            "elsewhere (emotrace never writes into a dataset)"
        )
