"""The SQLite workspace on real files: WAL, migrations, refusals that modify nothing, deletion."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from emotrace.errors import SessionError, StoreError
from emotrace.sessions._schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION
from emotrace.sessions.recorder import SessionRecorder, record_session
from emotrace.sessions.store import SessionStore
from emotrace.sessions.types import ModelInfo, check_name
from emotrace.sessions.workspace import resolve_workspace
from session_streams import CLASSES, db_files, file_digest, onehot, stream


def _record(workspace: Path, name: str = "week-1", patient: str = "P-017", seconds: float = 30,
            **options: object) -> None:  # fmt: skip
    spec = [(seconds * 0.6, "happy"), (seconds * 0.1, None), (seconds * 0.3, "sad")]
    record_session(stream(spec), name, patient, CLASSES, workspace=workspace, **options)


def test_round_trip_in_wal_mode(tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"not really a model, but it has a checksum")
    recorder = SessionRecorder(
        "week-1", "P-017", CLASSES, workspace=tmp_path, source="camera 0",
        model=ModelInfo.from_model(model, version="1.2"), settings={"detect_every": 2},
        consent=True, notes="first session",
    )  # fmt: skip
    with recorder:
        for index, time_s, faces in stream([(6, "happy"), (1, None), (3, "sad")]):
            recorder.record(index, time_s, faces)
        recorder.mark("exercise start")
    db = resolve_workspace(tmp_path)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()

    with SessionStore(tmp_path, readonly=True) as store:
        data = store.load("week-1")
        assert store.load(str(data.info.id)).info == data.info  # by id as well as by name
    info = data.info
    assert (info.patient, info.status, info.consent, info.source) == (
        "P-017", "complete", True, "camera 0",
    )  # fmt: skip
    assert info.model.sha256 == ModelInfo.from_model(model).sha256 and info.model.version == "1.2"
    assert info.settings == {"detect_every": 2, "patient_track": None}
    assert info.frames == 100 and info.visible_frames == 90 and info.notes == "first session"
    assert data.frames.tolist() == list(range(100))
    assert not data.visible[60:70].any() and data.visible[:60].all()
    assert np.isnan(data.probabilities[60:70]).all() and (data.track_ids[60:70] == -1).all()
    np.testing.assert_array_equal(data.probabilities[0], onehot("happy"))
    np.testing.assert_array_equal(data.boxes[0], [40, 30, 80, 80])
    assert [(m.label, m.time_s) for m in data.markers] == [("exercise start", 9.9)]


def test_the_default_model_is_identified_by_its_checksum() -> None:
    from emotrace.runtime.loading import default_model_path

    expected = hashlib.sha256(default_model_path().read_bytes()).hexdigest()
    assert ModelInfo.from_model("default").sha256 == expected


def _v1_workspace(db: Path) -> None:
    """A workspace as emotrace's first schema wrote it, with a recording that never ended."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA journal_mode = WAL")
    for statement in MIGRATIONS[0].split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO sessions (id, name, patient, started_at, classes, status)"
        " VALUES (1, 'old', 'P-001', 1600000000, ?, 'recording')",
        (json.dumps(CLASSES),),
    )
    probs = onehot("sad").astype("<f4").tobytes()
    conn.executemany(
        "INSERT INTO frames VALUES (1, ?, ?, 1, 3, 0, 0, 50, 50, 1.0, ?)",
        [(i, i / 10, probs) for i in range(20)],
    )
    conn.execute("INSERT INTO markers VALUES (1, 1, 0.5, 'topic change', 1600000001)")
    conn.close()


