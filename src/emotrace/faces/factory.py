"""Build a face detector from the settings a user gives on the command line or in code."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from emotrace.errors import ConfigError

if TYPE_CHECKING:
    from emotrace.runtime.recognizer import FaceDetector

DetectorKind = Literal["haar", "yunet"]


def make_detector(
    kind: DetectorKind | None = None,
    model: str | Path | None = None,
    *,
    min_size: int = 30,
    scale_factor: float = 1.1,
    min_neighbors: int = 5,
    max_side: int | None = 640,
) -> FaceDetector:
    """A Haar or YuNet detector, wrapped so frames larger than ``max_side`` are downscaled first.

    ``kind=None`` picks YuNet for an ``.onnx`` ``model`` and Haar otherwise. ``model``: a YuNet
    ONNX file (required for YuNet), or a Haar cascade XML (default: OpenCV's frontal-face cascade).
    ``min_size`` is in the pixels the detector sees, i.e. after downscaling.
    ``max_side=None`` never downscales.
    """
    if kind is None:
        kind = "yunet" if model is not None and str(model).lower().endswith(".onnx") else "haar"
    detector: FaceDetector
    if kind == "yunet":
        if model is None:
            raise ConfigError(
                "the YuNet detector needs its ONNX file (face_detection_yunet_2023mar.onnx "
                "from opencv_zoo): pass --detector-model PATH"
            )
        from emotrace.faces.yunet import YuNetFaceDetector

        detector = YuNetFaceDetector(model, min_size=min_size)
    elif kind == "haar":
        from emotrace.faces.haar import HaarFaceDetector

        detector = HaarFaceDetector(
            min_size=min_size,
            scale_factor=scale_factor,
            min_neighbors=min_neighbors,
            cascade=model,
        )
    else:
        raise ConfigError(f"unknown face detector {kind!r}; use 'haar' or 'yunet'")
    if max_side is None:
        return detector
    from emotrace.faces.downscale import DownscaledDetector

    return DownscaledDetector(detector, max_side)
