"""Face detection shared by dataset preparation, ``predict`` and the video pipeline."""

from emotrace.faces.downscale import DownscaledDetector
from emotrace.faces.factory import make_detector
from emotrace.faces.haar import HaarFaceDetector, largest
from emotrace.faces.yunet import YuNetFaceDetector

__all__ = [
    "DownscaledDetector",
    "HaarFaceDetector",
    "YuNetFaceDetector",
    "largest",
    "make_detector",
]
