"""``emotrace sessions list|show|export|delete|mark|edit`` and ``emotrace report``.

Output file names carry the pseudonym and the session id, never a name. The ``--session``
options of ``live`` and ``analyze`` are in ``session_recording``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emotrace.cli._common import add_workspace_option, console
from emotrace.i18n import LANGUAGES

if TYPE_CHECKING:
    from emotrace.sessions.analytics import AnalyticsConfig, SessionSummary
    from emotrace.sessions.store import SessionStore


def _analytics(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("analytics")
    g.add_argument(
        "--windows",
        type=float,
        nargs="+",
        default=[5.0, 30.0],
        metavar="S",
        help="dominant-emotion window lengths (default: 5 30)",
    )
    g.add_argument("--smooth", type=float, default=2.0, metavar="S", help="smoothing window")
    g.add_argument(
        "--negative-threshold",
        type=float,
        default=0.5,
        metavar="P",
        help="negative affect that counts as negative (default 0.5)",
    )
    g.add_argument(
        "--negative-min",
        type=float,
        default=10.0,
        metavar="S",
        help="shortest sustained negative segment (default 10 s)",
    )
    g.add_argument(
        "--marker-window",
        type=float,
        default=30.0,
        metavar="S",
        help="seconds after a marker compared with the session (default 30)",
    )
    g.add_argument(
        "--exclude-turned",
        action="store_true",
        help="leave frames with the head turned away (|yaw| >= 25 or |pitch| >= 20 degrees, "
        "approximate) out of the affect measures",
    )


def add_parser(sub: Any) -> None:
    """Register ``sessions`` (with its actions) and ``report``."""
    sessions = sub.add_parser("sessions", help="recorded therapy sessions: list, show, export...")
    actions = sessions.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = actions.add_parser("list", help="sessions in the workspace")
    p.add_argument("--patient", metavar="PSEUDONYM", help="only this patient's sessions")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_workspace_option(p)
    p.set_defaults(handler=run_list)

    p = actions.add_parser("show", help="metadata and summary figures of one session")
    p.add_argument("session", metavar="SESSION", help="PATIENT/NAME, session name or id")
    p.add_argument("--json", action="store_true", help="print the full summary as JSON")
    add_workspace_option(p)
    _analytics(p)
    p.set_defaults(handler=run_show)

    p = actions.add_parser("export", help="per-frame records as CSV, JSON Lines or Parquet")
    p.add_argument("session", metavar="SESSION", help="PATIENT/NAME, session name or id")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="output file (default: PSEUDONYM_sessionID.FORMAT here)",
    )
    p.add_argument("--format", choices=("csv", "jsonl", "parquet"), help="default: from -o, csv")
    add_workspace_option(p)
    p.set_defaults(handler=run_export)

    p = actions.add_parser("delete", help="delete sessions and really erase their data")
    p.add_argument(
        "sessions", nargs="*", metavar="SESSION", help="PATIENT/NAME, session names or ids"
    )
    p.add_argument("--patient", metavar="PSEUDONYM", help="delete every session of this patient")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    add_workspace_option(p)
    p.set_defaults(handler=run_delete)

    p = actions.add_parser("mark", help="add a timestamped marker to a session")
    p.add_argument("session", metavar="SESSION", help="PATIENT/NAME, session name or id")
    p.add_argument("label", help='the annotation, e.g. "topic: family"')
    p.add_argument(
        "--at",
        type=float,
        metavar="SECONDS",
        help="session time (default: now, for a session being recorded)",
    )
    p.add_argument(
        "--to",
        type=float,
        metavar="SECONDS",
        help="end of a segment from --at to this time (intake, exercise, ...)",
    )
    p.add_argument(
        "--exclude",
        action="store_true",
        help="leave the segment out of every analytic (the label says why; needs --to)",
    )
    add_workspace_option(p)
    p.set_defaults(handler=run_mark)

    p = actions.add_parser(
        "baseline",
        help="make a resting stretch of a session the patient's baseline",
        description="Make START-END (session seconds) of SESSION the patient's active baseline: "
        "their resting face, which every figure is then also shown relative to. It needs at "
        "least 10 s of visible face. The previous baseline is kept (replaced); sessions "
        "recorded from now on are analysed against the new one, and so is SESSION itself.",
    )
    p.add_argument("session", metavar="SESSION", help="PATIENT/NAME, session name or id")
    p.add_argument("--start", type=float, required=True, metavar="S", help="start, in seconds")
    p.add_argument("--end", type=float, required=True, metavar="S", help="end, in seconds")
    add_workspace_option(p)
    p.set_defaults(handler=run_baseline)

    p = actions.add_parser("baselines", help="patients' baselines, the replaced ones too")
    p.add_argument("--patient", metavar="PSEUDONYM", help="only this patient's baselines")
    p.add_argument(
        "--clear",
        action="store_true",
        help="end the patient's active baseline (kept in the history; needs --patient)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    add_workspace_option(p)
    p.set_defaults(handler=run_baselines)

    p = actions.add_parser("edit", help="change a session's notes or consent flag")
    p.add_argument("session", metavar="SESSION", help="PATIENT/NAME, session name or id")
    p.add_argument("--notes", help="free-text notes (replace the current ones)")
    p.add_argument("--consent", action=argparse.BooleanOptionalAction, help="consent recorded")
    add_workspace_option(p)
    p.set_defaults(handler=run_edit)

    p = sub.add_parser("report", help="self-contained HTML report of a session (and a PDF)")
    p.add_argument("session", metavar="SESSION", help="PATIENT/NAME, session name or id")
    p.add_argument(
        "--compare",
        nargs="+",
        default=[],
        metavar="SESSION",
        help="other sessions of the same patient, for the trend section",
    )
    p.add_argument(
        "--trend",
        action="store_true",
        help="compare with every earlier session of the same patient (sessions recorded later "
        "never change a report)",
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="HTML file (default: PSEUDONYM_sessionID_report.html here)",
    )
    p.add_argument(
        "--pdf", action="store_true", help="also print it to PDF next to the HTML (needs Chromium)"
    )
    p.add_argument(
        "--notes",
        action="store_true",
        help="include the session's notes (private: left out of reports and exports by default)",
    )
    p.add_argument(
        "--lang",
        choices=list(LANGUAGES),
        default="en",
        help="language of the report: its text, numbers, dates and emotion names (default: en)",
    )
    add_workspace_option(p)
    _analytics(p)
    p.set_defaults(handler=run_report)


def _config(args: argparse.Namespace) -> AnalyticsConfig:
    from emotrace.sessions.analytics import AnalyticsConfig

    return AnalyticsConfig(
        windows_s=tuple(args.windows),
        smooth_s=args.smooth,
        negative_threshold=args.negative_threshold,
        negative_min_s=args.negative_min,
        marker_window_s=args.marker_window,
        exclude_turned=args.exclude_turned,
    )


def _store(args: argparse.Namespace, readonly: bool = True) -> SessionStore:
    from emotrace.sessions.store import SessionStore

    return SessionStore(args.workspace, readonly=readonly)


def _summary(store: SessionStore, ref: str, config: AnalyticsConfig) -> SessionSummary:
    from emotrace.sessions.analytics import summarize

    data = store.load(ref)
    baseline = store.session_baseline(data.info.id)
    if baseline is not None and baseline.stats.classes != data.classes:
        baseline = None  # made from a model with other classes: nothing to compare
    return summarize(data, config, baseline=baseline)


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def run_list(args: argparse.Namespace) -> int:
    """Print the workspace's sessions (an absent workspace has none)."""
    from emotrace.sessions.types import clock
    from emotrace.sessions.workspace import resolve_workspace

    if not resolve_workspace(args.workspace).exists():
        console.print(f"no sessions (no workspace at {resolve_workspace(args.workspace)} yet)")
        return 0
    with _store(args) as store:
        infos = store.sessions(args.patient)
    if args.json:
        print(json.dumps([i.to_dict() for i in infos], indent=2))
        return 0
    if not infos:
        console.print("no sessions")
        return 0
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("id", "name", "patient", "started", "length", "face", "marks", "status"):
        table.add_column(column, no_wrap=column != "name")
    table.add_column("consent")
    for i in infos:
        ratio = i.coverage.visible_ratio if i.coverage else math.nan
        visible = "-" if math.isnan(ratio) else f"{ratio:.0%}"
        table.add_row(
            str(i.id),
            i.name,
            i.patient,
            _when(i.started_at),
            clock(i.duration_s),
            visible,
            str(i.markers),
            i.status,
            "yes" if i.consent else "no",
        )
    console.print(table)
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Print one session's metadata, summary figures and markers."""
    from emotrace.sessions.types import clock

    with _store(args) as store:
        summary = _summary(store, args.session, _config(args))
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
        return 0
    info = summary.info
    model = f"{info.model.name} {info.model.version}".strip() or "unknown"
    lines = [
        f"session {info.name} (id {info.id}), patient {info.patient}",
        f"started {_when(info.started_at)}, duration {clock(summary.duration_s)}, {info.status}",
        f"model {model}" + (f" (sha256 {info.model.sha256[:12]})" if info.model.sha256 else ""),
        f"source {info.source or '-'}; consent {'yes' if info.consent else 'no'}",
        f"frames {info.frames}, face visible {summary.visible_ratio:.0%} of the recorded time, "
        f"{len(summary.gaps)} gap(s); not recorded (paused or interrupted) "
        f"{clock(summary.not_recorded_s)}",
    ]
    if summary.has_face:
        shares = sorted(summary.time_share.items(), key=lambda kv: -kv[1])
        lines.append("time share: " + ", ".join(f"{c} {s:.0%}" for c, s in shares if s > 0))
        lines.append(
            f"mean valence {summary.mean_valence:+.2f}, mean arousal {summary.mean_arousal:+.2f},"
            f" {len(summary.segments)} sustained negative segment(s)"
        )
    else:
        lines.append("no face of the patient in this session")
    lines += _relative_lines(summary)
    lines += [f"marker {clock(m.time_s)}  {m.label}" for m in summary.markers]
    lines += [
        f"segment {clock(g.start_s)}-{clock(g.end_s)}  {g.label}: "
        + (f"{g.dominant}, valence {g.valence:+.2f}, arousal {g.arousal:+.2f}" if g.dominant
           else "no face")
        for g in summary.segment_stats
    ]  # fmt: skip
    lines += [
        f"excluded {clock(m.time_s)}-{clock(m.end_s or m.time_s)}  {m.label}"
        for m in summary.excluded
    ]
    if info.notes:
        lines.append(f"notes: {info.notes}")
    for line in lines:
        console.print(line, markup=False)
    return 0


