"""Small inline-SVG charts for the session report: no plotting library, no external resources.

Every chart takes values that may be NaN (missing) and draws missing stretches as a hatched band
or a break in the line, never as a value. Its words and numbers are in the language of the
:class:`~emotrace.i18n.Translator` it is given (``tr``).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import numpy as np

from emotrace.i18n import Translator
from emotrace.sessions._series import runs
from emotrace.sessions.types import clock

#: Okabe-Ito colour-blind-safe palette, one colour per emotion.
COLORS = {
    "angry": "#D55E00",
    "disgust": "#009E73",
    "fear": "#CC79A7",
    "happy": "#E69F00",
    "sad": "#0072B2",
    "surprise": "#F0E442",
    "neutral": "#BBBBBB",
    "contempt": "#56B4E9",
}
MISSING_FILL = "url(#missing)"
_PATTERN = (
    '<defs><pattern id="missing" width="6" height="6" patternUnits="userSpaceOnUse" '
    'patternTransform="rotate(45)"><rect width="6" height="6" fill="#eeeeee"/>'
    '<line x1="0" y1="0" x2="0" y2="6" stroke="#bbbbbb" stroke-width="2"/></pattern>'
    # An excluded stretch (left out of every analytic): hatched the other way, red-brown.
    '<pattern id="excluded" width="7" height="7" patternUnits="userSpaceOnUse" '
    'patternTransform="rotate(-45)"><rect width="7" height="7" fill="#fbe9e2"/>'
    '<line x1="0" y1="0" x2="0" y2="7" stroke="#A63D17" stroke-width="2.5"/></pattern></defs>'
)
EXCLUDED_FILL = "url(#excluded)"
#: A break in the recording (paused, interrupted): plain grey-blue, unlike the hatched "face not
#: visible", since nothing was analysed there (see ``coverage``).
BREAK_FILL = "#d5dde8"
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 24, 18, 26


def color(name: str) -> str:
    """The colour of an emotion (grey for an unknown class)."""
    return COLORS.get(name, "#888888")


def _f(value: float) -> str:
    return f"{value:.1f}"


class Frame:
    """A plot area mapping time (x) and a value range (y) to pixels."""

    def __init__(
        self, width: int, height: int, t0: float, t1: float, y0: float = 0.0, y1: float = 1.0
    ) -> None:
        self.width, self.height = width, height
        self.t0, self.t1 = t0, t1 if t1 > t0 else t0 + 1.0
        self.y0, self.y1 = y0, y1

    def x(self, t: float) -> float:
        """Pixel x of time ``t``."""
        span = self.width - _LEFT - _RIGHT
        return _LEFT + (t - self.t0) / (self.t1 - self.t0) * span

    def y(self, value: float) -> float:
        """Pixel y of ``value``."""
        span = self.height - _TOP - _BOTTOM
        return _TOP + (self.y1 - value) / (self.y1 - self.y0) * span

    def open(self, title: str) -> str:
        """The ``<svg>`` start tag with an accessible title and the hatch pattern."""
        return (
            f'<svg width="{self.width}" height="{self.height}" viewBox="0 0 {self.width} '
            f'{self.height}" role="img" aria-label="{html.escape(title)}">'
            f"<title>{html.escape(title)}</title>{_PATTERN}"
        )

    def time_axis(self) -> str:
        """Bottom axis with about eight ``m:ss`` ticks."""
        step = _nice_step((self.t1 - self.t0) / 8)
        parts = []
        tick = math.ceil(self.t0 / step) * step
        base = self.height - _BOTTOM
        while tick <= self.t1 + 1e-9:
            x = self.x(tick)
            parts.append(
                f'<line x1="{_f(x)}" y1="{base}" x2="{_f(x)}" y2="{base + 4}" stroke="#555"/>'
                f'<text x="{_f(x)}" y="{base + 16}" font-size="10" text-anchor="middle">'
                f"{clock(tick)}</text>"
            )
            tick += step
        return "".join(parts)

    def value_axis(self, ticks: Sequence[float], tr: Translator, fmt: str = "{:.1f}") -> str:
        """Left axis with grid lines at ``ticks`` (``fmt``, written ``tr``'s way)."""
        parts = []
        for value in ticks:
            y = self.y(value)
            parts.append(
                f'<line x1="{_LEFT}" y1="{_f(y)}" x2="{self.width - _RIGHT}" y2="{_f(y)}" '
                f'stroke="#dddddd"/><text x="{_LEFT - 4}" y="{_f(y + 3)}" font-size="10" '
                f'text-anchor="end">{tr.decimal(fmt.format(value))}</text>'
            )
        return "".join(parts)

    def markers(self, times: Sequence[float]) -> str:
        """Dashed vertical lines numbered 1, 2, ... at marker times."""
        parts = []
        for number, t in enumerate(times, start=1):
            if not self.t0 <= t <= self.t1:
                continue
            x = self.x(t)
            parts.append(
                f'<line class="marker" x1="{_f(x)}" y1="{_TOP - 4}" x2="{_f(x)}" '
                f'y2="{self.height - _BOTTOM}" stroke="#222" stroke-dasharray="3,3"/>'
                f'<text x="{_f(x + 2)}" y="{_TOP - 6}" font-size="10">{number}</text>'
            )
        return "".join(parts)

    def spans(self, spans: Sequence[tuple[float, float]], fill: str, opacity: float = 1.0) -> str:
        """Full-height bands over time spans."""
        top, bottom = _TOP, self.height - _BOTTOM
        return "".join(
            f'<rect x="{_f(self.x(a))}" y="{top}" width="{_f(max(self.x(b) - self.x(a), 0.5))}" '
            f'height="{bottom - top}" fill="{fill}" fill-opacity="{opacity}"/>'
            for a, b in spans
        )


def _nice_step(raw: float) -> float:
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600):
        if step >= raw:
            return float(step)
    return 3600.0 * math.ceil(raw / 3600)


