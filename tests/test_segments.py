"""Segments (markers with an end) and excluded stretches: store, analytics, export, report, CLI.

Every session here is recorded into a real SQLite workspace; the excluded stretch is checked
against the same session recorded without those frames.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import re
from pathlib import Path

import pytest

from conftest import run_emotrace_in_process
from emotrace.errors import SessionError
from emotrace.sessions import SessionStore, export_session, render_report, summarize, trend
from emotrace.sessions.recorder import record_session
from session_streams import CLASSES, stream

#: 60 s at 10 frames/s: happy, sad, angry (the stretch to exclude), neutral, happy.
SPEC = [(10, "happy"), (10, "sad"), (10, "angry"), (10, "neutral"), (20, "happy")]
EXCLUDED = (20.0, 30.0)


def _record(workspace: Path, name: str, keep=lambda t: True) -> int:
    frames = (f for f in stream(SPEC) if keep(f[1]))
    record_session(frames, name, "P-017", CLASSES, workspace=workspace, consent=True)
    with SessionStore(workspace, readonly=True) as store:
        return store.get(f"P-017/{name}").id


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three sessions of one patient: ``full`` (every frame, with an excluded stretch and two
    segments), ``without`` (recorded without the stretch's frames: the reference), ``later``."""
    folder = tmp_path_factory.mktemp("segments")
    full = _record(folder, "full")
    _record(folder, "without", keep=lambda t: not EXCLUDED[0] <= t < EXCLUDED[1])
    _record(folder, "later")
    with SessionStore(folder) as store:
        store.add_marker(full, "patient left the room", EXCLUDED[0], end_s=EXCLUDED[1],
                         excluded=True)  # fmt: skip
        store.add_marker(full, "exercise", 10.0, end_s=40.0)
        store.add_marker(full, "intake", 0.0, end_s=10.0)
        store.add_marker(full, "topic: family", 45.0)
        without = store.get("P-017/without").id
        store.add_marker(without, "exercise", 10.0, end_s=40.0)
        store.add_marker(without, "intake", 0.0, end_s=10.0)
        store.add_marker(without, "topic: family", 45.0)
    return folder


def _summaries(workspace: Path, *names: str) -> list:
    with SessionStore(workspace, readonly=True) as store:
        return [summarize(store.load(f"P-017/{n}")) for n in names]


def _figures(summary) -> dict:
    """Every analytic of a summary, less what names the session or lists the markers."""
    d = summary.to_dict()
    for key in ("session", "segment_stats", "excluded", "excluded_s"):
        d.pop(key)
    return d


def test_an_excluded_stretch_is_exactly_as_if_never_recorded(workspace: Path) -> None:
    full, without, later = _summaries(workspace, "full", "without", "later")
    # Recorded without those frames, the stretch is a break in the recording ("not
    # recorded"); excluded, it is neither a break nor a gap without the face: listed apart.
    assert [(g.start_s, g.end_s) for g in without.breaks] == [EXCLUDED]
    assert full.breaks == [] and full.gaps == [] == without.gaps
    assert full.excluded_s == pytest.approx(10.0) and full.not_recorded_s == 0
    same = {k: v for k, v in _figures(full).items() if k not in ("breaks", "not_recorded_s")}
    assert same == {k: v for k, v in _figures(without).items() if k in same}
    assert full.visible_ratio == without.visible_ratio == 1.0
    assert full.time_share["angry"] == 0 and later.time_share["angry"] > 0.1
    # The frames are still stored: the exclusion leaves them out of the analytics only.
    with SessionStore(workspace, readonly=True) as store:
        info = store.get("P-017/full")
        assert info.frames == store.get("P-017/without").frames + 100
    # The sessions list's face-visible figure is the summary's (one definition, one mask).
    assert info.coverage is not None and info.coverage.breaks == ()
    assert info.coverage.recorded_s == full.recorded_s == without.recorded_s
    # Trends across sessions compare the same numbers.
    assert trend([full, later]).values == trend([without, later]).values
    assert [m.label for m in full.excluded] == ["patient left the room"]


