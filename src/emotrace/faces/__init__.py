"""Face detection and alignment shared by dataset preparation, ``predict`` and the video."""

from emotrace.faces.align import align_face, find_dataset_face
from emotrace.faces.downscale import DownscaledDetector
from emotrace.faces.factory import make_detector
from emotrace.faces.haar import HaarFaceDetector
from emotrace.faces.types import Detection, FaceDetector, largest
from emotrace.faces.yunet import YuNetFaceDetector

__all__ = [
    "Detection",
    "DownscaledDetector",
    "FaceDetector",
    "HaarFaceDetector",
    "YuNetFaceDetector",
    "align_face",
    "find_dataset_face",
    "largest",
    "make_detector",
]
