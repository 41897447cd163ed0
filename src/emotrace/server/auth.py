"""Access control, as Jupyter does it: one random token per server process.

* The URL the server prints carries the token (``/?token=...``); the page trades it for an
  HttpOnly, SameSite=Strict cookie and goes on to a clean URL, so the token leaves the address
  bar and scripts cannot read it. SameSite=Strict keeps other sites' pages from using it.
* API clients send ``Authorization: Bearer <token>``.
* Every HTTP request and WebSocket handshake without a valid token or cookie gets 401; only
  ``GET``/``HEAD /api/v1/health`` is open.
* ``Host`` must name this machine (127.0.0.1, localhost, [::1]) or the ``--host`` given, with any
  port; anything else is a 400 before the token is even looked at (DNS rebinding: a page from
  ``evil.example`` whose name now resolves to 127.0.0.1 is still sent with ``Host: evil.example``).
* Cookies are shared by every port of a host, and SameSite does not tell ports apart, so a page
  served by any other local web app is "same site" and its requests carry the cookie. Hence a
  request authenticated by the cookie that changes something (any method but GET, HEAD, OPTIONS)
  must prove it comes from this server's own page: ``Origin`` equal to this server's origin, or,
  without ``Origin``, ``Sec-Fetch-Site: same-origin`` (browsers send one or both). A WebSocket
  handshake with an ``Origin`` other than this server's is refused whatever its credentials.
  Requests with ``Authorization: Bearer`` come from programs, not pages, and need no ``Origin``.
* The Cookie header is parsed leniently (as browsers write it, like Starlette's own parser): a
  malformed cookie set by another local app must not hide the token.

These are plain ASGI middlewares so that they also guard WebSocket handshakes and static files.
"""

from __future__ import annotations

import base64
import contextvars
import hashlib
import ipaddress
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "emotrace_token"
#: Paths anyone may ``GET`` or ``HEAD``: a liveness probe tells nothing about sessions.
OPEN_PATHS = frozenset({"/api/v1/health"})
#: Methods that change nothing; every other one needs proof of origin when sent with the cookie.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Names that always mean this machine, whatever ``--host`` is.
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})
#: Seconds between two log lines about refused WebSocket handshakes.
REFUSAL_LOG_INTERVAL = 10.0

log = logging.getLogger("emotrace.server")

_UNAUTHORIZED_PAGE = (
    "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>emotrace</title></head>"
    "<body><h1>emotrace: not signed in</h1><p>Open the address that <code>emotrace serve</code> "
    "printed in its terminal (it ends with <code>?token=...</code>). A restarted server has a new "
    "token, so an address from before the restart no longer works; <code>emotrace serve "
    "--open</code> opens the new one in the browser for you.</p></body></html>"
)
# The page that goes on to "/" (keeping the fragment) after the token was traded for the cookie,
# for a sign-in that came from another site or a file (see AuthMiddleware._sign_in).
_SIGN_IN_SCRIPT = 'location.replace("/" + location.hash);'
_SIGN_IN_PAGE = (
    "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>emotrace</title>"
    f"<script>{_SIGN_IN_SCRIPT}</script>"
    "<noscript><meta http-equiv='refresh' content='0;url=/'></noscript></head>"
    "<body><p>Signing in to <a href='/'>emotrace</a>...</p></body></html>"
)
_SIGN_IN_CSP = (
    "default-src 'none'; script-src 'sha256-"
    + base64.b64encode(hashlib.sha256(_SIGN_IN_SCRIPT.encode()).digest()).decode()
    + "'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
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


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name[1:-1] if name.startswith("[") else name)
    except ValueError:
        return None


def host_name(host: str) -> str | None:
    """The name in a ``Host`` header (``name``, ``name:port``, ``[v6]:port``), lower case;
    ``None`` when it is not of that form."""
    host = host.strip().lower()
    if host.startswith("["):
        name, bracket, rest = host.partition("]")
        name += "]"
        if not bracket or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        return name if _ip(name) is not None else None
    name, colon, port = host.partition(":")
    if colon and not port.isdigit():
        return None
    return name or None


