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
