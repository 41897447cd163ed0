"""Turning an image of a face into the array a model was trained on.

numpy and OpenCV only: this module is shared by dataset preparation (training side) and by the
inference runtime, which must not import torch. The same :class:`Preprocess` settings travel with
every trained model, so inference crops and resizes exactly as training did.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import cv2
import numpy as np

from emotrace._fields import check_fields
from emotrace.errors import ConfigError, InputError

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Framing:
    """Where an aligned crop puts the face (see :mod:`emotrace.faces.align`).

    ``eye_line``: height of the eye line as a fraction of the crop's side. ``face_scale``: the
    crop's side in units of the face's scale (the larger of eye distance and eye-to-mouth
    distance times ``mouth_ratio``). The defaults are FER2013's average framing, measured with
    YuNet's landmarks on its train faces (``benchmarks/measure_framing.py``), so aligned crops look
    like FER2013 crops with the eyes level and every face the same size.
    """

    eye_line: float = 0.376
    face_scale: float = 2.553
    mouth_ratio: float = 1.0

    def __post_init__(self) -> None:
        check_fields(self, "framing ")
        if not 0.0 < self.eye_line < 1.0:
            raise ConfigError(f"framing eye_line must be in (0, 1), got {self.eye_line}")
        if not 1.0 <= self.face_scale <= 8.0:
            raise ConfigError(f"framing face_scale must be 1-8, got {self.face_scale}")
        if not 0.25 <= self.mouth_ratio <= 4.0:
            raise ConfigError(f"framing mouth_ratio must be 0.25-4, got {self.mouth_ratio}")


@dataclass(frozen=True)
class Preprocess:
    """How a face image becomes model input.

    ``size``: square side in pixels. ``gray``: one channel (else 3, BGR order in arrays).
    ``face_crop``: detect the largest face and crop it before resizing (for in-the-wild photos).
    ``margin``: fraction of the face box added on each side when cropping.
    ``equalize``: histogram-equalise the face after resizing (luma only for colour). The FER2013
    image release is equalised, so a model trained on it must see equalised faces at inference.
    ``align``: detect the face's landmarks and cut an aligned crop framed by ``eye_line``,
    ``face_scale`` and ``mouth_ratio`` (see :class:`Framing`), in training data and at inference.
    """

    size: int = 48
    gray: bool = True
    face_crop: bool = False
    margin: float = 0.0
    equalize: bool = False
    align: bool = False
    eye_line: float = Framing.eye_line
    face_scale: float = Framing.face_scale
    mouth_ratio: float = Framing.mouth_ratio

    def __post_init__(self) -> None:
        # Settings also come from model metadata and caches: a wrong type is a ConfigError too.
        check_fields(self, "preprocess.")
        if not 8 <= self.size <= 1024:
            raise ConfigError(f"image size must be 8-1024 pixels, got {self.size}")
        if not 0.0 <= self.margin <= 1.0:
            raise ConfigError(f"face-crop margin must be 0-1, got {self.margin}")
        _ = self.framing  # validates the framing fields

    @property
    def framing(self) -> Framing:
        """The aligned-crop framing these settings describe."""
        return Framing(self.eye_line, self.face_scale, self.mouth_ratio)

    @property
    def channels(self) -> int:
        """Number of channels of the prepared image."""
        return 1 if self.gray else 3

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, stored with caches and models."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocess:
        """Inverse of :meth:`to_dict`; unknown keys are a :class:`ConfigError`."""
        if not isinstance(data, dict):
            raise ConfigError(f"preprocess must be a mapping of key: value, got {data!r}")
        known = {f.name for f in fields(cls)}
        unknown = set(data).difference(known)
        if unknown:
            raise ConfigError(
                f"unknown preprocessing keys {sorted(unknown)}; expected {sorted(known)}"
            )
        return cls(**data)


#: What a ``None`` image usually is, named in the errors of every entry point that takes images.
IMREAD_NONE = "None (cv2.imread gives None for a file it cannot read)"


def check_image(image: object) -> np.ndarray:
    """``image`` if it is a non-empty uint8 gray, BGR or BGRA array, else :class:`InputError`.

    For the public entry points that take whole frames (detectors, the recognizer): a bad frame
    fails there with what is wrong, not inside OpenCV or as a division by zero.
    """
    if image is None:
        raise InputError(f"expected an image array, got {IMREAD_NONE}")
    if not isinstance(image, np.ndarray):
        raise InputError(f"expected an image array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise InputError(f"expected a uint8 image, got {image.dtype}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise InputError(f"not a gray, BGR or BGRA image (shape {image.shape})")
    if image.size == 0:
        raise InputError(f"empty image (shape {image.shape})")
    return image


def to_gray(image: np.ndarray) -> np.ndarray:
    """uint8 gray ``HxW`` from gray (``HxW`` or ``HxWx1``), BGR or BGRA input."""
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 2:
        return image
    code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return cv2.cvtColor(image, code)


def to_bgr(image: np.ndarray) -> np.ndarray:
    """uint8 BGR ``HxWx3`` from gray (``HxW`` or ``HxWx1``), BGR or BGRA input."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def expand_box(box: Box, margin: float, width: int, height: int) -> Box:
    """Grow ``(x, y, w, h)`` by ``margin`` of its size on each side, clipped to the image."""
    x, y, w, h = box
    dx, dy = round(w * margin), round(h * margin)
    x0, y0 = max(0, x - dx), max(0, y - dy)
    x1, y1 = min(width, x + w + dx), min(height, y + h + dy)
    return x0, y0, max(1, x1 - x0), max(1, y1 - y0)


def box_outside(box: Box, image: np.ndarray) -> str | None:
    """Why ``box`` cannot be cropped from ``image`` (it shares no pixel with it), else None."""
    height, width = image.shape[:2]
    x, y, w, h = box
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        return f"face box {tuple(box)} lies outside the {width}x{height} image"
    return None


def crop(image: np.ndarray, box: Box, margin: float = 0.0) -> np.ndarray:
    """The part of ``image`` inside ``box`` grown by ``margin`` (clipped at the borders)."""
    height, width = image.shape[:2]
    x, y, w, h = expand_box(box, margin, width, height)
    return image[y : y + h, x : x + w]


def prepare_face(image: np.ndarray, settings: Preprocess, box: Box | None = None) -> np.ndarray:
    """Colour-convert, crop (when ``box`` is given) and resize one face to ``settings``.

    Returns uint8 ``size x size`` (gray) or ``size x size x 3`` (BGR).
    """
    if box is not None:
        image = crop(image, box, settings.margin)
    image = to_gray(image) if settings.gray else to_bgr(image)
    if image.shape[0] != settings.size or image.shape[1] != settings.size:
        shrinking = image.shape[0] > settings.size or image.shape[1] > settings.size
        interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        image = cv2.resize(image, (settings.size, settings.size), interpolation=interpolation)
    if settings.equalize:
        image = equalize(image)
    return np.ascontiguousarray(image)


def equalize(image: np.ndarray) -> np.ndarray:
    """Histogram equalisation of a gray image, or of a BGR image's luma (colours kept)."""
    if image.ndim == 2:
        return cv2.equalizeHist(image)
    ycrcb = cv2.cvtColor(image, cv2.COLOR_BGR2YCrCb)
    ycrcb[:, :, 0] = cv2.equalizeHist(ycrcb[:, :, 0])
    return cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2BGR)
