"""Files replaced whole: written beside their destination and moved onto it only when complete."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from emotrace._interrupts import raise_if_interrupted


@contextmanager
def staged_file(path: Path, tag: str = "") -> Iterator[Path]:
    """Yield ``<stem>[.<tag>].tmp<suffix>`` beside ``path``, to be written; on a clean exit it
    replaces ``path`` (one rename on the same file system), on any error or Ctrl+C it is removed
    and ``path`` keeps what it held. The suffix is kept so tools that go by it (ONNX) still do."""
    staged = path.with_name(f"{path.stem}{'.' + tag if tag else ''}.tmp{path.suffix}")
    try:
        yield staged
        # A Ctrl+C whose exception was swallowed (see emotrace._interrupts) still keeps the
        # new file out: the user asked to stop before it was complete.
        raise_if_interrupted()
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)
