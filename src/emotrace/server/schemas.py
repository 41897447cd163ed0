"""Request and response bodies of the REST API: the OpenAPI schema FastAPI publishes.

Every response model is what the handlers really return, so a schema fuzzer can check each
response against it. Names and pseudonyms follow :func:`emotrace.sessions.types.check_name`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from emotrace.sessions import types

#: Session names and pseudonyms end up in file names: the same rule as the CLI's.
NAME_PATTERN = types.NAME_PATTERN
#: Largest SQLite integer: ids beyond it cannot exist (and SQLite would refuse them).
MAX_ID = 2**63 - 1


def _utf8(value: str) -> str:
    # JSON may carry lone surrogates (\ud800) that Python accepts but SQLite cannot store.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    return value


Text = Annotated[str, AfterValidator(_utf8)]


def _name(value: Any) -> Any:
    # NFC first ("María" typed with a combining accent is the same pseudonym), then the rule,
    # stated in full: "must match pattern ^[^\W_]..." helps nobody.
    if not isinstance(value, str):
        return value  # the str schema (strict) refuses it
    normal = types.normal_name(value)
    if not re.fullmatch(NAME_PATTERN, normal):
        raise ValueError(f"must be {types.NAME_RULE}")
    return normal


# The published schema states the rule in words, without a regex: JSON Schema's regexes are
# ECMA-262's, whose \w is ASCII, so a pattern would call "María" invalid while the server (which
# checks the rule, 422 with it) accepts it; clients and fuzzers would disagree with the server.
NAME_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 64, "description": types.NAME_RULE}
Name = Annotated[str, BeforeValidator(_name), WithJsonSchema(NAME_SCHEMA)]
Seconds = Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)]


class ErrorBody(BaseModel):
    """Every error: a short phrase and details (a message, or the list of invalid fields)."""

    error: str
    detail: Any = None


class Health(BaseModel):
    """``GET /api/v1/health``: the server answers."""

    status: Literal["ok"]
    version: str


class ModelDescription(BaseModel):
    """The model every session of this server uses."""

    name: str
    version: str
    sha256: str
    classes: list[str]
    input_size: int


class Info(BaseModel):
    """``GET /api/v1/info``: model, classes, detector, limits and versions."""

    version: str
    model: ModelDescription
    detector: str
    max_upload_bytes: int
    workspace: str
    versions: dict[str, str]


class Box(BaseModel):
    """A face box in image pixels."""

    x: int
    y: int
    w: int
    h: int


class Face(BaseModel):
    """One face, as in ``emotrace predict --json``."""

    model_config = ConfigDict(extra="allow")

    box: Box
    label: str
    confidence: float
    probabilities: dict[str, float]
    #: Five facial landmarks ``[[x, y], ...]`` (eyes, nose, mouth corners) when the detector
    #: gives them.
    landmarks: list[list[float]] | None = None


class AnalyzeResult(BaseModel):
    """``POST /api/v1/analyze``: one entry of ``emotrace predict --json``, plus the image size."""

    file: str
    faces: list[Face]
    error: str | None = None
    width: int
    height: int


class ModelRef(BaseModel):
    """The model a session was recorded with."""

    name: str
    version: str
    sha256: str


class Session(BaseModel):
    """A session's metadata (no notes, no source path)."""

    id: int
    name: str
    patient: str
    started_at: float
    ended_at: float | None
    duration_s: float
    status: Literal["recording", "complete", "interrupted"]
    consent: bool
    model: ModelRef
    classes: list[str]
    settings: dict[str, Any]
    frames: int
    visible_frames: int
    markers: int
    #: The face-visible figure: share of the recorded time with the patient's face (``null``
    #: without frames); the page, the report and the CLI show this one (see
    #: ``emotrace.sessions.coverage``).
    visible_ratio: float | None
    #: Seconds the frames stand for, and seconds in breaks (paused, interrupted, no frames).
    recorded_s: float | None
    not_recorded_s: float | None
    #: Whether this server records it now (a page may be streaming into it).
    live: bool
    #: Whether a page streams into it now (its WebSocket is attached): another tab asks before
    #: taking it over.
    streaming: bool


class Marker(BaseModel):
    """A timestamped annotation, in seconds since the session's start; with ``end_s`` a segment
    ``[time_s, end_s)``, and an ``excluded`` segment is left out of every analytic (its label
    says why)."""

    id: int
    time_s: float
    label: str
    end_s: float | None = None
    excluded: bool = False


