"""The one face-visible figure of a session, and its breaks in the recording.

Definition (the sessions list, the review page, the report, the API, the CLI and the exports all
show this figure, computed here and nowhere else):

* Each stored frame stands for the time until the next frame (``_series.frame_durations``).
* More than ``max_gap_s`` (1 s) without any frame is a **break in the recording**: the session
  was paused, interrupted (a reload, a lost connection, a server restart) or no frame arrived.
  Nothing was analysed then, so a break is neither "face visible" nor "face not visible": it is
  left out of the figure and reported on its own ("not recorded 2:10").
* **Recorded time**: the time the frames stand for. **Face visible**: the share of the recorded
  time whose frames show the patient's face.

So a session paused for a minute, with the face in every frame, is 100 % face visible and 1:00
not recorded; a frame without a face lowers the figure, a pause never does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from emotrace.sessions import _series
from emotrace.sessions.exclusions import in_spans

#: Longest time between two frames that is still recording; longer is a break.
MAX_GAP_S = 1.0


@dataclass(frozen=True)
class Coverage:
    """Recorded and face-visible time of one session (seconds)."""

    #: From the first frame to the end of the last: the session's length on its clock.
    span_s: float
    #: The time the frames stand for (the span less the breaks).
    recorded_s: float
    #: Of the recorded time, that with the patient's face.
    visible_s: float
    #: ``(start_s, end_s)`` of each break in the recording (paused, interrupted, no frames).
    breaks: tuple[tuple[float, float], ...] = ()

    @property
    def not_recorded_s(self) -> float:
        """Seconds of the span in breaks."""
        return float(sum(b - a for a, b in self.breaks))

    @property
    def visible_ratio(self) -> float:
        """Share of the recorded time with the face visible (NaN without frames)."""
        return self.visible_s / self.recorded_s if self.recorded_s > 0 else math.nan


def measure(
    times: np.ndarray,
    face: np.ndarray,
    max_gap_s: float = MAX_GAP_S,
    excluded: Sequence[tuple[float, float]] = (),
) -> Coverage:
    """The :class:`Coverage` of frames at ``times`` (seconds, ascending) with ``face`` (bool).

    ``excluded``: stretches ``[start, end)`` the clinician left out of the analytics; their
    frames do not count, and they are not breaks in the recording either."""
    times = np.asarray(times, np.float64)
    face = np.asarray(face, bool)
    if len(excluded):
        keep = ~in_spans(times, excluded)
        times, face = times[keep], face[keep]
    if not len(times):
        return Coverage(0.0, 0.0, 0.0)
    durations = _series.frame_durations(times, max_gap_s)
    return Coverage(
        span_s=float(times[-1] - times[0] + durations[-1]),
        recorded_s=float(durations.sum()),
        visible_s=float((durations * face).sum()),
        breaks=tuple(_without(_series.breaks(times, durations), excluded)),
    )


def _without(
    spans: Sequence[tuple[float, float]], cut: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    """``spans`` less the parts inside ``cut`` (pieces shorter than a millisecond dropped)."""
    pieces = list(spans)
    for a, b in cut:
        kept = []
        for start, end in pieces:
            if b <= start or a >= end:
                kept.append((start, end))
                continue
            kept += [p for p in ((start, a), (b, end)) if p[1] - p[0] > 1e-3]
        pieces = kept
    return pieces
