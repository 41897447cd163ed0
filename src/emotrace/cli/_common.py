"""Helpers shared by the sub-command modules: console output, progress bars, shared options."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console

# No markup: what is printed holds user paths, file names and pseudonyms, and rich would read
# "[/b]" in one as a tag (a MarkupError traceback) or swallow "[bold]" (a wrong name).
console = Console(highlight=False, soft_wrap=True, markup=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (threads, frame steps, counts)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: a whole number >= 0 (retries)."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (seconds, windows)."""
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {value}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0 (ages, margins)."""
    value = float(text)
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {value}")
    return value


def max_side_px(text: str) -> int:
    """argparse type: 0 (never downscale) or a longer side of at least 64 pixels."""
    value = int(text)
    if value != 0 and value < 64:
        raise argparse.ArgumentTypeError(f"must be 0 (never downscale) or at least 64, got {value}")
    return value


def fraction_below_one(text: str) -> float:
    """argparse type: a number in [0, 1) (probability leads)."""
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


@contextmanager
def progress_factory(
    in_bytes: bool = False,
) -> Iterator[Callable[[str, int | None], Callable[[int], None]]]:
    """Yield ``make(description, total) -> advance(n)``; bars only on a terminal.

    ``total=None`` (a stream of unknown length) shows a pulsing bar and the count. ``in_bytes``
    shows sizes and a transfer speed instead of counts (downloads).
    """
    if not sys.stderr.isatty():
        yield lambda description, total: lambda n: None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    counts = (DownloadColumn(), TransferSpeedColumn()) if in_bytes else (MofNCompleteColumn(),)
    with Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        *counts,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as bars:

        def make(description: str, total: int | None) -> Callable[[int], None]:
            task = bars.add_task(description, total=total)
            return lambda n: bars.advance(task, n)

        yield make


def add_workspace_option(parser: Any) -> None:
    """``--workspace DIR``: where sessions are stored (a parser or an argument group)."""
    parser.add_argument(
        "--workspace",
        type=Path,
        metavar="DIR",
        help="session workspace (default: $XDG_DATA_HOME/emotrace, ~/.local/share/emotrace)",
    )


#: emotrace.faces.yunet's defaults, repeated so that building the parser imports no OpenCV
#: (``emotrace --help`` stays instant); a test checks that they agree.
DEFAULT_SCORE_THRESHOLD = 0.7
DEFAULT_NMS_THRESHOLD = 0.3
DEFAULT_HAAR_SCALE_FACTOR = 1.1

#: The options that tune one detector only, by detector: (attribute, flag, default).
_DETECTOR_ONLY: dict[str, tuple[tuple[str, str, float], ...]] = {
    "yunet": (
        ("score_threshold", "--score-threshold", DEFAULT_SCORE_THRESHOLD),
        ("nms_threshold", "--nms-threshold", DEFAULT_NMS_THRESHOLD),
    ),
    "haar": (("scale_factor", "--scale-factor", DEFAULT_HAAR_SCALE_FACTOR),),
}


def add_detector_options(parser: Any, *, max_side: bool = True) -> None:
    """Face-detector options shared by ``predict``, ``analyze``, ``live``, ``serve`` and
    ``batch`` (a parser or an argument group)."""
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
        help=f"YuNet: least confidence of a face (default {DEFAULT_SCORE_THRESHOLD})",
    )
    parser.add_argument(
        "--nms-threshold",
        type=float,
        metavar="IOU",
        help=f"YuNet: overlap above which two faces are merged (default {DEFAULT_NMS_THRESHOLD})",
    )
    parser.add_argument(
        "--scale-factor",
        type=float,
        metavar="F",
        help=f"Haar: image-pyramid step, > 1 (speed/recall; default {DEFAULT_HAAR_SCALE_FACTOR})",
    )
    if max_side:
        parser.add_argument(
            "--max-side",
            type=max_side_px,
            default=640,
            metavar="PX",
            help="detect on a copy downscaled to this longer side (0: never downscale)",
        )


def detector_tuning(args: Any, *, used_only: bool = False) -> dict[str, float]:
    """``score_threshold``, ``nms_threshold`` and ``scale_factor`` from the parsed options, with
    the defaults where unset (``used_only``: those of the detector in use, for records); a
    setting of the detector that is not used is an error (it would otherwise be ignored without
    a word)."""
    from emotrace.errors import ConfigError
    from emotrace.faces.factory import detector_kind

    kind = detector_kind(args.detector, args.detector_model)
    tuning: dict[str, float] = {}
    for owner, options in _DETECTOR_ONLY.items():
        for attribute, flag, default in options:
            value = getattr(args, attribute, None)
            if value is not None and owner != kind:
                raise ConfigError(f"{flag} tunes the {owner} detector; this run uses {kind}")
            if owner == kind or not used_only:
                tuning[attribute] = default if value is None else value
    return tuning


def detector_from_args(args: Any) -> Any:
    """The :class:`~emotrace.faces.FaceDetector` that :func:`add_detector_options` describe."""
    from emotrace.faces import make_detector

    tuning = detector_tuning(args)
    return make_detector(
        args.detector,
        args.detector_model,
        min_size=args.min_face,
        score_threshold=tuning["score_threshold"],
        nms_threshold=tuning["nms_threshold"],
        scale_factor=tuning["scale_factor"],
        max_side=getattr(args, "max_side", 640) or None,
    )


def detector_name(args: Any) -> str:
    """Which detector :func:`detector_from_args` builds, for records and summaries."""
    from emotrace.faces.factory import detector_kind

    return detector_kind(args.detector, args.detector_model)
