"""File sessions analysed by the server (issue 33, item 5), against a real ``emotrace serve``.

The page uploads a video; the server keeps it in a private temporary folder while the pipeline
of ``emotrace analyze`` runs over it, then removes it. Checked here on the real videos of
``../shared/media`` (H.264 ``single_face.mp4``, HEVC ``face_noface.mov``, as phones record):
the records equal those of ``emotrace analyze`` on the same file; an undecodable file is a 422
with one line and leaves no session and no file; Cancel stops at once and keeps what was
analysed; modes are 0700/0600; a server that died leaves folders the next server sweeps; and,
in Chromium, choosing the HEVC file selects the file source and the page follows the analysis
to its review. One server (its ``TMPDIR`` a folder of the test's) serves the module.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from conftest import SHARED, run_emotrace_in_process  # noqa: E402
from serve_helpers import Server, face_frames, running_server  # noqa: E402

pytestmark = pytest.mark.slow

MEDIA = SHARED / "media"
H264 = MEDIA / "single_face.mp4"
HEVC = MEDIA / "face_noface.mov"
#: What the server answers for a file OpenCV cannot read.
UNREADABLE = "this file cannot be read as a video"

# A process that makes an upload folder as a server does, prints the server folder, and waits.
_OTHER_SERVER = (
    "import time; from emotrace.server.uploads import UploadArea, private_file; "
    "area = UploadArea.open(); folder = area.new_folder(); "
    "private_file(folder / 'video').write(b'a face'); print(area.path, flush=True); time.sleep(600)"
)


def _needs(path: Path) -> None:
    if not path.is_file():
        pytest.skip(f"needs {path} (the shared media folder)")


@pytest.fixture(scope="module")
def tmpdir_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return {**os.environ, "TMPDIR": str(tmp_path_factory.mktemp("serve-files-tmp"))}


@pytest.fixture(scope="module")
def upload_root(tmpdir_env: dict[str, str]) -> Path:
    return Path(tmpdir_env["TMPDIR"]) / f"emotrace-uploads-{os.getuid()}"


def _other_server(env: dict[str, str]) -> tuple[subprocess.Popen[str], Path]:
    process = subprocess.Popen(
        [sys.executable, "-c", _OTHER_SERVER], stdout=subprocess.PIPE, text=True, env=env
    )
    assert process.stdout is not None
    return process, Path(process.stdout.readline().strip())


@pytest.fixture(scope="module")
def leftovers(tmpdir_env: dict[str, str]) -> Iterator[dict[str, Path]]:
    """The upload folders of two other servers: one killed (-9) with its video still there,
    one still running."""
    alive, alive_folder = _other_server(tmpdir_env)
    dead, dead_folder = _other_server(tmpdir_env)  # after: its own start-up sweep keeps it
    dead.kill()
    dead.wait()
    yield {"dead": dead_folder, "alive": alive_folder}
    alive.kill()
    alive.wait()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    tmpdir_env: dict[str, str],
    leftovers: dict[str, Path],
) -> Iterator[Server]:
    assert leftovers["dead"].is_dir()  # made before this server starts
    workspace = tmp_path_factory.mktemp("serve-files")
    with running_server(workspace, env={"TMPDIR": tmpdir_env["TMPDIR"]}) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, headers=server.auth, timeout=60) as c:
        yield c


def fresh(name: str) -> str:
    """A name no earlier test (or repeat of this one) used."""
    return f"{name}-{uuid.uuid4().hex[:6]}"


def upload(client: httpx.Client, data: bytes, name: str, **query: Any) -> httpx.Response:
    params = {"patient": "P-1", "name": name, "consent": "true", **query}
    return client.post(
        "/api/v1/file-sessions",
        params=params,
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )


def started(client: httpx.Client, video: Path, name: str) -> int:
    response = upload(client, video.read_bytes(), name)
    assert response.status_code == 201, response.text
    session: dict[str, Any] = response.json()
    assert session["status"] == "recording" and session["settings"]["source"] == "file"
    return int(session["id"])


def progress(client: httpx.Client, sid: int) -> dict[str, Any]:
    response = client.get(f"/api/v1/sessions/{sid}/analysis", params={"since": 10**9})
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def wait_ended(client: httpx.Client, sid: int, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = progress(client, sid)
        if now["state"] != "analysing":
            return now
        time.sleep(0.1)
    raise AssertionError(f"the analysis of session {sid} did not end in {timeout} s")


def server_folder(server: Server, root: Path) -> Path:
    (folder,) = root.glob(f"serve-{server.process.pid}-*")
    return folder


def uploads(server: Server, root: Path) -> list[Path]:
    return sorted(server_folder(server, root).glob("upload-*"))


def records(client: httpx.Client, sid: int) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/sessions/{sid}/records", params={"limit": 10_000})
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["records"]
    return rows


def session(client: httpx.Client, sid: int) -> dict[str, Any]:
    found: dict[str, Any] = client.get(f"/api/v1/sessions/{sid}").json()
    return found


# -- the temporary folders ---------------------------------------------------------------------


def test_a_dead_servers_uploads_are_swept_at_start_and_a_running_ones_kept(
    server: Server, leftovers: dict[str, Path], upload_root: Path
) -> None:
    assert not leftovers["dead"].exists()
    assert any(str(leftovers["dead"]) in line for line in server.output), server.output
    assert [p.name for p in leftovers["alive"].glob("upload-*/video")] == ["video"]
    # This server's own folder: private, locked, and empty while nothing is analysed.
    assert stat.S_IMODE(upload_root.stat().st_mode) == 0o700
    assert stat.S_IMODE(server_folder(server, upload_root).stat().st_mode) == 0o700
    assert uploads(server, upload_root) == []


# -- analysis --------------------------------------------------------------------------------


@pytest.mark.parametrize("video", [H264, HEVC], ids=["h264", "hevc"])
def test_a_file_session_records_what_emotrace_analyze_records(
    server: Server, client: httpx.Client, upload_root: Path, video: Path, tmp_path: Path
) -> None:
    _needs(video)
    sid = started(client, video, fresh(f"file-{video.suffix[1:]}"))
    # Meanwhile, emotrace analyze on the same file with the same settings (the web app analyses
    # recordings with the accurate model by default), into a session of its own workspace.
    cli = run_emotrace_in_process(
        "analyze", video, "-o", tmp_path / "out", "--session", "cli", "--patient", "P-1",
        "--consent", "--workspace", tmp_path / "workspace", "--model", "accurate",
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    done = wait_ended(client, sid)
    assert done["state"] == "complete" and done["fraction"] == 1.0 and done["error"] is None
    assert done["fps"] > 0 and done["eta_s"] is None
    assert uploads(server, upload_root) == []  # the video went with the analysis's end
    info = session(client, sid)
    assert info["status"] == "complete" and info["frames"] == done["frames_done"]
    assert info["settings"]["model"]["name"] == "accurate"

    from emotrace.sessions.export import columns
    from emotrace.sessions.store import SessionStore

    with SessionStore(tmp_path / "workspace", readonly=True) as store:
        expected = columns(store.load("cli"))
    served = records(client, sid)
    analysed = {line.split(",", 1)[0] for line in (tmp_path / "out" / "frames.csv").open()}
    assert len(served) == len(expected["frame"]) == len(analysed) - 1 == done["frames_done"]
    assert sum(r["face_visible"] for r in served) > 0
    for key in ("frame", "time_s", "face_visible", "track_id", "x", "y", "w", "h", "top_emotion"):
        assert [r[key] for r in served] == expected[key], key
    classes = [k for k in expected if k.startswith("p_")]
    for key in classes:
        assert [r[key] for r in served] == pytest.approx(expected[key], abs=1e-6), key


def test_an_undecodable_file_is_a_one_line_422_and_leaves_nothing(
    server: Server, client: httpx.Client, upload_root: Path
) -> None:
    before = client.get("/api/v1/sessions").json()
    for data in (b"not a video at all\n" * 4000, b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 5000):
        response = upload(client, data, "garbage")
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["error"] == "not a video" and body["detail"].startswith(UNREADABLE)
        assert "\n" not in body["detail"] and "upload-" not in body["detail"]
    empty = upload(client, b"", "empty")
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]
    assert client.get("/api/v1/sessions").json() == before  # no session, none recording
    assert uploads(server, upload_root) == []


def test_a_video_damaged_part_way_keeps_what_was_read_and_says_so(
    server: Server, client: httpx.Client, upload_root: Path, tmp_path: Path
) -> None:
    import cv2

    video = tmp_path / "damaged.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 15, (640, 480))
    for frame in face_frames(40):
        writer.write(frame)
    writer.release()
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 2])  # its header still promises 40 frames
    sid = started(client, video, fresh("damaged"))
    ended = wait_ended(client, sid)
    assert ended["state"] == "failed" and 10 <= ended["frames_done"] < 40
    assert "damaged or truncated" in ended["error"] and "\n" not in ended["error"]
    info = session(client, sid)
    assert info["status"] == "interrupted" and info["frames"] == ended["frames_done"]
    assert uploads(server, upload_root) == []


def test_a_video_over_the_limit_is_refused_before_it_is_read(
    server: Server, upload_root: Path
) -> None:
    # 17 GiB declared, over the 16 GiB default of --max-video-mb: a 413 without reading a byte.
    port = int(server.base.rsplit(":", 1)[1])
    head = (
        "POST /api/v1/file-sessions?patient=P-1&consent=true HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {server.token}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {17 * 1024**3}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode())
        reply = b""
        while b"\r\n\r\n" not in reply:  # the head, then the body it announces
            reply += sock.recv(65536)
        status, _, rest = reply.partition(b"\r\n\r\n")
        length = re.search(rb"content-length: (\d+)", status, re.IGNORECASE)
        assert length is not None, reply
        while len(rest) < int(length.group(1)):
            rest += sock.recv(65536)
    assert status.startswith(b"HTTP/1.1 413"), reply
    assert b"--max-video-mb" in rest, reply
    assert uploads(server, upload_root) == []


def test_a_file_session_needs_consent_and_a_free_name(
    server: Server, client: httpx.Client, upload_root: Path
) -> None:
    _needs(H264)
    refused = upload(client, H264.read_bytes(), fresh("no-consent"), consent="false")
    assert refused.status_code == 422 and "consent" in refused.json()["detail"]
    name = fresh("taken")
    sid = started(client, H264, name)
    client.post(f"/api/v1/sessions/{sid}/analysis/cancel")  # kept, name and all
    taken = upload(client, H264.read_bytes(), name)
    assert taken.status_code == 409 and "already exists" in taken.json()["detail"]
    assert uploads(server, upload_root) == []


def test_cancel_stops_at_once_keeps_what_was_analysed_and_removes_the_video(
    server: Server, client: httpx.Client, upload_root: Path
) -> None:
    _needs(HEVC)
    sid = started(client, HEVC, fresh("cancelled"))
    # While it runs: the video is in a folder of its own, both private.
    (folder,) = uploads(server, upload_root)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert [p.name for p in folder.iterdir()] == ["video"]
    assert stat.S_IMODE((folder / "video").stat().st_mode) == 0o600
    while progress(client, sid)["frames_done"] < 5:
        time.sleep(0.02)
    t0 = time.monotonic()
    response = client.post(f"/api/v1/sessions/{sid}/analysis/cancel")
    assert response.status_code == 200, response.text
    assert time.monotonic() - t0 < 5
    cancelled = response.json()
    assert cancelled["state"] == "cancelled"
    assert 5 <= cancelled["frames_done"] < cancelled["frames_total"] == 169
    assert not folder.exists() and uploads(server, upload_root) == []
    info = session(client, sid)
    assert info["status"] == "interrupted" and info["frames"] == cancelled["frames_done"]
    assert len(records(client, sid)) == cancelled["frames_done"]
    # Cancelling again changes nothing; an unknown session is a 404.
    again = client.post(f"/api/v1/sessions/{sid}/analysis/cancel").json()
    assert again["frames_done"] == cancelled["frames_done"]
    assert client.get("/api/v1/sessions/999999/analysis").status_code == 404


def test_finish_stops_a_file_session_as_complete(
    server: Server, client: httpx.Client, upload_root: Path
) -> None:
    _needs(HEVC)
    sid = started(client, HEVC, fresh("finished-early"))
    while progress(client, sid)["frames_done"] < 3:
        time.sleep(0.02)
    finished = client.post(f"/api/v1/sessions/{sid}/finish")
    assert finished.status_code == 200 and finished.json()["status"] == "complete"
    assert 3 <= finished.json()["frames"] < 169
    assert progress(client, sid)["state"] == "complete"
    assert uploads(server, upload_root) == []


# -- the page --------------------------------------------------------------------------------


@pytest.mark.browser
def test_the_page_analyses_an_hevc_file_on_the_server(
    server: Server, client: httpx.Client, tmp_path: Path, upload_root: Path
) -> None:
    _needs(HEVC)
    sync_api = pytest.importorskip("playwright.sync_api")
    from test_serve_browser import BINARY, TIMEOUT_MS, shot

    if not Path(BINARY).is_file():
        pytest.skip("needs Chromium (Debian: apt-get install chromium chromium-driver)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=BINARY, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(server.url)
        page.click("#nav-new")
        assert page.is_checked("input[name=source][value=camera]")
        assert "only the numbers are kept" in page.inner_text("#file-privacy")
        page.fill("#patient", "P-2")
        page.fill("#session-name", fresh("phone-video"))
        page.check("#consent")
        page.set_input_files("#video-file", str(HEVC))
        assert page.is_checked("input[name=source][value=file]")  # chosen by choosing a file
        page.click("#start")
        page.wait_for_selector("#view-file:not([hidden])")
        sid = int(page.evaluate("() => location.hash").split("/")[-1])
        page.wait_for_function("() => window.emotraceState.fileProgress")
        shot(page, "file_session")  # for a person to look at (README's screenshot)
        page.reload()  # the server analyses on: the reloaded page follows the same analysis
        page.wait_for_selector("#view-review:not([hidden])")
        shown = page.evaluate("() => window.emotraceState.fileProgress")
        assert shown["state"] == "complete" and shown["fraction"] == 1.0
        assert shown["session_id"] == sid and shown["frames_done"] == 169
        page.wait_for_function(
            "() => /\\d+ frames/.test(document.querySelector('#review-meta').textContent)"
        )
        meta = re.search(r"(\d+) frames", page.inner_text("#review-meta"))
        assert meta is not None and int(meta.group(1)) == 169
        # A file that is no video fails with one sentence, on the form, and leaves nothing.
        page.click("#nav-new")
        page.fill("#patient", "P-2")
        page.fill("#session-name", "not-a-video")
        page.check("#consent")
        junk = tmp_path / "notes.mp4"
        junk.write_bytes(b"not a video\n" * 1000)
        page.set_input_files("#video-file", str(junk))
        page.click("#start")
        page.wait_for_function("() => document.querySelector('#new-error').textContent !== ''")
        assert page.inner_text("#new-error").startswith(UNREADABLE)
        # A cancelled video can be finished from the list, never resumed: it is analysed once.
        cancelled = started(client, HEVC, fresh("cancelled-row"))
        client.post(f"/api/v1/sessions/{cancelled}/analysis/cancel")
        page.click("#nav-sessions")
        row = page.wait_for_selector(f"#sessions-table tr[data-id='{cancelled}']")
        assert row is not None and row.query_selector("button.finish") is not None
        assert row.query_selector("button.resume") is None
        browser.close()
    assert uploads(server, upload_root) == []
