"""Each patient measured against their own resting face: baseline statistics, relative measures
and calibrated labels.

A **baseline** is a stretch of one session in which the patient is at rest, with at least
:data:`MIN_VISIBLE_S` (10 s) of visible face. From its face-visible frames (time-weighted as in
``analytics``) come the patient's mean probability of each class and the mean and spread (SD) of
valence, arousal and negative affect. The statistics are stored with the baseline (JSON), so it
outlives its session; it belongs to the patient, one is active at a time, a replaced one is kept.

**Relative measures**: every figure minus the baseline's mean; valence, arousal and negative
affect also in units of the baseline's SD (``z``), unless that spread is below :data:`MIN_SD`
(a face that did not move at all: a z-score would blow up noise). Probabilities and time shares
are bounded and skewed, so for them only the difference is given.

**Calibrated labels** (a per-person prior shift): with ``b`` the baseline's mean probabilities and
``r`` the model's mean output on neutral faces (:func:`neutral_reference`, measured once per
model on FER2013's validation neutral faces and stored beside the bundled model),

    calibrated = softmax(log p - log b + log r)

which is ``softmax(logits - log b + log r)`` up to a per-frame constant (``log p`` is the logits
less their log-sum-exp; the stored ``p`` already carries the model's temperature). A frame equal
to the patient's resting mean maps exactly to ``r``, the model's picture of a neutral face, so the
resting face reads neutral; a frame departs from ``r`` exactly as much as it departs from the
patient's rest. Mean probabilities below :data:`PROB_FLOOR` are raised to it, so a class the
patient never showed at rest is not amplified without bound.

What it does not do: it does not make the model more accurate, it cannot tell a patient who was
not at rest during the baseline (a sad baseline makes sadness read neutral), and it assumes the
same model, camera and lighting as the baseline's session.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from emotrace.errors import SessionError
from emotrace.sessions.circumplex import RUSSELL_1980, Circumplex
from emotrace.sessions.measures import AnalyticsConfig, Series, Window, dominant_windows
from emotrace.sessions.types import SessionData, clock

#: The least visible face a baseline needs, in seconds.
MIN_VISIBLE_S = 10.0
#: Below this SD (valence/arousal units) a difference is not expressed in SD units.
MIN_SD = 0.01
#: Mean probabilities of the baseline are raised to at least this before the prior shift.
PROB_FLOOR = 1e-3
#: The file beside the bundled models with each model's mean output on neutral faces.
REFERENCE_FILE = "neutral_reference.json"

#: The affect measures with a mean and a spread, in stats order.
AFFECT = ("valence", "arousal", "negative_affect")


@dataclass(frozen=True)
class Spread:
    """Mean and standard deviation of one per-frame measure over the baseline."""

    mean: float
    sd: float


@dataclass(frozen=True)
class BaselineStats:
    """What a baseline stores: the patient's resting figures."""

    classes: tuple[str, ...]
    mean_probabilities: tuple[float, ...]
    valence: Spread
    arousal: Spread
    negative_affect: Spread
    visible_s: float
    frames: int
    model_sha256: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (as stored)."""
        return {
            "classes": list(self.classes),
            "mean_probabilities": dict(zip(self.classes, self.mean_probabilities, strict=True)),
            **{k: {"mean": getattr(self, k).mean, "sd": getattr(self, k).sd} for k in AFFECT},
            "visible_s": self.visible_s,
            "frames": self.frames,
            "model_sha256": self.model_sha256,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BaselineStats:
        """Read :meth:`to_dict`'s layout."""
        classes = tuple(data["classes"])
        spreads = {k: Spread(float(data[k]["mean"]), float(data[k]["sd"])) for k in AFFECT}
        return cls(
            classes=classes,
            mean_probabilities=tuple(float(data["mean_probabilities"][c]) for c in classes),
            visible_s=float(data["visible_s"]),
            frames=int(data["frames"]),
            model_sha256=str(data.get("model_sha256", "")),
            **spreads,
        )

    def shift(self, name: str, value: float) -> dict[str, float]:
        """``value`` of measure ``name`` (:data:`AFFECT`) against the baseline: the value, its
        difference from the baseline mean and that difference in baseline SDs (NaN when the
        spread is below :data:`MIN_SD`)."""
        spread: Spread = getattr(self, name)
        delta = value - spread.mean
        z = delta / spread.sd if spread.sd >= MIN_SD else math.nan
        return {"value": value, "delta": delta, "z": z}


