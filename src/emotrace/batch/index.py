"""``OUT_DIR/index.csv``: one row per finished video, the batch's memory across reruns.

The file is rewritten whole (a temporary file, fsync, rename) after every video, so it always
holds one row per video and is never half-written, whatever stops the driver.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from emotrace.errors import ConfigError

INDEX_NAME = "index.csv"
COMPLETE = "complete"
FAILED = "failed"


@dataclass
class IndexRow:
    """How one video ended. ``video``: its resolved path; ``folder``: its records under OUT_DIR;
    ``status``: ``complete`` or ``failed``; ``frames``/``faces``: processed frames and faces
    found in them; ``processed_fps``: frames per second of its worker; ``seconds``: its wall
    time; ``session``: the recorded session's name (empty without sessions); ``error``: why it
    failed (empty when complete).

    A worker's :class:`~emotrace.batch.worker.VideoResult` is this row plus what the worker sends
    with it, so the two never drift apart; the fields' order is the file's column order."""

    video: str
    folder: str
    status: str
    frames: int = 0
    faces: int = 0
    processed_fps: float = 0.0
    seconds: float = 0.0
    session: str = ""
    error: str = ""

    def as_row(self, **changes: str) -> IndexRow:
        """The index row alone (a worker's result carries more), with ``changes`` applied."""
        values = {f.name: getattr(self, f.name) for f in fields(IndexRow)}
        return IndexRow(**{**values, **changes})


COLUMNS = [f.name for f in fields(IndexRow)]


class BatchIndex:
    """The rows of ``index.csv`` keyed by video, in the order the videos finished."""

    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / INDEX_NAME
        self.rows: dict[str, IndexRow] = {}
        if self.path.exists():
            self._read()

    def _read(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{self.path}: cannot read the batch index ({exc})") from None
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames != COLUMNS:
            raise ConfigError(
                f"{self.path} is not an emotrace batch index (columns "
                f"{','.join(reader.fieldnames or [])}); choose another -o OUT_DIR"
            )
        try:
            for raw in reader:
                row = IndexRow(
                    video=raw["video"],
                    folder=raw["folder"],
                    status=raw["status"],
                    frames=int(raw["frames"] or 0),
                    faces=int(raw["faces"] or 0),
                    processed_fps=float(raw["processed_fps"] or 0),
                    seconds=float(raw["seconds"] or 0),
                    session=raw["session"] or "",
                    error=raw["error"] or "",
                )
                self.rows[row.video] = row
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{self.path}: damaged batch index ({exc})") from None

    def is_complete(self, video: Path | str) -> bool:
        """Whether ``video`` finished completely in an earlier run (a rerun skips it)."""
        row = self.rows.get(str(video))
        return row is not None and row.status == COMPLETE

    def record(self, row: IndexRow) -> None:
        """Add or replace the row of ``row.video`` and write the file atomically."""
        self.rows.pop(row.video, None)  # a retried video moves to the end, where it finished
        self.rows[row.video] = row
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(asdict(r) for r in self.rows.values())
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8", newline="") as handle:
            handle.write(buffer.getvalue())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
