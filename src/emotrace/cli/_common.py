"""Helpers shared by the sub-command modules: console output, progress bars, shared options."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


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
        TextColumn("{task.description}"),
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
