"""Turning an image of a face into the array a model was trained on.

numpy and OpenCV only: this module is shared by dataset preparation (training side) and by the
inference runtime, which must not import torch. The same :class:`Preprocess` settings travel with
every trained model, so inference crops and resizes exactly as training did.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from emotrace.errors import ConfigError

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Preprocess:
    """How a face image becomes model input.

    ``size``: square side in pixels. ``gray``: one channel (else 3, BGR order in arrays).
    ``face_crop``: detect the largest face and crop it before resizing (for in-the-wild photos).
    ``margin``: fraction of the face box added on each side when cropping.
    ``equalize``: histogram-equalise the face after resizing (luma only for colour). The FER2013
    image release is equalised, so a model trained on it must see equalised faces at inference.
    """

    size: int = 48
    gray: bool = True
    face_crop: bool = False
    margin: float = 0.0
    equalize: bool = False

    def __post_init__(self) -> None:
        if not 8 <= self.size <= 1024:
            raise ConfigError(f"image size must be 8-1024 pixels, got {self.size}")
        if not 0.0 <= self.margin <= 1.0:
            raise ConfigError(f"face-crop margin must be 0-1, got {self.margin}")

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
        known = {"size", "gray", "face_crop", "margin", "equalize"}
        unknown = set(data).difference(known)
        if unknown:
            raise ConfigError(
                f"unknown preprocessing keys {sorted(unknown)}; expected {sorted(known)}"
            )
        return cls(**data)


def to_gray(image: np.ndarray) -> np.ndarray:
    """uint8 gray ``HxW`` from gray or BGR input."""
    if image.ndim == 2:
        return image
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def to_bgr(image: np.ndarray) -> np.ndarray:
    """uint8 BGR ``HxWx3`` from gray or BGR input."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image


def expand_box(box: Box, margin: float, width: int, height: int) -> Box:
    """Grow ``(x, y, w, h)`` by ``margin`` of its size on each side, clipped to the image."""
    x, y, w, h = box
    dx, dy = round(w * margin), round(h * margin)
    x0, y0 = max(0, x - dx), max(0, y - dy)
    x1, y1 = min(width, x + w + dx), min(height, y + h + dy)
    return x0, y0, max(1, x1 - x0), max(1, y1 - y0)


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
