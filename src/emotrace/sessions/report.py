"""The clinician's session report: one self-contained HTML file, optionally printed to PDF.

Charts are inline SVG; there are no scripts, fonts, images or links to fetch, and a
Content-Security-Policy (``default-src 'none'``, from the reports' shared shell,
:mod:`emotrace._html`) makes the browser refuse any request should one slip in, so the report
opens offline and never contacts a server. A session without any face of
the patient says so instead of drawing empty charts.

PDF: ``write_report(..., pdf=path)`` prints the same HTML with headless Chromium
(``--print-to-pdf``); Chromium is found on ``PATH`` (``chromium``, ``chromium-browser``,
``google-chrome``) or in ``$EMOTRACE_CHROMIUM``. Chromium prints into its private throw-away
folder; the HTML and the PDF are written 0600, for their owner alone, as the workspace is.
"""

from __future__ import annotations

import html
import math
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emotrace import __version__
from emotrace._html import page
from emotrace.errors import MissingDependencyError, StoreError
from emotrace.sessions import _svg, _svg_marks
from emotrace.sessions._private import open_private
from emotrace.sessions._series import bin_index, binned_mean
from emotrace.sessions.analytics import MEASURE_LABELS, SessionSummary, trend
from emotrace.sessions.types import clock

CAUTION = (
    "These figures were produced automatically by a machine-learning model from the patient's "
    "facial expressions. They are decision support for a qualified clinician, not a diagnosis. "
    "A facial expression is not the same as a felt emotion; the model can be wrong (lighting, "
    "head pose, glasses, cultural and individual ways of expressing), and stretches without a "
    "visible face are shown as missing, not estimated. Figures relative to the patient's "
    "baseline compare the session with the resting stretch chosen as baseline, and calibrated "
    "labels shift the model's output so that this resting face reads as neutral: they do not "
    "make the model more accurate, and they are only as good as the baseline (if the patient "
    "was not at rest then, that state reads as neutral). Read them together with what was said "
    "in the session and with your clinical judgement."
)
#: This report's own rules (a narrower page that prints well, the caution box, the legend);
#: the rest is the shared shell's.
_CSS = """
body{max-width:960px}table{font-size:13px}td,th{text-align:left}
.caution{background:#fff4e5;border-left:4px solid #E69F00;padding:8px 12px;font-size:14px}
.muted{font-size:12px}.legend span{display:inline-block;margin-right:12px;
font-size:12px}.legend i{display:inline-block;width:11px;height:11px;margin-right:4px;
vertical-align:middle}.num{text-align:right}section{page-break-inside:avoid}
svg{max-width:100%;height:auto}.scroll{overflow-x:auto;max-width:100%}
td{overflow-wrap:break-word}
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _num(value: float, fmt: str = "{:+.2f}") -> str:
    if value is None or math.isnan(value):
        return "–"
    text = fmt.format(value)
    # A value that rounds to zero is shown as 0.00, never -0.00.
    return text.replace("-", "", 1) if float(text) == 0 and text.startswith("-") else text


def _pct(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.0%}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], empty: str) -> str:
    if not rows:
        return f'<p class="muted">{_e(empty)}</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    # A wide table scrolls in its own box: the page keeps to its frame's width.
    return f'<div class="scroll"><table><tr>{head}</tr>{body}</table></div>'


def _legend(classes: Sequence[str]) -> str:
    items = "".join(
        f'<span><i style="background:{_svg.color(c)}"></i>{_e(c)}</span>' for c in classes
    )
    missing = (
        '<span><i style="background:#e4e4e4;border:1px dashed #999"></i>face not visible</span>'
        f'<span><i style="background:{_svg.BREAK_FILL}"></i>not recorded (paused or '
        "interrupted)</span>"
        '<span><i style="background:repeating-linear-gradient(45deg,#A63D17 0 2px,#fbe9e2 2px '
        '5px)"></i>excluded</span>'
    )
    return f'<p class="legend">{items}{missing}</p>'


def _header(s: SessionSummary) -> str:
    info = s.info
    model = info.model
    sha = f", sha256 {model.sha256[:12]}…" if model.sha256 else ""
    rows = [
        ("Patient (pseudonym)", _e(info.patient)),
        ("Session", _e(info.name)),
        ("Date", _e(time.strftime("%Y-%m-%d %H:%M", time.localtime(info.started_at)))),
        ("Duration", clock(s.duration_s)),
        ("Model", _e(f"{model.name or 'unknown'} {model.version}".strip()) + _e(sha)),
        ("Data quality", f"face visible {_pct(s.visible_ratio)} of the recorded time, "
         f"{len(s.gaps)} gap(s) without the face, not recorded (paused or interrupted) "
         f"{clock(s.not_recorded_s)}, recording {_e(info.status)}"
         + (f"; {clock(s.excluded_s)} excluded" if s.excluded else "")),
        ("Consent recorded", "yes" if info.consent else "no"),
    ]  # fmt: skip
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return (
        f'<section id="header"><h1>Session report: {_e(info.patient)}</h1>'
        f"<table>{body}</table></section>"
        f'<section id="caution"><p class="caution"><b>Please note.</b> {_e(CAUTION)}</p></section>'
    )


def _quality(s: SessionSummary) -> str:
    info, gaps = s.info, s.gaps
    missing = sum(g.duration_s for g in gaps)
    longest = max((g.duration_s for g in gaps), default=0.0)
    fps = info.frames / s.recorded_s if s.recorded_s > 0 else math.nan
    rows = [
        [str(info.frames), clock(s.recorded_s), str(info.visible_frames), _pct(s.visible_ratio),
         _num(fps, "{:.1f}"), str(len(gaps)), clock(missing), clock(longest),
         f"{clock(s.not_recorded_s)} ({len(s.breaks)})"],
    ]  # fmt: skip
    note = ""
    if info.status != "complete":
        note = (
            f'<p class="caution">The recording is <b>{_e(info.status)}</b>: data end at '
            f"{clock(s.start_s + s.duration_s)}.</p>"
        )
    header = ["frames", "recorded", "with face", "face visible", "frames/s", "gaps ≥ 1 s",
              "face missing", "longest", "not recorded (breaks)"]  # fmt: skip
    breaks = ", ".join(
        f"{clock(g.start_s)}–{clock(g.end_s)} ({clock(g.duration_s)})" for g in s.breaks
    )
    if breaks:
        note += (
            f'<p class="muted">Not recorded (paused or interrupted): {breaks}. Nothing was '
            "analysed then, so these stretches count neither as face visible nor as face "
            "missing.</p>"
        )
    explained = (
        '<p class="muted">Face visible: share of the recorded time (the session less its '
        "breaks) in which the patient's face was found.</p>"
    )
    return (
        f'<section id="quality"><h2>Data quality</h2>{_table(header, rows, "")}{explained}'
        f"{note}</section>"
    )


def _bins(s: SessionSummary) -> tuple[np.ndarray, np.ndarray]:
    """Chart bin edges (about 600 bins, at least 1 s) and each frame's bin."""
    bin_s = max(1.0, s.duration_s / 600)
    n = max(1, math.ceil(s.duration_s / bin_s))
    edges = s.start_s + bin_s * np.arange(n + 1)
    return edges, bin_index(s.series.times, s.start_s, bin_s, n)


