"""``emotrace batch``: many videos into per-video records, on a process pool or on Ray.

Thin: parse, find the videos (and sessions), call :func:`emotrace.batch.run_batch`, print.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from emotrace.cli._common import add_workspace_option, console, positive_int, progress_factory
from emotrace.cli._pipeline import add_pipeline_options, add_source_options, pipeline_options_from
from emotrace.video.defaults import DEFAULT_FILE_MODEL

EXIT_SOME_FAILED = 1
MAX_SEND_MB = 2048  # emotrace.batch.worker.MAX_SEND_MB, without importing numpy to parse


def add_parser(sub: Any) -> None:
    """Register ``batch``."""
    p = sub.add_parser(
        "batch",
        help="analyse many videos (files, folders, globs or a manifest) locally or on Ray",
        description="Analyse many videos into OUT_DIR/<video stem>/ (frames.csv, frames.jsonl, "
        "summary.json) and OUT_DIR/index.csv. A rerun skips the videos already complete. "
        "Exit code 1 when some videos failed (their errors are in index.csv).",
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="video files, folders or globs")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT_DIR")
    p.add_argument(
        "--manifest",
        type=Path,
        metavar="CSV",
        help="videos from a CSV with columns video,patient[,session] (instead of INPUT)",
    )
    p.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: a process pool on this machine (default); ray: Ray actors",
    )
    p.add_argument(
        "--address",
        metavar="ADDR",
        help="Ray cluster to join (HOST:PORT or auto; default: $RAY_ADDRESS, else a local one); "
        "a cluster with token authentication needs RAY_AUTH_MODE=token and its token "
        "(RAY_AUTH_TOKEN or ~/.ray/auth_token) here too",
    )
    p.add_argument(
        "--transfer",
        choices=("send", "shared"),
        help="ray: send streams each video to its worker through Ray's object store and takes "
        "the records back (no shared filesystem); shared lets workers read the videos and write "
        "OUT_DIR themselves (faster, needs both on every node); default: send when joining a "
        "cluster, shared on one started here",
    )
    p.add_argument(
        "--max-send-mb",
        type=positive_int,
        default=MAX_SEND_MB,
        metavar="MIB",
        help=f"largest video --transfer send moves (default {MAX_SEND_MB}); larger ones fail",
    )
    p.add_argument(
        "--workers",
        metavar="N",
        help="parallel videos, one model each (default: local, one per core; ray, the "
        "cluster's CPUs / --threads)",
    )
    p.add_argument(
        "--every", type=positive_int, default=1, metavar="N", help="process one frame in N"
    )
    rec = p.add_argument_group("sessions (one recorded session per video)")
    rec.add_argument(
        "--session-per-video",
        action="store_true",
        help="record each video as a session named after it (or the manifest's session column)",
    )
    rec.add_argument(
        "--patient-from",
        metavar="REGEX",
        help="the patient pseudonym: this regex's group 'patient' (or first group) in the path",
    )
    rec.add_argument(
        "--consent",
        action="store_true",
        help="the patients consented to being recorded (required with --session-per-video)",
    )
    add_workspace_option(rec)
    # --threads is per worker; unset, the cores are split among the workers.
    # Recordings: the detector and decoding cost more than the classifier, so the ensemble.
    add_pipeline_options(p, threads_default=None, model_default=DEFAULT_FILE_MODEL)
    add_source_options(p)
    p.set_defaults(handler=run)


def _workers(text: str | None) -> int | None:
    from emotrace.errors import ConfigError

    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"--workers must be a whole number, got {text!r}") from None
    if value < 1:
        raise ConfigError(f"--workers must be at least 1, got {value}")
    return value


def _entries(args: argparse.Namespace) -> tuple[list[Any], Any]:
    """The videos and, with --session-per-video, the session plan."""
    from emotrace.batch import (
        VideoEntry,
        find_videos,
        patient_from,
        plan_sessions,
        read_manifest,
    )
    from emotrace.errors import ConfigError

    if args.manifest is not None and args.inputs:
        raise ConfigError("give videos as INPUT or as --manifest CSV, not both")
    if args.manifest is None and not args.inputs:
        raise ConfigError("give videos (files, folders or globs) or --manifest CSV")
    if args.patient_from is not None and not args.session_per_video:
        raise ConfigError("--patient-from needs --session-per-video")
    if args.session_per_video and args.manifest is None and args.patient_from is None:
        raise ConfigError(
            "--session-per-video needs the patients: --patient-from REGEX or --manifest CSV"
        )
    if args.consent and not args.session_per_video:
        raise ConfigError("--consent needs --session-per-video")
    if args.session_per_video and args.manifest is not None and args.patient_from is not None:
        raise ConfigError("the patients come from --manifest or --patient-from, not both")
    if args.manifest is not None:
        entries: list[VideoEntry] = read_manifest(args.manifest, args.session_per_video)
    elif args.patient_from is not None:
        entries = patient_from(args.patient_from, find_videos(args.inputs))
    else:
        entries = [VideoEntry(path) for path in find_videos(args.inputs)]
    plan = plan_sessions(entries, args.workspace) if args.session_per_video else None
    if plan is not None and not args.consent:  # after the names and patients were checked
        raise ConfigError(
            "--session-per-video needs --consent (the patients' consent to record), as "
            "analyze --session and the web app do"
        )
    return entries, plan


def run(args: argparse.Namespace) -> int:
    """Analyse the videos; exit code 1 when some failed."""
    from emotrace.batch import BatchIndex, run_batch
    from emotrace.batch.runner import threads_per_worker
    from emotrace.errors import ConfigError

    workers = _workers(args.workers)
    threads = args.threads or threads_per_worker(args.engine, workers)
    options = pipeline_options_from(args, threads=threads)
    if args.address is not None and args.engine != "ray":
        raise ConfigError("--address needs --engine ray")
    entries, plan = _entries(args)
    with progress_factory() as make:
        bars: dict[str, Any] = {}

        def progress(kind: str, value: int | None) -> None:
            if kind in ("videos", "frames"):
                bars[kind] = make(kind, value)
            else:
                bars[kind + "s"](value or 0)

        try:
            report = run_batch(
                entries,
                args.output,
                options,
                engine=args.engine,
                workers=workers,
                address=args.address,
                transfer=args.transfer,
                max_send_mb=args.max_send_mb,
                sessions=plan,
                progress=progress,
                log=lambda line: console.print(line, markup=False),
            )
        except KeyboardInterrupt:
            rows = BatchIndex(args.output).rows.values() if args.output.is_dir() else []
            done = sum(row.status == "complete" for row in rows)
            print(
                f"emotrace: stopped; {done} complete video(s) are indexed in "
                f"{args.output / 'index.csv'}: rerun the same command to continue",
                file=sys.stderr,
            )
            raise
    index = args.output / "index.csv"
    ran = len(report.complete) + len(report.failed)
    if report.skipped:
        console.print(f"skipped {report.skipped} video(s) already complete in {index}")
    if ran:
        console.print(
            f"{len(report.complete)} complete, {len(report.failed)} failed: {report.frames} "
            f"frames in {report.seconds:.1f} s ({report.videos_per_minute:.1f} videos/min); "
            f"index {index}",
            markup=False,
        )
    if report.failed:
        print(
            f"emotrace: warning: {len(report.failed)} of {ran} video(s) failed; their errors "
            f"are in {index} (a rerun retries them)",
            file=sys.stderr,
        )
        return EXIT_SOME_FAILED
    return 0
