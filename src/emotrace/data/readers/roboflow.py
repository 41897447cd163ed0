"""Roboflow classification exports in the ``_classes.csv`` (multi-class CSV) format.

Each split folder (``train``, ``valid``, ``test``; also ``validation``, ``val``) holds the images
and a ``_classes.csv`` whose first column is ``filename`` and whose other columns are one-hot class
flags (``filename, angry, happy, ...``; Roboflow writes the class names with a leading space). A
root that holds ``_classes.csv`` itself, without split folders, is one split named ``all``.

emotrace trains single-label classifiers, so rows with no flag or several flags are reported in
:attr:`DatasetIndex.skipped` rather than guessed at.
"""

from __future__ import annotations

import csv
from functools import partial
from pathlib import Path

from emotrace.data.imageio import is_image_name, read_image
from emotrace.data.readers._csv import data_rows
from emotrace.data.types import SPLIT_ALIASES, DatasetIndex, Entry, Skipped
from emotrace.errors import DatasetError, UnknownLabelError
from emotrace.labels import canonical

CLASSES_CSV = "_classes.csv"


def roboflow_split_dirs(root: Path) -> list[tuple[str, Path]] | None:
    """``(split, folder)`` pairs of a ``_classes.csv`` export at ``root``, or ``None``."""
    root = Path(root)
    if not root.is_dir():
        return None
    split_dirs = sorted(d for d in root.iterdir() if d.is_dir() and d.name.lower() in SPLIT_ALIASES)
    if any((d / CLASSES_CSV).is_file() for d in split_dirs):
        return [(SPLIT_ALIASES[d.name.lower()], d) for d in split_dirs]
    if (root / CLASSES_CSV).is_file():
        return [("all", root)]
    return None


def read_roboflow_csv(root: Path | str) -> DatasetIndex:
    """Index a Roboflow ``_classes.csv`` export (``root`` may also be the ``_classes.csv`` file).

    Unknown class columns raise :class:`UnknownLabelError` naming the CSV; a malformed row raises
    :class:`DatasetError` naming it. Multi-label rows, rows without a label, rows whose image is
    missing, and images no row mentions are listed in ``skipped``.
    """
    root = Path(root)
    if root.is_file() and root.name == CLASSES_CSV:
        root = root.parent
    split_dirs = roboflow_split_dirs(root)
    if split_dirs is None:
        raise DatasetError(
            f"{root}: no {CLASSES_CSV} here or in train/valid/test folders "
            "(expected a Roboflow multi-class CSV export)"
        )
    entries: list[Entry] = []
    skipped: list[Skipped] = []
    for split, folder in split_dirs:
        csv_path = folder / CLASSES_CSV
        if not csv_path.is_file():
            raise DatasetError(
                f"{folder}: no {CLASSES_CSV} (every split folder of the export needs one)"
            )
        listed = _read_split(csv_path, split, entries, skipped)
        for path in sorted(p for p in folder.iterdir() if p.is_file() and p.name != CLASSES_CSV):
            if not is_image_name(path):
                skipped.append(Skipped(str(path), "not an image file"))
            elif path.name not in listed:
                skipped.append(Skipped(str(path), f"not listed in {CLASSES_CSV}"))
    if not entries:
        first = f"; first: {skipped[0].source}: {skipped[0].reason}" if skipped else ""
        raise DatasetError(f"{root}: no usable single-label images ({len(skipped)} skipped{first})")
    return DatasetIndex(format="roboflow_csv", root=root, entries=entries, skipped=skipped)


def _read_split(
    csv_path: Path, split: str, entries: list[Entry], skipped: list[Skipped]
) -> set[str]:
    """Append one split's entries and skips; return the file names the CSV lists."""
    listed: set[str] = set()
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        lowered = [name.lower() for name in header]
        if "filename" not in lowered:
            raise DatasetError(
                f"{csv_path}: no 'filename' column (expected: filename, then one 0/1 column "
                "per class)"
            )
        name_col = lowered.index("filename")
        # Blank header cells come from trailing commas; they carry no class.
        class_cols: dict[int, str] = {}
        for col, name in enumerate(header):
            if col == name_col or not name:
                continue
            try:
                class_cols[col] = canonical(name)
            except UnknownLabelError as exc:
                raise UnknownLabelError(f"{csv_path}: {exc}") from None
        if not class_cols:
            raise DatasetError(f"{csv_path}: no class columns after 'filename'")
        for line, row in data_rows(reader, csv_path, header):
            name = row[name_col].strip()
            listed.add(name)
            image = csv_path.parent / name
            labels = sorted({class_cols[c] for c in class_cols if _flag(row[c], csv_path, line)})
            if not labels:
                skipped.append(Skipped(str(image), f"no label in {CLASSES_CSV} row {line}"))
            elif len(labels) > 1:
                skipped.append(
                    Skipped(
                        str(image),
                        f"multi-label row {line} in {CLASSES_CSV} ({', '.join(labels)}); "
                        "emotrace needs one label per image",
                    )
                )
            elif not image.is_file():
                skipped.append(Skipped(str(image), f"listed in {CLASSES_CSV} row {line}, missing"))
            else:
                entries.append(
                    Entry(
                        source=str(image),
                        label=labels[0],
                        split=split,
                        load=partial(read_image, image),
                        fingerprint=image.read_bytes,
                    )
                )
    return listed


def _flag(cell: str, csv_path: Path, line: int) -> bool:
    value = cell.strip()
    if value in ("1", "1.0"):
        return True
    if value in ("0", "0.0", ""):
        return False
    raise DatasetError(f"{csv_path} row {line}: class flag {cell!r}, expected 0 or 1")
