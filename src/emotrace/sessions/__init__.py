"""Therapy sessions: record the patient's emotions, analyse them, report and export.

Privacy by design: only numbers are stored (no frames, no face images), in a local SQLite
workspace; output file names carry the patient's pseudonym and the session id, never a name;
deleting really erases; nothing here opens a network connection.

>>> from emotrace.sessions import SessionRecorder, SessionStore, summarize, write_report
>>> with SessionRecorder("week-3", "P-017", classes, workspace="~/therapy") as recorder:
...     for index, time_s, faces in frames:        # from emotrace.video.process(...)
...         recorder.record(index, time_s, faces)
>>> with SessionStore("~/therapy", readonly=True) as store:
...     summary = summarize(store.load("week-3"))
>>> write_report(summary, Path("P-017_week-3.html"))

Modules: ``store``/``workspace`` (SQLite), ``recorder`` (patient selection, crash-safe writes),
``circumplex`` and ``analytics`` (documented measures), ``report`` (HTML/PDF), ``export``
(CSV, JSON Lines, Parquet).
"""

from emotrace.sessions.analytics import AnalyticsConfig, SessionSummary, Trend, summarize, trend
from emotrace.sessions.circumplex import RUSSELL_1980, Circumplex
from emotrace.sessions.export import export_session
from emotrace.sessions.recorder import PatientSelector, SessionRecorder, record_session
from emotrace.sessions.report import render_report, write_report
from emotrace.sessions.store import SessionStore
from emotrace.sessions.types import Marker, ModelInfo, SessionData, SessionInfo
from emotrace.sessions.workspace import default_workspace, resolve_workspace

__all__ = [
    "RUSSELL_1980",
    "AnalyticsConfig",
    "Circumplex",
    "Marker",
    "ModelInfo",
    "PatientSelector",
    "SessionData",
    "SessionInfo",
    "SessionRecorder",
    "SessionStore",
    "SessionSummary",
    "Trend",
    "default_workspace",
    "export_session",
    "record_session",
    "render_report",
    "resolve_workspace",
    "summarize",
    "trend",
    "write_report",
]
