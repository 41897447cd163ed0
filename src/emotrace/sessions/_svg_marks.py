"""The report's annotation track: markers, segments and excluded stretches with their labels,
on the same time axis as the charts below it.

Labels never overlap: each item goes to the first row where it fits (up to :data:`MAX_ROWS`);
where none is free, its label is shortened to the room left, and the full text is always in the
item's ``<title>`` (a tooltip in a browser, read by screen readers).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from emotrace.i18n import Translator
from emotrace.sessions._svg import _PATTERN, EXCLUDED_FILL, Frame
from emotrace.sessions.types import clock

MAX_ROWS = 6
_ROW = 16
_CHAR_PX = 5.6  # mean advance of a 10 px sans-serif character
_GAP_PX = 6


@dataclass(frozen=True)
class Mark:
    """One item of the track: a point (``end_s`` None), a segment or an excluded stretch."""

    start_s: float
    end_s: float | None
    text: str
    excluded: bool = False


def fit(text: str, room_px: float) -> str:
    """``text`` shortened with an ellipsis to ``room_px`` pixels ("" when not even one letter)."""
    chars = int(room_px // _CHAR_PX)
    if len(text) <= chars:
        return text
    return text[: chars - 1] + "…" if chars >= 2 else ""


def layout(frame: Frame, marks: Sequence[Mark]) -> list[tuple[Mark, int, str, float]]:
    """Each mark with its row, the label text shown (maybe shortened) and the label's x, in
    time order.

    A mark takes the first row whose items (shapes and labels) end before it starts; its label
    may use the room up to the plot's right edge, which later marks of that row then avoid.
    With every row taken, it goes to the row that frees first, and its label keeps to the part
    of its own shape past the labels already there (none for a point)."""
    ends = [float("-inf")] * MAX_ROWS
    right = frame.x(frame.t1)
    placed = []
    for mark in sorted(marks, key=lambda m: (m.start_s, m.end_s or m.start_s)):
        x0 = frame.x(mark.start_s)
        x1 = frame.x(mark.end_s) if mark.end_s is not None else x0
        free = [r for r in range(MAX_ROWS) if ends[r] + _GAP_PX <= x0]
        row = free[0] if free else min(range(MAX_ROWS), key=lambda r: ends[r])
        lx = x0 + 3 if free else ends[row] + _GAP_PX
        shown = fit(mark.text, (right + 20 - lx) if free else (x1 - lx - 2))
        ends[row] = max(ends[row], x1, lx + len(shown) * _CHAR_PX)
        placed.append((mark, row, shown, lx))
    return placed


def track(t0: float, t1: float, marks: Sequence[Mark], width: int = 900, *, tr: Translator) -> str:
    """An SVG strip of ``marks`` between ``t0`` and ``t1`` (the charts' time range); its title
    in ``tr``'s language (the marks' text comes translated)."""
    # A stretch outside the charts' range (excluded at the very start or end) is not drawn;
    # the report lists it all the same.
    marks = [m for m in marks if m.start_s <= t1 and (m.end_s or m.start_s) >= t0]
    placed = layout(Frame(width, 40, t0, t1), marks)
    rows = 1 + max((row for _, row, _, _ in placed), default=0)
    height = rows * _ROW + 6
    frame = Frame(width, height, t0, t1)
    title = html.escape(tr("markers, segments and excluded stretches"))
    parts = [
        f'<svg class="marks" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{title}"><title>{title}</title>{_PATTERN}'
    ]
    for mark, row, shown, lx in placed:
        y = 3 + row * _ROW
        x0 = max(frame.x(mark.start_s), frame.x(t0))
        span = f"{clock(mark.start_s)}"
        if mark.end_s is None:
            shape = (
                f'<line x1="{x0:.1f}" y1="{y}" x2="{x0:.1f}" y2="{y + _ROW - 2}" stroke="#222" '
                'stroke-dasharray="3,2"/>'
            )
        else:
            span += f"–{clock(mark.end_s)}"
            x1 = min(frame.x(mark.end_s), frame.x(t1))
            fill = EXCLUDED_FILL if mark.excluded else "#cfe3f1"
            shape = (
                f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 1.0):.1f}" height="{_ROW - 2}" '
                f'fill="{fill}" stroke="{"#A63D17" if mark.excluded else "#0072B2"}"/>'
            )
        text = (
            f'<text x="{lx:.1f}" y="{y + _ROW - 5}" font-size="10">{html.escape(shown)}</text>'
            if shown
            else ""
        )
        full = f"{span} {mark.text}"
        parts.append(f'<g class="mark"><title>{html.escape(full)}</title>{shape}{text}</g>')
    parts.append("</svg>")
    return "".join(parts)
