"""What every loaded model tells its users: classes, input geometry, normalisation, temperature.

The same fields live in checkpoint JSON sidecars and in ONNX ``metadata_props``, so inference never
hard-codes an input size or a class order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emotrace.errors import ModelError
from emotrace.preprocessing import Preprocess

#: Haar boxes run from brows to chin; FER2013-style crops show a little more (forehead, jaw).
DEFAULT_FACE_MARGIN = 0.1


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to turn a face crop into this model's input and read its output."""

    name: str
    classes: tuple[str, ...]
    preprocess: Preprocess
    mean: float = 0.5
    std: float = 0.5
    temperature: float = 1.0
    version: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    #: Margin added around a detector's face box before cropping, as a fraction of the box.
    face_margin: float = DEFAULT_FACE_MARGIN

    def summary(self) -> dict[str, Any]:
        """What records and session settings say about the model (plain JSON)."""
        return {
            "name": self.name,
            "classes": list(self.classes),
            "input_size": self.input_size,
            "gray": self.preprocess.gray,
            "face_margin": self.face_margin,
            "align": self.preprocess.align,
        }

    @property
    def input_size(self) -> int:
        """Square input side in pixels."""
        return self.preprocess.size

    @property
    def channels(self) -> int:
        """1 for gray models, 3 for colour (BGR)."""
        return self.preprocess.channels

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], name: str = "") -> ModelSpec:
        """Read the checkpoint/ONNX metadata layout (see ``training.run.checkpoint_meta``)."""
        try:
            preprocess = Preprocess.from_dict(dict(meta["preprocess"]))
            norm = meta.get("normalization", {})
            return cls(
                name=name or str(meta.get("architecture", "model")),
                classes=tuple(meta["classes"]),
                preprocess=preprocess,
                mean=float(norm.get("mean", 0.5)),
                std=float(norm.get("std", 0.5)),
                temperature=float(meta.get("temperature", 1.0)),
                version=str(meta.get("emotrace_version", "")),
                metrics=dict(meta.get("metrics", {})),
                face_margin=float(
                    meta.get(
                        "face_margin",
                        preprocess.margin if preprocess.face_crop else DEFAULT_FACE_MARGIN,
                    )
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"model metadata is incomplete or invalid ({exc})") from None
