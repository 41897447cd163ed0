from __future__ import annotations

import numpy as np
import pytest

from emotrace.errors import ConfigError
from emotrace.faces import HaarFaceDetector, largest
from emotrace.preprocessing import Preprocess, crop, expand_box, prepare_face


def astronaut_bgr() -> np.ndarray:
    data = pytest.importorskip("skimage.data", reason="scikit-image (demo extra) not installed")
    return np.ascontiguousarray(data.astronaut()[:, :, ::-1])


def test_prepare_face_resizes_and_converts() -> None:
    image = np.zeros((100, 80, 3), np.uint8)
    image[..., 2] = 255  # pure red in BGR
    gray = prepare_face(image, Preprocess(size=48, gray=True))
    assert gray.shape == (48, 48) and gray.dtype == np.uint8
    assert 70 < gray.mean() < 80  # red's luma weight is ~0.299
    colour = prepare_face(image[:, :, 0], Preprocess(size=32, gray=False))
    assert colour.shape == (32, 32, 3)


def test_equalize_spreads_a_low_contrast_face_and_keeps_colour_shape() -> None:
    rng = np.random.default_rng(0)
    dull = rng.integers(100, 140, (60, 60), dtype=np.uint8)
    out = prepare_face(dull, Preprocess(size=48, equalize=True))
    assert out.std() > 3 * prepare_face(dull, Preprocess(size=48)).std()
    assert abs(float(out.mean()) - 128) < 10
    colour = prepare_face(np.dstack([dull] * 3), Preprocess(size=32, gray=False, equalize=True))
    assert colour.shape == (32, 32, 3) and colour.std() > 40


def test_crop_with_margin_is_clipped_to_the_image() -> None:
    assert expand_box((10, 10, 20, 20), 0.5, 100, 100) == (0, 0, 40, 40)
    assert expand_box((90, 90, 20, 20), 0.0, 100, 100) == (90, 90, 10, 10)
    image = np.arange(100 * 100, dtype=np.uint32).reshape(100, 100)
    assert crop(image, (10, 20, 5, 6)).shape == (6, 5)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"size": 4}, "size"),
        ({"margin": 2.0}, "margin"),
        # Settings also arrive from YAML and from model files' metadata: wrong kinds name the key.
        ({"size": "abc"}, "preprocess.size must be a whole number, got 'abc'"),
        ({"size": True}, "preprocess.size must be a whole number"),
        ({"gray": "maybe"}, "preprocess.gray must be true or false"),
        ({"margin": [0.1]}, "preprocess.margin must be a number"),
        ({"eye_line": "high"}, "preprocess.eye_line must be a number"),
    ],
)
def test_invalid_preprocess_settings(settings: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Preprocess(**settings)  # type: ignore[arg-type]


def test_preprocess_round_trip_and_unknown_keys() -> None:
    settings = Preprocess(size=64, gray=False, face_crop=True, margin=0.2, equalize=True)
    assert Preprocess.from_dict(settings.to_dict()) == settings
    with pytest.raises(ConfigError, match="unknown preprocessing keys"):
        Preprocess.from_dict({"size": 48, "colour": True})
    with pytest.raises(ConfigError, match="preprocess must be a mapping"):
        Preprocess.from_dict(48)  # type: ignore[arg-type]
    # YAML 1.1 reads 2e-1 as text; it is still the number.
    assert Preprocess.from_dict({"margin": "2e-1"}).margin == 0.2


def test_haar_detector_finds_the_astronaut_face() -> None:
    image = astronaut_bgr()
    found = HaarFaceDetector().detect(image)
    assert found, "no face found on astronaut.png"
    x, y, w, h = found[0].box
    # Her face is in the upper middle of the 512x512 photo.
    assert 150 < x + w / 2 < 280 and 50 < y + h / 2 < 180 and 60 < w < 200
    assert found[0].landmarks is None and found[0].detector == "haar"
    assert largest(found) == found[0]


def test_haar_detector_on_blank_and_tiny_images() -> None:
    detector = HaarFaceDetector(min_size=30)
    assert detector.detect(np.zeros((240, 320), np.uint8)) == []
    assert detector.detect(np.zeros((10, 10, 3), np.uint8)) == []
