"""``/api/v1/sessions/{id}/live``: the page streams frames and gets one result per frame.

Protocol (the page in ``static/js/live.js`` is the reference client):

* client -> server, binary: 8 bytes little-endian float64 time (NaN: "now", for cameras and
  screens; the position in seconds for a video file) followed by one JPEG (or PNG) frame. The
  client sends the next frame only when the result of the previous one has arrived, so nothing
  queues and latency stays one round trip whatever the server's speed.
* server -> client, text JSON: ``{"type": "ready", "heartbeat_s": s, ...}`` once, then
  ``{"type": "result", "faces": [...], "patient": i, "valence": v, "arousal": a, ...}`` per frame
  (``"error"`` for a bad frame), and ``{"type": "finished", "session": {...}}`` when the session
  ends.
* client -> server, text JSON: ``{"type": "stop"}`` (finish the session), ``{"type": "patient",
  "track_id": N|null}`` (the clicked face is the patient), ``{"type": "pause"|"resume"}``
  (frames sent while paused are answered with an error and not recorded), ``{"type":
  "heartbeat"}`` (no answer: the page is there, paused or not; every ``heartbeat_s`` of
  ``ready``).

A socket that drops without ``stop`` leaves the session ``interrupted`` with everything received;
so does a session that gets no message (frame, heartbeat...) for the server's idle timeout
(``ServerConfig.idle_timeout_s``, 2 minutes), whether a socket is attached or none ever was.
Connecting again to an interrupted session resumes it; a complete one is refused (409).

One page streams into a session at a time (another tab, a second window):

* A socket to a session that a page streams into now is accepted, sent ``{"type":
  "live_elsewhere", "detail": ...}`` and closed with code 4409 (:data:`LIVE_ELSEWHERE`); the
  session goes on as it was. The session's ``streaming`` field in the API says so beforehand.
* Connecting with ``?take_over=1`` takes the session over: the page streaming into it gets
  ``{"type": "taken_over", "detail": ...}`` and its socket is closed with code 4410
  (:data:`TAKEN_OVER`); the new socket gets ``ready`` and goes on with the same recording
  (unpaused). The page that lost the session stops showing live data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, WebSocket
from fastapi.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect, WebSocketState

from emotrace.errors import EmotraceError, SessionError
from emotrace.server.auth import note_refused_handshake
from emotrace.server.errors import error_response
from emotrace.server.state import ServerState, state
from emotrace.sessions.types import COMPLETE, INTERRUPTED

if TYPE_CHECKING:
    from emotrace.server.live import LiveSession
    from emotrace.sessions.types import SessionInfo

log = logging.getLogger("emotrace.server")
router = APIRouter()

#: Close code of a socket refused because another page streams into the session.
LIVE_ELSEWHERE = 4409
#: Close code of the socket whose session another page took over (``?take_over=1``).
TAKEN_OVER = 4410


async def _refuse(websocket: WebSocket, status: int, error: str, detail: str) -> None:
    note_refused_handshake(status, detail)
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(error_response(status, error, detail))
    else:
        await websocket.close(code=1008, reason=detail[:120])


async def _attach(s: ServerState, session_id: int) -> tuple[LiveSession | None, str, int]:
    """The live session to stream into, resuming an interrupted one; else an error status."""
    live = s.live.sessions.get(session_id)
    if live is not None:
        return live, "", 0

    def lookup() -> SessionInfo | None:
        with s.store_lock:
            try:
                return s.store.get(session_id)
            except SessionError:
                return None

    info = await run_in_threadpool(lookup)
    if info is None:
        return None, f"no session {session_id}", 404
    if info.status != INTERRUPTED:
        return None, f"session {info.name!r} is {info.status}; it cannot be resumed", 409
    if not info.consent:  # as POST /sessions: nothing is recorded without the patient's consent
        return None, f"session {info.name!r} has no consent recorded; it cannot be resumed", 409
    try:
        live = await s.engine.call(
            s.live.start,
            info.name,
            info.patient,
            consent=info.consent,
            notes=info.notes,
            source=str(info.settings.get("source", "camera")),
            track_id=info.settings.get("patient_track"),
            resume=True,
        )
    except EmotraceError as exc:
        return None, str(exc), 409
    return live, "resumed", 0


@router.websocket("/api/v1/sessions/{session_id}/live")
async def live_socket(websocket: WebSocket, session_id: int, take_over: bool = False) -> None:
    """Stream frames into a session (see the module docstring)."""
    s = state(websocket)
    live, note, status = await _attach(s, session_id)
    if live is None:
        await _refuse(websocket, status, "not found" if status == 404 else "conflict", note)
        return
    await websocket.accept()
    previous = s.sockets.get(session_id)
    if previous is not None and not _connected(previous):
        previous = None  # a page that has gone: nothing to take over from
    if previous is not None and not take_over:
        # Accepted to say why: a browser cannot read a refused handshake's answer.
        detail = "this session is being recorded in another tab or window"
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.send_json({"type": "live_elsewhere", "detail": detail})
        await _close(websocket, LIVE_ELSEWHERE, detail)
        return
    live.touch()
    live.generation += 1
    live.paused = False  # a reloaded page starts unpaused
    generation = live.generation
    s.sockets[session_id] = websocket
    if previous is not None:  # taken over: the other page stops streaming and says so
        detail = "another tab or window took this session over"
        with contextlib.suppress(Exception):  # it may be gone already
            await previous.send_json({"type": "taken_over", "detail": detail})
        await _close(previous, TAKEN_OVER, detail)
    await websocket.send_json(
        {
            "type": "ready",
            "session_id": session_id,
            "resumed": note == "resumed",
            "classes": list(s.engine.classes),
            "time_s": round(live.now(), 3),
            # How often a page that sends no frame (paused) says it is there.
            "heartbeat_s": heartbeat_s(s.config.idle_timeout_s),
        }
    )
    finished = False
    try:
        finished = await _serve(s, websocket, live, generation)
    except Exception:  # a failed frame or recorder: log it, keep the session (interrupted)
        log.exception("live session %s failed", session_id)
    finally:
        if s.sockets.get(session_id) is websocket:
            del s.sockets[session_id]
        current = s.live.sessions.get(session_id) is live and live.generation == generation
        if current and not finished:
            await s.engine.call(s.live.stop, session_id, INTERRUPTED)
        await _close(websocket)


def heartbeat_s(idle_timeout_s: float) -> float:
    """How often a page sends a heartbeat: well within the idle timeout, at most every 20 s."""
    return round(min(20.0, idle_timeout_s / 4), 3)


async def _serve(s: ServerState, websocket: WebSocket, live: LiveSession, generation: int) -> bool:
    """Answer messages until the socket closes; ``True`` when the client stopped the session."""
    session_id = live.session_id
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return False
        live.touch()
        if s.live.sessions.get(session_id) is not live or live.generation != generation:
            return False  # finished through the API, or taken over by a newer socket
        data = message.get("bytes")
        if data is not None and live.paused:  # paused means nothing is recorded
            await websocket.send_json({"type": "error", "detail": "paused: send resume first"})
            continue
        if data is not None:
            reply: dict[str, Any] = await s.engine.call(live.process_frame, s.engine, data)
            await websocket.send_json(reply)
            continue
        try:
            command = json.loads(message.get("text") or "")
            kind = command.get("type") if isinstance(command, dict) else None
        except json.JSONDecodeError:
            kind = None
        if kind == "stop":
            info = await s.engine.call(s.live.stop, session_id, COMPLETE)
            session = None if info is None else {**info.to_dict(), "live": False}
            await websocket.send_json({"type": "finished", "session": session})
            return True
        if kind == "patient":
            track = command.get("track_id")
            if track is not None and (isinstance(track, bool) or not isinstance(track, int)):
                await websocket.send_json({"type": "error", "detail": "track_id: int or null"})
                continue
            await s.engine.call(live.set_patient, track)
            await websocket.send_json({"type": "patient", "track_id": track})
        elif kind == "heartbeat":
            continue  # no answer: it would count as the answer to a frame
        elif kind in ("pause", "resume"):
            live.paused = kind == "pause"
            await websocket.send_json({"type": "paused" if live.paused else "resumed"})
        else:
            await websocket.send_json({"type": "error", "detail": "unknown message"})


def _connected(websocket: WebSocket) -> bool:
    return (
        websocket.application_state == WebSocketState.CONNECTED
        and websocket.client_state != WebSocketState.DISCONNECTED  # the client has gone
    )


async def _close(websocket: WebSocket, code: int = 1000, reason: str = "") -> None:
    if _connected(websocket):
        # Already closing from the other side: RuntimeError, or WebSocketDisconnect.
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(code, reason)


async def notify_finished(s: ServerState, session_id: int, session: dict[str, Any]) -> None:
    """Tell the page streaming into ``session_id`` (if any) that the session was finished."""
    websocket = s.sockets.pop(session_id, None)
    if websocket is None:
        return
    with contextlib.suppress(Exception):  # the page is gone already; nothing to tell
        await websocket.send_json({"type": "finished", "session": session})
    await _close(websocket)


async def end_idle_sessions(s: ServerState) -> None:
    """Forever (a task of the server's lifespan): end as ``interrupted`` the live sessions that
    no page has streamed into for ``s.config.idle_timeout_s`` (created and never attached, or a
    page that hung), and close their sockets; the page offers to resume them."""
    timeout = s.config.idle_timeout_s
    while True:
        await asyncio.sleep(min(5.0, timeout / 4))
        for session_id in s.live.idle(timeout):
            try:
                info = await s.engine.call(s.live.stop, session_id, INTERRUPTED, idle_s=timeout)
            except Exception:  # a failing recorder must not end the sweep (nor the server)
                log.exception("ending idle session %s failed", session_id)
                continue
            if info is None:
                continue  # a page streams into it again, or it ended meanwhile
            print(
                f"emotrace: session {session_id} got no frame or heartbeat for {timeout:g} s; "
                "ended as interrupted (it can be resumed)",
                file=sys.stderr,
                flush=True,
            )
            websocket = s.sockets.pop(session_id, None)
            if websocket is not None:
                await _close(websocket)
