"""Plain-urllib HTTP for the Roboflow and Kaggle downloads: JSON calls and resumable file transfers.

urllib rather than ``requests``: the two services need a GET with a header or a query parameter and
a streamed body, and the standard library does that without another dependency.

Credentials go in *unredirected* headers, so urllib never forwards them to the storage host a
download link redirects to (Kaggle answers with a redirect to a signed Cloud Storage URL).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import os
import shutil
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emotrace import __version__
from emotrace._interrupts import raise_if_interrupted
from emotrace.errors import DownloadError

#: ``make(description, total) -> advance(n)``, the shape of the CLI's progress factory.
ProgressFactory = Callable[[str, int | None], Callable[[int], None]]

USER_AGENT = f"emotrace/{__version__}"
TIMEOUT_S = 60.0
CHUNK = 1 << 20
#: Attempts within one run when a transfer breaks off; each one resumes where the last stopped.
ATTEMPTS = 4
RETRY_PAUSE_S = 0.5


class HTTPFailure(Exception):
    """An HTTP error status; the service modules turn it into a one-line :class:`DownloadError`."""

    def __init__(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body
        self.headers = headers

    def message(self) -> str:
        """The server's own explanation (a JSON ``error``/``message`` field, or the text), short."""
        text = self.body.decode("utf-8", "replace").strip()
        with contextlib.suppress(ValueError):
            text = _json_message(json.loads(text)) or text
        text = " ".join(text.split())
        return text[:200] if text else f"HTTP {self.status}"


def _json_message(payload: Any) -> str | None:
    """Roboflow: ``{"error": {"message": ...}}`` or ``{"error": str}``; Kaggle: ``{"message"}``."""
    if not isinstance(payload, dict):
        return None
    error = payload.get("error")
    if isinstance(error, dict):
        error = error.get("message")
    if isinstance(error, str) and error:
        return error
    message = payload.get("message")
    return message if isinstance(message, str) and message else None


def redact(url: str) -> str:
    """``url`` without its query string, which may carry an API key or a signature."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _request(url: str, headers: Mapping[str, str], secret_headers: Mapping[str, str]) -> Any:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **headers})
    for name, value in secret_headers.items():
        request.add_unredirected_header(name, value)
    return request


@contextlib.contextmanager
def open_url(
    url: str,
    headers: Mapping[str, str] | None = None,
    secret_headers: Mapping[str, str] | None = None,
) -> Iterator[http.client.HTTPResponse]:
    """GET ``url``: :class:`HTTPFailure` on an error status, DownloadError when unreachable."""
    request = _request(url, headers or {}, secret_headers or {})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        with exc:
            body = exc.read(64 * 1024)
        raise HTTPFailure(exc.code, body, dict(exc.headers.items())) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise unreachable(url, exc) from None
    with response:
        yield response


def unreachable(url: str, exc: BaseException) -> DownloadError:
    """The one-line error for a host that cannot be reached (no network, refused, DNS, timeout)."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    host = urllib.parse.urlsplit(url).netloc
    text = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
    return DownloadError(f"cannot reach {host}: {text}; check the network connection")


def get_json(
    url: str,
    headers: Mapping[str, str] | None = None,
    secret_headers: Mapping[str, str] | None = None,
) -> tuple[int, Any]:
    """GET a JSON document; ``(status, payload)``. Error statuses raise :class:`HTTPFailure`."""
    with open_url(url, headers, secret_headers) as response:
        status = response.status
        try:
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise unreachable(url, exc) from None
    try:
        return status, json.loads(body)
    except ValueError:
        host = urllib.parse.urlsplit(url).netloc
        raise DownloadError(f"{host} answered {redact(url)} with something not JSON") from None


@dataclass(frozen=True)
class Transfer:
    """What a finished transfer knows about the file: size, and the hashes the server declared."""

    path: Path
    size: int
    md5_checked: bool


