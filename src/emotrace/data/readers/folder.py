"""Folder-per-class datasets, with or without split folders.

``root/<class>/*.jpg`` is one split named ``all``; ``root/{train,valid,test}/<class>/*.jpg`` (also
``validation``, ``val``) has splits. This is the layout of Roboflow classification exports, of the
FER2013 image release, of AffectNet's public zip, of RAF-DB's common repackaging (folders
``1``-``7``) and of CK+ (which uses names like ``anger``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

from emotrace.data.imageio import is_image_name, read_image
from emotrace.data.types import SPLIT_ALIASES, DatasetIndex, Entry, Skipped
from emotrace.errors import DatasetError, UnknownLabelError
from emotrace.labels import FER2013_ORDER, canonical


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def has_split_folders(root: Path) -> bool:
    """True when ``root``'s sub-folders are split names (train/valid/test...)."""
    dirs = _visible_dirs(root)
    return bool(dirs) and all(d.name.lower() in SPLIT_ALIASES for d in dirs)


def looks_like_class_folders(root: Path) -> bool:
    """True when ``root`` holds class folders directly or under split folders."""
    if not root.is_dir():
        return False
    dirs = _visible_dirs(root)
    if not dirs:
        return False
    if has_split_folders(root):
        dirs = [c for d in dirs for c in _visible_dirs(d)]
    return bool(dirs)


def class_folder_names(root: Path) -> list[str]:
    """Names of the class folders under ``root`` (looking inside split folders), sorted, unique."""
    dirs = _visible_dirs(root)
    if has_split_folders(root):
        dirs = [c for d in dirs for c in _visible_dirs(d)]
    return sorted({d.name for d in dirs})


def read_class_folders(
    root: Path,
    format_name: str = "folder",
    numeric_order: Sequence[str] = FER2013_ORDER,
    first_code: int = 0,
) -> DatasetIndex:
    """Index a folder-per-class dataset. Unknown class names and empty class folders are errors.

    Folders named by numeric codes (``0``, ``1``...) are read in ``numeric_order`` from
    ``first_code``: FER2013's by default, :data:`~emotrace.labels.AFFECTNET_ORDER` for AffectNet's
    public release, :data:`~emotrace.labels.RAFDB_ORDER` from 1 for RAF-DB's.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    if has_split_folders(root):
        split_dirs = [(SPLIT_ALIASES[d.name.lower()], d) for d in _visible_dirs(root)]
    else:
        split_dirs = [("all", root)]
    entries: list[Entry] = []
    skipped: list[Skipped] = []
    for split, split_dir in split_dirs:
        class_dirs = _visible_dirs(split_dir)
        if not class_dirs:
            raise DatasetError(f"{split_dir}: no class folders (expected e.g. angry/, happy/)")
        for class_dir in class_dirs:
            try:
                label = canonical(class_dir.name, numeric_order, first_code)
            except UnknownLabelError as exc:
                raise UnknownLabelError(f"{class_dir}: {exc}") from None
            listed = sorted(class_dir.iterdir())
            files = [p for p in listed if p.is_file()]
            # A link to nothing is neither a file nor a folder: listed, not silently dropped.
            skipped.extend(
                Skipped(str(p), "broken link") for p in listed if p.is_symlink() and not p.exists()
            )
            images = [p for p in files if is_image_name(p)]
            skipped.extend(
                Skipped(str(p), "not an image file") for p in files if not is_image_name(p)
            )
            if not images:
                raise DatasetError(f"{class_dir}: empty class folder (no image files)")
            entries.extend(
                Entry(
                    source=str(p),
                    label=label,
                    split=split,
                    load=partial(read_image, p),
                    fingerprint=p.read_bytes,
                )
                for p in images
            )
    return DatasetIndex(format=format_name, root=root, entries=entries, skipped=skipped)
