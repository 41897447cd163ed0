"""The REST API under ``/api/v1`` (the OpenAPI schema is at ``/api/v1/openapi.json``).

Handlers stay thin: sessions, markers, exports and reports come from :mod:`emotrace.sessions`,
images go through the shared :class:`~emotrace.server.engine.Engine`.
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import quote

import numpy as np
from fastapi import APIRouter, File, Query, Request, Response, Security, UploadFile
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPBearer

from emotrace import __version__
from emotrace.errors import SessionBusy, SessionError, SessionExists
from emotrace.i18n import LANGUAGES, check_language
from emotrace.server.errors import ApiError, responses
from emotrace.server.images import ImageRejected, face_records
from emotrace.server.schemas import (
    MAX_ID,
    AnalyzeResult,
    DeletePending,
    Health,
    Info,
    Marker,
    MarkerCreate,
    MarkerUpdate,
    RecordsPage,
    Segments,
    Series,
    Session,
    SessionCreate,
    SessionDetail,
    SessionUpdate,
)
from emotrace.server.state import ServerState, state, workspace, write
from emotrace.sessions import rules
from emotrace.sessions.store import PURGE_PENDING
from emotrace.sessions.types import COMPLETE, INTERRUPTED, RECORDING, SessionInfo

if TYPE_CHECKING:
    from emotrace.sessions.store import SessionStore

# The middleware checks the token; this only documents it in the OpenAPI schema.
bearer = HTTPBearer(auto_error=False, description="the token printed by `emotrace serve`")
router = APIRouter(prefix="/api/v1", responses=responses(401))
api = APIRouter(dependencies=[Security(bearer)])

SessionId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="session id")]
MarkerId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="marker id")]
#: Report/export/csv media types, for the schema and the responses.
MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}


#: OpenAPI links: what a client (or a fuzzer) can do with a created session or marker.
SESSION_LINKS = {
    op: {"operationId": op, "parameters": {"session_id": "$response.body#/id"}}
    for op in (
        "get_session",
        "update_session",
        "list_markers",
        "add_marker",
        "records",
        "series",
        "export",
        "report",
        "finish_session",
        "delete_session",
    )
}
MARKER_LINKS = {
    op: {
        "operationId": op,
        "parameters": {"session_id": "$request.path.session_id", "marker_id": "$response.body#/id"},
    }
    for op in ("edit_marker", "delete_marker")
}
#: Sessions one server records at once; beyond, creating another is a 409.
MAX_LIVE = 32
#: Why a session without ``consent: true`` is not recorded (422).
NO_CONSENT = "a session is recorded only with the patient's consent: send consent: true"


def attachment(filename: str) -> str:
    """A download's Content-Disposition: a pseudonym with accents ("Núñez-3") goes in RFC 6266's
    ``filename*`` (headers are Latin-1), with an ASCII ``filename`` for old clients."""
    plain = "".join(c if c.isascii() and c.isprintable() and c != '"' else "_" for c in filename)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename)}"


def _session(s: ServerState, info: SessionInfo) -> dict[str, Any]:
    # A session being ended is stored as ended a moment before it leaves the live sessions.
    live = info.status == RECORDING and info.id in s.live.sessions
    return {**info.to_dict(), "live": live, "streaming": live and info.id in s.sockets}


def _get(store: SessionStore, session_id: int) -> SessionInfo:
    try:
        return store.get(session_id)
    except SessionError:
        raise ApiError(404, "not found", f"no session {session_id}") from None


# -- service -------------------------------------------------------------------------------


@router.get("/health", response_model=Health, tags=["service"], operation_id="health")
def health() -> dict[str, str]:
    """Liveness probe; the only endpoint that needs no token."""
    return {"status": "ok", "version": __version__}


@api.get("/info", response_model=Info, tags=["service"], operation_id="info")
def info(request: Request) -> dict[str, Any]:
    """Model, classes, detector, upload limit and versions."""
    import cv2
    import fastapi
    import numpy
    import onnxruntime

    s = state(request)
    spec = s.engine.recognizer.classifier.spec
    return {
        "version": __version__,
        "model": {
            "name": spec.name,
            "version": spec.version,
            "sha256": s.engine.model_info.sha256,
            "classes": list(spec.classes),
            "input_size": spec.input_size,
        },
        "detector": s.engine.detector_name,
        "max_upload_bytes": s.config.max_upload_bytes,
        "workspace": str(s.store.path),
        "versions": {
            "python": sys.version.split()[0],
            "numpy": numpy.__version__,
            "opencv": cv2.__version__,
            "onnxruntime": onnxruntime.__version__,
            "fastapi": fastapi.__version__,
        },
    }


@api.post(
    "/analyze",
    response_model=AnalyzeResult,
    tags=["images"],
    responses=responses(413, 415, 422),
    operation_id="analyze",
)
async def analyze(
    request: Request, file: Annotated[UploadFile, File(description="a JPEG or PNG image")]
) -> dict[str, Any]:
    """Faces, boxes, labels and probabilities in one image, as ``emotrace predict --json``.

    The image is decoded in memory and never stored.
    """
    s = state(request)
    data = await file.read()
    try:
        faces, image = await s.engine.call(s.engine.recognize, data)
    except ImageRejected as exc:
        raise ApiError(415 if exc.unsupported else 422, "not an image", str(exc)) from None
    records = [{k: v for k, v in r.items() if k != "track_id"} for r in face_records(faces)]
    return {
        "file": file.filename or "",
        "faces": records,
        "error": None,
        "width": int(image.shape[1]),
        "height": int(image.shape[0]),
    }


# -- sessions ------------------------------------------------------------------------------


@api.get(
    "/sessions",
    response_model=list[Session],
    tags=["sessions"],
    responses=responses(422),
    operation_id="list_sessions",
)
def list_sessions(
    request: Request,
    patient: Annotated[str | None, Query(max_length=64, description="pseudonym")] = None,
    status: Literal["recording", "complete", "interrupted"] | None = None,
) -> list[dict[str, Any]]:
    """All sessions, oldest first (of one patient, in one state)."""
    s = state(request)
    with workspace(request) as store:
        infos = store.sessions(patient)
    return [_session(s, i) for i in infos if status is None or i.status == status]


@api.post(
    "/sessions",
    response_model=Session,
    status_code=201,
    tags=["sessions"],
    responses={
        201: {"description": "the session, being recorded", "links": SESSION_LINKS},
        **responses(409, 413, 422),
    },
    operation_id="create_session",
)
async def create_session(request: Request, body: SessionCreate) -> dict[str, Any]:
    """Start recording a session; stream frames to ``/api/v1/sessions/{id}/live``.

    Only with the patient's consent (``consent: true``; otherwise 422). A session that no page
    streams into (no frames, no heartbeat) for the server's idle timeout ends as ``interrupted``.
    """
    s = state(request)
    if not body.consent:
        raise ApiError(422, "invalid request", NO_CONSENT)
    if len(s.live.sessions) >= MAX_LIVE:
        raise ApiError(409, "conflict", f"{MAX_LIVE} sessions are being recorded; stop one first")
    name = body.name or f"{body.patient}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        live = await s.engine.call(
            s.live.start,
            name,
            body.patient,
            consent=body.consent,
            notes=body.notes,
            source=body.source,
            track_id=body.patient_track,
        )
    except SessionExists:  # the name is taken (perhaps by another client a moment ago)
        message = f"session {name!r} already exists for patient {body.patient}; choose another name"
        raise ApiError(409, "conflict", message) from None
    return await run_in_threadpool(_load_session, request, live.session_id)


def _load_session(request: Request, session_id: int) -> dict[str, Any]:
    with workspace(request) as store:
        return _session(state(request), _get(store, session_id))


@api.get(
    "/sessions/{session_id}",
    response_model=SessionDetail,
    tags=["sessions"],
    responses=responses(404, 422),
    operation_id="get_session",
)
def get_session(request: Request, session_id: SessionId) -> dict[str, Any]:
    """One session with its notes and markers."""
    with workspace(request) as store:
        info = _get(store, session_id)
        markers = store.markers(info.id)
    return {
        **_session(state(request), info),
        "notes": info.notes,
        "marker_list": [vars(m) for m in markers],
    }


@api.patch(
    "/sessions/{session_id}",
    response_model=Session,
    tags=["sessions"],
    responses=responses(404, 413, 422),
    operation_id="update_session",
)
def update_session(request: Request, session_id: SessionId, body: SessionUpdate) -> dict[str, Any]:
    """Change the session's notes and/or consent."""

    def change(store: SessionStore) -> SessionInfo:
        _get(store, session_id)
        return store.update(session_id, notes=body.notes, consent=body.consent)

    return _session(state(request), write(request, change))


