"""The clinician's session report: one self-contained HTML file, optionally printed to PDF.

Charts are inline SVG; there are no scripts, fonts, images or links to fetch, and a
Content-Security-Policy (``default-src 'none'``, from the reports' shared shell,
:mod:`emotrace._html`) makes the browser refuse any request should one slip in, so the report
opens offline and never contacts a server. A session without any face of
the patient says so instead of drawing empty charts.

Language: English or Spanish (``lang``); every text goes through a
:class:`~emotrace.i18n.Translator` passed down to each section and chart (``tr``), numbers and
dates too (``0,42`` and ``07/12/2026`` in Spanish), and the page says ``<html lang="es">``.

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
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emotrace import __version__
from emotrace._html import page
from emotrace.errors import MissingDependencyError, StoreError
from emotrace.i18n import N_, Translator, translator
from emotrace.sessions import _svg, _svg_marks
from emotrace.sessions._private import open_private
from emotrace.sessions._series import bin_index, binned_mean
from emotrace.sessions.analytics import MEASURE_LABELS, SessionSummary, trend
from emotrace.sessions.types import clock

CAUTION = N_(
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
#: A session's recording status and a peak's kind, as the report names them.
_STATUS = {"recording": N_("recording"), "complete": N_("complete"),
           "interrupted": N_("interrupted")}  # fmt: skip
_PEAKS = {"negative": N_("negative"), "arousal": N_("arousal")}
#: The method's reference, in its own language: shown as a <cite>, as a command is shown as a
#: <code>, both as written in every language.
_RUSSELL_REFERENCE = (
    "Russell, J. A. (1980), A circumplex model of affect, Journal of Personality and Social "
    "Psychology 39(6), 1161-1178, doi:10.1037/h0077714"
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


def _h(template: str, **params: str) -> str:
    """Translated text as HTML: ``template`` (from ``tr``) escaped, its ``{name}`` placeholders
    filled with ``params``, which are HTML already (user text in them escaped by the caller)."""
    text = html.escape(template, quote=False)
    return text.format(**params) if params else text


def _num(tr: Translator, value: float, fmt: str = "{:+.2f}") -> str:
    if value is None or math.isnan(value):
        return "–"
    text = fmt.format(value)
    # A value that rounds to zero is shown as 0.00, never -0.00.
    text = text.replace("-", "", 1) if float(text) == 0 and text.startswith("-") else text
    return tr.decimal(text)


def _pct(tr: Translator, value: float) -> str:
    return "–" if math.isnan(value) else tr.percent(value)


def _seconds(tr: Translator, value: float) -> str:
    """``2.5 s`` (``2,5 s``): a duration of the settings, in seconds."""
    return tr.decimal(f"{value:g} s")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], empty: str) -> str:
    if not rows:
        return f'<p class="muted">{_e(empty)}</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    # A wide table scrolls in its own box: the page keeps to its frame's width.
    return f'<div class="scroll"><table><tr>{head}</tr>{body}</table></div>'


def _legend(classes: Sequence[str], tr: Translator) -> str:
    items = "".join(
        f'<span><i style="background:{_svg.color(c)}"></i>{_e(tr(c))}</span>' for c in classes
    )
    missing = (
        '<span><i style="background:#e4e4e4;border:1px dashed #999"></i>'
        f"{_h(tr('face not visible'))}</span>"
        f'<span><i style="background:{_svg.BREAK_FILL}"></i>'
        f"{_h(tr('not recorded (paused or interrupted)'))}</span>"
        '<span><i style="background:repeating-linear-gradient(45deg,#A63D17 0 2px,#fbe9e2 2px '
        f'5px)"></i>{_h(tr("excluded"))}</span>'
    )
    return f'<p class="legend">{items}{missing}</p>'


def _header(s: SessionSummary, tr: Translator) -> str:
    info = s.info
    model = info.model
    sha = f", sha256 {model.sha256[:12]}…" if model.sha256 else ""
    status = _e(tr(_STATUS.get(info.status, info.status)))
    quality = _h(
        tr("face visible {visible} of the recorded time, {gaps} gap(s) without the face, not "
           "recorded (paused or interrupted) {breaks}, recording {status}"),
        visible=_pct(tr, s.visible_ratio), gaps=str(len(s.gaps)),
        breaks=clock(s.not_recorded_s), status=status,
    )  # fmt: skip
    if s.excluded:
        quality += _h(tr("; {time} excluded"), time=clock(s.excluded_s))
    rows = [
        (tr("Patient (pseudonym)"), _e(info.patient)),
        (tr("Session"), _e(info.name)),
        (tr("Date"), _e(tr.date_time(info.started_at))),
        (tr("Duration"), clock(s.duration_s)),
        (tr("Model"), _e(f"{model.name or tr('unknown')} {model.version}".strip()) + _e(sha)),
        (tr("Data quality"), quality),
        (tr("Consent recorded"), _h(tr("yes") if info.consent else tr("no"))),
    ]
    body = "".join(f"<tr><th>{_h(k)}</th><td>{v}</td></tr>" for k, v in rows)
    title = _h(tr("Session report: {patient}"), patient=_e(info.patient))
    return (
        f'<section id="header"><h1>{title}</h1>'
        f"<table>{body}</table></section>"
        f'<section id="caution"><p class="caution"><b>{_h(tr("Please note."))}</b> '
        f"{_e(tr(CAUTION))}</p></section>"
    )


def _quality(s: SessionSummary, tr: Translator) -> str:
    info, gaps = s.info, s.gaps
    missing = sum(g.duration_s for g in gaps)
    longest = max((g.duration_s for g in gaps), default=0.0)
    fps = info.frames / s.recorded_s if s.recorded_s > 0 else math.nan
    rows = [
        [str(info.frames), clock(s.recorded_s), str(info.visible_frames),
         _pct(tr, s.visible_ratio), _num(tr, fps, "{:.1f}"), str(len(gaps)), clock(missing),
         clock(longest), f"{clock(s.not_recorded_s)} ({len(s.breaks)})"],
    ]  # fmt: skip
    note = ""
    if info.status != "complete":
        status = _e(tr(_STATUS.get(info.status, info.status)))
        note = '<p class="caution">' + _h(
            tr("The recording is {status}: data end at {time}."),
            status=f"<b>{status}</b>", time=clock(s.start_s + s.duration_s),
        ) + "</p>"  # fmt: skip
    header = [tr("frames"), tr("recorded"), tr("with face"), tr("face visible"), tr("frames/s"),
              tr("gaps ≥ 1 s"), tr("face missing"), tr("longest"),
              tr("not recorded (breaks)")]  # fmt: skip
    breaks = ", ".join(
        f"{clock(g.start_s)}–{clock(g.end_s)} ({clock(g.duration_s)})" for g in s.breaks
    )
    if breaks:
        note += '<p class="muted">' + _h(
            tr("Not recorded (paused or interrupted): {breaks}. Nothing was analysed then, so "
               "these stretches count neither as face visible nor as face missing."),
            breaks=breaks,
        ) + "</p>"  # fmt: skip
    explained = (
        '<p class="muted">'
        + _h(tr("Face visible: share of the recorded time (the session less its breaks) in "
                "which the patient's face was found."))
        + "</p>"
    )  # fmt: skip
    return (
        f'<section id="quality"><h2>{_h(tr("Data quality"))}</h2>{_table(header, rows, "")}'
        f"{explained}{note}</section>"
    )


def _bins(s: SessionSummary) -> tuple[np.ndarray, np.ndarray]:
    """Chart bin edges (about 600 bins, at least 1 s) and each frame's bin."""
    bin_s = max(1.0, s.duration_s / 600)
    n = max(1, math.ceil(s.duration_s / bin_s))
    edges = s.start_s + bin_s * np.arange(n + 1)
    return edges, bin_index(s.series.times, s.start_s, bin_s, n)


