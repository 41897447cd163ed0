"""Aligned face crops: one function from (image, detection) to the model's input square.

The eyes are rotated level and the face is scaled and placed where the training data has it.
The placement is described by a :class:`~emotrace.preprocessing.Framing` (stored in every aligned
model's metadata) in face-relative units, so training crops and inference crops match whatever the
camera's resolution:

* the face's *scale* ``s`` is the larger of the eye distance and the eye-to-mouth distance (times
  ``mouth_ratio``): a turned head shortens the first, a tilted one the second, rarely both;
* the crop's side is ``s * face_scale``; the eye line sits ``eye_line`` of the side from the top;
  horizontally the crop is centred between the eyes' and the mouth's midpoints.

A detection without landmarks (Haar, a user's box, a tracker's prediction without them) gets the
same quantities from its box through a :class:`BoxCalibration` measured on data (YuNet's landmarks
against each detector's boxes on FER2013 train faces; ``benchmarks/measure_framing.py``), so both
paths frame the same face alike on average.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from emotrace.faces.types import Detection, FaceDetector
from emotrace.preprocessing import Box, Framing, Preprocess, crop


@dataclass(frozen=True)
class FaceGeometry:
    """Where a face is: ``anchor`` (the crop's horizontal centre on the eye line, pixels),
    ``angle`` (the eye line's rotation, radians, clockwise in image coordinates) and ``scale``
    (pixels, see the module docstring)."""

    anchor: tuple[float, float]
    angle: float
    scale: float


@dataclass(frozen=True)
class BoxCalibration:
    """A detector's box -> :class:`FaceGeometry` (no rotation): anchor at
    ``(x + anchor_x * w, y + anchor_y * h)``, scale ``scale * sqrt(w * h)``."""

    anchor_x: float
    anchor_y: float
    scale: float


#: Measured with ``benchmarks/measure_framing.py`` on 3,000 FER2013 train faces (upscaled 3x and
#: padded so both detectors see them): mean ratios of the landmark geometry to each box (2,836
#: YuNet and 2,164 Haar boxes; per-face sd about 0.05 of the box on each). The horizontal anchor
#: measured 0.49 in the box's pixel-corner coordinates, which is the centre in pixel-centre ones.
BOX_CALIBRATIONS: dict[str, BoxCalibration] = {
    "yunet": BoxCalibration(anchor_x=0.5, anchor_y=0.36, scale=0.456),
    "haar": BoxCalibration(anchor_x=0.5, anchor_y=0.381, scale=0.418),
}
#: Boxes of unknown origin (given by a user) are framed like YuNet's: a tight face box.
DEFAULT_BOX_CALIBRATION = "yunet"


def landmark_geometry(landmarks: np.ndarray, mouth_ratio: float = 1.0) -> FaceGeometry:
    """The :class:`FaceGeometry` of five YuNet-order landmarks ``(5, 2)``."""
    points = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    right_eye, left_eye = points[0], points[1]
    eyes = (right_eye + left_eye) / 2
    mouth = (points[3] + points[4]) / 2
    across = left_eye - right_eye
    eye_distance = float(np.hypot(*across))
    angle = float(np.arctan2(across[1], across[0])) if eye_distance > 1e-6 else 0.0
    u = np.array([np.cos(angle), np.sin(angle)])  # along the eye line
    v = np.array([-u[1], u[0]])  # down the face
    to_mouth = mouth - eyes
    anchor = eyes + 0.5 * float(to_mouth @ u) * u
    eye_to_mouth = abs(float(to_mouth @ v))
    scale = max(eye_distance, eye_to_mouth * mouth_ratio, 1.0)
    return FaceGeometry((float(anchor[0]), float(anchor[1])), angle, scale)


def box_geometry(box: Box, calibration: BoxCalibration) -> FaceGeometry:
    """The :class:`FaceGeometry` a box implies under ``calibration`` (eyes assumed level)."""
    x, y, w, h = box
    scale = max(calibration.scale * float(np.sqrt(max(w, 1) * max(h, 1))), 1.0)
    # Box edges are pixel corners; geometry is in pixel-centre coordinates (half a pixel less).
    anchor = (x - 0.5 + calibration.anchor_x * w, y - 0.5 + calibration.anchor_y * h)
    return FaceGeometry(anchor, 0.0, scale)


def detection_geometry(detection: Detection | Box, framing: Framing) -> FaceGeometry:
    """Landmark geometry when the detection has landmarks, else its box's calibrated geometry."""
    if isinstance(detection, Detection):
        if detection.landmarks is not None:
            return landmark_geometry(detection.landmarks, framing.mouth_ratio)
        kind, box = detection.detector, detection.box
    else:
        kind, box = "", detection
    calibration = BOX_CALIBRATIONS.get(kind, BOX_CALIBRATIONS[DEFAULT_BOX_CALIBRATION])
    return box_geometry(box, calibration)


def crop_matrix(geometry: FaceGeometry, framing: Framing, size: int) -> np.ndarray:
    """The 2x3 affine map from a ``size x size`` crop's pixels to the source image's pixels."""
    side = geometry.scale * framing.face_scale
    u = np.array([np.cos(geometry.angle), np.sin(geometry.angle)])
    v = np.array([-u[1], u[0]])
    centre = np.asarray(geometry.anchor) + (0.5 - framing.eye_line) * side * v
    step = side / size
    # Pixel centres: crop pixel (i + 0.5) sits (i + 0.5) * step - side / 2 from the centre.
    origin = centre + (0.5 * step - side / 2) * (u + v)
    return np.array([[u[0] * step, v[0] * step, origin[0]], [u[1] * step, v[1] * step, origin[1]]])


def align_face(
    image: np.ndarray, detection: Detection | Box, framing: Framing, size: int
) -> np.ndarray:
    """The ``size x size`` aligned crop of one face (same channels as ``image``).

    Parts of the crop outside the image (a face cut by the frame border, a face filling a tight
    dataset crop) repeat the border pixels, as a dataset crop would show more of the same
    background, instead of black bars the model never saw.
    """
    matrix = crop_matrix(detection_geometry(detection, framing), framing, size)
    shrink = matrix[0, 0] ** 2 + matrix[1, 0] ** 2 > 1.0
    if shrink:
        # Minification without prefiltering aliases; blur at the source scale first (cheap for
        # the few faces per frame, and what INTER_AREA does for axis-aligned resizes).
        step = float(np.hypot(matrix[0, 0], matrix[1, 0]))
        x0, y0, x1, y1 = _source_bounds(matrix, size, image.shape[1], image.shape[0])
        region = image[y0:y1, x0:x1]
        if region.size:
            sigma = 0.5 * np.sqrt(max(step**2 - 1.0, 0.0))
            region = cv2.GaussianBlur(region, (0, 0), sigma) if sigma > 0.3 else region
            shifted = matrix.copy()
            shifted[:, 2] -= (x0, y0)
            return cv2.warpAffine(
                region,
                shifted,
                (size, size),
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_REPLICATE,
            )
    return cv2.warpAffine(
        image,
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )


def _source_bounds(matrix: np.ndarray, size: int, width: int, height: int) -> Box:
    """The image region (clipped, with a small margin) that the crop's corners map into."""
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], np.float64)
    mapped = corners @ matrix.T
    x0 = int(np.clip(np.floor(mapped[:, 0].min()) - 2, 0, width))
    y0 = int(np.clip(np.floor(mapped[:, 1].min()) - 2, 0, height))
    x1 = int(np.clip(np.ceil(mapped[:, 0].max()) + 3, 0, width))
    y1 = int(np.clip(np.ceil(mapped[:, 1].max()) + 3, 0, height))
    return x0, y0, x1, y1


