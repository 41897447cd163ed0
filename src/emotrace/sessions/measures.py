"""Building blocks of the session analytics; definitions are in ``analytics``' docstring."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from emotrace.errors import SessionError
from emotrace.sessions import _series
from emotrace.sessions.circumplex import RUSSELL_1980, Circumplex
from emotrace.sessions.coverage import MAX_GAP_S
from emotrace.sessions.exclusions import without_excluded
from emotrace.sessions.types import SessionData


@dataclass(frozen=True)
class AnalyticsConfig:
    """Every threshold and window of the analytics (seconds unless said otherwise)."""

    windows_s: tuple[float, ...] = (5.0, 30.0)
    transition_window_s: float = 5.0
    min_window_visible: float = 0.5
    smooth_s: float = 2.0
    #: Longer without frames is a break in the recording (see ``coverage``).
    max_gap_s: float = MAX_GAP_S
    min_gap_s: float = 1.0
    negative_threshold: float = 0.5
    negative_min_s: float = 10.0
    peak_threshold: float = 0.7
    arousal_peak_threshold: float = 0.5
    peak_separation_s: float = 10.0
    max_peaks: int = 10
    marker_window_s: float = 30.0
    #: Facing the camera: head turned less than this (degrees, approximate: see
    #: ``emotrace.faces.pose``); beyond, the frame is "turned".
    facing_yaw_deg: float = 25.0
    facing_pitch_deg: float = 20.0
    #: A looked-away episode: turned for at least this long.
    looked_away_min_s: float = 2.0
    #: Leave the turned frames out of every affect measure (their probabilities stay stored and
    #: exported; the face-visible share and the gaps still count them as visible).
    exclude_turned: bool = False

    def __post_init__(self) -> None:
        positive = (
            "transition_window_s", "max_gap_s", "negative_min_s", "marker_window_s",
            "facing_yaw_deg", "facing_pitch_deg", "looked_away_min_s",
        )  # fmt: skip
        # Finite too: a NaN window crashed the report, a NaN threshold silently found nothing.
        bad = [n for n in positive if not 0 < getattr(self, n) < math.inf]
        windows = self.windows_s
        bad += ["windows_s"] if not windows or not all(0 < w < math.inf for w in windows) else []
        bad += [n for n in ("smooth_s", "min_gap_s", "peak_separation_s")
                if not 0 <= getattr(self, n) < math.inf]  # fmt: skip
        probabilities = ("min_window_visible", "negative_threshold", "peak_threshold")
        bad += [n for n in probabilities if not 0 <= getattr(self, n) <= 1]
        bad += ["arousal_peak_threshold"] if not -1 <= self.arousal_peak_threshold <= 1 else []
        if bad:
            raise SessionError(
                "analytics settings must be positive and finite (thresholds within their "
                f"range): {', '.join(bad)}"
            )


@dataclass(frozen=True)
class Window:
    """One window of the dominant-emotion sequence."""

    start_s: float
    end_s: float
    dominant: str | None
    probability: float
    visible: float


@dataclass(frozen=True)
class Gap:
    """A stretch without the patient's face."""

    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.end_s - self.start_s


@dataclass(frozen=True)
class Segment:
    """A stretch of sustained negative affect."""

    start_s: float
    end_s: float
    negative_affect: float
    valence: float
    dominant: str


@dataclass(frozen=True)
class Peak:
    """A moment of high negative affect (``kind="negative"``) or high arousal."""

    time_s: float
    kind: str
    value: float
    dominant: str


@dataclass(frozen=True)
class MarkerStat:
    """Affect in the window after a marker, and its difference from the session baseline."""

    time_s: float
    label: str
    visible: float
    valence: float
    arousal: float
    negative_affect: float
    valence_delta: float
    arousal_delta: float
    negative_delta: float
    dominant: str | None


