"""File sessions in the REST API: upload a video, follow its analysis, cancel it.

* ``POST /api/v1/file-sessions?patient=P&name=N&consent=true`` with the video file as the raw
  body (``application/octet-stream``; the page sends the ``File`` as it is). The body is written
  to a private temporary folder chunk by chunk (never held in memory), up to
  ``--max-video-mb``; then OpenCV must read a first frame (else 422, and no session is made),
  the session is created and the analysis starts: 201 with the session.
* ``GET /api/v1/sessions/{id}/analysis?since=F``: progress (frames, seconds of video, frames/s,
  time left, state) and the patient's valence/arousal after frame ``F``.
* ``POST /api/v1/sessions/{id}/analysis/cancel``: stop at once, keep what was analysed; the
  session ends ``interrupted``. (``POST .../finish`` stops it too, ending it ``complete``.)

The file's name is not kept (it may hold the patient's real name), and the file is removed as
soon as its analysis ends.
"""

from __future__ import annotations

import errno
import shutil
import time
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Security
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPBearer
from pydantic import BaseModel, WithJsonSchema

from emotrace.errors import SessionExists, VideoError
from emotrace.server import routes
from emotrace.server.errors import ApiError, responses
from emotrace.server.file_sessions import FileSessions
from emotrace.server.schemas import MAX_ID, NAME_SCHEMA, Name, Session
from emotrace.server.state import ServerState, state, workspace
from emotrace.server.uploads import VIDEO_NAME, private_file

UPLOAD_PATH = "/api/v1/file-sessions"
#: Bytes written to disk at a time (the body arrives in smaller pieces).
WRITE_CHUNK = 1 << 20
#: Free space an upload must leave on the temporary folder's disk.
SPARE_BYTES = 256 << 20
#: Why a session without ``consent=true`` is not recorded (422), as for live sessions.
NO_CONSENT = "a session is recorded only with the patient's consent: send consent=true"

bearer = HTTPBearer(auto_error=False, description="the token printed by `emotrace serve`")
router = APIRouter(prefix="/api/v1", responses=responses(401), dependencies=[Security(bearer)])

Pseudonym = Annotated[
    Name,
    Query(description="the patient's pseudonym, never a real name"),
    WithJsonSchema(NAME_SCHEMA),
]
SessionId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="session id")]
SessionName = Annotated[
    Name | None,
    Query(description="default: pseudonym and time"),
    WithJsonSchema({"anyOf": [NAME_SCHEMA, {"type": "null"}]}),
]


class TimelinePoint(BaseModel):
    """The patient's valence and arousal in one analysed frame (``None``: no face)."""

    frame: int
    time_s: float
    valence: float | None
    arousal: float | None


class FileAnalysisProgress(BaseModel):
    """``GET /sessions/{id}/analysis``: how far the analysis of a file session is."""

    session_id: int
    state: Literal["analysing", "complete", "cancelled", "failed"]
    frames_done: int
    #: Frames the file holds (from its header; ``None`` when it does not say).
    frames_total: int | None
    fraction: float | None
    #: Seconds of video analysed, and the video's length.
    video_s: float
    duration_s: float | None
    #: Frames analysed per second of wall-clock time, and the time left at that speed.
    fps: float
    eta_s: float | None
    elapsed_s: float
    error: str | None
    points: list[TimelinePoint]


def file_sessions(s: ServerState) -> FileSessions:
    """The server's file sessions (``create_app`` sets them)."""
    assert s.files is not None
    return s.files


async def _receive(request: Request, video: Path) -> int:
    """Write the request body to ``video`` as it arrives; its size."""
    size, pending = 0, bytearray()
    try:
        with private_file(video) as handle:
            async for chunk in request.stream():
                pending += chunk
                size += len(chunk)
                if len(pending) >= WRITE_CHUNK:
                    await run_in_threadpool(handle.write, bytes(pending))
                    pending.clear()
            if pending:
                await run_in_threadpool(handle.write, bytes(pending))
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise ApiError(507, "insufficient storage", _no_space(video.parent)) from None
        raise
    return size


def _no_space(folder: Path) -> str:
    return (
        f"not enough free disk space for this video in {folder.parent.parent} "
        "(the temporary folder); free some space or set TMPDIR to a larger disk"
    )