@api.post(
    "/sessions/{session_id}/finish",
    response_model=Session,
    tags=["sessions"],
    responses=responses(404, 409, 422),
    operation_id="finish_session",
)
async def finish_session(request: Request, session_id: SessionId) -> dict[str, Any]:
    """Stop recording (or analysing a file): the session becomes ``complete`` (an interrupted
    one too)."""
    s = state(request)
    if session_id in s.live.sessions:
        from emotrace.server.websocket import notify_finished

        await s.engine.call(s.live.stop, session_id, COMPLETE)
        session = await run_in_threadpool(_load_session, request, session_id)
        await notify_finished(s, session_id, session)
        return session
    # A file being analysed stops here, keeping what was analysed, as complete.
    files = s.files
    if files is not None and await run_in_threadpool(files.stop, session_id, COMPLETE):
        return await run_in_threadpool(_load_session, request, session_id)

    def finish(store: SessionStore) -> SessionInfo:
        try:
            return rules.finish(store, _get(store, session_id).id)
        except SessionBusy as exc:
            raise ApiError(409, "conflict", str(exc)) from None

    return _session(s, await run_in_threadpool(write, request, finish))


@api.delete(
    "/sessions/{session_id}",
    status_code=204,
    tags=["sessions"],
    responses={
        202: {"model": DeletePending, "description": "Deleted; erasing from disk is pending"},
        **responses(404, 409, 422),
    },
    operation_id="delete_session",
)
async def delete_session(request: Request, session_id: SessionId) -> Response:
    """Delete the session and really erase its numbers, markers and notes: 204 when they are
    gone from the workspace files, 202 (``purged: false``) when another process reading the
    workspace keeps them in its write-ahead log for now; the server erases them as soon as that
    reader finishes, or when it stops."""
    s = state(request)
    if session_id in s.live.sessions:
        raise ApiError(409, "conflict", "the session is being recorded; stop it first")

    def delete(store: SessionStore) -> bool:
        # On the writer thread, waited for from a worker thread: SQLite may wait (briefly) for
        # locks, and the event loop must not.
        info = _get(store, session_id)
        if info.status == RECORDING:
            raise ApiError(409, "conflict", f"session {info.name!r} is being recorded")
        return store.delete([info.id])

    if await run_in_threadpool(write, request, delete):
        return Response(status_code=204)
    s.writer.finish_purge_later()
    print(f"emotrace: warning: session {session_id} deleted; {PURGE_PENDING}", file=sys.stderr)
    detail = f"{PURGE_PENDING}; the server completes it as soon as the reader finishes"
    return JSONResponse({"id": session_id, "purged": False, "detail": detail}, status_code=202)