def download(
    url: str,
    part: Path,
    *,
    label: str,
    progress: ProgressFactory | None = None,
    secret_headers: Mapping[str, str] | None = None,
    on_failure: Callable[[HTTPFailure], DownloadError] | None = None,
) -> Transfer:
    """Stream ``url`` into ``part``, resuming what an earlier, interrupted run left there.

    A resumed request sends ``Range`` with ``If-Range`` (the validator of the first response, kept
    in ``part`` + ``.json``), so a file that changed on the server is fetched anew rather than
    spliced. A transfer that breaks off is resumed up to :data:`ATTEMPTS` times in the same run;
    after that the part file stays for the next run. The size (``Content-Length`` or
    ``Content-Range``) and the MD5 of ``X-Goog-Hash`` (Cloud Storage, where Roboflow and Kaggle
    keep their archives) are checked when the server gives them; a mismatch deletes the part file.
    """
    state_path = part.with_name(part.name + ".json")
    state = _read_state(state_path, url_key=redact(url))
    have = part.stat().st_size if part.is_file() and state else 0
    advance: Callable[[int], None] | None = None
    last_error: BaseException | None = None
    for attempt in range(ATTEMPTS):
        headers: dict[str, str] = {"Accept-Encoding": "identity"}
        if have and state.get("validator"):
            headers["Range"] = f"bytes={have}-"
            headers["If-Range"] = str(state["validator"])
        try:
            with open_url(url, headers, secret_headers) as response:
                total, start = _extent(response, have)
                validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
                md5 = _goog_md5(response.headers.get("X-Goog-Hash"))
                state = {"url_key": redact(url), "validator": validator, "total": total, "md5": md5}
                _write_state(state_path, state)
                if advance is None and progress is not None:
                    advance = progress(label, total)
                    advance(start)
                elif advance is not None and start < have:
                    advance(start - have)  # the server restarted from zero: rewind the bar
                have = start
                _check_space(part.parent, total, start, label)
                with part.open("r+b" if start else "wb") as out:
                    out.seek(start)
                    out.truncate()
                    while chunk := response.read(CHUNK):
                        raise_if_interrupted()
                        out.write(chunk)
                        have += len(chunk)
                        if advance is not None:
                            advance(len(chunk))
            if total is not None and have < total:
                raise http.client.IncompleteRead(b"", total - have)
            break
        except HTTPFailure as failure:
            if failure.status == 416 and have:
                # The range starts at or past the end: the part is complete, or the file changed.
                if state.get("total") == have:
                    break
                part.unlink(missing_ok=True)
                have = 0
                continue
            raise (on_failure(failure) if on_failure else _generic(url, failure)) from None
        except (OSError, http.client.HTTPException) as exc:
            if isinstance(exc, DownloadError):
                raise  # the host cannot be reached (or answered nonsense): retrying won't help
            if _is_disk_error(exc):
                raise
            last_error = exc
            have = part.stat().st_size if part.is_file() else 0
            time.sleep(RETRY_PAUSE_S * (attempt + 1))
    else:
        total = state.get("total")
        got = f"{have:,} of {total:,} bytes" if isinstance(total, int) else f"{have:,} bytes"
        reason = _reason(last_error)
        raise DownloadError(
            f"the transfer of {label} broke off after {got} ({reason}); "
            "run the command again to resume it"
        )
    return _verify(part, state_path, state, have, label)


def _extent(response: http.client.HTTPResponse, have: int) -> tuple[int | None, int]:
    """``(total size or None, offset the body starts at)`` of a 200 or 206 response."""
    length = response.headers.get("Content-Length")
    if response.status == 206:
        content_range = response.headers.get("Content-Range", "")
        # "bytes START-END/TOTAL"; TOTAL may be "*".
        try:
            span, _, total_text = content_range.removeprefix("bytes ").partition("/")
            start = int(span.split("-", 1)[0])
            total = int(total_text) if total_text.strip() != "*" else None
        except ValueError:
            raise DownloadError(
                f"unreadable Content-Range {content_range!r} in a resumed download"
            ) from None
        if start != have:
            raise DownloadError(f"the server resumed at byte {start:,}, not at {have:,}")
        return total, start
    return (int(length) if length and length.isdigit() else None), 0


def _check_space(folder: Path, total: int | None, start: int, label: str) -> None:
    """Fail before writing when the announced size cannot fit (twice: archive plus unpacked)."""
    if total is None:
        return
    free = shutil.disk_usage(folder).free
    if total - start > free:
        raise DownloadError(
            f"not enough disk space in {folder}: {label} is {total - start:,} bytes, {free:,} free"
        )


def _goog_md5(header: str | None) -> str | None:
    """The base64 MD5 in ``X-Goog-Hash: crc32c=...,md5=...``, if any."""
    for item in (header or "").split(","):
        name, _, value = item.strip().partition("=")
        if name == "md5" and value:
            return value
    return None


def _verify(part: Path, state_path: Path, state: dict[str, Any], have: int, label: str) -> Transfer:
    size = part.stat().st_size
    total = state.get("total")
    if isinstance(total, int) and size != total:
        part.unlink(missing_ok=True)
        state_path.unlink(missing_ok=True)
        raise DownloadError(
            f"{label}: received {size:,} bytes, the server announced {total:,}; "
            "the partial file was removed, run the command again"
        )
    md5 = state.get("md5")
    if isinstance(md5, str):
        digest = hashlib.md5(usedforsecurity=False)
        with part.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
        if base64.b64encode(digest.digest()).decode() != md5:
            part.unlink(missing_ok=True)
            state_path.unlink(missing_ok=True)
            raise DownloadError(
                f"{label}: checksum mismatch (MD5 differs from the server's X-Goog-Hash); "
                "the download was removed, run the command again"
            )
    return Transfer(path=part, size=size, md5_checked=isinstance(md5, str))


def _read_state(path: Path, url_key: str) -> dict[str, Any]:
    """The saved transfer state when it belongs to the same URL; ``{}`` otherwise."""
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    # Signed links change between runs; the path (no query) identifies the file well enough,
    # and If-Range protects against content that changed under the same path.
    return state if isinstance(state, dict) and state.get("url_key") == url_key else {}


def _write_state(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state), encoding="utf-8")
    os.replace(tmp, path)


def _is_disk_error(exc: BaseException) -> bool:
    import errno

    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def _reason(exc: BaseException | None) -> str:
    if isinstance(exc, http.client.IncompleteRead):
        return "connection closed early"
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if exc is None:
        return "unknown error"
    return str(exc) or type(exc).__name__


def _generic(url: str, failure: HTTPFailure) -> DownloadError:
    host = urllib.parse.urlsplit(url).netloc
    return DownloadError(f"{host} answered HTTP {failure.status}: {failure.message()}")