def _relative_lines(summary: SessionSummary) -> list[str]:
    rel = summary.relative
    if rel is None:
        return ["no baseline: figures are raw only (set one with emotrace sessions baseline)"]
    lines = [rel.baseline.describe()]
    if summary.has_face:
        v, a = rel.affect["valence"], rel.affect["arousal"]

        def sds(z: float) -> str:  # no SD units when the face hardly moved at rest
            return "" if z != z else f" ({z:+.1f} SD)"

        lines.append(
            f"vs baseline: valence {v['delta']:+.2f}{sds(v['z'])}, arousal "
            f"{a['delta']:+.2f}{sds(a['z'])}, negative affect "
            f"{rel.affect['negative_affect']['delta']:+.2f}"
        )
    if rel.calibrated_time_share is not None and summary.has_face:
        shares = sorted(rel.calibrated_time_share.items(), key=lambda kv: -kv[1])
        lines.append("calibrated time share: " + ", ".join(f"{c} {s:.0%}" for c, s in shares if s))
    elif rel.reference is None:
        lines.append("no neutral reference for this model: no calibrated labels")
    if not rel.same_model:
        lines.append("warning: the baseline was recorded with another model")
    return lines


def run_baseline(args: argparse.Namespace) -> int:
    """Set a patient's baseline from a stretch of a session."""
    with _store(args, readonly=False) as store:
        baseline = store.set_baseline(args.session, args.start, args.end)
    console.print(baseline.describe() + ", active", markup=False)
    return 0