class SegmentFigures(BaseModel):
    """One segment's figures (``emotrace.sessions.segments.SegmentStat``); ``None`` where the
    face was never visible in it."""

    id: int
    label: str
    start_s: float
    end_s: float
    duration_s: float
    excluded_s: float
    visible: float
    time_share: dict[str, float | None]
    mean_probability: dict[str, float | None]
    valence: float | None
    arousal: float | None
    negative_affect: float | None
    delta: dict[str, float | None]
    dominant: str | None
    #: Against the patient's baseline: ``{"valence": {"value", "delta", "z"}, ...}``.
    relative: dict[str, dict[str, float | None]] | None = None


class Segments(BaseModel):
    """``GET .../segments``: figures per segment, and the stretches left out of every analytic."""

    segments: list[SegmentFigures]
    excluded: list[Marker]
    #: Seconds of the recording inside excluded stretches.
    excluded_s: float


class SessionDetail(Session):
    """One session with its notes and markers."""

    notes: str
    marker_list: list[Marker]


class SessionCreate(BaseModel):
    """``POST /api/v1/sessions``: start recording a session (frames come over the WebSocket)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    patient: Name = Field(description="the patient's pseudonym, never a real name")
    name: Name | None = Field(None, description="session name (default: pseudonym and time)")
    consent: bool = False
    notes: Annotated[Text, Field(max_length=10_000)] = ""
    source: Literal["camera", "screen", "file", "api"] = "api"
    patient_track: Annotated[int, Field(ge=0, le=MAX_ID)] | None = None


class SessionUpdate(BaseModel):
    """``PATCH /api/v1/sessions/{id}``: notes and consent."""

    model_config = ConfigDict(extra="forbid", strict=True)

    notes: Annotated[Text, Field(max_length=10_000)] | None = None
    consent: bool | None = None


class MarkerCreate(BaseModel):
    """``POST .../markers``: ``time_s`` defaults to now for a session being recorded."""

    model_config = ConfigDict(extra="forbid", strict=True)

    label: Annotated[Text, Field(min_length=1, max_length=200, pattern=r"\S")]
    time_s: Seconds | None = None
    end_s: Seconds | None = Field(
        None, description="the end of a segment (after time_s); without it, a point marker"
    )
    excluded: bool = Field(
        False, description="leave the segment out of every analytic (the label says why)"
    )

    @field_validator("end_s")
    @classmethod
    def _after_start(cls, value: float | None, info: ValidationInfo) -> float | None:
        return _after_start(value, info)

    @field_validator("excluded")
    @classmethod
    def _has_end(cls, value: bool, info: ValidationInfo) -> bool:
        # An end_s that failed is not in info.data: reported once, as its own error.
        if value and "end_s" in info.data and info.data["end_s"] is None:
            raise ValueError("needs an end: an excluded stretch is a segment (give end_s)")
        return value


class MarkerUpdate(BaseModel):
    """``PATCH .../markers/{id}``: a new label and/or time."""

    model_config = ConfigDict(extra="forbid", strict=True)

    label: Annotated[Text, Field(min_length=1, max_length=200, pattern=r"\S")] | None = None
    time_s: Seconds | None = None
    end_s: Seconds | None = Field(
        None, description="a new end; null makes a segment a point marker again"
    )
    excluded: bool | None = None

    @field_validator("end_s")
    @classmethod
    def _after_start(cls, value: float | None, info: ValidationInfo) -> float | None:
        return _after_start(value, info)


def _after_start(end_s: float | None, info: ValidationInfo) -> float | None:
    # What the body alone shows; the store checks the rest (the stored start, the session end).
    time_s = info.data.get("time_s")
    if end_s is not None and time_s is not None and end_s <= time_s:
        raise ValueError(f"must come after the start ({time_s:g} s)")
    return end_s


class RecordsPage(BaseModel):
    """``GET .../records``: a page of per-frame rows (the columns of the CSV export)."""

    total: int
    offset: int
    limit: int
    records: list[dict[str, Any]]


class Series(BaseModel):
    """``GET .../series``: the patient's valence and arousal per frame (``null`` where no face),
    ``limit`` frames from ``offset``, for redrawing a live timeline."""

    total: int
    offset: int
    time_s: list[float]
    valence: list[float | None]
    arousal: list[float | None]


class DeletePending(BaseModel):
    """``DELETE /api/v1/sessions/{id}`` answered 202: the session is deleted, but another process
    reads the workspace, so its data leaves the write-ahead log only once that reader finishes;
    the server completes the purge by itself then (or when it stops)."""

    id: int
    purged: Literal[False]
    detail: str