@dataclass(frozen=True)
class Baseline:
    """A stored baseline: a resting stretch of one session of a patient and its statistics."""

    id: int
    patient: str
    session_id: int | None
    session_name: str | None
    start_s: float
    end_s: float
    created_at: float
    replaced_at: float | None
    stats: BaselineStats

    @property
    def active(self) -> bool:
        """Whether this is the patient's current baseline."""
        return self.replaced_at is None

    @property
    def visible_s(self) -> float:
        """Seconds of visible face inside the stretch."""
        return self.stats.visible_s

    def describe(self) -> str:
        """One line: which stretch of which session, and how much face it had."""
        where = f"session {self.session_name}" if self.session_name else "a deleted session"
        return (
            f"baseline {self.id} of {self.patient}: {where}, {clock(self.start_s)}-"
            f"{clock(self.end_s)}, face visible {self.visible_s:.1f} s ({self.stats.frames} frames)"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN stays for the caller to clean)."""
        return {
            "id": self.id,
            "patient": self.patient,
            "session_id": self.session_id,
            "session_name": self.session_name,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "created_at": self.created_at,
            "replaced_at": self.replaced_at,
            "active": self.active,
            "visible_s": self.visible_s,
            "stats": self.stats.to_dict(),
        }


def _weighted_sd(values: np.ndarray, weights: np.ndarray, mean: float) -> float:
    return float(math.sqrt(np.average((values - mean) ** 2, weights=weights)))


def baseline_stats(
    data: SessionData,
    start_s: float,
    end_s: float,
    config: AnalyticsConfig | None = None,
    circumplex: Circumplex = RUSSELL_1980,
) -> BaselineStats:
    """The resting statistics of ``data`` between ``start_s`` and ``end_s`` (session seconds).

    :class:`SessionError`, saying why, when the stretch is not a time range of the session or
    holds less than :data:`MIN_VISIBLE_S` of visible face."""
    if not (math.isfinite(start_s) and math.isfinite(end_s)) or start_s < 0:
        raise SessionError(f"a baseline needs a start and an end in seconds, got {start_s}-{end_s}")
    if end_s <= start_s:
        raise SessionError(
            f"the baseline's end ({end_s:g} s) must come after its start ({start_s:g} s)"
        )
    series = Series.from_data(data, config or AnalyticsConfig(), circumplex)
    times = series.times
    # A frame counts for the part of its duration inside the stretch.
    inside = np.clip(
        np.minimum(times + series.durations, end_s) - np.maximum(times, start_s), 0, None
    )
    weights = inside * series.visible
    visible_s = float(weights.sum())
    if visible_s < MIN_VISIBLE_S:
        last = float(times[-1] + series.durations[-1]) if len(times) else 0.0
        where = (
            f"session {data.info.name!r} ends at {clock(last)}"
            if start_s >= last
            else f"the face is visible for {visible_s:.1f} s of it"
        )
        raise SessionError(
            f"baseline {clock(start_s)}-{clock(end_s)} refused: {where}; a baseline needs at "
            f"least {MIN_VISIBLE_S:g} s of visible face at rest"
        )
    used = weights > 0
    w = weights[used]
    probs = series.probabilities[used]
    means = np.average(probs, axis=0, weights=w)
    spreads = {}
    for name, values in (
        ("valence", series.valence), ("arousal", series.arousal),
        ("negative_affect", series.negative),
    ):  # fmt: skip
        mean = float(np.average(values[used], weights=w))
        spreads[name] = Spread(mean, _weighted_sd(values[used], w, mean))
    return BaselineStats(
        classes=tuple(data.classes),
        mean_probabilities=tuple(float(x) for x in means),
        visible_s=visible_s,
        frames=int(used.sum()),
        model_sha256=data.info.model.sha256,
        **spreads,
    )


# -- calibrated labels -----------------------------------------------------------------------


@dataclass(frozen=True)
class NeutralReference:
    """A model's mean output on neutral faces (the distribution a resting face is mapped to)."""

    model_sha256: str
    model_name: str
    classes: tuple[str, ...]
    mean_probabilities: tuple[float, ...]
    faces: int
    dataset: str


