"""The original FER2013 CSV: ``emotion,pixels,Usage`` with 48x48 gray faces as pixel strings.

``emotion`` is a code 0-6 in :data:`~emotrace.labels.FER2013_ORDER`; ``pixels`` holds 2304
space-separated integers 0-255; ``Usage`` (Training/PublicTest/PrivateTest) becomes the split
train/valid/test, and a file without it is one split named ``all``. Column names are matched
without surrounding spaces and case, which also covers Kaggle's ``icml_face_data.csv``.

The whole file is parsed once when indexing (a few seconds for the 35,887 rows) into one uint8
array, so a bad row fails at once with its row number instead of halfway through training.
Row numbers are the file's line numbers, the header being row 1, as a spreadsheet shows them.
"""

from __future__ import annotations

import csv
import warnings
from functools import partial
from pathlib import Path

import numpy as np

from emotrace.data.readers._csv import csv_header, data_rows, find_csvs
from emotrace.data.types import SPLIT_ALIASES, DatasetIndex, Entry
from emotrace.errors import DatasetError
from emotrace.labels import FER2013_ORDER

FER_SIZE = 48
FER_PIXELS = FER_SIZE * FER_SIZE
_USAGE_SPLITS = {"training": "train", "publictest": "valid", "privatetest": "test"}


def is_fer2013_csv(path: Path) -> bool:
    """True when ``path`` is a CSV file whose header has ``emotion`` and ``pixels`` columns."""
    header = csv_header(path)
    return "emotion" in header and "pixels" in header


def find_fer2013_csv(folder: Path, depth: int = 1) -> Path | None:
    """The FER2013 CSV in ``folder`` (or up to ``depth`` sub-folder levels below), if any.

    ``fer2013.csv`` wins when several match; otherwise several matches are an error naming them.
    """
    found = find_csvs(folder, depth, is_fer2013_csv)
    preferred = [p for p in found if p.name.lower() == "fer2013.csv"]
    if len(preferred) == 1 or len(found) == 1:
        return (preferred or found)[0]
    if found:
        raise DatasetError(
            f"{folder}: several FER2013 CSVs ({', '.join(p.name for p in found)}); "
            "point at one of them"
        )
    return None


def read_fer2013_csv(path: Path | str) -> DatasetIndex:
    """Index a FER2013 CSV file (or the folder holding it), parsing every row once.

    A malformed row raises :class:`DatasetError` naming the file, the row and what is expected.
    """
    path = Path(path)
    if path.is_dir():
        found = find_fer2013_csv(path)
        if found is None:
            raise DatasetError(
                f"{path}: no FER2013 CSV here (expected columns emotion,pixels,Usage)"
            )
        path = found
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [name.strip().lower() for name in next(reader, [])]
        if "emotion" not in header or "pixels" not in header:
            raise DatasetError(
                f"{path}: columns {', '.join(header) or '(none)'}; expected emotion,pixels[,Usage]"
            )
        emotion_col, pixels_col = header.index("emotion"), header.index("pixels")
        usage_col = header.index("usage") if "usage" in header else None
        labels: list[str] = []
        splits: list[str] = []
        rows: list[int] = []
        pixels: list[np.ndarray] = []
        with warnings.catch_warnings():
            # Older numpy only warns when fromstring stops at a bad token; make it fail fast.
            warnings.simplefilter("error", DeprecationWarning)
            for line, row in data_rows(reader, path, header):
                labels.append(_emotion(row[emotion_col], path, line))
                splits.append("all" if usage_col is None else _usage(row[usage_col], path, line))
                pixels.append(_pixels(row[pixels_col], path, line))
                rows.append(line)
    if not pixels:
        raise DatasetError(f"{path}: no data rows")
    images = np.stack(pixels).reshape(-1, FER_SIZE, FER_SIZE)
    entries = [
        Entry(
            source=f"{path.name}:row {line}",
            label=label,
            split=split,
            load=partial(_row_image, images, i),
            fingerprint=partial(_row_bytes, images, i),
        )
        for i, (line, label, split) in enumerate(zip(rows, labels, splits, strict=True))
    ]
    return DatasetIndex(format="fer2013_csv", root=path, entries=entries)


def _row_image(images: np.ndarray, i: int) -> np.ndarray:
    # A copy, so a caller that edits the image in place cannot corrupt the shared array.
    row: np.ndarray = images[i]
    return row.copy()


def _row_bytes(images: np.ndarray, i: int) -> bytes:
    row: np.ndarray = images[i]
    return row.tobytes()


def _emotion(cell: str, path: Path, line: int) -> str:
    value = cell.strip()
    if value.isascii() and value.isdigit() and int(value) < len(FER2013_ORDER):
        return FER2013_ORDER[int(value)]
    raise DatasetError(
        f"{path} row {line}: emotion {cell!r}, expected a code 0-{len(FER2013_ORDER) - 1} "
        f"({', '.join(FER2013_ORDER)})"
    )


def _usage(cell: str, path: Path, line: int) -> str:
    key = cell.strip().lower()
    split = _USAGE_SPLITS.get(key) or SPLIT_ALIASES.get(key)
    if split is None:
        raise DatasetError(
            f"{path} row {line}: Usage {cell!r}, expected Training, PublicTest or PrivateTest"
        )
    return split


def _pixels(cell: str, path: Path, line: int) -> np.ndarray:
    """Parse one pixel string; the fast C parser first, a token-by-token check to explain errors."""
    try:
        values = np.fromstring(cell, dtype=np.int64, sep=" ")
    except (ValueError, DeprecationWarning):
        values = None
    if (
        values is not None
        and values.size == FER_PIXELS
        and values.min() >= 0
        and values.max() <= 255
    ):
        return values.astype(np.uint8)
    tokens = cell.split()
    if len(tokens) != FER_PIXELS:
        raise DatasetError(
            f"{path} row {line}: {len(tokens)} pixels, expected {FER_PIXELS} "
            f"({FER_SIZE}x{FER_SIZE})"
        )
    for i, token in enumerate(tokens, start=1):
        if not (token.isascii() and token.isdigit() and int(token) <= 255):
            raise DatasetError(
                f"{path} row {line}: pixel {i} is {token!r}, expected an integer 0-255"
            )
    return np.array([int(t) for t in tokens], dtype=np.uint8)