def test_segment_figures(workspace: Path) -> None:
    full, without = _summaries(workspace, "full", "without")
    stats = {g.label: g for g in full.segment_stats}
    assert list(stats) == ["intake", "exercise"]  # in time order; the exclusion is not one
    intake, exercise = stats["intake"], stats["exercise"]
    assert intake.dominant == "happy" and intake.time_share["happy"] == pytest.approx(1.0)
    assert intake.visible == pytest.approx(1.0, abs=0.02)
    # The excluded angry stretch inside the exercise is left out of it: sad and neutral only.
    assert exercise.excluded_s == pytest.approx(10.0)
    assert exercise.time_share["angry"] == 0
    assert exercise.time_share["sad"] == pytest.approx(0.5, abs=0.05)
    assert exercise.time_share["neutral"] == pytest.approx(0.5, abs=0.05)
    assert exercise.visible == pytest.approx(1.0, abs=0.05)  # of its 20 analysed seconds
    assert exercise.delta["valence"] == pytest.approx(exercise.valence - full.mean_valence)
    # The same figures as the session recorded without the stretch shows for that segment.
    reference = {g.label: g for g in without.segment_stats}["exercise"]
    assert exercise.time_share == reference.time_share
    assert exercise.valence == reference.valence and exercise.arousal == reference.arousal
    assert reference.excluded_s == 0 and reference.visible < 0.75
    # A point marker keeps its window figures; segments are not among them.
    assert [m.label for m in full.markers] == ["topic: family"]
    payload = json.loads(json.dumps(full.to_dict()))
    assert payload["segment_stats"][1]["label"] == "exercise"
    assert payload["segment_stats"][1]["duration_s"] == 30.0
    assert payload["excluded"][0]["excluded"] is True


def test_store_validates_segments_and_keeps_what_it_refuses(tmp_path: Path) -> None:
    sid = _record(tmp_path, "s1")
    with SessionStore(tmp_path) as store:
        segment = store.add_marker(sid, "intake", 1.0, end_s=5.0)
        assert (segment.end_s, segment.excluded, segment.is_segment) == (5.0, False, True)
        for kwargs, message in [
            ({"time_s": 5.0, "end_s": 5.0}, "must come after its start"),
            ({"time_s": 5.0, "end_s": 2.0}, "must come after its start"),
            ({"time_s": 5.0, "end_s": 3600.0}, "after the end of session"),
            ({"time_s": 5.0, "end_s": math.nan}, "must come after its start"),
            ({"time_s": 5.0, "excluded": True}, "excluded stretch needs an end"),
        ]:
            with pytest.raises(SessionError, match=message):
                store.add_marker(sid, "x", **kwargs)
        with pytest.raises(SessionError, match="must come after its start"):
            store.edit_marker(sid, segment.id, end_s=0.5)
        with pytest.raises(SessionError, match="needs an end"):
            store.edit_marker(sid, segment.id, point=True, excluded=True)
        assert store.markers(sid) == [segment]  # nothing refused was stored
        excluded = store.edit_marker(sid, segment.id, excluded=True, label="camera fell")
        assert (excluded.excluded, excluded.label, excluded.end_s) == (True, "camera fell", 5.0)
        point = store.edit_marker(sid, segment.id, point=True, excluded=False)
        assert (point.end_s, point.excluded, point.is_segment) == (None, False, False)
        assert store.markers(sid) == [point]


