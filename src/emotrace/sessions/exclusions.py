"""Excluded stretches: segments the clinician marked "exclude" (the patient left the room, a
technical problem), left out of every analytic.

One rule, applied in one place: :func:`without_excluded` drops the frames whose time lies in an
excluded stretch before anything is computed (``measures.Series.from_data`` calls it), so every
measure (summary, shares, windows, peaks, per-segment figures, trends) comes out exactly as if
those frames had not been recorded (the face-visible figure included). The frames stay stored
and exported; only the analytics leave them out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # types imports coverage, which imports this module
    from emotrace.sessions.types import Marker, SessionData

Span = tuple[float, float]


def excluded_spans(markers: Sequence[Marker]) -> list[Span]:
    """The union of the excluded stretches ``[start, end)``, merged and in time order."""
    spans = sorted((m.time_s, m.end_s) for m in markers if m.excluded and m.end_s is not None)
    merged: list[Span] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def excluded_mask(times: np.ndarray, markers: Sequence[Marker]) -> np.ndarray:
    """``True`` for each frame time inside an excluded stretch (start included, end not)."""
    return in_spans(times, excluded_spans(markers))


def in_spans(times: np.ndarray, spans: Sequence[Span]) -> np.ndarray:
    """``True`` for each time inside one of ``spans`` ``[start, end)``: the one test of what an
    excluded stretch covers (``coverage`` uses it on the stored stretches too)."""
    times = np.asarray(times, np.float64)
    mask = np.zeros(len(times), bool)
    for start, end in spans:
        mask |= (times >= start) & (times < end)
    return mask


def without_excluded(data: SessionData) -> SessionData:
    """``data`` without the frames of its excluded stretches (the same object when none)."""
    drop = excluded_mask(data.times, data.markers)
    if not drop.any():
        return data
    keep = ~drop
    return replace(
        data,
        frames=data.frames[keep],
        times=data.times[keep],
        visible=data.visible[keep],
        probabilities=data.probabilities[keep],
        boxes=data.boxes[keep],
        track_ids=data.track_ids[keep],
        scores=data.scores[keep],
        poses=data.poses[keep],
    )


def overlap_s(spans: Sequence[Span], start: float, end: float) -> float:
    """Seconds of ``[start, end)`` inside ``spans`` (disjoint, as :func:`excluded_spans` gives)."""
    return float(sum(max(0.0, min(b, end) - max(a, start)) for a, b in spans))
