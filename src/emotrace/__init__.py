"""emotrace: facial emotion recognition, from datasets to therapy-session timelines.

The inference API needs only numpy, OpenCV and onnxruntime:

>>> from emotrace import EmotionRecognizer
>>> faces = EmotionRecognizer().recognize(cv2.imread("photo.jpg"))   # bundled model
>>> faces.labels, faces.confidences

Importing emotrace has no side effects; heavy modules load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from emotrace.results import FaceEmotions
    from emotrace.runtime.classifier import EmotionClassifier
    from emotrace.runtime.recognizer import EmotionRecognizer

_LAZY = {
    "EmotionClassifier": "emotrace.runtime.classifier",
    "EmotionRecognizer": "emotrace.runtime.recognizer",
    "FaceEmotions": "emotrace.results",
}

__all__ = ["EmotionClassifier", "EmotionRecognizer", "FaceEmotions", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'emotrace' has no attribute {name!r}")
