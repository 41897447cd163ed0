"""What the server was asked for, and what its handlers share.

Routes and the WebSocket read the shared state through :func:`state`; nothing here imports
them, so the server's modules import downwards only: ``app`` -> ``routes``/``websocket`` ->
``state`` -> ``engine``/``live``.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from starlette.requests import HTTPConnection

from emotrace.errors import ConfigError
from emotrace.server.auth import new_token
from emotrace.server.engine import Engine
from emotrace.server.live import LiveRegistry
from emotrace.video.defaults import DEFAULT_FILE_MODEL
from emotrace.video.options import CrowdOptions, PipelineOptions

if TYPE_CHECKING:
    from fastapi import WebSocket

    from emotrace.server.file_sessions import FileSessions
    from emotrace.sessions.store import SessionStore
    from emotrace.sessions.writer import WorkspaceWriter

T = TypeVar("T")

DEFAULT_PORT = 8765
DEFAULT_MAX_UPLOAD = 10 * 1024 * 1024
#: Largest video file a file session may upload: about an hour of a phone's 4K HEVC.
DEFAULT_MAX_VIDEO = 16 * 1024**3
#: Seconds a session being recorded may go without a frame or a heartbeat from a page.
DEFAULT_IDLE_TIMEOUT_S = 120.0
#: Overrides :data:`DEFAULT_IDLE_TIMEOUT_S` (seconds): for tests, which cannot wait 2 minutes.
IDLE_TIMEOUT_ENV = "EMOTRACE_SERVE_IDLE_TIMEOUT_S"


def idle_timeout_from_env() -> float:
    """``$EMOTRACE_SERVE_IDLE_TIMEOUT_S`` when set (a number of seconds > 0), else 120 s."""
    value = os.environ.get(IDLE_TIMEOUT_ENV, "").strip()
    if not value:
        return DEFAULT_IDLE_TIMEOUT_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigError(f"{IDLE_TIMEOUT_ENV}={value}: must be a number of seconds > 0")
    return seconds


@dataclass
class ServerConfig:
    """What ``emotrace serve`` was asked for."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    workspace: Path | None = None
    #: Model, detector, tracking and smoothing: the options of ``emotrace analyze``.
    pipeline: PipelineOptions = field(default_factory=PipelineOptions)
    #: Live sessions classify crowded frames with a cheaper model (``--crowd-faces/--crowd-model``).
    crowd: CrowdOptions = field(default_factory=CrowdOptions)
    #: The model uploaded videos (file sessions) are analysed with (``--file-model``).
    file_model: str | Path = DEFAULT_FILE_MODEL
    #: Inference threads (``None``: one per core, at most 4; see ``server.engine``).
    workers: int | None = None
    token: str = field(default_factory=new_token)
    #: Largest request body (uploads, JSON) and WebSocket message, in bytes.
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD
    #: Largest video file of a file session (streamed to a private temporary folder), in bytes.
    max_video_bytes: int = DEFAULT_MAX_VIDEO
    #: Where uploaded videos wait while analysed (``None``: ``$TMPDIR/emotrace-uploads-<uid>``).
    upload_root: Path | None = None
    allow_remote: bool = False
    #: A session being recorded that no page streams into (no frame, no heartbeat: created and
    #: never attached, or its page hung) for this long ends as ``interrupted``. Set by
    #: ``$EMOTRACE_SERVE_IDLE_TIMEOUT_S`` (for tests), default 2 minutes.
    idle_timeout_s: float = field(default_factory=idle_timeout_from_env)


@dataclass
class ServerState:
    """Everything the handlers share: the engine, the workspace's one writer and a connection
    to read it, the live sessions."""

    config: ServerConfig
    engine: Engine
    #: Reads (lists, sessions, records, reports); writes go to ``writer``.
    store: SessionStore
    #: The one thread writing the workspace: live sessions' rows and every change a route makes.
    writer: WorkspaceWriter
    live: LiveRegistry
    #: The reading connection serves one request at a time (it never waits for the writer).
    store_lock: threading.Lock = field(default_factory=threading.Lock)
    #: The socket streaming into each live session.
    sockets: dict[int, WebSocket] = field(default_factory=dict)
    #: Uploaded videos being analysed (set by ``create_app``).
    files: FileSessions | None = None


def state(connection: HTTPConnection) -> ServerState:
    """The server's shared state, from a request or a WebSocket."""
    found: ServerState = connection.app.state.emotrace
    return found


@contextmanager
def workspace(connection: HTTPConnection) -> Iterator[SessionStore]:
    """The server's reading connection to the workspace, one user at a time."""
    s = state(connection)
    with s.store_lock:
        yield s.store


def write(connection: HTTPConnection, change: Callable[[SessionStore], T]) -> T:
    """Run ``change(store)`` on the workspace's writer thread and return its result (call from a
    worker thread: it waits)."""
    return state(connection).writer.call(change)
