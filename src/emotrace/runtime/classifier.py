"""``EmotionClassifier``: face crops in, calibrated emotion probabilities out, no torch needed.

Preprocessing (colour, size, normalisation) and the calibration temperature come from the model's
own metadata, so the same code serves the bundled 96 px gray model and any exported model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from emotrace._numeric import softmax
from emotrace.errors import InputError
from emotrace.faces.types import Detection
from emotrace.preprocessing import IMREAD_NONE, Box, prepare_face
from emotrace.runtime.loading import Backend, load_backend
from emotrace.runtime.model_info import ModelSpec

ColorOrder = Literal["bgr", "rgb"]
Faces = np.ndarray | Sequence[np.ndarray]


def as_face_list(faces: Faces) -> list[np.ndarray]:
    """Split the accepted input shapes into a list of single faces.

    A list/tuple holds one face per element. An array is: ``(H, W)`` one gray face; ``(H, W, 3|4)``
    one colour face; ``(N, H, W)`` N gray faces; ``(N, H, W, C)`` N faces.
    """
    if isinstance(faces, np.ndarray):
        if faces.ndim == 2 or (faces.ndim == 3 and faces.shape[-1] in (3, 4)):
            items = [faces]
        elif faces.ndim in (3, 4):
            items = list(faces)
        else:
            raise InputError(f"cannot read faces from an array of shape {faces.shape}")
    elif isinstance(faces, list | tuple):
        items = list(faces)
    else:
        kind = IMREAD_NONE if faces is None else type(faces).__name__
        raise InputError(f"expected a face image array or a list of them, got {kind}")
    for i, face in enumerate(items):
        if not isinstance(face, np.ndarray) or face.dtype != np.uint8:
            kind = getattr(face, "dtype", type(face).__name__)
            raise InputError(f"face {i}: expected a uint8 image array, got {kind}")
        if face.ndim not in (2, 3) or min(face.shape[:2]) < 1:
            raise InputError(f"face {i}: not an image (shape {face.shape})")
        if face.ndim == 3 and face.shape[2] not in (1, 3, 4):
            raise InputError(f"face {i}: {face.shape[2]} channels; expected 1, 3 or 4")
    return items


class EmotionClassifier:
    """Classify face crops with an emotrace model (``"default"``, an ``.onnx`` file, or a run).

    >>> clf = EmotionClassifier()                      # the bundled model
    >>> probs = clf.predict(face_bgr)                  # (1, 7), rows sum to 1
    >>> clf.classes[probs[0].argmax()]
    'happy'

    ``threads`` sets onnxruntime's intra-op threads (1 is fastest per face for small batches).
    """

    def __init__(self, model: str | Path = "default", threads: int | None = 1) -> None:
        self._backend = load_backend(model, threads=threads)
        self.spec: ModelSpec = self._backend.spec

    @property
    def backend(self) -> Backend:
        """The engine behind this classifier (onnxruntime, or torch for a checkpoint)."""
        return self._backend

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names in probability-column order."""
        return self.spec.classes

    def prepare(self, faces: Faces, color: ColorOrder = "bgr") -> np.ndarray:
        """The uint8 model input ``(N, S, S, C)`` for ``faces`` (any sizes, gray/BGR/RGB)."""
        items = as_face_list(faces)
        size, channels = self.spec.input_size, self.spec.channels
        batch = np.empty((len(items), size, size, channels), dtype=np.uint8)
        for i, face in enumerate(items):
            if face.ndim == 3 and face.shape[2] == 4:
                face = face[:, :, :3]
            if face.ndim == 3 and face.shape[2] == 1:
                face = face[:, :, 0]
            if color == "rgb" and face.ndim == 3:
                face = face[:, :, ::-1]
            batch[i] = prepare_face(face, self.spec.preprocess).reshape(size, size, channels)
        return batch

    def logits(self, faces: Faces, color: ColorOrder = "bgr") -> np.ndarray:
        """Un-tempered logits ``(N, K)``."""
        batch = self.prepare(faces, color)
        if len(batch) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        return self._backend.logits(batch)

    def predict(self, faces: Faces, color: ColorOrder = "bgr") -> np.ndarray:
        """Calibrated probabilities ``(N, K)`` (float32, rows sum to 1) for face crops."""
        logits = self.logits(faces, color)
        if len(logits) == 0:
            return logits
        return softmax(logits, self.spec.temperature).astype(np.float32)

    def predict_scaled(self, x: np.ndarray) -> np.ndarray:
        """Calibrated probabilities ``(N, K)`` for faces already prepared the model's way, as
        float32 ``(N, C, S, S)`` scaled to [0, 1] rather than uint8: an augmented training batch,
        as distillation's teachers see it."""
        size, channels = self.spec.input_size, self.spec.channels
        if not (
            isinstance(x, np.ndarray)
            and x.dtype == np.float32
            and x.ndim == 4
            and x.shape[1:] == (channels, size, size)
        ):
            shape = getattr(x, "shape", type(x).__name__)
            raise InputError(
                f"expected float32 faces of shape (N, {channels}, {size}, {size}), got {shape}"
            )
        if len(x) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        return softmax(self._backend.logits_scaled(x), self.spec.temperature).astype(np.float32)

    def crop_faces(self, image: np.ndarray, faces: Sequence[Detection | Box]) -> list[np.ndarray]:
        """The crops of ``image`` this model expects for detected ``faces`` (or plain boxes).

        Aligned models (``preprocess.align``) get landmark-aligned crops, or box-framed ones
        calibrated to match when a face has no landmarks; others get the box grown by the
        model's face margin.
        """
        from emotrace.faces.align import align_face
        from emotrace.preprocessing import crop

        settings = self.spec.preprocess
        if settings.align:
            return [align_face(image, face, settings.framing, settings.size) for face in faces]
        boxes = [face.box if isinstance(face, Detection) else face for face in faces]
        return [crop(image, box, self.spec.face_margin) for box in boxes]
