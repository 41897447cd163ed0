"""RAF-DB (Real-world Affective Faces, basic emotions), as released or as commonly repackaged.

The release (``basic/``) lists every image with its label code in
``EmoLabel/list_patition_label.txt`` (``train_00001.jpg 5``); codes run from 1 to 7 in RAF-DB's
own order (:data:`~emotrace.labels.RAFDB_ORDER`: surprise, fear, disgust, happy, sad, angry,
neutral), not FER2013's or AffectNet's, and the file name's prefix is the split (``train``,
``test``). Images are the 100x100 aligned faces in ``Image/aligned/<stem>_aligned.jpg`` when that
folder exists (what published RAF-DB figures use), else the original photos in
``Image/original/``, which preprocessing crops like any photo.

The common repackaging (Kaggle's, for one) puts the aligned faces in ``train/1``..``train/7`` and
``test/1``..``test/7``: numbered class folders without a ``0``, read in the same order by
:func:`read_rafdb_folders` (detected as such: AffectNet's numbered folders start at ``0``).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from emotrace.data.imageio import read_image
from emotrace.data.readers.folder import read_class_folders
from emotrace.data.types import SPLIT_ALIASES, DatasetIndex, Entry, Skipped
from emotrace.errors import DatasetError
from emotrace.labels import RAFDB_FIRST_CODE, RAFDB_ORDER

LABEL_LIST = Path("EmoLabel") / "list_patition_label.txt"  # sic: the release's spelling
_CODES = range(RAFDB_FIRST_CODE, RAFDB_FIRST_CODE + len(RAFDB_ORDER))


def read_rafdb_folders(root: Path | str) -> DatasetIndex:
    """Index RAF-DB repackaged as numbered class folders (``1``-``7``, RAF-DB's code order)."""
    return read_class_folders(Path(root), "rafdb", RAFDB_ORDER, RAFDB_FIRST_CODE)


def find_rafdb_root(folder: Path, depth: int = 1) -> Path | None:
    """The folder holding ``EmoLabel/list_patition_label.txt``: ``folder`` or one level down."""
    folder = Path(folder)
    if (folder / LABEL_LIST).is_file():
        return folder
    if depth > 0 and folder.is_dir():
        for child in sorted(p for p in folder.iterdir() if p.is_dir()):
            if (child / LABEL_LIST).is_file():
                return child
    return None


def read_rafdb(path: Path | str) -> DatasetIndex:
    """Index RAF-DB's release at ``path`` (``basic/`` or the folder above it).

    A line that is not ``NAME CODE`` with a code 1-7 raises :class:`DatasetError` naming the file
    and line; listed images that are missing are listed in ``skipped``.
    """
    path = Path(path)
    root = find_rafdb_root(path)
    if root is None:
        raise DatasetError(
            f"{path}: no RAF-DB label list here (expected {LABEL_LIST.as_posix()} with lines "
            "like 'train_00001.jpg 5', and Image/aligned/ or Image/original/)"
        )
    aligned = (root / "Image" / "aligned").is_dir()
    entries: list[Entry] = []
    skipped: list[Skipped] = []
    list_path = root / LABEL_LIST
    try:
        lines = list_path.read_text("utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise DatasetError(f"{list_path}: not a text file") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) not in _CODES:
            raise DatasetError(
                f"{list_path} line {number}: {line.strip()!r}, expected 'NAME CODE' with a code "
                f"{_CODES[0]}-{_CODES[-1]} ({', '.join(RAFDB_ORDER)})"
            )
        name, code = parts[0], int(parts[1])
        prefix = name.split("_", 1)[0].lower()
        split = SPLIT_ALIASES.get(prefix, "all")
        stem = Path(name).stem
        image = (
            root / "Image" / "aligned" / f"{stem}_aligned.jpg"
            if aligned
            else root / "Image" / "original" / name
        )
        if not image.is_file():
            skipped.append(
                Skipped(str(image), f"listed in {LABEL_LIST.name} line {number}, missing")
            )
            continue
        entries.append(
            Entry(
                source=str(image),
                label=RAFDB_ORDER[code - RAFDB_FIRST_CODE],
                split=split,
                load=partial(read_image, image),
                fingerprint=image.read_bytes,
            )
        )
    if not entries:
        where = "Image/aligned" if aligned else "Image/original"
        if not (root / where).is_dir():
            where = "Image/aligned or Image/original (neither folder exists)"
        raise DatasetError(f"{root}: none of the {len(skipped)} listed images exist under {where}")
    return DatasetIndex(format="rafdb", root=root, entries=entries, skipped=skipped)