def _charts(s: SessionSummary, tr: Translator) -> str:
    series, classes = s.series, s.info.classes
    edges, bins = _bins(s)
    n = len(edges) - 1
    weights = series.durations
    probs = binned_mean(bins, series.probabilities, n, weights)
    markers = [m.time_s for m in s.markers]
    excluded = [(m.time_s, m.end_s or m.time_s) for m in s.excluded]
    breaks = [(g.start_s, g.end_s) for g in s.breaks]
    strips = "".join(
        f'<p class="muted">{_h(tr("Dominant emotion per {window} window"), window=_seconds(tr, w))}'
        "</p>"
        + _svg.strip(
            [x.start_s for x in ws] + [ws[-1].end_s],
            [x.dominant for x in ws],
            _seconds(tr, w),
            breaks,
            tr=tr,
        )
        for w, ws in s.windows.items()
        if ws and w in s.config.windows_s
    )
    valence = binned_mean(bins, series.valence_smooth, n, weights)
    arousal = binned_mean(bins, series.arousal_smooth, n, weights)
    affect = _svg.lines(
        edges,
        [(tr("valence"), valence, "#0072B2"), (tr("arousal"), arousal, "#D55E00")],
        markers,
        [(g.start_s, g.end_s) for g in s.segments],
        excluded,
        breaks,
        tr=tr,
    )
    v = s.variability
    figures = _h(
        tr("Mean valence {valence}, mean arousal {arousal}; variability (SD) {valence_sd} / "
           "{arousal_sd}, instability (RMSSD of 1 s means) {valence_rmssd} / {arousal_rmssd}; "
           "emotional diversity (entropy) {entropy}."),
        valence=_num(tr, s.mean_valence), arousal=_num(tr, s.mean_arousal),
        valence_sd=_num(tr, v["valence_sd"], "{:.2f}"),
        arousal_sd=_num(tr, v["arousal_sd"], "{:.2f}"),
        valence_rmssd=_num(tr, v["valence_rmssd"], "{:.2f}"),
        arousal_rmssd=_num(tr, v["arousal_rmssd"], "{:.2f}"),
        entropy=_num(tr, v["entropy"], "{:.2f}"),
    )  # fmt: skip
    area = _svg.stacked_area(edges, probs, classes, markers, excluded, breaks, tr=tr)
    return (
        f'<section id="timeline"><h2>{_h(tr("Emotion timeline"))}</h2>'
        f"{_marks(s, edges, tr)}{area}{_legend(classes, tr)}{strips}"
        '<p class="muted">'
        + _h(tr("Dashed lines: markers (numbers as in the marker table); bars above the chart: "
                "segments, and excluded stretches hatched red (left out of every figure)."))
        + "</p></section>"
        f'<section id="affect"><h2>{_h(tr("Valence and arousal"))}</h2>'
        f"{affect}"
        '<p class="legend"><span><i style="background:#0072B2"></i>'
        f"{_h(tr('valence (pleasant +)'))}</span>"
        f'<span><i style="background:#D55E00"></i>{_h(tr("arousal (activated +)"))}</span>'
        f'<span><i style="background:#f7d9c4"></i>{_h(tr("sustained negative affect"))}'
        f"</span></p><p>{figures}</p></section>"
    )  # fmt: skip