# -- markers -------------------------------------------------------------------------------


@api.get(
    "/sessions/{session_id}/markers",
    response_model=list[Marker],
    tags=["markers"],
    responses=responses(404, 422),
    operation_id="list_markers",
)
def list_markers(request: Request, session_id: SessionId) -> list[dict[str, Any]]:
    """The session's markers in time order."""
    with workspace(request) as store:
        return [vars(m) for m in store.markers(_get(store, session_id).id)]


@api.post(
    "/sessions/{session_id}/markers",
    response_model=Marker,
    status_code=201,
    tags=["markers"],
    responses={
        201: {"description": "the new marker", "links": MARKER_LINKS},
        **responses(404, 413, 422),
    },
    operation_id="add_marker",
)
def add_marker(request: Request, session_id: SessionId, body: MarkerCreate) -> dict[str, Any]:
    """A marker at ``time_s``; without it, now (the moment of the click) in a live session, or
    in an interrupted one on the clock it resumes on (seconds since its start)."""
    s = state(request)
    time_s = body.time_s
    live = s.live.sessions.get(session_id)
    if time_s is None and live is not None:
        time_s = max(0.0, live.now())

    def add(store: SessionStore) -> dict[str, Any]:
        info = _get(store, session_id)
        at = time_s
        if at is None and info.status == INTERRUPTED:  # a reloaded page marks before Resume
            at = max(0.0, time.time() - info.started_at)
        if at is None:
            raise ApiError(422, "invalid request", "the session is not live: give time_s")
        return vars(
            store.add_marker(info.id, body.label, at, end_s=body.end_s, excluded=body.excluded)
        )

    return write(request, add)


