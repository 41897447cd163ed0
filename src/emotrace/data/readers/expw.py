"""ExpW (Expression in-the-Wild; Zhang et al., 2016): web photos with one line per face.

``label/label.lst`` has ``image_name face_id top left right bottom confidence label`` per face
(several faces of one photo on several lines); ``label`` is a code 0-6 in FER2013's order
(:data:`~emotrace.labels.FER2013_ORDER`). The photos are in ``image/origin/`` once the release's
archive is extracted. Each face is one entry that loads its whole photo and carries the box in
:attr:`Entry.face_box`, as AffectNet's CSV entries do: preprocessing crops it (or aligns within
it). ExpW has no official split: everything is split ``all``.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from emotrace.data.imageio import read_image
from emotrace.data.types import DatasetIndex, Entry, Skipped
from emotrace.errors import DatasetError
from emotrace.labels import FER2013_ORDER

LABEL_FILE = "label.lst"
#: Where the photos may be, relative to the label file's folder and to the folder above it.
_IMAGE_FOLDERS = ("image/origin", "origin", "image", ".")
_PROBES = 20


def find_expw_labels(path: Path) -> Path | None:
    """The ``label.lst`` at ``path``, in it, or in its ``label/`` folder."""
    path = Path(path)
    if path.is_file():
        return path if path.name == LABEL_FILE else None
    for candidate in (path / LABEL_FILE, path / "label" / LABEL_FILE):
        if candidate.is_file():
            return candidate
    return None


def read_expw(path: Path | str) -> DatasetIndex:
    """Index ExpW from its folder or its ``label.lst``.

    A malformed line raises :class:`DatasetError` naming the file and line; faces whose photo is
    missing are listed in ``skipped``.
    """
    path = Path(path)
    labels = find_expw_labels(path)
    if labels is None:
        raise DatasetError(
            f"{path}: no ExpW {LABEL_FILE} here (expected label/{LABEL_FILE} with lines 'NAME "
            "FACE_ID TOP LEFT RIGHT BOTTOM CONFIDENCE LABEL', photos in image/origin/)"
        )
    rows = _read_lines(labels)
    base = _image_root(labels, [name for _, name, _, _ in rows[:_PROBES]])
    entries: list[Entry] = []
    skipped: list[Skipped] = []
    for line, name, box, code in rows:
        image = base / name
        if not image.is_file():
            skipped.append(Skipped(f"{image}", f"listed in {LABEL_FILE} line {line}, missing"))
            continue
        entries.append(
            Entry(
                source=f"{image}#{box[0]},{box[1]},{box[2]},{box[3]}",
                label=FER2013_ORDER[code],
                split="all",
                load=partial(read_image, image),
                face_box=box,
                fingerprint=image.read_bytes,
            )
        )
    if not entries:
        raise DatasetError(
            f"{labels}: none of the {len(skipped)} listed photos exist (looked in "
            f"{', '.join(_IMAGE_FOLDERS)} beside it and above it)"
        )
    return DatasetIndex(format="expw", root=labels.parent, entries=entries, skipped=skipped)


def _read_lines(path: Path) -> list[tuple[int, str, tuple[int, int, int, int], int]]:
    try:
        lines = path.read_text("utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: not a text file") from None
    rows = []
    expected = "'NAME FACE_ID TOP LEFT RIGHT BOTTOM CONFIDENCE LABEL'"
    for number, text in enumerate(lines, start=1):
        parts = text.split()
        if not parts:
            continue
        if len(parts) != 8:
            raise DatasetError(f"{path} line {number}: {len(parts)} fields, expected {expected}")
        try:
            top, left, right, bottom, code = (int(p) for p in (*parts[2:6], parts[7]))
        except ValueError:
            message = f"{path} line {number}: {text.strip()!r}, expected {expected} (integers)"
            raise DatasetError(message) from None
        if not 0 <= code < len(FER2013_ORDER):
            raise DatasetError(
                f"{path} line {number}: label {code}, expected 0-{len(FER2013_ORDER) - 1} "
                f"({', '.join(FER2013_ORDER)})"
            )
        if right <= left or bottom <= top:
            raise DatasetError(
                f"{path} line {number}: face box left {left} right {right} top {top} bottom "
                f"{bottom}, expected right > left and bottom > top"
            )
        rows.append((number, parts[0], (left, top, right - left, bottom - top), code))
    if not rows:
        raise DatasetError(f"{path}: no faces listed")
    return rows


def _image_root(labels: Path, probes: list[str]) -> Path:
    for above in (labels.parent, labels.parent.parent):
        for folder in _IMAGE_FOLDERS:
            base = above / folder
            if any((base / name).is_file() for name in probes):
                return base
    return labels.parent.parent / _IMAGE_FOLDERS[0]
