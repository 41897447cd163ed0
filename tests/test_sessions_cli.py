"""``emotrace sessions ...`` and ``emotrace report`` as a user runs them: real files, exit codes
and messages (the CLI's ``main`` in this process: the same exit code and output, no interpreter
start)."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
from pathlib import Path

import pytest

from conftest import assert_one_line_error
from conftest import run_emotrace_in_process as emotrace
from emotrace.sessions.recorder import SessionRecorder, record_session
from emotrace.sessions.workspace import resolve_workspace
from session_streams import CLASSES, db_files, file_digest, stream


def _session(workspace: Path, name: str = "week-1", patient: str = "P-017") -> None:
    with SessionRecorder(name, patient, CLASSES, workspace=workspace) as recorder:
        for index, time_s, faces in stream([(18, "happy"), (2, None), (10, "sad")]):
            recorder.record(index, time_s, faces)
        recorder.mark("topic: family", 20.0)


def test_sessions_commands_end_to_end(tmp_path: Path) -> None:
    data_home = tmp_path / "xdg"
    env = {"XDG_DATA_HOME": str(data_home)}  # the default workspace honours XDG_DATA_HOME
    _session(data_home / "emotrace", "week-1")
    _session(data_home / "emotrace", "week-2")

    listed = json.loads(emotrace("sessions", "list", "--json", cwd=tmp_path, env=env).stdout)
    assert [(s["name"], s["status"], s["frames"]) for s in listed] == [
        ("week-1", "complete", 300), ("week-2", "complete", 300),
    ]  # fmt: skip
    marked = emotrace("sessions", "mark", "week-1", "exercise start", "--at", "25", cwd=tmp_path,
                      env=env)  # fmt: skip
    assert marked.returncode == 0 and "0:25" in marked.stdout
    edited = emotrace("sessions", "edit", "1", "--notes", "calmer", "--consent", cwd=tmp_path,
                      env=env)  # fmt: skip
    assert edited.returncode == 0 and "consent yes" in edited.stdout
    shown = emotrace("sessions", "show", "week-1", "--json", "--windows", "10", cwd=tmp_path,
                     env=env)  # fmt: skip
    summary = json.loads(shown.stdout)
    assert summary["time_share"]["happy"] == pytest.approx(0.64286, abs=1e-4)  # 18 of 28 s
    assert summary["visible_ratio"] == pytest.approx(28 / 30)
    assert [m["label"] for m in summary["markers"]] == ["topic: family", "exercise start"]
    assert list(summary["windows"]) == ["5.0", "10.0"] and summary["session"]["consent"] is True
    text = emotrace("sessions", "show", "week-1", cwd=tmp_path, env=env).stdout
    assert "happy 64%" in text and "notes: calmer" in text

    for fmt in ("csv", "jsonl", "parquet"):
        if fmt == "parquet":
            pytest.importorskip("pyarrow", reason="the parquet extra is not installed")
        result = emotrace("sessions", "export", "week-1", "--format", fmt, cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        assert (tmp_path / f"P-017_session1.{fmt}").is_file()  # pseudonym and id only
    with (tmp_path / "P-017_session1.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 300 and rows[0]["p_happy"] == "1.0" and rows[0]["top_emotion"] == "happy"
    missing = rows[185]
    assert missing["face_visible"] == "0" and missing["p_happy"] == "" and missing["valence"] == ""
    markers = (tmp_path / "P-017_session1_markers.csv").read_text().splitlines()
    assert markers == [
        "time_s,end_s,label,excluded",
        "20.0,,topic: family,0",
        "25.0,,exercise start,0",
    ]
    lines = [json.loads(x) for x in (tmp_path / "P-017_session1.jsonl").read_text().splitlines()]
    assert lines[0]["type"] == "session" and "notes" not in lines[0] and "source" not in lines[0]
    assert [x["type"] for x in lines[1:]] == ["frame"] * 300 + ["marker"] * 2
    assert lines[186]["p_sad"] is None and lines[186]["face_visible"] == 0
    if (tmp_path / "P-017_session1.parquet").exists():
        import pyarrow.parquet as pq

        table = pq.read_table(tmp_path / "P-017_session1.parquet")
        assert table.num_rows == 300 and table.column("p_sad").null_count == 20
        assert json.loads(table.schema.metadata[b"emotrace.markers"])[0]["label"] == "topic: family"

    deleted = emotrace("sessions", "delete", "week-2", "--yes", cwd=tmp_path, env=env)
    assert deleted.returncode == 0 and "deleted 1 session" in deleted.stdout
    listed = json.loads(emotrace("sessions", "list", "--json", cwd=tmp_path, env=env).stdout)
    assert [s["name"] for s in listed] == ["week-1"]
    _session(data_home / "emotrace", "intake", "P-018")
    erased = emotrace("sessions", "delete", "--patient", "P-017", "--yes", cwd=tmp_path, env=env)
    assert erased.returncode == 0 and "deleted 1 session" in erased.stdout
    listed = json.loads(emotrace("sessions", "list", "--json", cwd=tmp_path, env=env).stdout)
    assert [s["patient"] for s in listed] == ["P-018"]


def test_listing_an_absent_workspace_creates_nothing(tmp_path: Path) -> None:
    result = emotrace("sessions", "list", "--workspace", tmp_path / "none", cwd=tmp_path)
    assert result.returncode == 0 and "no sessions" in result.stdout
    assert not (tmp_path / "none").exists()


def _newer(ws: Path) -> None:
    _session(ws, "week-1")
    conn = sqlite3.connect(resolve_workspace(ws))
    conn.execute("PRAGMA user_version = 7")
    conn.close()


def _corrupted(ws: Path) -> None:
    record_session(stream([(300, "happy")]), "week-1", "P-017", CLASSES, workspace=ws)
    db = resolve_workspace(ws)
    raw = bytearray(db.read_bytes())
    middle = len(raw) // 4096 // 2 * 4096
    raw[middle : middle + 4096] = bytes(range(256)) * 16
    db.write_bytes(bytes(raw))


def _foreign(ws: Path) -> None:
    ws.mkdir()
    conn = sqlite3.connect(ws / "workspace.db")
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    ("build", "args", "fragments"),
    [
        (_session, ["sessions", "show", "week-9"], ["no session 'week-9'", "known: P-017/week-1"]),
        (_session, ["report", "nope"], ["no session 'nope'"]),
        (_session, ["sessions", "delete", "week-1"], ["--yes"]),
        (_session, ["sessions", "export", "week-1", "-o", "out.xlsx"], ["--format"]),
        (_session, ["sessions", "mark", "week-1", "too late"], ["--at"]),
        # NaN windows used to end in a traceback; undecodable bytes in argv too.
        (_session, ["report", "week-1", "--windows", "nan"], ["windows_s"]),
        (_session, ["sessions", "show", "week-1", "--negative-threshold", "nan"], ["threshold"]),
        (_session, ["sessions", "edit", "week-1", "--notes", os.fsdecode(b"\xff")], ["notes"]),
        (_session, ["sessions", "mark", "week-1", os.fsdecode(b"a\xff"), "--at", "1"], ["label"]),
        (_foreign, ["sessions", "list"], ["not an emotrace workspace"]),
        (_foreign, ["sessions", "delete", "x", "--yes"], ["not an emotrace workspace"]),
        (_newer, ["sessions", "list"], ["schema version 7", "upgrade emotrace"]),
        (_newer, ["sessions", "mark", "week-1", "x", "--at", "1"], ["schema version 7"]),
        (_corrupted, ["sessions", "show", "week-1"], ["corrupted", "not modified"]),
        (_corrupted, ["sessions", "delete", "week-1", "--yes"], ["corrupted"]),
    ],
)
def test_bad_input_gives_one_line_and_modifies_nothing(
    tmp_path: Path, build: object, args: list[str], fragments: list[str]
) -> None:
    ws = tmp_path / "ws"
    build(ws)  # type: ignore[operator]
    db = resolve_workspace(ws)
    before = file_digest(*db_files(db))
    result = emotrace(*args, "--workspace", ws, cwd=tmp_path)
    assert_one_line_error(result, *fragments)
    assert file_digest(*db_files(db)) == before
    assert not (tmp_path / "out.xlsx").exists()


def test_compare_refuses_another_patients_session(tmp_path: Path) -> None:
    _session(tmp_path, "week-1", "P-017")
    _session(tmp_path, "intake", "P-018")
    result = emotrace(
        "report", "week-1", "--compare", "intake", "--workspace", tmp_path, cwd=tmp_path
    )
    assert_one_line_error(result, "P-017", "P-018")
    assert list(tmp_path.glob("*.html")) == []
    trend = emotrace(
        "report", "week-1", "--trend", "-o", "r.html", "--workspace", tmp_path, cwd=tmp_path
    )
    assert trend.returncode == 0 and '<section id="trend">' not in (tmp_path / "r.html").read_text()


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["analyze", "call.avi"], ["-o OUT_DIR", "--session NAME"]),
        (["analyze", "call.avi", "--session", "s1", "--annotated"], ["-o OUT_DIR"]),
        (["analyze", "call.avi", "--session", "s1"], ["--patient PSEUDONYM"]),
        (["analyze", "call.avi", "-o", "out", "--patient", "P-1"], ["--patient needs --session"]),
        (["analyze", "call.avi", "--session", "s1", "--patient", "Jane Doe"], ["'Jane Doe'"]),
        # Names are unique per patient: P-017 has a week-1 (P-1 may have one of its own).
        (["analyze", "call.avi", "--session", "week-1", "--patient", "P-017"], ["already exists"]),
        (["live", "--no-window", "--camera", "call.avi"], ["--record OUT_DIR or --session"]),
    ],
)
def test_recording_options_of_analyze_and_live(
    tmp_path: Path, args: list[str], fragments: list[str]
) -> None:
    _session(tmp_path / "ws")
    result = emotrace(*args, "--workspace", tmp_path / "ws", cwd=tmp_path)
    assert_one_line_error(result, *fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ws"]  # nothing opened or written
