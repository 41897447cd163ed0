"""Quantisation-aware fine-tuning for int8 export, on a small MobileNetV2 trained here."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import (
    assert_one_line_error,
    finer_activation_rounding,
    make_class_folders,
    run_emotrace_in_process,
    sigint_as_in_a_terminal,
)

torch = pytest.importorskip("torch", reason="int8 fine-tuning needs the train extra (torch)")
pytest.importorskip("onnxscript", reason="export needs the train extra (onnxscript)")

SIZE = 32  # the smallest input MobileNetV2's five stride-2 stages take


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("faces")
    return make_class_folders(root, {"angry": 24, "happy": 24, "sad": 24}, size=SIZE)


@pytest.fixture(scope="module")
def mobilenet_run(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from emotrace.data.prepared import load_prepared
    from emotrace.preprocessing import Preprocess
    from emotrace.training import TrainConfig, fit

    torch.set_num_threads(1)
    preprocess = {"size": SIZE, "gray": True}
    data = load_prepared(
        dataset, Preprocess.from_dict(preprocess), cache_dir=tmp_path_factory.mktemp("cache")
    )
    out = tmp_path_factory.mktemp("mnv2")
    config = TrainConfig(
        model="mobilenet_v2",
        epochs=2,
        batch_size=16,
        lr=3e-3,
        threads=1,
        channels_last=False,
        preprocess=preprocess,
        augment={"hflip": 0.5, "rotation": 10},
    )
    fit(config, data, out, progress=False, log=lambda _: None, plot=False)
    return out


def _images(dataset: Path, split: str) -> np.ndarray:
    import cv2

    files = sorted((dataset / split).glob("*/*.png"))
    return np.stack([cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)[..., None] for f in files])


@pytest.mark.slow
def test_int8_simulation_follows_onnxruntime_and_leaves_the_model_as_it_was(
    mobilenet_run: Path, dataset: Path, tmp_path: Path
) -> None:
    from emotrace.export import export_onnx
    from emotrace.export.qat import Int8Simulation, read_quant_points
    from emotrace.runtime.onnx_backend import OnnxBackend
    from emotrace.training.checkpoint import load_checkpoint

    train, valid = _images(dataset, "train"), _images(dataset, "valid")
    int8 = export_onnx(mobilenet_run, tmp_path / "q.onnx", int8=True, calibration_images=train)
    points = read_quant_points(int8.path)
    assert len(points.conv_outputs) == len(points.conv_inputs) == 52
    assert len(points.residual_sums) == 10
    assert not points.classifier_int8  # the recipe keeps the classifier float

    checkpoint = load_checkpoint(mobilenet_run)
    model, spec = checkpoint.model, OnnxBackend(int8.path).spec
    x = (
        torch.from_numpy(valid.transpose(0, 3, 1, 2).astype(np.float32)) / 255 - spec.mean
    ) / spec.std
    with torch.inference_mode():
        fp32 = model(x).numpy()
        with Int8Simulation(model, points):
            simulated = model(x).numpy()
        after = model(x).numpy()
    onnxruntime_int8 = OnnxBackend(int8.path).logits(valid)
    # The simulation reproduces most of what int8 rounding does to the logits.
    assert (
        np.abs(simulated - onnxruntime_int8).mean() < 0.3 * np.abs(fp32 - onnxruntime_int8).mean()
    )
    np.testing.assert_array_equal(after, fp32)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def cli_export(
    mobilenet_run: Path, dataset: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One ``emotrace export --int8`` with fine-tuning and a float twin (two tests read it: each
    export of MobileNetV2 costs seconds of torch.onnx). In-process: nothing here is about the
    process itself (Ctrl+C is the interrupted export's test)."""
    weights = mobilenet_run / "model.safetensors"
    before = _digest(weights)
    folder = tmp_path_factory.mktemp("cli-export")
    int8, twin = folder / "tuned_int8.onnx", folder / "twin.onnx"
    result = run_emotrace_in_process(
        "export", mobilenet_run, "-o", int8, "--int8", "--data", dataset,
        "--qat-epochs", "2", "--qat-lr", "1e-4", "--qat-augment", "--qat-learn-scales",
        "--float-twin", twin, "--fp16-weights", cwd=folder,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return {
        "stdout": result.stdout, "folder": folder, "int8": int8, "twin": twin,
        "weights_before": before, "weights_after": _digest(weights),
    }  # fmt: skip


@pytest.mark.slow
def test_export_int8_with_fine_tuning_from_the_cli(
    cli_export: dict[str, Any], dataset: Path
) -> None:
    from emotrace.runtime.onnx_backend import OnnxBackend

    stdout, out = cli_export["stdout"], cli_export["int8"]
    # 2 epochs of 72 images in batches of 64
    assert "int8 fine-tuning: 3 steps over 72 training images (2 epochs)" in stdout
    assert "Collecting tensor data" not in stdout  # onnxruntime's prints are kept out
    assert "int8 gives the fp32 model's answer on" in stdout
    assert "of 72 valid images" in stdout
    quantization = OnnxBackend(out).meta["quantization"]
    assert quantization["fine_tuning"]["steps"] == 3
    assert quantization["fine_tuning"]["train_images"] == 72
    assert quantization["fine_tuning"]["learned_scales"] is True
    # The run's own training augmentation was reused.
    assert quantization["fine_tuning"]["augment"] == {"hflip": 0.5, "rotation": 10}
    # the checkpoint is the teacher; it is not changed
    assert cli_export["weights_after"] == cli_export["weights_before"]
    # no temp files
    assert sorted(p.name for p in cli_export["folder"].glob("*.onnx")) == [
        "tuned_int8.onnx", "twin.onnx"
    ]  # fmt: skip
    probabilities = OnnxBackend(out).logits(_images(dataset, "valid"))
    assert probabilities.shape == (72, 3) and np.isfinite(probabilities).all()


@pytest.mark.slow
def test_an_interrupted_export_leaves_the_earlier_model_in_place(
    mobilenet_run: Path, dataset: Path, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from emotrace.runtime.loading import default_model_path

    out = tmp_path / "m_int8.onnx"
    out.write_bytes(default_model_path("default-int8").read_bytes())  # an earlier, good model
    before = _digest(out)
    export = subprocess.Popen(
        [sys.executable, "-m", "emotrace", "export", str(mobilenet_run), "-o", str(out),
         "--int8", "--data", str(dataset)],
        cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1",
                           "EMOTRACE_CACHE": str(tmp_path / ".cache")},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        preexec_fn=sigint_as_in_a_terminal,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("*.tmp.onnx")) and export.poll() is None:
        assert time.monotonic() < deadline, "the export wrote no staged file"
        time.sleep(0.02)
    export.send_signal(signal.SIGINT)  # Ctrl+C, while the new model is being made
    _, stderr = export.communicate(timeout=120)
    assert export.returncode == 130, stderr
    assert _digest(out) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".cache") == ["m_int8.onnx"]


def test_fine_tuning_bad_requests_are_one_line_errors(
    mobilenet_run: Path, dataset: Path, tmp_path: Path
) -> None:
    from emotrace.data.prepared import load_prepared
    from emotrace.preprocessing import Preprocess
    from emotrace.training import TrainConfig, fit

    out = tmp_path / "x.onnx"
    no_int8 = run_emotrace_in_process(
        "export", mobilenet_run, "-o", out, "--qat-epochs", "1", cwd=tmp_path
    )
    assert_one_line_error(no_int8, "--qat-epochs", "--int8")
    negative = run_emotrace_in_process(
        "export", mobilenet_run, "-o", out, "--int8", "--data", dataset, "--qat-epochs", "-1",
        cwd=tmp_path,
    )  # fmt: skip
    assert_one_line_error(negative, "--qat-epochs must be >= 0")
    no_epochs = run_emotrace_in_process(
        "export", mobilenet_run, "-o", out, "--int8", "--data", dataset, "--qat-augment",
        cwd=tmp_path,
    )  # fmt: skip
    assert_one_line_error(no_epochs, "need --qat-epochs")

    preprocess = {"size": SIZE, "gray": True}
    data = load_prepared(dataset, Preprocess.from_dict(preprocess), cache_dir=tmp_path / "c")
    cnn_run = tmp_path / "cnn"
    config = TrainConfig(
        model="cnn", epochs=1, batch_size=16, threads=1, channels_last=False, preprocess=preprocess
    )
    fit(config, data, cnn_run, progress=False, log=lambda _: None, plot=False)
    other = run_emotrace_in_process(
        "export", cnn_run, "-o", out, "--int8", "--data", dataset, "--qat-epochs", "1",
        cwd=tmp_path,
    )  # fmt: skip
    assert_one_line_error(other, "supports mobilenet_v2, not cnn")
    assert not out.exists()
    meta = json.loads((cnn_run / "model.json").read_text())
    assert meta["architecture"] == "cnn"