def run_baselines(args: argparse.Namespace) -> int:
    """List baselines (newest first), or end a patient's active one."""
    from emotrace.errors import SessionError
    from emotrace.sessions.workspace import resolve_workspace

    if args.clear:
        if not args.patient:
            raise SessionError("--clear needs --patient PSEUDONYM")
        with _store(args, readonly=False) as store:
            cleared = store.clear_baseline(args.patient)
        console.print(f"{cleared.describe()}: no longer active", markup=False)
        return 0
    if not resolve_workspace(args.workspace).exists():
        console.print("no baselines (no workspace yet)")
        return 0
    with _store(args) as store:
        baselines = store.baselines(args.patient)
    if args.json:
        print(json.dumps([b.to_dict() for b in baselines], indent=2))
        return 0
    if not baselines:
        console.print("no baselines")
        return 0
    for b in baselines:
        state = "active" if b.active else f"replaced {_when(b.replaced_at or 0)}"
        console.print(f"{b.describe()}; set {_when(b.created_at)}, {state}", markup=False)
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Write one session's records in the chosen format."""
    from emotrace.sessions.export import export_session, output_format

    with _store(args) as store:
        data = store.load(args.session)
    fmt = args.format or (output_format(args.output, None) if args.output else "csv")
    path = args.output or Path(f"{data.info.file_stem}.{fmt}")
    written = export_session(data, path, fmt)
    console.print("wrote " + ", ".join(str(p) for p in written), markup=False)
    return 0


