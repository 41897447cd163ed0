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

#: ``MIGRATIONS[i]`` takes the schema from version ``i`` to ``i + 1``.
MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3)
SCHEMA_VERSION = len(MIGRATIONS)