def missing_spans(edges: np.ndarray, valid: np.ndarray) -> list[tuple[float, float]]:
    """Time spans of the runs of invalid bins (``edges`` has one more entry than ``valid``)."""
    return [(float(edges[a]), float(edges[b + 1])) for a, b in runs(~valid)]


def stacked_area(
    edges: np.ndarray,
    probs: np.ndarray,
    classes: Sequence[str],
    markers: Sequence[float],
    excluded: Sequence[tuple[float, float]] = (),
    breaks: Sequence[tuple[float, float]] = (),
    *,
    tr: Translator,
) -> str:
    """Stacked emotion probabilities per time bin; missing bins hatched, ``excluded`` stretches
    hatched red, ``breaks`` in the recording plain grey-blue; markers dashed."""
    frame = Frame(900, 220, float(edges[0]), float(edges[-1]))
    valid = ~np.isnan(probs).any(axis=1)
    cum = np.concatenate([np.zeros((len(probs), 1)), np.nancumsum(probs, axis=1)], axis=1)
    parts = [
        frame.open(tr("stacked emotion timeline")),
        frame.value_axis([0, 0.5, 1], tr, "{:.0%}"),
    ]
    for a, b in runs(valid):
        xs = [frame.x(float(t)) for t in edges[a : b + 2]]
        for k, name in enumerate(classes):
            upper = np.repeat(cum[a : b + 1, k + 1], 2)
            lower = np.repeat(cum[a : b + 1, k], 2)
            xx = np.repeat(xs, 2)[1:-1]
            points = [f"{_f(x)},{_f(frame.y(v))}" for x, v in zip(xx, upper, strict=True)]
            points += [
                f"{_f(x)},{_f(frame.y(v))}" for x, v in zip(xx[::-1], lower[::-1], strict=True)
            ]
            parts.append(f'<polygon points="{" ".join(points)}" fill="{color(name)}"/>')
    parts.append(frame.spans(missing_spans(edges, valid), MISSING_FILL))
    parts.append(frame.spans(breaks, BREAK_FILL))
    parts.append(frame.spans(excluded, EXCLUDED_FILL))
    parts += [frame.time_axis(), frame.markers(markers), "</svg>"]
    return "".join(parts)


def lines(
    edges: np.ndarray,
    series: Sequence[tuple[str, np.ndarray, str]],
    markers: Sequence[float],
    shaded: Sequence[tuple[float, float]] = (),
    excluded: Sequence[tuple[float, float]] = (),
    breaks: Sequence[tuple[float, float]] = (),
    *,
    tr: Translator,
) -> str:
    """Lines over time in [-1, 1] (``(label, values per bin, colour)``), broken where NaN."""
    frame = Frame(900, 220, float(edges[0]), float(edges[-1]), -1.0, 1.0)
    parts = [frame.open(tr("valence and arousal")), frame.spans(shaded, "#D55E00", 0.15)]
    parts.append(frame.value_axis([-1, -0.5, 0, 0.5, 1], tr))
    centers = (edges[:-1] + edges[1:]) / 2
    valid_any = np.zeros(len(centers), bool)
    for label, values, stroke in series:
        valid = ~np.isnan(values)
        valid_any |= valid
        for a, b in runs(valid):
            points = " ".join(
                f"{_f(frame.x(float(t)))},{_f(frame.y(float(v)))}"
                for t, v in zip(centers[a : b + 1], values[a : b + 1], strict=True)
            )
            parts.append(
                f'<polyline points="{points}" fill="none" stroke="{stroke}" stroke-width="1.6">'
                f"<title>{html.escape(label)}</title></polyline>"
            )
    parts.append(frame.spans(missing_spans(edges, valid_any), MISSING_FILL, 0.8))
    parts.append(frame.spans(breaks, BREAK_FILL))
    parts.append(frame.spans(excluded, EXCLUDED_FILL))
    parts += [frame.time_axis(), frame.markers(markers), "</svg>"]
    return "".join(parts)