@dataclass
class Series:
    """Per-frame series (NaN where the face is missing); ``*_smooth`` are smoothed."""

    times: np.ndarray
    durations: np.ndarray
    #: The frames the affect measures use: the face visible (and not turned, with
    #: ``exclude_turned``).
    visible: np.ndarray
    #: The patient's face visible (the face-visible share, gaps and attention use this).
    face: np.ndarray
    #: Visible, with a head pose, and turned beyond the facing limits.
    turned: np.ndarray
    #: Visible and with a head pose (the frames the facing figures are about).
    posed: np.ndarray
    probabilities: np.ndarray
    valence: np.ndarray
    arousal: np.ndarray
    negative: np.ndarray
    valence_smooth: np.ndarray
    arousal_smooth: np.ndarray
    negative_smooth: np.ndarray

    @classmethod
    def from_data(
        cls, data: SessionData, config: AnalyticsConfig, circumplex: Circumplex = RUSSELL_1980
    ) -> Series:
        """Derive the series of a loaded session, without its excluded stretches."""
        data = without_excluded(data)  # the one place: every measure is built on this series
        face = data.visible.astype(bool)
        posed = face & np.isfinite(data.poses[:, :2]).all(axis=1)
        with np.errstate(invalid="ignore"):
            beyond = (np.abs(data.poses[:, 0]) >= config.facing_yaw_deg) | (
                np.abs(data.poses[:, 1]) >= config.facing_pitch_deg
            )
        turned = posed & beyond
        used = face & ~turned if config.exclude_turned else face
        probs = data.probabilities.astype(np.float64)
        probs[~used] = np.nan
        va = circumplex.valence_arousal(probs, data.classes)
        negative = circumplex.negative_affect(probs, data.classes)
        times = data.times.astype(np.float64)
        return cls(
            times=times,
            durations=_series.frame_durations(times, config.max_gap_s),
            visible=used,
            face=face,
            turned=turned,
            posed=posed,
            probabilities=probs,
            valence=va[:, 0],
            arousal=va[:, 1],
            negative=negative,
            valence_smooth=_series.smooth(times, va[:, 0], config.smooth_s),
            arousal_smooth=_series.smooth(times, va[:, 1], config.smooth_s),
            negative_smooth=_series.smooth(times, negative, config.smooth_s),
        )


def weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    ok = ~np.isnan(values) & (weights > 0)
    return float(np.average(values[ok], weights=weights[ok])) if ok.any() else math.nan


def dominant_windows(
    series: Series, classes: Sequence[str], window_s: float, min_visible: float
) -> list[Window]:
    """The dominant emotion of each ``window_s`` window (``None`` when mostly missing)."""
    if not len(series.times):
        return []
    start = float(series.times[0])
    end = float(series.times[-1] + series.durations[-1])
    n = max(1, math.ceil((end - start) / window_s - 1e-9))
    bins = _series.bin_index(series.times, start, window_s, n)
    weights = series.durations
    visible_time = np.bincount(bins, weights=weights * series.visible, minlength=n)[:n]
    # Of the recorded time: a window half paused and half with the face is all face.
    recorded_time = np.bincount(bins, weights=weights, minlength=n)[:n]
    means = _series.binned_mean(bins, series.probabilities, n, weights)
    windows = []
    for i in range(n):
        lo, hi = start + i * window_s, min(start + (i + 1) * window_s, end)
        visible = float(visible_time[i] / recorded_time[i]) if recorded_time[i] > 0 else 0.0
        if visible < min_visible or np.isnan(means[i]).any():
            windows.append(Window(lo, hi, None, math.nan, min(visible, 1.0)))
            continue
        k = int(np.argmax(means[i]))
        windows.append(Window(lo, hi, classes[k], float(means[i, k]), min(visible, 1.0)))
    return windows


def transition_matrix(windows: Sequence[Window], classes: Sequence[str]) -> np.ndarray:
    """``(K, K)`` counts of dominant emotion ``i`` followed by ``j`` in the next window."""
    index = {c: i for i, c in enumerate(classes)}
    counts = np.zeros((len(classes), len(classes)), np.int64)
    for a, b in itertools.pairwise(windows):
        if a.dominant is not None and b.dominant is not None:
            counts[index[a.dominant], index[b.dominant]] += 1
    return counts


def visible_gaps(
    series: Series, min_gap_s: float, breaks: Sequence[tuple[float, float]] = ()
) -> list[Gap]:
    """Stretches of at least ``min_gap_s`` of the recording without the patient's face; the
    ``breaks`` in the recording (paused, interrupted: see ``coverage``) are not such gaps."""
    if not len(series.times):
        return []
    start, end = float(series.times[0]), float(series.times[-1] + series.durations[-1])
    v = series.face
    seen = series.times[v]
    covered = sorted(
        [*zip(seen.tolist(), (seen + series.durations[v]).tolist(), strict=True), *breaks]
    )
    gaps, cursor = [], start
    for a, b in covered:
        if a - cursor > 1e-6:
            gaps.append(Gap(cursor, a))
        cursor = max(cursor, b)
    if end - cursor > 1e-6:
        gaps.append(Gap(cursor, end))
    return [g for g in gaps if g.duration_s >= min_gap_s - 1e-6]


