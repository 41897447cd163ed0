"""The one thread that writes a workspace: every recording's rows, markers and heartbeats.

Modelled on datasette's ``execute_write_fn``: writes are functions queued to a single thread that
owns the workspace's write connection, so they never contend with each other for SQLite's lock,
and readers (on their own connections, in WAL mode) never wait for them. Frame rows are the
exception to "one function per write": recorders queue them (microseconds on the caller's
thread) and the writer commits whatever is queued, for every session at once, at least every
``commit_interval_s`` (0.5 s), so after ``kill -9`` every frame older than one second is on disk.
While recordings are open and nothing is queued, the writer beats their heartbeats once a
second (a recording whose heartbeat stops is reported as ``interrupted``; see
``store.writer_alive``).

``emotrace serve`` runs one writer for all its live sessions; a :class:`SessionRecorder` without
one (``analyze --session``, ``live --session``) starts its own.

>>> writer = WorkspaceWriter("~/therapy").start()
>>> session_id = writer.call(lambda store: store.create_session("week-3", "P-017", classes))
>>> writer.record(session_id, row)                   # queued, committed within 0.5 s
>>> writer.call(lambda store: store.finish(session_id))   # after what was queued before it
>>> writer.close()
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from emotrace.errors import StoreError
from emotrace.sessions.store import PURGE_DONE, FrameRow, SessionStore
from emotrace.sessions.workspace import WorkspaceBusy

T = TypeVar("T")

_HEARTBEAT_S = 1.0
#: Tries of a commit while another process holds the workspace's lock (each waits SQLite's
#: 5 s busy timeout) before a write that must not be lost (a call, the last commit) fails.
FINAL_TRIES = 6
_STOP = object()


class WorkspaceWriter:
    """One thread owning a workspace's write connection (see the module docstring).

    :meth:`call` runs a function with the :class:`SessionStore` on the writer thread, after every
    row queued before it is committed, and returns its result (or raises its error).
    :meth:`record` and :meth:`mark` queue one session's frame rows and markers. An error while
    committing queued rows stops the writer: every later call raises it, as a
    :class:`StoreError`, so a recording never goes on silently without storing.
    """

    def __init__(
        self,
        workspace: str | Path | None = None,
        *,
        commit_interval_s: float = 0.5,
        max_batch: int = 1000,
    ) -> None:
        self.workspace = workspace
        self.commit_interval_s = commit_interval_s
        self.max_batch = max_batch
        self.path: Path | None = None
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=100_000)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._open: set[int] = set()  # sessions whose heartbeat the writer beats
        self._closed = False
        self._purging: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> WorkspaceWriter:
        """Open (or create) the workspace on the writer thread and start writing."""
        if self._thread is not None:
            raise StoreError("the workspace writer is already running")
        opened: Future[SessionStore] = Future()
        self._thread = threading.Thread(
            target=self._run, args=(opened,), name="emotrace-workspace-writer", daemon=True
        )
        self._thread.start()
        store = opened.result()  # raises what opening raised (not a workspace, too new...)
        self.path = store.path
        return self

    def close(self) -> None:
        """Commit what is queued, then stop the thread and close the connection (idempotent).
        Raises the writer's error, if it stopped on one."""
        if self._thread is not None and not self._closed:
            self._closed = True
            if self._thread.is_alive():
                self._queue.put(_STOP)
            self._thread.join()
        self._raise_if_failed()

    def __enter__(self) -> WorkspaceWriter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------------

    def call(self, fn: Callable[[SessionStore], T]) -> T:
        """Run ``fn(store)`` on the writer thread (after the rows queued before it) and return
        its result; the caller waits."""
        return self.submit(fn).result()

    def submit(self, fn: Callable[[SessionStore], T]) -> Future[T]:
        """As :meth:`call`, without waiting: the future of ``fn(store)``."""
        self._check_running()
        future: Future[T] = Future()
        self._queue.put(("call", (fn, future)))
        if self._thread is not None and not self._thread.is_alive():  # it stopped meanwhile
            self._fail_pending(self._error or StoreError("the workspace writer stopped"))
        return future

    def record(self, session_id: int, row: FrameRow) -> None:
        """Queue one frame row of ``session_id`` (committed within ``commit_interval_s``)."""
        self._check_running()
        self._queue.put(("frame", (session_id, row)))

    def mark(self, session_id: int, time_s: float, label: str) -> None:
        """Queue one marker of ``session_id``."""
        self._check_running()
        self._queue.put(("marker", (session_id, (time_s, label))))

    def hold(self, session_id: int) -> None:
        """Beat ``session_id``'s heartbeat while it records (until :meth:`release`)."""
        self._check_running()
        self._queue.put(("open", session_id))

    def release(self, session_id: int) -> None:
        """Stop beating ``session_id``'s heartbeat."""
        self._queue.put(("close", session_id))

    def finish_purge_later(self, interval_s: float = 0.5) -> None:
        """A delete's purge is pending (another process reads an older snapshot): try to finish
        it every ``interval_s`` on the writer thread until it completes or the writer closes
        (closing tries once more). One retrying timer at a time."""
        if self._purging is not None and self._purging.is_alive():
            return

        def retry() -> None:
            while not self._closed and self._error is None:
                time.sleep(interval_s)
                try:
                    if self.call(_finish_purge):
                        return
                except StoreError:
                    continue  # locked by another writer just now: the next round tries again

        self._purging = threading.Thread(target=retry, name="emotrace-purge", daemon=True)
        self._purging.start()

    @property
    def failed(self) -> BaseException | None:
        """The error the writer stopped on, if any."""
        return self._error

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise StoreError(f"recording stopped: {self._error}") from self._error

    def _check_running(self) -> None:
        self._raise_if_failed()
        if self._thread is None or self._closed:
            raise StoreError("the workspace writer is not running")

    # -- the writer thread -----------------------------------------------------------------------

    def _run(self, opened: Future[SessionStore]) -> None:
        try:
            store = SessionStore(self.workspace, create=True)
        except BaseException as exc:
            opened.set_exception(exc)
            return
        opened.set_result(store)
        try:
            self._loop(store)
        except BaseException as exc:  # reported to every caller by the next call
            self._error = exc
            self._fail_pending(exc)
        finally:
            store.close()

    def _loop(self, store: SessionStore) -> None:
        frames: dict[int, list[FrameRow]] = {}
        markers: dict[int, list[tuple[float, str]]] = {}
        oldest: float | None = None  # when the oldest uncommitted row was queued
        last_commit = time.monotonic()

        def commit(patiently: bool) -> bool:
            nonlocal frames, markers, oldest, last_commit
            for attempt in range(FINAL_TRIES if patiently else 1):
                try:
                    store.append_many(frames, markers, beat=self._open)
                    break
                except WorkspaceBusy:
                    # Another process holds the lock (a long delete's vacuum, a backup): keep
                    # the rows and commit them at the next try.
                    if attempt == (FINAL_TRIES if patiently else 1) - 1:
                        if patiently:
                            raise
                        last_commit = time.monotonic()
                        oldest = last_commit if frames or markers else None
                        return False
            frames, markers, oldest, last_commit = {}, {}, None, time.monotonic()
            return True

        while True:
            now = time.monotonic()
            deadline = (
                last_commit + _HEARTBEAT_S if oldest is None else oldest + self.commit_interval_s
            )
            try:
                item = self._queue.get(timeout=max(0.0, deadline - now))
            except queue.Empty:
                item = None
            now = time.monotonic()
            if item is _STOP:
                commit(patiently=True)
                return
            if item is not None:
                kind, payload = item
                if kind == "call":
                    fn, future = payload
                    # Whatever was queued before the call is stored before it runs (a finish
                    # comes after the session's last frame).
                    if frames or markers:
                        try:
                            commit(patiently=True)
                        except WorkspaceBusy as exc:  # the rows wait for the next commit
                            future.set_exception(exc)
                            continue
                    if future.set_running_or_notify_cancel():
                        try:
                            future.set_result(fn(store))
                        except BaseException as exc:  # the caller's error, not the writer's
                            future.set_exception(exc)
                    continue
                if kind == "frame":
                    session_id, row = payload
                    frames.setdefault(session_id, []).append(row)
                elif kind == "marker":
                    session_id, marker = payload
                    markers.setdefault(session_id, []).append(marker)
                elif kind == "open":
                    self._open.add(payload)
                    continue
                elif kind == "close":
                    self._open.discard(payload)
                    continue
                oldest = now if oldest is None else oldest
            queued = sum(map(len, frames.values()))
            due = oldest is not None and (
                now - oldest >= self.commit_interval_s or queued >= self.max_batch
            )
            if due or (now - last_commit >= _HEARTBEAT_S and (self._open or oldest is not None)):
                commit(patiently=False)
            elif now - last_commit >= _HEARTBEAT_S:
                last_commit = now

    def _fail_pending(self, exc: BaseException) -> None:
        """Fail the calls still queued behind the error, so no caller waits forever."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP and item[0] == "call":
                item[1][1].set_exception(StoreError(f"recording stopped: {exc}"))


def _finish_purge(store: SessionStore) -> bool:
    done = store.finish_purge()
    if done:
        print(PURGE_DONE.format(path=store.path), file=sys.stderr, flush=True)
    return done
