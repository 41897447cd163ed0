"""Headless Chromium for report tests: DOM dump, screenshot, and a proxy that logs every request.

Chromium is started as the issue asks (``--headless --no-sandbox --disable-gpu --no-first-run
--disable-background-networking --disable-component-update --disable-sync`` and a fresh
``--user-data-dir``) with all its traffic, loopback included, sent to a local proxy that only
records the request line and answers nothing. Chromium still makes a few requests of its own
(component updates, sign-in); those hosts are listed in ``BROWSER_HOSTS`` and ignored, and a
control page with a remote image proves that page requests do reach the log.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import TypeVar

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
_skip_without_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="needs Chromium for the HTML report tests (Debian: apt-get install chromium "
    "chromium-driver)",
)
_Test = TypeVar("_Test")


def needs_chromium(test: _Test) -> _Test:
    """Skip ``test`` where Chromium is absent, and mark it ``browser`` (``make quick`` skips it)."""
    return pytest.mark.browser(_skip_without_chromium(test))  # type: ignore[no-any-return]


#: Hosts Chromium itself contacts even with background networking disabled.
BROWSER_HOSTS = frozenset(
    {
        "accounts.google.com",
        "clients1.google.com",
        "clients2.google.com",
        "update.googleapis.com",
        "safebrowsing.googleapis.com",
        "content-autofill.googleapis.com",
        "optimizationguide-pa.googleapis.com",
        "redirector.gvt1.com",
    }
)


class RequestLog:
    """A local 'proxy' that records the first line of every request and closes the socket."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    self.lines.append(conn.recv(4096).split(b"\r\n")[0].decode("latin-1"))
                except OSError:
                    self.lines.append("<unreadable request>")

    def hosts(self) -> set[str]:
        """Host of every logged request (``CONNECT host:443`` or ``GET http://host/...``)."""
        found = set()
        for line in self.lines:
            parts = line.split()
            target = parts[1] if len(parts) > 1 else line
            target = target.split("://", 1)[-1]
            found.add(target.split("/", 1)[0].rsplit(":", 1)[0])
        return found

    def page_hosts(self) -> set[str]:
        """Hosts requested other than Chromium's own services."""
        return self.hosts() - BROWSER_HOSTS

    def close(self) -> None:
        """Stop listening."""
        self._server.close()


def chromium(page: Path, log: RequestLog, *args: str) -> subprocess.CompletedProcess[bytes]:
    """Run headless Chromium on ``page`` with a fresh profile, all traffic through ``log``."""
    with tempfile.TemporaryDirectory(prefix="emotrace-test-chromium-") as profile:
        command = [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", f"--proxy-server=http://127.0.0.1:{log.port}",
            "--proxy-bypass-list=<-loopback>", "--virtual-time-budget=3000", "--hide-scrollbars",
            *args, page.resolve().as_uri(),
        ]  # fmt: skip
        return subprocess.run(command, capture_output=True, timeout=120, check=False)
