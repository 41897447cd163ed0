"""Real-time video: sources, tracking, smoothing, the pipeline generator and its sinks.

    >>> from emotrace.video import process
    >>> for result in process("clip.mp4", detect_every=2):
    ...     print(result.index, result.time_s, result.faces.labels, result.faces.track_ids)

Every setting of a run is one :class:`PipelineOptions`; :func:`analyze_source` owns a whole run
(reading, each frame's records, the summary), as ``emotrace analyze``, ``live`` and ``batch`` do.
Only numpy, OpenCV and onnxruntime are needed (no torch). The names load on first use, so that
:mod:`emotrace.video.options` (what the command line reads to build its parser) brings no OpenCV.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emotrace._lazy import lazy_attributes

if TYPE_CHECKING:
    from emotrace.video.options import CrowdOptions, PipelineOptions
    from emotrace.video.pipeline import (
        FpsMeter,
        FrameResult,
        StageTimes,
        process,
        record_columns,
    )
    from emotrace.video.run import SourceRun, analyze_source, open_pipeline
    from emotrace.video.sinks import AnnotatedVideoWriter, RecordWriter, RunStats, VideoOutputs
    from emotrace.video.smoothing import EmotionSmoother
    from emotrace.video.sources import (
        CaptureSource,
        Frame,
        FrameSource,
        ImageSource,
        SourceInfo,
        open_source,
    )
    from emotrace.video.tracking import FaceTracker, Track

_WHERE = {
    "AnnotatedVideoWriter": "sinks",
    "CaptureSource": "sources",
    "CrowdOptions": "options",
    "EmotionSmoother": "smoothing",
    "FaceTracker": "tracking",
    "FpsMeter": "pipeline",
    "Frame": "sources",
    "FrameResult": "pipeline",
    "FrameSource": "sources",
    "ImageSource": "sources",
    "PipelineOptions": "options",
    "RecordWriter": "sinks",
    "RunStats": "sinks",
    "SourceInfo": "sources",
    "SourceRun": "run",
    "StageTimes": "pipeline",
    "Track": "tracking",
    "VideoOutputs": "sinks",
    "analyze_source": "run",
    "open_pipeline": "run",
    "open_source": "sources",
    "process": "pipeline",
    "record_columns": "pipeline",
}

__all__ = [
    "AnnotatedVideoWriter",
    "CaptureSource",
    "CrowdOptions",
    "EmotionSmoother",
    "FaceTracker",
    "FpsMeter",
    "Frame",
    "FrameResult",
    "FrameSource",
    "ImageSource",
    "PipelineOptions",
    "RecordWriter",
    "RunStats",
    "SourceInfo",
    "SourceRun",
    "StageTimes",
    "Track",
    "VideoOutputs",
    "analyze_source",
    "open_pipeline",
    "open_source",
    "process",
    "record_columns",
]


__getattr__ = lazy_attributes(__name__, _WHERE)