def strip(
    edges: Sequence[float],
    labels: Sequence[str | None],
    title: str,
    breaks: Sequence[tuple[float, float]] = (),
    *,
    tr: Translator,
) -> str:
    """One coloured cell per window (its dominant emotion); missing windows hatched, breaks in
    the recording plain grey-blue."""
    frame = Frame(900, 44, float(edges[0]), float(edges[-1]))
    parts = [frame.open(title)]
    for a, b, label in zip(edges[:-1], edges[1:], labels, strict=True):
        fill = MISSING_FILL if label is None else color(label)
        x0, x1 = frame.x(a), frame.x(b)
        parts.append(
            f'<rect x="{_f(x0)}" y="{_TOP}" width="{_f(max(x1 - x0, 0.5))}" '
            f'height="{44 - _TOP - 8}" fill="{fill}"><title>{clock(a)}-{clock(b)}: '
            f"{html.escape(tr(label) if label else tr('missing'))}</title></rect>"
        )
    not_recorded = html.escape(tr("not recorded (paused or interrupted)"))
    parts += [
        f'<rect x="{_f(frame.x(a))}" y="{_TOP}" width="{_f(max(frame.x(b) - frame.x(a), 0.5))}" '
        f'height="{44 - _TOP - 8}" fill="{BREAK_FILL}"><title>{clock(a)}-{clock(b)}: '
        f"{not_recorded}</title></rect>"
        for a, b in breaks
    ]
    parts.append("</svg>")
    return "".join(parts)


def bars(labels: Sequence[str], values: Sequence[float], *, tr: Translator) -> str:
    """Horizontal bars of fractions (0-1), one per emotion (``labels``: class names)."""
    width, row = 520, 22
    height = row * len(labels) + 10
    title = html.escape(tr("distribution of emotions"))
    parts = [
        f'<svg width="{width}" height="{height}" role="img" '
        f'aria-label="{title}"><title>{title}</title>'
    ]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = 5 + i * row
        share = 0.0 if math.isnan(value) else value
        parts.append(
            f'<text x="84" y="{y + 14}" font-size="12" text-anchor="end">'
            f"{html.escape(tr(label))}</text>"
            f'<rect x="90" y="{y + 3}" width="{_f(360 * share)}" height="{row - 6}" '
            f'fill="{color(label)}"/><text x="{_f(96 + 360 * share)}" y="{y + 14}" '
            f'font-size="12">{tr.percent(share)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def small_trend(
    title: str,
    values: Sequence[float],
    labels: Sequence[str],
    scale: tuple[float, float],
    fmt: str = "{:.2f}",
    *,
    tr: Translator,
) -> str:
    """A small line chart of one measure over sessions on the fixed ``scale`` ``(low, high)``
    of that measure (so two sessions' small difference is not blown up to the full height);
    missing values leave a break. The x axis numbers the sessions 1, 2, ... (their names, in
    full, are in each point's title and in the report's table)."""
    width, height = 280, 130
    ys = np.array(values, np.float64)
    ok = ~np.isnan(ys)
    lo, hi = scale
    frame = Frame(width, height, 0, max(len(ys) - 1, 1), lo, hi)
    parts = [frame.open(title), frame.value_axis([lo, (lo + hi) / 2, hi], tr, fmt)]
    for a, b in runs(ok):
        points = " ".join(
            f"{_f(frame.x(i))},{_f(frame.y(float(np.clip(ys[i], lo, hi))))}"
            for i in range(a, b + 1)
        )
        parts.append(f'<polyline points="{points}" fill="none" stroke="#0072B2" stroke-width="2"/>')
    for i in np.flatnonzero(ok).tolist():
        parts.append(
            f'<circle cx="{_f(frame.x(i))}" cy="{_f(frame.y(float(np.clip(ys[i], lo, hi))))}" '
            f'r="3" fill="#0072B2"><title>{i + 1}. {html.escape(labels[i])}: '
            f"{tr.decimal(f'{ys[i]:.3g}')}</title></circle>"
        )
    for i in range(len(labels)):
        parts.append(
            f'<text x="{_f(frame.x(i))}" y="{height - 8}" font-size="9" text-anchor="middle">'
            f"{i + 1}</text>"
        )
    parts.append(f'<text x="{width / 2}" y="11" font-size="11" text-anchor="middle">')
    parts.append(f"{html.escape(title)}</text></svg>")
    return "".join(parts)
