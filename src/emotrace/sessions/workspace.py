"""The session workspace: one SQLite file in WAL mode, versioned schema, checked before any write.

Where: ``--workspace DIR`` (``DIR/workspace.db``; a path to an existing file or one ending in
``.db`` is used as is), else ``$XDG_DATA_HOME/emotrace/workspace.db``
(``~/.local/share/emotrace/workspace.db``).

Opening is careful, in this order, so that a file that is not ours is never written to:

1. the 100-byte SQLite header is read as plain bytes: not SQLite, or an ``application_id`` that is
   not emotrace's, is refused before SQLite touches the file;
2. a read-only connection checks the schema version (newer: refused) and runs
   ``PRAGMA integrity_check`` (corrupted: refused, never written to);
3. only then, for writers, a read-write connection migrates an older schema in one transaction
   and marks recordings whose writer is gone as ``interrupted``.

The workspace holds patients' data, so it is the user's alone: the folder is 0700, the database
and SQLite's ``-wal``/``-shm`` files 0600 (SQLite creates those with the database file's mode,
so the database file is made 0600 before SQLite first opens it). A workspace with wider modes
(an older emotrace, a copy) is tightened when opened, with one warning.

Deleting overwrites the freed pages (``secure_delete``), checkpoints and truncates the WAL, and
vacuums, so the deleted numbers and text are gone from the database and WAL files.
Nothing here opens a network connection.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import stat
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from emotrace.errors import StoreError
from emotrace.sessions._schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION

DB_NAME = "workspace.db"
#: A recording whose writer has not written for this long is reported as interrupted. The writer
#: beats about once a second even when no frames arrive (see ``recorder``).
STALE_AFTER_S = 10.0
#: How long a connection waits for another's lock before giving up (``WorkspaceBusy``).
BUSY_TIMEOUT_MS = 5000
#: Once the WAL is checkpointed, SQLite trims it to this size instead of keeping old pages.
_WAL_LIMIT_BYTES = 4 << 20
_SQLITE_MAGIC = b"SQLite format 3\x00"
#: Workspace files this process has SQLite connections to, by (device, inode). Closing any
#: descriptor of a file drops every POSIX lock the process holds on it, its SQLite connections'
#: included; another process closing its own connection would then find the WAL unused,
#: checkpoint and delete it under this process's live connections (the next write: "database
#: disk image is malformed"). So the raw header is read only from files not open here.
_OPEN_FILES: Counter[tuple[int, int]] = Counter()
_OPEN_LOCK = threading.Lock()
#: Modes of the workspace folder and of its files: the user's alone.
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
#: Workspaces this process already warned about (tightened, or could not tighten).
_WARNED: set[Path] = set()


def _file_key(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def hold_file(path: Path) -> tuple[int, int] | None:
    """Note that a connection to ``path`` is about to open; give the key to ``release_file``."""
    key = _file_key(path)
    if key is not None:
        with _OPEN_LOCK:
            _OPEN_FILES[key] += 1
    return key


def release_file(key: tuple[int, int] | None) -> None:
    """The connection noted by ``hold_file`` is closed."""
    if key is not None:
        with _OPEN_LOCK:
            _OPEN_FILES[key] -= 1
            if _OPEN_FILES[key] <= 0:
                del _OPEN_FILES[key]


def _read_header(path: Path) -> bytes | None:
    """The file's first 100 bytes, or ``None`` when a connection of this process has it open
    (its header was checked when that connection opened; see ``_OPEN_FILES``)."""
    with _OPEN_LOCK:
        if _file_key(path) in _OPEN_FILES:
            return None
        with path.open("rb") as handle:
            return handle.read(100)


def default_workspace() -> Path:
    """``$XDG_DATA_HOME/emotrace`` or ``~/.local/share/emotrace``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "emotrace"


def resolve_workspace(workspace: str | Path | None = None) -> Path:
    """The database file for ``workspace`` (a folder, a ``.db`` file, or ``None``: the default)."""
    path = Path(workspace).expanduser() if workspace is not None else default_workspace()
    if path.is_file() or path.suffix in (".db", ".sqlite", ".sqlite3"):
        return path
    return path / DB_NAME


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def writer_alive(pid: int | None, host: str | None, heartbeat: float | None) -> bool:
    """Whether a recording's writer still runs: a recent heartbeat and, on this host, its pid."""
    if pid is None or heartbeat is None or time.time() - heartbeat > STALE_AFTER_S:
        return False
    return host != socket.gethostname() or _pid_alive(pid)


class WorkspaceBusy(StoreError):
    """Another connection held the workspace's lock for longer than the busy timeout (5 s)."""


@contextmanager
def sql_errors(path: Path) -> Iterator[None]:
    """Turn SQLite failures (locked, disk full, malformed) into one-line :class:`StoreError`
    (:class:`WorkspaceBusy` for a lock that did not come free)."""
    try:
        yield
    except sqlite3.IntegrityError:  # a constraint the caller explains better (duplicate name)
        raise
    except sqlite3.DatabaseError as exc:
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        kind = WorkspaceBusy if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) else StoreError
        raise kind(f"workspace {path}: {exc}") from None


def _own_folder(path: Path) -> bool:
    """Whether ``path``'s folder is a workspace folder (``DIR/workspace.db``, the default
    location included), not a folder of the user's that holds a ``--workspace FILE.db``."""
    return path.name == DB_NAME


