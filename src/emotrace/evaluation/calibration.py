"""Calibration: expected calibration error, reliability bins, and temperature scaling."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np


def reliability_bins(probs: np.ndarray, y_true: np.ndarray, bins: int = 15) -> list[dict[str, Any]]:
    """Per confidence bin: range, count, mean confidence and accuracy (for the diagram)."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, bins + 1)
    out = []
    for lo, hi in pairwise(edges):
        inside = (confidence > lo) & (confidence <= hi)
        count = int(inside.sum())
        out.append(
            {
                "lower": float(lo),
                "upper": float(hi),
                "count": count,
                "confidence": float(confidence[inside].mean()) if count else None,
                "accuracy": float(correct[inside].mean()) if count else None,
            }
        )
    return out


def expected_calibration_error(probs: np.ndarray, y_true: np.ndarray, bins: int = 15) -> float:
    """ECE: bin-size-weighted mean |accuracy - confidence| over equal-width confidence bins."""
    n = len(y_true)
    if n == 0:
        return 0.0
    total = 0.0
    for b in reliability_bins(probs, y_true, bins):
        if b["count"]:
            total += b["count"] / n * abs(b["accuracy"] - b["confidence"])
    return float(total)


def fit_temperature(logits: np.ndarray, y_true: np.ndarray) -> float:
    """Temperature T minimising the negative log-likelihood of ``softmax(logits / T)``.

    A 1-D problem: golden-section search on log T in [0.05, 20] is exact enough and needs no
    optimiser dependency. Fit it on validation data, never on the data you report.
    """
    z = logits.astype(np.float64)
    idx = np.arange(len(y_true))

    def nll(log_t: float) -> float:
        s = z / np.exp(log_t)
        s -= s.max(axis=1, keepdims=True)
        log_probs = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
        return float(-log_probs[idx, y_true].mean())

    lo, hi = np.log(0.05), np.log(20.0)
    ratio = (np.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(a), nll(b)
    for _ in range(80):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(b)
    return float(np.exp((lo + hi) / 2))
