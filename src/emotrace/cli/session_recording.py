"""The ``--session`` options that ``emotrace live`` and ``emotrace analyze`` share.

How a command uses them::

    add_recording_options(parser)              # --session --patient --consent ...
    check_recording_options(args)              # before opening the camera or file
    recorder = start_recorder(args, recognizer, source_name, settings)  # None without --session
    for result in results:
        recorder.record(result.index, result.time_s, result.raw)
    recorder.close("complete")                 # "interrupted" after an error
    print_recorded(recorder)
"""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING, Any

from emotrace.cli._common import add_workspace_option, console, positive_int

if TYPE_CHECKING:
    from emotrace.runtime.recognizer import EmotionRecognizer
    from emotrace.sessions.recorder import SessionRecorder


def add_recording_options(p: argparse.ArgumentParser) -> None:
    """``--session NAME --patient PSEUDONYM --consent [--workspace DIR] [--patient-track ID]``."""
    g = p.add_argument_group("session recording (telepsychology)")
    g.add_argument("--session", metavar="NAME", help="record the patient's emotions as a session")
    g.add_argument(
        "--patient",
        metavar="PSEUDONYM",
        help="the patient's pseudonym (never a real name); needed with --session",
    )
    g.add_argument(
        "--consent",
        action="store_true",
        help="the patient consented to this recording; needed with --session",
    )
    g.add_argument(
        "--patient-track",
        type=positive_int,
        metavar="ID",
        help="track id of the patient, from 1 (default: the largest, most persistent face)",
    )
    add_workspace_option(g)


def check_recording_options(args: argparse.Namespace) -> None:
    """Fail early, before a camera or file is opened, on bad ``--session`` options."""
    from emotrace.errors import SessionError
    from emotrace.sessions.store import SessionStore
    from emotrace.sessions.types import check_name
    from emotrace.sessions.workspace import resolve_workspace

    if args.session is None:
        for flag, given in (
            ("--patient", args.patient is not None),
            ("--patient-track", args.patient_track is not None),
            ("--consent", args.consent),
        ):
            if given:
                raise SessionError(f"{flag} needs --session NAME")
        return
    if args.patient is None:
        raise SessionError("--session needs --patient PSEUDONYM (never the patient's real name)")
    args.session = check_name(args.session, "session name")
    args.patient = check_name(args.patient, "patient pseudonym")
    if resolve_workspace(args.workspace).exists():
        from emotrace.sessions.rules import ensure_name_free

        with SessionStore(args.workspace, readonly=True) as store:
            ensure_name_free(store, args.session, args.patient)
    if not args.consent:  # as the web app: nothing is recorded without the patient's consent
        raise SessionError("--session needs --consent (the patient's consent to record)")


def start_recorder(
    args: argparse.Namespace,
    recognizer: EmotionRecognizer,
    source: str,
    settings: dict[str, Any],
) -> SessionRecorder | None:
    """A started :class:`SessionRecorder` when ``--session`` was given, else ``None``.

    Feed it ``recorder.record(result.index, result.time_s, result.raw)`` per pipeline result
    (raw: unsmoothed probabilities; the analytics smooth on their own) and end it with
    ``recorder.close("complete")`` (``"interrupted"`` after an error).
    """
    from emotrace.sessions.recorder import SessionRecorder
    from emotrace.sessions.types import ModelInfo

    check_recording_options(args)
    if args.session is None:
        return None
    spec = recognizer.classifier.spec
    recorder = SessionRecorder(
        args.session,
        args.patient,
        spec.classes,
        workspace=args.workspace,
        source=source,
        model=ModelInfo.from_model(args.model, name=spec.name, version=spec.version),
        settings=settings,
        consent=args.consent,
        track_id=args.patient_track,
    )
    return recorder.start()


def print_recorded(recorder: SessionRecorder) -> None:
    """One line about the session just recorded."""
    info = recorder.info
    if info is None:
        return
    ratio = info.coverage.visible_ratio if info.coverage else math.nan
    visible = "0%" if math.isnan(ratio) else f"{ratio:.0%}"
    console.print(
        f"session {info.name} ({info.status}): {info.frames} frames, patient's face in "
        f"{visible} of the recorded time; see it with: emotrace report {info.patient}/{info.name}",
        markup=False,
    )