def secure_workspace(path: Path) -> None:
    """Take group and other access away from the workspace files (and the workspace folder);
    one ``emotrace: warning:`` line on stderr per workspace and process when that changed
    anything or could not be done. Only modes change: never the files' content."""
    targets = [path.with_name(path.name + suffix) for suffix in ("", "-wal", "-shm")]
    if _own_folder(path):
        targets.append(path.parent)
    changed, failed = [], ""
    for target in targets:
        try:
            current = stat.S_IMODE(target.stat().st_mode)
            if current & 0o077:
                os.chmod(target, current & ~0o077)
                changed.append(target)
        except FileNotFoundError:
            continue  # no -wal/-shm while nothing has the workspace open
        except OSError as exc:  # another user's workspace: not ours to change
            failed = f"{target}: {exc.strerror}"
    key = path.resolve()
    if (changed or failed) and key not in _WARNED:
        _WARNED.add(key)
        where = path.parent if _own_folder(path) else path
        if failed:
            message = f"workspace {where} is readable by other users; cannot change that ({failed})"
        else:
            message = (
                f"workspace {where} was readable by other users; made it private "
                "(folder 0700, files 0600)"
            )
        print(f"emotrace: warning: {message}", file=sys.stderr, flush=True)


def create_workspace(path: Path) -> None:
    """A new, empty workspace file (0600, in a 0700 workspace folder): application id, WAL mode
    (schema by ``migrate``)."""
    try:
        new_folder = not path.parent.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        if new_folder or _own_folder(path):
            os.chmod(path.parent, PRIVATE_DIR)
        # Created 0600 here, not by SQLite (0644 under the usual umask): SQLite gives the -wal
        # and -shm files the database file's mode. SQLite starts an empty file as a new database.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)
        try:
            os.fchmod(fd, PRIVATE_FILE)  # the umask may have taken owner bits too
        finally:
            os.close(fd)
    except OSError as exc:
        raise StoreError(f"cannot create workspace {path}: {exc.strerror or exc}") from None
    with sql_errors(path):
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            # application_id goes to the main file before WAL mode, so step 1 of opening can
            # always read it from the raw header.
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute("PRAGMA journal_mode = WAL")
        finally:
            conn.close()


def check_workspace(path: Path) -> int:
    """Steps 1 and 2 of opening (see the module docstring); the schema version. Writes nothing."""
    try:
        header = _read_header(path)
    except OSError as exc:
        raise StoreError(f"cannot read workspace {path}: {exc.strerror}") from None
    if header is not None and (len(header) < 100 or not header.startswith(_SQLITE_MAGIC)):
        raise StoreError(f"{path} is not an emotrace workspace (not an SQLite database)")
    foreign = StoreError(
        f"{path} is an SQLite database but not an emotrace workspace; give another --workspace"
    )
    if header is not None and int.from_bytes(header[68:72], "big") != APPLICATION_ID:
        raise foreign
    try:
        conn = connect(path, readonly=True)
        try:
            application = int(conn.execute("PRAGMA application_id").fetchone()[0])
            if header is None and application != APPLICATION_ID:
                raise foreign
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"workspace {path} has schema version {version}, newer than this "
                    f"emotrace understands ({SCHEMA_VERSION}); upgrade emotrace"
                )
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check(5)")]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        problems = [str(exc)]
    if problems != ["ok"]:
        raise StoreError(
            f"workspace {path} is corrupted ({problems[0]}); it was not modified - "
            "restore it from a backup"
        )
    return version


def connect(path: Path, readonly: bool) -> sqlite3.Connection:
    """A connection with emotrace's pragmas; read-only ones cannot write anything."""
    if readonly:
        # Without a -wal file every change is in the main file, and ``immutable`` reads it
        # without creating -wal/-shm companions, so a refused file gets no new files beside it.
        # With a -wal (a live or killed writer) SQLite must read the log too.
        wal_exists = path.with_name(path.name + "-wal").exists()
        uri = path.resolve().as_uri() + ("?mode=ro" if wal_exists else "?mode=ro&immutable=1")
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return conn
    with sql_errors(path):
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in (
            f"busy_timeout = {BUSY_TIMEOUT_MS}",
            "journal_mode = WAL",
            # FULL: each (twice a second) commit is on disk, surviving power loss, not only
            # a killed process; the cost is one fsync per commit.
            "synchronous = FULL",
            "foreign_keys = ON",
            "secure_delete = ON",
            f"journal_size_limit = {_WAL_LIMIT_BYTES}",
        ):
            conn.execute(f"PRAGMA {pragma}")
    return conn


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the schema up to ``SCHEMA_VERSION`` in one transaction: all of it or nothing."""
    with sql_errors(path):
        # A migration that rebuilds a table drops the old one; with foreign keys on, that drop
        # would first delete every referencing row (ON DELETE CASCADE). SQLite's own recipe:
        # keys off outside the transaction, check them before committing, on again after.
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read inside the write lock: another process may have migrated meanwhile.
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _statements(MIGRATIONS[target - 1]):
                    conn.execute(statement)
            broken = conn.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise sqlite3.IntegrityError(f"migration broke foreign keys: {broken[:3]}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            if not conn.in_transaction:
                conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("COMMIT")
        conn.execute("PRAGMA foreign_keys = ON")


def _statements(script: str) -> list[str]:
    """The SQL statements of a migration, without its ``--`` comments (which may hold ``;``)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