def test_an_older_schema_is_migrated_and_its_open_recording_is_interrupted(tmp_path: Path) -> None:
    db = tmp_path / "workspace.db"
    _v1_workspace(db)
    with SessionStore(tmp_path) as store:
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        columns = {row[1] for row in store.conn.execute("PRAGMA table_info(sessions)")}
        assert {"heartbeat", "writer_pid", "writer_host", "baseline_id"} <= columns
        # Version 4 rebuilt the sessions table: its frames and markers are still attached,
        # and deleting the session still takes them along (the keys are on again).
        assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert store.conn.execute("PRAGMA foreign_key_check").fetchall() == []
        data = store.load("old")
    assert data.info.status == "interrupted" and len(data) == 20
    assert [(m.label, m.time_s) for m in data.markers] == [("topic change", 0.5)]
    assert data.info.ended_at == data.info.started_at  # no heartbeat to tell when it stopped
    np.testing.assert_array_equal(data.probabilities[5], onehot("sad"))
    _record(tmp_path, "new")  # and the migrated workspace takes new sessions


def test_a_newer_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    _record(tmp_path)
    db = resolve_workspace(tmp_path)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    before = file_digest(*db_files(db))
    for readonly in (True, False):
        with pytest.raises(StoreError, match=r"schema version 99, newer .*upgrade emotrace"):
            SessionStore(tmp_path, readonly=readonly)
    with pytest.raises(StoreError, match="newer"):
        SessionRecorder("week-2", "P-017", CLASSES, workspace=tmp_path).start()
    assert file_digest(*db_files(db)) == before


def _foreign_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER, total REAL)")
    conn.execute("INSERT INTO invoices VALUES (1, 9.5)")
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_foreign_sqlite, "an SQLite database but not an emotrace workspace"),
        (lambda p: p.write_text("name,age\nx,1\n"), "not an SQLite database"),
        (lambda p: p.write_bytes(b""), "not an SQLite database"),
    ],
)
def test_files_that_are_not_emotrace_workspaces_are_refused_untouched(
    tmp_path: Path, make: object, message: str
) -> None:
    db = tmp_path / "other.db"
    make(db)  # type: ignore[operator]
    before = file_digest(*db_files(db))
    with pytest.raises(StoreError, match=message):
        SessionStore(db)
    with pytest.raises(StoreError, match=message):
        SessionRecorder("s", "P-1", CLASSES, workspace=db).start()
    assert file_digest(*db_files(db)) == before


