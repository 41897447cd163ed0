"""The API of per-patient baselines and of a session's analytics, raw and relative to them.

A baseline is a resting stretch of one session (``POST /sessions/{id}/baseline``); it belongs to
the patient, one is active at a time, a replaced one stays in the history. See
:mod:`emotrace.sessions.baseline` for the statistics and the calibrated labels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Request, Security
from fastapi import Path as PathParam
from pydantic import BaseModel, WithJsonSchema

from emotrace.server.errors import ApiError, responses
from emotrace.server.routes import SessionId, bearer
from emotrace.server.schemas import NAME_SCHEMA, Name, Seconds
from emotrace.server.state import workspace, write
from emotrace.sessions.baseline import Baseline as StoredBaseline
from emotrace.sessions.baseline import neutral_reference

if TYPE_CHECKING:
    from emotrace.sessions.store import SessionStore

router = APIRouter(prefix="/api/v1", responses=responses(401), dependencies=[Security(bearer)])

Patient = Annotated[Name, PathParam(description="pseudonym"), WithJsonSchema(NAME_SCHEMA)]


class BaselineCreate(BaseModel):
    """A resting stretch of the session, in session seconds (at least 10 s of visible face)."""

    start_s: Seconds
    end_s: Seconds


class Baseline(BaseModel):
    """A patient's baseline: which stretch of which session, when it was set, how much face it
    had, and its statistics (mean probabilities; valence, arousal, negative affect mean and
    SD). ``reference``: the model's mean output on neutral faces, which calibrated labels map
    the resting face to (``null`` for a model that was never measured)."""

    id: int
    patient: str
    session_id: int | None
    session_name: str | None
    start_s: float
    end_s: float
    created_at: float
    replaced_at: float | None
    active: bool
    visible_s: float
    stats: dict[str, Any]
    reference: dict[str, float] | None


def _body(baseline: StoredBaseline) -> dict[str, Any]:
    reference = neutral_reference(baseline.stats.model_sha256)
    ref = None
    if reference is not None and reference.classes == baseline.stats.classes:
        ref = dict(zip(reference.classes, reference.mean_probabilities, strict=True))
    return {**baseline.to_dict(), "reference": ref}


def _session_id(store: SessionStore, session_id: int) -> int:
    from emotrace.errors import SessionError

    try:
        return store.get(session_id).id
    except SessionError:
        raise ApiError(404, "not found", f"no session {session_id}") from None


@router.post(
    "/sessions/{session_id}/baseline",
    response_model=Baseline,
    status_code=201,
    tags=["baselines"],
    responses=responses(404, 422),
    operation_id="set_baseline",
)
def set_baseline(request: Request, session_id: SessionId, body: BaselineCreate) -> dict[str, Any]:
    """Make ``start_s``-``end_s`` of the session its patient's active baseline (422 with the
    reason when it has less than 10 s of visible face). The previous baseline is kept, as
    replaced; this session and the patient's sessions started from now on are analysed against
    the new one."""

    def change(store: SessionStore) -> dict[str, Any]:
        return _body(store.set_baseline(_session_id(store, session_id), body.start_s, body.end_s))

    return write(request, change)


@router.get(
    "/sessions/{session_id}/baseline",
    response_model=Baseline,
    tags=["baselines"],
    responses=responses(404, 422),
    operation_id="session_baseline",
)
def session_baseline(request: Request, session_id: SessionId) -> dict[str, Any]:
    """The baseline the session is analysed against (404 when it has none)."""
    with workspace(request) as store:
        baseline = store.session_baseline(_session_id(store, session_id))
    if baseline is None:
        raise ApiError(404, "not found", f"session {session_id} has no baseline")
    return _body(baseline)


@router.get(
    "/patients/{patient}/baseline",
    response_model=Baseline,
    tags=["baselines"],
    responses=responses(404, 422),
    operation_id="patient_baseline",
)
def patient_baseline(request: Request, patient: Patient) -> dict[str, Any]:
    """The patient's active baseline (404 when there is none)."""
    with workspace(request) as store:
        baseline = store.active_baseline(patient)
    if baseline is None:
        raise ApiError(404, "not found", f"patient {patient} has no active baseline")
    return _body(baseline)


@router.delete(
    "/patients/{patient}/baseline",
    response_model=Baseline,
    tags=["baselines"],
    responses=responses(404, 422),
    operation_id="clear_baseline",
)
def clear_baseline(request: Request, patient: Patient) -> dict[str, Any]:
    """End the patient's active baseline: it stays in the history and the sessions analysed
    against it keep it; sessions started from now on have none until another is set."""

    def change(store: SessionStore) -> dict[str, Any]:
        if store.active_baseline(patient) is None:
            raise ApiError(404, "not found", f"patient {patient} has no active baseline")
        return _body(store.clear_baseline(patient))

    return write(request, change)


@router.get(
    "/patients/{patient}/baselines",
    response_model=list[Baseline],
    tags=["baselines"],
    responses=responses(422),
    operation_id="patient_baselines",
)
def patient_baselines(request: Request, patient: Patient) -> list[dict[str, Any]]:
    """The patient's baselines, newest first, the replaced ones too (empty when none)."""
    with workspace(request) as store:
        return [_body(b) for b in store.baselines(patient)]


@router.get(
    "/sessions/{session_id}/summary",
    response_model=dict[str, Any],
    tags=["records"],
    responses=responses(404, 422),
    operation_id="summary",
)
def summary(request: Request, session_id: SessionId) -> dict[str, Any]:
    """The session's analytics as ``emotrace sessions show --json``: every figure raw, and under
    ``relative`` against the baseline it is analysed against (``null`` without one)."""
    from emotrace.sessions import rules

    with workspace(request) as store:
        found, _ = rules.report_summaries(store, _session_id(store, session_id))
    out: dict[str, Any] = found.to_dict()
    return out
