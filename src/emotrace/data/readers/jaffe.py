"""JAFFE (Japanese Female Facial Expression; Lyons et al., 1998): 213 posed photos, one folder.

The expression is in each file's name, ``KA.AN1.39.tiff``: the poser's initials, a two-letter
expression code with the take's number (``AN`` anger, ``DI`` disgust, ``FE`` fear, ``HA``
happiness, ``NE`` neutral, ``SA`` sadness, ``SU`` surprise) and the image number. There is no
split: everything is split ``all``. Files named otherwise are listed in ``skipped``.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

from emotrace.data.imageio import is_image_name, read_image
from emotrace.data.types import DatasetIndex, Entry, Skipped
from emotrace.errors import DatasetError

CODES = {
    "AN": "angry",
    "DI": "disgust",
    "FE": "fear",
    "HA": "happy",
    "NE": "neutral",
    "SA": "sad",
    "SU": "surprise",
}
_NAME = re.compile(r"^[A-Za-z]{2}\.(?P<code>[A-Za-z]{2})\d*\.\d+\.[A-Za-z]+$")


def jaffe_code(name: str) -> str | None:
    """The expression code of a JAFFE file name (``KA.AN1.39.tiff`` -> ``AN``), if it is one."""
    match = _NAME.match(name)
    code = match.group("code").upper() if match else None
    return code if code in CODES else None


def _looks_like_jaffe(folder: Path) -> bool:
    images = [p for p in folder.iterdir() if p.is_file() and is_image_name(p)]
    named = sum(jaffe_code(p.name) is not None for p in images)
    return bool(images) and named * 2 > len(images)


def find_jaffe_folder(path: Path) -> Path | None:
    """``path``, or its one sub-folder (the archive's ``jaffedbase/``), when most image files in
    it are named the JAFFE way."""
    path = Path(path)
    if not path.is_dir():
        return None
    if _looks_like_jaffe(path):
        return path
    children = [p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if len(children) == 1 and _looks_like_jaffe(children[0]):
        return children[0]
    return None


def read_jaffe(path: Path | str) -> DatasetIndex:
    """Index a JAFFE folder; image files not named the JAFFE way are listed in ``skipped``."""
    root = find_jaffe_folder(Path(path)) or Path(path)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder (expected JAFFE's images, e.g. KA.AN1.39.tiff)")
    entries: list[Entry] = []
    skipped: list[Skipped] = []
    for file in sorted(p for p in root.iterdir() if p.is_file()):
        code = jaffe_code(file.name)
        if code is None:
            why = "not named like JAFFE (e.g. KA.AN1.39.tiff)" if is_image_name(file) else None
            skipped.append(Skipped(str(file), why or "not an image file"))
            continue
        entries.append(
            Entry(
                source=str(file),
                label=CODES[code],
                split="all",
                load=partial(read_image, file),
                fingerprint=file.read_bytes,
            )
        )
    if not entries:
        raise DatasetError(f"{root}: no image named the JAFFE way (e.g. KA.AN1.39.tiff)")
    return DatasetIndex(format="jaffe", root=root, entries=entries, skipped=skipped)
