"""The FastAPI application: page, REST API, WebSocket, and their shared state.

>>> app = create_app(ServerConfig(workspace=Path("~/therapy")))   # loads the model once
>>> # uvicorn.run(app) - or `emotrace serve`, which also prints the URL with the token
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from emotrace import __version__
from emotrace.i18n import LANGUAGES, catalog
from emotrace.server.auth import (
    AuthMiddleware,
    BodyLimitMiddleware,
    SecurityHeadersMiddleware,
    quiet_refused_handshakes,
)
from emotrace.server.engine import Engine
from emotrace.server.errors import install_error_handlers
from emotrace.server.live import LiveRegistry
from emotrace.server.state import ServerConfig, ServerState

if TYPE_CHECKING:
    from emotrace.sessions.types import SessionInfo

__all__ = ["STATIC", "ServerConfig", "ServerState", "create_app"]

STATIC = Path(str(resources.files("emotrace.server") / "static"))


def _limit_multipart_spool(limit: int) -> None:
    # Starlette spools uploaded files to a temporary file on disk beyond 1 MB. Images must never
    # touch the disk, and the body limit already bounds the size, so keep them in memory.
    from starlette.formparsers import MultiPartParser

    MultiPartParser.spool_max_size = max(MultiPartParser.spool_max_size, limit + 1)


def create_app(config: ServerConfig, engine: Engine | None = None) -> FastAPI:
    """The application for ``config``; loads the model (or uses ``engine``) and the workspace."""
    from emotrace.server import baselines, file_routes, routes, websocket
    from emotrace.server.file_sessions import FileSessions
    from emotrace.server.uploads import UploadArea
    from emotrace.sessions.store import SessionStore
    from emotrace.sessions.writer import WorkspaceWriter

    engine = engine or Engine(config.pipeline, config.workers, config.crowd, config.file_model)
    writer = WorkspaceWriter(config.workspace).start()  # creates the workspace when needed
    store = SessionStore(config.workspace)
    lock = threading.Lock()

    def lookup(session_id: int) -> SessionInfo:
        with lock:
            return store.get(session_id)

    live = LiveRegistry(engine, writer, lookup)
    # Sweeps the videos a server that died left behind, then locks this server's own folder.
    uploads = UploadArea.open(config.upload_root)
    files = FileSessions(engine, writer, uploads)
    state = ServerState(config, engine, store, writer, live, store_lock=lock, files=files)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        idle = asyncio.create_task(websocket.end_idle_sessions(state))
        yield
        idle.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await idle
        # Shutdown (Ctrl+C): live sessions end as interrupted and can be resumed later.
        await engine.call(state.live.stop_all)
        await asyncio.to_thread(files.stop_all)  # file sessions too; their videos are removed
        uploads.close()
        engine.close()
        writer.close()  # after the sessions' last rows; tries a pending purge a last time
        store.close()

    _limit_multipart_spool(config.max_upload_bytes)
    app = FastAPI(
        title="emotrace",
        version=__version__,
        description=(
            "Facial emotion recognition for clinicians: live sessions, markers, reports. "
            "Send `Authorization: Bearer <token>` (the token `emotrace serve` prints)."
        ),
        # The interactive docs load scripts from a CDN; the page must load nothing external.
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
        lifespan=lifespan,
    )
    app.state.emotrace = state
    install_error_handlers(app)
    app.include_router(routes.router)
    app.include_router(baselines.router)
    app.include_router(file_routes.router)
    app.include_router(websocket.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    # The page's translations: the same catalog the reports use (emotrace.i18n).
    @app.get("/i18n/{lang}.json", include_in_schema=False)
    def translations(lang: str) -> JSONResponse:
        if lang not in LANGUAGES:
            raise HTTPException(404, f"no translation for {lang!r}; known: {', '.join(LANGUAGES)}")
        return JSONResponse(catalog(lang))

    # HEAD for probes (the server drops the body). A route of its own, out of the schema: on the
    # GET route it would give the OpenAPI schema two operations with one operationId.
    @app.head("/api/v1/health", include_in_schema=False)
    def health_head() -> JSONResponse:
        return JSONResponse(routes.health())

    # Added last = runs first: headers on every response, then the token, then the body limit.
    app.add_middleware(
        BodyLimitMiddleware,
        limit=config.max_upload_bytes,
        limits={file_routes.UPLOAD_PATH: (config.max_video_bytes, "--max-video-mb")},
    )
    app.add_middleware(AuthMiddleware, token=config.token, bind_host=config.host)
    app.add_middleware(SecurityHeadersMiddleware)
    quiet_refused_handshakes()
    return app
