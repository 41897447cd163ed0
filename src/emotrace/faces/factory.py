"""Build a face detector from the settings a user gives on the command line or in code."""

from __future__ import annotations

from pathlib import Path

from emotrace.faces.defaults import (
    DEFAULT_MAX_SIDE,
    DEFAULT_MIN_SIZE,
    DETECTOR_KINDS,
    DetectorKind,
    detector_kind,
)
from emotrace.faces.types import FaceDetector
from emotrace.faces.yunet import DEFAULT_NMS_THRESHOLD, DEFAULT_SCORE_THRESHOLD, YuNetFaceDetector

__all__ = [
    "DEFAULT_MAX_SIDE",
    "DEFAULT_MIN_SIZE",
    "DETECTOR_KINDS",
    "DetectorKind",
    "detector_kind",
    "make_detector",
]


def make_detector(
    kind: str | None = None,
    model: str | Path | None = None,
    *,
    min_size: int | None = None,
    score_threshold: float = DEFAULT_SCORE_THRESHOLD,
    nms_threshold: float = DEFAULT_NMS_THRESHOLD,
    scale_factor: float = 1.1,
    min_neighbors: int = 5,
    max_side: int | None = DEFAULT_MAX_SIDE,
) -> FaceDetector:
    """A YuNet (default) or Haar detector, wrapped so frames larger than ``max_side`` are
    downscaled first.

    ``kind=None`` is YuNet, unless ``model`` is a Haar cascade ``.xml``. ``model``: a YuNet ONNX
    file (default: the bundled one) or a Haar cascade XML (default: OpenCV's frontal-face
    cascade). ``min_size``: smallest face side in the pixels the detector sees, i.e. after
    downscaling (default per detector, :data:`DEFAULT_MIN_SIZE`). ``score_threshold`` and
    ``nms_threshold`` are YuNet's; ``scale_factor`` and ``min_neighbors`` Haar's.
    ``max_side=None`` never downscales.
    """
    kind = detector_kind(kind, model)
    detector: FaceDetector
    if kind == "yunet":
        detector = YuNetFaceDetector(
            model,
            score_threshold=score_threshold,
            nms_threshold=nms_threshold,
            min_size=DEFAULT_MIN_SIZE["yunet"] if min_size is None else min_size,
        )
    else:
        from emotrace.faces.haar import HaarFaceDetector

        detector = HaarFaceDetector(
            min_size=DEFAULT_MIN_SIZE["haar"] if min_size is None else min_size,
            scale_factor=scale_factor,
            min_neighbors=min_neighbors,
            cascade=model,
        )
    if max_side is None:
        return detector
    from emotrace.faces.downscale import DownscaledDetector

    return DownscaledDetector(detector, max_side)
