"""Run the app on uvicorn: bind, print the URL with its token, optionally open the browser."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import webbrowser

from emotrace.errors import ConfigError
from emotrace.server.app import ServerConfig, create_app
from emotrace.server.auth import is_loopback


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
    if open_browser:
        threading.Thread(target=_open, args=(url,), daemon=True).start()
    server.run(sockets=[sock])


def _open(url: str) -> None:
    with contextlib.suppress(Exception):  # no browser here: the printed URL is enough
        webbrowser.open(url)
