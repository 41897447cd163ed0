"""Exports of one session: CSV, JSON Lines, Parquet (``pip install 'emotrace[parquet]'``).

One row per stored frame: ``session_id, patient, frame, time_s, face_visible, break_before_s
(seconds not recorded just before the frame: paused or interrupted; 0 for most), track_id, x, y,
w, h, score``, one ``p_<class>`` column per class, then the derived ``top_emotion, valence, arousal,
negative_affect`` (see ``circumplex``). Frames without the patient's face have empty cells (CSV)
or nulls (JSON Lines, Parquet): missing, not zero.

* CSV: ``OUT.csv`` and the markers in ``OUT_markers.csv`` (``time_s, end_s, label, excluded``:
  ``end_s`` is empty for a point marker and the end of a segment otherwise; ``excluded`` is 1
  for a stretch left out of every analytic, its label saying why).
* JSON Lines: one ``{"type": "session"}`` line with the metadata, then ``"frame"`` and
  ``"marker"`` lines.
* Parquet: the frame table; metadata and markers as JSON in the schema metadata
  (``emotrace.session``, ``emotrace.markers``).

Exports carry the pseudonym, never the source path or the free-text notes, and are written 0600
(their owner alone may read them), as the workspace is.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from emotrace.errors import SessionError, require
from emotrace.sessions import _series
from emotrace.sessions._private import open_private
from emotrace.sessions.circumplex import RUSSELL_1980, Circumplex
from emotrace.sessions.coverage import MAX_GAP_S
from emotrace.sessions.types import SessionData

FORMATS = ("csv", "jsonl", "parquet")


def columns(data: SessionData, circumplex: Circumplex = RUSSELL_1980) -> dict[str, list[Any]]:
    """The frame table as named columns of Python values (``None`` where missing)."""
    n, visible = len(data), data.visible
    probs = data.probabilities.astype(np.float64)
    probs[~visible] = np.nan
    va = circumplex.valence_arousal(probs, data.classes)
    negative = circumplex.negative_affect(probs, data.classes)

    def column(values: np.ndarray, digits: int | None = None) -> list[Any]:
        out: list[Any] = []
        for value, seen in zip(values.tolist(), visible.tolist(), strict=True):
            if not seen or (isinstance(value, float) and math.isnan(value)):
                out.append(None)
            else:
                out.append(round(value, digits) if digits is not None else value)
        return out

    table: dict[str, list[Any]] = {
        "session_id": [data.info.id] * n,
        "patient": [data.info.patient] * n,
        "frame": data.frames.tolist(),
        "time_s": [round(t, 4) for t in data.times.tolist()],
        "face_visible": visible.astype(int).tolist(),
        "break_before_s": _breaks_before(data.times),
        "track_id": column(data.track_ids),
    }
    for i, name in enumerate("xywh"):
        table[name] = [None if v is None else int(v) for v in column(data.boxes[:, i])]
    for i, name in enumerate(("yaw", "pitch", "roll")):
        table[name] = column(data.poses[:, i], 1)
    table["score"] = column(data.scores, 4)
    for k, name in enumerate(data.classes):
        table[f"p_{name}"] = column(probs[:, k], 6)
    top = np.nan_to_num(probs, nan=-1.0).argmax(axis=1)
    table["top_emotion"] = column(np.array([data.classes[k] for k in top], dtype=object))
    table["valence"] = column(va[:, 0], 6)
    table["arousal"] = column(va[:, 1], 6)
    table["negative_affect"] = column(negative, 6)
    return table


def _breaks_before(times: np.ndarray) -> list[float]:
    """Per frame, the seconds of the break in the recording (paused, interrupted) just before
    it, 0 for most frames: the same breaks as the face-visible figure's (``coverage``)."""
    times = times.astype(np.float64)
    out = np.zeros(len(times))
    for start, end in _series.breaks(times, _series.frame_durations(times, MAX_GAP_S)):
        out[np.searchsorted(times, end)] = end - start
    return [round(v, 3) for v in out.tolist()]


def _rows(table: dict[str, list[Any]]) -> Iterator[dict[str, Any]]:
    names = list(table)
    for values in zip(*table.values(), strict=True):
        yield dict(zip(names, values, strict=True))


def output_format(path: Path, fmt: str | None) -> str:
    """The format named by ``fmt`` or by ``path``'s suffix."""
    chosen = fmt or {".csv": "csv", ".jsonl": "jsonl", ".parquet": "parquet"}.get(path.suffix)
    if chosen not in FORMATS:
        raise SessionError(
            f"cannot tell the export format of {path}; give --format csv|jsonl|parquet"
        )
    return str(chosen)


#: The columns of the markers' CSV file (and the keys of a JSON marker).
MARKER_FIELDS = ("time_s", "end_s", "label", "excluded")


def export_session(data: SessionData, path: Path, fmt: str | None = None) -> list[Path]:
    """Write ``data`` to ``path`` in ``fmt`` (or the format of its suffix); the files written."""
    fmt = output_format(path, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = columns(data)
    markers = [
        {"time_s": round(m.time_s, 4), "end_s": None if m.end_s is None else round(m.end_s, 4),
         "label": m.label, "excluded": m.excluded}
        for m in data.markers
    ]  # fmt: skip
    if fmt == "csv":
        with open_private(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(table))
            writer.writeheader()
            writer.writerows(_rows(table))
        marker_path = path.with_name(f"{path.stem}_markers.csv")
        with open_private(marker_path, "w", newline="", encoding="utf-8") as handle:
            marker_writer = csv.DictWriter(handle, fieldnames=list(MARKER_FIELDS))
            marker_writer.writeheader()
            marker_writer.writerows({**m, "excluded": int(m["excluded"] is True)} for m in markers)
        return [path, marker_path]
    if fmt == "jsonl":
        with open_private(path, "w", encoding="utf-8") as handle:
            handle.write(json.dumps({"type": "session", **data.info.to_dict()}) + "\n")
            for row in _rows(table):
                handle.write(json.dumps({"type": "frame", **row}) + "\n")
            for marker in markers:
                handle.write(json.dumps({"type": "marker", **marker}) + "\n")
        return [path]
    require("pyarrow", "parquet")
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pa.table(table)
    arrow = arrow.replace_schema_metadata(
        {
            "emotrace.session": json.dumps(data.info.to_dict()),
            "emotrace.markers": json.dumps(markers),
        }
    )
    with open_private(path, "wb") as out:
        pq.write_table(arrow, out)
    return [path]
