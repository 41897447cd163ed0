"""What the CSV-based readers share: reading a header to recognise a file, finding files, and
walking the data rows."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from emotrace.errors import DatasetError


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


def data_rows(reader: Any, path: Path, header: list[str]) -> Iterator[tuple[int, list[str]]]:
    """The rows a ``csv.reader`` gives after ``header``, each with its line number in the file.

    Blank rows (trailing newlines, a spreadsheet's empty lines) are skipped; a row with fewer
    cells than the header is a :class:`DatasetError` naming the file, the line and the columns.
    """
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        line: int = reader.line_num
        if len(row) < len(header):
            raise DatasetError(
                f"{path} row {line}: {len(row)} cells, expected {len(header)} ({','.join(header)})"
            )
        yield line, row
