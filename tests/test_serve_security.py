"""``emotrace serve`` against the neighbours of a local server (issue 34).

Other local web apps (any page on another 127.0.0.1 port shares the cookie jar), DNS-rebinding
pages (a foreign ``Host``), other local users (the browser's command line) and anyone who can
open handshakes (the log). Real servers on loopback; the browser tests drive Debian's Chromium.
"""

from __future__ import annotations

import http.server
import json
import socket
import stat
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
ws_client = pytest.importorskip("websockets.sync.client")

from emotrace.server.auth import HostPolicy, RefusalLog  # noqa: E402
from serve_helpers import Server, running_server  # noqa: E402

pytestmark = pytest.mark.slow

#: Cookies another local web app may set on 127.0.0.1; SimpleCookie gave up on each of them.
MALFORMED = ["theme=dark mode", 'a={"x":1}', 'a="b', "a=é"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("serve-security")) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, headers=server.auth, timeout=60) as c:
        yield c


def new_session(client: httpx.Client, name: str) -> int:
    # Names are unique per workspace; the suffix lets a test run again on the module's server.
    unique = f"{name}-{uuid.uuid4().hex[:8]}"
    response = client.post(
        "/api/v1/sessions", json={"patient": "P-34", "name": unique, "consent": True}
    )
    assert response.status_code == 201, response.text
    session_id: int = response.json()["id"]
    return session_id


