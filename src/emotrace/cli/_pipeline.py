"""The pipeline options of ``analyze``, ``live``, ``batch`` and ``serve``: one set of flags, read
into one :class:`~emotrace.video.PipelineOptions`.

The defaults shown in ``--help`` come from :mod:`emotrace.video.defaults` and
:mod:`emotrace.faces.defaults`, which import no OpenCV, so building the parser stays instant.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from emotrace.bundled import MODEL_CHOICES_HELP
from emotrace.cli._common import (
    fraction_below_one,
    max_side_px,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from emotrace.faces.defaults import DEFAULT_MAX_SIDE, TUNING_DEFAULTS
from emotrace.faces.settings import DetectorSettings
from emotrace.video.defaults import (
    DEFAULT_CROWD_FACES,
    DEFAULT_CROWD_MODEL,
    DEFAULT_DETECT_EVERY,
    DEFAULT_HYSTERESIS,
    DEFAULT_MAX_AGE_S,
    DEFAULT_SMOOTH_WINDOW_S,
    SMOOTH_METHODS,
)
from emotrace.video.options import CrowdOptions, PipelineOptions

_YUNET = TUNING_DEFAULTS["yunet"]
_HAAR = TUNING_DEFAULTS["haar"]


def add_detector_options(parser: Any, *, max_side: bool = True) -> None:
    """Face-detector options (a parser or an argument group): ``predict`` and every video
    command."""
    parser.add_argument(
        "--detector",
        choices=("yunet", "haar"),
        help="face detector (default: the bundled YuNet; haar: OpenCV's Haar cascade)",
    )
    parser.add_argument(
        "--detector-model",
        type=Path,
        metavar="PATH",
        help="your own YuNet .onnx file, or a Haar cascade .xml",
    )
    parser.add_argument(
        "--min-face",
        type=non_negative_int,
        metavar="PX",
        help="smallest face side the detector reports (default: yunet 10, haar 30)",
    )
    parser.add_argument(
        "--score-threshold",
        type=float,
        metavar="P",
        help=f"YuNet: least confidence of a face (default {_YUNET['score_threshold']})",
    )
    parser.add_argument(
        "--nms-threshold",
        type=float,
        metavar="IOU",
        help=f"YuNet: overlap above which two faces are merged (default {_YUNET['nms_threshold']})",
    )
    parser.add_argument(
        "--scale-factor",
        type=float,
        metavar="F",
        help=f"Haar: image-pyramid step, > 1 (speed/recall; default {_HAAR['scale_factor']})",
    )
    if max_side:
        parser.add_argument(
            "--max-side",
            type=max_side_px,
            default=DEFAULT_MAX_SIDE,
            metavar="PX",
            help=f"detect on a copy downscaled to this longer side (default {DEFAULT_MAX_SIDE}; "
            "0: never downscale)",
        )


def detector_settings_from(args: argparse.Namespace) -> DetectorSettings:
    """The :class:`DetectorSettings` the options of :func:`add_detector_options` describe
    (a setting of the detector not in use is a :class:`~emotrace.errors.ConfigError`)."""
    return DetectorSettings(
        kind=args.detector,
        model=args.detector_model,
        min_size=args.min_face,
        score_threshold=args.score_threshold,
        nms_threshold=args.nms_threshold,
        scale_factor=args.scale_factor,
        max_side=getattr(args, "max_side", DEFAULT_MAX_SIDE) or None,
    )


def add_pipeline_options(
    p: argparse.ArgumentParser, *, threads_default: int | None = 1, model_default: str = "default"
) -> None:
    """Model, detector, tracking and smoothing: the same flags, defaults and checks for
    ``analyze``, ``live``, ``batch`` and ``serve`` (only the model and threads defaults differ:
    ``batch`` analyses recordings with ``accurate``, on every core)."""
    p.add_argument(
        "--model", default=model_default, help=f"{MODEL_CHOICES_HELP} (default {model_default})"
    )
    p.add_argument(
        "--threads",
        type=positive_int,
        default=threads_default,
        help="onnxruntime/OpenCV threads"
        + (f" (default {threads_default})" if threads_default else ""),
    )
    det = p.add_argument_group("face detection")
    add_detector_options(det)
    det.add_argument(
        "--detect-every",
        type=positive_int,
        default=DEFAULT_DETECT_EVERY,
        metavar="N",
        help=f"run the detector on every N-th frame, track faces in between "
        f"(default {DEFAULT_DETECT_EVERY}; 1: all)",
    )
    det.add_argument(
        "--max-age",
        type=non_negative_float,
        default=DEFAULT_MAX_AGE_S,
        metavar="S",
        help=f"a face unseen this long gets a new id (default {DEFAULT_MAX_AGE_S})",
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
    smo.add_argument("--smooth-method", choices=SMOOTH_METHODS, default="ema")
    smo.add_argument(
        "--hysteresis",
        type=fraction_below_one,
        default=DEFAULT_HYSTERESIS,
        metavar="P",
        help=f"lead another class needs before the shown label changes "
        f"(default {DEFAULT_HYSTERESIS})",
    )


def add_crowd_options(p: argparse.ArgumentParser) -> None:
    """The live views' switch to a cheaper model on crowded frames: ``live`` and ``serve``."""
    crowd = p.add_argument_group("crowded frames (live views)")
    crowd.add_argument(
        "--crowd-faces",
        type=non_negative_int,
        default=DEFAULT_CROWD_FACES,
        metavar="N",
        help=f"classify frames with more than N faces with --crowd-model, which keeps the frame "
        f"rate (default {DEFAULT_CROWD_FACES}; 0: never switch)",
    )
    crowd.add_argument(
        "--crowd-model",
        default=DEFAULT_CROWD_MODEL,
        metavar="MODEL",
        help=f"the model crowded frames get (default {DEFAULT_CROWD_MODEL})",
    )


def crowd_options_from(args: argparse.Namespace) -> CrowdOptions:
    """The :class:`CrowdOptions` of parsed ``--crowd-*`` options."""
    return CrowdOptions(model=args.crowd_model, above=args.crowd_faces)


def add_source_options(p: argparse.ArgumentParser) -> None:
    """How a camera, stream or file is read: ``analyze``, ``live`` and ``batch``."""
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


def pipeline_options_from(args: argparse.Namespace, **fixed: Any) -> PipelineOptions:
    """The :class:`PipelineOptions` of parsed options (``fixed`` sets the rest, e.g. the
    ``threads`` a batch worker gets)."""
    values: dict[str, Any] = {
        "model": args.model,
        "threads": args.threads,
        "detector": detector_settings_from(args),
        "detect_every": args.detect_every,
        "max_age": args.max_age,
        "smooth": not args.no_smooth,
        "smooth_window": args.smooth_window,
        "smooth_method": args.smooth_method,
        "hysteresis": args.hysteresis,
        "every": getattr(args, "every", 1),
        "max_frames": getattr(args, "max_frames", None),
    }
    return PipelineOptions.from_dict({**values, **fixed})