def test_a_corrupted_workspace_is_detected_and_never_written_to(tmp_path: Path) -> None:
    _record(tmp_path, seconds=300)  # 3,000 frames, a few dozen pages
    db = resolve_workspace(tmp_path)
    assert not db_files(db)[1].exists(), "a cleanly closed workspace has no -wal file"
    raw = bytearray(db.read_bytes())
    page = 4096
    middle = (len(raw) // page // 2) * page
    raw[middle : middle + page] = b"\xde\xad\xbe\xef" * (page // 4)
    db.write_bytes(bytes(raw))
    before, mtime = file_digest(*db_files(db)), db.stat().st_mtime_ns
    for readonly in (True, False):
        with pytest.raises(StoreError, match=r"is corrupted .*it was not modified"):
            SessionStore(tmp_path, readonly=readonly)
    with pytest.raises(StoreError, match="corrupted"):
        SessionRecorder("week-2", "P-017", CLASSES, workspace=tmp_path).start()
    assert file_digest(*db_files(db)) == before and db.stat().st_mtime_ns == mtime


def test_deleting_removes_the_data_from_the_database_and_the_wal(tmp_path: Path) -> None:
    secret_patient, secret_marker = "PSEUDO-ZQX-4711", "MARKER-UNIQUE-9913"
    _record(tmp_path, "keep", "P-KEEP")
    recorder = SessionRecorder("gone", secret_patient, CLASSES, workspace=tmp_path,
                               notes="NOTE-UNIQUE-5521")  # fmt: skip
    with recorder:
        for index, time_s, faces in stream([(20, "fear")]):
            recorder.record(index, time_s, faces)
        recorder.mark(secret_marker)
    db = resolve_workspace(tmp_path)
    secrets = [secret_patient.encode(), secret_marker.encode(), b"NOTE-UNIQUE-5521"]

    def leaked() -> list[bytes]:
        blobs = b"".join(p.read_bytes() for p in db_files(db) if p.exists())
        return [s for s in secrets if s in blobs]

    # An idle second connection stays open throughout, as another emotrace process would: it
    # keeps the WAL file alive, so closing the store does not checkpoint it for us.
    other = sqlite3.connect(db, isolation_level=None)
    assert other.execute("SELECT count(*) FROM sessions").fetchall() == [(2,)]
    assert leaked() == secrets, "the strings should be on disk before the delete"
    with SessionStore(tmp_path) as store:
        assert store.delete(["gone"]) is True
        assert [i.name for i in store.sessions()] == ["keep"]
        assert len(store.load("keep")) == 300
    assert leaked() == []
    other.close()
    with pytest.raises(SessionError, match="no session 'gone'"), SessionStore(tmp_path) as store:
        store.get("gone")


def test_a_delete_during_another_read_is_pending_at_once_and_purged_after_it(
    tmp_path: Path,
) -> None:
    """A reader in another connection keeps the WAL: the delete does not wait out the busy
    timeout (seconds) for it, says the purge is pending, and finishes it once the reader is
    done, whether by ``finish_purge`` or at ``close``."""
    for closing in (False, True):
        workspace = tmp_path / f"ws-{closing}"
        _record(workspace, "keep")
        _record(workspace, "gone", notes="NOTE-PENDING-UNIQUE-3318")
        db = resolve_workspace(workspace)

        def leaked(db: Path = db) -> bool:
            return any(
                p.exists() and b"NOTE-PENDING-UNIQUE-3318" in p.read_bytes()
                for p in db_files(db)[:2]
            )

        reader = sqlite3.connect(db, isolation_level=None)
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM sessions").fetchone() == (2,)
        store = SessionStore(workspace)
        try:
            start = time.monotonic()
            assert store.delete(["gone"]) is False
            assert time.monotonic() - start < 3.0  # not the 5 s busy timeout, twice
            assert store.purge_pending and leaked()
            assert store.finish_purge() is False  # the reader still holds its snapshot
            assert [i.name for i in store.sessions()] == ["keep"]
            reader.execute("COMMIT")
            if not closing:
                assert store.finish_purge() is True and not store.purge_pending
                assert not leaked()
        finally:
            store.close()
        assert not leaked()
        assert reader.execute("SELECT name FROM sessions").fetchall() == [("keep",)]
        reader.close()


def test_missing_sessions_names_and_duplicates(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no emotrace workspace"):
        SessionStore(tmp_path / "nothing-here")
    assert not (tmp_path / "nothing-here").exists()
    _record(tmp_path)
    with SessionStore(tmp_path) as store, pytest.raises(SessionError, match=r"known: P-017/week-1"):
        store.get("week-9")
    with pytest.raises(SessionError, match="already exists"):
        _record(tmp_path)
    for bad in ("Anna Smith", "../etc/passwd", "", "-x", "a" * 65):
        with pytest.raises(SessionError, match="not valid"):
            check_name(bad, "patient pseudonym")


def test_markers_notes_and_consent_can_be_added_later(tmp_path: Path) -> None:
    _record(tmp_path)
    with SessionStore(tmp_path) as store:
        marker = store.add_marker("week-1", "  topic: family ", 12.5)
        assert (marker.label, marker.time_s) == ("topic: family", 12.5)
        with pytest.raises(SessionError, match="--at"):
            store.add_marker("week-1", "now?")
        with pytest.raises(SessionError, match="label"):
            store.add_marker("week-1", " ", 1.0)
        # The session is 30 s long: a marker far past its end is a typo, not a time in it.
        for late in (3600.0, 1e12):
            with pytest.raises(SessionError, match="after the end of session 'week-1'"):
                store.add_marker("week-1", "late", late)
            with pytest.raises(SessionError, match="after the end"):
                store.edit_marker(store.get("week-1").id, marker.id, time_s=late)
        assert store.add_marker("week-1", "at the end", 29.9).time_s == 29.9
        store.delete_marker(store.get("week-1").id, store.markers(store.get("week-1").id)[-1].id)
        info = store.update("week-1", notes="calmer than last week", consent=True)
        assert info.notes == "calmer than last week" and info.consent and info.markers == 1
    start = time.time()
    with SessionRecorder("live", "P-017", CLASSES, workspace=tmp_path) as recorder:
        recorder.record(0, 0.0, stream([(1, "happy")]).__next__()[2])
        with SessionStore(tmp_path) as store:  # a second process marking a live session
            live = store.add_marker("live", "exercise start")
            with pytest.raises(SessionError, match="being recorded"):
                store.delete(["live"])
    assert 0 <= live.time_s <= time.time() - start + 0.1


def test_a_second_store_in_this_process_keeps_its_wal_from_another_process(tmp_path: Path) -> None:
    # emotrace serve keeps one store open and opens another per recording. Reading the raw
    # header of the second used to close a file descriptor of the database, which drops every
    # POSIX lock of the process: another process's writer then deleted the live WAL on closing
    # (`emotrace sessions mark` while serve ran), and the server's next write found the
    # workspace "malformed".
    import subprocess
    import sys

    _record(tmp_path)
    db = resolve_workspace(tmp_path)
    with SessionStore(tmp_path) as server:
        sid = server.create_session("live", "P-017", CLASSES)
        SessionStore(tmp_path).close()  # a recording opens (and closes) its own store
        marker = (
            "from emotrace.sessions.store import SessionStore\n"
            f"with SessionStore({str(tmp_path)!r}) as s: s.add_marker('week-1', 'cli', 1.0)"
        )
        subprocess.run([sys.executable, "-c", marker], check=True, timeout=60)
        assert db.with_name(db.name + "-wal").exists()
        server.append(sid, [(0, 0.0, 0, None, None, None, None, None, None, None)])
        assert server.get("live").frames == 1
        count = (
            "import sqlite3\n"
            f"c = sqlite3.connect({db.as_uri() + '?mode=ro'!r}, uri=True)\n"
            "print(c.execute('SELECT count(*) FROM frames WHERE session_id = ?', "
            f"({sid},)).fetchone()[0])"
        )
        seen = subprocess.run([sys.executable, "-c", count], capture_output=True, text=True)
        assert seen.stdout.strip() == "1", seen.stderr
    with SessionStore(tmp_path, readonly=True) as store:
        assert store.get("live").frames == 1 and store.get("week-1").markers == 1


def test_the_patients_head_pose_is_stored_and_exported(tmp_path: Path) -> None:
    from emotrace.faces.pose import head_pose
    from emotrace.results import FaceEmotions
    from emotrace.sessions.export import columns

    # The patient with landmarks, then a frame without landmarks (a Haar face), then none.
    points = np.array(
        [[231.7, 242.4], [317.1, 242.3], [265.4, 291.6], [235.2, 327.5], [313.1, 327.7]]
    )
    with_landmarks = FaceEmotions(
        np.array([[190, 150, 180, 250]]), onehot("happy")[None], CLASSES,
        track_ids=np.array([1]), landmarks=points[None],
    )  # fmt: skip
    without = FaceEmotions(
        np.array([[190, 150, 180, 250]]), onehot("happy")[None], CLASSES, track_ids=np.array([1])
    )
    frames = [(0, 0.0, with_landmarks), (1, 0.1, without), (2, 0.2, FaceEmotions.empty(CLASSES))]
    record_session(frames, "posed", "P-1", CLASSES, workspace=tmp_path)
    with SessionStore(tmp_path, readonly=True) as store:
        data = store.load("posed")
    expected = np.round(head_pose(points) or (0, 0, 0), 1)
    np.testing.assert_allclose(data.poses[0], expected)
    assert np.isnan(data.poses[1:]).all()
    table = columns(data)
    assert [table["yaw"][0], table["pitch"][0], table["roll"][0]] == expected.tolist()
    assert table["yaw"][1:] == [None, None]
