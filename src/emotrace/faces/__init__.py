"""Face detection and alignment shared by dataset preparation, ``predict`` and the video.

The names below load on first use: :mod:`emotrace.faces.settings` (what the command line reads to
build its parser) imports no OpenCV, and importing it must not pull OpenCV in through here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emotrace._lazy import lazy_attributes

if TYPE_CHECKING:
    from emotrace.faces.align import align_face, find_dataset_face
    from emotrace.faces.downscale import DownscaledDetector
    from emotrace.faces.factory import make_detector
    from emotrace.faces.haar import HaarFaceDetector
    from emotrace.faces.settings import DetectorSettings
    from emotrace.faces.types import Detection, FaceDetector, largest
    from emotrace.faces.yunet import YuNetFaceDetector

_WHERE = {
    "Detection": "types",
    "DetectorSettings": "settings",
    "DownscaledDetector": "downscale",
    "FaceDetector": "types",
    "HaarFaceDetector": "haar",
    "YuNetFaceDetector": "yunet",
    "align_face": "align",
    "find_dataset_face": "align",
    "largest": "types",
    "make_detector": "factory",
}

__all__ = [
    "Detection",
    "DetectorSettings",
    "DownscaledDetector",
    "FaceDetector",
    "HaarFaceDetector",
    "YuNetFaceDetector",
    "align_face",
    "find_dataset_face",
    "largest",
    "make_detector",
]


__getattr__ = lazy_attributes(__name__, _WHERE)
