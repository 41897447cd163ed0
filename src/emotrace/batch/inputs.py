"""Which videos a batch analyses, where each one's records go, and which session each becomes.

Everything here runs in the driver, before any worker starts, so that bad input (nothing matched,
a bad manifest, a patient pseudonym that cannot be derived) fails in one line before hours of
work, never half-way through.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from emotrace.batch.index import INDEX_NAME
from emotrace.errors import ConfigError

#: What a folder given as INPUT is searched for (recursively); a file named explicitly is taken
#: whatever its extension, and a glob takes whatever it matches.
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}
)
_GLOB_CHARS = re.compile(r"[*?\[]")
#: URL schemes a worker reads itself (``http(s)`` directly; the others through pyarrow's
#: filesystems, which Ray itself uses, where their support is installed).
URL_SCHEMES = ("http", "https", "s3", "gs", "gcs", "abfs", "abfss", "hdfs", "viewfs")


def url_scheme(text: str) -> str:
    """The (lower-case) scheme of a URL that a worker reads itself, else ``""``."""
    scheme, sep, _ = text.partition("://")
    return scheme.lower() if sep and scheme.lower() in URL_SCHEMES else ""


class VideoURL(str):
    """A video named by URL: its worker reads it (the driver never does), and it has the
    ``name``/``stem`` of its URL's path for its output folder and session."""

    __slots__ = ()

    @property
    def name(self) -> str:
        return PurePosixPath(urlsplit(self).path).name or "video"

    @property
    def stem(self) -> str:
        return PurePosixPath(self.name).stem or "video"

    def resolve(self) -> VideoURL:
        return self

    def as_posix(self) -> str:
        return str(self)


#: Where a video is: a resolved path on the driver's machine, or a URL.
VideoPath = Path | VideoURL


def video_path(text: str | Path) -> VideoPath:
    """``text`` as a :class:`VideoURL` when it is one, else as a resolved path."""
    if isinstance(text, str) and url_scheme(text):
        return VideoURL(text)
    return Path(text).resolve()


@dataclass(frozen=True)
class VideoEntry:
    """One video of the batch: its resolved path (or URL) and, for sessions, patient and
    session name."""

    path: VideoPath
    patient: str | None = None
    session: str | None = None


def _folder_videos(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS
    )


def find_videos(inputs: Sequence[str | Path]) -> list[VideoPath]:
    """Resolved video paths for INPUT arguments: files, folders (searched recursively), globs
    and URLs (``https://``, ``s3://``, ... taken as they are: their workers read them).

    Order is that of the arguments (each folder and glob sorted); duplicates are dropped. A named
    file or folder that does not exist, and a run that matches nothing, raise
    :class:`ConfigError`.
    """
    found: list[VideoPath] = []
    for item in inputs:
        text = str(item)
        if isinstance(item, str) and url_scheme(item):
            found.append(VideoURL(item))
            continue
        if _GLOB_CHARS.search(text) and not Path(text).exists():
            found.extend(
                Path(p) for p in sorted(glob.glob(text, recursive=True)) if Path(p).is_file()
            )
            continue
        path = Path(text).expanduser()
        if path.is_dir():
            found.extend(_folder_videos(path))
        elif path.is_file():
            found.append(path)
        else:
            raise ConfigError(f"{text}: no such file or folder")
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise ConfigError(
            "no videos matched "
            + " ".join(map(str, inputs))
            + " (folders are searched for "
            + ", ".join(sorted(VIDEO_EXTENSIONS))
            + ")"
        )
    return unique


def read_manifest(path: Path, need_patient: bool) -> list[VideoEntry]:
    """Rows of a CSV manifest with columns ``video,patient[,session]`` (a header row).

    Relative video paths are relative to the manifest's folder. Every listed video must exist;
    with ``need_patient`` every row needs a patient. Errors name the manifest line.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such manifest") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the manifest ({exc})") from None
    reader = csv.DictReader(text.splitlines())
    columns = [c.strip() for c in reader.fieldnames or []]
    if "video" not in columns:
        raise ConfigError(
            f"{path}: a manifest needs a header row with columns video,patient[,session]; "
            f"found {','.join(columns) or 'nothing'}"
        )
    if need_patient and "patient" not in columns:
        raise ConfigError(f"{path}: --session-per-video needs a 'patient' column")
    entries: list[VideoEntry] = []
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        if not row.get("video"):
            raise ConfigError(f"{path}, line {line}: no video")
        patient = row.get("patient") or None
        if need_patient and patient is None:
            raise ConfigError(f"{path}, line {line}: no patient for {row['video']}")
        if url_scheme(row["video"]):
            entries.append(VideoEntry(VideoURL(row["video"]), patient, row.get("session") or None))
            continue
        video = Path(row["video"]).expanduser()
        if not video.is_absolute():
            video = path.parent / video
        if not video.is_file():
            raise ConfigError(f"{path}, line {line}: {row['video']}: no such file")
        entries.append(VideoEntry(video.resolve(), patient, row.get("session") or None))
    if not entries:
        raise ConfigError(f"{path}: the manifest lists no videos")
    seen: dict[VideoPath, int] = {}
    for i, entry in enumerate(entries):
        if entry.path in seen:
            raise ConfigError(
                f"{path}: {entry.path} is listed twice (lines {seen[entry.path] + 2} and {i + 2})"
            )
        seen[entry.path] = i
    return entries


def patient_from(pattern: str, videos: Iterable[VideoPath]) -> list[VideoEntry]:
    """Entries whose patient is the match of ``pattern`` in each video's path.

    The named group ``patient`` is used when the pattern has one, else the first group, else the
    whole match; a video whose path does not match raises :class:`ConfigError`.
    """
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(
            f"--patient-from {pattern!r} is not a regular expression: {exc}"
        ) from None
    entries = []
    for video in videos:
        match = regex.search(video.as_posix())
        if match is None:
            raise ConfigError(f"--patient-from {pattern!r} does not match {video}")
        if "patient" in regex.groupindex:
            patient = match.group("patient")
        else:
            patient = match.group(1) if regex.groups else match.group(0)
        entries.append(VideoEntry(video, patient))
    return entries


def output_folders(
    videos: Sequence[VideoPath], indexed: Mapping[VideoPath, str] | None = None
) -> dict[VideoPath, str]:
    """Each video's folder name under OUT_DIR: its stem, or, when stems collide (``p01/s1.mp4``
    and ``p02/s1.mp4``), the stem plus 8 hex digits of its path's hash, stable across reruns.

    ``indexed`` holds the folders of videos in OUT_DIR's index from earlier runs: such a video
    keeps its folder, and no other video is given one of them (a later batch of other videos
    into the same OUT_DIR wrote its ``s1.mp4`` into the folder of an earlier ``s1.mp4``).
    """
    indexed = indexed or {}
    owners = {folder: video for video, folder in indexed.items()}
    stems: dict[str, int] = {}
    for video in videos:
        stems[video.stem] = stems.get(video.stem, 0) + 1
    names = {}
    for video in videos:
        if video in indexed:
            names[video] = indexed[video]
            continue
        name = video.stem
        # index.csv.mp4 would take the index's own path (the index could then not be written).
        reserved = name in (INDEX_NAME, INDEX_NAME + ".tmp")
        if stems[name] > 1 or owners.get(name, video) != video or reserved:
            name += "-" + hashlib.sha1(str(video).encode()).hexdigest()[:8]
        names[video] = name
    return names
