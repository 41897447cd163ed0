"""Access control, as Jupyter does it: one random token per server process.

* The URL the server prints carries the token (``/?token=...``); the page trades it for an
  HttpOnly, SameSite=Strict cookie and redirects to a clean URL, so the token leaves the address
  bar and scripts cannot read it. SameSite=Strict keeps other sites' pages from using it.
* API clients send ``Authorization: Bearer <token>``.
* Every HTTP request and WebSocket handshake without a valid token or cookie gets 401; only
  ``GET /api/v1/health`` is open. WebSockets also check ``Origin`` (a browser always sends it): a
  page from another origin cannot use the cookie through a socket either.

These are plain ASGI middlewares so that they also guard WebSocket handshakes and static files.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from collections.abc import Iterable
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "emotrace_token"
#: Paths anyone may ``GET``: a liveness probe tells nothing about sessions.
OPEN_PATHS = frozenset({"/api/v1/health"})

_UNAUTHORIZED_PAGE = (
    "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>emotrace</title></head>"
    "<body><h1>emotrace: not signed in</h1><p>Open the address that <code>emotrace serve</code> "
    "printed in its terminal (it ends with <code>?token=...</code>).</p></body></html>"
)


def new_token() -> str:
    """A fresh random access token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) only reaches this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _json(status: int, error: str, detail: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    body = json.dumps({"error": error, "detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    return headers, body


async def _respond(
    send: Send, status: int, headers: Iterable[tuple[bytes, bytes]], body: bytes, prefix: str
) -> None:
    """An HTTP response; ``prefix`` is ``"http"`` or ``"websocket.http"`` (a refused handshake)."""
    await send({"type": f"{prefix}.response.start", "status": status, "headers": list(headers)})
    await send({"type": f"{prefix}.response.body", "body": body})


class AuthMiddleware:
    """401 for every request without the token (header, cookie, or ``/?token=`` once)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    def _valid(self, candidate: str | None) -> bool:
        return candidate is not None and secrets.compare_digest(
            candidate.encode("utf-8", "replace"), self.token.encode()
        )

    def _authorized(self, headers: Headers) -> bool:
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and self._valid(credentials.strip()):
            return True
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header is simply no cookie
            return False
        morsel = cookie.get(COOKIE)
        return morsel is not None and self._valid(morsel.value)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        path = scope["path"]
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send, headers)
            return
        if path in OPEN_PATHS and scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        if path == "/" and scope["method"] == "GET":
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            if self._valid(next(iter(query.get("token", [])), None)):
                # Trade the token for the cookie, then drop it from the address bar.
                cookie = f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"
                await _respond(
                    send,
                    303,
                    [
                        (b"location", b"/"),
                        (b"set-cookie", cookie.encode()),
                        (b"cache-control", b"no-store"),
                        (b"content-length", b"0"),
                    ],
                    b"",
                    "http",
                )
                return
        if self._authorized(headers):
            await self.app(scope, receive, send)
            return
        if path.startswith("/api/"):
            extra, body = _json(401, "unauthorized", "missing or wrong access token")
            extra.append((b"www-authenticate", b"Bearer"))
        else:
            body = _UNAUTHORIZED_PAGE.encode()
            extra = [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ]
        await _respond(send, 401, extra, body, "http")

    async def _websocket(
        self, scope: Scope, receive: Receive, send: Send, headers: Headers
    ) -> None:
        origin = headers.get("origin")
        if not self._authorized(headers):
            status, error, detail = 401, "unauthorized", "missing or wrong access token"
        elif origin is not None and origin != f"http://{headers.get('host', '')}":
            status, error, detail = 403, "forbidden", f"origin {origin} is not this server"
        else:
            await self.app(scope, receive, send)
            return
        await refuse_websocket(scope, receive, send, status, error, detail)


async def refuse_websocket(
    scope: Scope, receive: Receive, send: Send, status: int, error: str, detail: str
) -> None:
    """Refuse a WebSocket handshake with an HTTP status and a JSON body (or a close code)."""
    message: Message = await receive()
    if message["type"] != "websocket.connect":
        return
    if "websocket.http.response" in scope.get("extensions", {}):
        extra, body = _json(status, error, detail)
        await _respond(send, status, extra, body, "websocket.http")
    else:  # servers without the denial-response extension: a policy-violation close
        await send({"type": "websocket.close", "code": 1008, "reason": detail[:120]})


class BodyLimitMiddleware:
    """413 for request bodies over ``limit`` bytes, counted while they are read.

    A declared ``Content-Length`` over the limit is refused before reading anything; a chunked
    or lying body is cut off as soon as the running count passes the limit (the route's parser
    sees an :class:`HTTPException`, which the error handlers turn into the JSON 413).
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from starlette.exceptions import HTTPException

        detail = f"the request body is over the {self.limit} byte limit (--max-upload-mb)"
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            extra, body = _json(413, "request body too large", detail)
            await _respond(send, 413, extra, body, "http")
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise HTTPException(413, detail)
            return message

        await self.app(scope, limited, send)


class SecurityHeadersMiddleware:
    """Adds a strict Content-Security-Policy and friends to every response that has none.

    The page loads only its own scripts, styles and images; frames (the report) and
    connections (fetch, WebSocket) go to this server only; nothing may frame the page.
    """

    PAGE_CSP = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "media-src 'self' blob:; connect-src 'self'; frame-src 'self'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in (
                    (b"content-security-policy", self.PAGE_CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                    (b"cache-control", b"no-store"),
                ):
                    if name not in present:
                        headers.append((name, value))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
