"""Numeric helpers for irregular time series with missing values (NaN), all vectorised.

Missing values stay missing: smoothing and binning average only what is there and leave NaN
where nothing is; nothing is interpolated.
"""

from __future__ import annotations

import numpy as np


def typical_interval(times: np.ndarray, max_gap_s: float) -> float:
    """The median time between consecutive frames, of those at most ``max_gap_s`` apart (1 s, or
    ``max_gap_s`` if smaller, when there are none)."""
    diffs = np.diff(times)
    regular = diffs[diffs <= max_gap_s]
    return float(np.median(regular)) if len(regular) else min(1.0, max_gap_s)


def frame_durations(times: np.ndarray, max_gap_s: float) -> np.ndarray:
    """Seconds each frame stands for: the time to the next frame.

    More than ``max_gap_s`` to the next frame is a break in the recording (paused, interrupted,
    the stream stalled; see :func:`breaks`): the frame before it, like the last frame, stands
    for the typical interval (:func:`typical_interval`), never for the break.
    """
    if len(times) == 0:
        return np.zeros(0)
    typical = typical_interval(times, max_gap_s)
    dt = np.append(np.diff(times), typical)
    return np.where(dt <= max_gap_s, dt, typical)


def breaks(times: np.ndarray, durations: np.ndarray) -> list[tuple[float, float]]:
    """The stretches no frame stands for (``frame_durations``): ``(start, end)`` pairs."""
    if len(times) < 2:
        return []
    ends = times[:-1] + durations[:-1]
    found = np.flatnonzero(times[1:] - ends > 1e-9)
    return [(float(ends[i]), float(times[i + 1])) for i in found]


def smooth(times: np.ndarray, values: np.ndarray, window_s: float) -> np.ndarray:
    """Centred moving mean over ``window_s`` of the non-NaN values; NaN stays NaN."""
    out = np.full(values.shape, np.nan)
    ok = ~np.isnan(values) if values.ndim == 1 else ~np.isnan(values).any(axis=1)
    if not ok.any():
        return out
    t, x = times[ok], values[ok]
    if window_s <= 0:
        out[ok] = x
        return out
    lo = np.searchsorted(t, t - window_s / 2, "left")
    hi = np.searchsorted(t, t + window_s / 2, "right")
    csum = np.concatenate([np.zeros((1, *x.shape[1:])), np.cumsum(x, axis=0)])
    count = (hi - lo).reshape(-1, *([1] * (x.ndim - 1)))
    out[ok] = (csum[hi] - csum[lo]) / count
    return out


def bin_index(times: np.ndarray, start: float, bin_s: float, n_bins: int) -> np.ndarray:
    """Bin of each time for bins ``[start + i * bin_s, start + (i + 1) * bin_s)``."""
    return np.clip(((times - start) / bin_s).astype(np.int64), 0, max(n_bins - 1, 0))


def binned_mean(
    bins: np.ndarray, values: np.ndarray, n_bins: int, weights: np.ndarray | None = None
) -> np.ndarray:
    """Weighted mean of non-NaN ``values`` (``(N,)`` or ``(N, K)``) per bin; NaN for empty bins."""
    two_d = values.ndim == 2
    x = values if two_d else values[:, None]
    ok = ~np.isnan(x).any(axis=1)
    w = (np.ones(len(x)) if weights is None else weights) * ok
    total = np.bincount(bins, weights=w, minlength=n_bins)[:n_bins]
    sums = np.stack(
        [
            np.bincount(bins, weights=np.where(ok, x[:, k], 0.0) * w, minlength=n_bins)[:n_bins]
            for k in range(x.shape[1])
        ],
        axis=1,
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(total[:, None] > 0, sums / total[:, None], np.nan)
    return mean if two_d else mean[:, 0]


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``(first, last)`` index pairs of the runs of True in ``mask``."""
    if not len(mask):
        return []
    padded = np.concatenate([[False], mask.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def peaks(
    times: np.ndarray, values: np.ndarray, threshold: float, separation_s: float, limit: int
) -> list[int]:
    """Indices of peaks: the highest point of each excursion to >= ``threshold``.

    NaN values are skipped (an excursion continues across them). Of peaks closer than
    ``separation_s``, the higher is kept; at most ``limit``, returned in time order.
    """
    ok = np.flatnonzero(~np.isnan(values))
    if len(ok) == 0:
        return []
    x = values[ok]
    # One candidate per excursion, so a long plateau is one peak, not one per frame.
    candidates = np.array(
        [ok[a + int(np.argmax(x[a : b + 1]))] for a, b in runs(x >= threshold)], np.int64
    )
    chosen: list[int] = []
    for i in candidates[np.argsort(-values[candidates], kind="stable")]:
        if all(abs(times[i] - times[j]) >= separation_s for j in chosen):
            chosen.append(int(i))
            if len(chosen) >= limit:
                break
    return sorted(chosen)


def rmssd(values: np.ndarray) -> float:
    """Root mean square of successive differences, over consecutive non-NaN pairs."""
    diffs = np.diff(values)
    diffs = diffs[~np.isnan(diffs)]
    return float(np.sqrt(np.mean(diffs**2))) if len(diffs) else float("nan")