@cache
def _references() -> dict[str, Any]:
    path = resources.files("emotrace") / "assets" / REFERENCE_FILE
    with path.open("r", encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


def neutral_reference(model_sha256: str) -> NeutralReference | None:
    """The stored neutral reference of the model with this sha256 (``None`` for a model that was
    never measured: calibrated labels are then not available, relative measures still are)."""
    data = _references()
    entry = data["models"].get(model_sha256)
    if entry is None:
        return None
    classes = tuple(entry["classes"])
    mean = np.array([float(entry["mean_probabilities"][c]) for c in classes])
    mean /= mean.sum()  # stored rounded to 6 decimals: a distribution again
    return NeutralReference(
        model_sha256=model_sha256,
        model_name=entry["name"],
        classes=classes,
        mean_probabilities=tuple(float(x) for x in mean),
        faces=int(entry["faces"]),
        dataset=str(data["dataset"]),
    )


def calibrate(
    probabilities: np.ndarray,
    resting: np.ndarray | tuple[float, ...],
    reference: np.ndarray | tuple[float, ...],
) -> np.ndarray:
    """The prior-shifted probabilities ``softmax(log p - log b + log r)`` of ``(N, K)``
    probabilities (rows of NaN, missing faces, stay NaN); see the module docstring."""
    p = np.asarray(probabilities, np.float64)
    b = np.maximum(np.asarray(resting, np.float64), PROB_FLOOR)
    r = np.asarray(reference, np.float64)
    missing = np.isnan(p).any(axis=-1)
    logits = np.log(np.maximum(np.nan_to_num(p, nan=1.0), 1e-12)) - np.log(b) + np.log(r)
    logits -= logits.max(axis=-1, keepdims=True)
    out = np.exp(logits)
    out /= out.sum(axis=-1, keepdims=True)
    out[missing] = np.nan
    return out


# -- a session against a baseline -----------------------------------------------------------


@dataclass
class Relative:
    """A session's figures against a baseline (what ``SessionSummary.relative`` holds)."""

    baseline: Baseline
    #: The baseline was made from this model's output (else its figures do not compare).
    same_model: bool
    #: ``None`` when the session's model has no neutral reference (no calibrated labels).
    reference: NeutralReference | None
    mean_probability_delta: dict[str, float]
    affect: dict[str, dict[str, float]]
    #: The session's SD of valence and arousal over the baseline's (``sd_ratio``).
    spread_ratio: dict[str, float]
    calibrated_time_share: dict[str, float] | None
    calibrated_mean_probability: dict[str, float] | None
    calibrated_windows: dict[float, list[Window]] | None
    markers: list[dict[str, Any]]
    #: Per frame, valence and arousal in baseline SDs (NaN where missing or SD too small).
    valence_z: np.ndarray = field(repr=False)
    arousal_z: np.ndarray = field(repr=False)
    #: Per frame calibrated probabilities (``None`` without a reference).
    calibrated: np.ndarray | None = field(repr=False)

    def measures(self) -> dict[str, float]:
        """The relative scalars compared across sessions (``trend``)."""
        out = {
            "valence_vs_baseline_sd": self.affect["valence"]["z"],
            "arousal_vs_baseline_sd": self.affect["arousal"]["z"],
            "negative_vs_baseline": self.affect["negative_affect"]["delta"],
        }
        if self.calibrated_time_share is not None:
            out.update(
                # Read by the report's trend as "happy (calibrated) share (%)".
                {f"{c} (calibrated)_pct": 100 * s for c, s in self.calibrated_time_share.items()}
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN stays for ``analytics._clean``)."""
        reference = self.reference
        return {
            "baseline": self.baseline.to_dict(),
            "same_model": self.same_model,
            "mean_probability_delta": self.mean_probability_delta,
            "valence": self.affect["valence"],
            "arousal": self.affect["arousal"],
            "negative_affect": self.affect["negative_affect"],
            "sd_ratio": self.spread_ratio,
            "calibrated": None
            if reference is None
            else {
                "method": "softmax(log p - log baseline mean + log neutral reference)",
                "reference": dict(
                    zip(reference.classes, reference.mean_probabilities, strict=True)
                ),
                "reference_dataset": reference.dataset,
                "time_share": self.calibrated_time_share,
                "mean_probability": self.calibrated_mean_probability,
                "windows": {
                    str(w): [vars(x) for x in v] for w, v in (self.calibrated_windows or {}).items()
                },
            },
            "markers": self.markers,
        }


def _mean(values: np.ndarray, weights: np.ndarray) -> float:
    ok = ~np.isnan(values) & (weights > 0)
    return float(np.average(values[ok], weights=weights[ok])) if ok.any() else math.nan


def relative(
    series: Series,
    classes: tuple[str, ...],
    baseline: Baseline,
    model_sha256: str,
    config: AnalyticsConfig,
    markers: list[Any],
) -> Relative:
    """A session's ``series`` against ``baseline`` (see the module docstring)."""
    stats = baseline.stats
    if tuple(stats.classes) != tuple(classes):
        raise SessionError(
            f"baseline {baseline.id} has classes {', '.join(stats.classes)}; the session has "
            f"{', '.join(classes)}: they cannot be compared"
        )
    w = series.durations * series.visible
    seen = float(w.sum())
    mean_p = [_mean(series.probabilities[:, k], w) for k in range(len(classes))]
    affect = {
        name: stats.shift(name, _mean(values, w))
        for name, values in zip(
            AFFECT, (series.valence, series.arousal, series.negative), strict=True
        )
    }
    # Variability in units of the resting variability: 2.0, twice as changeable as at rest.
    spread_ratio = {}
    for name, values in (("valence", series.valence), ("arousal", series.arousal)):
        ok = ~np.isnan(values) & (w > 0)
        sd = _weighted_sd(values[ok], w[ok], affect[name]["value"]) if ok.any() else math.nan
        rest_sd = getattr(stats, name).sd
        spread_ratio[name] = sd / rest_sd if rest_sd >= MIN_SD else math.nan

    def z(name: str, values: np.ndarray) -> np.ndarray:
        spread: Spread = getattr(stats, name)
        sd = spread.sd if spread.sd >= MIN_SD else math.nan
        return (values - spread.mean) / sd

    reference = neutral_reference(model_sha256)
    if reference is not None and reference.classes != tuple(classes):
        reference = None
    calibrated = share = cal_mean = windows = None
    if reference is not None:
        calibrated = calibrate(
            series.probabilities, stats.mean_probabilities, reference.mean_probabilities
        )
        labels = np.nan_to_num(calibrated, nan=-1.0).argmax(axis=1)
        share = {
            c: float((w * (labels == k)).sum() / seen) if seen else math.nan
            for k, c in enumerate(classes)
        }
        cal_mean = {c: _mean(calibrated[:, k], w) for k, c in enumerate(classes)}
        shifted = replace(series, probabilities=calibrated)
        windows = {
            s: dominant_windows(shifted, classes, s, config.min_window_visible)
            for s in config.windows_s
        }
    valence_z, arousal_z = z("valence", series.valence), z("arousal", series.arousal)
    marks = []
    for marker in markers:
        inside = (series.times >= marker.time_s) & (
            series.times < marker.time_s + config.marker_window_s
        )
        wi = w * inside
        marks.append(
            {
                "time_s": marker.time_s,
                "label": marker.label,
                "valence_z": _mean(valence_z, wi),
                "arousal_z": _mean(arousal_z, wi),
                "negative_delta": _mean(series.negative, wi) - stats.negative_affect.mean,
            }
        )
    return Relative(
        baseline=baseline,
        same_model=not (stats.model_sha256 and model_sha256) or stats.model_sha256 == model_sha256,
        reference=reference,
        mean_probability_delta={
            c: mean_p[k] - stats.mean_probabilities[k] for k, c in enumerate(classes)
        },
        affect=affect,
        spread_ratio=spread_ratio,
        calibrated_time_share=share,
        calibrated_mean_probability=cal_mean,
        calibrated_windows=windows,
        markers=marks,
        valence_z=valence_z,
        arousal_z=arousal_z,
        calibrated=calibrated,
    )