def _charts(s: SessionSummary) -> str:
    series, classes = s.series, s.info.classes
    edges, bins = _bins(s)
    n = len(edges) - 1
    weights = series.durations
    probs = binned_mean(bins, series.probabilities, n, weights)
    markers = [m.time_s for m in s.markers]
    excluded = [(m.time_s, m.end_s or m.time_s) for m in s.excluded]
    breaks = [(g.start_s, g.end_s) for g in s.breaks]
    strips = "".join(
        f'<p class="muted">Dominant emotion per {w:g} s window</p>'
        + _svg.strip(
            [x.start_s for x in ws] + [ws[-1].end_s], [x.dominant for x in ws], f"{w:g} s", breaks
        )
        for w, ws in s.windows.items()
        if ws and w in s.config.windows_s
    )
    valence = binned_mean(bins, series.valence_smooth, n, weights)
    arousal = binned_mean(bins, series.arousal_smooth, n, weights)
    affect = _svg.lines(
        edges,
        [("valence", valence, "#0072B2"), ("arousal", arousal, "#D55E00")],
        markers,
        [(g.start_s, g.end_s) for g in s.segments],
        excluded,
        breaks,
    )
    v = s.variability
    return (
        '<section id="timeline"><h2>Emotion timeline</h2>'
        f"{_marks(s, edges)}{_svg.stacked_area(edges, probs, classes, markers, excluded, breaks)}"
        f"{_legend(classes)}{strips}"
        '<p class="muted">Dashed lines: markers (numbers as in the marker table); bars above the '
        "chart: segments, and excluded stretches hatched red (left out of every figure).</p>"
        "</section>"
        '<section id="affect"><h2>Valence and arousal</h2>'
        f"{affect}"
        '<p class="legend"><span><i style="background:#0072B2"></i>valence (pleasant +)</span>'
        '<span><i style="background:#D55E00"></i>arousal (activated +)</span>'
        '<span><i style="background:#f7d9c4"></i>sustained negative affect</span></p>'
        f"<p>Mean valence {_num(s.mean_valence)}, mean arousal {_num(s.mean_arousal)}; "
        f"variability (SD) {_num(v['valence_sd'], '{:.2f}')} / {_num(v['arousal_sd'], '{:.2f}')}, "
        f"instability (RMSSD of 1 s means) {_num(v['valence_rmssd'], '{:.2f}')} / "
        f"{_num(v['arousal_rmssd'], '{:.2f}')}; emotional diversity (entropy) "
        f"{_num(v['entropy'], '{:.2f}')}.</p></section>"
    )


