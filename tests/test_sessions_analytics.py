"""Session analytics on synthetic streams whose answers are known in advance."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from emotrace.errors import SessionError
from emotrace.sessions import _series
from emotrace.sessions.analytics import AnalyticsConfig, summarize, trend
from emotrace.sessions.circumplex import RUSSELL_1980, Circumplex
from session_streams import CLASSES, data_from

HAPPY_V = math.cos(math.radians(7.8))
SAD_V = math.cos(math.radians(207.5))


def test_sixty_percent_happy_then_sad_gives_those_shares_and_a_valence_drop() -> None:
    s = summarize(data_from([(36, "happy"), (24, "sad")]))
    assert s.time_share["happy"] == pytest.approx(0.6)
    assert s.time_share["sad"] == pytest.approx(0.4)
    assert sum(s.time_share.values()) == pytest.approx(1.0)
    assert s.visible_ratio == pytest.approx(1.0) and s.duration_s == pytest.approx(60.0)
    assert s.mean_valence == pytest.approx(0.6 * HAPPY_V + 0.4 * SAD_V, abs=1e-6)

    t, v = s.series.times, s.series.valence_smooth
    assert np.all(v[t < 34.9] == pytest.approx(HAPPY_V))
    assert np.all(v[t > 37.1] == pytest.approx(SAD_V))
    drop = t[np.argmax(v < 0)]
    assert 35.0 <= drop <= 37.0, drop

    five = [w.dominant for w in s.windows[5.0]]
    assert five == ["happy"] * 7 + ["sad"] * 5
    assert [w.dominant for w in s.windows[30.0]] == ["happy", "sad"]
    counts = s.transitions
    h, sad = CLASSES.index("happy"), CLASSES.index("sad")
    assert counts[h, h] == 6 and counts[h, sad] == 1 and counts[sad, sad] == 4
    assert counts.sum() == 11

    (segment,) = s.segments
    assert segment.dominant == "sad" and segment.end_s == pytest.approx(60.0)
    assert 35.0 <= segment.start_s <= 37.0
    assert segment.valence == pytest.approx(SAD_V, abs=0.05)
    assert [p.kind for p in s.peaks] == ["negative"]


def test_missing_face_is_missing_never_interpolated() -> None:
    s = summarize(data_from([(20, "happy"), (10, None), (30, "sad")]))
    assert s.visible_ratio == pytest.approx(50 / 60)
    (gap,) = s.gaps
    assert gap.start_s == pytest.approx(20.0) and gap.end_s == pytest.approx(30.0)
    gap_rows = (s.series.times >= 20) & (s.series.times < 30)
    for values in (s.series.valence, s.series.valence_smooth, s.series.negative_smooth):
        assert np.isnan(values[gap_rows]).all()
        assert not np.isnan(values[~gap_rows]).any()
    assert s.time_share["happy"] == pytest.approx(0.4)  # of the visible time
    assert [w.dominant for w in s.windows[5.0]][4:6] == [None, None]
    assert s.windows[5.0][4].visible == 0.0


def test_a_stalled_video_is_a_break_in_the_recording_not_missing_face() -> None:
    data = data_from([(10, "happy"), (10, "happy")])
    data.times[100:] += 5.0  # 5 s without any frame after 10 s
    s = summarize(data)
    assert s.duration_s == pytest.approx(25.0)
    # The frame before the stall stands for the typical interval (0.1 s); the rest is a break:
    # nothing was analysed then, so it is neither face visible nor face missing.
    assert s.visible_ratio == pytest.approx(1.0) and s.recorded_s == pytest.approx(20.0)
    assert [(round(g.start_s, 1), round(g.end_s, 1)) for g in s.breaks] == [(10.0, 15.0)]
    assert s.gaps == []


def test_circumplex_coordinates_are_russells_angles() -> None:
    m = RUSSELL_1980.matrix(CLASSES)
    for name, angle in (("happy", 7.8), ("surprise", 69.8), ("angry", 99.8), ("fear", 116.5),
                        ("sad", 207.5), ("disgust", 180.0)):  # fmt: skip
        v, a = m[CLASSES.index(name)]
        assert (v, a) == pytest.approx(
            (math.cos(math.radians(angle)), math.sin(math.radians(angle)))
        )
    assert tuple(m[CLASSES.index("neutral")]) == (0.0, 0.0)
    negative = [c for c, n in zip(CLASSES, RUSSELL_1980.negative(CLASSES), strict=True) if n]
    assert negative == ["angry", "disgust", "fear", "sad"]
    with pytest.raises(SessionError, match="bored"):
        RUSSELL_1980.matrix(("happy", "bored"))
    custom = Circumplex({"up": (0.0, 1.0), "down": (0.0, -1.0)})
    assert custom.valence_arousal(np.array([[0.75, 0.25]]), ("up", "down"))[0, 1] == 0.5


def test_marker_statistics_compare_the_window_after_a_marker_with_the_session() -> None:
    data = data_from(
        [(30, "happy"), (10, "sad"), (20, "happy")],
        markers=[(30.0, "topic: family"), (100.0, "after the end")],
    )
    s = summarize(data, AnalyticsConfig(marker_window_s=10.0))
    family, late = s.markers
    assert family.dominant == "sad" and family.visible == pytest.approx(1.0)
    assert family.valence == pytest.approx(SAD_V)
    assert family.valence_delta == pytest.approx(SAD_V - s.mean_valence)
    assert family.negative_delta > 0.5
    assert late.dominant is None and math.isnan(late.valence) and late.visible == 0.0


def test_short_bursts_are_peaks_but_not_sustained_segments() -> None:
    data = data_from([(20, "neutral"), (5, "fear"), (20, "neutral"), (6, "angry"), (9, "neutral")])
    s = summarize(data)
    assert s.segments == []
    negative = [p for p in s.peaks if p.kind == "negative"]
    assert [p.dominant for p in negative] == ["fear", "angry"]
    assert 20 <= negative[0].time_s <= 25 and 45 <= negative[1].time_s <= 51
    loose = summarize(data, AnalyticsConfig(negative_min_s=3.0))
    assert [seg.dominant for seg in loose.segments] == ["fear", "angry"]


def test_variability_and_entropy() -> None:
    calm = summarize(data_from([(30, "neutral")]))
    assert calm.variability["valence_sd"] == 0.0 and calm.variability["valence_rmssd"] == 0.0
    assert calm.variability["entropy"] == 0.0
    swings = summarize(data_from([(2, "happy"), (2, "sad")] * 10))
    assert swings.variability["valence_sd"] > 0.8
    assert swings.variability["valence_rmssd"] > 0.3
    assert swings.variability["entropy"] == pytest.approx(math.log(2) / math.log(len(CLASSES)))


def test_trend_over_one_patients_sessions() -> None:
    sessions = []
    for k, happy in enumerate((10, 20, 30)):
        data = data_from([(happy, "happy"), (40 - happy, "sad")])
        data.info = type(data.info)(**{**data.info.__dict__, "id": k + 1, "started_at": 1e9 + k})
        sessions.append(summarize(data))
    t = trend(list(reversed(sessions)))  # ordered by start time, whatever the input order
    assert [i.id for i in t.sessions] == [1, 2, 3]
    assert t.values["happy_pct"] == pytest.approx([25.0, 50.0, 75.0])
    assert t.slopes["happy_pct"] == pytest.approx(25.0)
    assert t.slopes["mean_valence"] > 0
    other = data_from([(10, "happy")])
    other.info = type(other.info)(**{**other.info.__dict__, "patient": "P-OTHER"})
    with pytest.raises(SessionError, match="one patient"):
        trend([*sessions, summarize(other)])


def test_a_session_without_any_face_has_no_figures_and_valid_json() -> None:
    s = summarize(data_from([(20, None)]))
    assert not s.has_face and s.visible_ratio == 0.0
    assert all(math.isnan(v) for v in s.time_share.values())
    assert all(w.dominant is None for w in s.windows[5.0])
    assert s.segments == [] and s.peaks == [] and len(s.gaps) == 1
    json.dumps(s.to_dict(), allow_nan=False)


def test_an_empty_session_summarizes() -> None:
    s = summarize(data_from([]))
    assert s.duration_s == 0.0 and not s.has_face and s.windows[5.0] == []


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.0, 1.0, 1.0, 1.0, 0.0], [1]),  # a plateau is one peak (at its start)
        ([0.0, 0.9, 0.0, 0.8, 0.0], [1]),  # closer than the separation: the higher one
        ([np.nan, 0.9, np.nan, 0.95, 0.0], [3]),  # an excursion continues across NaN
        ([0.1, 0.2, 0.3], []),  # below the threshold
    ],
)
def test_peaks(values: list[float], expected: list[int]) -> None:
    t = np.arange(len(values), dtype=float)
    assert _series.peaks(t, np.array(values), 0.5, separation_s=3.0, limit=5) == expected


def test_smoothing_and_binning_keep_missing_values_missing() -> None:
    t = np.arange(10, dtype=float)
    x = np.array([0, 0, 0, np.nan, np.nan, 10, 10, 10, 10, 10], float)
    smoothed = _series.smooth(t, x, 2.0)
    assert np.isnan(smoothed[3:5]).all()
    assert smoothed[2] == 0.0 and smoothed[5] == 10.0 and smoothed[9] == 10.0
    bins = _series.bin_index(t, 0.0, 5.0, 2)
    assert _series.binned_mean(bins, x, 2).tolist() == [0.0, 10.0]
    assert np.isnan(_series.binned_mean(bins, np.full(10, np.nan), 2)).all()
    # Before a break (4.9 s without frames) and at the end: the typical interval, 0.1 s.
    times = np.array([0.0, 0.1, 5.0])
    durations = _series.frame_durations(times, 1.0)
    assert durations.tolist() == pytest.approx([0.1, 0.1, 0.1])
    assert _series.breaks(times, durations) == [(pytest.approx(0.2), 5.0)]
    assert _series.runs(np.array([1, 1, 0, 1], bool)) == [(0, 1), (3, 3)]


@pytest.mark.parametrize(
    "bad",
    [
        {"windows_s": ()},
        {"windows_s": (5.0, -1.0)},
        {"max_gap_s": 0.0},
        {"marker_window_s": -3.0},
        # NaN and infinity used to pass (a NaN window: a traceback; a NaN threshold: no finding).
        {"windows_s": (math.nan,)},
        {"windows_s": (math.inf,)},
        {"smooth_s": math.inf},
        {"smooth_s": math.nan},
        {"negative_threshold": math.nan},
        {"negative_threshold": 1.5},
        {"negative_min_s": math.inf},
    ],
)
def test_invalid_analytics_settings(bad: dict[str, object]) -> None:
    with pytest.raises(SessionError, match="positive"):
        AnalyticsConfig(**bad)  # type: ignore[arg-type]


def test_attention_from_head_pose_facing_turned_and_looked_away() -> None:
    # 12 s at 10 fps: facing, then turned 40 degrees for 3 s, facing, a 1 s turn (too short for
    # an episode), then a last turn of 2.5 s in which the face is lost for 0.5 s.
    data = data_from([(12.0, "happy")])
    yaw = np.zeros(len(data))
    yaw[40:70] = 40  # 4.0-7.0 s
    yaw[80:90] = -30  # 8.0-9.0 s
    yaw[95:120] = 35  # 9.5-12.0 s, the face lost for 0.5 s in the middle
    data.visible[100:105] = False
    data.probabilities[100:105] = np.nan
    data.poses = np.stack([yaw, np.zeros(len(data)), np.zeros(len(data))], axis=1)
    data.poses[~data.visible] = np.nan
    summary = summarize(data)
    visible_s = data.visible.sum() / 10
    turned_s = 3.0 + 1.0 + 2.0  # the lost half second is not face-visible time
    assert summary.turned_ratio == pytest.approx(turned_s / visible_s)
    assert summary.facing_ratio == pytest.approx(1 - turned_s / visible_s)
    episodes = [(round(g.start_s, 1), round(g.end_s, 1)) for g in summary.looked_away]
    assert episodes == [(4.0, 7.0), (9.5, 12.0)]
    attention = summary.to_dict()["attention"]
    assert [e["duration_s"] for e in attention["looked_away"]] == pytest.approx([3.0, 2.5])
    # Without poses (Haar, or a session recorded before poses were stored): unknown, not 100%.
    plain = summarize(data_from([(12.0, "happy")]))
    assert math.isnan(plain.facing_ratio) and math.isnan(plain.turned_ratio)
    assert plain.looked_away == [] and plain.to_dict()["attention"]["facing_ratio"] is None


def test_turned_frames_can_be_left_out_of_the_affect_measures() -> None:
    # Happy while facing the camera, sad while turned away: excluding the turned frames leaves
    # only happiness, and the face still counts as visible all along.
    data = data_from([(6.0, "happy"), (4.0, "sad")])
    data.poses = np.zeros((len(data), 3))
    data.poses[60:, 0] = 45
    kept = summarize(data)
    left_out = summarize(data, AnalyticsConfig(exclude_turned=True))
    assert kept.time_share["sad"] == pytest.approx(0.4)
    assert left_out.time_share["sad"] == 0 and left_out.time_share["happy"] == pytest.approx(1)
    assert left_out.visible_ratio == kept.visible_ratio == pytest.approx(1)
    assert left_out.gaps == kept.gaps == []
    assert left_out.turned_ratio == kept.turned_ratio == pytest.approx(0.4)