def looked_away(series: Series, config: AnalyticsConfig) -> list[Gap]:
    """Stretches of at least ``looked_away_min_s`` in which the patient's face, visible, was
    turned beyond the facing limits (frames without a face between turned ones, up to
    ``max_gap_s``, do not break an episode: the detector often loses a face turned away)."""
    episodes: list[Gap] = []
    start = end = None
    for t, dt, turned, visible in zip(
        series.times.tolist(), series.durations.tolist(), series.turned.tolist(),
        series.face.tolist(), strict=True,
    ):  # fmt: skip
        if turned:
            if start is None or end is None or t - end > config.max_gap_s:
                if start is not None and end is not None:
                    episodes.append(Gap(start, end))
                start = t
            end = t + dt
        elif visible and start is not None and end is not None:
            episodes.append(Gap(start, end))
            start = end = None
    if start is not None and end is not None:
        episodes.append(Gap(start, end))
    return [e for e in episodes if e.duration_s >= config.looked_away_min_s - 1e-6]


def dominant_class(probabilities: np.ndarray, classes: Sequence[str]) -> str:
    return classes[int(np.nanmean(probabilities, axis=0).argmax())]


def negative_segments(
    series: Series, classes: Sequence[str], config: AnalyticsConfig
) -> list[Segment]:
    """Sustained negative affect (see the module docstring)."""
    v = np.flatnonzero(series.visible)
    if not len(v):
        return []
    high = series.negative_smooth[v] >= config.negative_threshold
    jumps = np.diff(series.times[v]) > config.max_gap_s
    # A long gap ends a run: split runs of `high` at every jump.
    breaks = np.concatenate([[False], jumps])
    segments = []
    for first, last in _series.runs(high):
        cuts = [first, *(i for i in range(first + 1, last + 1) if breaks[i]), last + 1]
        for a, b in itertools.pairwise(cuts):
            rows = v[a:b]
            begin = float(series.times[rows[0]])
            stop = float(series.times[rows[-1]] + series.durations[rows[-1]])
            if stop - begin >= config.negative_min_s:
                segments.append(
                    Segment(
                        begin,
                        stop,
                        float(np.mean(series.negative[rows])),
                        float(np.mean(series.valence[rows])),
                        dominant_class(series.probabilities[rows], classes),
                    )
                )
    return segments


def affect_peaks(series: Series, classes: Sequence[str], config: AnalyticsConfig) -> list[Peak]:
    """Peaks of negative affect and of arousal, in time order."""
    found = []
    for kind, values, threshold in (
        ("negative", series.negative_smooth, config.peak_threshold),
        ("arousal", series.arousal_smooth, config.arousal_peak_threshold),
    ):
        for i in _series.peaks(
            series.times, values, threshold, config.peak_separation_s, config.max_peaks
        ):
            dominant = classes[int(np.argmax(series.probabilities[i]))]
            found.append(Peak(float(series.times[i]), kind, float(values[i]), dominant))
    return sorted(found, key=lambda p: (p.time_s, p.kind))


def marker_stats(
    series: Series, markers: Sequence[Any], classes: Sequence[str], window_s: float
) -> list[MarkerStat]:
    """Affect in the ``window_s`` after each marker against the whole-session baseline."""
    w = series.durations * series.visible
    base = [weighted_mean(x, w) for x in (series.valence, series.arousal, series.negative)]
    stats = []
    for marker in markers:
        inside = (series.times >= marker.time_s) & (series.times < marker.time_s + window_s)
        wi = w * inside
        values = [weighted_mean(x, wi) for x in (series.valence, series.arousal, series.negative)]
        # Of the recorded time in the window (a pause in it is not missing face); a marker in
        # a session without frames (set before the first one arrived) sees nothing.
        span = float((series.durations * inside).sum())
        visible = float(wi.sum() / span) if span > 0 else 0.0
        rows = np.flatnonzero(inside & series.visible)
        stats.append(
            MarkerStat(
                time_s=marker.time_s,
                label=marker.label,
                visible=min(visible, 1.0),
                valence=values[0],
                arousal=values[1],
                negative_affect=values[2],
                valence_delta=values[0] - base[0],
                arousal_delta=values[1] - base[1],
                negative_delta=values[2] - base[2],
                dominant=dominant_class(series.probabilities[rows], classes) if len(rows) else None,
            )
        )
    return stats
