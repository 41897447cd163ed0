"""Plain data types shared by the session store, recorder, analytics, export and report."""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emotrace.errors import ModelError, SessionError
from emotrace.sessions.coverage import Coverage

#: Session states as stored. ``interrupted`` is also reported for a ``recording`` session whose
#: writer is gone (killed, crashed, machine powered off).
RECORDING, COMPLETE, INTERRUPTED = "recording", "complete", "interrupted"

# Pseudonyms and session names end up in file names (exports, reports), so they are restricted to
# characters that are safe on every file system and cannot smuggle in a path: letters of any
# alphabet (accented ones too, for Spanish-speaking clinicians' codes such as "Núñez-3"), digits,
# '.', '_' and '-'; no spaces, which keeps a full real name ("Maria Lopez Garcia") out.
NAME_PATTERN = r"^[^\W_][\w.-]{0,63}$"
#: The rule as every interface states it (the page beside the field, the API, the CLI).
NAME_RULE = (
    "1-64 letters (accents allowed), digits, '.', '_' or '-', starting with a letter or digit, "
    "no spaces"
)
_NAME = re.compile(NAME_PATTERN)


def normal_name(value: str) -> str:
    """``value`` in Unicode NFC, so "María" typed on any keyboard is one pseudonym."""
    return unicodedata.normalize("NFC", value)


def check_name(value: str, what: str) -> str:
    """``value`` (in NFC) if it is a valid session name or pseudonym, else
    :class:`SessionError`."""
    normal = normal_name(value)
    if not _NAME.fullmatch(normal):
        raise SessionError(f"{what} {value!r} is not valid: use {NAME_RULE}")
    return normal


def clock(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``) for tables and chart axes."""
    s = max(0, round(seconds))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


@dataclass(frozen=True)
class ModelInfo:
    """The model that produced a session's probabilities, with a checksum of its file(s)."""

    name: str
    version: str = ""
    sha256: str = ""

    @classmethod
    def from_model(cls, model: str | Path, name: str = "", version: str = "") -> ModelInfo:
        """Describe ``model`` (``"default"``, an ``.onnx`` file or a run folder) with its sha256."""
        from emotrace.runtime.loading import BUNDLED_MODELS, default_model_path

        bundled = str(model) in BUNDLED_MODELS
        path = default_model_path(str(model)) if bundled else Path(model)
        return cls(name=name or path.stem, version=version, sha256=file_checksum(path))


def file_checksum(path: Path) -> str:
    """sha256 of a file, or of every file in a folder (relative names and bytes, sorted)."""
    digest = hashlib.sha256()
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
    else:
        raise ModelError(f"{path}: no such model file or folder")
    for item in files:
        if path.is_dir():
            digest.update(item.relative_to(path).as_posix().encode() + b"\0")
        with item.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Marker:
    """A timestamped clinician annotation ("topic: family", "exercise start").

    With ``end_s`` it is a **segment** ``[time_s, end_s)`` (a part of the session: "intake",
    "exercise"); an ``excluded`` segment is a stretch left out of every analytic (the patient
    left the room, a technical problem), its label saying why (see :mod:`.exclusions`).
    """

    id: int
    time_s: float
    label: str
    end_s: float | None = None
    excluded: bool = False

    @property
    def is_segment(self) -> bool:
        """Whether this marker has an end (a segment or an excluded stretch)."""
        return self.end_s is not None


@dataclass(frozen=True)
class SessionInfo:
    """One session's metadata, plus counts computed from its records."""

    id: int
    name: str
    patient: str
    started_at: float
    ended_at: float | None
    source: str
    model: ModelInfo
    classes: tuple[str, ...]
    settings: dict[str, Any]
    consent: bool
    notes: str
    #: ``recording``, ``complete`` or ``interrupted`` (a recording with no live writer).
    status: str
    frames: int = 0
    visible_frames: int = 0
    first_time_s: float | None = None
    last_time_s: float | None = None
    markers: int = 0
    #: Recorded and face-visible time (:mod:`.coverage`); ``None`` when not measured.
    coverage: Coverage | None = None

    @property
    def duration_s(self) -> float:
        """The session's length on its clock, as the report gives it: from the first frame to the
        end of the last (:attr:`Coverage.span_s`) once measured, else from the first to the last
        stored frame (0 without frames)."""
        if self.coverage is not None:
            return self.coverage.span_s
        if self.first_time_s is None or self.last_time_s is None:
            return 0.0
        return self.last_time_s - self.first_time_s

    @property
    def file_stem(self) -> str:
        """A file-name stem with no real name in it: pseudonym and session id."""
        return f"{self.patient}_session{self.id}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready metadata (no source path and no notes, which may identify the patient)."""
        return {
            "id": self.id,
            "name": self.name,
            "patient": self.patient,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_s": round(self.duration_s, 3),
            "status": self.status,
            "consent": self.consent,
            "model": {
                "name": self.model.name,
                "version": self.model.version,
                "sha256": self.model.sha256,
            },
            "classes": list(self.classes),
            "settings": self.settings,
            "frames": self.frames,
            "visible_frames": self.visible_frames,
            "markers": self.markers,
            **_coverage_dict(self.coverage),
        }


def _coverage_dict(coverage: Coverage | None) -> dict[str, Any]:
    """The face-visible figure as the API and exports give it (``None`` where unknown)."""
    if coverage is None:
        return {"visible_ratio": None, "recorded_s": None, "not_recorded_s": None}
    ratio = coverage.visible_ratio
    return {
        "visible_ratio": None if math.isnan(ratio) else round(ratio, 6),
        "recorded_s": round(coverage.recorded_s, 3),
        "not_recorded_s": round(coverage.not_recorded_s, 3),
    }


@dataclass
class SessionData:
    """A session's per-frame records as arrays; rows without the patient's face hold NaN.

    ``probabilities``: ``(N, K)`` float32 in ``info.classes`` order. ``boxes``: ``(N, 4)`` float
    ``x, y, w, h``. ``track_ids``: -1 where no face. ``poses``: ``(N, 3)`` approximate yaw,
    pitch, roll in degrees (NaN without a face or landmarks; see :mod:`emotrace.faces.pose`).
    Missing rows are kept, never interpolated.
    """

    info: SessionInfo
    frames: np.ndarray
    times: np.ndarray
    visible: np.ndarray
    probabilities: np.ndarray
    boxes: np.ndarray
    track_ids: np.ndarray
    scores: np.ndarray
    markers: list[Marker] = field(default_factory=list)
    poses: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))

    def __post_init__(self) -> None:
        if len(self.poses) != len(self.frames):  # made without poses: unknown everywhere
            self.poses = np.full((len(self.frames), 3), np.nan)

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names in probability-column order."""
        return self.info.classes