@api.patch(
    "/sessions/{session_id}/markers/{marker_id}",
    response_model=Marker,
    tags=["markers"],
    responses=responses(404, 413, 422),
    operation_id="edit_marker",
)
def edit_marker(
    request: Request, session_id: SessionId, marker_id: MarkerId, body: MarkerUpdate
) -> dict[str, Any]:
    """Change a marker's label and/or time."""

    def edit(store: SessionStore) -> dict[str, Any]:
        info = _get(store, session_id)
        try:
            store.marker(info.id, marker_id)
        except SessionError as exc:
            raise ApiError(404, "not found", str(exc)) from None
        # An explicit "end_s": null makes a segment a point marker again; leaving it out keeps it.
        point = "end_s" in body.model_fields_set and body.end_s is None
        return vars(
            store.edit_marker(
                info.id,
                marker_id,
                label=body.label,
                time_s=body.time_s,
                end_s=body.end_s,
                point=point,
                excluded=body.excluded,
            )
        )

    return write(request, edit)


@api.delete(
    "/sessions/{session_id}/markers/{marker_id}",
    status_code=204,
    tags=["markers"],
    responses=responses(404, 422),
    operation_id="delete_marker",
)
def delete_marker(request: Request, session_id: SessionId, marker_id: MarkerId) -> Response:
    """Delete a marker."""

    def remove(store: SessionStore) -> None:
        info = _get(store, session_id)
        try:
            store.delete_marker(info.id, marker_id)
        except SessionError as exc:
            raise ApiError(404, "not found", str(exc)) from None

    write(request, remove)
    return Response(status_code=204)


@api.get(
    "/sessions/{session_id}/segments",
    response_model=Segments,
    tags=["markers"],
    responses=responses(404, 422),
    operation_id="segments",
)
def segments(request: Request, session_id: SessionId) -> dict[str, Any]:
    """Figures per segment (shares, mean probabilities, valence/arousal, their difference from
    the session average and from the patient's baseline when the session has one), and the
    excluded stretches, which every figure leaves out."""
    with workspace(request) as store:
        summary, _ = rules.report_summaries(store, _get(store, session_id).id)
    figures = summary.to_dict()
    return {k: figures[k] for k in ("excluded", "excluded_s")} | {
        "segments": figures["segment_stats"]
    }


# -- records, exports, report --------------------------------------------------------------


