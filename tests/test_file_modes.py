"""Patients' numbers stay the user's own: the workspace folder is 0700, its database, WAL and
shared-memory files 0600, and exports and reports are 0600, whatever the umask (here the usual
022, set explicitly). Real files, real SQLite, real ``emotrace`` processes."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from chromium_helpers import needs_chromium
from conftest import run_emotrace as emotrace
from emotrace.sessions.recorder import SessionRecorder
from emotrace.sessions.store import SessionStore
from emotrace.sessions.workspace import resolve_workspace
from session_streams import CLASSES, db_files, stream


@pytest.fixture(autouse=True)
def umask_022() -> Iterator[None]:
    """The common default umask (files 0644, folders 0755), for this process and its children."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _record(workspace: Path, name: str = "week-1") -> None:
    with SessionRecorder(name, "P-017", CLASSES, workspace=workspace, notes="private") as rec:
        for index, time_s, faces in stream([(3, "happy"), (2, "sad")]):
            rec.record(index, time_s, faces)
        rec.mark("topic: family", 1.0)


def test_a_new_workspace_is_private_from_the_first_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The default location (under XDG_DATA_HOME), and a folder named with --workspace.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    for workspace in (None, tmp_path / "therapy"):
        db = resolve_workspace(workspace)
        with SessionRecorder("week-1", "P-017", CLASSES, workspace=workspace) as recorder:
            for index, time_s, faces in stream([(2, "happy")]):
                recorder.record(index, time_s, faces)
            # While recording, the WAL and shared-memory files exist: SQLite made them.
            files = db_files(db)
            assert all(p.exists() for p in files)
            assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
        assert mode(db.parent) == 0o700
        assert mode(db) == 0o600
    assert mode(tmp_path / "xdg") == 0o755  # the parents are the user's own business


def test_an_existing_wide_workspace_is_tightened_when_opened_and_says_so_once(
    tmp_path: Path,
) -> None:
    _record(tmp_path / "ws")
    db = resolve_workspace(tmp_path / "ws")
    with SessionStore(tmp_path / "ws"):  # keeps the -wal and -shm files while widened
        for path in db_files(db):
            path.chmod(0o644)
        db.parent.chmod(0o755)
        listed = emotrace("sessions", "list", "--workspace", tmp_path / "ws", cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert "week-1" in listed.stdout
        warnings = listed.stderr.strip().splitlines()
        assert len(warnings) == 1 and warnings[0].startswith("emotrace: warning: "), warnings
        assert str(db.parent) in warnings[0] and "0700" in warnings[0]
        assert mode(db.parent) == 0o700
        assert {p.name: mode(p) for p in db_files(db)} == {p.name: 0o600 for p in db_files(db)}
        again = emotrace("sessions", "list", "--workspace", tmp_path / "ws", cwd=tmp_path)
        assert again.returncode == 0 and again.stderr == ""


def test_a_workspace_file_named_with_its_folder_keeps_that_folder_as_it_is(
    tmp_path: Path,
) -> None:
    """``--workspace DIR/name.db``: the file is private, the user's folder is not ours."""
    shared = tmp_path / "shared"
    shared.mkdir()
    _record(shared / "mine.db")
    assert mode(shared / "mine.db") == 0o600
    assert mode(shared) == 0o755


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_exports_are_private(tmp_path: Path, fmt: str) -> None:
    if fmt == "parquet":
        pytest.importorskip("pyarrow", reason="the parquet extra is not installed")
    _record(tmp_path / "ws")
    out = tmp_path / f"out.{fmt}"
    out.write_text("an older export, readable by all")
    out.chmod(0o644)
    result = emotrace("sessions", "export", "week-1", "-o", out, "--workspace", tmp_path / "ws")
    assert result.returncode == 0, result.stderr
    written = [out] + ([tmp_path / "out_markers.csv"] if fmt == "csv" else [])
    assert out.read_bytes() != b"an older export, readable by all"
    assert {p.name: mode(p) for p in written} == {p.name: 0o600 for p in written}


def test_an_html_report_is_private(tmp_path: Path) -> None:
    _record(tmp_path / "ws")
    page = tmp_path / "r.html"
    result = emotrace("report", "week-1", "-o", page, "--workspace", tmp_path / "ws")
    assert result.returncode == 0, result.stderr
    assert "<section" in page.read_text() and mode(page) == 0o600


@needs_chromium
@pytest.mark.slow
def test_a_pdf_report_is_private(tmp_path: Path) -> None:
    _record(tmp_path / "ws")
    page = tmp_path / "r.html"
    result = emotrace("report", "week-1", "-o", page, "--pdf", "--workspace", tmp_path / "ws")
    assert result.returncode == 0, result.stderr
    pdf = page.with_suffix(".pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert mode(page) == 0o600 and mode(pdf) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "r.pdf", "ws"]