def run_delete(args: argparse.Namespace) -> int:
    """Delete sessions (after confirmation) and purge their data from the files."""
    from emotrace.errors import SessionError

    if not args.sessions and not args.patient:
        raise SessionError("name the sessions to delete, or give --patient PSEUDONYM")
    with _store(args, readonly=False) as store:
        infos = [store.get(ref) for ref in args.sessions]
        if args.patient:
            infos += store.sessions(args.patient)
            if not any(i.patient == args.patient for i in infos):
                raise SessionError(f"no sessions of patient {args.patient!r}")
        if not args.yes:
            if not sys.stdin.isatty():
                raise SessionError("deleting cannot be undone: confirm with --yes")
            names = ", ".join(sorted({i.name for i in infos}))
            answer = input(f"Delete {names} and all their records for good? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                console.print("nothing deleted")
                return 0
        purged = store.delete([i.id for i in infos])
    console.print(f"deleted {len({i.id for i in infos})} session(s)")
    if not purged:
        from emotrace.sessions.store import PURGE_PENDING

        print(
            f"emotrace: warning: {PURGE_PENDING}; it completes when the last process using the "
            "workspace closes it",
            file=sys.stderr,
        )
    return 0


def run_mark(args: argparse.Namespace) -> int:
    """Add a marker to a session."""
    from emotrace.sessions.types import clock

    with _store(args, readonly=False) as store:
        marker = store.add_marker(
            args.session, args.label, args.at, end_s=args.to, excluded=args.exclude
        )
    if marker.end_s is None:
        console.print(f"marker at {clock(marker.time_s)}: {marker.label}", markup=False)
    else:
        kind = "excluded stretch" if marker.excluded else "segment"
        span = f"{clock(marker.time_s)}-{clock(marker.end_s)}"
        console.print(f"{kind} {span}: {marker.label}", markup=False)
    return 0


def run_edit(args: argparse.Namespace) -> int:
    """Change notes / consent."""
    with _store(args, readonly=False) as store:
        info = store.update(args.session, notes=args.notes, consent=args.consent)
    console.print(f"session {info.name}: consent {'yes' if info.consent else 'no'}", markup=False)
    return 0


def run_report(args: argparse.Namespace) -> int:
    """Write the HTML (and PDF) report of a session."""
    from emotrace.sessions.report import write_report
    from emotrace.sessions.rules import report_summaries

    with _store(args) as store:
        summary, compare = report_summaries(
            store, args.session, trend=args.trend, compare=args.compare, config=_config(args)
        )
    path = args.output or Path(f"{summary.info.file_stem}_report.html")
    pdf = path.with_suffix(".pdf") if args.pdf else None
    written = write_report(summary, path, compare, pdf, notes=args.notes, lang=args.lang)
    console.print("wrote " + ", ".join(str(p) for p in written), markup=False)
    return 0