@api.get(
    "/sessions/{session_id}/records",
    response_model=RecordsPage,
    tags=["records"],
    responses=responses(404, 422),
    operation_id="records",
)
def records(
    request: Request,
    session_id: SessionId,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    """Per-frame rows (the export's columns), ``limit`` from ``offset``."""
    from emotrace.sessions.export import columns

    with workspace(request) as store:
        info = _get(store, session_id)
        page = store.load(info.id, offset=offset, limit=limit)  # only this page is read
    table = columns(page)
    names = list(table)
    rows = [{n: table[n][i] for n in names} for i in range(len(page))]
    return {"total": info.frames, "offset": offset, "limit": limit, "records": rows}


@api.get(
    "/sessions/{session_id}/series",
    response_model=Series,
    tags=["records"],
    responses=responses(404, 422),
    operation_id="series",
)
def series(
    request: Request,
    session_id: SessionId,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 5000,
) -> dict[str, Any]:
    """The patient's valence and arousal per frame, ``limit`` frames from ``offset``: what a
    live view draws, for a page that opens a session already recorded (a reload, another tab).
    A page asks for the last ``limit`` frames (``offset = total - limit``), then for what came
    after."""
    from emotrace.sessions.circumplex import RUSSELL_1980

    with workspace(request) as store:
        info = _get(store, session_id)
        page = store.load(info.id, offset=offset, limit=limit)  # only this page is read
    probs = page.probabilities.astype(np.float64)
    probs[~page.visible] = np.nan  # as the exports: no face, no valence
    va = RUSSELL_1980.valence_arousal(probs, page.classes).round(4)

    def values(column: np.ndarray) -> list[float | None]:
        return [None if math.isnan(v) else v for v in column.tolist()]

    return {
        "total": info.frames,
        "offset": offset,
        "time_s": page.times.round(3).tolist(),
        "valence": values(va[:, 0]),
        "arousal": values(va[:, 1]),
    }


@api.get(
    "/sessions/{session_id}/export",
    tags=["records"],
    response_class=Response,
    responses={
        200: {
            "description": "the per-frame records as a file",
            "content": {m.split(";")[0]: {} for m in MEDIA.values()},
        },
        **responses(404, 422, 503),
    },
    operation_id="export",
)
def export(
    request: Request,
    session_id: SessionId,
    format: Literal["csv", "jsonl", "parquet"] = "csv",
) -> Response:
    """Download the records as CSV, JSON Lines (with markers) or Parquet (with markers)."""
    from emotrace.sessions.export import export_session

    with workspace(request) as store:
        data = store.load(_get(store, session_id).id)
    # export_session writes files (numbers only, as the CLI does); read them back and delete.
    with tempfile.TemporaryDirectory(prefix="emotrace-export-") as folder:
        path = Path(folder) / f"{data.info.file_stem}.{format}"
        export_session(data, path, format)
        content = path.read_bytes()
    return Response(
        content,
        media_type=MEDIA[format],
        headers={"content-disposition": attachment(path.name)},
    )


def _report_html(
    request: Request, session_id: int, compare: bool, notes: bool, lang: str
) -> tuple[SessionInfo, str]:
    from emotrace.sessions import render_report

    check_language(lang)  # before any work: an unknown language is a 422
    with workspace(request) as store:
        info = _get(store, session_id)
        summary, earlier = rules.report_summaries(store, info.id, trend=compare)
    return info, render_report(summary, earlier, notes=notes, lang=lang)


#: ``?notes=true``: the clinician's private notes are left out of a report unless asked for.
NotesQuery = Annotated[
    bool, Query(description="include the session's private notes (left out by default)")
]


#: ``?lang=es``: the report's language (:data:`emotrace.i18n.LANGUAGES`; another is a 422).
LangQuery = Annotated[
    str,
    Query(
        max_length=16,
        description="the report's language: its text, numbers, dates and emotion names",
        json_schema_extra={"enum": list(LANGUAGES)},
    ),
]


#: The report is framed by the page, so it may be embedded by this origin (and nothing else).
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"


@api.get(
    "/sessions/{session_id}/report",
    tags=["records"],
    responses={
        200: {"description": "the self-contained report", "content": {"text/html": {}}},
        **responses(404, 422),
    },
    operation_id="report",
)
def report(
    request: Request,
    session_id: SessionId,
    compare: bool = False,
    download: bool = False,
    notes: NotesQuery = False,
    lang: LangQuery = "en",
) -> HTMLResponse:
    """The clinician's report (``emotrace report``) as one self-contained HTML page.

    ``compare``: add the trend over the earlier sessions of the same pseudonym (as
    ``emotrace report --trend``). ``notes``: include the session's notes (as ``emotrace report
    --notes``); without it the report has none. ``lang``: its language (as ``emotrace report
    --lang``), English by default.
    """
    info, html = _report_html(request, session_id, compare, notes, lang)
    headers = {"content-security-policy": REPORT_CSP}
    if download:
        headers["content-disposition"] = attachment(f"{info.file_stem}_report.html")
    return HTMLResponse(html, headers=headers)


@api.get(
    "/sessions/{session_id}/report.pdf",
    tags=["records"],
    response_class=Response,
    responses={
        200: {"description": "the report printed to PDF", "content": {"application/pdf": {}}},
        **responses(404, 422, 503),
    },
    operation_id="report_pdf",
)
def report_pdf(
    request: Request,
    session_id: SessionId,
    compare: bool = False,
    notes: NotesQuery = False,
    lang: LangQuery = "en",
) -> Response:
    """The report as PDF (printed by a local Chromium; 503 without one); ``compare``, ``notes``
    and ``lang`` as for the HTML report."""
    from emotrace.sessions.report import print_pdf

    info, html = _report_html(request, session_id, compare, notes, lang)
    with tempfile.TemporaryDirectory(prefix="emotrace-report-") as folder:
        page = Path(folder) / "report.html"
        page.write_text(html, encoding="utf-8")
        pdf = print_pdf(page, Path(folder) / "report.pdf").read_bytes()
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"content-disposition": attachment(f"{info.file_stem}_report.pdf")},
    )


router.include_router(api)
