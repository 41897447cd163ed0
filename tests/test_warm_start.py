"""Warm starts from the bundled default's float twin (emotrace.training.warm_start)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from emotrace.errors import ModelError  # noqa: E402
from emotrace.models import build  # noqa: E402
from emotrace.runtime.onnx_backend import OnnxBackend  # noqa: E402
from emotrace.training.warm_start import exported_weights, warm_start_mobilenet_v2  # noqa: E402

ASSETS = Path(__file__).resolve().parent.parent / "src" / "emotrace" / "assets"
DEFAULT = ASSETS / "emotrace_default.onnx"


def faces(size: int, count: int = 96) -> torch.Tensor:
    """Smooth random gray images, normalised as the default's metadata says (0.449, 0.226)."""
    rng = np.random.default_rng(0)
    coarse = rng.random((count, 1, 8, 8)).astype(np.float32)
    images = torch.nn.functional.interpolate(torch.from_numpy(coarse), size, mode="bilinear")
    return (images - 0.449) / 0.226


def test_the_default_rebuilt_from_its_float_twin_answers_as_the_file_does() -> None:
    # Nearly: the file also clips every tensor to its int8 range, which a torch net does not. On
    # aligned FER2013 valid the rebuilt net scores 69.10% against the file's 69.16%.
    model = build("mobilenet_v2", in_channels=1, input_size=96).eval()
    images = faces(96)
    message = warm_start_mobilenet_v2(model, DEFAULT, images)
    assert "52 convolutions" in message
    with torch.no_grad():
        ours = model(images).numpy()
    theirs = OnnxBackend(DEFAULT).logits_scaled(images.numpy() * 0.226 + 0.449)
    assert (ours.argmax(1) == theirs.argmax(1)).mean() >= 0.9
    assert np.abs(ours - theirs).mean() < 0.1 * np.abs(theirs).mean()


def test_a_training_batch_starts_where_the_exported_model_was() -> None:
    # Training normalises each batch by its own statistics: the BatchNorm layers were given the
    # statistics these images have, so a batch of them in train mode gives the eval answers.
    model = build("mobilenet_v2", in_channels=1, input_size=96)
    images = faces(96)
    warm_start_mobilenet_v2(model, DEFAULT, images)
    model.head.dropout.p = 0.0  # the head's dropout aside
    with torch.no_grad():
        evaluated = model.eval()(images)
        trained = model.train()(images)
    assert (trained.argmax(1) == evaluated.argmax(1)).float().mean() >= 0.95
    assert (trained - evaluated).abs().mean() < 0.1 * evaluated.abs().mean()


def test_a_shallower_one_channel_net_takes_the_blocks_it_keeps() -> None:
    weights, _ = exported_weights(DEFAULT)
    model = build(
        "mobilenet_v2",
        in_channels=1,
        input_size=64,
        gray_mode="adapt",
        repeats=[1, 1, 2, 2, 2, 2, 1],
    )
    warm_start_mobilenet_v2(model, DEFAULT, faces(64))
    stem = model.features[0][0].weight.detach().numpy()
    np.testing.assert_allclose(stem, weights["features.0.0.weight"].sum(axis=1, keepdims=True))
    kept = model.features[3].conv[0][0].weight.detach().numpy()  # the paper's block 4
    np.testing.assert_array_equal(kept, weights["features.4.conv.0.0.weight"])
    np.testing.assert_array_equal(model.head.fc.weight.detach().numpy(), weights["head.fc.weight"])
    with torch.no_grad():
        assert model.eval()(faces(64, 4)).shape == (4, 7)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (ASSETS / "emotrace_default_int8.onnx", "no named trained weights found"),
        (ASSETS / "emotrace_accurate.onnx", "no named trained weights found"),
        (ASSETS / "NOTICE", "not a readable ONNX file"),
    ],
)
def test_files_without_float_weights_are_refused_in_one_line(source: Path, message: str) -> None:
    model = build("mobilenet_v2", in_channels=1, input_size=64)
    with pytest.raises(ModelError, match=message) as caught:
        warm_start_mobilenet_v2(model, source, faces(64, 4))
    assert "\n" not in str(caught.value)


def test_another_class_count_is_refused() -> None:
    model = build("mobilenet_v2", num_classes=3, in_channels=1, input_size=64)
    with pytest.raises(ModelError, match="classifier does not fit"):
        warm_start_mobilenet_v2(model, DEFAULT, faces(64, 4))
