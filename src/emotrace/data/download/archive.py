"""Unpacking downloaded zip and tar archives without trusting them.

Every member is checked before anything is written: names must stay inside the destination (no
absolute paths, drive letters or ``..``), only regular files and folders are accepted (links,
devices and FIFOs are refused, not skipped, since a dataset never needs them), and the declared
total must fit under a size limit, under a compression-ratio limit and on the disk. Files are then
written by emotrace itself, byte-counted against their declared sizes, with default permissions:
nothing of the archive's ownership or mode bits is applied. A zip member compressed with a method
Python cannot read (Deflate64, which 7-Zip and Windows' "compressed folder" write for large files;
PPMd; ...) is refused by name before anything is written.
"""

from __future__ import annotations

import errno
import lzma
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from emotrace._interrupts import raise_if_interrupted
from emotrace.errors import ArchiveError, DownloadError

#: Default limit on what one archive may unpack to (``--max-size``).
DEFAULT_MAX_BYTES = 64 << 30
#: Unpacked size over archive size beyond which a large archive is taken for a bomb. Images (JPEG,
#: PNG) barely compress and a FER2013 CSV compresses about 3:1; zeros deflate about 1000:1.
MAX_RATIO = 100
#: Archives smaller than this unpacked are not ratio-checked (tiny, highly compressible CSVs).
RATIO_FLOOR = 64 << 20
#: Folders and files some archivers add that are no part of a dataset.
JUNK = frozenset({"__MACOSX", ".DS_Store", "Thumbs.db"})
_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")
_ZSTD: int | None = getattr(zipfile, "ZIP_ZSTANDARD", None)  # Python 3.14 on
#: Zip compression methods Python's zipfile unpacks.
_ZIP_METHODS = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
    | ({_ZSTD} if _ZSTD is not None else set())
)
#: Names of the other methods, as archivers call them (APPNOTE.TXT 4.4.5).
_ZIP_METHOD_NAMES = {
    1: "Shrink", 6: "Implode", 9: "Deflate64", 10: "PKWARE DCL Implode", 14: "LZMA",
    93: "Zstandard", 95: "XZ", 96: "JPEG", 97: "WavPack", 98: "PPMd", 99: "AES encryption",
}  # fmt: skip


@dataclass(frozen=True)
class Member:
    """One checked archive member: its path parts inside the destination, kind and size."""

    parts: tuple[str, ...]
    is_dir: bool
    size: int
    open: Callable[[], AbstractContextManager[IO[bytes]]] | None


def archive_kind(path: Path) -> str | None:
    """``"zip"``, ``"tar"`` (also gzip/bzip2/xz-compressed) or ``None``, from the content."""
    with path.open("rb") as handle:
        head = handle.read(4)
    if head in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    try:
        return "tar" if tarfile.is_tarfile(path) else None
    except (OSError, EOFError, tarfile.TarError, lzma.LZMAError, zlib.error):
        return None


def safe_parts(name: str) -> tuple[str, ...]:
    """Path parts of member ``name``; :class:`ArchiveError` when it would land outside."""
    posix = name.replace("\\", "/")
    if posix.startswith("/") or _DRIVE.match(posix) or "\x00" in posix:
        raise ArchiveError(f"unsafe archive: member {name!r} has an absolute path")
    parts = tuple(p for p in posix.split("/") if p not in ("", "."))
    if ".." in parts:
        raise ArchiveError(f"unsafe archive: member {name!r} points outside the target folder")
    return parts


def unpack(
    archive: Path, dest: Path, *, max_bytes: int = DEFAULT_MAX_BYTES, name: str | None = None
) -> int:
    """Unpack ``archive`` (zip or tar) into the new folder ``dest``; returns the bytes written.

    ``name`` is what messages call the archive (default: its file name). Raises
    :class:`ArchiveError` for a corrupt or unsafe archive (nothing is left in ``dest`` then) and
    :class:`DownloadError` when the disk lacks the space the archive declares.
    """
    name = name or archive.name
    kind = archive_kind(archive)
    if kind is None:
        raise ArchiveError(f"{name}: not a zip or tar archive (corrupt download?)")
    dest.mkdir(parents=True)
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as zf:
                return _write_all(list(_zip_members(zf, name)), archive, name, dest, max_bytes)
        with tarfile.open(archive, "r:*") as tf:
            return _write_all(list(_tar_members(tf)), archive, name, dest, max_bytes)
    except ArchiveError:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    except (zipfile.BadZipFile, tarfile.TarError, zlib.error, lzma.LZMAError, EOFError) as exc:
        shutil.rmtree(dest, ignore_errors=True)
        raise ArchiveError(f"corrupt archive {name}: {exc or type(exc).__name__}") from None
    except OSError as exc:
        shutil.rmtree(dest, ignore_errors=True)
        if exc.errno is None and not isinstance(exc, DownloadError):
            # gzip.BadGzipFile and friends: OSError without an errno means bad data, not the disk.
            raise ArchiveError(f"corrupt archive {name}: {exc}") from None
        raise


