"""Images sent to the server: JPEG or PNG, checked before decoding, decoded in memory only.

A small PNG can declare a huge image, so the size in the header is read (without decoding) and
refused above :data:`MAX_PIXELS`; nothing sent is ever written to disk.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from emotrace.results import FaceEmotions

#: Decoded images larger than this are refused before decoding (a small PNG can hold a huge
#: image; decoding it would take gigabytes).
MAX_PIXELS = 40_000_000
_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"


class ImageRejected(Exception):
    """An upload that is not a JPEG/PNG (``unsupported``) or not a decodable one."""

    def __init__(self, message: str, unsupported: bool) -> None:
        super().__init__(message)
        self.unsupported = unsupported


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from a JPEG's first SOF marker, or ``None``."""
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None


def decode_image(data: bytes) -> np.ndarray:
    """A BGR image from JPEG or PNG bytes, in memory (nothing is written to disk)."""
    import cv2

    if data.startswith(_PNG):
        size: tuple[int, int] | None = (
            struct.unpack(">II", data[16:24]) if len(data) >= 24 else None
        )
    elif data.startswith(_JPEG):
        size = _jpeg_size(data)
    else:
        raise ImageRejected("not a JPEG or PNG image", unsupported=True)
    if size is None:
        raise ImageRejected("not a readable image (truncated or damaged header)", False)
    width, height = size
    if width * height > MAX_PIXELS or not width or not height:
        raise ImageRejected(f"image of {width}x{height} pixels is empty or too large", False)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageRejected("not a readable image (decoding failed)", unsupported=False)
    return np.asarray(image)


def face_records(faces: FaceEmotions) -> list[dict[str, Any]]:
    """``FaceEmotions.records()`` as JSON-ready dicts (arrays such as landmarks as lists)."""
    out = []
    for record in faces.records():
        out.append({k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in record.items()})
    return out