def _distribution(s: SessionSummary) -> str:
    classes = s.info.classes
    rows = [
        [_e(c), _pct(s.time_share[c]), _pct(s.mean_probability[c])]
        for c in sorted(classes, key=lambda c: -np.nan_to_num(s.time_share[c]))
    ]
    table = _table(["emotion", "time share", "mean probability"], rows, "")
    bars = _svg.bars(list(classes), [s.time_share[c] for c in classes])
    return f'<section id="distribution"><h2>Distribution of emotions</h2>{bars}{table}</section>'


def _baseline(s: SessionSummary) -> str:
    """Which resting stretch the session is measured against, and the relative views."""
    rel = s.relative
    if rel is None:
        return (
            '<section id="baseline"><h2>Baseline</h2><p class="muted">No baseline: the figures '
            "are raw. Set the patient's resting stretch as baseline (review page, or emotrace "
            "sessions baseline) to see them relative to it.</p></section>"
        )
    b, st = rel.baseline, rel.baseline.stats
    where = _e(b.session_name) if b.session_name else "a session since deleted"
    replaced = time.strftime("%Y-%m-%d", time.localtime(b.replaced_at or 0))
    state = "active" if b.active else f"replaced {replaced}"
    facts = (
        f"<p>Baseline {b.id} of {_e(b.patient)}: {where}, {clock(b.start_s)}–{clock(b.end_s)}, "
        f"set {_e(time.strftime('%Y-%m-%d %H:%M', time.localtime(b.created_at)))} ({state}); "
        f"face visible {st.visible_s:.1f} s ({st.frames} frames).</p>"
    )
    if not rel.same_model:
        facts += '<p class="caution">The baseline was recorded with another model.</p>'
    rows = [
        [label, _num(rel.affect[k]["value"]), _num(getattr(st, k).mean),
         _num(getattr(st, k).sd, "{:.2f}"), _num(rel.affect[k]["delta"]),
         _num(rel.affect[k]["z"], "{:+.1f}")]
        for k, label in (("valence", "valence"), ("arousal", "arousal"),
                         ("negative_affect", "negative affect"))
    ]  # fmt: skip
    affect = _table(
        ["measure", "this session", "baseline mean", "baseline SD", "difference", "in SDs"],
        rows,
        "",
    )
    ratio = {k: "–" if math.isnan(v) else f"{v:.1f}×" for k, v in rel.spread_ratio.items()}
    affect += (
        f'<p class="muted">Variability against rest (SD of this session over the baseline\'s): '
        f"valence {ratio['valence']}, arousal {ratio['arousal']}. Peaks, sustained negative "
        "affect and transitions above are raw.</p>"
    )
    classes = s.info.classes
    share = rel.calibrated_time_share
    dist_rows = [
        [_e(c), _pct(s.time_share[c]), _pct(share[c]) if share else "–",
         _pct(st.mean_probabilities[k]), _num(rel.mean_probability_delta[c])]
        for k, c in enumerate(classes)
    ]  # fmt: skip
    dist = _table(
        ["emotion", "time share (raw)", "time share (calibrated)", "baseline mean probability",
         "mean probability − baseline"], dist_rows, "")  # fmt: skip
    marks = [
        [clock(m["time_s"]), _e(m["label"]), _num(m["valence_z"], "{:+.1f}"),
         _num(m["arousal_z"], "{:+.1f}"), _num(m["negative_delta"])]
        for m in rel.markers
    ]  # fmt: skip
    if marks:
        dist += _table(
            ["time", "marker", "valence (SDs)", "arousal (SDs)", "negative affect − baseline"],
            marks,
            "",
        )
    views = ""
    if rel.calibrated is not None and s.has_face:
        edges, bins = _bins(s)
        probs = binned_mean(bins, rel.calibrated, len(edges) - 1, s.series.durations)
        marker_times = [m.time_s for m in s.markers]
        breaks = [(g.start_s, g.end_s) for g in s.breaks]
        strips = "".join(
            f'<p class="muted">Dominant calibrated emotion per {w:g} s window</p>'
            + _svg.strip([x.start_s for x in ws] + [ws[-1].end_s], [x.dominant for x in ws],
                         f"{w:g} s calibrated")
            for w, ws in (rel.calibrated_windows or {}).items() if ws
        )  # fmt: skip
        views = (
            "<h3>Emotion timeline, calibrated to the baseline</h3>"
            f"{_svg.stacked_area(edges, probs, classes, marker_times, breaks=breaks)}"
            f"{_legend(classes)}{strips}"
        )
    elif rel.reference is None:
        views = '<p class="muted">No neutral reference for this model: no calibrated labels.</p>'
    return (
        '<section id="baseline"><h2>Relative to the patient\'s baseline</h2>'
        f"{facts}{affect}{dist}{views}"
        '<p class="muted">Difference: this session minus the baseline mean; in SDs: divided by '
        "the baseline's spread (not shown when the face hardly moved at rest). Calibrated labels: "
        "each frame's probabilities shifted by log(model's mean on neutral faces) − log(baseline "
        "mean), so the patient's resting face reads as the model's neutral face.</p></section>"
    )


