"""``SessionStore``: sessions, per-frame records and markers in the workspace (see ``workspace``).

Per-frame probabilities are stored as little-endian float32 blobs in the session's class order;
exports (``export``) turn them into one column per class.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from emotrace.errors import SessionError, SessionExists, StoreError
from emotrace.sessions import coverage
from emotrace.sessions._schema import SCHEMA_VERSION
from emotrace.sessions.baseline import Baseline, BaselineStats, baseline_stats
from emotrace.sessions.measures import AnalyticsConfig
from emotrace.sessions.types import (
    COMPLETE,
    INTERRUPTED,
    RECORDING,
    Marker,
    ModelInfo,
    SessionData,
    SessionInfo,
    normal_name,
)
from emotrace.sessions.workspace import (
    BUSY_TIMEOUT_MS,
    check_workspace,
    connect,
    create_workspace,
    hold_file,
    migrate,
    release_file,
    resolve_workspace,
    secure_workspace,
    sql_errors,
    writer_alive,
)

#: One stored frame: frame, time_s, face, track_id, x, y, w, h, score, probs (float32 bytes);
#: everything after ``face`` is ``None`` when the patient's face is missing.
FrameRow = tuple[Any, ...]
#: The columns of a stored frame, in :data:`FrameRow` order after the session id.
FRAME_COLUMNS = (
    "session_id, frame, time_s, face, track_id, x, y, w, h, score, probs, yaw, pitch, roll"
)
_PLACEHOLDERS = ", ".join("?" * len(FRAME_COLUMNS.split(",")))
_ROW_WIDTH = len(FRAME_COLUMNS.split(",")) - 1


#: How long a delete waits for other connections' readers before leaving the purge pending.
PURGE_WAIT_S = 0.5
#: What the CLI and the API say when a delete's purge is pending (see ``SessionStore.delete``).
PURGE_PENDING = (
    "another process is reading the workspace, so the deleted data stays in its write-ahead "
    "log until that reader finishes: the purge is pending"
)
PURGE_DONE = "emotrace: the pending purge of deleted sessions in {path} is complete"

#: How far past a session's last frame (or its end) a marker may lie: clocks and frame times
#: differ by a fraction of a second, while a typo (3600 for 360) or 1e12 is refused.
MARKER_SLACK_S = 1.0


def _check_marker_time(info: SessionInfo, time_s: float) -> None:
    """A marker lies between the session's start and its end (now, for a live recording or an
    interrupted one, which may be resumed: a page marks a moment before it clicks Resume)."""
    if not np.isfinite(time_s) or time_s < 0:
        raise SessionError(f"marker time {time_s} is not a time in the session")
    if info.status in (RECORDING, INTERRUPTED):
        end = time.time() - info.started_at
    else:
        wall = (info.ended_at if info.ended_at is not None else info.started_at) - info.started_at
        end = max(info.last_time_s or 0.0, wall)
    if time_s > end + MARKER_SLACK_S:
        raise SessionError(
            f"marker time {time_s:g} s is after the end of session {info.name!r} ({end:.1f} s)"
        )


def _check_span(info: SessionInfo, time_s: float, end_s: float | None, excluded: bool) -> None:
    """A segment ends after it starts and within the session; only a segment can be excluded."""
    _check_marker_time(info, time_s)
    if end_s is None:
        if excluded:
            raise SessionError(
                "an excluded stretch needs an end: give end_s after its start time_s"
            )
        return
    if not np.isfinite(end_s) or end_s <= time_s:
        raise SessionError(
            f"a segment's end ({end_s:g} s) must come after its start ({time_s:g} s)"
        )
    _check_marker_time(info, end_s)


def _text(value: str, what: str) -> str:
    """``value`` if SQLite can store it: not the undecodable bytes of a command line."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise SessionError(f"the {what} is not valid UTF-8 text") from None
    return value


_MARKER_COLUMNS = "id, time_s, label, end_s, excluded"


def _marker(row: Sequence[Any]) -> Marker:
    return Marker(row[0], row[1], row[2], row[3], bool(row[4]))


