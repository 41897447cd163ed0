"""The rules of sessions, in one place for the command line and the server alike.

A new session's name must be free; finishing a session that another process is recording is
refused; a report's trend compares the session with the same patient's earlier sessions. The
routes and the CLI call these and only render what they return (datasette's ``RowView.data()``:
compute once, render as HTML or JSON).
"""

from __future__ import annotations

from collections.abc import Sequence

from emotrace.errors import SessionBusy, SessionError, SessionExists
from emotrace.sessions.analytics import AnalyticsConfig, SessionSummary, summarize
from emotrace.sessions.store import SessionStore
from emotrace.sessions.types import COMPLETE, RECORDING, SessionInfo


def ensure_name_free(store: SessionStore, name: str, patient: str) -> None:
    """:class:`SessionExists` when ``patient`` already has a session called ``name`` (names are
    unique per patient: P-018 may have its own "week-1"; checked before a long analysis starts,
    creating the session checks again, atomically)."""
    if store.has_name(name, patient):
        raise SessionExists(
            f"session {name!r} already exists for patient {patient} in {store.path}; "
            "choose another name"
        )


def finish(store: SessionStore, ref: str | int) -> SessionInfo:
    """End a session as ``complete`` (an interrupted one too) and return it; finishing a
    complete session changes nothing. :class:`SessionBusy` while a live writer records it:
    only that writer may end it."""
    info = store.get(ref)
    if info.status == RECORDING:
        raise SessionBusy(f"session {info.name!r} is being recorded elsewhere")
    if info.status != COMPLETE:
        store.finish(info.id, COMPLETE)
    return store.get(info.id)


def earlier_sessions(store: SessionStore, info: SessionInfo) -> list[SessionInfo]:
    """The same patient's sessions that started before ``info``'s, oldest first: a report's
    trend, the same whenever the report is made (sessions recorded later never change it)."""
    return [
        other
        for other in store.sessions(info.patient)
        if other.id != info.id and (other.started_at, other.id) < (info.started_at, info.id)
    ]


def report_summaries(
    store: SessionStore,
    ref: str | int,
    *,
    trend: bool = False,
    compare: Sequence[str | int] = (),
    config: AnalyticsConfig | None = None,
) -> tuple[SessionSummary, list[SessionSummary]]:
    """What a report shows: the session's summary, and those it is compared with (``trend``:
    :func:`earlier_sessions`; ``compare``: sessions named by the user, which must be the same
    patient's), oldest first. Every summary is relative to the baseline the session records
    (``SessionStore.session_baseline``), the compared ones too."""
    config = config or AnalyticsConfig()
    info = store.get(ref)
    others = {store.get(r).id: store.get(r) for r in compare}
    if trend:
        others.update({o.id: o for o in earlier_sessions(store, info)})
    others.pop(info.id, None)
    foreign = sorted({o.patient for o in others.values()} - {info.patient})
    if foreign:
        raise SessionError(
            f"compared sessions must be patient {info.patient}'s, not {', '.join(foreign)}"
        )
    ordered = sorted(others.values(), key=lambda o: (o.started_at, o.id))
    # One baseline for the whole trend: the one this session is analysed against.
    baseline = store.session_baseline(info.id)

    def summary_of(session_id: int) -> SessionSummary:
        data = store.load(session_id)
        usable = baseline is not None and baseline.stats.classes == data.classes
        return summarize(data, config, baseline=baseline if usable else None)

    return summary_of(info.id), [summary_of(o.id) for o in ordered]