def _attention(s: SessionSummary) -> str:
    """Head orientation: facing the camera, turned too far to trust, looked-away episodes."""
    c = s.config
    if math.isnan(s.turned_ratio):
        return (
            '<section id="attention"><h2>Attention (head orientation)</h2><p class="muted">No '
            "head orientation was recorded for this session (the Haar detector finds no "
            "landmarks, and older sessions did not store it).</p></section>"
        )
    rows = [[clock(g.start_s), clock(g.end_s), clock(g.duration_s)] for g in s.looked_away]
    left_out = (
        " They are left out of every figure of this report (exclude_turned)."
        if c.exclude_turned
        else " Their probabilities are included in the figures above."
    )
    return (
        '<section id="attention"><h2>Attention (head orientation)</h2>'
        f"<p>Facing the camera {_pct(s.facing_ratio)} of the time the face was visible "
        f"(|yaw| &lt; {c.facing_yaw_deg:g}°, |pitch| &lt; {c.facing_pitch_deg:g}°); head turned "
        f"beyond that {_pct(s.turned_ratio)} of the face-visible time: the frames whose "
        f"expression is least to be trusted.{left_out}</p>"
        f'<p class="muted">Looked away (turned for at least {c.looked_away_min_s:g} s): '
        f"{len(s.looked_away)} time(s).</p>"
        + _table(["from", "to", "duration"], rows, "The patient never looked away that long.")
        + '<p class="muted">Head orientation is approximate: roll is the geometry of the eye '
        "line, yaw and pitch are estimated from five facial landmarks fitted to a generic face "
        "(expect ±10° on one face).</p></section>"
    )