def _distribution(s: SessionSummary, tr: Translator) -> str:
    classes = s.info.classes
    rows = [
        [_e(tr(c)), _pct(tr, s.time_share[c]), _pct(tr, s.mean_probability[c])]
        for c in sorted(classes, key=lambda c: -np.nan_to_num(s.time_share[c]))
    ]
    table = _table([tr("emotion"), tr("time share"), tr("mean probability")], rows, "")
    bars = _svg.bars(list(classes), [s.time_share[c] for c in classes], tr=tr)
    return (
        f'<section id="distribution"><h2>{_h(tr("Distribution of emotions"))}</h2>{bars}{table}'
        "</section>"
    )


def _baseline(s: SessionSummary, tr: Translator) -> str:
    """Which resting stretch the session is measured against, and the relative views."""
    rel = s.relative
    if rel is None:
        return (
            f'<section id="baseline"><h2>{_h(tr("Baseline"))}</h2><p class="muted">'
            + _h(tr("No baseline: the figures are raw. Set the patient's resting stretch as "
                    "baseline (review page, or {command}) to see them relative to it."),
                 command="<code>emotrace sessions baseline</code>")
            + "</p></section>"
        )  # fmt: skip
    b, st = rel.baseline, rel.baseline.stats
    where = _e(b.session_name) if b.session_name else _h(tr("a session since deleted"))
    state = tr("active") if b.active else tr("replaced {date}", date=tr.date(b.replaced_at or 0))
    facts = "<p>" + _h(
        tr("Baseline {id} of {patient}: {session}, {start}–{end}, set {when} ({state}); face "
           "visible {seconds} s ({frames} frames)."),
        id=str(b.id), patient=_e(b.patient), session=where, start=clock(b.start_s),
        end=clock(b.end_s), when=_e(tr.date_time(b.created_at)), state=_h(state),
        seconds=tr.decimal(f"{st.visible_s:.1f}"), frames=str(st.frames),
    ) + "</p>"  # fmt: skip
    if not rel.same_model:
        facts += f'<p class="caution">{_h(tr("The baseline was recorded with another model."))}</p>'
    rows = [
        [_e(label), _num(tr, rel.affect[k]["value"]), _num(tr, getattr(st, k).mean),
         _num(tr, getattr(st, k).sd, "{:.2f}"), _num(tr, rel.affect[k]["delta"]),
         _num(tr, rel.affect[k]["z"], "{:+.1f}")]
        for k, label in (("valence", tr("valence")), ("arousal", tr("arousal")),
                         ("negative_affect", tr("negative affect")))
    ]  # fmt: skip
    affect = _table(
        [tr("measure"), tr("this session"), tr("baseline mean"), tr("baseline SD"),
         tr("difference"), tr("in SDs")],
        rows,
        "",
    )  # fmt: skip
    ratio = {
        k: "–" if math.isnan(v) else tr.decimal(f"{v:.1f}") + "×"
        for k, v in rel.spread_ratio.items()
    }
    affect += '<p class="muted">' + _h(
        tr("Variability against rest (SD of this session over the baseline's): valence "
           "{valence}, arousal {arousal}. Peaks, sustained negative affect and transitions "
           "above are raw."),
        valence=ratio["valence"], arousal=ratio["arousal"],
    ) + "</p>"  # fmt: skip
    classes = s.info.classes
    share = rel.calibrated_time_share
    dist_rows = [
        [_e(tr(c)), _pct(tr, s.time_share[c]), _pct(tr, share[c]) if share else "–",
         _pct(tr, st.mean_probabilities[k]), _num(tr, rel.mean_probability_delta[c])]
        for k, c in enumerate(classes)
    ]  # fmt: skip
    dist = _table(
        [tr("emotion"), tr("time share (raw)"), tr("time share (calibrated)"),
         tr("baseline mean probability"), tr("mean probability − baseline")],
        dist_rows,
        "",
    )  # fmt: skip
    marks = [
        [clock(m["time_s"]), _e(m["label"]), _num(tr, m["valence_z"], "{:+.1f}"),
         _num(tr, m["arousal_z"], "{:+.1f}"), _num(tr, m["negative_delta"])]
        for m in rel.markers
    ]  # fmt: skip
    if marks:
        dist += _table(
            [tr("time"), tr("marker"), tr("valence (SDs)"), tr("arousal (SDs)"),
             tr("negative affect − baseline")],
            marks,
            "",
        )  # fmt: skip
    views = ""
    if rel.calibrated is not None and s.has_face:
        edges, bins = _bins(s)
        probs = binned_mean(bins, rel.calibrated, len(edges) - 1, s.series.durations)
        marker_times = [m.time_s for m in s.markers]
        breaks = [(g.start_s, g.end_s) for g in s.breaks]
        strips = "".join(
            '<p class="muted">'
            + _h(tr("Dominant calibrated emotion per {window} window"), window=_seconds(tr, w))
            + "</p>"
            + _svg.strip([x.start_s for x in ws] + [ws[-1].end_s], [x.dominant for x in ws],
                         tr("{window} calibrated", window=_seconds(tr, w)), tr=tr)
            for w, ws in (rel.calibrated_windows or {}).items() if ws
        )  # fmt: skip
        area = _svg.stacked_area(edges, probs, classes, marker_times, breaks=breaks, tr=tr)
        views = (
            f"<h3>{_h(tr('Emotion timeline, calibrated to the baseline'))}</h3>"
            f"{area}{_legend(classes, tr)}{strips}"
        )
    elif rel.reference is None:
        views = (
            '<p class="muted">'
            f"{_h(tr('No neutral reference for this model: no calibrated labels.'))}</p>"
        )
    heading = _h(tr("Relative to the patient's baseline"))
    explained = _h(
        tr("Difference: this session minus the baseline mean; in SDs: divided by the baseline's "
           "spread (not shown when the face hardly moved at rest). Calibrated labels: each "
           "frame's probabilities shifted by log(model's mean on neutral faces) − log(baseline "
           "mean), so the patient's resting face reads as the model's neutral face.")
    )  # fmt: skip
    return (
        f'<section id="baseline"><h2>{heading}</h2>{facts}{affect}{dist}{views}'
        f'<p class="muted">{explained}</p></section>'
    )