#: Dataset images hold one face, so a weak detection is still the face; 0.3 finds 94.5% of
#: FER2013 train faces where YuNet's usual 0.7 finds 88% (``benchmarks/measure_framing.py``).
DATASET_SCORE_THRESHOLD = 0.3
#: Margin kept around a dataset's own face box (AffectNet CSV) before looking for landmarks in it.
DATASET_BOX_MARGIN = 0.25
#: Dataset crops (FER2013's 48 px) are upscaled until their short side is at least this, then
#: padded: YuNet finds faces of roughly 10-300 px that have some context around them.
DATASET_DETECT_SIDE = 144
#: Padding added around an upscaled dataset crop, as a fraction of its short side.
DATASET_PAD = 1 / 6


def dataset_view(image: np.ndarray) -> tuple[np.ndarray, float, int]:
    """The copy of a dataset image a detector is shown: upscaled to at least
    :data:`DATASET_DETECT_SIDE` and padded; with the upscale factor and the padding, so that
    ``(x - pad + 0.5) / factor - 0.5`` maps a point back into ``image``."""
    factor = max(1.0, DATASET_DETECT_SIDE / max(1, min(image.shape[:2])))
    big = image
    if factor > 1.0:
        big = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_LINEAR)
    pad = round(min(big.shape[:2]) * DATASET_PAD)
    return cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE), factor, pad