def test_exports_carry_segments(workspace: Path, tmp_path: Path) -> None:
    with SessionStore(workspace, readonly=True) as store:
        data = store.load("P-017/full")
    export_session(data, tmp_path / "out.csv")
    with (tmp_path / "out_markers.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0] == {"time_s": "0.0", "end_s": "10.0", "label": "intake", "excluded": "0"}
    assert {"time_s": "20.0", "end_s": "30.0", "label": "patient left the room",
            "excluded": "1"} in rows  # fmt: skip
    assert rows[-1]["end_s"] == "" and rows[-1]["label"] == "topic: family"
    export_session(data, tmp_path / "out.jsonl")
    lines = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    marks = [x for x in lines if x["type"] == "marker"]
    assert marks[2] == {"type": "marker", "time_s": 20.0, "end_s": 30.0,
                        "label": "patient left the room", "excluded": True}  # fmt: skip
    # The frames are exported all the same: an exclusion changes the analytics only.
    assert sum(x["type"] == "frame" for x in lines) == 600


def test_report_lists_segments_and_hatches_exclusions(workspace: Path) -> None:
    (full,) = _summaries(workspace, "full")
    html = render_report(full)
    assert 'id="parts"' in html and "patient left the room" in html
    excluded = html[html.index('id="excluded-stretches"') :]
    assert "0:20–0:30" in excluded and "0:10" in excluded
    # Hatched on both charts and on the label track.
    assert html.count('fill="url(#excluded)"') >= 3
    assert "0:10 excluded" in html  # the header's data quality
    track = re.search(r'<svg class="marks".*?</svg>', html)
    assert track is not None
    for text in ("intake", "exercise", "1 topic: family", "excluded: patient left the room"):
        assert "<title>" in track.group(0) and text in track.group(0)


def test_report_labels_never_overlap(tmp_path: Path) -> None:
    from emotrace.sessions._svg import Frame
    from emotrace.sessions._svg_marks import MAX_ROWS, Mark, layout

    long = "a very long label that a clinician typed during the session"
    marks = [Mark(t, None, f"{long} {t}") for t in range(0, 60, 2)]
    marks += [Mark(5.0, 25.0, "exercise"), Mark(0.0, 60.0, "whole")]
    frame = Frame(900, 40, 0.0, 60.0)
    placed = layout(frame, marks)
    assert len(placed) == len(marks)
    spans: dict[int, list[tuple[float, float]]] = {}
    for mark, row, shown, x in placed:
        assert shown == mark.text or shown == "" or shown.endswith("…")
        if shown:
            spans.setdefault(row, []).append((x, x + len(shown) * 5.6))
    for row in spans.values():
        row.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(row))
    assert any(shown != mark.text for mark, _, shown, _ in placed)  # some shortened
    assert {row for _, row, _, _ in placed} == set(range(MAX_ROWS))  # all rows in use


def test_cli_marks_segments_and_exclusions(workspace: Path, tmp_path: Path) -> None:
    sid = _record(tmp_path, "cli")
    env = ("--workspace", str(tmp_path))
    ok = run_emotrace_in_process("sessions", "mark", str(sid), "technical problem", "--at", "50",
                                 "--to", "55", "--exclude", *env)  # fmt: skip
    assert ok.returncode == 0 and "excluded stretch 0:50-0:55: technical problem" in ok.stdout
    seg = run_emotrace_in_process("sessions", "mark", str(sid), "intake", "--at", "0", "--to",
                                  "10", *env)  # fmt: skip
    assert seg.returncode == 0 and "segment 0:00-0:10: intake" in seg.stdout
    for args, message in [
        (("--at", "10", "--to", "5"), "must come after its start"),
        (("--at", "10", "--exclude"), "needs an end"),
    ]:
        bad = run_emotrace_in_process("sessions", "mark", str(sid), "x", *args, *env)
        assert bad.returncode == 2 and message in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1
    show = run_emotrace_in_process("sessions", "show", str(sid), *env)
    assert "segment 0:00-0:10  intake: happy" in show.stdout
    assert "excluded 0:50-0:55  technical problem" in show.stdout


def test_segment_figures_relative_to_the_baseline(workspace: Path) -> None:
    with SessionStore(workspace) as store:
        baseline = store.set_baseline("P-017/later", 0.0, 10.5)  # the happy start, at rest
        summary = summarize(store.load("P-017/full"), baseline=baseline)
        plain = summarize(store.load("P-017/full"))
    stats = baseline.stats
    exercise = {g.label: g for g in summary.segment_stats}["exercise"]
    relative = exercise.relative
    assert relative is not None and plain.segment_stats[1].relative is None
    assert relative["valence"]["delta"] == pytest.approx(exercise.valence - stats.valence.mean)
    assert relative["negative_affect"]["value"] == exercise.negative_affect
    # Sad and neutral against a happy rest: less pleasant than the baseline.
    assert relative["valence"]["delta"] < 0
    html = render_report(summary)
    assert "vs baseline (SDs)" in html[html.index('id="parts"') :]
