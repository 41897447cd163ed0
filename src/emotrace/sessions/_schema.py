"""The workspace schema and its history. Each migration takes a database from version N-1 to N.

The version lives in ``PRAGMA user_version``; ``PRAGMA application_id`` marks the file as an
emotrace workspace so a foreign SQLite file is refused before anything is written to it.
Never edit a released migration: append a new one.
"""

from __future__ import annotations

#: "EMTR": written once, at creation, into the SQLite header (bytes 68-71).
APPLICATION_ID = 0x454D5452

# Version 1: sessions, per-frame records, markers.
_V1 = """
CREATE TABLE sessions (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    patient       TEXT NOT NULL,
    started_at    REAL NOT NULL,              -- unix time, seconds
    ended_at      REAL,
    source        TEXT NOT NULL DEFAULT '',
    model_name    TEXT NOT NULL DEFAULT '',
    model_version TEXT NOT NULL DEFAULT '',
    model_sha256  TEXT NOT NULL DEFAULT '',
    classes       TEXT NOT NULL,              -- JSON list, the column order of probabilities
    settings      TEXT NOT NULL DEFAULT '{}', -- JSON object
    consent       INTEGER NOT NULL DEFAULT 0,
    notes         TEXT NOT NULL DEFAULT '',
    status        TEXT NOT NULL CHECK (status IN ('recording', 'complete', 'interrupted'))
);
CREATE TABLE frames (
    session_id    INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    frame         INTEGER NOT NULL,
    time_s        REAL NOT NULL,
    face          INTEGER NOT NULL,           -- 1 when the patient's face was found
    track_id      INTEGER,
    x INTEGER, y INTEGER, w INTEGER, h INTEGER,
    score         REAL,
    probs         BLOB,                       -- little-endian float32[K], NULL without a face
    PRIMARY KEY (session_id, frame)
) WITHOUT ROWID;
CREATE TABLE markers (
    id            INTEGER PRIMARY KEY,
    session_id    INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    time_s        REAL NOT NULL,
    label         TEXT NOT NULL,
    created_at    REAL NOT NULL
);
CREATE INDEX markers_by_session ON markers (session_id, time_s);
"""

# Version 2: writer liveness, so a killed recording is reported as interrupted, and a patient index
# for cross-session trends.
_V2 = """
ALTER TABLE sessions ADD COLUMN writer_pid INTEGER;
ALTER TABLE sessions ADD COLUMN writer_host TEXT;
ALTER TABLE sessions ADD COLUMN heartbeat REAL;
CREATE INDEX sessions_by_patient ON sessions (patient, started_at);
"""

# Version 3: the patient's approximate head orientation per frame (degrees; NULL without a face
# or without landmarks), for looked-away episodes and frames too turned to trust.
_V3 = """
ALTER TABLE frames ADD COLUMN yaw REAL;
ALTER TABLE frames ADD COLUMN pitch REAL;
ALTER TABLE frames ADD COLUMN roll REAL;
"""

# Version 4, for the clinic:
# - a session's name is unique per patient, not across the workspace (P-018 may have its own
#   "week-1"); SQLite cannot drop a column's UNIQUE, so the table is rebuilt (foreign keys are off
#   during migrations, see ``workspace.migrate``);
# - markers with an end are segments [time_s, end_s]; an excluded segment (its label says why) is
#   left out of every analytic;
# - per-patient baselines: a resting stretch of one session and the statistics computed from it
#   (JSON, self-contained, so the baseline outlives its session); one active baseline per patient,
#   replaced ones are kept; each session records the baseline it is analysed against.
_V4 = """
CREATE TABLE baselines (
    id            INTEGER PRIMARY KEY,
    patient       TEXT NOT NULL,
    session_id    INTEGER REFERENCES sessions(id) ON DELETE SET NULL,
    start_s       REAL NOT NULL,
    end_s         REAL NOT NULL,
    created_at    REAL NOT NULL,              -- unix time, seconds
    replaced_at   REAL,                       -- NULL for the patient's active baseline
    visible_s     REAL NOT NULL,              -- seconds of visible face inside the stretch
    stats         TEXT NOT NULL               -- JSON: classes, means, spreads, frames
);
CREATE UNIQUE INDEX baselines_active ON baselines (patient) WHERE replaced_at IS NULL;
CREATE TABLE sessions_v4 (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    patient       TEXT NOT NULL,
    started_at    REAL NOT NULL,
    ended_at      REAL,
    source        TEXT NOT NULL DEFAULT '',
    model_name    TEXT NOT NULL DEFAULT '',
    model_version TEXT NOT NULL DEFAULT '',
    model_sha256  TEXT NOT NULL DEFAULT '',
    classes       TEXT NOT NULL,
    settings      TEXT NOT NULL DEFAULT '{}',
    consent       INTEGER NOT NULL DEFAULT 0,
    notes         TEXT NOT NULL DEFAULT '',
    status        TEXT NOT NULL CHECK (status IN ('recording', 'complete', 'interrupted')),
    writer_pid    INTEGER,
    writer_host   TEXT,
    heartbeat     REAL,
    baseline_id   INTEGER REFERENCES baselines(id) ON DELETE SET NULL,
    UNIQUE (patient, name)
);
INSERT INTO sessions_v4 (id, name, patient, started_at, ended_at, source, model_name,
    model_version, model_sha256, classes, settings, consent, notes, status, writer_pid,
    writer_host, heartbeat)
SELECT id, name, patient, started_at, ended_at, source, model_name, model_version, model_sha256,
    classes, settings, consent, notes, status, writer_pid, writer_host, heartbeat FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_v4 RENAME TO sessions;
CREATE INDEX sessions_by_patient ON sessions (patient, started_at);
ALTER TABLE markers ADD COLUMN end_s REAL;   -- NULL: a point marker; else a segment's end
ALTER TABLE markers ADD COLUMN excluded INTEGER NOT NULL DEFAULT 0;
"""

#: ``MIGRATIONS[i]`` takes the schema from version ``i`` to ``i + 1``.
MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4)
SCHEMA_VERSION = len(MIGRATIONS)
