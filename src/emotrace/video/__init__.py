"""Real-time video: sources, tracking, smoothing, the pipeline generator and its sinks.

    >>> from emotrace.video import process
    >>> for result in process("clip.mp4", detect_every=2):
    ...     print(result.index, result.time_s, result.faces.labels, result.faces.track_ids)

Only numpy, OpenCV and onnxruntime are needed (no torch).
"""

from emotrace.video.pipeline import (
    FpsMeter,
    FrameResult,
    StageTimes,
    process,
    record_columns,
)
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

__all__ = [
    "AnnotatedVideoWriter",
    "CaptureSource",
    "EmotionSmoother",
    "FaceTracker",
    "FpsMeter",
    "Frame",
    "FrameResult",
    "FrameSource",
    "ImageSource",
    "RecordWriter",
    "RunStats",
    "SourceInfo",
    "StageTimes",
    "Track",
    "VideoOutputs",
    "open_source",
    "process",
    "record_columns",
]
