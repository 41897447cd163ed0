"""From a fetched archive to a finished dataset folder, all or nothing.

Work happens in a hidden sibling of the target, ``.<name>.emotrace-download/``: the partial download
(kept between runs so it can resume) and the unpacked tree. Once the tree opens with emotrace's
readers, the completion marker is written into it and the tree is renamed onto the target in one
``rename``. So the target either does not exist or holds a whole dataset with its marker; a crash,
a full disk or a corrupt archive never leaves something there that looks complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from emotrace import __version__
from emotrace.data.download.archive import DEFAULT_MAX_BYTES, archive_kind, is_enospc, unpack
from emotrace.data.readers import open_dataset
from emotrace.data.types import DatasetIndex
from emotrace.errors import ArchiveError, DownloadError, EmotraceError

#: File in a finished download's folder that says what it holds; written last.
MARKER = ".emotrace-download.json"


@dataclass(frozen=True)
class Source:
    """What was asked for: the service, its dataset reference, optionally a file and revision."""

    service: str
    ref: str
    file: str | None = None
    revision: str | None = None

    def describe(self) -> str:
        """``service:ref[/file][@revision]``, for messages."""
        text = f"{self.service}:{self.ref}"
        if self.file:
            text += f"/{self.file}"
        if self.revision:
            text += f"@{self.revision}"
        return text

    def matches(self, recorded: dict[str, Any]) -> bool:
        """True when a marker's source is this one (file and revision only compared when given)."""
        if recorded.get("service") != self.service or recorded.get("ref") != self.ref:
            return False
        if self.file is not None and recorded.get("file") != self.file:
            return False
        return self.revision is None or recorded.get("revision") == self.revision


@dataclass
class Fetched:
    """A downloaded archive, and how to drop it when corrupt so that a rerun fetches it anew."""

    path: Path
    name: str
    discard: Callable[[], None]
    #: Extra facts for the marker (commit hash, checks made); never secrets.
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class DownloadResult:
    """A finished download: the folder, its dataset index, and whether this run did anything."""

    path: Path
    source: Source
    index: DatasetIndex
    already_complete: bool
    marker: dict[str, Any]


def work_dir(out: Path) -> Path:
    """The hidden sibling folder where the partial download and the unpacked tree live."""
    return out.parent / f".{out.name}.emotrace-download"


def read_marker(out: Path) -> dict[str, Any] | None:
    """The completion marker of ``out``, or ``None`` when there is no readable one."""
    try:
        marker = json.loads((out / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and marker.get("complete") is True else None


def install(
    source: Source,
    out: Path,
    fetch: Callable[[Path], Fetched],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> DownloadResult:
    """Make ``out`` hold the dataset ``fetch`` downloads, unless it already does.

    ``fetch(work)`` downloads into ``work`` (or a cache of its own) and returns the archive.
    """
    out = Path(os.path.abspath(out))
    marker = read_marker(out)
    if marker is not None:
        recorded = marker.get("source", {})
        if not source.matches(recorded):
            raise DownloadError(
                f"{out} already holds {_describe(recorded)}; choose another folder with -o"
            )
        return DownloadResult(out, source, open_dataset(out), True, marker)
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        raise DownloadError(
            f"{out} exists and is not a finished emotrace download; choose a new or empty folder"
        )
    work = work_dir(out)
    try:
        work.mkdir(parents=True, exist_ok=True)
        fetched = fetch(work)
        staging = work / "unpacked"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            unpacked = _unpack_or_copy(fetched, staging, max_bytes)
        except ArchiveError:
            # Unusable as it is: a rerun fetches it anew. Nothing stays behind meanwhile: the
            # work folder only held this download (and its resume notes) and the unpacked tree.
            fetched.discard()
            shutil.rmtree(work, ignore_errors=True)
            raise
        root, index = _dataset_root(staging, fetched.name)
        marker = {
            "complete": True,
            "source": asdict(source),
            "archive": fetched.name,
            "archive_bytes": fetched.path.stat().st_size,
            "archive_sha256": _sha256(fetched.path),
            "unpacked_bytes": unpacked,
            "format": index.format,
            "emotrace": __version__,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **fetched.details,
        }
        _write_atomic(root / MARKER, json.dumps(marker, indent=2) + "\n")
        if out.is_dir():
            out.rmdir()  # empty (checked above); rename cannot replace a folder portably
        os.rename(root, out)
        shutil.rmtree(work, ignore_errors=True)
    except EmotraceError:
        raise
    except OSError as exc:
        if is_enospc(exc):
            # The unpacked tree is what can be rebuilt; a partial download stays to resume.
            shutil.rmtree(work / "unpacked", ignore_errors=True)
            raise DownloadError(
                f"no space left on device under {out.parent}; free some space and run the "
                "command again (a partial download resumes)"
            ) from None
        where = exc.filename or out
        raise DownloadError(f"cannot write {where}: {exc.strerror or exc}") from None
    return DownloadResult(out, source, open_dataset(out), False, marker)


def _describe(recorded: Any) -> str:
    if isinstance(recorded, dict):
        return f"{recorded.get('service', '?')}:{recorded.get('ref', '?')}"
    return "another dataset"


def _unpack_or_copy(fetched: Fetched, staging: Path, max_bytes: int) -> int:
    """Unpack an archive; a single CSV (FER2013's, AffectNet's lists) is copied as it is."""
    if archive_kind(fetched.path) is None and fetched.name.lower().endswith(".csv"):
        staging.mkdir(parents=True)
        shutil.copyfile(fetched.path, staging / Path(fetched.name).name)
        return fetched.path.stat().st_size
    return unpack(fetched.path, staging, max_bytes=max_bytes, name=fetched.name)


def _dataset_root(staging: Path, name: str) -> tuple[Path, DatasetIndex]:
    """The folder inside ``staging`` that opens as a dataset, descending single wrapper folders.

    Archives often wrap the data in one folder (``affectnet/train/...``); ``train --data DIR``
    should work on DIR itself, so the wrapper is dropped.
    """
    here = staging
    while True:
        try:
            return here, open_dataset(here)
        except EmotraceError as exc:
            children = [p for p in here.iterdir() if not p.name.startswith(".")]
            if len(children) == 1 and children[0].is_dir():
                here = children[0]
                continue
            reason = str(exc).replace(str(staging), name)
            raise DownloadError(f"{name} holds no dataset emotrace can read: {reason}") from None


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
