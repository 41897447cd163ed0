"""Session analytics: what the clinician's report shows, computed from the stored numbers only.

Conventions, shared by every measure:

* **Time weighting.** Each frame stands for the time until the next frame, so a variable frame
  rate does not bias shares (``_series.frame_durations``).
* **Breaks in the recording.** More than ``max_gap_s`` (1 s) without any frame (paused,
  interrupted, a stalled stream) is a break: neither face visible nor missing face, listed apart
  (``breaks``, "not recorded") and left out of the face-visible figure (see ``coverage``).
* **Missing data.** Frames without the patient's face carry NaN. They lower the face-visible
  figure (the share of the recorded time with the face), appear as gaps, and are excluded from
  every affect measure; they are never filled in.
* **Time share** of an emotion: share of the face-visible time in which it is the most probable
  class. **Mean probability** is reported alongside it.
* **Dominant emotion per window** (5 s and 30 s by default): the class with the highest
  time-weighted mean probability; ``None`` (missing) when the face is visible for less than
  ``min_window_visible`` (50 %) of the window.
* **Valence and arousal** per frame from Russell's circumplex (see ``circumplex``), smoothed by a
  centred moving mean over ``smooth_s`` (2 s) of visible frames.
* **Variability**: standard deviation of per-frame valence and arousal, and RMSSD (root mean
  square of successive differences) of their 1-second means (instability, as in affect-dynamics
  research); **entropy** of the time shares, normalised to [0, 1].
* **Transitions**: counts and row-normalised probabilities of dominant-emotion changes between
  consecutive ``transition_window_s`` (5 s) windows that both have a dominant emotion.
* **Sustained negative affect**: stretches where smoothed negative affect (probability of a
  negative-valence class) stays >= ``negative_threshold`` (0.5) for >= ``negative_min_s`` (10 s);
  missing stretches up to ``max_gap_s`` do not break a segment, longer ones do.
* **Peaks**: local maxima of smoothed negative affect >= ``peak_threshold`` (0.7) and of smoothed
  arousal >= ``arousal_peak_threshold`` (0.5), at least ``peak_separation_s`` (10 s) apart.
* **Markers**: affect in the ``marker_window_s`` (30 s) after each point marker minus the
  session baseline (the mean over all visible frames).
* **Segments** (markers with an end): shares, mean probabilities and affect of the frames
  inside each, and their difference from the session average (see ``segments``).
* **Excluded stretches** (segments marked "exclude"): their frames are left out of every measure,
  the face-visible figure included, exactly as if they had not been recorded (see
  ``exclusions``).
* **Attention** (approximate head pose, see ``emotrace.faces.pose``): the share of the posed,
  face-visible time facing the camera (|yaw| < ``facing_yaw_deg`` 25, |pitch| <
  ``facing_pitch_deg`` 20), the share of face-visible time turned beyond it (frames whose
  expression is least to be trusted), and looked-away episodes of at least ``looked_away_min_s``
  (2 s). With ``exclude_turned`` the turned frames are left out of every affect measure (they
  still count as face-visible time).
* **Trends** across sessions of one patient: each measure per session, in time order, with its
  least-squares slope per session.
* **Relative to baseline** (given a patient's resting baseline, see ``baseline``): every affect
  measure minus the baseline's mean, valence/arousal/negative affect also in baseline SDs, and
  calibrated labels (the prior shift to the model's neutral reference) with their time shares
  and windows. A trend uses one baseline for every session it compares.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from emotrace.errors import SessionError
from emotrace.i18n import N_
from emotrace.sessions import _series, coverage
from emotrace.sessions.baseline import Baseline, Relative, relative
from emotrace.sessions.circumplex import RUSSELL_1980, Circumplex
from emotrace.sessions.exclusions import excluded_spans, overlap_s
from emotrace.sessions.measures import (
    AnalyticsConfig,
    Gap,
    MarkerStat,
    Peak,
    Segment,
    Series,
    Window,
    affect_peaks,
    dominant_windows,
    looked_away,
    marker_stats,
    negative_segments,
    transition_matrix,
    visible_gaps,
    weighted_mean,
)
from emotrace.sessions.segments import SegmentStat, segment_stats
from emotrace.sessions.types import Marker, SessionData, SessionInfo

__all__ = [
    "AnalyticsConfig",
    "Gap",
    "MarkerStat",
    "Peak",
    "Segment",
    "SegmentStat",
    "Series",
    "SessionSummary",
    "Trend",
    "Window",
    "summarize",
    "trend",
]


@dataclass
class SessionSummary:
    """Everything the report shows about one session."""

    info: SessionInfo
    config: AnalyticsConfig
    start_s: float
    duration_s: float
    visible_ratio: float
    time_share: dict[str, float]
    mean_probability: dict[str, float]
    mean_valence: float
    mean_arousal: float
    mean_negative: float
    negative_share: float
    variability: dict[str, float]
    windows: dict[float, list[Window]]
    transitions: np.ndarray
    segments: list[Segment]
    peaks: list[Peak]
    gaps: list[Gap]
    markers: list[MarkerStat]
    series: Series = field(repr=False)
    #: Share of the time the face was visible with a head pose in which it faced the camera
    #: (NaN without poses: Haar, or sessions recorded before emotrace stored them).
    facing_ratio: float = math.nan
    #: Share of the face-visible time with the head turned beyond the limits (the frames whose
    #: expression is least to be trusted).
    turned_ratio: float = math.nan
    looked_away: list[Gap] = field(default_factory=list)
    #: Seconds the frames stand for (the duration less the breaks; see ``coverage``).
    recorded_s: float = math.nan
    #: Breaks in the recording: paused, interrupted, no frames (neither face nor missing face).
    breaks: list[Gap] = field(default_factory=list)
    #: The session against the patient's baseline (``None``: analysed without one).
    relative: Relative | None = None
    #: Figures per segment (markers with an end, not excluded), in time order.
    segment_stats: list[SegmentStat] = field(default_factory=list)
    #: The excluded stretches (their labels say why), and their merged length within the
    #: recording in seconds.
    excluded: list[Marker] = field(default_factory=list)
    excluded_s: float = 0.0

    @property
    def not_recorded_s(self) -> float:
        """Seconds in breaks (paused or interrupted)."""
        return float(sum(g.duration_s for g in self.breaks))

    @property
    def has_face(self) -> bool:
        """Whether the patient's face was visible at all."""
        return bool(self.series.face.any())

    def measures(self) -> dict[str, float]:
        """The scalar measures compared across sessions (see :func:`trend`)."""
        out = {
            "duration_min": self.duration_s / 60,
            "visible_pct": 100 * self.visible_ratio,
            "mean_valence": self.mean_valence,
            "mean_arousal": self.mean_arousal,
            "valence_sd": self.variability["valence_sd"],
            "negative_pct": 100 * self.negative_share,
        }
        out.update({f"{c}_pct": 100 * s for c, s in self.time_share.items()})
        if self.relative is not None:
            out.update(self.relative.measures())
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (NaN becomes ``None``)."""
        return _clean(
            {
                "session": self.info.to_dict(),
                "config": asdict(self.config),
                "duration_s": self.duration_s,
                "visible_ratio": self.visible_ratio,
                "time_share": self.time_share,
                "mean_probability": self.mean_probability,
                "mean_valence": self.mean_valence,
                "mean_arousal": self.mean_arousal,
                "mean_negative_affect": self.mean_negative,
                "negative_share": self.negative_share,
                "variability": self.variability,
                "windows": {str(w): [asdict(x) for x in v] for w, v in self.windows.items()},
                "transitions": {
                    "window_s": self.config.transition_window_s,
                    "classes": list(self.info.classes),
                    "counts": self.transitions.tolist(),
                },
                "segments": [asdict(s) for s in self.segments],
                "peaks": [asdict(p) for p in self.peaks],
                "gaps": [{**asdict(g), "duration_s": g.duration_s} for g in self.gaps],
                "recorded_s": self.recorded_s,
                "not_recorded_s": self.not_recorded_s,
                "breaks": [{**asdict(g), "duration_s": g.duration_s} for g in self.breaks],
                "markers": [asdict(m) for m in self.markers],
                "segment_stats": [
                    {**asdict(g), "duration_s": g.duration_s} for g in self.segment_stats
                ],
                "excluded": [asdict(m) for m in self.excluded],
                "excluded_s": self.excluded_s,
                "attention": {
                    "facing_ratio": self.facing_ratio,
                    "turned_ratio": self.turned_ratio,
                    "looked_away": [
                        {**asdict(g), "duration_s": g.duration_s} for g in self.looked_away
                    ],
                },
                "relative": None if self.relative is None else self.relative.to_dict(),
            }
        )


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def summarize(
    data: SessionData,
    config: AnalyticsConfig | None = None,
    circumplex: Circumplex = RUSSELL_1980,
    baseline: Baseline | None = None,
) -> SessionSummary:
    """All analytics of one loaded session (see the module docstring for definitions); with a
    ``baseline``, also relative to it (``SessionSummary.relative``)."""
    config = config or AnalyticsConfig()
    classes = data.classes
    series = Series.from_data(data, config, circumplex)
    # The one face-visible figure (the sessions list and the API show the same, see coverage).
    cov = coverage.measure(
        series.times, series.face, config.max_gap_s, excluded_spans(data.markers)
    )
    dt, visible = series.durations, series.visible
    duration = float(series.times[-1] - series.times[0] + dt[-1]) if len(dt) else 0.0
    seen = float((dt * visible).sum())
    spans = excluded_spans(data.markers)
    labels = np.nan_to_num(series.probabilities, nan=-1.0).argmax(axis=1)
    share = {
        c: float((dt * visible * (labels == k)).sum() / seen) if seen else math.nan
        for k, c in enumerate(classes)
    }
    mean_p = {
        c: weighted_mean(series.probabilities[:, k], dt * visible) for k, c in enumerate(classes)
    }
    probs = np.array([s for s in share.values() if s > 0])
    entropy = float(-(probs * np.log(probs)).sum() / math.log(len(classes))) if seen else math.nan
    n_seconds = max(1, math.ceil(duration))
    start = float(series.times[0]) if len(dt) else 0.0
    seconds = _series.bin_index(series.times, start, 1.0, n_seconds)
    variability = {
        "valence_sd": float(np.nanstd(series.valence)) if seen else math.nan,
        "arousal_sd": float(np.nanstd(series.arousal)) if seen else math.nan,
        "valence_rmssd": _series.rmssd(_series.binned_mean(seconds, series.valence, n_seconds)),
        "arousal_rmssd": _series.rmssd(_series.binned_mean(seconds, series.arousal, n_seconds)),
        "entropy": entropy,
    }
    windows = {
        w: dominant_windows(series, classes, w, config.min_window_visible)
        for w in sorted({*config.windows_s, config.transition_window_s})
    }
    negative_time = float((dt * (series.negative_smooth >= config.negative_threshold)).sum())
    recorded = (float(data.times[0]), float(data.times[-1])) if len(data.times) else (0.0, 0.0)
    summary = SessionSummary(
        info=data.info,
        config=config,
        start_s=start,
        duration_s=duration,
        visible_ratio=0.0 if math.isnan(cov.visible_ratio) else cov.visible_ratio,
        time_share=share,
        mean_probability=mean_p,
        mean_valence=weighted_mean(series.valence, dt * visible),
        mean_arousal=weighted_mean(series.arousal, dt * visible),
        mean_negative=weighted_mean(series.negative, dt * visible),
        negative_share=negative_time / seen if seen else math.nan,
        variability=variability,
        windows=windows,
        transitions=transition_matrix(windows[config.transition_window_s], classes),
        segments=negative_segments(series, classes, config),
        peaks=affect_peaks(series, classes, config),
        # An excluded stretch is neither a break nor a gap: it is listed on its own.
        gaps=visible_gaps(series, config.min_gap_s, [*cov.breaks, *spans]),
        markers=marker_stats(
            series, [m for m in data.markers if not m.is_segment], classes, config.marker_window_s
        ),
        series=series,
        facing_ratio=1 - _share(dt, series.turned, series.posed),
        turned_ratio=_share(dt, series.turned, series.face) if series.posed.any() else math.nan,
        looked_away=looked_away(series, config),
        recorded_s=cov.recorded_s,
        breaks=[Gap(a, b) for a, b in cov.breaks],
        segment_stats=segment_stats(
            series, data.markers, classes, spans, None if baseline is None else baseline.stats
        ),
        excluded=[m for m in data.markers if m.excluded and m.is_segment],
        excluded_s=overlap_s(spans, *recorded),
    )
    if baseline is not None:
        summary.relative = relative(
            series, classes, baseline, data.info.model.sha256, config, summary.markers
        )
    return summary


def _share(durations: np.ndarray, part: np.ndarray, whole: np.ndarray) -> float:
    total = float((durations * whole).sum())
    return float((durations * part).sum()) / total if total else math.nan


#: Labels of the measures compared across sessions (keys of ``SessionSummary.measures``), in
#: English: the report shows them in its language (``tr(MEASURE_LABELS[key])``).
MEASURE_LABELS = {
    "duration_min": N_("duration (min)"),
    "visible_pct": N_("face visible (%)"),
    "mean_valence": N_("mean valence"),
    "mean_arousal": N_("mean arousal"),
    "valence_sd": N_("valence variability (SD)"),
    "negative_pct": N_("sustained negative affect (% of visible time)"),
    "valence_vs_baseline_sd": N_("valence vs baseline (SD)"),
    "arousal_vs_baseline_sd": N_("arousal vs baseline (SD)"),
    "negative_vs_baseline": N_("negative affect vs baseline (difference)"),
}


@dataclass
class Trend:
    """Each measure over one patient's sessions (oldest first) and its slope per session."""

    patient: str
    sessions: list[SessionInfo]
    values: dict[str, list[float]]
    slopes: dict[str, float]


def trend(summaries: list[SessionSummary]) -> Trend:
    """Measures of several sessions of one patient, ordered by start time, with OLS slopes."""
    if not summaries:
        raise SessionError("no sessions to compare")
    patients = sorted({s.info.patient for s in summaries})
    if len(patients) > 1:
        raise SessionError(f"compared sessions must be one patient's, got {', '.join(patients)}")
    ordered = sorted(summaries, key=lambda s: (s.info.started_at, s.info.id))
    keys = list(ordered[0].measures())
    for other in ordered[1:]:
        keys += [k for k in other.measures() if k not in keys]
    values = {k: [s.measures().get(k, math.nan) for s in ordered] for k in keys}
    slopes = {}
    for key, ys in values.items():
        y = np.array(ys, np.float64)
        x = np.arange(len(y), dtype=np.float64)
        ok = ~np.isnan(y)
        slopes[key] = float(np.polyfit(x[ok], y[ok], 1)[0]) if ok.sum() >= 2 else math.nan
    return Trend(patients[0], [s.info for s in ordered], values, slopes)
