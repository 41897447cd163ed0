"""Figures per segment: the parts of a session the clinician marked with a start and an end
("intake", "exercise", "discussion").

A segment's figures use the frames whose time lies in ``[start, end)``, time-weighted as in
the rest of the analytics (``analytics``' docstring), on the series without the excluded
stretches (``exclusions``): an excluded stretch inside a segment is left out of it too, and
its length is reported. Deltas are against the session average over all analysed frames, as
for markers; with the patient's resting baseline (``baseline``), each affect measure is also given
against it (difference, and in baseline SDs where its spread allows), as the session's are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from emotrace.sessions.exclusions import Span, overlap_s
from emotrace.sessions.measures import Series, dominant_class, weighted_mean
from emotrace.sessions.types import Marker

if TYPE_CHECKING:
    from emotrace.sessions.baseline import BaselineStats

#: The affect measures compared with the session average (and with a baseline).
AFFECT = ("valence", "arousal", "negative_affect")


@dataclass(frozen=True)
class SegmentStat:
    """A segment's emotion shares, mean probabilities and affect."""

    id: int
    label: str
    start_s: float
    end_s: float
    #: Seconds of the segment inside excluded stretches (left out of its figures).
    excluded_s: float
    #: Share of the segment's analysed time (its length less ``excluded_s``) with the face visible.
    visible: float
    time_share: dict[str, float]
    mean_probability: dict[str, float]
    valence: float
    arousal: float
    negative_affect: float
    #: Each of :data:`AFFECT` minus the session average.
    delta: dict[str, float]
    dominant: str | None
    #: Each of :data:`AFFECT` against the baseline: ``{"value", "delta", "z"}`` (the difference
    #: from its mean, and in its SDs); ``None`` without a baseline.
    relative: dict[str, dict[str, float]] | None = field(default=None)

    @property
    def duration_s(self) -> float:
        """Length in seconds (excluded time included)."""
        return self.end_s - self.start_s


def segment_stats(
    series: Series,
    markers: Sequence[Marker],
    classes: Sequence[str],
    excluded: Sequence[Span] = (),
    baseline: BaselineStats | None = None,
) -> list[SegmentStat]:
    """Figures of each segment of ``markers`` that is not itself an excluded stretch, and with
    the statistics of the patient's ``baseline``, their :attr:`SegmentStat.relative`."""
    w = series.durations * series.visible
    affect = {"valence": series.valence, "arousal": series.arousal,
              "negative_affect": series.negative}  # fmt: skip
    session = {k: weighted_mean(v, w) for k, v in affect.items()}
    labels = np.nan_to_num(series.probabilities, nan=-1.0).argmax(axis=1)
    stats = []
    for m in markers:
        if m.end_s is None or m.excluded:
            continue
        inside = (series.times >= m.time_s) & (series.times < m.end_s)
        wi = w * inside
        seen = float(wi.sum())
        share = {c: float((wi * (labels == k)).sum()) / seen if seen else math.nan
                 for k, c in enumerate(classes)}  # fmt: skip
        mean_p = {c: weighted_mean(series.probabilities[:, k], wi) for k, c in enumerate(classes)}
        values = {k: weighted_mean(v, wi) for k, v in affect.items()}
        cut = overlap_s(excluded, m.time_s, m.end_s)
        analysed = m.end_s - m.time_s - cut
        rows = np.flatnonzero(inside & series.visible)
        stats.append(
            SegmentStat(
                id=m.id,
                label=m.label,
                start_s=m.time_s,
                end_s=m.end_s,
                excluded_s=cut,
                visible=min(seen / analysed, 1.0) if analysed > 0 else 0.0,
                time_share=share,
                mean_probability=mean_p,
                valence=values["valence"],
                arousal=values["arousal"],
                negative_affect=values["negative_affect"],
                delta={k: values[k] - session[k] for k in AFFECT},
                dominant=dominant_class(series.probabilities[rows], classes) if len(rows) else None,
                relative=None
                if baseline is None
                else {k: baseline.shift(k, values[k]) for k in AFFECT},
            )
        )
    return stats