def find_dataset_face(image: np.ndarray, detector: FaceDetector) -> Detection | None:
    """The face of a face-dataset image (one face, roughly centred), or ``None``.

    Small crops are upscaled to :data:`DATASET_DETECT_SIDE` and every image is padded by
    replicating its border, so a face that fills a tight crop still has the context the detector
    needs. Of several candidates the one nearest the centre (ties: the larger) wins. The result
    is in ``image``'s pixels.
    """
    height, width = image.shape[:2]
    big, factor, pad = dataset_view(image)
    found = detector.detect(big)
    if not found:
        return None
    centre = np.array([big.shape[1], big.shape[0]]) / 2

    def rank(detection: Detection) -> tuple[float, float]:
        x, y, w, h = detection.box
        offset = float(np.hypot(x + w / 2 - centre[0], y + h / 2 - centre[1]))
        return offset / max(1.0, float(np.sqrt(w * h))), -float(detection.area)

    best = min(found, key=rank)
    x, y, w, h = best.box
    x0, y0 = max(0.0, (x - pad) / factor), max(0.0, (y - pad) / factor)
    x1, y1 = min(float(width), (x + w - pad) / factor), min(float(height), (y + h - pad) / factor)
    box = (round(x0), round(y0), max(1, round(x1 - x0)), max(1, round(y1 - y0)))
    # Points are pixel centres: OpenCV's resize maps x to (x + 0.5) * factor - 0.5.
    landmarks = None if best.landmarks is None else (best.landmarks - pad + 0.5) / factor - 0.5
    return Detection(box, best.score, landmarks, best.detector)


def dataset_detector() -> FaceDetector:
    """The detector ``data prepare --align`` uses: the bundled YuNet at a low threshold."""
    from emotrace.faces.yunet import YuNetFaceDetector

    return YuNetFaceDetector(score_threshold=DATASET_SCORE_THRESHOLD)


def dataset_detector_id() -> str:
    """Everything about dataset alignment that changes its output, for cache keys."""
    from emotrace.faces.yunet import BUNDLED_YUNET_SHA256

    return (
        f"yunet:{BUNDLED_YUNET_SHA256[:16]}:thr{DATASET_SCORE_THRESHOLD}:side{DATASET_DETECT_SIDE}"
        f":pad{DATASET_PAD:.4f}:boxmargin{DATASET_BOX_MARGIN}"
    )


def align_dataset_image(
    image: np.ndarray,
    detector: FaceDetector,
    settings: Preprocess,
    face_box: Box | None = None,
) -> tuple[np.ndarray, bool]:
    """An aligned ``settings.size`` crop of a dataset image's face, and whether a face was found.

    ``face_box``: the dataset's own box (AffectNet CSV); landmarks are looked for inside it (with
    a margin). Without a face the whole image (or the box) is returned as it is: dataset crops
    such as FER2013's are already framed like the average aligned crop.
    """
    if face_box is not None:
        image = crop(image, face_box, DATASET_BOX_MARGIN)
    face = find_dataset_face(image, detector)
    if face is None or face.landmarks is None:
        return image, False
    return align_face(image, face, settings.framing, settings.size), True
