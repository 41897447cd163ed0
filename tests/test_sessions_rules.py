"""Session rules shared by the CLI and the server (``emotrace.sessions.rules``), and paging."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emotrace.errors import SessionBusy, SessionError, SessionExists
from emotrace.sessions import rules
from emotrace.sessions.recorder import SessionRecorder, record_session
from emotrace.sessions.store import SessionStore
from emotrace.sessions.types import COMPLETE, INTERRUPTED
from session_streams import CLASSES, stream


def _record(workspace: Path, name: str, patient: str = "P-017", seconds: float = 6) -> None:
    spec = [(seconds * 0.6, "happy"), (seconds * 0.4, "sad")]
    record_session(stream(spec), name, patient, CLASSES, workspace=workspace)


def test_a_taken_name_is_session_exists_and_an_id_is_not_a_name(tmp_path: Path) -> None:
    _record(tmp_path, "week-1")
    with SessionStore(tmp_path) as store:
        with pytest.raises(SessionExists, match="'week-1' already exists"):
            rules.ensure_name_free(store, "week-1", "P-017")
        session_id = store.get("week-1").id
        rules.ensure_name_free(store, str(session_id), "P-017")  # "1" is free: week-1's id
    with pytest.raises(SessionExists):  # creating checks again, atomically
        _record(tmp_path, "week-1")


def test_finishing_refuses_a_live_recording_and_completes_an_interrupted_one(
    tmp_path: Path,
) -> None:
    recorder = SessionRecorder("live", "P-017", CLASSES, workspace=tmp_path).start()
    try:
        with SessionStore(tmp_path) as store, pytest.raises(SessionBusy, match="being recorded"):
            rules.finish(store, "live")
    finally:
        recorder.close(INTERRUPTED)
    with SessionStore(tmp_path) as store:
        assert rules.finish(store, "live").status == COMPLETE
        assert rules.finish(store, "live").status == COMPLETE  # twice changes nothing


def test_a_reports_trend_is_the_patients_earlier_sessions(tmp_path: Path) -> None:
    for name in ("week-1", "week-2", "week-3"):
        _record(tmp_path, name)
    _record(tmp_path, "intake", patient="P-018")
    with SessionStore(tmp_path) as store:
        week2 = store.get("week-2")
        assert [i.name for i in rules.earlier_sessions(store, week2)] == ["week-1"]
        summary, trend = rules.report_summaries(store, "week-3", trend=True)
        assert summary.info.name == "week-3"
        assert [t.info.name for t in trend] == ["week-1", "week-2"]
        # A later session is shown only when asked for by name.
        _, asked = rules.report_summaries(store, "week-1", compare=["week-3"])
        assert [t.info.name for t in asked] == ["week-3"]
        with pytest.raises(SessionError, match="must be patient P-017's, not P-018"):
            rules.report_summaries(store, "week-1", compare=["intake"])


def test_pages_of_a_session_are_its_frames_in_order(tmp_path: Path) -> None:
    _record(tmp_path, "week-1", seconds=10)
    with SessionStore(tmp_path) as store:
        whole = store.load("week-1")
        pages = [store.load("week-1", offset=o, limit=7) for o in range(0, len(whole) + 7, 7)]
        with pytest.raises(SessionError, match="must not be negative"):
            store.load("week-1", offset=-1)
    assert len(whole) > 20 and len(pages[-1]) == 0
    np.testing.assert_array_equal(np.concatenate([p.frames for p in pages]), whole.frames)
    np.testing.assert_array_equal(
        np.concatenate([p.probabilities for p in pages]), whole.probabilities
    )
    np.testing.assert_array_equal(np.concatenate([p.visible for p in pages]), whole.visible)
