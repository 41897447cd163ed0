"""compose_ensemble: one ONNX file that answers as the mean of its members, or a clear refusal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from emotrace.errors import ModelError
from emotrace.runtime.onnx_backend import METADATA_KEY, OnnxBackend

onnx = pytest.importorskip("onnx", reason="composing an ensemble needs the train extra (onnx)")
from emotrace.export.ensemble import compose_ensemble  # noqa: E402

CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def member(
    path: Path,
    size: int,
    seed: int,
    mean: float = 0.5,
    std: float = 0.5,
    temperature: float = 1.0,
    classes: list[str] = CLASSES,
    align: bool = True,
) -> Path:
    """A small real ONNX classifier: logits = W . (the face's 4x4 block means) + b, so its answer
    depends on where in the face the light is (a mirror image gets another answer)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    block = size // 4
    weights = rng.normal(0, 3, (16, len(classes))).astype(np.float32)
    bias = rng.normal(0, 0.5, len(classes)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node(
                "AveragePool",
                ["x"],
                ["pooled"],
                kernel_shape=[block, block],
                strides=[block, block],
            ),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("Gemm", ["flat", "w", "b"], ["logits"]),
        ],
        "member",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(classes)])],
        initializer=[numpy_helper.from_array(weights, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    preprocess = {"size": size, "gray": True, "equalize": True, "align": align}
    meta = {
        "architecture": "toy",
        "classes": classes,
        "input_size": size,
        "channels": 1,
        "normalization": {"mean": mean, "std": std},
        "preprocess": preprocess,
        "temperature": temperature,
        "name": path.stem,
    }
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    onnx.save(model, str(path))
    return path


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def faces(size: int, count: int = 12) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, (count, size, size, 1), dtype=np.uint8)


@pytest.mark.parametrize("flip", [False, True])
def test_the_ensemble_answers_as_the_mean_of_its_tempered_members(
    tmp_path: Path, flip: bool
) -> None:
    big = member(tmp_path / "big.onnx", 16, seed=1, mean=0.449, std=0.226, temperature=0.8)
    small = member(tmp_path / "small.onnx", 8, seed=2, temperature=1.3)
    out = tmp_path / "ensemble.onnx"
    meta = compose_ensemble([big, small], out, name="toy-ensemble", flip=flip)

    images = faces(16)
    # What each member answers on its own, given the face the way it expects it: the small one
    # gets the face reduced by 2x2 block means (an area resize).
    reduced = images.reshape(len(images), 8, 2, 8, 2, 1).astype(np.float32).mean(axis=(2, 4))

    def members_mean(x16: np.ndarray, x8: np.ndarray) -> np.ndarray:
        big_p = softmax(OnnxBackend(big).logits(x16) / 0.8)
        small_p = softmax(OnnxBackend(small).logits_scaled(x8.transpose(0, 3, 1, 2) / 255) / 1.3)
        return (big_p + small_p) / 2

    expected = members_mean(images, reduced)
    if flip:
        mirrored = members_mean(images[:, :, ::-1], reduced[:, :, ::-1])
        assert np.abs(mirrored - expected).max() > 0.05  # the mirror really changes the answer
        expected = (expected + mirrored) / 2
    ensemble = OnnxBackend(out)
    np.testing.assert_allclose(np.exp(ensemble.logits(images)), expected, atol=1e-5)
    # It describes itself: the first member's geometry, and every member with its checksum.
    assert ensemble.spec.input_size == 16 and ensemble.spec.name == "toy-ensemble"
    assert (ensemble.spec.mean, ensemble.spec.std) == (0.449, 0.226)
    assert ensemble.spec.temperature == 1.0
    assert [m["input_size"] for m in meta["ensemble"]["members"]] == [16, 8]
    assert meta["ensemble"]["flip"] is flip
    assert all(len(m["sha256"]) == 64 for m in meta["ensemble"]["members"])
    assert ensemble.meta == meta


def test_the_ensemble_of_one_members_certain_answer_has_no_infinite_logit(tmp_path: Path) -> None:
    a = member(tmp_path / "a.onnx", 8, seed=3, temperature=0.001)
    b = member(tmp_path / "b.onnx", 8, seed=4, temperature=0.001)
    out = tmp_path / "e.onnx"
    compose_ensemble([a, b], out, name="sharp", flip=False)
    assert np.isfinite(OnnxBackend(out).logits(faces(8))).all()


def test_members_that_cannot_be_averaged_are_refused_in_one_line(tmp_path: Path) -> None:
    base = member(tmp_path / "base.onnx", 16, seed=1)
    cases = {
        "classes": member(tmp_path / "c.onnx", 16, seed=2, classes=CLASSES[::-1]),
        "frames faces differently from": member(tmp_path / "f.onnx", 16, seed=2, align=False),
        "does not divide": member(tmp_path / "s.onnx", 12, seed=2),
    }
    for words, other in cases.items():
        with pytest.raises(ModelError, match=words) as caught:
            compose_ensemble([base, other], tmp_path / "out.onnx", name="bad")
        assert "\n" not in str(caught.value)
    with pytest.raises(ModelError, match="at least two members"):
        compose_ensemble([base], tmp_path / "out.onnx", name="one")
    with pytest.raises(ModelError, match="no such model file"):
        compose_ensemble([base, tmp_path / "missing.onnx"], tmp_path / "out.onnx", name="gone")
    assert not (tmp_path / "out.onnx").exists()  # nothing half-written is left behind
