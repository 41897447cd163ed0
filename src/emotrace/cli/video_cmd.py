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
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emotrace._interrupts import acknowledge_interrupt, hold_interrupt, raise_if_interrupted
from emotrace.cli._common import (
    add_detector_options,
    console,
    detector_from_args,
    detector_name,
    detector_tuning,
    err_console,
    fraction_below_one,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    progress_factory,
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
    from emotrace.runtime.recognizer import EmotionRecognizer
    from emotrace.video import EmotionSmoother, FaceTracker, FrameSource, VideoOutputs

WINDOW = "emotrace live (q or Esc to stop)"
#: emotrace.video.pipeline.DEFAULT_DETECT_EVERY, repeated so that building the parser imports no
#: OpenCV (``emotrace --help`` stays instant); a test checks that they agree.
DEFAULT_DETECT_EVERY = 2
#: emotrace.video.smoothing.DEFAULT_WINDOW_S, repeated for the same reason.
DEFAULT_SMOOTH_WINDOW_S = 0.4
KEY_ESC = 27


def _add_pipeline_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", default="default", help="default, default-int8, an .onnx file or a run folder"
    )
    p.add_argument("--threads", type=positive_int, default=1, help="inference/OpenCV threads")
    det = p.add_argument_group("face detection")
    add_detector_options(det)
    det.add_argument(
        "--detect-every",
        type=positive_int,
        default=DEFAULT_DETECT_EVERY,
        metavar="N",
        help="run the detector on every N-th frame, track faces in between (default 2; 1: all)",
    )
    det.add_argument(
        "--max-age",
        type=non_negative_float,
        default=1.0,
        metavar="S",
        help="a face unseen this long gets a new id",
    )
    smo = p.add_argument_group("smoothing")
    smo.add_argument("--no-smooth", action="store_true", help="show raw per-frame predictions")
    smo.add_argument(
        "--smooth-window",
        type=positive_float,
        default=DEFAULT_SMOOTH_WINDOW_S,
        metavar="S",
        help=f"seconds averaged (default {DEFAULT_SMOOTH_WINDOW_S}; same at any frame rate)",
    )
    smo.add_argument("--smooth-method", choices=("ema", "window"), default="ema")
    smo.add_argument(
        "--hysteresis",
        type=fraction_below_one,
        default=0.1,
        metavar="P",
        help="lead another class needs before the shown label changes",
    )
    src = p.add_argument_group("source")
    src.add_argument("--max-frames", type=positive_int, metavar="N", help="stop after N frames")
    src.add_argument(
        "--timeout", type=positive_float, default=10.0, metavar="S", help="stream open/read timeout"
    )
    src.add_argument(
        "--reconnects",
        type=non_negative_int,
        default=3,
        metavar="N",
        help="reopen a stalled stream or camera this many times, then stop",
    )


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
    _add_pipeline_options(live)
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
    _add_pipeline_options(analyze)
    add_recording_options(analyze)
    analyze.set_defaults(handler=run_analyze)


def _quiet_opencv() -> None:
    """Silence OpenCV's and FFmpeg's own stderr chatter: errors reach the user as one line."""
    # FFmpeg reads its level once, when OpenCV first opens a video; a user's setting wins.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


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


def _recognizer(args: argparse.Namespace) -> EmotionRecognizer:
    import cv2

    from emotrace.runtime.recognizer import EmotionRecognizer

    cv2.setNumThreads(args.threads)
    detector = detector_from_args(args)
    return EmotionRecognizer(model=args.model, detector=detector, threads=args.threads)


def _settings(args: argparse.Namespace, recognizer: EmotionRecognizer) -> dict[str, Any]:
    spec = recognizer.classifier.spec
    smoothing = None
    if not args.no_smooth:
        smoothing = {
            "method": args.smooth_method,
            "window_s": args.smooth_window,
            "hysteresis": args.hysteresis,
        }
    return {
        "model": spec.summary(),
        "detector": detector_name(args),
        "detector_tuning": detector_tuning(args, used_only=True),
        "min_face": args.min_face,
        "max_side": args.max_side or None,
        "detect_every": args.detect_every,
        "every": getattr(args, "every", 1),
        "max_age_s": args.max_age,
        "smoothing": smoothing,
    }


def _note_earlier_video(folder: Path, annotated: bool) -> None:
    """Say so when the folder keeps an annotated video this run does not replace: the records
    beside it are new, the video is not (emotrace deletes no video it was once asked for)."""
    from emotrace.video.sinks import VIDEO_NAME

    if not annotated and (folder / VIDEO_NAME).exists():
        err_console.print(
            f"emotrace: note: {folder / VIDEO_NAME} is from an earlier run and does not match "
            "the new records (rerun with --annotated to replace it, or delete it)"
        )


def _tracking(args: argparse.Namespace) -> tuple[FaceTracker, EmotionSmoother | None]:
    """The tracker and smoother for these options, built (and so checked) before any output
    folder or session is opened: a bad setting must not cost earlier records."""
    from emotrace.video import EmotionSmoother, FaceTracker

    smoother = None
    if not args.no_smooth:
        smoother = EmotionSmoother(args.smooth_window, args.smooth_method, args.hysteresis)
    return FaceTracker(max_age_s=args.max_age), smoother


def _run(
    args: argparse.Namespace,
    recognizer: EmotionRecognizer,
    source: FrameSource,
    tracking: tuple[FaceTracker, EmotionSmoother | None],
) -> Any:
    """The pipeline generator for these options."""
    from emotrace.video import process

    tracker, smoother = tracking
    return process(
        source,
        recognizer,
        detect_every=args.detect_every,
        tracker=tracker,
        smoother=smoother,
        smooth=not args.no_smooth,
        max_frames=args.max_frames,
    )


