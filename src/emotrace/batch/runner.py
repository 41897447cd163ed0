"""The driver: hand videos to workers, index what finishes, record sessions (the one writer).

    >>> from emotrace.batch import find_videos, pipeline_options, run_batch
    >>> report = run_batch(find_videos(["archive/"]), Path("out"), pipeline_options(every=5),
    ...                    engine="ray", workers=8)

A video's row goes into ``index.csv`` (and its session into the workspace) as soon as it
finishes, with Ctrl+C held back meanwhile; so whenever the run stops, every finished video is
indexed and a rerun continues with the rest.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emotrace._interrupts import hold_interrupt, raise_if_interrupted
from emotrace.batch.engines import ENGINES, TRANSFERS, Engine, LocalEngine, RayEngine
from emotrace.batch.index import COMPLETE, BatchIndex
from emotrace.batch.inputs import VideoEntry, VideoPath, output_folders, url_scheme, video_path
from emotrace.batch.worker import MAX_SEND_MB, VideoJob, VideoResult
from emotrace.errors import ConfigError, EmotraceError, SessionError
from emotrace.video.options import PipelineOptions

#: ``progress(kind, total_or_n)``: ``("videos", total)``/``("frames", total)`` set up the bars
#: (``None``: unknown), then ``("video", 1)`` and ``("frame", n)`` advance them.
Progress = Callable[[str, int | None], None]


def pipeline_options(**overrides: Any) -> PipelineOptions:
    """The pipeline options of ``emotrace analyze`` with their defaults, and ``overrides`` (the
    fields of :class:`~emotrace.video.PipelineOptions`: ``model``, ``threads`` (per worker),
    ``detector``, ``detect_every``, ``max_age``, ``smooth``, ``smooth_window``,
    ``smooth_method``, ``hysteresis``, ``every``, ``max_frames``); an unknown name is a
    :class:`ConfigError`."""
    return PipelineOptions.from_dict(overrides)


def threads_per_worker(engine: str, workers: int | None) -> int:
    """OpenCV and onnxruntime threads for each worker when none are asked for: Ray gives each
    actor one CPU; locally the cores are split among the workers, so that workers x threads
    never oversubscribes them."""
    return 1 if engine == "ray" else max(1, default_workers(1) // (workers or 1))


def default_workers(threads: int) -> int:
    """One worker per ``threads`` cores of this machine (the local engine's default)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // threads)


@dataclass
class SessionPlan:
    """Record one session per video into ``workspace`` (names and patients per video)."""

    workspace: Path | None
    names: dict[VideoPath, str]
    patients: dict[VideoPath, str]


def plan_sessions(entries: Sequence[VideoEntry], workspace: Path | None) -> SessionPlan:
    """Session names (the manifest's, else the video's stem) and patients, all checked before
    any video is analysed: valid names, none twice, none already in the workspace."""
    from emotrace.sessions.types import check_name

    names: dict[VideoPath, str] = {}
    patients: dict[VideoPath, str] = {}
    used: dict[str, VideoPath] = {}
    for entry in entries:
        if entry.patient is None:
            raise SessionError(f"{entry.path}: no patient pseudonym for its session")
        name = entry.session or entry.path.stem
        check_name(name, f"session name (of {entry.path.name})")
        check_name(entry.patient, f"patient pseudonym (of {entry.path.name})")
        if name in used:
            raise SessionError(
                f"session name {name!r} is given to both {used[name]} and {entry.path}; "
                "name the sessions in a --manifest"
            )
        used[name] = entry.path
        names[entry.path], patients[entry.path] = name, entry.patient
    return SessionPlan(workspace, names, patients)


def _existing_sessions(workspace: Path | None) -> set[str]:
    from emotrace.sessions.store import SessionStore
    from emotrace.sessions.workspace import resolve_workspace

    if not resolve_workspace(workspace).exists():
        return set()
    with SessionStore(workspace, readonly=True) as store:
        return {info.name for info in store.sessions()}


@dataclass
class BatchReport:
    """What a run did: videos skipped (complete before), complete and failed in this run."""

    out_dir: Path
    skipped: int = 0
    complete: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def videos_per_minute(self) -> float:
        """Finished videos per minute of this run's wall time."""
        done = len(self.complete) + len(self.failed)
        return 60 * done / self.seconds if self.seconds > 0 else 0.0


def _record_session(result: VideoResult, plan: SessionPlan, model: Any) -> None:
    from emotrace.sessions.recorder import SessionRecorder

    assert result.raw_faces is not None and result.summary is not None
    video = video_path(result.video)
    recorder = SessionRecorder(
        plan.names[video],
        plan.patients[video],
        result.raw_faces.classes,
        workspace=plan.workspace,
        source=result.video,
        model=model,
        settings=result.summary["settings"],
        consent=True,  # plan_sessions is only made with the user's word that they consented
    )
    with recorder:
        for index, time_s, faces in result.raw_faces.frames():
            recorder.record(index, time_s, faces)


def _frame_total(jobs: Sequence[VideoJob], every: int) -> int | None:
    """Frames the pending videos hold (for the bar; container metadata, no decoding)."""
    import cv2

    total = 0
    for job in jobs:
        if url_scheme(job.video):  # read by its worker only
            continue
        capture = cv2.VideoCapture(job.video)
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
        capture.release()
        total += -(-max(count, 0) // every)
    return total or None


def run_batch(
    entries: Sequence[VideoEntry | Path | str],
    out_dir: Path,
    options: PipelineOptions,
    *,
    engine: str = "local",
    workers: int | None = None,
    address: str | None = None,
    transfer: str | None = None,
    max_send_mb: int = MAX_SEND_MB,
    sessions: SessionPlan | None = None,
    progress: Progress | None = None,
    log: Callable[[str], None] = print,
) -> BatchReport:
    """Analyse every video not already complete in ``out_dir/index.csv``.

    ``options``: :func:`pipeline_options` (``threads`` per worker; see
    :func:`threads_per_worker`). ``engine``: ``local`` or ``ray`` (``address`` joins a cluster).
    ``transfer`` (Ray): ``send`` streams each video to its worker through the object store and
    takes the records back (no shared filesystem; up to ``max_send_mb`` MiB a video),
    ``shared`` lets workers read and write the driver's paths; default ``send`` when joining a
    cluster (``address``, ``$RAY_ADDRESS``), ``shared`` on a cluster started here.
    ``sessions``: :func:`plan_sessions` to record one session per video. Failed videos are
    indexed with their error and never stop the others; Ctrl+C raises ``KeyboardInterrupt``
    after stopping the workers, with every finished video indexed.
    """
    if engine not in ENGINES:
        raise ConfigError(f"engine {engine!r} is not one of {', '.join(ENGINES)}")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if transfer is not None and transfer not in TRANSFERS:
        raise ConfigError(f"--transfer {transfer!r} is not one of {', '.join(TRANSFERS)}")
    if transfer is not None and engine != "ray":
        raise ConfigError("--transfer needs --engine ray (local workers share this filesystem)")
    if max_send_mb < 1:
        raise ConfigError(f"--max-send-mb must be at least 1, got {max_send_mb}")
    if transfer is None:
        transfer = "send" if address or os.environ.get("RAY_ADDRESS") else "shared"
    videos = [e if isinstance(e, VideoEntry) else VideoEntry(video_path(e)) for e in entries]
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{out_dir}: exists and is not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{out_dir}: cannot create the output folder ({exc.strerror})") from None
    index = BatchIndex(out_dir)
    indexed = {video_path(row.video): row.folder for row in index.rows.values()}
    folders = output_folders([v.path for v in videos], indexed)
    todo = [v for v in videos if not index.is_complete(v.path)]
    report = BatchReport(out_dir, skipped=len(videos) - len(todo))
    model_info = None
    if sessions is not None:
        clash = sorted(
            _existing_sessions(sessions.workspace) & {sessions.names[v.path] for v in todo}
        )
        if clash:
            raise SessionError(
                f"session(s) {', '.join(clash)} already exist in the workspace; delete them or "
                "name the sessions differently in a --manifest"
            )
    if not todo:
        return report

    from emotrace.video.sources import quiet_opencv

    # The model and detector load once here first, so a bad --model fails in one line before
    # any worker starts (and sessions get the model's identity).
    quiet_opencv()
    recognizer = options.recognizer()
    if sessions is not None:
        from emotrace.sessions.types import ModelInfo

        spec = recognizer.classifier.spec
        model_info = ModelInfo.from_model(options.model, name=spec.name, version=spec.version)
    jobs = deque(
        VideoJob(str(v.path), str(out_dir / folders[v.path]), sessions is not None) for v in todo
    )
    if progress is not None:
        progress("videos", len(jobs))
        progress("frames", _frame_total(jobs, options.every))

    started = time.perf_counter()
    runner: Engine
    if engine == "ray":
        runner = RayEngine(options, workers, options.threads, address, transfer, max_send_mb)
    else:
        runner = LocalEngine(options, workers or default_workers(options.threads))
    aborted = True
    try:
        while jobs or runner.busy:
            raise_if_interrupted()
            if not runner.workers:
                raise EmotraceError(
                    f"no Ray worker is left (their nodes left the cluster); {len(jobs)} video(s) "
                    f"not analysed: rerun the same command when the cluster has CPUs again"
                )
            while jobs and runner.free:
                runner.submit(jobs.popleft())
            finished, frames = runner.poll(0.25)
            if progress is not None and frames:
                progress("frame", frames)
            for result in finished:
                with hold_interrupt():
                    _finish_video(result, index, sessions, model_info, report, out_dir)
                report.frames += result.frames
                if progress is not None:
                    progress("video", 1)
                log(_line(result, len(report.complete) + len(report.failed), len(todo)))
        aborted = False
    except KeyboardInterrupt:
        report.interrupted = True
        raise
    finally:
        report.seconds = time.perf_counter() - started
        runner.close(abort=aborted)
    return report


def _finish_video(
    result: VideoResult,
    index: BatchIndex,
    sessions: SessionPlan | None,
    model_info: Any,
    report: BatchReport,
    out_dir: Path,
) -> None:
    """Write the records the worker sent (``send``), record the session (complete videos),
    then the index row: a complete row implies all of them."""
    session = ""
    if result.files is not None:
        try:
            write_records(Path(result.folder), result.files)
        except OSError as exc:
            result.status = "failed"
            result.error = f"{result.folder}: records not written ({exc.strerror or exc})"
    if result.status == COMPLETE and sessions is not None:
        try:
            _record_session(result, sessions, model_info)
            session = sessions.names[video_path(result.video)]
        except Exception as exc:
            from emotrace.batch.worker import describe

            result.status, result.error = "failed", f"session not recorded: {describe(exc)}"
    index.record(result.as_row(folder=os.path.relpath(result.folder, out_dir), session=session))
    (report.complete if result.status == COMPLETE else report.failed).append(result.video)


def write_records(folder: Path, files: dict[str, bytes]) -> None:
    """Write the record files a worker returned into ``folder``, each one atomically
    (``summary.json``, written last, says the others are whole)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in sorted(files, key=lambda n: n == "summary.json"):
        if not name or Path(name).name != name or name.startswith("."):
            raise OSError(f"a worker returned a record named {name!r}")
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(files[name])
        os.replace(tmp, folder / name)


def _line(result: VideoResult, done: int, total: int) -> str:
    name = Path(result.video).name
    if result.status == COMPLETE:
        return (
            f"[{done}/{total}] {name}: {result.frames} frames, {result.faces} faces "
            f"({result.processed_fps:.1f} frames/s)"
        )
    return f"[{done}/{total}] {name}: failed: {result.error}"
