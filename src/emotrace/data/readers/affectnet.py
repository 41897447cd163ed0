"""AffectNet, as its public folder-per-class release or as the official annotation CSVs.

The folder release names its classes (``anger``, ``contempt``...) or numbers them ``0``-``7``;
numbers follow AffectNet's own order (:data:`~emotrace.labels.AFFECTNET_ORDER`), not FER2013's.

The official ``training.csv`` / ``validation.csv`` list ``subDirectory_filePath`` with a face box
(``face_x, face_y, face_width, face_height``) and an ``expression`` code. Entries carry the box in
:attr:`Entry.face_box` and load the whole image: preprocessing crops it, so the crop margin stays a
preprocessing setting. Codes 8-10 (none, uncertain, no face) are dropped and reported.
"""

from __future__ import annotations

import csv
from functools import partial
from pathlib import Path
from typing import NamedTuple

from emotrace.data.imageio import read_image
from emotrace.data.readers._csv import csv_header, data_rows, find_csvs
from emotrace.data.readers.folder import read_class_folders
from emotrace.data.types import SPLIT_ALIASES, Box, DatasetIndex, Entry, Skipped
from emotrace.errors import DatasetError
from emotrace.labels import AFFECTNET_DROPPED_CODES, AFFECTNET_ORDER

PATH_COLUMN = "subdirectory_filepath"
BOX_COLUMNS = ("face_x", "face_y", "face_width", "face_height")
_DROPPED_NAMES = {8: "none", 9: "uncertain", 10: "no face"}
_CSV_SPLITS = {"training": "train", "validation": "valid"}
#: The official release keeps images in Manually_Annotated_Images beside the lists' folder.
_IMAGES_FOLDER = "Manually_Annotated_Images"
_PROBE_ROWS = 20
_MISSING = "image missing"
_SEARCHED = f"the CSV's folder, its parent or a {_IMAGES_FOLDER} folder in either"


def read_affectnet_folders(root: Path | str) -> DatasetIndex:
    """Index AffectNet's folder-per-class release; numeric folders are read in AffectNet order."""
    return read_class_folders(Path(root), "affectnet", AFFECTNET_ORDER)


def is_affectnet_csv(path: Path) -> bool:
    """True when ``path`` is a CSV whose header has ``subDirectory_filePath`` and ``expression``."""
    header = csv_header(path)
    return PATH_COLUMN in header and "expression" in header


def find_affectnet_csvs(folder: Path, depth: int = 1) -> list[Path]:
    """AffectNet annotation CSVs in ``folder``, else in the first sub-folder level that has some."""
    return find_csvs(folder, depth, is_affectnet_csv)


def read_affectnet_csv(path: Path | str, images_root: Path | str | None = None) -> DatasetIndex:
    """Index AffectNet annotation CSVs: one file, or a folder holding training.csv/validation.csv.

    Images are looked up at ``<images_root>/<subDirectory_filePath>``; without ``images_root`` the
    CSV's folder and the official layout's ``Manually_Annotated_Images`` are tried. The split comes
    from the file name (training -> train, validation -> valid, else ``all``). Missing images and
    dropped codes are listed in ``skipped``; a malformed row raises :class:`DatasetError`.
    """
    path = Path(path)
    if path.is_dir():
        csv_paths = find_affectnet_csvs(path)
        if not csv_paths:
            raise DatasetError(
                f"{path}: no AffectNet CSV here (expected training.csv / validation.csv with "
                "columns subDirectory_filePath,face_x,face_y,face_width,face_height,...,expression)"
            )
        root = path
    elif path.is_file():
        csv_paths, root = [path], path.parent
    else:
        raise DatasetError(f"{path}: no such file or folder")
    entries: list[Entry] = []
    skipped: list[Skipped] = []
    for csv_path in csv_paths:
        rows = _read_rows(csv_path)
        base = Path(images_root) if images_root is not None else _guess_image_root(csv_path, rows)
        split = _CSV_SPLITS.get(csv_path.stem.lower()) or SPLIT_ALIASES.get(csv_path.stem.lower())
        entries.extend(_index_rows(csv_path, rows, base, split or "all", skipped))
    if not entries:
        if any(s.reason.endswith(_MISSING) for s in skipped):
            where = str(images_root) if images_root is not None else _SEARCHED
            raise DatasetError(
                f"{path}: none of the listed images exist under {where} "
                "(expected <images root>/<subDirectory_filePath>)"
            )
        raise DatasetError(f"{path}: no usable rows ({len(skipped)} with dropped codes 8-10)")
    return DatasetIndex(format="affectnet_csv", root=root, entries=entries, skipped=skipped)