class HostPolicy:
    """Which ``Host`` names (any port) reach this server: loopback names and the ``--host``.

    A wildcard ``--host`` (0.0.0.0, ::) is reached by any of the machine's addresses, so any IP
    literal is accepted then; DNS rebinding needs a name, so names stay limited to the list.
    """

    def __init__(self, bind_host: str = "127.0.0.1") -> None:
        bind = bind_host.strip().lower()
        bracketed = f"[{bind.strip('[]')}]" if ":" in bind else bind
        self.names = LOOPBACK_NAMES | {bracketed}
        address = _ip(bracketed)
        self.any_address = address is not None and address.is_unspecified

    def allows(self, host: str | None) -> bool:
        """Whether a ``Host`` header value names this server."""
        name = host_name(host) if host else None
        if name is None:
            return False
        return name in self.names or (self.any_address and _ip(name) is not None)


class RefusalLog:
    """One warning line per refused WebSocket handshake, at most one per ``interval`` seconds.

    Anyone who can reach the port can open handshakes, so the refusals they cause must not flood
    the log: the lines in between are counted and the next line says how many were left out.
    """

    def __init__(
        self,
        interval: float = REFUSAL_LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger = log,
    ) -> None:
        self.interval = interval
        self.clock = clock
        self.logger = logger
        self.suppressed = 0
        self._last: float | None = None
        self._lock = threading.Lock()

    def refused(self, status: int, detail: str) -> bool:
        """Note one refusal; ``True`` when it was written to the log."""
        with self._lock:
            now = self.clock()
            if self._last is not None and now - self._last < self.interval:
                self.suppressed += 1
                return False
            self._last, left_out, self.suppressed = now, self.suppressed, 0
        more = f" ({left_out} more refused since the last line)" if left_out else ""
        self.logger.warning(
            "emotrace: refused a WebSocket handshake: %d %s%s", status, detail, more
        )
        return True


#: Set in the task of a handshake this server refused with an HTTP response on purpose.
_refused_handshake: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "emotrace_refused_handshake", default=False
)
refusal_log = RefusalLog()


class _RefusedHandshakeFilter(logging.Filter):
    """Drops uvicorn's "ASGI callable returned without completing handshake" for a handshake
    refused on purpose (its websockets-sansio protocol says so even after a proper denial
    response); :class:`RefusalLog` writes the rate-limited line instead. Runs in the task of the
    handshake, so the context variable is that handshake's."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (_refused_handshake.get() and "without completing handshake" in str(record.msg))


_FILTER = _RefusedHandshakeFilter()


def quiet_refused_handshakes() -> None:
    """Install the filter on uvicorn's error log (once)."""
    logger = logging.getLogger("uvicorn.error")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)


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
    """400 for a foreign ``Host``; 401 without the token (header, cookie, or ``/?token=`` once);
    403 for a cookie-authenticated change or a WebSocket from another origin."""

    def __init__(self, app: ASGIApp, token: str, bind_host: str = "127.0.0.1") -> None:
        self.app = app
        self.token = token
        self.hosts = HostPolicy(bind_host)

    def _valid(self, candidate: str | None) -> bool:
        return candidate is not None and secrets.compare_digest(
            candidate.encode("utf-8", "replace"), self.token.encode()
        )

    def _credentials(self, headers: Headers) -> str | None:
        """``"bearer"`` or ``"cookie"``: where the valid token came from; ``None``: nowhere."""
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and self._valid(credentials.strip()):
            return "bearer"
        # Lenient, as browsers are: SimpleCookie drops the whole header for one cookie it
        # dislikes (``theme=dark mode``), and any app on another local port can set one.
        cookies = cookie_parser(headers.get("cookie", ""))
        return "cookie" if self._valid(cookies.get(COOKIE)) else None

    @staticmethod
    def _origin(headers: Headers) -> str:
        return "http://" + headers.get("host", "").strip().lower()

    def _same_origin(self, headers: Headers) -> bool:
        """Whether a browser says this request comes from this server's own page."""
        origin, site = headers.get("origin"), headers.get("sec-fetch-site")
        if origin is not None and origin.strip().lower() != self._origin(headers):
            return False
        if site is not None and site != "same-origin":
            return False
        return origin is not None or site is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if not self.hosts.allows(headers.get("host")):
            detail = (
                f"Host {headers.get('host', '(none)')!r} is not this server; open the address "
                "`emotrace serve` printed (127.0.0.1 or localhost)"
            )
            if scope["type"] == "websocket":
                await refuse_websocket(scope, receive, send, 400, "bad host", detail)
            else:
                extra, body = _json(400, "bad host", detail)
                await _respond(send, 400, extra, body, "http")
            return
        path = scope["path"]
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send, headers)
            return
        method = scope["method"]
        if path in OPEN_PATHS and method in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        if path == "/" and method == "GET":
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            if self._valid(next(iter(query.get("token", [])), None)):
                await self._sign_in(send, headers)
                return
        credentials = self._credentials(headers)
        if credentials == "bearer" or (credentials == "cookie" and method in SAFE_METHODS):
            await self.app(scope, receive, send)
            return
        if credentials == "cookie" and self._same_origin(headers):
            await self.app(scope, receive, send)
            return
        if credentials == "cookie":
            extra, body = _json(
                403,
                "forbidden",
                f"a {method} with the cookie must come from this server's own page (Origin "
                f"{self._origin(headers)}); programs send Authorization: Bearer <token>",
            )
        elif path.startswith("/api/"):
            extra, body = _json(401, "unauthorized", "missing or wrong access token")
            extra.append((b"www-authenticate", b"Bearer"))
        else:
            body = _UNAUTHORIZED_PAGE.encode()
            extra = [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ]
        await _respond(send, 403 if credentials == "cookie" else 401, extra, body, "http")

    async def _sign_in(self, send: Send, headers: Headers) -> None:
        """Trade the token for the cookie, then drop it from the address bar."""
        cookie = f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/".encode()
        if headers.get("sec-fetch-site") in ("cross-site", "same-site"):
            # Opened from a file (``--open``'s redirect file) or another site: a SameSite=Strict
            # cookie is not sent along a redirect chain that began elsewhere, so a 303 would land
            # on "not signed in". A page of our own that moves on is a same-origin navigation.
            body = _SIGN_IN_PAGE.encode()
            extra = [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"content-security-policy", _SIGN_IN_CSP.encode()),
            ]
            status = 200
        else:
            body, extra, status = b"", [(b"location", b"/"), (b"content-length", b"0")], 303
        extra += [(b"set-cookie", cookie), (b"cache-control", b"no-store")]
        await _respond(send, status, extra, body, "http")

    async def _websocket(
        self, scope: Scope, receive: Receive, send: Send, headers: Headers
    ) -> None:
        origin = headers.get("origin")
        if not self._credentials(headers):
            status, error, detail = 401, "unauthorized", "missing or wrong access token"
        elif origin is not None and origin.strip().lower() != self._origin(headers):
            status, error, detail = 403, "forbidden", f"origin {origin} is not this server"
        else:
            await self.app(scope, receive, send)
            return
        await refuse_websocket(scope, receive, send, status, error, detail)