def _attention(s: SessionSummary, tr: Translator) -> str:
    """Head orientation: facing the camera, turned too far to trust, looked-away episodes."""
    c = s.config
    heading = _h(tr("Attention (head orientation)"))
    if math.isnan(s.turned_ratio):
        return (
            f'<section id="attention"><h2>{heading}</h2><p class="muted">'
            + _h(tr("No head orientation was recorded for this session (the Haar detector "
                    "finds no landmarks, and older sessions did not store it)."))
            + "</p></section>"
        )  # fmt: skip
    rows = [[clock(g.start_s), clock(g.end_s), clock(g.duration_s)] for g in s.looked_away]
    left_out = (
        tr(
            "They are left out of every figure of this report ({setting}).",
            setting="exclude_turned",
        )
        if c.exclude_turned
        else tr("Their probabilities are included in the figures above.")
    )
    facing = _h(
        tr("Facing the camera {facing} of the time the face was visible (|yaw| < {yaw}°, "
           "|pitch| < {pitch}°); head turned beyond that {turned} of the face-visible time: "
           "the frames whose expression is least to be trusted."),
        facing=_pct(tr, s.facing_ratio), yaw=tr.decimal(f"{c.facing_yaw_deg:g}"),
        pitch=tr.decimal(f"{c.facing_pitch_deg:g}"), turned=_pct(tr, s.turned_ratio),
    )  # fmt: skip
    away = _h(
        tr("Looked away (turned for at least {seconds} s): {count} time(s)."),
        seconds=tr.decimal(f"{c.looked_away_min_s:g}"), count=str(len(s.looked_away)),
    )  # fmt: skip
    return (
        f'<section id="attention"><h2>{heading}</h2>'
        f"<p>{facing} {_h(left_out)}</p>"
        f'<p class="muted">{away}</p>'
        + _table([tr("from"), tr("to"), tr("duration")], rows,
                 tr("The patient never looked away that long."))
        + '<p class="muted">'
        + _h(tr("Head orientation is approximate: roll is the geometry of the eye line, yaw and "
                "pitch are estimated from five facial landmarks fitted to a generic face (expect "
                "±10° on one face)."))
        + "</p></section>"
    )  # fmt: skip