class _Row(NamedTuple):
    """One validated annotation row."""

    line: int
    rel: str
    box: Box | None
    code: int


def _read_rows(csv_path: Path) -> list[_Row]:
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [name.strip().lower() for name in next(reader, [])]
        missing = [c for c in (PATH_COLUMN, *BOX_COLUMNS, "expression") if c not in header]
        if missing:
            raise DatasetError(f"{csv_path}: missing columns {', '.join(missing)}")
        path_col, code_col = header.index(PATH_COLUMN), header.index("expression")
        box_cols = [header.index(c) for c in BOX_COLUMNS]
        rows: list[_Row] = []
        for line, row in data_rows(reader, csv_path, header):
            # Windows-made copies of the lists use backslashes in subDirectory_filePath.
            rel = row[path_col].strip().replace("\\", "/")
            code = _int(row[code_col], csv_path, line, "expression")
            if not 0 <= code <= max(AFFECTNET_DROPPED_CODES):
                raise DatasetError(
                    f"{csv_path} row {line}: expression {code}, expected 0-7 "
                    f"({', '.join(AFFECTNET_ORDER)}) or 8-10 (dropped)"
                )
            rows.append(_Row(line, rel, _box([row[c] for c in box_cols], csv_path, line), code))
    return rows


def _box(cells: list[str], csv_path: Path, line: int) -> Box | None:
    # An all-blank box means "no annotation": the image is used whole (or a detector finds it).
    if not any(cell.strip() for cell in cells):
        return None
    x, y, w, h = (
        _int(cell, csv_path, line, name) for cell, name in zip(cells, BOX_COLUMNS, strict=True)
    )
    if w <= 0 or h <= 0:
        raise DatasetError(f"{csv_path} row {line}: face box {w}x{h}, expected a positive size")
    return (x, y, w, h)


def _int(cell: str, csv_path: Path, line: int, column: str) -> int:
    try:
        value = float(cell.strip())
    except ValueError:
        value = float("nan")
    if not value.is_integer():  # False for fractions, NaN and infinities alike
        raise DatasetError(f"{csv_path} row {line}: {column} {cell!r}, expected an integer")
    return int(value)


def _guess_image_root(csv_path: Path, rows: list[_Row]) -> Path:
    probes = [r.rel for r in rows if r.code not in AFFECTNET_DROPPED_CODES][:_PROBE_ROWS]
    here = csv_path.parent
    for base in (here, here / _IMAGES_FOLDER, here.parent / _IMAGES_FOLDER, here.parent):
        if any((base / rel).is_file() for rel in probes):
            return base
    return here


def _index_rows(
    csv_path: Path, rows: list[_Row], base: Path, split: str, skipped: list[Skipped]
) -> list[Entry]:
    entries: list[Entry] = []
    for row in rows:
        image = base / row.rel
        if row.code in AFFECTNET_DROPPED_CODES:
            reason = (
                f"expression {row.code} ({_DROPPED_NAMES[row.code]}) is not an emotion; dropped"
            )
            skipped.append(Skipped(str(image), reason))
        elif not image.is_file():
            where = f"{csv_path.name} row {row.line}"
            skipped.append(Skipped(str(image), f"listed in {where}, {_MISSING}"))
        else:
            entries.append(
                Entry(
                    source=str(image),
                    label=AFFECTNET_ORDER[row.code],
                    split=split,
                    load=partial(read_image, image),
                    face_box=row.box,
                    fingerprint=image.read_bytes,
                )
            )
    return entries
