"""The bundled models on real FER2013 faces: int8 must agree with fp32 on whatever CPU runs this."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from emotrace import EmotionClassifier
from emotrace.faces.align import align_dataset_image, dataset_detector

#: ISA extensions that change which int8 kernels onnxruntime picks; printed with any failure.
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8")


def cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])  # fmt: skip
    return " ".join(f for f in ISA_FLAGS if f in flags) or "no AVX2"


@pytest.fixture(scope="module")
def valid_faces(fer2013_dir: Path) -> list[np.ndarray]:
    """Every 9th FER2013 valid image (about 400, all classes), cut as the model expects: aligned
    crops at the model's size, or the whole 48 px image where no face is found (as in training);
    the classifier resizes and normalises each."""
    spec = EmotionClassifier("default").spec.preprocess
    files = sorted((fer2013_dir / "valid").glob("*/*.jpg"))[::9]
    detector = dataset_detector()
    faces = []
    for path in files:
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if spec.align:
            image, _ = align_dataset_image(image, detector, spec)
        faces.append(image)
    return faces


@pytest.mark.needs_shared
def test_int8_agrees_with_fp32_on_real_faces(valid_faces: list[np.ndarray]) -> None:
    fp32 = EmotionClassifier("default").predict(valid_faces)
    int8 = EmotionClassifier("default-int8").predict(valid_faces)
    agreement = float((fp32.argmax(1) == int8.argmax(1)).mean())
    assert len(valid_faces) > 350
    assert agreement >= 0.98, f"int8 agrees on {agreement:.1%} of faces on a CPU with {cpu_flags()}"
    assert float(np.abs(fp32 - int8).max()) < 0.3