def _segments(s: SessionSummary, tr: Translator) -> str:
    c = s.config
    seg_rows = [
        [clock(g.start_s), clock(g.end_s), clock(g.end_s - g.start_s),
         _pct(tr, g.negative_affect), _num(tr, g.valence), _e(tr(g.dominant))]
        for g in s.segments
    ]  # fmt: skip
    peak_rows = [
        [clock(p.time_s), _e(tr(_PEAKS.get(p.kind, p.kind))), _num(tr, p.value, "{:.2f}"),
         _e(tr(p.dominant))]
        for p in s.peaks
    ]  # fmt: skip
    rule = _h(
        tr("Segments: negative affect ≥ {threshold} for at least {seconds} s (smoothed over "
           "{smooth} s)."),
        threshold=_pct(tr, c.negative_threshold), seconds=tr.decimal(f"{c.negative_min_s:g}"),
        smooth=tr.decimal(f"{c.smooth_s:g}"),
    )  # fmt: skip
    return (
        f'<section id="segments"><h2>{_h(tr("Sustained negative affect and peaks"))}</h2>'
        f'<p class="muted">{rule}</p>'
        + _table(
            [tr("from"), tr("to"), tr("duration"), tr("negative affect"), tr("valence"),
             tr("dominant")],
            seg_rows,
            tr("No segment of sustained negative affect."),
        )
        + _table([tr("time"), tr("peak of"), tr("value"), tr("dominant")], peak_rows,
                 tr("No peaks above threshold."))
        + "</section>"
    )  # fmt: skip