def note_refused_handshake(status: int, detail: str) -> None:
    """Log a refused handshake (rate-limited) instead of uvicorn's error line about it."""
    _refused_handshake.set(True)
    refusal_log.refused(status, detail)


async def refuse_websocket(
    scope: Scope, receive: Receive, send: Send, status: int, error: str, detail: str
) -> None:
    """Refuse a WebSocket handshake with an HTTP status and a JSON body (or a close code)."""
    message: Message = await receive()
    if message["type"] != "websocket.connect":
        return
    note_refused_handshake(status, detail)
    if "websocket.http.response" in scope.get("extensions", {}):
        extra, body = _json(status, error, detail)
        await _respond(send, status, extra, body, "websocket.http")
    else:  # servers without the denial-response extension: a policy-violation close
        await send({"type": "websocket.close", "code": 1008, "reason": detail[:120]})


class BodyLimitMiddleware:
    """413 for request bodies over ``limit`` bytes, counted while they are read (``limits``:
    path -> (limit, the option that sets it) for paths with a limit of their own: video uploads).

    A declared ``Content-Length`` over the limit is refused before reading anything; a chunked
    or lying body is cut off as soon as the running count passes the limit (the route's parser
    sees an :class:`HTTPException`, which the error handlers turn into the JSON 413).
    """

    def __init__(
        self, app: ASGIApp, limit: int, limits: dict[str, tuple[int, str]] | None = None
    ) -> None:
        self.app = app
        self.limit = limit
        self.limits = limits or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from starlette.exceptions import HTTPException

        limit, flag = self.limits.get(scope["path"], (self.limit, "--max-upload-mb"))
        detail = f"the request body is over the {limit} byte limit ({flag})"
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            extra, body = _json(413, "request body too large", detail)
            await _respond(send, 413, extra, body, "http")
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
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