def _segments(s: SessionSummary) -> str:
    c = s.config
    seg_rows = [
        [clock(g.start_s), clock(g.end_s), clock(g.end_s - g.start_s), _pct(g.negative_affect),
         _num(g.valence), _e(g.dominant)]
        for g in s.segments
    ]  # fmt: skip
    peak_rows = [
        [clock(p.time_s), _e(p.kind), _num(p.value, "{:.2f}"), _e(p.dominant)] for p in s.peaks
    ]
    return (
        '<section id="segments"><h2>Sustained negative affect and peaks</h2>'
        f'<p class="muted">Segments: negative affect ≥ {c.negative_threshold:.0%} for at least '
        f"{c.negative_min_s:g} s (smoothed over {c.smooth_s:g} s).</p>"
        + _table(
            ["from", "to", "duration", "negative affect", "valence", "dominant"],
            seg_rows,
            "No segment of sustained negative affect.",
        )
        + _table(["time", "peak of", "value", "dominant"], peak_rows, "No peaks above threshold.")
        + "</section>"
    )


def _markers(s: SessionSummary) -> str:
    rows = [
        [str(i), clock(m.time_s), _e(m.label), _pct(m.visible),
         f"{_num(m.valence)} ({_num(m.valence_delta)})",
         f"{_num(m.arousal)} ({_num(m.arousal_delta)})",
         f"{_pct(m.negative_affect)} ({_num(m.negative_delta)})", _e(m.dominant or "–")]
        for i, m in enumerate(s.markers, start=1)
    ]  # fmt: skip
    header = ["#", "time", "marker", "face visible", "valence (Δ)", "arousal (Δ)",
              "negative affect (Δ)", "dominant"]  # fmt: skip
    return (
        f'<section id="markers"><h2>Markers</h2><p class="muted">Affect in the '
        f"{s.config.marker_window_s:g} s after each marker; Δ is the difference from the "
        "session average.</p>"
        f"{_table(header, rows, 'No markers in this session.')}</section>"
    )


def _marks(s: SessionSummary, edges: np.ndarray) -> str:
    """The labelled track of markers (numbered as in their table), segments and exclusions."""
    marks = [_svg_marks.Mark(m.time_s, None, f"{i} {m.label}")
             for i, m in enumerate(s.markers, start=1)]  # fmt: skip
    marks += [_svg_marks.Mark(g.start_s, g.end_s, g.label) for g in s.segment_stats]
    marks += [_svg_marks.Mark(m.time_s, m.end_s, f"excluded: {m.label}", excluded=True)
              for m in s.excluded]  # fmt: skip
    return _svg_marks.track(float(edges[0]), float(edges[-1]), marks) if marks else ""


def _parts(s: SessionSummary) -> str:
    """Figures per segment, and the excluded stretches with their reasons."""
    rows = [
        [_e(g.label), f"{clock(g.start_s)}–{clock(g.end_s)}", clock(g.duration_s),
         _pct(g.visible), _e(g.dominant or "–"),
         f"{_num(g.valence)} ({_num(g.delta['valence'])})",
         f"{_num(g.arousal)} ({_num(g.delta['arousal'])})",
         f"{_pct(g.negative_affect)} ({_num(g.delta['negative_affect'])})",
         ", ".join(f"{_e(c)} {_pct(v)}" for c, v in sorted(g.time_share.items(),
                   key=lambda kv: -np.nan_to_num(kv[1]))[:3] if v > 0) or "–",
         clock(g.excluded_s) if g.excluded_s else ""]
        for g in s.segment_stats
    ]  # fmt: skip
    header = ["segment", "time", "duration", "face visible", "dominant", "valence (Δ)",
              "arousal (Δ)", "negative affect (Δ)", "top emotions", "excluded"]  # fmt: skip
    if any(g.relative for g in s.segment_stats):
        header.append("valence / negative affect vs baseline (SDs)")
        for row, g in zip(rows, s.segment_stats, strict=True):
            r = g.relative or {}
            row.append(" / ".join(
                f"{_num(r[k]['delta'])} ({_num(r[k]['z'], '{:+.1f}')})" if k in r else "–"
                for k in ("valence", "negative_affect")))  # fmt: skip
    excluded = [
        [f"{clock(m.time_s)}–{clock(m.end_s or m.time_s)}",
         clock((m.end_s or m.time_s) - m.time_s), _e(m.label)]
        for m in s.excluded
    ]  # fmt: skip
    return (
        '<section id="parts"><h2>Segments</h2><p class="muted">Figures of the frames inside each '
        "segment; Δ is the difference from the session average.</p>"
        f"{_table(header, rows, 'No segments in this session.')}"
        '<h3 id="excluded-stretches">Excluded stretches</h3><p class="muted">Left out of every '
        "figure in this report, exactly as if they had not been recorded"
        + (f" ({clock(s.excluded_s)} in all)" if s.excluded else "")
        + ".</p>"
        f"{_table(['time', 'duration', 'reason'], excluded, 'Nothing was excluded.')}</section>"
    )