@router.post(
    "/file-sessions",
    response_model=Session,
    status_code=201,
    tags=["sessions"],
    responses={
        201: {"description": "the session; its analysis has started"},
        **responses(409, 413, 422, 507),
    },
    operation_id="create_file_session",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "the video file (any container and codec OpenCV/FFmpeg reads)",
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def create_file_session(
    request: Request,
    patient: Pseudonym,
    name: SessionName = None,
    consent: bool = False,
) -> dict[str, Any]:
    """Upload a video and analyse it on the server, with the pipeline of ``emotrace analyze``.

    Only with the patient's consent (``consent=true``; otherwise 422). 422 when the file is not
    a video OpenCV can read (no session is made then); 409 when the name is taken or
    the server already analyses as many files as it may; 413 over ``--max-video-mb``; 507 when
    the temporary folder's disk is full. Follow it with ``GET /sessions/{id}/analysis``.
    """
    s = state(request)
    if not consent:
        raise ApiError(422, "invalid request", NO_CONSENT)
    files = file_sessions(s)
    if files.busy():
        raise ApiError(409, "conflict", "the server is analysing other files; try again later")
    name = name or f"{patient}-{time.strftime('%Y%m%d-%H%M%S')}"

    def name_taken() -> bool:
        with workspace(request) as store:
            return any(info.name == name for info in store.sessions(patient))

    # Before the upload: a taken name must not cost the wait for a large file.
    if await run_in_threadpool(name_taken):
        message = f"session {name!r} already exists for patient {patient}; choose another name"
        raise ApiError(409, "conflict", message)
    folder = files.uploads.new_folder()
    started = False
    try:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and shutil.disk_usage(folder).free < int(declared) + SPARE_BYTES:
            raise ApiError(507, "insufficient storage", _no_space(folder))
        video = folder / VIDEO_NAME
        if await _receive(request, video) == 0:
            raise ApiError(422, "not a video", "the file is empty (0 bytes)")
        try:
            analysis = await run_in_threadpool(
                files.start, video, name=name, patient=patient, consent=consent
            )
        except VideoError as exc:
            raise ApiError(422, "not a video", str(exc)) from None
        except SessionExists:  # taken meanwhile (another client a moment ago)
            message = f"session {name!r} already exists for patient {patient}; choose another name"
            raise ApiError(409, "conflict", message) from None
        started = True
    finally:
        if not started:  # the analysis removes the folder once it runs; until then, we do
            files.uploads.remove(folder)

    return await run_in_threadpool(routes._load_session, request, analysis.session_id)


def _progress(s: ServerState, session_id: int, since: int = -1) -> dict[str, Any]:
    found = file_sessions(s).progress(session_id)
    if found is None:
        raise ApiError(404, "not found", f"no file analysis of session {session_id} on this server")
    return found.as_dict(since)


@router.get(
    "/sessions/{session_id}/analysis",
    response_model=FileAnalysisProgress,
    tags=["sessions"],
    responses=responses(404, 422),
    operation_id="file_analysis",
)
def file_analysis(
    request: Request,
    session_id: SessionId,
    since: Annotated[int, Query(ge=-1, le=MAX_ID, description="points after this frame")] = -1,
) -> dict[str, Any]:
    """How far the analysis of a file session is (state ``analysing``, ``complete``,
    ``cancelled`` or ``failed`` with ``error``), and the patient's valence and arousal per
    frame after frame ``since``. 404 for a session this server has not analysed since it
    started (look at the session itself then)."""
    return _progress(state(request), session_id, since)


@router.post(
    "/sessions/{session_id}/analysis/cancel",
    response_model=FileAnalysisProgress,
    tags=["sessions"],
    responses=responses(404, 422),
    operation_id="cancel_file_analysis",
)
async def cancel_file_analysis(request: Request, session_id: SessionId) -> dict[str, Any]:
    """Stop analysing the file now; the frames analysed are kept, the session ends
    ``interrupted`` and the video is removed. Cancelling an analysis that already ended
    changes nothing."""
    s = state(request)
    await run_in_threadpool(file_sessions(s).stop, session_id)
    return _progress(s, session_id)
