"""Per-track temporal smoothing of emotion probabilities, with hysteresis on the shown label.

Frame-by-frame predictions flicker: a face halfway between neutral and sad alternates between the
two many times a second. Averaging each track's probabilities over recent frames removes most of
it; hysteresis removes the rest: the shown label only changes when another class leads the held
one by ``margin``. One state per track id, dropped once the track has not been seen for
``max_age_s`` so memory stays flat over long videos.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from emotrace.errors import ConfigError
from emotrace.results import FaceEmotions

SmoothingMethod = Literal["ema", "window"]


@dataclass
class _TrackState:
    mean: np.ndarray
    held: int
    last_seen: float
    history: deque[np.ndarray] = field(default_factory=deque)


class EmotionSmoother:
    """Smooth probabilities per ``track_id`` and hold the shown label until another class leads.

    >>> smoother = EmotionSmoother(window=10)
    >>> shown = smoother.update(tracked_faces, time_s)   # shown.labels: held labels

    ``method="ema"``: exponential moving average with span ``window`` frames
    (``alpha = 2 / (window + 1)``, the usual span/alpha equivalence), cheap and without a cliff
    when old frames leave the window. ``method="window"``: plain mean of the last ``window``
    frames (project 1's prediction history). ``margin``: how far (in probability) another class
    must lead the held one before the shown label switches; 0 disables hysteresis.
    Faces without a track id (-1) pass through unchanged.
    """

    def __init__(
        self,
        window: int = 10,
        method: SmoothingMethod = "ema",
        margin: float = 0.1,
        max_age_s: float = 2.0,
    ) -> None:
        if window < 1:
            raise ConfigError(f"smoothing window must be at least 1 frame, got {window}")
        if method not in ("ema", "window"):
            raise ConfigError(f"smoothing method must be 'ema' or 'window', got {method!r}")
        if not 0.0 <= margin < 1.0:
            raise ConfigError(f"hysteresis margin must be in [0, 1), got {margin}")
        self.window = window
        self.method = method
        self.margin = margin
        self.max_age_s = max_age_s
        self.alpha = 2.0 / (window + 1)
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
        return FaceEmotions(
            faces.boxes, probabilities, faces.classes, faces.scores, faces.track_ids, held
        )

    def _step(self, track_id: int, p: np.ndarray, time_s: float) -> tuple[np.ndarray, int]:
        state = self._states.get(track_id)
        if state is None:
            state = _TrackState(p.astype(np.float64), int(p.argmax()), time_s)
            if self.method == "window":
                state.history = deque([p.astype(np.float64)], maxlen=self.window)
            self._states[track_id] = state
            return p, state.held
        if self.method == "ema":
            state.mean = self.alpha * p + (1.0 - self.alpha) * state.mean
        else:
            state.history.append(p.astype(np.float64))
            state.mean = np.mean(state.history, axis=0)
        state.last_seen = time_s
        leader = int(state.mean.argmax())
        if leader != state.held and state.mean[leader] >= state.mean[state.held] + self.margin:
            state.held = leader
        return state.mean.astype(np.float32), state.held

    def _evict(self, time_s: float) -> None:
        stale = [k for k, s in self._states.items() if time_s - s.last_seen > self.max_age_s]
        for track_id in stale:
            del self._states[track_id]
