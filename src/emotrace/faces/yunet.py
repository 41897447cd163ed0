"""OpenCV's YuNet face detector (``cv2.FaceDetectorYN``): boxes, scores and five landmarks.

YuNet is a small CNN (opencv_zoo ``face_detection_yunet_2023mar.onnx``, 232 kB, MIT) that finds
profile, tilted, small and grimacing faces the Haar cascade misses, with far fewer false faces on
textured backgrounds, at a fraction of Haar's cost on real frames. The file ships inside emotrace
(``emotrace/assets``, licence in ``assets/NOTICE``) and is checked against its published sha256
before use; a user's own YuNet file works too. OpenCV's ``detect`` returns one row per face:
``x, y, w, h``, five landmark points (eyes, nose tip, mouth corners) as ten numbers, then the score.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from emotrace.errors import ConfigError, ModelError
from emotrace.faces.defaults import TUNING_DEFAULTS
from emotrace.faces.types import Detection
from emotrace.preprocessing import check_image, to_bgr
from emotrace.runtime.onnx_check import refuse_external_data

#: Where users find the weights (named in errors so the fix is one download away).
YUNET_URL = "https://github.com/opencv/opencv_zoo/tree/main/models/face_detection_yunet"
BUNDLED_YUNET = "face_detection_yunet_2023mar.onnx"
#: sha256 OpenCV Zoo publishes for the bundled file; a damaged installation fails loudly.
BUNDLED_YUNET_SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"
#: Least score of a reported face, and the overlap above which two are merged (see
#: ``faces.settings``, where every detector default is written once).
DEFAULT_SCORE_THRESHOLD = TUNING_DEFAULTS["yunet"]["score_threshold"]
DEFAULT_NMS_THRESHOLD = TUNING_DEFAULTS["yunet"]["nms_threshold"]
#: Candidate boxes kept *before* NMS (OpenCV's own default). Each face yields several
#: candidates, so a small cap loses whole faces in crowded frames: with 50, a 5x5 video-call
#: gallery of real faces lost 7 of its 25 (and a 3x3 one, 1 of 9); NMS over 5000 costs nothing
#: measurable on single-face video.
DEFAULT_TOP_K = 5000
#: YuNet's network downsamples by 32; OpenCV pads the input, but inputs this small find nothing.
MIN_INPUT_SIDE = 16


def bundled_yunet_path() -> Path:
    """The YuNet file inside the installed package, after checking its sha256."""
    path = Path(str(resources.files("emotrace") / "assets" / BUNDLED_YUNET))
    if not path.is_file():
        raise ModelError(f"no bundled YuNet detector in this installation ({path})")
    return verify_sha256(path, BUNDLED_YUNET_SHA256)


def verify_sha256(path: Path, expected: str) -> Path:
    """``path`` if its sha256 is ``expected``; a :class:`ModelError` naming both otherwise."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != expected:
        raise ModelError(
            f"{path}: checksum mismatch (sha256 {digest[:12]}..., expected {expected[:12]}...); "
            "the file is damaged: reinstall emotrace"
        )
    return path


def _reason(exc: BaseException) -> str:
    """The useful part of a ``cv2.error`` ("OpenCV(4.x) file.cpp:398: error: (-215...) ...")."""
    text = " ".join(str(exc).split())
    text = text.split(" error: ", 1)[-1].split(" in function ", 1)[0]
    return text[:120] or type(exc).__name__


class YuNetFaceDetector:
    """Detect faces with YuNet; returns :class:`Detection` s (box, score, landmarks), largest first.

    ``model``: a YuNet ONNX file, or ``None`` for the bundled one. ``score_threshold`` drops weak
    detections, ``nms_threshold`` merges overlapping ones (OpenCV's meaning), ``top_k`` caps the
    candidates kept before NMS, ``min_size`` drops faces whose box is smaller than this many
    pixels on either side. Boxes are clipped to the image; landmarks are not.
    The network's input size follows each frame, so any frame size works; for frames much larger
    than the faces YuNet was trained on (about 10-300 px) wrap it in a
    :class:`~emotrace.faces.DownscaledDetector`.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        nms_threshold: float = DEFAULT_NMS_THRESHOLD,
        top_k: int = DEFAULT_TOP_K,
        min_size: int = 0,
    ) -> None:
        if not 0.0 < score_threshold <= 1.0:
            raise ConfigError(f"YuNet score threshold must be in (0, 1], got {score_threshold}")
        if not 0.0 < nms_threshold <= 1.0:
            raise ConfigError(f"YuNet NMS threshold must be in (0, 1], got {nms_threshold}")
        if top_k < 1 or min_size < 0:
            raise ConfigError("YuNet top_k must be at least 1 and min_size not negative")
        path = bundled_yunet_path() if model is None else Path(model)
        if not path.is_file():
            raise ModelError(f"{path}: no such YuNet model file (download it from {YUNET_URL})")
        if path.stat().st_size == 0:
            raise ModelError(f"{path}: empty file, not a YuNet ONNX model")
        # Before OpenCV reads it: a detector file naming external weight files could make it read
        # any file of the user's (see emotrace.runtime.onnx_check); YuNet is one file.
        refuse_external_data(path.read_bytes(), str(path))
        self.model_path = path
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.min_size = min_size
        self._size = (160, 120)
        try:
            self._net = cv2.FaceDetectorYN.create(
                str(path), "", self._size, score_threshold, nms_threshold, top_k
            )
            # A graph that loads but is not YuNet (another ONNX model) only fails at the first
            # forward pass; run one now so the error comes at start-up, not mid-video.
            self._net.detect(np.zeros((self._size[1], self._size[0], 3), np.uint8))
        except cv2.error as exc:
            raise ModelError(f"{path}: not a loadable YuNet ONNX model ({_reason(exc)})") from None

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in ``image`` (gray, BGR or BGRA uint8), largest first."""
        bgr = to_bgr(check_image(image))
        height, width = bgr.shape[:2]
        if min(height, width) < MIN_INPUT_SIDE:
            return []
        if (width, height) != self._size:
            # The network's input size must match the frame; resetting it is cheap.
            self._size = (width, height)
            self._net.setInputSize(self._size)
        _, found = self._net.detect(np.ascontiguousarray(bgr))
        if found is None:
            return []
        detections = []
        for row in np.asarray(found, dtype=np.float64).reshape(-1, 15):
            x, y, w, h = row[:4]
            x0, y0 = min(width, max(0, round(x))), min(height, max(0, round(y)))
            x1, y1 = min(width, round(x + w)), min(height, round(y + h))
            if x1 - x0 >= max(1, self.min_size) and y1 - y0 >= max(1, self.min_size):
                box = (x0, y0, x1 - x0, y1 - y0)
                detections.append(Detection(box, float(row[14]), row[4:14].reshape(5, 2), "yunet"))
        return sorted(detections, key=lambda d: d.area, reverse=True)
