"""Files that hold patients' numbers (exports, reports) are written for their owner only."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

from emotrace.sessions.workspace import PRIVATE_FILE


def open_private(path: Path, mode: str = "w", **kwargs: Any) -> IO[Any]:
    """``open(path, mode)`` for writing, the file created 0600 whatever the umask; a file already
    there is emptied and made 0600 before anything is written into it."""
    if "w" not in mode:
        raise ValueError(f"open_private writes files, not mode {mode!r}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)  # an existing file keeps its mode through O_CREAT
        return os.fdopen(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise
