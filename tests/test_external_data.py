"""ONNX files whose weights live in external data files are refused before any loader sees them.

A crafted model (built here with the ``onnx`` package from the bundled ones) points one tensor's
data at a file outside its folder that holds a marker, as an attack on an older onnxruntime
would; inside its folder, as a harmless but still unsupported layout; and from places a simple
initializer check would miss (a ``Constant`` inside an ``If`` branch).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_one_line_error, face_like, run_emotrace, write_image
from emotrace.errors import ModelError
from emotrace.runtime.onnx_check import refuse_external_data

onnx = pytest.importorskip("onnx", reason="crafting the models needs the onnx package")

MARKER = b"OUTSIDE-SECRET-MARKER-5150 "
ASSETS = Path(str(resources.files("emotrace") / "assets"))


def _externalize(model: onnx.ModelProto, data_file: Path, location: str) -> str:
    """Move the largest initializer's bytes out: ``data_file`` gets the marker instead, the
    tensor names it by ``location``. The tensor's name."""
    tensor = max(model.graph.initializer, key=lambda t: len(t.raw_data))
    size = len(tensor.raw_data)
    assert size > 0
    data_file.parent.mkdir(parents=True, exist_ok=True)
    data_file.write_bytes((MARKER * (size // len(MARKER) + 1))[:size])
    tensor.ClearField("raw_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(size))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return str(tensor.name)


def _crafted(tmp_path: Path, source: str, where: str) -> tuple[Path, str, str]:
    """``source`` (a bundled file) re-saved as ``tmp_path/models/crafted.onnx`` with external
    data ``where`` ("outside" its folder, "inside" it, or at an "absolute" path)."""
    model = onnx.load(str(ASSETS / source))
    outside = tmp_path / "outside" / "secret.bin"
    data_file, location = {
        "outside": (outside, "../outside/secret.bin"),
        "absolute": (outside, str(outside)),
        "inside": (tmp_path / "models" / "weights.bin", "weights.bin"),
    }[where]
    name = _externalize(model, data_file, location)
    path = tmp_path / "models" / "crafted.onnx"
    path.parent.mkdir(exist_ok=True)
    onnx.save(model, str(path))
    return path, name, location


@pytest.fixture
def image(tmp_path: Path) -> Path:
    return write_image(tmp_path / "face.png", face_like(3, 96, color=True))


@pytest.mark.parametrize("where", ["outside", "absolute", "inside"])
def test_predict_refuses_a_model_with_external_data(
    tmp_path: Path, image: Path, where: str
) -> None:
    model, tensor, location = _crafted(tmp_path, "emotrace_default.onnx", where)
    result = run_emotrace("predict", "--model", model, image, cwd=tmp_path)
    assert_one_line_error(result, str(model), "external", tensor, location, "self-contained")
    assert MARKER.strip().decode() not in result.stdout + result.stderr
    assert not list(tmp_path.glob("*annotated*")), "nothing was predicted"


@pytest.mark.parametrize("where", ["outside", "inside"])
def test_predict_refuses_a_detector_with_external_data(
    tmp_path: Path, image: Path, where: str
) -> None:
    detector, tensor, location = _crafted(tmp_path, "face_detection_yunet_2023mar.onnx", where)
    result = run_emotrace("predict", "--detector-model", detector, image, cwd=tmp_path)
    assert_one_line_error(result, str(detector), "external", tensor, location)
    assert MARKER.strip().decode() not in result.stdout + result.stderr


def test_external_data_is_found_wherever_a_tensor_can_sit(tmp_path: Path) -> None:
    """A ``Constant`` node's value inside an ``If`` branch: no initializer at all."""
    helper = onnx.helper
    value = onnx.numpy_helper.from_array(np.ones(4, np.float32), "hidden")
    value.ClearField("raw_data")
    value.data_location = onnx.TensorProto.EXTERNAL
    entry = value.external_data.add()
    entry.key, entry.value = "location", "../../etc/passwd"
    out = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [4])
    branch = helper.make_graph(
        [helper.make_node("Constant", [], ["y"], value=value)], "branch", [], [out]
    )
    clean = helper.make_graph(
        [helper.make_node("Constant", [], ["y"], value=onnx.numpy_helper.from_array(np.zeros(4)))],
        "clean",
        [],
        [out],
    )
    cond = helper.make_tensor_value_info("c", onnx.TensorProto.BOOL, [])
    node = helper.make_node("If", ["c"], ["y"], then_branch=clean, else_branch=branch)
    model = helper.make_model(helper.make_graph([node], "g", [cond], [out]))
    with pytest.raises(ModelError, match=r"m\.onnx: refused: tensor 'hidden' .*'\.\./\.\./etc"):
        refuse_external_data(model.SerializeToString(), "m.onnx")
    # The same model with the tensor's bytes inside passes; so do the bundled models.
    (else_branch,) = (a.g for a in model.graph.node[0].attribute if a.name == "else_branch")
    inner = else_branch.node[0].attribute[0].t
    assert inner.name == "hidden"
    inner.ClearField("data_location")
    inner.ClearField("external_data")
    inner.raw_data = np.ones(4, np.float32).tobytes()
    refuse_external_data(model.SerializeToString(), "m.onnx")
    for bundled in ASSETS.glob("*.onnx"):
        refuse_external_data(bundled.read_bytes(), bundled.name)
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        refuse_external_data(b"not a protobuf at all" * 10, "garbage.onnx")