@pytest.mark.slow
def test_float_twin_is_the_int8_model_computed_in_float(
    cli_export: dict[str, Any], dataset: Path, tmp_path: Path
) -> None:
    import onnx
    from onnx import numpy_helper

    from emotrace.errors import ModelError
    from emotrace.export.float_twin import write_float_twin
    from emotrace.runtime.onnx_backend import OnnxBackend

    int8, twin = cli_export["int8"], cli_export["twin"]
    assert f"wrote {twin} (float twin of the int8 model, fp16 weights" in cli_export["stdout"]
    assert "int8 gives its float twin's answer on" in cli_export["stdout"]

    ops = [node.op_type for node in onnx.load(str(twin)).graph.node]
    assert "QuantizeLinear" not in ops and "DequantizeLinear" not in ops
    meta = OnnxBackend(twin).meta
    assert "quantization" not in meta  # a float model ...
    assert meta["float_twin"]["quantization"]["format"] == "QDQ"  # ... made from this int8 one
    assert ops.count("Clip") >= meta["float_twin"]["activation_roundings_clipped"] > 50

    # The twin's weights are the int8 file's, dequantised (then stored in fp16).
    int8_consts = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(int8)).graph.initializer}
    twin_consts = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(twin)).graph.initializer}
    checked = 0
    for node in onnx.load(str(int8)).graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in int8_consts:
            q, scale = int8_consts[node.input[0]], int8_consts[node.input[1]]
            if q.ndim == 4:  # a convolution's weights, one scale per output channel
                dequantised = (q.astype(np.float32) * scale[:, None, None, None]).astype(np.float16)
                stored = twin_consts[node.output[0] + "__fp16"]
                np.testing.assert_array_equal(stored, dequantised)
                checked += 1
    assert checked == 52  # every convolution

    # Only activation rounding separates int8 from its twin: with that rounding 256 times finer,
    # int8 lands next to the twin. (Comparing with the original fp32 model instead says nothing
    # here: this run's labels are random, its logits are the same for every image, and on one CPU
    # the ratio of the two distances went from 0.2 to 1.9 with the training seed.)
    valid = _images(dataset, "valid")
    finer = finer_activation_rounding(int8, tmp_path / "m_int16_activations.onnx")
    from_twin = OnnxBackend(twin).logits(valid)
    to_int8 = np.abs(OnnxBackend(int8).logits(valid) - from_twin).mean()
    to_finer = np.abs(OnnxBackend(finer).logits(valid) - from_twin).mean()
    assert to_finer < 0.2 * to_int8, (to_finer, to_int8)

    with pytest.raises(ModelError, match="not an int8 QDQ model"):
        write_float_twin(twin, tmp_path / "again.onnx")


def test_float_twin_bad_requests_are_one_line_errors(mobilenet_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.onnx"
    no_int8 = run_emotrace_in_process(
        "export", mobilenet_run, "-o", out, "--float-twin", tmp_path / "t.onnx"
    )
    assert_one_line_error(no_int8, "--float-twin", "add --int8")
    same = run_emotrace_in_process(
        "export", mobilenet_run, "-o", out, "--int8", "--data", tmp_path, "--float-twin", out
    )
    assert_one_line_error(same, "--float-twin must be another file than -o")
    assert not out.exists()
