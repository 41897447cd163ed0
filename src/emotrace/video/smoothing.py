"""Per-track temporal smoothing of emotion probabilities, with hysteresis on the shown label.

Frame-by-frame predictions flicker: a face halfway between neutral and sad alternates between the
two many times a second. Averaging each track's probabilities over recent frames removes most of
it; hysteresis removes the rest: the shown label only changes when another class leads the held
one by ``margin``. One state per track id, dropped once the track has not been seen for
``max_age_s`` so memory stays flat over long videos. Windows are in seconds, not frames.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from emotrace.errors import ConfigError
from emotrace.results import FaceEmotions
from emotrace.video.defaults import DEFAULT_HYSTERESIS, DEFAULT_SMOOTH_WINDOW_S

SmoothingMethod = Literal["ema", "window"]


@dataclass
class _TrackState:
    mean: np.ndarray
    held: int
    last_seen: float
    history: deque[tuple[float, np.ndarray]] = field(default_factory=deque)


#: Default smoothing span in seconds: at 30 fps about the 10-frame span of earlier versions
#: for ``window``, and an EMA time constant of 0.2 s (a label follows a real change within about
#: half a second, while sub-second flicker is averaged out). (Written once, in ``video.defaults``.)
DEFAULT_WINDOW_S = DEFAULT_SMOOTH_WINDOW_S


class EmotionSmoother:
    """Smooth probabilities per ``track_id`` and hold the shown label until another class leads.

    >>> smoother = EmotionSmoother(window_s=0.4)
    >>> shown = smoother.update(tracked_faces, time_s)   # shown.labels: held labels

    Everything is in seconds of the frames' timestamps, so a 15 fps and a 30 fps source are
    smoothed alike. ``method="ema"``: exponential moving average with time constant
    ``window_s / 2`` (the usual span/alpha equivalence: a 10-frame span at 30 fps), weighting each
    frame by the time since the previous one, cheap and without a cliff when old frames leave.
    ``method="window"``: plain mean of the frames of the last ``window_s`` seconds (project 1's
    prediction history). ``margin``: how far (in probability) another class must lead the held
    one before the shown label switches; 0 disables hysteresis. ``max_age_s``: a track unseen
    this long is forgotten. Faces without a track id (-1) pass through unchanged.
    """

    def __init__(
        self,
        window_s: float = DEFAULT_WINDOW_S,
        method: SmoothingMethod = "ema",
        margin: float = DEFAULT_HYSTERESIS,
        max_age_s: float = 2.0,
    ) -> None:
        if not window_s > 0:
            raise ConfigError(f"smoothing window must be > 0 seconds, got {window_s}")
        if method not in ("ema", "window"):
            raise ConfigError(f"smoothing method must be 'ema' or 'window', got {method!r}")
        if not 0.0 <= margin < 1.0:
            raise ConfigError(f"hysteresis margin must be in [0, 1), got {margin}")
        if not max_age_s > 0:
            raise ConfigError(f"max_age_s must be > 0 seconds, got {max_age_s}")
        self.window_s = window_s
        self.method = method
        self.margin = margin
        self.max_age_s = max_age_s
        self.time_constant_s = window_s / 2
        self._states: dict[int, _TrackState] = {}

    def __len__(self) -> int:
        """Number of tracks currently held in memory."""
        return len(self._states)

    def reset(self) -> None:
        """Forget every track."""
        self._states.clear()

    def update(self, faces: FaceEmotions, time_s: float) -> FaceEmotions:
        """Smoothed copy of ``faces``: averaged ``probabilities`` and ``held_label_ids``."""
        self._evict(time_s)
        probabilities = faces.probabilities.copy()
        held = faces.probabilities.argmax(axis=1) if len(faces) else np.zeros(0, np.int64)
        for i, track_id in enumerate(faces.track_ids.tolist()):
            if track_id < 0:
                continue
            probabilities[i], held[i] = self._step(track_id, faces.probabilities[i], time_s)
        return faces.replace(probabilities=probabilities, held_label_ids=held)

    def _step(self, track_id: int, p: np.ndarray, time_s: float) -> tuple[np.ndarray, int]:
        state = self._states.get(track_id)
        current = p.astype(np.float64)
        if state is None:
            state = _TrackState(current, int(p.argmax()), time_s)
            state.history.append((time_s, current))
            self._states[track_id] = state
            return p, state.held
        if self.method == "ema":
            # Irregular frame times: the weight of the new frame grows with the time it covers.
            dt = max(time_s - state.last_seen, 0.0)
            alpha = 1.0 - float(np.exp(-dt / self.time_constant_s))
            state.mean = alpha * current + (1.0 - alpha) * state.mean
        else:
            state.history.append((time_s, current))
            while state.history[0][0] <= time_s - self.window_s:
                state.history.popleft()
            state.mean = np.mean([q for _, q in state.history], axis=0)
        state.last_seen = time_s
        leader = int(state.mean.argmax())
        if leader != state.held and state.mean[leader] >= state.mean[state.held] + self.margin:
            state.held = leader
        return state.mean.astype(np.float32), state.held

    def _evict(self, time_s: float) -> None:
        stale = [k for k, s in self._states.items() if time_s - s.last_seen > self.max_age_s]
        for track_id in stale:
            del self._states[track_id]
