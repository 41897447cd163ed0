"""FER+ (FERPlus): FER2013's faces relabelled by ten annotators each (Barsoum et al., 2016).

Microsoft's ``fer2013new.csv`` has one row per row of the original ``fer2013.csv``, in the same
order: ``Usage, Image name`` and the votes for ``neutral, happiness, surprise, sadness, anger,
disgust, fear, contempt, unknown, NF`` (not a face). It holds no pixels, so the reader pairs it
with ``fer2013.csv`` (beside it, or in the same folder tree) row by row.

Labels follow the paper's majority voting: single votes are dropped as noise, and an image keeps
the emotion that then holds more than half of its votes. Images without such a majority, whose
majority is ``unknown`` or ``NF``, or that FER+ removed (an empty ``Image name``) are listed in
``skipped`` with the reason. FER+ has 8 classes: contempt is one.
"""

from __future__ import annotations

import csv
from pathlib import Path

from emotrace.data.readers._csv import csv_header, data_rows, find_csvs
from emotrace.data.readers.fer2013_csv import find_fer2013_csv, read_fer2013_csv
from emotrace.data.types import DatasetIndex, Entry, Skipped
from emotrace.errors import DatasetError
from emotrace.labels import canonical

#: The vote columns of fer2013new.csv, in its order.
VOTE_COLUMNS = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "nf",
)
_NOT_EMOTIONS = {"unknown": "unknown", "nf": "not a face"}


def is_ferplus_csv(path: Path) -> bool:
    """True when ``path`` is a CSV whose header has FER+'s ``Image name`` and vote columns."""
    header = csv_header(path)
    return "image name" in header and all(c in header for c in VOTE_COLUMNS)


def find_ferplus_csv(folder: Path, depth: int = 1) -> Path | None:
    """FER+'s label file in ``folder`` or up to ``depth`` sub-folder levels below, if any."""
    found = find_csvs(folder, depth, is_ferplus_csv)
    return found[0] if found else None


def majority_label(votes: dict[str, int]) -> tuple[str | None, str]:
    """``(emotion, "")`` by FER+ majority voting, or ``(None, why not)``.

    Votes of 1 are dropped as noise; the largest remaining count must exceed half of what
    remains, and must be an emotion (not ``unknown`` or ``nf``).
    """
    kept = {name: n for name, n in votes.items() if n > 1}
    total = sum(kept.values())
    if total == 0:
        return None, "no majority (no emotion has two votes)"
    top = max(kept, key=lambda name: (kept[name], -VOTE_COLUMNS.index(name)))
    if kept[top] * 2 <= total:
        return None, f"no majority ({kept[top]} of {total} votes for {top})"
    if top in _NOT_EMOTIONS:
        return None, f"majority says {_NOT_EMOTIONS[top]}"
    return canonical(top), ""


def read_ferplus(path: Path | str) -> DatasetIndex:
    """Index FER+: ``fer2013new.csv`` (or a folder holding it) paired with ``fer2013.csv``.

    A malformed row raises :class:`DatasetError` naming the file and row; a ``fer2013.csv`` with
    another number of rows is an error (the two files are paired by position).
    """
    path = Path(path)
    labels_csv = find_ferplus_csv(path) if path.is_dir() else path
    if labels_csv is None or not is_ferplus_csv(labels_csv):
        raise DatasetError(
            f"{path}: no FER+ label file here (expected fer2013new.csv with columns Usage,"
            "Image name,neutral,happiness,...,unknown,NF)"
        )
    pixels_csv = _find_pixels(labels_csv, path)
    original = read_fer2013_csv(pixels_csv)
    rows = _read_votes(labels_csv)
    if len(rows) != len(original.entries):
        raise DatasetError(
            f"{labels_csv}: {len(rows):,} rows but {pixels_csv} has {len(original.entries):,}; "
            "FER+ labels pair with the original fer2013.csv row by row"
        )
    entries: list[Entry] = []
    skipped: list[Skipped] = []
    for (line, name, votes), face in zip(rows, original.entries, strict=True):
        source = f"{labels_csv.name}:row {line}"
        if not name:
            skipped.append(Skipped(source, "removed by FER+ (empty Image name)"))
            continue
        label, why = majority_label(votes)
        if label is None:
            skipped.append(Skipped(source, why))
            continue
        entries.append(
            Entry(
                source=f"{source} ({name})",
                label=label,
                split=face.split,
                load=face.load,
                fingerprint=face.fingerprint,
            )
        )
    if not entries:
        raise DatasetError(f"{labels_csv}: no image has a majority label")
    return DatasetIndex(format="ferplus", root=labels_csv, entries=entries, skipped=skipped)


def _find_pixels(labels_csv: Path, given: Path) -> Path:
    for folder in (labels_csv.parent, labels_csv.parent.parent, given):
        found = find_fer2013_csv(folder) if folder.is_dir() else None
        if found is not None:
            return found
    raise DatasetError(
        f"{labels_csv}: FER+ holds labels only; put the original fer2013.csv (emotion,pixels,"
        "Usage) beside it"
    )


def _read_votes(path: Path) -> list[tuple[int, str, dict[str, int]]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [name.strip().lower() for name in next(reader, [])]
        name_col = header.index("image name")
        vote_cols = [header.index(c) for c in VOTE_COLUMNS]
        rows = []
        for line, row in data_rows(reader, path, header):
            votes = {}
            for column, index in zip(VOTE_COLUMNS, vote_cols, strict=True):
                cell = row[index].strip()
                if not (cell.isascii() and cell.isdigit()):
                    raise DatasetError(
                        f"{path} row {line}: {column} votes {row[index]!r}, expected a count"
                    )
                votes[column] = int(cell)
            rows.append((line, row[name_col].strip(), votes))
    return rows
