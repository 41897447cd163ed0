"""Private temporary folders for uploaded videos, removed when done and after a crash.

Videos hold faces, so an upload is on disk only while it is analysed, and only for this user:

* the root, ``$TMPDIR/emotrace-uploads-<uid>``, is 0700 and must be this user's (a folder another
  user made there first is refused, not used);
* each server process works in a folder of its own under it (``serve-<pid>-XXXX``, 0700) and
  holds an exclusive ``flock`` on its ``.lock`` for as long as it runs;
* each upload gets a folder (``upload-XXXX``, 0700) in there, holding one file (0600), which is
  removed as soon as its analysis ends, fails or is cancelled;
* at start-up a server removes every server folder whose lock nobody holds: what a server that
  died (``kill -9``, power cut) left behind. The lock, not the pid, tells: pids are reused.

Nothing else is written: frames are decoded in memory and never stored.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO

from emotrace.errors import ConfigError

try:
    import fcntl
except ImportError:  # Windows: the pid tells instead (see _owner_alive)
    fcntl = None  # type: ignore[assignment]

ROOT_PREFIX = "emotrace-uploads-"
SERVER_PREFIX = "serve-"
UPLOAD_PREFIX = "upload-"
LOCK_NAME = ".lock"
VIDEO_NAME = "video"
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def default_root() -> Path:
    """``$TMPDIR/emotrace-uploads-<uid>`` (the system's temporary folder)."""
    user = os.getuid() if hasattr(os, "getuid") else os.getlogin()
    return Path(tempfile.gettempdir()) / f"{ROOT_PREFIX}{user}"


def private_root(root: Path | None = None) -> Path:
    """The uploads root, created 0700; refused when it is not a folder of this user's."""
    root = root or default_root()
    root.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    info = root.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"{root} is not a folder; remove it or set TMPDIR elsewhere")
    if hasattr(os, "getuid"):
        if info.st_uid != os.getuid():
            raise ConfigError(
                f"{root} belongs to another user; uploads cannot be kept private there "
                "(set TMPDIR to a folder of yours)"
            )
        if stat.S_IMODE(info.st_mode) != PRIVATE_DIR:
            root.chmod(PRIVATE_DIR)
    return root


def _pid_of(folder: Path) -> int | None:
    parts = folder.name.split("-")
    return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None


def _pid_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, but another user's (or Windows' answer for a live process)
        return True
    return True


def _owner_alive(folder: Path) -> bool:
    """Whether the server that made ``folder`` still runs: it holds the folder's lock."""
    if fcntl is None:
        return _pid_alive(_pid_of(folder))
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        # Made a moment ago by a server that has not locked it yet, or left by one that died
        # right after making it: only the pid can tell these apart.
        return _pid_alive(_pid_of(folder))
    except OSError:
        return True  # not ours to judge (permissions): leave it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True  # locked: its server runs
    finally:
        os.close(fd)  # releases the lock just taken, if it was
    return False


def sweep(root: Path) -> list[Path]:
    """Remove the folders (and videos) of servers that are no longer running; those removed."""
    removed = []
    for folder in sorted(root.glob(f"{SERVER_PREFIX}*")):
        if folder.is_dir() and not folder.is_symlink() and not _owner_alive(folder):
            shutil.rmtree(folder, ignore_errors=True)
            if not folder.exists():
                removed.append(folder)
    return removed


class UploadArea:
    """This server's private folder for uploads, locked while the server runs.

    >>> area = UploadArea.open()           # sweeps what dead servers left, then locks its own
    >>> folder = area.new_folder()         # upload-XXXX, 0700
    >>> with private_file(folder / VIDEO_NAME) as handle: ...
    >>> area.remove(folder)                # the analysis ended
    >>> area.close()                       # server shutdown: everything left goes
    """

    def __init__(self, path: Path, lock_fd: int | None) -> None:
        self.path = path
        self._lock_fd = lock_fd

    @classmethod
    def open(cls, root: Path | None = None) -> UploadArea:
        """Sweep ``root`` (default :func:`default_root`), then make and lock this server's
        folder in it."""
        root = private_root(root)
        for folder in sweep(root):
            print(
                f"emotrace: removed {folder}, the uploads of a server that stopped without "
                "cleaning up",
                file=sys.stderr,
            )
        path = Path(tempfile.mkdtemp(prefix=f"{SERVER_PREFIX}{os.getpid()}-", dir=root))
        lock_fd = None
        if fcntl is not None:
            lock_fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return cls(path, lock_fd)

    def new_folder(self) -> Path:
        """A fresh private folder (0700) for one upload."""
        return Path(tempfile.mkdtemp(prefix=UPLOAD_PREFIX, dir=self.path))

    @staticmethod
    def remove(folder: Path) -> None:
        """Remove an upload's folder and everything in it."""
        shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        """Remove this server's folder (uploads included) and release its lock."""
        shutil.rmtree(self.path, ignore_errors=True)
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
            self._lock_fd = None


def private_file(path: Path) -> BinaryIO:
    """A new file for writing, 0600 from the start (never briefly readable by others)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_BINARY", 0)
    return os.fdopen(os.open(path, flags, PRIVATE_FILE), "wb")
