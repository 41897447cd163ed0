"""Face detection shared by dataset preparation, ``predict`` and the video pipeline."""

from emotrace.faces.haar import HaarFaceDetector, largest

__all__ = ["HaarFaceDetector", "largest"]
