"""What the CSV-based readers share: reading a header to recognise a file, and finding files."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path


def csv_header(path: Path) -> list[str]:
    """The lower-cased, stripped column names of a ``.csv`` file; ``[]`` for anything else."""
    path = Path(path)
    if not (path.is_file() and path.suffix.lower() == ".csv"):
        return []
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return [name.strip().lower() for name in next(csv.reader(handle), [])]
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def find_csvs(folder: Path, depth: int, matches: Callable[[Path], bool]) -> list[Path]:
    """The CSV files ``matches`` accepts in ``folder``, else in the first of up to ``depth``
    sub-folder levels below that has some; sorted."""
    folder = Path(folder)
    for level in range(depth + 1):
        pattern = "/".join(["*"] * level + ["*.csv"])
        found = sorted(p for p in folder.glob(pattern) if matches(p))
        if found:
            return found
    return []
