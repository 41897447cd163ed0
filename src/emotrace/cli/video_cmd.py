"""``emotrace live`` and ``emotrace analyze``: the video pipeline from the command line.

Both commands are thin: parse, build a recognizer, open the source, loop over
:func:`emotrace.video.process`, hand each result to the overlay and the sinks.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emotrace.cli._common import console, err_console, positive_int, progress_factory
from emotrace.cli._pipeline import (
    add_crowd_options,
    add_pipeline_options,
    add_source_options,
    crowd_options_from,
    pipeline_options_from,
)
from emotrace.cli.serve_cmd import add_server_options
from emotrace.cli.session_recording import (
    add_recording_options,
    check_recording_options,
    print_recorded,
    start_recorder,
)
from emotrace.errors import EmotraceError

if TYPE_CHECKING:
    from emotrace.video import FrameResult, FrameSource, PipelineOptions

WINDOW = "emotrace live (q or Esc to stop)"
KEY_ESC = 27


def add_parser(sub: Any) -> None:
    """Register ``live`` and ``analyze``."""
    live = sub.add_parser("live", help="webcam or stream with a live emotion overlay (q/Esc stops)")
    live.add_argument(
        "--camera",
        default="0",
        metavar="SOURCE",
        help="camera index (default 0), or a stream URL or video file",
    )
    live.add_argument(
        "--record",
        type=Path,
        metavar="OUT_DIR",
        help="also write per-frame records and summary.json here (numbers only)",
    )
    live.add_argument(
        "--annotated",
        action="store_true",
        help="with --record: also write annotated.mp4 (frames with faces; opt-in for privacy)",
    )
    live.add_argument(
        "--no-window", action="store_true", help="no window (needs --record); Ctrl+C stops"
    )
    add_pipeline_options(live)
    add_crowd_options(live)
    add_source_options(live)
    add_recording_options(live)
    add_server_options(live)
    live.set_defaults(handler=run_live)

    analyze = sub.add_parser(
        "analyze", help="per-frame emotion records (CSV, JSON Lines) for a video, stream or images"
    )
    analyze.add_argument("video", help="video file, image, folder of images, stream URL or camera")
    analyze.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="OUT_DIR",
        help="output folder for per-frame records (optional with --session)",
    )
    analyze.add_argument("--annotated", action="store_true", help="also write annotated.mp4")
    analyze.add_argument(
        "--every", type=positive_int, default=1, metavar="N", help="process one frame in N"
    )
    add_pipeline_options(analyze)
    add_source_options(analyze)
    add_recording_options(analyze)
    analyze.set_defaults(handler=run_analyze)


def _require_window() -> None:
    import cv2

    gui = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    if gui is not None and gui.group(1).upper() == "NONE":
        from emotrace.errors import VideoError

        raise VideoError(
            "this OpenCV build has no window support (opencv-python-headless): "
            "use --no-window --record OUT_DIR, or install opencv-python for the window"
        )
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        from emotrace.errors import VideoError

        raise VideoError("no display to open a window on: use --no-window --record OUT_DIR")


def _note_earlier_video(folder: Path, annotated: bool) -> None:
    """Say so when the folder keeps an annotated video this run does not replace: the records
    beside it are new, the video is not (emotrace deletes no video it was once asked for)."""
    from emotrace.video.sinks import VIDEO_NAME

    if not annotated and (folder / VIDEO_NAME).exists():
        err_console.print(
            f"emotrace: note: {folder / VIDEO_NAME} is from an earlier run and does not match "
            "the new records (rerun with --annotated to replace it, or delete it)"
        )


def _report(summary: dict[str, Any], folder: Path) -> None:
    console.print(
        f"{summary['frames']} frames in {summary['wall_seconds']:.1f} s "
        f"({summary['processed_fps']:.1f} frames/s): {summary['frames_with_faces']} with faces, "
        f"{summary['tracks']} track(s)"
    )
    names = [*summary["outputs"].values(), "summary.json"]
    console.print("wrote " + ", ".join(str(folder / n) for n in names))


def _warn_if_stalled(stop: str, source: FrameSource, attempts: int) -> None:
    if stop == "stalled":
        print(
            f"emotrace: warning: {source.info.name} stopped delivering frames; stopped after "
            f"{attempts} reconnect attempt(s), everything processed until then is kept",
            file=sys.stderr,
        )


def _options(args: argparse.Namespace) -> PipelineOptions:
    """The run's options, checked (with OpenCV's own logging silenced) before any output folder
    or session is opened: a bad setting must not cost earlier records."""
    from emotrace.video.sources import quiet_opencv

    options = pipeline_options_from(args)
    quiet_opencv()
    return options


def run_analyze(args: argparse.Namespace) -> int:
    """Process a whole source into records (and an annotated video) and/or a session."""
    from emotrace.errors import ConfigError
    from emotrace.video import VideoOutputs, analyze_source, open_source

    if args.output is None and (args.session is None or args.annotated):
        raise ConfigError("give -o OUT_DIR (records, --annotated) and/or --session NAME")
    check_recording_options(args)
    options = _options(args)
    recognizer = options.recognizer()
    source = open_source(
        args.video, every=options.every, timeout_s=args.timeout, reconnects=args.reconnects
    )
    info = source.info
    outputs = None
    try:
        settings = options.record(recognizer.classifier)
        if args.output is not None:
            outputs = VideoOutputs(
                args.output,
                recognizer.classifier.classes,
                info,
                annotated=args.annotated,
                fps=info.fps / options.every if info.fps else None,
                settings=settings,
            )
            _note_earlier_video(args.output, args.annotated)
        recorder = start_recorder(args, recognizer, args.video, settings)
    except BaseException:
        source.close()
        raise
    total = math.ceil(info.frame_count / options.every) if info.frame_count else None
    if options.max_frames:
        total = min(total or options.max_frames, options.max_frames)
    with progress_factory() as make:
        advance = make(f"analyzing {Path(info.name).name}", total)
        run = analyze_source(
            source,
            options,
            recognizer,
            outputs=outputs,
            recorder=recorder,
            overlay=args.annotated and outputs is not None,
            on_frame=lambda result, overlay: advance(1),
        )
    if run.summary is not None:
        _report(run.summary, args.output)
    if recorder is not None:
        print_recorded(recorder)
    _warn_if_stalled(run.stop, source, args.reconnects)
    return 0


def _web_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("fastapi", "uvicorn"))


def _run_web_live(args: argparse.Namespace, why: str) -> int:
    """No OpenCV window here: serve the web app and open its live page in the browser instead."""
    from urllib.parse import urlencode

    from emotrace.cli.serve_cmd import config_from
    from emotrace.server.runner import serve

    reason = why.split(":")[0]
    print(
        f"emotrace: {reason}; opening emotrace's live page in your browser instead "
        "(it uses the browser's camera; --no-window --record OUT_DIR records without a window)",
        file=sys.stderr,
    )
    if args.record is not None:
        print(
            "emotrace: warning: --record applies to --no-window runs; the page records sessions "
            "into the workspace",
            file=sys.stderr,
        )
    query = {"source": "camera"}
    if args.patient:
        query["patient"] = args.patient
    if args.session:
        query["name"] = args.session
    serve(config_from(args), open_browser=True, fragment="/new?" + urlencode(query))
    return 0


def run_live(args: argparse.Namespace) -> int:
    """Show (and optionally record) a camera or stream until q/Esc, Ctrl+C or its end."""
    from emotrace.errors import ConfigError

    if args.no_window and args.record is None and args.session is None:
        raise ConfigError(
            "--no-window needs --record OUT_DIR or --session NAME (otherwise nothing is kept)"
        )
    if args.annotated and args.record is None:
        raise ConfigError("--annotated needs --record OUT_DIR (where annotated.mp4 goes)")
    check_recording_options(args)
    options = _options(args)
    window = not args.no_window
    if window:
        try:
            _require_window()
        except EmotraceError as exc:
            if not _web_available():
                raise EmotraceError(
                    f"{exc}; or pip install 'emotrace[serve]' for the web view"
                ) from None
            return _run_web_live(args, str(exc))
    from emotrace.video import VideoOutputs, analyze_source, open_source

    crowd = crowd_options_from(args)
    recognizer = options.recognizer(crowd)
    source = open_source(args.camera, timeout_s=args.timeout, reconnects=args.reconnects)
    outputs = None
    try:
        settings = {**options.record(recognizer.classifier), **crowd.record(recognizer.crowd)}
        if args.record is not None:
            outputs = VideoOutputs(
                args.record,
                recognizer.classifier.classes,
                source.info,
                annotated=args.annotated,
                settings=settings,
            )
            _note_earlier_video(args.record, args.annotated)
        recorder = start_recorder(args, recognizer, args.camera, settings)
    except BaseException:
        source.close()
        raise
    try:
        run = analyze_source(
            source,
            options,
            recognizer,
            outputs=outputs,
            recorder=recorder,  # Ctrl+C or q ends a live session normally
            # The overlay is drawn only where it is shown or kept: a window-less run stores
            # numbers.
            overlay=window or args.annotated,
            on_frame=_show if window else None,
            interrupt_ends_run=True,  # Ctrl+C is how a window-less live run ends: not an error
        )
    finally:
        if window:
            import cv2

            cv2.destroyAllWindows()
    if run.summary is not None:
        _report(run.summary, args.record)
    if recorder is not None:
        print_recorded(recorder)
    _warn_if_stalled(run.stop, source, args.reconnects)
    return 0


def _show(result: FrameResult, overlay: Any) -> bool:
    """Show the annotated frame; ``False`` once the user pressed q or Esc or closed the window."""
    import cv2

    cv2.imshow(WINDOW, overlay)
    key = cv2.waitKey(1) & 0xFF
    return not (
        key in (ord("q"), KEY_ESC) or cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1
    )