def _markers(s: SessionSummary, tr: Translator) -> str:
    rows = [
        [str(i), clock(m.time_s), _e(m.label), _pct(tr, m.visible),
         f"{_num(tr, m.valence)} ({_num(tr, m.valence_delta)})",
         f"{_num(tr, m.arousal)} ({_num(tr, m.arousal_delta)})",
         f"{_pct(tr, m.negative_affect)} ({_num(tr, m.negative_delta)})",
         _e(tr(m.dominant)) if m.dominant else "–"]
        for i, m in enumerate(s.markers, start=1)
    ]  # fmt: skip
    header = ["#", tr("time"), tr("marker"), tr("face visible"), tr("valence (Δ)"),
              tr("arousal (Δ)"), tr("negative affect (Δ)"), tr("dominant")]  # fmt: skip
    window = _h(
        tr("Affect in the {seconds} s after each marker; Δ is the difference from the session "
           "average."),
        seconds=tr.decimal(f"{s.config.marker_window_s:g}"),
    )  # fmt: skip
    return (
        f'<section id="markers"><h2>{_h(tr("Markers"))}</h2><p class="muted">{window}</p>'
        f"{_table(header, rows, tr('No markers in this session.'))}</section>"
    )


def _marks(s: SessionSummary, edges: np.ndarray, tr: Translator) -> str:
    """The labelled track of markers (numbered as in their table), segments and exclusions."""
    marks = [_svg_marks.Mark(m.time_s, None, f"{i} {m.label}")
             for i, m in enumerate(s.markers, start=1)]  # fmt: skip
    marks += [_svg_marks.Mark(g.start_s, g.end_s, g.label) for g in s.segment_stats]
    marks += [_svg_marks.Mark(m.time_s, m.end_s, tr("excluded: {label}", label=m.label),
                              excluded=True)
              for m in s.excluded]  # fmt: skip
    if not marks:
        return ""
    return _svg_marks.track(float(edges[0]), float(edges[-1]), marks, tr=tr)