def session(client: httpx.Client, session_id: int) -> dict[str, Any]:
    response = client.get(f"/api/v1/sessions/{session_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def json_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "detail"}, body
    return body


def port_of(server: Server) -> int:
    return int(server.base.rsplit(":", 1)[1])


# -- 1: cookies ------------------------------------------------------------------------------


@pytest.mark.parametrize("foreign", MALFORMED)
def test_a_malformed_foreign_cookie_does_not_hide_the_token(server: Server, foreign: str) -> None:
    url = server.base + "/api/v1/sessions"
    for header in (
        f"{foreign}; emotrace_token={server.token}",
        f"emotrace_token={server.token}; {foreign}",
    ):
        response = httpx.get(url, headers={"Cookie": header.encode()}, timeout=30)
        assert response.status_code == 200, (header, response.text)
    wrong = f"{foreign}; emotrace_token=wrong-{server.token}"
    assert json_error(httpx.get(url, headers={"Cookie": wrong.encode()}, timeout=30), 401)


# -- 2: cookie-authenticated changes come from this server's page ------------------------------


def test_a_cookie_authenticated_change_needs_this_servers_origin(
    server: Server, client: httpx.Client
) -> None:
    sid = new_session(client, "origin-check")
    url = f"{server.base}/api/v1/sessions/{sid}/finish"
    cookie = {"Cookie": f"emotrace_token={server.token}"}
    other = f"http://127.0.0.1:{port_of(server) + 1}"
    for extra in (
        {},  # no proof at all
        {"Origin": other},  # a page on another local port
        {"Origin": "null"},  # a sandboxed frame or a file
        {"Origin": "http://localhost:" + server.base.rsplit(":", 1)[1]},  # another origin too
        {"Sec-Fetch-Site": "same-site"},  # what Chromium says for another port
        {"Origin": server.base, "Sec-Fetch-Site": "cross-site"},
    ):
        body = json_error(httpx.post(url, headers={**cookie, **extra}, timeout=30), 403)
        assert body["error"] == "forbidden" and "Authorization: Bearer" in body["detail"]
        assert session(client, sid)["live"] is True, extra
    # Reading is still fine from anywhere (the browser hides the answer from other origins).
    assert httpx.get(url[: -len("/finish")], headers={**cookie, "Origin": other}).status_code == 200
    # This server's own page: Origin, or Sec-Fetch-Site alone.
    sid2 = new_session(client, "origin-check-2")
    for sid_, extra in ((sid, {"Origin": server.base}), (sid2, {"Sec-Fetch-Site": "same-origin"})):
        finish = f"{server.base}/api/v1/sessions/{sid_}/finish"
        response = httpx.post(finish, headers={**cookie, **extra}, timeout=30)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "complete"


def test_bearer_requests_need_no_origin(server: Server, client: httpx.Client) -> None:
    sid = new_session(client, "bearer-no-origin")
    response = httpx.post(
        f"{server.base}/api/v1/sessions/{sid}/finish", headers=server.auth, timeout=30
    )
    assert response.status_code == 200 and response.json()["status"] == "complete"


# -- 5: Host -----------------------------------------------------------------------------------


def test_a_foreign_host_is_a_400_whatever_the_credentials(server: Server) -> None:
    port = port_of(server)
    url = server.base + "/api/v1/sessions"
    cookie = {"Cookie": f"emotrace_token={server.token}"}
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.nip.io", "[::2]", "a:b:c", ""):
        for credentials in (cookie, server.auth, {}):
            response = httpx.get(url, headers={**credentials, "Host": host}, timeout=30)
            body = json_error(response, 400)
            assert body["error"] == "bad host" and "is not this server" in body["detail"]
        body = json_error(httpx.get(server.base + "/api/v1/health", headers={"Host": host}), 400)
    for host in (
        f"127.0.0.1:{port}",
        f"localhost:{port}",
        f"[::1]:{port}",
        "LOCALHOST",
        "127.0.0.1",
    ):
        assert httpx.get(url, headers={**cookie, "Host": host}).status_code == 200, host


def test_a_websocket_from_a_rebound_name_is_refused(server: Server, client: httpx.Client) -> None:
    from websockets.exceptions import InvalidStatus

    sid = new_session(client, "rebinding")
    port = port_of(server)
    # The name does not resolve; the socket goes to the server all the same, as after rebinding.
    with pytest.raises(InvalidStatus) as refused:
        ws_client.connect(
            f"ws://evil.example:{port}/api/v1/sessions/{sid}/live",
            sock=socket.create_connection(("127.0.0.1", port)),
            origin=f"http://evil.example:{port}",  # type: ignore[arg-type]
            additional_headers={"Cookie": f"emotrace_token={server.token}"},
            open_timeout=10,
        )
    assert refused.value.response.status_code == 400
    assert json.loads(refused.value.response.body or b"{}")["error"] == "bad host"
    # Another local port's page: right Host, foreign Origin.
    with pytest.raises(InvalidStatus) as foreign:
        ws_client.connect(
            f"{server.ws_base}/api/v1/sessions/{sid}/live",
            origin=f"http://127.0.0.1:{port + 1}",  # type: ignore[arg-type]
            additional_headers={"Cookie": f"emotrace_token={server.token}"},
            open_timeout=10,
        )
    assert foreign.value.response.status_code == 403
    client.post(f"/api/v1/sessions/{sid}/finish")


def test_the_host_given_with_host_is_accepted(tmp_path: Path) -> None:
    with running_server(tmp_path, "--host", "127.0.0.2") as other:
        assert other.base.startswith("http://127.0.0.2:")
        port = port_of(other)
        for host, status in (
            (f"127.0.0.2:{port}", 200),
            (f"localhost:{port}", 200),
            (f"127.0.0.3:{port}", 400),
        ):
            response = httpx.get(
                other.base + "/api/v1/sessions", headers={**other.auth, "Host": host}
            )
            assert response.status_code == status, host


@pytest.mark.parametrize(
    ("bind", "host", "allowed"),
    [
        ("127.0.0.1", "127.0.0.1:8765", True),
        ("127.0.0.1", "[::1]:8765", True),
        ("127.0.0.1", "localhost", True),
        ("127.0.0.1", "192.168.1.5:8765", False),
        ("127.0.0.1", "evil.example", False),
        ("127.0.0.1", "localhost:", False),
        ("127.0.0.1", "localhost:http", False),
        ("127.0.0.1", "[::1", False),
        ("127.0.0.1", "", False),
        ("::1", "[::1]:1", True),
        ("clinic-pc.lan", "CLINIC-PC.lan:8765", True),
        ("clinic-pc.lan", "other-pc.lan:8765", False),
        # A wildcard bind is reached by any of the machine's addresses, never by a foreign name.
        ("0.0.0.0", "192.168.1.5:8765", True),
        ("::", "[fe80::1]:8765", True),
        ("0.0.0.0", "evil.example:8765", False),
    ],
)
def test_host_policy(bind: str, host: str, allowed: bool) -> None:
    assert HostPolicy(bind).allows(host) is allowed


# -- 9: quiet refusals, HEAD /health -----------------------------------------------------------


def test_head_health_is_200_without_a_body_and_stays_out_of_the_schema(
    server: Server, client: httpx.Client
) -> None:
    response = httpx.head(server.base + "/api/v1/health", timeout=30)
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-type"] == "application/json"
    schema = client.get("/api/v1/openapi.json").json()
    assert set(schema["paths"]["/api/v1/health"]) == {"get"}
    ids = [op["operationId"] for path in schema["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids))


def test_refused_handshakes_write_one_rate_limited_warning(tmp_path: Path) -> None:
    from websockets.exceptions import InvalidStatus

    with running_server(tmp_path) as quiet:
        started = time.monotonic()
        for _ in range(20):
            with pytest.raises(InvalidStatus):
                ws_client.connect(f"{quiet.ws_base}/api/v1/sessions/1/live", open_timeout=10)
        elapsed = time.monotonic() - started
        deadline = time.monotonic() + 10
        while not any("refused a WebSocket" in line for line in quiet.output):
            assert time.monotonic() < deadline, "".join(quiet.output)
            time.sleep(0.05)
        # The server's answer is still the JSON 401.
        with pytest.raises(InvalidStatus) as refused:
            ws_client.connect(f"{quiet.ws_base}/api/v1/sessions/1/live", open_timeout=10)
        assert refused.value.response.status_code == 401
    log = "".join(quiet.output)
    assert "without completing handshake" not in log and "ERROR" not in log, log
    lines = [line for line in quiet.output if "refused a WebSocket handshake" in line]
    assert lines[0].strip().endswith("401 missing or wrong access token"), lines
    # One line per REFUSAL_LOG_INTERVAL (10 s) at most, however fast the refusals came.
    assert 1 <= len(lines) <= 2 + int(elapsed // 10), lines


def test_refusal_log_counts_what_it_leaves_out(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    refusals = RefusalLog(interval=10, clock=lambda: now[0])
    with caplog.at_level("WARNING", logger="emotrace.server"):
        written = []
        for step in [0, 1, 1, 1, 6, 1, 0.5, 20]:  # at 100, 110 and 130.5 s
            now[0] += step
            written.append(refusals.refused(403, "origin http://x is not this server"))
    assert written == [True, False, False, False, False, True, False, True]
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3
    assert "more refused" not in messages[0]
    assert messages[1].endswith("(4 more refused since the last line)")
    assert messages[2].endswith("(1 more refused since the last line)")


# -- 6: --open -------------------------------------------------------------------------------


def _recording_browser(tmp_path: Path) -> tuple[Path, Path]:
    """A ``BROWSER`` that writes its arguments, one a line, to a file."""
    record = tmp_path / "argv.txt"
    script = tmp_path / "browser.sh"
    script.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$@" > "{record}.part" && mv "{record}.part" "{record}"\n'
    )
    script.chmod(0o700)
    return script, record


def _wait_for(path: Path, server: Server, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, "the browser was not started:\n" + "".join(
            server.output
        )
        time.sleep(0.05)
    return path.read_text()


def test_open_hands_the_browser_a_private_redirect_file_not_the_token(tmp_path: Path) -> None:
    script, record = _recording_browser(tmp_path)
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {"BROWSER": str(script), "XDG_RUNTIME_DIR": str(runtime)}
    with running_server(tmp_path / "ws", "--open", env=env) as opened:
        argv = _wait_for(record, opened).splitlines()
        assert argv and all(opened.token not in arg for arg in argv), argv
        assert len(argv) == 1 and argv[0].startswith("file://"), argv
        redirect = Path(argv[0].removeprefix("file://"))
        assert redirect.parent == runtime
        assert stat.S_IMODE(redirect.stat().st_mode) == 0o600
        assert opened.url in redirect.read_text()
    assert not redirect.exists(), "the redirect file outlived the server"


# -- in Chromium --------------------------------------------------------------------------------

sync_api = pytest.importorskip("playwright.sync_api")
BINARY = next(
    (p for p in ("/usr/lib/chromium/chromium", "/usr/bin/chromium") if Path(p).is_file()), None
)
needs_chromium = pytest.mark.skipif(
    BINARY is None, reason="needs Chromium (Debian: apt-get install chromium chromium-driver)"
)
TIMEOUT_MS = 30_000

#: Another local web app's page: sets a cookie SimpleCookie rejects, then tries to finish a session.
NEIGHBOUR = """<!DOCTYPE html><html><head><title>neighbour</title></head><body><script>
document.cookie = "theme=dark mode; path=/";
const target = new URLSearchParams(location.search).get("target");
if (target) {
  fetch(target, {method: "POST", mode: "no-cors", credentials: "include"})
    .then(() => { document.title = "sent"; }, (e) => { document.title = "failed " + e; });
} else {
  document.title = "cookie set";
}
</script></body></html>"""


class _Neighbour(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = NEIGHBOUR.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest's output clean


@pytest.fixture
def neighbour() -> Iterator[str]:
    """Base URL of another web app on another loopback port."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Neighbour)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One Chromium for the module (a launch costs seconds); each test gets its own context."""
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=BINARY,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
                  "--disable-background-networking", "--disable-component-update"],
        )  # fmt: skip
        yield launched
        launched.close()


@pytest.fixture
def browser(chromium: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies from another test)."""
    context = chromium.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    yield context
    context.close()


def _signed_in(tab: Any) -> bool:
    status: int = tab.evaluate("async () => (await fetch('/api/v1/sessions')).status")
    return status == 200 and "not signed in" not in tab.content()


@needs_chromium
def test_a_page_on_another_local_port_cannot_finish_a_session(
    server: Server, client: httpx.Client, neighbour: str, browser: Any
) -> None:
    sid = new_session(client, "neighbour")
    app = browser.new_page()
    app.goto(server.url)
    app.wait_for_selector("#nav-new")
    other = browser.new_page()
    other.goto(f"{neighbour}/?target={server.base}/api/v1/sessions/{sid}/finish")
    other.wait_for_function("document.title !== 'neighbour'")
    assert other.title() == "sent"  # the browser did send it, with the cookie...
    assert session(client, sid)["live"] is True  # ...and the server refused it
    assert session(client, sid)["status"] == "recording"
    # The app's own page still can.
    status = app.evaluate(
        "async (id) => (await fetch(`/api/v1/sessions/${id}/finish`, {method: 'POST'})).status",
        sid,
    )
    assert status == 200 and session(client, sid)["status"] == "complete"


@needs_chromium
def test_a_malformed_cookie_from_another_local_port_keeps_the_app_signed_in(
    server: Server, neighbour: str, browser: Any
) -> None:
    app = browser.new_page()
    app.goto(server.url)
    app.wait_for_selector("#nav-new")
    other = browser.new_page()
    other.goto(neighbour)
    other.wait_for_function("document.title === 'cookie set'")
    assert "theme=dark mode" in {c["name"] + "=" + c["value"] for c in browser.cookies()}
    app.reload()
    app.wait_for_selector("#nav-new")
    assert _signed_in(app)


@needs_chromium
def test_the_redirect_file_signs_the_browser_in(tmp_path: Path, browser: Any) -> None:
    from emotrace.server.runner import write_redirect_file

    script, record = _recording_browser(tmp_path)
    env = {"BROWSER": str(script), "XDG_RUNTIME_DIR": str(tmp_path)}
    with running_server(tmp_path / "ws", "--open", env=env) as opened:
        tab = browser.new_page()
        tab.goto(_wait_for(record, opened).strip())
        tab.wait_for_url(f"{opened.base}/")
        tab.wait_for_selector("#nav-new")
        assert _signed_in(tab)
        # ``live`` opens the page at a fragment (#/new?patient=...): it survives the sign-in.
        fresh = browser.browser.new_context()
        try:
            deep = write_redirect_file(opened.url + "#/new?patient=P-9")
            tab = fresh.new_page()
            tab.goto(deep.as_uri())
            tab.wait_for_url(f"{opened.base}/#/new?patient=P-9")
            tab.wait_for_selector("#nav-new")
            assert _signed_in(tab)
            deep.unlink()
        finally:
            fresh.close()
