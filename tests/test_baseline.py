"""Per-patient baselines (issue 35, section 1): the statistics, the calibrated labels, storage in a
real workspace, the report's section and the CLI."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_one_line_error
from conftest import run_emotrace_in_process as emotrace
from emotrace.errors import SessionError
from emotrace.runtime.loading import BUNDLED_MODELS, default_model_path
from emotrace.sessions.baseline import (
    MIN_VISIBLE_S,
    REFERENCE_FILE,
    calibrate,
    neutral_reference,
)
from emotrace.sessions.report import render_report
from emotrace.sessions.rules import report_summaries
from emotrace.sessions.store import SessionStore
from emotrace.sessions.types import ModelInfo
from session_streams import CLASSES

DEFAULT_SHA = hashlib.sha256(default_model_path("default").read_bytes()).hexdigest()
SAD, HAPPY, NEUTRAL = (CLASSES.index(c) for c in ("sad", "happy", "neutral"))
FPS = 10


def probs(**weights: float) -> np.ndarray:
    """A probability row with these weights (the rest shared evenly), summing to 1."""
    rest = (1 - sum(weights.values())) / (len(CLASSES) - len(weights))
    return np.array([weights.get(c, rest) for c in CLASSES], np.float32)


def resting(rng: np.random.Generator) -> np.ndarray:
    """A resting face that this model reads as 40 % sad (and only 30 % neutral), with noise."""
    p = probs(sad=0.4, neutral=0.3, angry=0.1) * rng.uniform(0.85, 1.15, len(CLASSES))
    return (p / p.sum()).astype(np.float32)


def record(
    store: SessionStore,
    name: str,
    pieces: Sequence[tuple[float, Callable[[int], np.ndarray | None]]],
    patient: str = "P-017",
) -> int:
    """A finished session of ``pieces`` (seconds, frame -> probabilities or None for no face)."""
    sid = store.create_session(name, patient, CLASSES, model=ModelInfo("default", "", DEFAULT_SHA))
    rows, i, end = [], 0, 0.0
    for seconds, make in pieces:
        end += seconds
        while i / FPS < end - 1e-9:
            p = make(i)
            if p is None:
                rows.append((i, i / FPS, 0, None, None, None, None, None, None, None))
            else:
                rows.append((i, i / FPS, 1, 1, 10, 10, 80, 80, 0.9, p.astype("<f4").tobytes()))
            i += 1
    store.append(sid, rows)
    store.finish(sid)
    return sid


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    with SessionStore(tmp_path / "ws.sqlite", create=True) as opened:
        yield opened


def test_the_neutral_reference_belongs_to_the_bundled_models_by_sha256() -> None:
    stored = json.loads(
        (default_model_path("default").parent / REFERENCE_FILE).read_text(encoding="utf-8")
    )
    from emotrace.runtime.classifier import EmotionClassifier

    shas = {}
    for name in BUNDLED_MODELS:
        sha = hashlib.sha256(default_model_path(name).read_bytes()).hexdigest()
        shas[sha] = name
        reference = neutral_reference(sha)
        assert reference is not None, f"no neutral reference for the bundled {name} model"
        assert reference.model_name == name
        assert reference.classes == EmotionClassifier(name).classes
        assert sum(reference.mean_probabilities) == pytest.approx(1, abs=1e-4)
        # Neutral faces: the model's most probable class on average is neutral.
        assert max(reference.classes, key=dict(zip(reference.classes,
                   reference.mean_probabilities, strict=True)).get) == "neutral"  # fmt: skip
    assert set(stored["models"]) == set(shas)  # no entry for a model that is not shipped
    assert neutral_reference("0" * 64) is None


@pytest.mark.slow  # 607 faces through the model: 2-6 s
def test_the_reference_is_the_default_models_mean_on_fer2013_valid_neutral(
    fer2013_dir: Path,
) -> None:
    import cv2

    from emotrace.runtime.classifier import EmotionClassifier

    folder = fer2013_dir / "valid" / "neutral"
    faces = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted(folder.iterdir())]
    clf = EmotionClassifier("default")
    mean = np.concatenate([clf.predict(faces[i : i + 128]) for i in range(0, len(faces), 128)])
    reference = neutral_reference(DEFAULT_SHA)
    assert reference is not None and reference.faces == len(faces)
    np.testing.assert_allclose(mean.mean(axis=0), reference.mean_probabilities, atol=2e-6)


def test_a_frame_equal_to_the_baseline_mean_maps_to_the_neutral_reference() -> None:
    reference = neutral_reference(DEFAULT_SHA)
    assert reference is not None
    rng = np.random.default_rng(7)
    for _ in range(20):
        mean = rng.dirichlet(np.ones(len(CLASSES))) * 0.99 + 0.01 / len(CLASSES)
        out = calibrate(mean[None], mean, reference.mean_probabilities)
        np.testing.assert_allclose(out[0], reference.mean_probabilities, rtol=1e-9)
    # A missing face stays missing; a frame that differs from rest moves away from the reference.
    out = calibrate(
        np.array([[np.nan] * len(CLASSES), probs(happy=0.9)]),
        probs(sad=0.4),
        reference.mean_probabilities,
    )
    assert np.isnan(out[0]).all() and out[1].argmax() == HAPPY
    assert out[1].sum() == pytest.approx(1)


def test_a_resting_face_read_as_sad_reads_neutral_while_a_happy_stretch_stays_happy(
    store: SessionStore,
) -> None:
    rng = np.random.default_rng(3)
    happy = probs(happy=0.7, sad=0.15, neutral=0.1)
    record(store, "week-1", [(30, lambda i: resting(rng)), (20, lambda i: happy)])
    store.set_baseline("week-1", 0, 30)
    summary, _ = report_summaries(store, "week-1")
    rel = summary.relative
    assert rel is not None and rel.calibrated is not None
    rest, lively = slice(0, 30 * FPS), slice(30 * FPS, 50 * FPS)
    raw = summary.series.probabilities
    # Before: the resting face reads sad in every frame.
    assert (raw[rest].argmax(axis=1) == SAD).mean() > 0.95
    # After: neutral-dominant at rest, and the happy stretch keeps its label (and is happier).
    assert (rel.calibrated[rest].argmax(axis=1) == NEUTRAL).mean() > 0.9
    assert (rel.calibrated[lively].argmax(axis=1) == HAPPY).all()
    assert rel.calibrated[lively, HAPPY].mean() >= raw[lively, HAPPY].mean()
    assert rel.calibrated_time_share is not None
    assert rel.calibrated_time_share["neutral"] > 0.9 * 30 / 50
    assert summary.time_share["neutral"] == 0  # the raw figures are unchanged


def test_relative_measures_are_differences_and_sds_from_the_baseline(store: SessionStore) -> None:
    happy, neutral = probs(happy=1.0), probs(neutral=1.0)
    # Rest alternates happy and neutral each second: valence mean 0.4955, SD 0.4955.
    alternating = lambda i: happy if (i // FPS) % 2 else neutral  # noqa: E731
    record(store, "rest", [(20, alternating)])
    record(store, "later", [(10, lambda i: happy)])
    baseline = store.set_baseline("rest", 0, 20)
    v = math.cos(math.radians(7.8))  # happy's valence on Russell's circle
    assert baseline.stats.valence.mean == pytest.approx(v / 2)
    assert baseline.stats.valence.sd == pytest.approx(v / 2)
    assert baseline.stats.mean_probabilities[HAPPY] == pytest.approx(0.5)
    assert baseline.visible_s == pytest.approx(20) and baseline.stats.frames == 200
    later = store.load("later")
    from emotrace.sessions.analytics import summarize

    summary = summarize(later, baseline=baseline)
    assert summary.relative is not None
    shift = summary.relative.affect["valence"]
    assert shift["value"] == pytest.approx(v)
    assert shift["delta"] == pytest.approx(v / 2) and shift["z"] == pytest.approx(1.0)
    assert summary.relative.mean_probability_delta["happy"] == pytest.approx(0.5)
    assert summary.relative.mean_probability_delta["neutral"] == pytest.approx(-0.5)
    assert summary.measures()["valence_vs_baseline_sd"] == pytest.approx(1.0)
    assert summary.relative.spread_ratio["valence"] == pytest.approx(0)  # steadier than at rest
    own = summarize(store.load("rest"), baseline=baseline).relative
    assert own is not None and own.affect["valence"]["z"] == pytest.approx(0, abs=1e-9)
    assert own.spread_ratio["valence"] == pytest.approx(1.0)
    body = summary.to_dict()["relative"]
    assert body["valence"]["z"] == pytest.approx(1.0) and body["baseline"]["id"] == baseline.id


def test_a_stretch_with_too_little_visible_face_is_refused_and_nothing_changes(
    store: SessionStore,
) -> None:
    neutral = probs(neutral=0.8)
    record(store, "week-1", [(6, lambda i: neutral), (10, lambda i: None), (20, lambda i: neutral)])
    first = store.set_baseline("week-1", 16, 36)
    with pytest.raises(SessionError, match=r"visible for 6\.0 s of it; .* at least 10 s"):
        store.set_baseline("week-1", 0, 16)
    for start, end, message in (
        (10, 5, "must come after its start"),
        (40, 60, "ends at 0:36"),
        (float("nan"), 5, "a baseline needs a start and an end"),
    ):
        with pytest.raises(SessionError, match=message):
            store.set_baseline("week-1", start, end)
    assert [b.id for b in store.baselines("P-017")] == [first.id]
    active = store.active_baseline("P-017")
    assert active is not None and active.id == first.id
    assert MIN_VISIBLE_S == 10


def test_baselines_belong_to_the_patient_and_each_session_records_its_own(
    store: SessionStore,
) -> None:
    neutral = probs(neutral=0.8)

    def against(session_id: int) -> int | None:
        found = store.session_baseline(session_id)
        return None if found is None else found.id

    s1 = record(store, "week-1", [(30, lambda i: neutral)])
    assert against(s1) is None
    a = store.set_baseline(s1, 0, 20)
    assert against(s1) == a.id  # the baseline's own session uses it
    s2 = record(store, "week-2", [(30, lambda i: neutral)])
    other = record(store, "week-2", [(30, lambda i: neutral)], patient="P-018")
    assert against(s2) == a.id and against(other) is None
    b = store.set_baseline(s2, 5, 25)
    assert against(s2) == b.id and against(s1) == a.id
    s3 = record(store, "week-3", [(30, lambda i: neutral)])
    assert against(s3) == b.id
    history = store.baselines("P-017")
    assert [x.id for x in history] == [b.id, a.id]
    # Pseudonyms are stored in NFC; a lookup typed in NFD finds the same patient.
    accented = record(store, "intake", [(30, lambda i: neutral)], patient="Mar\u00eda")
    made = store.set_baseline(accented, 0, 20)
    assert store.active_baseline("Mari\u0301a") == made
    assert history[0].active and not history[1].active and history[1].replaced_at is not None
    # A trend compares every session against the report's session's baseline.
    summary, earlier = report_summaries(store, s3, trend=True)
    assert [s.relative.baseline.id for s in (summary, *earlier) if s.relative] == [b.id] * 3
    cleared = store.clear_baseline("P-017")
    assert not cleared.active and store.active_baseline("P-017") is None
    s4 = record(store, "week-4", [(30, lambda i: neutral)])
    assert against(s4) is None and against(s3) == b.id
    with pytest.raises(SessionError, match="no active baseline"):
        store.clear_baseline("P-017")
    # The baseline outlives its session, not the patient's last session.
    store.delete([s1])
    kept = store.baseline(a.id)
    assert kept.session_id is None and kept.session_name is None
    store.delete([s2, s3, s4])
    assert store.baselines("P-017") == [] and store.baselines("P-018") == []
    assert [b.patient for b in store.baselines()] == ["Mar\u00eda"]  # the other patient's stays


def test_the_report_has_a_baseline_section_with_raw_and_relative_views(
    store: SessionStore,
) -> None:
    rng = np.random.default_rng(5)
    sid = record(store, "week-1", [(30, lambda i: resting(rng)), (10, lambda i: probs(happy=0.8))])
    store.add_marker(sid, "topic: holidays", 31.0)
    summary, _ = report_summaries(store, "week-1")
    assert 'id="baseline"' in render_report(summary) and "No baseline" in render_report(summary)
    store.set_baseline("week-1", 0, 30)
    summary, _ = report_summaries(store, "week-1")
    html = render_report(summary)
    section = html[html.index('id="baseline"') :]
    assert "week-1, 0:00–0:30" in section and "face visible 30.0 s (300 frames)" in section
    assert "time share (calibrated)" in section and "calibrated to the baseline" in section
    assert re.search(r"Variability against rest .*: valence \d+\.\d×, arousal \d+\.\d×", section)
    assert 'id="timeline"' in html  # the raw view stays
    # The marker's window (happy) against the baseline: valence up by many baseline SDs.
    row = section[section.index("<td>topic: holidays</td>") :].split("</tr>")[0]
    assert float(row.split("<td>")[2].split("</td>")[0]) > 3
    # The calibrated neutral share of the rest (75 %) is in the table, the raw one is 0 %.
    row = section[section.index("<td>neutral</td>") :].split("</tr>")[0]
    assert row.startswith("<td>neutral</td><td>0%</td><td>7") and "the baseline" in html


def test_baseline_commands(tmp_path: Path) -> None:
    ws = tmp_path / "ws.sqlite"
    neutral = probs(neutral=0.8)
    with SessionStore(ws, create=True) as opened:
        record(
            opened, "week-1", [(8, lambda i: neutral), (4, lambda i: None), (20, lambda i: neutral)]
        )
    refused = emotrace(
        "sessions", "baseline", "week-1", "--start", "0", "--end", "12", "--workspace", ws
    )
    assert_one_line_error(refused, "visible for 8.0 s", "at least 10 s")
    done = emotrace("sessions", "baseline", "week-1", "--start", "12", "--end", "30",
                    "--workspace", ws)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "baseline 1 of P-017: session week-1, 0:12-0:30, face visible 18.0 s" in done.stdout
    listed = json.loads(emotrace("sessions", "baselines", "--json", "--workspace", ws).stdout)
    assert [(b["id"], b["active"], b["visible_s"]) for b in listed] == [(1, True, 18.0)]
    shown = emotrace("sessions", "show", "week-1", "--workspace", ws).stdout
    assert "vs baseline: valence +0.00" in shown and "calibrated time share: neutral 100%" in shown
    assert "nan" not in shown  # a still face at rest has no SD units, not "+nan SD"
    as_json = json.loads(emotrace("sessions", "show", "week-1", "--json", "--workspace", ws).stdout)
    assert as_json["relative"]["calibrated"]["time_share"]["neutral"] == 1.0
    report = tmp_path / "r.html"
    assert emotrace("report", "week-1", "-o", report, "--workspace", ws).returncode == 0
    assert "face visible 18.0 s" in report.read_text(encoding="utf-8")
    assert_one_line_error(
        emotrace("sessions", "baselines", "--clear", "--workspace", ws), "--clear needs --patient"
    )
    cleared = emotrace("sessions", "baselines", "--clear", "--patient", "P-017", "--workspace", ws)
    assert cleared.returncode == 0 and "no longer active" in cleared.stdout
    assert_one_line_error(
        emotrace("sessions", "baselines", "--clear", "--patient", "P-017", "--workspace", ws),
        "no active baseline",
    )
    history = emotrace("sessions", "baselines", "--patient", "P-017", "--workspace", ws).stdout
    assert "replaced" in history
