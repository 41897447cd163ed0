"""Run the app on uvicorn: bind, print the URL with its token, optionally open the browser."""

from __future__ import annotations

import contextlib
import html
import json
import os
import socket
import sys
import tempfile
import threading
import webbrowser
from pathlib import Path

from emotrace.errors import ConfigError
from emotrace.server.app import create_app
from emotrace.server.auth import is_loopback
from emotrace.server.state import ServerConfig


def listen(host: str, port: int) -> socket.socket:
    """A listening socket (``port`` 0: any free port); one-line :class:`ConfigError` if busy."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host.strip("[]"), port), family=family)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def check_host(config: ServerConfig) -> None:
    """Refuse a non-loopback address without ``allow_remote``; warn with it."""
    if is_loopback(config.host):
        return
    if not config.allow_remote:
        raise ConfigError(
            f"--host {config.host} would let other machines reach the sessions; "
            "add --allow-remote if you really mean it"
        )
    print(
        f"emotrace: warning: listening on {config.host}, reachable from other machines; the "
        "token protects the sessions but the traffic is plain HTTP (not encrypted)",
        file=sys.stderr,
    )


def serve(config: ServerConfig, open_browser: bool = False, fragment: str = "") -> None:
    """Serve until Ctrl+C; prints ``http://HOST:PORT/?token=...`` (plus ``#fragment``) first."""
    import uvicorn

    check_host(config)
    sock = listen(config.host, config.port)
    try:
        app = create_app(config)
    except BaseException:
        sock.close()
        raise
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if config.host in ("0.0.0.0", "::") else config.host
    shown = f"[{shown}]" if ":" in shown else shown
    url = f"http://{shown}:{port}/?token={config.token}" + (f"#{fragment}" if fragment else "")
    print(
        f"emotrace serve: open this address in your browser (Ctrl+C stops the server):\n    {url}",
        flush=True,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,  # URLs and addresses of a clinic's sessions stay out of logs
            ws_max_size=config.max_upload_bytes + 64,
            timeout_graceful_shutdown=5,
        )
    )
    redirect = write_redirect_file(url) if open_browser else None
    try:
        if redirect is not None:
            threading.Thread(target=_open, args=(redirect.as_uri(),), daemon=True).start()
        server.run(sockets=[sock])
    finally:
        if redirect is not None:
            redirect.unlink(missing_ok=True)


def runtime_dir() -> Path | None:
    """``$XDG_RUNTIME_DIR`` (private to the user) when set, else ``None`` (the temp dir)."""
    found = os.environ.get("XDG_RUNTIME_DIR")
    return Path(found) if found and Path(found).is_dir() else None


def write_redirect_file(url: str) -> Path:
    """A 0600 HTML file that sends the browser on to ``url``; open it instead of ``url``.

    A browser started with the URL would carry the token on its command line, which every local
    user can read (``ps``, ``/proc/PID/cmdline``); the file's name tells nothing. As Jupyter does.
    """
    # mkstemp: a fresh name, created exclusively, mode 0600 whatever the umask.
    fd, name = tempfile.mkstemp(prefix="emotrace-open-", suffix=".html", dir=runtime_dir())
    target = html.escape(url, quote=True)
    script = json.dumps(url).replace("<", "\\u003c")  # no "</script>" can end the script early
    page = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>emotrace</title>\n"
        f"<meta http-equiv='refresh' content='1;url={target}'>\n"
        f"<script>window.location.replace({script});</script>"
        "</head>\n"
        f"<body><p>Opening <a href='{target}'>emotrace</a>...</p></body></html>\n"
    )
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(page)
    return Path(name)


def _open(uri: str) -> None:
    with contextlib.suppress(Exception):  # no browser here: the printed URL is enough
        webbrowser.open(uri)
