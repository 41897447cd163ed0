"""Valence and arousal from class probabilities, through Russell's circumplex of affect.

Each emotion class is a point on the unit circle of Russell (1980) at the angle (in degrees,
counter-clockwise from "pleasure" at 0°, "arousal" at 90°) that Russell's direct circular scaling
of 28 affect words gave the nearest word:

======== ================== ========== ======== ========
class    Russell (1980)     angle (°)  valence  arousal
======== ================== ========== ======== ========
happy    "happy"                  7.8    0.991    0.136
surprise "astonished"            69.8    0.345    0.938
angry    "angry"                 99.8   -0.170    0.985
fear     "afraid"               116.5   -0.446    0.895
sad      "sad"                  207.5   -0.887   -0.462
disgust  "displeasure" axis     180.0   -1.000    0.000
contempt "displeasure" axis     180.0   -1.000    0.000
neutral  centre of the circle      -     0.000    0.000
======== ================== ========== ======== ========

Disgust and contempt are not among Russell's 28 words; they sit on the displeasure pole, one of
the eight reference directions of the paper (pleasure 0°, excitement 45°, arousal 90°, distress
135°, displeasure 180°, depression 225°, sleepiness 270°, relaxation 315°). Neutral is the
circle's centre: neither pleasant nor unpleasant, medium arousal.

A frame's valence and arousal are the probability-weighted means of the class points,
``v = sum_k p_k * v_k`` (same for arousal), so both lie in [-1, 1] and a confident prediction
lands near its class's point while an uncertain one is pulled towards the centre.

*Negative affect* is ``sum_k p_k`` over the classes with negative valence (angry, disgust, fear,
sad, contempt): the probability that the face shows a negative emotion. It is used for
sustained-negative-affect segments instead of valence because Russell places "angry" close to
the arousal axis (valence -0.17), which would make anger nearly invisible to a valence threshold.

Reference: Russell, J. A. (1980). A circumplex model of affect. *Journal of Personality and Social
Psychology*, 39(6), 1161-1178. https://doi.org/10.1037/h0077714

A different mapping can be passed to every analytics function (``Circumplex({...})``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from emotrace.errors import SessionError

#: Angle in degrees on Russell's circle, or ``None`` for the centre (see the module docstring).
RUSSELL_1980_ANGLES: dict[str, float | None] = {
    "happy": 7.8,
    "surprise": 69.8,
    "angry": 99.8,
    "fear": 116.5,
    "sad": 207.5,
    "disgust": 180.0,
    "contempt": 180.0,
    "neutral": None,
}


def _points(angles: Mapping[str, float | None]) -> dict[str, tuple[float, float]]:
    points = {}
    for name, angle in angles.items():
        if angle is None:
            points[name] = (0.0, 0.0)
        else:
            rad = math.radians(angle)
            points[name] = (math.cos(rad), math.sin(rad))
    return points


@dataclass(frozen=True)
class Circumplex:
    """Class name -> ``(valence, arousal)``; the default is Russell (1980), documented above."""

    points: Mapping[str, tuple[float, float]] = field(
        default_factory=lambda: _points(RUSSELL_1980_ANGLES)
    )

    def matrix(self, classes: Sequence[str]) -> np.ndarray:
        """``(K, 2)`` valence/arousal of ``classes``; :class:`SessionError` for unknown ones."""
        missing = [c for c in classes if c not in self.points]
        if missing:
            raise SessionError(
                f"no valence/arousal coordinates for {', '.join(missing)}; "
                f"known: {', '.join(self.points)}"
            )
        return np.array([self.points[c] for c in classes], dtype=np.float64).reshape(-1, 2)

    def negative(self, classes: Sequence[str]) -> np.ndarray:
        """Boolean mask of the classes with negative valence."""
        return self.matrix(classes)[:, 0] < 0

    def valence_arousal(self, probabilities: np.ndarray, classes: Sequence[str]) -> np.ndarray:
        """``(N, 2)`` valence and arousal per frame; NaN rows (missing faces) stay NaN."""
        return np.asarray(probabilities, np.float64) @ self.matrix(classes)

    def negative_affect(self, probabilities: np.ndarray, classes: Sequence[str]) -> np.ndarray:
        """``(N,)`` probability of a negative-valence class per frame (NaN when missing)."""
        probs = np.asarray(probabilities, np.float64)
        negative = probs[:, self.negative(classes)].sum(axis=1)
        negative[np.isnan(probs).any(axis=1)] = np.nan
        return negative


RUSSELL_1980 = Circumplex()