def _parts(s: SessionSummary, tr: Translator) -> str:
    """Figures per segment, and the excluded stretches with their reasons."""
    rows = [
        [_e(g.label), f"{clock(g.start_s)}–{clock(g.end_s)}", clock(g.duration_s),
         _pct(tr, g.visible), _e(tr(g.dominant)) if g.dominant else "–",
         f"{_num(tr, g.valence)} ({_num(tr, g.delta['valence'])})",
         f"{_num(tr, g.arousal)} ({_num(tr, g.delta['arousal'])})",
         f"{_pct(tr, g.negative_affect)} ({_num(tr, g.delta['negative_affect'])})",
         ", ".join(f"{_e(tr(c))} {_pct(tr, v)}" for c, v in sorted(g.time_share.items(),
                   key=lambda kv: -np.nan_to_num(kv[1]))[:3] if v > 0) or "–",
         clock(g.excluded_s) if g.excluded_s else ""]
        for g in s.segment_stats
    ]  # fmt: skip
    header = [tr("segment"), tr("time"), tr("duration"), tr("face visible"), tr("dominant"),
              tr("valence (Δ)"), tr("arousal (Δ)"), tr("negative affect (Δ)"),
              tr("top emotions"), tr("excluded")]  # fmt: skip
    if any(g.relative for g in s.segment_stats):
        header.append(tr("valence / negative affect vs baseline (SDs)"))
        for row, g in zip(rows, s.segment_stats, strict=True):
            r = g.relative or {}
            row.append(" / ".join(
                f"{_num(tr, r[k]['delta'])} ({_num(tr, r[k]['z'], '{:+.1f}')})" if k in r
                else "–"
                for k in ("valence", "negative_affect")))  # fmt: skip
    excluded = [
        [f"{clock(m.time_s)}–{clock(m.end_s or m.time_s)}",
         clock((m.end_s or m.time_s) - m.time_s), _e(m.label)]
        for m in s.excluded
    ]  # fmt: skip
    left_out = (
        _h(tr("Left out of every figure in this report, exactly as if they had not been "
              "recorded ({time} in all)."), time=clock(s.excluded_s))
        if s.excluded
        else _h(tr("Left out of every figure in this report, exactly as if they had not been "
                   "recorded."))
    )  # fmt: skip
    stretches = _table(
        [tr("time"), tr("duration"), tr("reason")], excluded, tr("Nothing was excluded.")
    )
    within = _h(
        tr("Figures of the frames inside each segment; Δ is the difference from the session "
           "average.")
    )  # fmt: skip
    return (
        f'<section id="parts"><h2>{_h(tr("Segments"))}</h2><p class="muted">{within}</p>'
        f"{_table(header, rows, tr('No segments in this session.'))}"
        f'<h3 id="excluded-stretches">{_h(tr("Excluded stretches"))}</h3>'
        f'<p class="muted">{left_out}</p>'
        f"{stretches}</section>"
    )  # fmt: skip


def _transitions(s: SessionSummary, tr: Translator) -> str:
    counts, classes = s.transitions, s.info.classes
    used = [i for i in range(len(classes)) if counts[i].sum() or counts[:, i].sum()]
    rows = []
    for i in used:
        total = counts[i].sum()
        cells = [f"<b>{_e(tr(classes[i]))}</b>"]
        for j in used:
            share = counts[i, j] / total if total else 0.0
            ink = "#fff" if share > 0.5 else "#222"  # readable on the darker cells
            cells.append(
                f'<span style="background:rgba(0,114,178,{share:.2f});color:{ink};padding:0 3px">'
                f"{tr.percent(share)}</span>"
            )
        rows.append(cells)
    table = _table(
        [tr("from \\ to"), *(tr(classes[j]) for j in used)], rows, tr("No transitions to show.")
    )
    between = _h(
        tr("Between consecutive {seconds} s windows; rows sum to 100 %."),
        seconds=tr.decimal(f"{s.config.transition_window_s:g}"),
    )
    return (
        '<section id="transitions">'
        f"<h2>{_h(tr('Transitions between dominant emotions'))}</h2>"
        f'<p class="muted">{between}</p>{table}</section>'
    )


def _measure(tr: Translator, key: str) -> str:
    """A compared measure's name: ``happy_pct`` is "happy share (%)", ``happy (calibrated)_pct``
    "happy (calibrated) share (%)"."""
    if key in MEASURE_LABELS:
        return tr(MEASURE_LABELS[key])
    if key.endswith(" (calibrated)_pct"):
        emotion = tr(key.removesuffix(" (calibrated)_pct"))
        return tr("{emotion} (calibrated) share (%)", emotion=emotion)
    if key.endswith("_pct"):
        return tr("{emotion} share (%)", emotion=tr(key.removesuffix("_pct")))
    return key