def _finish(
    outputs: VideoOutputs, source: FrameSource, stop: str, error: BaseException | None
) -> dict[str, Any]:
    frames = max(outputs.stats.frames, 1)
    outputs.extra = {
        "capture_thread_ms_per_frame": round(1000 * source.capture_seconds / frames, 3),
        "dropped_frames": source.dropped,
        "reconnects": source.reconnects,
        "skipped_images": source.skipped,
    }
    outputs.stop_reason = stop
    return outputs.close(error)


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


def run_analyze(args: argparse.Namespace) -> int:
    """Process a whole source into records (and an annotated video) and/or a session."""
    from emotrace.errors import ConfigError

    if args.output is None and (args.session is None or args.annotated):
        raise ConfigError("give -o OUT_DIR (records, --annotated) and/or --session NAME")
    check_recording_options(args)
    _quiet_opencv()
    tracking = _tracking(args)
    from emotrace.annotate import draw_overlay
    from emotrace.video import FpsMeter, VideoOutputs, open_source

    recognizer = _recognizer(args)
    source = open_source(
        args.video, every=args.every, timeout_s=args.timeout, reconnects=args.reconnects
    )
    info = source.info
    outputs = None
    try:
        fps = info.fps / args.every if info.fps else None
        if args.output is not None:
            outputs = VideoOutputs(
                args.output,
                recognizer.classifier.classes,
                info,
                annotated=args.annotated,
                fps=fps,
                settings=_settings(args, recognizer),
            )
            _note_earlier_video(args.output, args.annotated)
        recorder = start_recorder(args, recognizer, args.video, _settings(args, recognizer))
    except BaseException:
        source.close()
        raise
    total = math.ceil(info.frame_count / args.every) if info.frame_count else None
    if args.max_frames:
        total = min(total or args.max_frames, args.max_frames)
    results = _run(args, recognizer, source, tracking)
    meter, error = FpsMeter(), None
    try:
        with progress_factory() as make:
            advance = make(f"analyzing {Path(info.name).name}", total)
            for result in results:
                meter.tick()
                canvas = None
                if args.annotated and outputs is not None:
                    t0 = time.perf_counter()
                    canvas = draw_overlay(result.image, result.faces, meter.fps)
                    outputs.stats.add_time("overlay", time.perf_counter() - t0)
                with hold_interrupt():
                    if outputs is not None:
                        outputs.write(result, canvas)
                    if recorder is not None:
                        recorder.record(result.index, result.time_s, result.raw)
                advance(1)
    except BaseException as exc:
        error = exc
        raise
    finally:
        results.close()
        stop = source.stop_reason
        if recorder is not None:
            recorder.close("interrupted" if error else "complete")
        if outputs is not None:
            if args.max_frames and outputs.stats.frames >= args.max_frames:
                stop = "max-frames"
            summary = _finish(outputs, source, stop, error)
    if outputs is not None:
        _report(summary, args.output)
    if recorder is not None:
        print_recorded(recorder)
    _warn_if_stalled(stop, source, args.reconnects)
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
    tracking = _tracking(args)
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
    _quiet_opencv()
    import cv2

    from emotrace.annotate import draw_overlay
    from emotrace.video import FpsMeter, VideoOutputs, open_source

    recognizer = _recognizer(args)
    source = open_source(args.camera, timeout_s=args.timeout, reconnects=args.reconnects)
    outputs = None
    if args.record is not None:
        try:
            outputs = VideoOutputs(
                args.record,
                recognizer.classifier.classes,
                source.info,
                annotated=args.annotated,
                settings=_settings(args, recognizer),
            )
            _note_earlier_video(args.record, args.annotated)
        except BaseException:
            source.close()
            raise
    try:
        recorder = start_recorder(args, recognizer, args.camera, _settings(args, recognizer))
    except BaseException:
        source.close()
        raise
    results = _run(args, recognizer, source, tracking)
    meter, error, stop, frames = FpsMeter(), None, "", 0
    try:
        for result in results:
            raise_if_interrupted()
            meter.tick()
            frames += 1
            # The overlay is drawn only where it is shown or kept: a window-less run stores numbers.
            canvas = (
                draw_overlay(result.image, result.faces, meter.fps)
                if window or args.annotated
                else None
            )
            if outputs is not None:
                with hold_interrupt():
                    outputs.write(result, canvas)
            if recorder is not None:
                recorder.record(result.index, result.time_s, result.raw)
            if window and canvas is not None:
                cv2.imshow(WINDOW, canvas)
                key = cv2.waitKey(1) & 0xFF
                if (
                    key in (ord("q"), KEY_ESC)
                    or cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1
                ):
                    stop = "key"
                    break
    except KeyboardInterrupt:
        stop = "interrupted"  # Ctrl+C is how a window-less live run ends: not an error
        acknowledge_interrupt()
    except BaseException as exc:
        error = exc
        raise
    finally:
        results.close()
        if window:
            cv2.destroyAllWindows()
        if not stop:
            stop = source.stop_reason
            if args.max_frames and frames >= args.max_frames:
                stop = "max-frames"
        if outputs is not None:
            summary = _finish(outputs, source, stop, error)
        if recorder is not None:  # Ctrl+C or q ends a live session normally
            recorder.close("interrupted" if error else "complete")
    if outputs is not None:
        _report(summary, args.record)
    if recorder is not None:
        print_recorded(recorder)
    _warn_if_stalled(stop, source, args.reconnects)
    return 0
