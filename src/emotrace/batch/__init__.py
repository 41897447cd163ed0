"""Many videos at once: a process pool on this machine or Ray actors on a cluster, resumable.

    >>> from emotrace.batch import find_videos, pipeline_options, run_batch
    >>> report = run_batch(find_videos(["archive/*.mp4"]), Path("out"), pipeline_options())
    >>> report.complete, report.failed

Each video's records (``frames.csv``, ``frames.jsonl``, ``summary.json``, as ``emotrace
analyze`` writes them) go into ``out/<video stem>/``; ``out/index.csv`` says which videos are
complete or failed and why, and a rerun skips the complete ones. Ray is optional
(``pip install 'emotrace[ray]'``) and imported only by ``engine="ray"``; on a cluster the driver
can send the videos through Ray's object store and write every record itself
(``transfer="send"``), and videos can be URLs that their workers read.
"""

from emotrace.batch.index import INDEX_NAME, BatchIndex, IndexRow
from emotrace.batch.inputs import VideoEntry, VideoURL, find_videos, patient_from, read_manifest
from emotrace.batch.runner import (
    BatchReport,
    SessionPlan,
    pipeline_options,
    plan_sessions,
    run_batch,
)
from emotrace.batch.worker import VideoAnalyzer, VideoJob, VideoResult

__all__ = [
    "INDEX_NAME",
    "BatchIndex",
    "BatchReport",
    "IndexRow",
    "SessionPlan",
    "VideoAnalyzer",
    "VideoEntry",
    "VideoJob",
    "VideoResult",
    "VideoURL",
    "find_videos",
    "patient_from",
    "pipeline_options",
    "plan_sessions",
    "read_manifest",
    "run_batch",
]