def _transitions(s: SessionSummary) -> str:
    counts, classes = s.transitions, s.info.classes
    used = [i for i in range(len(classes)) if counts[i].sum() or counts[:, i].sum()]
    rows = []
    for i in used:
        total = counts[i].sum()
        cells = [f"<b>{_e(classes[i])}</b>"]
        for j in used:
            share = counts[i, j] / total if total else 0.0
            ink = "#fff" if share > 0.5 else "#222"  # readable on the darker cells
            cells.append(
                f'<span style="background:rgba(0,114,178,{share:.2f});color:{ink};padding:0 3px">'
                f"{share:.0%}</span>"
            )
        rows.append(cells)
    table = _table(["from \\ to", *(classes[j] for j in used)], rows, "No transitions to show.")
    return (
        '<section id="transitions"><h2>Transitions between dominant emotions</h2>'
        f'<p class="muted">Between consecutive {s.config.transition_window_s:g} s windows; rows '
        f"sum to 100 %.</p>{table}</section>"
    )


def _trend(sessions: Sequence[SessionSummary]) -> str:
    t = trend(list(sessions))
    names = [
        f"{time.strftime('%Y-%m-%d', time.localtime(i.started_at))} {i.name}" for i in t.sessions
    ]
    keys = [k for k in MEASURE_LABELS if k in t.values]
    keys += [k for k in t.values if k not in keys and np.nansum(t.values[k]) > 0]
    charts = "".join(
        _svg.small_trend(
            MEASURE_LABELS.get(k, k.replace("_pct", " share (%)")),
            t.values[k],
            names,
            *_scale(k, t.values[k]),
        )
        for k in keys
    )
    key = "; ".join(f"{n} = {_e(name)}" for n, name in enumerate(names, start=1))
    rows = [
        [_e(MEASURE_LABELS.get(k, k.replace("_pct", " share (%)"))),
         *(_num(v, "{:.2f}") for v in t.values[k]), _num(t.slopes[k], "{:+.2f}")]
        for k in keys
    ]  # fmt: skip
    table = _table(["measure", *names, "trend per session"], rows, "")
    return (
        f'<section id="trend"><h2>Session-to-session trend</h2>{charts}'
        f'<p class="muted">Sessions: {key}. Each chart keeps its measure\'s own fixed scale '
        "(shares 0–100 %, valence and arousal −1 to 1), so sessions compare at a glance.</p>"
        f"{table}</section>"
    )


def _scale(key: str, values: Sequence[float]) -> tuple[tuple[float, float], str]:
    """The fixed axis of a compared measure and its tick format: the measure's whole range,
    never just the span of the values shown."""
    if key.endswith("_pct"):
        return (0.0, 100.0), "{:.0f}%"
    if key in ("mean_valence", "mean_arousal", "negative_vs_baseline"):
        return (-1.0, 1.0), "{:.1f}"
    if key == "valence_sd":
        return (0.0, 1.0), "{:.1f}"
    finite = [abs(v) for v in values if not math.isnan(v)]
    if key.endswith("_vs_baseline_sd"):  # in SDs of the baseline: ±3 unless a value is beyond
        top = max(3.0, math.ceil(max(finite, default=0.0)))
        return (-top, top), "{:+.0f}"
    # Durations and anything else: from 0 to a round number above the largest value.
    top = max(finite, default=1.0) or 1.0
    step = 10 ** math.floor(math.log10(top))
    return (0.0, math.ceil(top / step) * step), "{:g}"


