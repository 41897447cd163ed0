"""Decoding image files safely: whatever is not a readable image raises UnreadableImageError."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from emotrace.errors import UnreadableImageError

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
)


def is_image_name(path: Path) -> bool:
    """True when the file name has an image suffix (content is checked when decoding)."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def decode_image(data: bytes | np.ndarray, source: str = "<bytes>") -> np.ndarray:
    """Decode encoded image bytes to uint8 gray ``HxW`` or BGR ``HxWx3``.

    Gray files stay 2-D; alpha is dropped; 16-bit images are scaled to 8 bits. Truncated or
    non-image data raises :class:`UnreadableImageError`.
    """
    buf = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes) else data
    if buf.size == 0:
        raise UnreadableImageError(f"{source}: empty file")
    image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise UnreadableImageError(f"{source}: not a decodable image")
    return _to_uint8_gray_or_bgr(image, source)


def read_image(path: Path | str) -> np.ndarray:
    """Read an image file (unicode paths included); see :func:`decode_image`."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise UnreadableImageError(f"{p}: cannot read ({exc.strerror or exc})") from None
    return decode_image(data, str(p))


def _to_uint8_gray_or_bgr(image: np.ndarray, source: str) -> np.ndarray:
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise UnreadableImageError(f"{source}: unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, :3])
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise UnreadableImageError(f"{source}: unsupported image shape {image.shape}")
