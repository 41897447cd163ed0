"""Every error the API returns is JSON ``{"error": "...", "detail": ...}`` with a fitting status.

400 (a ``Host`` that is not this machine), 401 (no or wrong token), 403 (a change made with
the cookie from another origin; those three from :mod:`emotrace.server.auth`), 404 (unknown
session or marker), 409 (name taken, session being recorded or already finished), 413 (body over
the limit), 415 (not a JPEG/PNG), 422 (invalid fields), 503 (the workspace or a helper program
is unavailable). A catch-all handler turns anything unforeseen into a JSON 500 and logs it, but
bad input must never get there: the tests fuzz the API and fail on any 5xx.
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from emotrace.errors import EmotraceError, MissingDependencyError, StoreError
from emotrace.server.schemas import ErrorBody

log = logging.getLogger("emotrace.server")


class ApiError(Exception):
    """An error with its HTTP status, raised by the route handlers."""

    def __init__(self, status: int, error: str, detail: Any = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail


def error_response(
    status: int, error: str, detail: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The JSON error body with ``status``."""
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower()
    except ValueError:
        return "error"


#: Documented error responses, for the OpenAPI schema.
def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the error model under each status."""
    return {s: {"model": ErrorBody, "description": _phrase(s)} for s in statuses}


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.error, exc.detail)


def _allowed_methods(request: Request) -> str:
    """Every method the API accepts at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for template, operations in request.app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, request.url.path):
            methods |= {m.upper() for m in operations if m != "parameters"}
    return ", ".join(sorted(methods))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    status, headers = exc.status_code, dict(exc.headers or {})
    detail = exc.detail if exc.detail != HTTPStatus(status).phrase else None
    if status == 400:
        # A body that is not JSON (or not multipart) is bad input like a bad field: 422.
        status = 422
    if status == 405:
        headers["Allow"] = _allowed_methods(request)
    return error_response(status, _phrase(status), detail, headers or None)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Location, message, type and the rule's limits (ctx: {"ge": 0}, so a page can say the rule in
    # its own language); the offending input is not echoed back.
    fields = []
    for error in exc.errors():
        field = {k: error.get(k) for k in ("loc", "msg", "type")}
        limits = {
            k: v
            for k, v in (error.get("ctx") or {}).items()
            if isinstance(v, int | float | str) and not isinstance(v, bool)
        }
        if limits:
            field["ctx"] = limits
        fields.append(field)
    return error_response(422, "invalid request", jsonable_encoder(fields))


async def _emotrace_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, StoreError | MissingDependencyError):
        return error_response(503, "unavailable", str(exc))
    return error_response(422, "invalid request", str(exc))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, "internal error", f"{type(exc).__name__}: {exc}")


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception to a JSON error response."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(EmotraceError, _emotrace_error)
    app.add_exception_handler(Exception, _unexpected)
