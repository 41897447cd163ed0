"""Loopback HTTP servers that answer like Roboflow, Kaggle and the Hugging Face Hub.

Each fake follows what the real service sends (see emotrace.data.download's module docs):

- Roboflow: ``GET /{ws}/{project}/{version}/folder?api_key=K`` -> ``202 {"progress": p}`` while
  the export is built, then ``200 {"export": {"link": URL, "format": "folder"}}``; a bad key is
  ``401 {"error": {"message": ..., "type": "OAuthException"}}``, an unknown version ``404``.
- Kaggle: ``GET /api/v1/datasets/download/{owner}/{dataset}`` with basic auth -> ``302`` to the
  zip on "Cloud Storage" (the second server), served with ``X-Goog-Hash: crc32c=..,md5=<base64>``;
  ``401``/``404`` JSON ``{"code": ..., "message": ...}``.
- Hub: ``HEAD``/``GET /datasets/{repo}/resolve/{revision}/{file}`` -> ``302`` to the LFS blob
  with ``X-Repo-Commit``, ``X-Linked-Etag`` (the SHA-256) and ``X-Linked-Size``; errors carry
  ``X-Error-Code`` (``RepoNotFound``, ``EntryNotFound``, ``RevisionNotFound``); a bad token is
  ``401`` with ``X-Error-Message: Invalid credentials in Authorization header``. The listing
  ``GET /api/datasets/{repo}/tree/{revision}`` is a JSON list of ``{type, path, size, oid}``.

Blobs under ``/storage/`` honour ``Range`` (``206`` with ``Content-Range``) and ``If-Range``, and
can be told to cut the connection part-way, a number of times.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class Blob:
    """A file under ``/storage/NAME``."""

    data: bytes
    #: Cut the connection after half of the body this many more times.
    cuts: int = 0
    #: ``X-Goog-Hash`` md5 to announce; ``None`` announces the true one, ``""`` none.
    md5: str | None = None
    etag: str = ""
    #: Bytes of the body actually written before a cut (``None``: half).
    cut_at: int | None = None
    #: Announce no size: no ``Content-Length``, the body ends when the connection closes.
    unsized: bool = False


@dataclass
class Fake:
    """State shared by the handler threads; tests set it up and read what was requested."""

    blobs: dict[str, Blob] = field(default_factory=dict)
    roboflow: dict[str, str] = field(default_factory=dict)  # "ws/proj/ver" -> blob name
    roboflow_key: str = "rf-good-key"
    roboflow_pending: int = 0  # 202 answers before the export is ready
    kaggle: dict[str, str] = field(default_factory=dict)  # "owner/ds" -> blob name
    kaggle_auth: tuple[str, str] = ("ana", "kg-good-key")
    hf: dict[str, dict[str, str]] = field(default_factory=dict)  # repo -> {file: blob name}
    hf_token: str | None = None  # when set, requests need "Bearer <token>"
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    base: str = ""
    #: The storage host (another port: a different host to clients, like a CDN or a bucket).
    storage: str = ""

    def add_blob(self, name: str, data: bytes, **options: Any) -> str:
        etag = options.pop("etag", None) or f'"{hashlib.sha256(data).hexdigest()[:16]}"'
        self.blobs[name] = Blob(data, etag=etag, **options)
        return f"{self.storage}/storage/{name}"

    def seen(self, path_part: str) -> list[dict[str, str]]:
        """Headers of the requests whose path contains ``path_part``."""
        with self.lock:
            return [h for _, p, h in self.requests if path_part in p]


class _Handler(BaseHTTPRequestHandler):
    fake: Fake

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: pytest shows failures without the access log."""

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def do_GET(self) -> None:
        self._dispatch(head=False)

    def _dispatch(self, head: bool) -> None:
        url = urlsplit(self.path)
        with self.fake.lock:
            self.fake.requests.append((self.command, url.path, dict(self.headers.items())))
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        path = url.path
        if path.startswith("/storage/"):
            return self._blob(path.removeprefix("/storage/"), head)
        if path.startswith("/api/v1/datasets/download/"):
            return self._kaggle(path.removeprefix("/api/v1/datasets/download/"))
        if path.startswith("/datasets/") and "/resolve/" in path:
            return self._hf_resolve(path.removeprefix("/datasets/"), head)
        if path.startswith("/api/datasets/") and "/tree/" in path:
            return self._hf_tree(path.removeprefix("/api/datasets/"))
        if m := re.fullmatch(r"/([^/]+/[^/]+/\d+)/folder", path):
            return self._roboflow(m[1], query)
        self._json(404, {"error": "no route"})

    # -- responses ---------------------------------------------------------------------------

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _redirect(self, location: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()

    def _blob(self, name: str, head: bool) -> None:
        blob = self.fake.blobs.get(name)
        if blob is None:
            return self._json(404, {"error": "no such blob"})
        data, start = blob.data, 0
        range_header = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if range_header and (if_range is None or if_range == blob.etag):
            start = int(range_header.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        if blob.unsized:
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", blob.etag)
        md5 = blob.md5 if blob.md5 is not None else _md5(data)
        if md5:
            self.send_header("X-Goog-Hash", f"crc32c=AAAAAA==,md5={md5}")
        self.end_headers()
        if head:
            return
        cut = False
        with self.fake.lock:
            if blob.cuts > 0:
                blob.cuts -= 1
                cut = True
        if cut:
            self.wfile.write(body[: blob.cut_at if blob.cut_at is not None else len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def _roboflow(self, ref: str, query: dict[str, str]) -> None:
        if query.get("api_key") != self.fake.roboflow_key:
            return self._json(
                401,
                {
                    "error": {
                        "message": "This API key does not exist (or has been revoked).",
                        "status": 401,
                        "type": "OAuthException",
                        "hint": "You may retrieve your API key via the Roboflow Dashboard.",
                    }
                },
            )
        blob = self.fake.roboflow.get(ref)
        if blob is None:
            message = (
                f"Unsupported request. `GET /{ref}/folder` does not exist or cannot be loaded."
            )
            return self._json(404, {"error": {"message": message, "type": "GraphMethodException"}})
        with self.fake.lock:
            pending = self.fake.roboflow_pending
            self.fake.roboflow_pending = max(0, pending - 1)
        if pending:
            return self._json(202, {"progress": 0.5})
        link = f"{self.fake.storage}/storage/{blob}?key=signed-link-secret"
        self._json(200, {"export": {"format": "folder", "link": link}, "version": {"id": ref}})

    def _kaggle(self, ref: str) -> None:
        user, key = self.fake.kaggle_auth
        expected = "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            return self._json(401, {"code": 401, "message": "Unauthenticated"})
        blob = self.fake.kaggle.get(ref)
        if blob is None:
            return self._json(404, {"code": 404, "message": "Not found"})
        self._redirect(f"{self.fake.storage}/storage/{blob}?X-Goog-Signature=abc")

    def _hf_auth_failed(self) -> bool:
        if self.fake.hf_token is None:
            return False
        if self.headers.get("Authorization") == f"Bearer {self.fake.hf_token}":
            return False
        message = "Invalid credentials in Authorization header"
        self._json(401, {"error": message}, {"X-Error-Message": message})
        return True

    def _hf_resolve(self, rest: str, head: bool) -> None:
        if self._hf_auth_failed():
            return
        repo, _, tail = rest.partition("/resolve/")
        revision, _, filename = tail.partition("/")
        files = self.fake.hf.get(repo)
        if files is None:
            return self._json(
                401, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"}
            )
        if revision not in ("main", COMMIT):
            return self._json(
                404, {"error": "Invalid rev id"}, {"X-Error-Code": "RevisionNotFound"}
            )
        blob_name = files.get(filename)
        if blob_name is None:
            return self._json(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
        data = self.fake.blobs[blob_name].data
        self._redirect(
            f"{self.fake.storage}/storage/{blob_name}",
            {
                "X-Repo-Commit": COMMIT,
                "X-Linked-Etag": f'"{hashlib.sha256(data).hexdigest()}"',
                "X-Linked-Size": str(len(data)),
                "ETag": '"0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f"',
            },
        )

    def _hf_tree(self, rest: str) -> None:
        if self._hf_auth_failed():
            return
        repo, _, _ = rest.partition("/tree/")
        files = self.fake.hf.get(repo)
        if files is None:
            return self._json(
                401, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"}
            )
        listing = [
            {"type": "file", "path": name, "size": len(self.fake.blobs[blob].data), "oid": "0" * 40}
            for name, blob in files.items()
        ]
        listing.append({"type": "file", "path": "README.md", "size": 10, "oid": "1" * 40})
        self._json(200, listing)


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


class FakeServices:
    """Running fakes on ``127.0.0.1``: the service API at ``url``, the file storage on another port.

    Real services hand out download links on another host (Cloud Storage, the Hub's CDN); clients
    treat a different port as a different host, so they must not forward credentials there.
    """

    def __init__(self) -> None:
        handler = type("Handler", (_Handler,), {"fake": Fake()})
        self.fake: Fake = handler.fake
        self.servers = [ThreadingHTTPServer(("127.0.0.1", 0), handler) for _ in range(2)]
        self.url, self.fake.storage = (
            f"http://127.0.0.1:{server.server_address[1]}" for server in self.servers
        )
        self.fake.base = self.url
        for server in self.servers:
            server.daemon_threads = True
            # shutdown() waits for the loop to look at its flag: every 0.5 s by default, which
            # added up to a second per test.
            threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
            ).start()

    def close(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()