class SessionStore:
    """A session workspace. Use as a context manager; ``readonly`` for list/show/export/report
    (it writes nothing, except that a workspace from an older emotrace is migrated first).

    >>> with SessionStore("~/therapy", readonly=True) as store:
    ...     for info in store.sessions(patient="P-017"):
    ...         print(info.name, info.status, info.duration_s)
    """

    def __init__(
        self, workspace: str | Path | None = None, *, create: bool = False, readonly: bool = False
    ) -> None:
        self.path = resolve_workspace(workspace)
        self._conn: sqlite3.Connection | None = None
        self._held: tuple[int, int] | None = None
        self._purge_pending = False
        self._retry: threading.Thread | None = None
        self._retry_stop = threading.Event()
        self._coverage: dict[int, tuple[tuple[Any, ...], coverage.Coverage]] = {}
        if not self.path.exists():
            if not create:
                raise StoreError(f"no emotrace workspace at {self.path} (nothing recorded yet)")
            create_workspace(self.path)
        version = check_workspace(self.path)
        # After the check: a file that is not a workspace is refused, not chmod-ed.
        secure_workspace(self.path)
        # Noted before connecting, so no thread of this process reads the raw file meanwhile.
        self._held = hold_file(self.path)
        try:
            # A reader of an older workspace upgrades it first: the queries speak the newest
            # schema.
            self._conn = connect(self.path, readonly=readonly and version == SCHEMA_VERSION)
            if version < SCHEMA_VERSION:
                migrate(self._conn, self.path)
            if not (readonly and version == SCHEMA_VERSION):
                self._recover_stale()
        except BaseException:
            self.close()
            raise

    def _recover_stale(self) -> None:
        rows = self.conn.execute(
            "SELECT id, writer_pid, writer_host, heartbeat FROM sessions WHERE status = ?",
            (RECORDING,),
        ).fetchall()
        stale = [(r[3], r[0]) for r in rows if not writer_alive(r[1], r[2], r[3])]
        if stale:
            with self.transaction() as conn:
                conn.executemany(
                    "UPDATE sessions SET status = 'interrupted', ended_at = COALESCE(?, started_at)"
                    " WHERE id = ? AND status = 'recording'",
                    stale,
                )

    @property
    def conn(self) -> sqlite3.Connection:
        """The open connection."""
        if self._conn is None:
            raise StoreError(f"workspace {self.path} is closed")
        return self._conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on error)."""
        conn = self.conn
        with sql_errors(self.path):
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close the connection (idempotent), trying a pending purge a last time first."""
        self._retry_stop.set()
        if self._retry is not None and self._retry is not threading.current_thread():
            # Its rounds are short (no waiting for readers), so this returns at once.
            self._retry.join(timeout=5)
        if self._conn is not None:
            if self._purge_pending:
                # Still pending on failure: SQLite folds the WAL in when its last user closes.
                with suppress(StoreError):
                    self.finish_purge()
            self._conn.close()
            self._conn = None
        release_file(self._held)
        self._held = None

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------------------

    _INFO_SQL = """
        SELECT s.id, s.name, s.patient, s.started_at, s.ended_at, s.source, s.model_name,
               s.model_version, s.model_sha256, s.classes, s.settings, s.consent, s.notes,
               s.status, s.writer_pid, s.writer_host, s.heartbeat,
               (SELECT count(*) FROM frames f WHERE f.session_id = s.id),
               (SELECT coalesce(sum(f.face), 0) FROM frames f WHERE f.session_id = s.id),
               (SELECT min(f.time_s) FROM frames f WHERE f.session_id = s.id),
               (SELECT max(f.time_s) FROM frames f WHERE f.session_id = s.id),
               (SELECT count(*) FROM markers m WHERE m.session_id = s.id)
        FROM sessions s
    """

    @staticmethod
    def _info(row: Sequence[Any]) -> SessionInfo:
        status = row[13]
        if status == RECORDING and not writer_alive(row[14], row[15], row[16]):
            status = INTERRUPTED
        return SessionInfo(
            id=row[0],
            name=row[1],
            patient=row[2],
            started_at=row[3],
            ended_at=row[4] if row[4] is not None else (row[16] if status != RECORDING else None),
            source=row[5],
            model=ModelInfo(row[6], row[7], row[8]),
            classes=tuple(json.loads(row[9])),
            settings=json.loads(row[10]),
            consent=bool(row[11]),
            notes=row[12],
            status=status,
            frames=row[17],
            visible_frames=row[18],
            first_time_s=row[19],
            last_time_s=row[20],
            markers=row[21],
        )

    def sessions(self, patient: str | None = None) -> list[SessionInfo]:
        """All sessions (of one ``patient``), oldest first."""
        with sql_errors(self.path):
            if patient is None:
                rows = self.conn.execute(self._INFO_SQL + " ORDER BY s.started_at, s.id")
            else:
                rows = self.conn.execute(
                    self._INFO_SQL + " WHERE s.patient = ? ORDER BY s.started_at, s.id",
                    (normal_name(patient),),
                )
            return [self._measured(self._info(row)) for row in rows.fetchall()]

    def has_name(self, name: str, patient: str) -> bool:
        """Whether ``patient`` has a session called ``name`` (exactly; names are unique per
        patient, and ids are not names)."""
        with sql_errors(self.path):
            row = self.conn.execute(
                "SELECT 1 FROM sessions WHERE name = ? AND patient = ?",
                (normal_name(name), normal_name(patient)),
            ).fetchone()
        return row is not None

    def get(self, ref: str | int) -> SessionInfo:
        """A session by ``PATIENT/NAME``, by name (refused when several patients have a session
        of that name), or by id (a number that is not also a name)."""
        if isinstance(ref, str):
            ref = normal_name(ref)
        with sql_errors(self.path):
            rows: list[Any] = []
            if isinstance(ref, str) and "/" in ref:
                # Pseudonyms and names cannot hold "/" (``check_name``), so this is unambiguous.
                patient, _, name = ref.partition("/")
                rows = self.conn.execute(
                    self._INFO_SQL + " WHERE s.patient = ? AND s.name = ?", (patient, name)
                ).fetchall()
            elif isinstance(ref, str):
                rows = self.conn.execute(
                    self._INFO_SQL + " WHERE s.name = ? ORDER BY s.patient", (ref,)
                ).fetchall()
            if len(rows) > 1:
                patients = ", ".join(str(r[2]) for r in rows)
                raise SessionError(
                    f"session name {ref!r} is used by patients {patients}: give PATIENT/NAME "
                    f"(e.g. {rows[0][2]}/{ref}) or the session id"
                )
            if not rows and str(ref).isdigit():
                rows = self.conn.execute(self._INFO_SQL + " WHERE s.id = ?", (int(ref),)).fetchall()
            if not rows:
                names = [
                    f"{r[0]}/{r[1]}"
                    for r in self.conn.execute("SELECT patient, name FROM sessions LIMIT 6")
                ]
                hint = (
                    f"known: {', '.join(names[:5])}{', ...' if len(names) > 5 else ''}"
                    if names
                    else "the workspace has no sessions"
                )
                raise SessionError(f"no session {ref!r} in workspace {self.path} ({hint})")
            return self._measured(self._info(rows[0]))

    def _measured(self, info: SessionInfo) -> SessionInfo:
        """``info`` with its :class:`Coverage` (cached until the session gets new frames or its
        excluded stretches change)."""
        with sql_errors(self.path):
            # Excluded stretches count neither as recorded nor as breaks (see ``coverage``).
            spans = self.conn.execute(
                "SELECT time_s, end_s FROM markers WHERE session_id = ? AND excluded = 1"
                " AND end_s IS NOT NULL ORDER BY time_s",
                (info.id,),
            ).fetchall()
        key = (info.started_at, info.frames, info.last_time_s, tuple(spans))
        cached = self._coverage.get(info.id)
        if cached is None or cached[0] != key:
            with sql_errors(self.path):
                rows = self.conn.execute(
                    "SELECT time_s, face FROM frames WHERE session_id = ? ORDER BY frame",
                    (info.id,),
                ).fetchall()
            table = np.array(rows, np.float64).reshape(len(rows), 2)
            measured = coverage.measure(table[:, 0], table[:, 1] > 0, excluded=spans)
            cached = (key, measured)
            self._coverage[info.id] = cached
        return replace(info, coverage=cached[1])

    def markers(self, session_id: int) -> list[Marker]:
        """A session's markers in time order."""
        with sql_errors(self.path):
            rows = self.conn.execute(
                f"SELECT {_MARKER_COLUMNS} FROM markers WHERE session_id = ? ORDER BY time_s, id",
                (session_id,),
            ).fetchall()
        return [_marker(row) for row in rows]

    def load(self, ref: str | int, *, offset: int = 0, limit: int | None = None) -> SessionData:
        """Metadata, per-frame arrays and markers of one session; with ``offset``/``limit``,
        only those frames (in frame order) are read, for paging through a long session."""
        if offset < 0 or (limit is not None and limit < 0):
            raise SessionError(f"offset and limit must not be negative, got {offset}, {limit}")
        info = self.get(ref)
        with sql_errors(self.path):
            rows = self.conn.execute(
                "SELECT frame, time_s, face, track_id, x, y, w, h, score, probs, yaw, pitch, roll"
                " FROM frames WHERE session_id = ? ORDER BY frame LIMIT ? OFFSET ?",
                (info.id, -1 if limit is None else limit, offset),
            ).fetchall()
        k, n = len(info.classes), len(rows)
        missing = bytes(np.full(k, np.nan, "<f4").tobytes())
        columns = list(zip(*rows, strict=True)) if rows else [()] * 13
        visible = np.array(columns[2], dtype=bool).reshape(n)

        def numbers(values: Sequence[Any]) -> np.ndarray:
            return np.array([np.nan if v is None else v for v in values], np.float64).reshape(n)

        probs = np.frombuffer(b"".join(p or missing for p in columns[9]), "<f4").reshape(n, k)
        return SessionData(
            info=info,
            frames=np.array(columns[0], np.int64).reshape(n),
            times=np.array(columns[1], np.float64).reshape(n),
            visible=visible,
            probabilities=probs.astype(np.float32),
            boxes=np.stack([numbers(columns[i]) for i in range(4, 8)], axis=1).reshape(n, 4),
            track_ids=np.array([-1 if t is None else t for t in columns[3]], np.int64).reshape(n),
            scores=numbers(columns[8]),
            markers=self.markers(info.id),
            poses=np.stack([numbers(columns[i]) for i in range(10, 13)], axis=1).reshape(n, 3),
        )

    # -- writing ---------------------------------------------------------------------------

    def create_session(
        self,
        name: str,
        patient: str,
        classes: Sequence[str],
        *,
        source: str = "",
        model: ModelInfo | None = None,
        settings: dict[str, Any] | None = None,
        consent: bool = False,
        notes: str = "",
    ) -> int:
        """A new session in state ``recording`` owned by this process; returns its id."""
        model = model or ModelInfo("")
        _text(notes, "notes")
        try:
            with self.transaction() as conn:
                cursor = conn.execute(
                    "INSERT INTO sessions (name, patient, started_at, source, model_name,"
                    " model_version, model_sha256, classes, settings, consent, notes, status,"
                    " writer_pid, writer_host, heartbeat, baseline_id)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'recording', ?, ?, ?,"
                    " (SELECT id FROM baselines WHERE patient = ? AND replaced_at IS NULL))",
                    (
                        name,
                        patient,
                        time.time(),
                        source,
                        model.name,
                        model.version,
                        model.sha256,
                        json.dumps(list(classes)),
                        json.dumps(settings or {}, sort_keys=True),
                        int(consent),
                        notes,
                        os.getpid(),
                        socket.gethostname(),
                        time.time(),
                        patient,  # analysed against the patient's baseline active now
                    ),
                )
        except sqlite3.IntegrityError:
            raise SessionExists(
                f"session {name!r} already exists for patient {patient} in {self.path}; "
                "choose another name"
            ) from None
        return int(cursor.lastrowid or 0)

    def append(
        self,
        session_id: int,
        frames: Sequence[FrameRow],
        markers: Sequence[tuple[float, str]] = (),
    ) -> None:
        """Store frame rows and markers in one transaction, and beat the writer's heartbeat."""
        self.append_many({session_id: frames}, {session_id: markers}, beat=[session_id])

    def append_many(
        self,
        frames: Mapping[int, Sequence[FrameRow]],
        markers: Mapping[int, Sequence[tuple[float, str]]] | None = None,
        *,
        beat: Collection[int] = (),
    ) -> None:
        """Store several sessions' frame rows and markers in one transaction, and beat the
        heartbeat of each of them and of the sessions in ``beat`` (the workspace writer's
        commit; see :mod:`emotrace.sessions.writer`)."""
        now = time.time()
        with self.transaction() as conn:
            for session_id, rows in frames.items():
                if rows:
                    conn.executemany(
                        f"INSERT INTO frames ({FRAME_COLUMNS}) VALUES ({_PLACEHOLDERS})",
                        # A row without the pose columns (an older caller) stores no pose.
                        [(session_id, *row, *[None] * (_ROW_WIDTH - len(row))) for row in rows],
                    )
            for session_id, marks in (markers or {}).items():
                if marks:
                    conn.executemany(
                        "INSERT INTO markers (session_id, time_s, label, created_at)"
                        " VALUES (?, ?, ?, ?)",
                        [(session_id, t, label, now) for t, label in marks],
                    )
            beating = set(beat) | set(frames) | set(markers or {})
            conn.executemany(
                "UPDATE sessions SET heartbeat = ? WHERE id = ?", [(now, i) for i in beating]
            )

    def finish(self, session_id: int, status: str = COMPLETE) -> None:
        """End a recording as ``complete`` or ``interrupted``."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE sessions SET status = ?, ended_at = ?, heartbeat = ? WHERE id = ?",
                (status, time.time(), time.time(), session_id),
            )

    def add_marker(
        self,
        ref: str | int,
        label: str,
        time_s: float | None = None,
        *,
        end_s: float | None = None,
        excluded: bool = False,
    ) -> Marker:
        """A marker at ``time_s`` (session seconds); ``None`` means now, for a live recording.

        With ``end_s`` it is a segment ``[time_s, end_s)``; ``excluded`` leaves that stretch out
        of every analytic (the label says why)."""
        info = self.get(ref)
        if not _text(label, "marker label").strip():
            raise SessionError("a marker needs a label")
        if time_s is None:
            if info.status != RECORDING:
                raise SessionError(
                    f"session {info.name!r} is {info.status}; give the marker time with --at"
                )
            time_s = time.time() - info.started_at
        _check_span(info, time_s, end_s, excluded)
        marker = Marker(
            0, float(time_s), label.strip(), None if end_s is None else float(end_s), excluded
        )
        with self.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO markers (session_id, time_s, label, created_at, end_s, excluded)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (info.id, marker.time_s, marker.label, time.time(), marker.end_s, int(excluded)),
            )
        return replace(marker, id=int(cursor.lastrowid or 0))

    def marker(self, session_id: int, marker_id: int) -> Marker:
        """One marker of a session; :class:`SessionError` when the session has no such marker."""
        with sql_errors(self.path):
            row = self.conn.execute(
                f"SELECT {_MARKER_COLUMNS} FROM markers WHERE id = ? AND session_id = ?",
                (marker_id, session_id),
            ).fetchone()
        if row is None:
            raise SessionError(f"session {session_id} has no marker {marker_id}")
        return _marker(row)

    def edit_marker(
        self,
        session_id: int,
        marker_id: int,
        *,
        label: str | None = None,
        time_s: float | None = None,
        end_s: float | None = None,
        point: bool = False,
        excluded: bool | None = None,
    ) -> Marker:
        """Change a marker's label, time, end (``point``: drop the end, making a segment a point
        marker) and/or exclusion (the clinician corrects it after the session); ``None`` keeps
        a field as it is."""
        old = self.marker(session_id, marker_id)
        if label is not None and not _text(label, "marker label").strip():
            raise SessionError("a marker needs a label")
        if point and end_s is not None:
            raise SessionError("a marker is either a point or has an end, not both")
        new = Marker(
            old.id,
            float(time_s) if time_s is not None else old.time_s,
            label.strip() if label is not None else old.label,
            None if point else (float(end_s) if end_s is not None else old.end_s),
            old.excluded if excluded is None else excluded,
        )
        if (new.time_s, new.end_s, new.excluded) != (old.time_s, old.end_s, old.excluded):
            _check_span(self.get(session_id), new.time_s, new.end_s, new.excluded)
        with self.transaction() as conn:
            conn.execute(
                "UPDATE markers SET time_s = ?, label = ?, end_s = ?, excluded = ? WHERE id = ?",
                (new.time_s, new.label, new.end_s, int(new.excluded), new.id),
            )
        return new

    def delete_marker(self, session_id: int, marker_id: int) -> None:
        """Delete one marker (its label is overwritten on disk: ``secure_delete``)."""
        self.marker(session_id, marker_id)
        with self.transaction() as conn:
            conn.execute("DELETE FROM markers WHERE id = ?", (marker_id,))

    def reopen(self, ref: str | int) -> tuple[SessionInfo, int]:
        """Take over an interrupted session to record more into it; its info and last frame.

        The session becomes ``recording`` again, owned by this process; frames recorded from
        here on must come after the returned frame index (-1 for a session without frames).
        """
        info = self.get(ref)
        if info.status == RECORDING:
            raise SessionError(f"session {info.name!r} is being recorded by another writer")
        if info.status == COMPLETE:
            raise SessionError(f"session {info.name!r} is complete; it cannot be resumed")
        with self.transaction() as conn:
            conn.execute(
                "UPDATE sessions SET status = 'recording', ended_at = NULL, writer_pid = ?,"
                " writer_host = ?, heartbeat = ? WHERE id = ?",
                (os.getpid(), socket.gethostname(), time.time(), info.id),
            )
            last = conn.execute(
                "SELECT coalesce(max(frame), -1) FROM frames WHERE session_id = ?", (info.id,)
            ).fetchone()[0]
        return self.get(info.id), int(last)

    def update(
        self, ref: str | int, *, notes: str | None = None, consent: bool | None = None
    ) -> SessionInfo:
        """Change a session's free-text notes and/or consent flag."""
        info = self.get(ref)
        if notes is not None:
            _text(notes, "notes")
        with self.transaction() as conn:
            if notes is not None:
                conn.execute("UPDATE sessions SET notes = ? WHERE id = ?", (notes, info.id))
            if consent is not None:
                conn.execute(
                    "UPDATE sessions SET consent = ? WHERE id = ?", (int(consent), info.id)
                )
        return self.get(info.id)

    def delete(self, refs: Sequence[str | int]) -> bool:
        """Delete sessions and really remove their data; ``False`` when another connection
        still reads an older snapshot, so the WAL cannot be truncated yet: the purge is then
        pending (:attr:`purge_pending`, :data:`PURGE_PENDING`) and completes with
        :meth:`finish_purge` (retried by :meth:`retry_purge`, tried again by :meth:`close`)."""
        infos = [self.get(ref) for ref in refs]
        live = [i.name for i in infos if i.status == RECORDING]
        if live:
            raise SessionError(f"session {live[0]!r} is being recorded; stop the recording first")
        ids = sorted({i.id for i in infos})
        with self.transaction() as conn:
            for table, key in (("frames", "session_id"), ("markers", "session_id")):
                conn.executemany(f"DELETE FROM {table} WHERE {key} = ?", [(i,) for i in ids])
            conn.executemany("DELETE FROM sessions WHERE id = ?", [(i,) for i in ids])
            # A patient's baselines outlive a session, not the patient's last one.
            conn.execute(
                "DELETE FROM baselines WHERE patient NOT IN (SELECT patient FROM sessions)"
            )
        return self.purge()

    @property
    def purge_pending(self) -> bool:
        """Whether deleted data may still be in the WAL (a reader kept it from being truncated)."""
        return self._purge_pending

    def purge(self) -> bool:
        """Checkpoint and truncate the WAL, vacuum, truncate again; ``True`` when complete.

        Waiting for other connections' readers is bounded by :data:`PURGE_WAIT_S`: a reader may
        hold its snapshot for as long as it likes, and the caller (a server holding the one
        workspace connection) must not stall meanwhile. Then the purge is pending.
        """
        # Pending from here on: should VACUUM fail (a writer held the lock too long), the
        # deleted cells are already zeroed (``secure_delete``) and truncating the WAL suffices.
        self._purge_pending = True
        with sql_errors(self.path):
            self._checkpoint(0.0)  # fold in what it can first, so VACUUM works on less WAL
            self.conn.execute("VACUUM")
            if self._checkpoint(PURGE_WAIT_S):
                self._purge_pending = False
        return not self._purge_pending

    def finish_purge(self) -> bool:
        """Complete a pending purge: truncate the WAL once no reader needs its old pages.
        ``True`` when nothing deleted is left in the WAL (also when nothing was pending)."""
        if not self._purge_pending:
            return True
        with sql_errors(self.path):
            if self._checkpoint(0.0):
                self._purge_pending = False
        return not self._purge_pending

    def _checkpoint(self, wait_s: float) -> bool:
        """``wal_checkpoint(TRUNCATE)``, waiting at most ``wait_s`` for readers and writers;
        whether the whole WAL went into the database file and was truncated to nothing."""
        conn = self.conn
        conn.execute(f"PRAGMA busy_timeout = {int(wait_s * 1000)}")
        try:
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return not busy

    def retry_purge(self, lock: threading.Lock, interval_s: float = 0.5) -> None:
        """Finish a pending purge in the background: every ``interval_s``, holding ``lock``
        (whatever else guards this store's connection), until it completes or the store
        closes. One retrying thread per store; a no-op when nothing is pending."""
        if not self._purge_pending or (self._retry is not None and self._retry.is_alive()):
            return
        self._retry_stop.clear()

        def run() -> None:
            while not self._retry_stop.wait(interval_s):
                with lock:
                    if self._conn is None or self._retry_stop.is_set():
                        return
                    try:
                        if self.finish_purge():
                            print(PURGE_DONE.format(path=self.path), file=sys.stderr, flush=True)
                            return
                    except StoreError:
                        continue  # locked by a writer just now: the next round tries again

        self._retry = threading.Thread(target=run, name="emotrace-purge", daemon=True)
        self._retry.start()

    # -- baselines (see ``baseline``) -------------------------------------------------------

    _BASELINE_SQL = """
        SELECT b.id, b.patient, b.session_id, s.name, b.start_s, b.end_s, b.created_at,
               b.replaced_at, b.stats
        FROM baselines b LEFT JOIN sessions s ON s.id = b.session_id
    """

    @staticmethod
    def _baseline(row: Sequence[Any]) -> Baseline:
        stats = BaselineStats.from_dict(json.loads(row[8]))
        return Baseline(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], stats)

    def set_baseline(
        self, ref: str | int, start_s: float, end_s: float, config: AnalyticsConfig | None = None
    ) -> Baseline:
        """Make ``[start_s, end_s]`` of a session its patient's active baseline (the previous one
        is kept, replaced); the session is from now on analysed against it. :class:`SessionError`
        when the stretch has less than ``baseline.MIN_VISIBLE_S`` of visible face."""
        data = self.load(ref)
        stats = baseline_stats(data, float(start_s), float(end_s), config)
        now = time.time()
        with self.transaction() as conn:
            conn.execute(
                "UPDATE baselines SET replaced_at = ? WHERE patient = ? AND replaced_at IS NULL",
                (now, data.info.patient),
            )
            cursor = conn.execute(
                "INSERT INTO baselines (patient, session_id, start_s, end_s, created_at,"
                " visible_s, stats) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (data.info.patient, data.info.id, float(start_s), float(end_s), now,
                 stats.visible_s, json.dumps(stats.to_dict(), sort_keys=True)),
            )  # fmt: skip
            new = int(cursor.lastrowid or 0)
            conn.execute("UPDATE sessions SET baseline_id = ? WHERE id = ?", (new, data.info.id))
        return self.baseline(new)

    def baseline(self, baseline_id: int) -> Baseline:
        """One baseline by id; :class:`SessionError` when there is none."""
        with sql_errors(self.path):
            row = self.conn.execute(
                self._BASELINE_SQL + " WHERE b.id = ?", (baseline_id,)
            ).fetchone()
        if row is None:
            raise SessionError(f"no baseline {baseline_id} in workspace {self.path}")
        return self._baseline(row)

    def baselines(self, patient: str | None = None) -> list[Baseline]:
        """Baselines (of one ``patient``), newest first, the replaced ones included."""
        # In NFC, as sessions store it: "María" typed on any keyboard is one patient.
        where, args = (" WHERE b.patient = ?", (normal_name(patient),)) if patient else ("", ())
        with sql_errors(self.path):
            rows = self.conn.execute(
                self._BASELINE_SQL + where + " ORDER BY b.created_at DESC, b.id DESC", args
            ).fetchall()
        return [self._baseline(row) for row in rows]

    def active_baseline(self, patient: str) -> Baseline | None:
        """The patient's current baseline, or ``None``."""
        return next((b for b in self.baselines(patient) if b.active), None)

    def session_baseline(self, ref: str | int) -> Baseline | None:
        """The baseline a session is analysed against (``None``: it has none)."""
        info = self.get(ref)
        with sql_errors(self.path):
            row = self.conn.execute(
                "SELECT baseline_id FROM sessions WHERE id = ?", (info.id,)
            ).fetchone()
        return None if row is None or row[0] is None else self.baseline(int(row[0]))

    def clear_baseline(self, patient: str) -> Baseline:
        """End the patient's active baseline (kept, as replaced): sessions created from now on
        have none. Those already analysed against it keep it."""
        active = self.active_baseline(patient)
        if active is None:
            raise SessionError(f"patient {patient!r} has no active baseline")
        with self.transaction() as conn:
            conn.execute(
                "UPDATE baselines SET replaced_at = ? WHERE id = ?", (time.time(), active.id)
            )
        return self.baseline(active.id)