def _method(s: SessionSummary) -> str:
    c = s.config
    return (
        '<section id="method"><h2>How these figures are computed</h2><p class="muted">'
        "Valence and arousal are the probability-weighted positions of the emotion classes on "
        "Russell's circumplex of affect (Russell, J. A. (1980), A circumplex model of affect, "
        "Journal of Personality and Social Psychology 39(6), 1161-1178, doi:10.1037/h0077714). "
        "Negative affect is the probability of an emotion with negative valence. "
        f"Smoothing {c.smooth_s:g} s; windows {', '.join(f'{w:g} s' for w in c.windows_s)}; a "
        f"window needs the face for {c.min_window_visible:.0%} of its time. Only numbers were "
        f"stored (no images). emotrace {_e(__version__)}.</p></section>"
    )


def render_report(
    summary: SessionSummary, compare: Sequence[SessionSummary] = (), *, notes: bool = False
) -> str:
    """The report as one HTML string (``compare``: other sessions of the same patient).

    The session's notes are the clinician's own and stay out of a report unless ``notes``."""
    s = summary
    parts = [_header(s), _quality(s)]
    if s.has_face:
        parts += [_charts(s), _distribution(s), _attention(s), _baseline(s), _segments(s)]
        parts.append(_markers(s))
        parts.append(_transitions(s))
    else:
        parts.append(
            '<section id="no-face"><h2>No face detected</h2><p class="caution">The patient\'s '
            f"face was not detected in any of the {s.info.frames} recorded frames, so there are "
            "no emotion figures to show. Check the camera framing and lighting.</p></section>"
        )
        parts.append(_markers(s))
    if s.segment_stats or s.excluded:
        parts.append(_parts(s))
    if compare:
        parts.append(_trend([s, *compare]))
    if notes and s.info.notes:
        parts.append(f'<section id="notes"><h2>Notes</h2><p>{_e(s.info.notes)}</p></section>')
    parts.append(_method(s))
    return page(f"emotrace session report {s.info.patient}", "".join(parts), _CSS)


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable, or ``None``."""
    configured = os.environ.get("EMOTRACE_CHROMIUM")
    if configured:
        return configured
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def print_pdf(html_path: Path, pdf_path: Path, timeout_s: float = 120.0) -> Path:
    """Print an HTML file to PDF with headless Chromium (offline, throw-away profile)."""
    chromium = find_chromium()
    if chromium is None:
        raise MissingDependencyError(
            "a PDF needs Chromium (Debian: apt-get install chromium; or set EMOTRACE_CHROMIUM)"
        )
    if shutil.which(chromium) is None:
        raise MissingDependencyError(f"EMOTRACE_CHROMIUM={chromium}: no such executable")
    with tempfile.TemporaryDirectory(prefix="emotrace-chromium-") as profile:
        # Printed inside the 0700 profile folder, then copied into a 0600 file: Chromium's own
        # file would be readable by every user (0644 under the usual umask).
        printed = Path(profile) / "report.pdf"
        command = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--no-pdf-header-footer",
            f"--print-to-pdf={printed}", html_path.resolve().as_uri(),
        ]  # fmt: skip
        try:
            subprocess.run(command, capture_output=True, timeout=timeout_s, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise StoreError(f"printing the PDF with {chromium} failed: {exc}") from None
        if not printed.is_file() or printed.stat().st_size == 0:
            raise StoreError(f"printing the PDF with {chromium} failed (no file written)")
        with printed.open("rb") as source, open_private(pdf_path, "wb") as out:
            shutil.copyfileobj(source, out)
    return pdf_path


def write_report(
    summary: SessionSummary,
    path: Path,
    compare: Sequence[SessionSummary] = (),
    pdf: Path | None = None,
    *,
    notes: bool = False,
) -> list[Path]:
    """Write the HTML report (and a PDF of it); the files written. ``notes``: include the
    session's notes (left out by default)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open_private(path, "w", encoding="utf-8") as handle:
        handle.write(render_report(summary, compare, notes=notes))
    if pdf is None:
        return [path]
    try:
        return [path, print_pdf(path, pdf)]
    except (MissingDependencyError, StoreError) as exc:
        # Same class, so the exit code stays; the user learns the HTML is there all the same.
        raise type(exc)(f"{exc}; the HTML report was written to {path}") from None