def _trend(sessions: Sequence[SessionSummary], tr: Translator) -> str:
    t = trend(list(sessions))
    names = [f"{tr.date(i.started_at)} {i.name}" for i in t.sessions]
    keys = [k for k in MEASURE_LABELS if k in t.values]
    keys += [k for k in t.values if k not in keys and np.nansum(t.values[k]) > 0]
    charts = "".join(
        _svg.small_trend(_measure(tr, k), t.values[k], names, *_scale(k, t.values[k]), tr=tr)
        for k in keys
    )
    key = "; ".join(f"{n} = {_e(name)}" for n, name in enumerate(names, start=1))
    rows = [
        [_e(_measure(tr, k)), *(_num(tr, v, "{:.2f}") for v in t.values[k]),
         _num(tr, t.slopes[k], "{:+.2f}")]
        for k in keys
    ]  # fmt: skip
    table = _table([tr("measure"), *names, tr("trend per session")], rows, "")
    scales = _h(
        tr("Sessions: {sessions}. Each chart keeps its measure's own fixed scale (shares "
           "0–100 %, valence and arousal −1 to 1), so sessions compare at a glance."),
        sessions=key,
    )  # fmt: skip
    return (
        f'<section id="trend"><h2>{_h(tr("Session-to-session trend"))}</h2>{charts}'
        f'<p class="muted">{scales}</p>{table}</section>'
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


def _method(s: SessionSummary, tr: Translator) -> str:
    c = s.config
    how = _h(
        tr("Valence and arousal are the probability-weighted positions of the emotion classes "
           "on Russell's circumplex of affect ({reference}). Negative affect is the probability "
           "of an emotion with "
           "negative valence. Smoothing {smooth} s; windows {windows}; a window needs the face "
           "for {share} of its time. Only numbers were stored (no images). emotrace {version}."),
        reference=f"<cite>{_e(_RUSSELL_REFERENCE)}</cite>", smooth=tr.decimal(f"{c.smooth_s:g}"),
        windows=", ".join(_seconds(tr, w) for w in c.windows_s),
        share=_pct(tr, c.min_window_visible), version=_e(__version__),
    )  # fmt: skip
    return (
        f'<section id="method"><h2>{_h(tr("How these figures are computed"))}</h2>'
        f'<p class="muted">{how}</p></section>'
    )


def render_report(
    summary: SessionSummary,
    compare: Sequence[SessionSummary] = (),
    *,
    notes: bool = False,
    lang: str = "en",
) -> str:
    """The report as one HTML string (``compare``: other sessions of the same patient), in
    ``lang`` (a language of :data:`emotrace.i18n.LANGUAGES`; an unknown one is an
    :class:`~emotrace.errors.InputError`): its text, numbers, dates and emotion names.

    The session's notes are the clinician's own and stay out of a report unless ``notes``."""
    tr = translator(lang)
    s = summary
    parts = [_header(s, tr), _quality(s, tr)]
    if s.has_face:
        parts += [_charts(s, tr), _distribution(s, tr), _attention(s, tr), _baseline(s, tr),
                  _segments(s, tr)]  # fmt: skip
        parts.append(_markers(s, tr))
        parts.append(_transitions(s, tr))
    else:
        none = _h(
            tr("The patient's face was not detected in any of the {frames} recorded frames, so "
               "there are no emotion figures to show. Check the camera framing and lighting."),
            frames=str(s.info.frames),
        )  # fmt: skip
        parts.append(
            f'<section id="no-face"><h2>{_h(tr("No face detected"))}</h2>'
            f'<p class="caution">{none}</p></section>'
        )
        parts.append(_markers(s, tr))
    if s.segment_stats or s.excluded:
        parts.append(_parts(s, tr))
    if compare:
        parts.append(_trend([s, *compare], tr))
    if notes and s.info.notes:
        parts.append(
            f'<section id="notes"><h2>{_h(tr("Notes"))}</h2><p>{_e(s.info.notes)}</p></section>'
        )
    parts.append(_method(s, tr))
    title = tr("emotrace session report {patient}", patient=s.info.patient)
    return page(title, "".join(parts), _CSS, lang=tr.lang)


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
    lang: str = "en",
) -> list[Path]:
    """Write the HTML report (and a PDF of it); the files written. ``notes``: include the
    session's notes (left out by default); ``lang``: its language (see :func:`render_report`)."""
    html_text = render_report(summary, compare, notes=notes, lang=lang)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open_private(path, "w", encoding="utf-8") as handle:
        handle.write(html_text)
    if pdf is None:
        return [path]
    try:
        return [path, print_pdf(path, pdf)]
    except (MissingDependencyError, StoreError) as exc:
        # Same class, so the exit code stays; the user learns the HTML is there all the same.
        raise type(exc)(f"{exc}; the HTML report was written to {path}") from None
