"""Recognising a dataset's layout and opening it with the matching reader.

Detection only looks at names and CSV headers, never at image content, and never writes anything.
Numeric class folders are taken for AffectNet's public release (``0``..``7``) or, without a ``0``
(``1``..``7``), for RAF-DB's; a folder of FER2013-ordered codes needs ``format="folder"``.
"""

from __future__ import annotations

from pathlib import Path

from emotrace.data.readers.affectnet import (
    find_affectnet_csvs,
    is_affectnet_csv,
    read_affectnet_csv,
    read_affectnet_folders,
)
from emotrace.data.readers.expw import find_expw_labels, read_expw
from emotrace.data.readers.fer2013_csv import find_fer2013_csv, is_fer2013_csv, read_fer2013_csv
from emotrace.data.readers.ferplus import find_ferplus_csv, is_ferplus_csv, read_ferplus
from emotrace.data.readers.folder import (
    class_folder_names,
    looks_like_class_folders,
    read_class_folders,
)
from emotrace.data.readers.jaffe import find_jaffe_folder, read_jaffe
from emotrace.data.readers.rafdb import find_rafdb_root, read_rafdb, read_rafdb_folders
from emotrace.data.readers.roboflow import CLASSES_CSV, read_roboflow_csv, roboflow_split_dirs
from emotrace.data.types import DatasetIndex
from emotrace.errors import DatasetError
from emotrace.labels import is_known

#: Format names :func:`open_dataset` accepts.
FORMATS: tuple[str, ...] = (
    "folder",
    "roboflow_csv",
    "fer2013_csv",
    "affectnet_csv",
    "affectnet",
    "ckplus",
    "rafdb",
    "ferplus",
    "expw",
    "jaffe",
)

EXPECTED_LAYOUTS = (
    "expected class folders (root/[train|valid|test/]<class>/*.jpg), a Roboflow export with "
    f"{CLASSES_CSV}, a FER2013 CSV (emotion,pixels[,Usage]), FER+'s fer2013new.csv beside it, "
    "AffectNet's training.csv/validation.csv, RAF-DB's EmoLabel/list_patition_label.txt, ExpW's "
    "label/label.lst or JAFFE's images (KA.AN1.39.tiff)"
)


def detect_format(path: Path | str) -> str:
    """Name the layout of ``path`` (one of :data:`FORMATS`); a one-line DatasetError otherwise."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder; {EXPECTED_LAYOUTS}")
    if path.is_file():
        return _file_format(path)
    if roboflow_split_dirs(path) is not None:
        return "roboflow_csv"
    if find_affectnet_csvs(path, depth=0):
        return "affectnet_csv"
    # FER+ relabels fer2013.csv and sits beside it: its labels are why a user has it.
    if find_ferplus_csv(path, depth=0) is not None:
        return "ferplus"
    if find_fer2013_csv(path, depth=0) is not None:
        return "fer2013_csv"
    if find_rafdb_root(path, depth=0) is not None:
        return "rafdb"
    if find_expw_labels(path) is not None:
        return "expw"
    names = class_folder_names(path)
    if names and all(name.isdigit() or is_known(name) for name in names):
        return _class_folder_format(names)
    # CSVs one level down: AffectNet's Manually_Annotated_file_lists/, Kaggle's fer2013/.
    if find_affectnet_csvs(path, depth=1):
        return "affectnet_csv"
    if find_ferplus_csv(path, depth=1) is not None:
        return "ferplus"
    if find_fer2013_csv(path, depth=1) is not None:
        return "fer2013_csv"
    if find_rafdb_root(path, depth=1) is not None:  # the release's basic/ folder
        return "rafdb"
    if find_jaffe_folder(path) is not None:
        return "jaffe"
    if looks_like_class_folders(path):
        # Unknown class names: the folder reader's error names the offending folder.
        return _class_folder_format(names)
    raise DatasetError(f"{path}: no dataset layout recognised; {EXPECTED_LAYOUTS}")


def open_dataset(path: Path | str, format: str | None = None) -> DatasetIndex:
    """Index the dataset at ``path``, detecting its layout unless ``format`` names one.

    ``format`` is one of :data:`FORMATS`. Nothing is decoded here: entries load lazily, and files
    that cannot be used are listed in :attr:`DatasetIndex.skipped`. Raises :class:`DatasetError`
    (or :class:`~emotrace.errors.UnknownLabelError`) with a one-line message on bad input.
    """
    path = Path(path)
    if format is not None and format not in FORMATS:
        raise DatasetError(
            f"unknown dataset format {format!r}: expected one of {', '.join(FORMATS)}"
        )
    chosen = format or detect_format(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder; {EXPECTED_LAYOUTS}")
    if chosen == "fer2013_csv":
        return read_fer2013_csv(path)
    if chosen == "ferplus":
        return read_ferplus(path)
    if chosen == "expw":
        return read_expw(path)
    if chosen == "jaffe":
        return read_jaffe(path)
    if chosen == "affectnet_csv":
        return read_affectnet_csv(path)
    if chosen == "roboflow_csv":
        return read_roboflow_csv(path)
    if not path.is_dir():
        raise DatasetError(f"{path}: format {chosen!r} expects a folder of class folders")
    if chosen == "affectnet":
        return read_affectnet_folders(path)
    if chosen == "rafdb":
        return read_rafdb(path) if find_rafdb_root(path) is not None else read_rafdb_folders(path)
    return read_class_folders(path, chosen)


def _file_format(path: Path) -> str:
    if find_expw_labels(path) is not None:
        return "expw"
    if path.name == CLASSES_CSV:
        return "roboflow_csv"
    if is_affectnet_csv(path):
        return "affectnet_csv"
    if is_fer2013_csv(path):
        return "fer2013_csv"
    if is_ferplus_csv(path):
        return "ferplus"
    if path.suffix.lower() in (".zip", ".tar", ".gz", ".tgz", ".7z", ".rar"):
        raise DatasetError(f"{path}: an archive; extract it first ({EXPECTED_LAYOUTS})")
    raise DatasetError(f"{path}: not a dataset file; {EXPECTED_LAYOUTS}")


def _class_folder_format(names: list[str]) -> str:
    """AffectNet for codes from 0 or 8 classes with contempt, RAF-DB for codes 1-7, CK+ for its
    spellings."""
    lowered = {name.lower() for name in names}
    if lowered and all(name.isdigit() for name in lowered):
        # AffectNet numbers neutral, its largest class, 0; RAF-DB numbers its classes 1-7.
        codes = {int(name) for name in lowered}
        return "rafdb" if codes <= set(range(1, 8)) else "affectnet"
    if "neutral" not in lowered and ("contempt" in lowered or {"anger", "sadness"} <= lowered):
        return "ckplus"
    if "contempt" in lowered:
        return "affectnet"
    return "folder"
