"""What the server was asked for, and what its handlers share.

Routes and the WebSocket read the shared state through :func:`state`; nothing here imports
them, so the server's modules import downwards only: ``app`` -> ``routes``/``websocket`` ->
``state`` -> ``engine``/``live``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

from emotrace.server.auth import new_token
from emotrace.server.engine import Engine
from emotrace.server.live import LiveRegistry
from emotrace.video.options import PipelineOptions

if TYPE_CHECKING:
    from fastapi import WebSocket

    from emotrace.sessions.store import SessionStore

DEFAULT_PORT = 8765
DEFAULT_MAX_UPLOAD = 10 * 1024 * 1024


@dataclass
class ServerConfig:
    """What ``emotrace serve`` was asked for."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    workspace: Path | None = None
    #: Model, detector, tracking and smoothing: the options of ``emotrace analyze``.
    pipeline: PipelineOptions = field(default_factory=PipelineOptions)
    #: Inference threads (``None``: one per core, at most 4; see ``server.engine``).
    workers: int | None = None
    token: str = field(default_factory=new_token)
    #: Largest request body (uploads, JSON) and WebSocket message, in bytes.
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD
    allow_remote: bool = False


@dataclass
class ServerState:
    """Everything the handlers share: one engine, one workspace connection, live sessions."""

    config: ServerConfig
    engine: Engine
    store: SessionStore
    live: LiveRegistry
    #: The workspace connection serves one request at a time.
    store_lock: threading.Lock = field(default_factory=threading.Lock)
    #: The socket streaming into each live session.
    sockets: dict[int, WebSocket] = field(default_factory=dict)


def state(connection: HTTPConnection) -> ServerState:
    """The server's shared state, from a request or a WebSocket."""
    found: ServerState = connection.app.state.emotrace
    return found


@contextmanager
def workspace(connection: HTTPConnection) -> Iterator[SessionStore]:
    """The server's workspace connection, one user at a time."""
    s = state(connection)
    with s.store_lock:
        yield s.store