def unsupported_method(name: str, member: str, method: int) -> ArchiveError:
    """The one-line refusal of a zip member compressed with a method zipfile cannot read."""
    label = _ZIP_METHOD_NAMES.get(method, "an unknown method")
    return ArchiveError(
        f"{name}: member {member!r} is compressed with {label} (zip method {method}), which "
        f"emotrace cannot unpack; unpack {name} by hand (7-Zip or unzip can) and use that "
        "folder, or re-pack it with ordinary Deflate"
    )


def _zip_members(zf: zipfile.ZipFile, name: str) -> Iterator[Member]:
    for info in zf.infolist():
        parts = safe_parts(info.filename)
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)
        if kind == stat.S_IFLNK:
            raise ArchiveError(f"unsafe archive: member {info.filename!r} is a symbolic link")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise ArchiveError(f"unsafe archive: member {info.filename!r} is not a regular file")
        if info.flag_bits & 0x1:
            raise ArchiveError(f"member {info.filename!r} is encrypted; emotrace cannot unpack it")
        if not parts:
            continue
        if not info.is_dir() and info.compress_type not in _ZIP_METHODS:
            raise unsupported_method(name, info.filename, info.compress_type)
        opener = None if info.is_dir() else _zip_opener(zf, info, name)
        yield Member(parts, info.is_dir(), info.file_size, opener)


def _zip_opener(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str
) -> Callable[[], AbstractContextManager[IO[bytes]]]:
    def opener() -> AbstractContextManager[IO[bytes]]:
        try:
            return zf.open(info)
        except NotImplementedError:  # a method _ZIP_METHODS claims but this Python lacks
            raise unsupported_method(name, info.filename, info.compress_type) from None

    return opener


def _tar_members(tf: tarfile.TarFile) -> Iterator[Member]:
    for info in tf:
        parts = safe_parts(info.name)
        if info.issym() or info.islnk():
            raise ArchiveError(f"unsafe archive: member {info.name!r} is a link")
        if not (info.isreg() or info.isdir()):
            raise ArchiveError(f"unsafe archive: member {info.name!r} is not a regular file")
        if not parts:
            continue
        opener = None if info.isdir() else _tar_opener(tf, info)
        yield Member(parts, info.isdir(), info.size, opener)


def _tar_opener(
    tf: tarfile.TarFile, info: tarfile.TarInfo
) -> Callable[[], AbstractContextManager[IO[bytes]]]:
    def opener() -> AbstractContextManager[IO[bytes]]:
        handle = tf.extractfile(info)
        if handle is None:  # regular members always have data; guard the type
            raise ArchiveError(f"corrupt archive: no data for {info.name!r}")
        return handle

    return opener


def _write_all(members: list[Member], archive: Path, name: str, dest: Path, max_bytes: int) -> int:
    members = [m for m in members if not JUNK.intersection(m.parts)]
    total = sum(m.size for m in members if not m.is_dir)
    if total > max_bytes:
        raise ArchiveError(
            f"{name} would unpack to {_gib(total)}, over the limit of {_gib(max_bytes)} "
            "(an archive bomb? raise the limit with --max-size if you trust it)"
        )
    packed = max(archive.stat().st_size, 1)
    if total > RATIO_FLOOR and total / packed > MAX_RATIO:
        raise ArchiveError(
            f"{name} would unpack to {_gib(total)} from {_gib(packed)} "
            f"(ratio {total // packed}:1, over {MAX_RATIO}:1): refusing a likely archive bomb"
        )
    free = shutil.disk_usage(dest).free
    if total > free:
        raise DownloadError(
            f"not enough disk space in {dest.parent}: {name} unpacks to {_gib(total)}, "
            f"{_gib(free)} free"
        )
    root = dest.resolve()
    written = 0
    for member in members:
        target = root.joinpath(*member.parts)
        # Defence in depth: nothing here creates links, so resolving stays inside ``root``.
        if not target.resolve().is_relative_to(root):
            raise ArchiveError(f"unsafe archive: member {'/'.join(member.parts)!r} escapes")
        try:
            if member.is_dir:
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            written += _copy(member, target)
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            raise ArchiveError(
                f"corrupt archive {name}: member {'/'.join(member.parts)!r} "
                "is listed twice or clashes with a folder"
            ) from None
    return written


def _copy(member: Member, target: Path) -> int:
    if member.open is None:
        raise ArchiveError(f"corrupt archive: no data for {'/'.join(member.parts)!r}")
    count = 0
    with member.open() as source, target.open("xb") as out:
        while chunk := source.read(_CHUNK):
            raise_if_interrupted()
            count += len(chunk)
            if count > member.size:
                raise ArchiveError(
                    f"unsafe archive: {'/'.join(member.parts)!r} holds more than its declared "
                    f"{member.size:,} bytes"
                )
            out.write(chunk)
    if count != member.size:
        raise ArchiveError(
            f"corrupt archive: {'/'.join(member.parts)!r} has {count:,} of {member.size:,} bytes"
        )
    return count


def _gib(n: int) -> str:
    if n >= 1 << 30:
        return f"{n / (1 << 30):.1f} GiB"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MiB"
    return f"{n:,} bytes"


def is_enospc(exc: BaseException) -> bool:
    """True for "no space left" (or a quota) while writing."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
