"""Export and the torch-free inference path, on a small model trained in the test session."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import assert_one_line_error, make_class_folders
from conftest import run_emotrace_in_process as emotrace
from emotrace.cli.main import main as cli_main
from emotrace.data.cache import PreparedDataset, SplitArrays
from emotrace.errors import InputError, ModelError
from emotrace.preprocessing import Preprocess

torch = pytest.importorskip("torch", reason="export needs the train extra (torch)")
pytest.importorskip("onnxscript", reason="export needs the train extra (onnxscript)")


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from emotrace.training import TrainConfig, fit

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    classes = ["angry", "happy", "sad"]
    images = rng.integers(0, 256, (48, 40, 40, 1), dtype=np.uint8)
    labels = np.arange(48) % 3
    images[labels == 1, :20] = 255  # a learnable cue
    split = SplitArrays(images, labels)
    data = PreparedDataset(
        classes, Preprocess(size=40, gray=True), {"train": split, "valid": split}, key="t"
    )
    out = tmp_path_factory.mktemp("run")
    config = TrainConfig(
        epochs=1,
        batch_size=16,
        threads=1,
        channels_last=False,
        preprocess={"size": 40, "gray": True},
    )
    fit(config, data, out, progress=False, log=lambda _: None, plot=False)
    meta = json.loads((out / "model.json").read_text())
    meta["temperature"] = 2.0  # so that tests see it applied
    (out / "model.json").write_text(json.dumps(meta))
    return out


@pytest.fixture(scope="session")
def onnx_model(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from emotrace.export import export_onnx

    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    result = export_onnx(trained_run, path)
    assert result.max_abs_diff <= 1e-4
    return path


def test_export_matches_torch_and_carries_metadata(trained_run: Path, onnx_model: Path) -> None:
    import onnx

    from emotrace.runtime.onnx_backend import OnnxBackend
    from emotrace.runtime.torch_backend import TorchBackend

    props = {p.key: p.value for p in onnx.load(str(onnx_model)).metadata_props}
    meta = json.loads(props["emotrace"])
    assert meta["classes"] == ["angry", "happy", "sad"]
    assert meta["input_size"] == 40 and meta["temperature"] == 2.0
    assert meta["normalization"] == {"mean": 0.5, "std": 0.5}
    onnx_backend, torch_backend = OnnxBackend(onnx_model), TorchBackend(trained_run)
    for batch in (1, 37):  # the batch axis is dynamic
        x = np.random.default_rng(batch).integers(0, 256, (batch, 40, 40, 1), dtype=np.uint8)
        np.testing.assert_allclose(onnx_backend.logits(x), torch_backend.logits(x), atol=1e-4)


@pytest.mark.slow
def test_int8_export_is_smaller_and_agrees(
    trained_run: Path, onnx_model: Path, tmp_path: Path
) -> None:
    from emotrace.export import export_onnx
    from emotrace.runtime.onnx_backend import OnnxBackend

    calibration = np.random.default_rng(1).integers(0, 256, (64, 40, 40, 1), dtype=np.uint8)
    result = export_onnx(
        trained_run, tmp_path / "q.onnx", int8=True, calibration_images=calibration
    )
    assert result.int8 and result.path.stat().st_size < onnx_model.stat().st_size
    q, f = OnnxBackend(result.path), OnnxBackend(onnx_model)
    assert q.meta["quantization"]["format"] == "QDQ"
    x = calibration[:32]
    agreement = (q.logits(x).argmax(1) == f.logits(x).argmax(1)).mean()
    assert agreement >= 0.9


@pytest.mark.slow
def test_fp16_weight_export_halves_the_file_and_keeps_the_outputs(
    trained_run: Path, onnx_model: Path, tmp_path: Path
) -> None:
    import onnx
    from onnx import TensorProto

    from emotrace.runtime.onnx_backend import OnnxBackend

    path = tmp_path / "half.onnx"
    code = cli_main(["export", str(trained_run), "-o", str(path), "--fp16-weights"])
    assert code == 0
    proto = onnx.load(str(path))
    weight_types = {init.data_type for init in proto.graph.initializer if len(init.dims) > 1}
    assert weight_types == {TensorProto.FLOAT16}
    assert path.stat().st_size < 0.6 * onnx_model.stat().st_size
    half, full = OnnxBackend(path), OnnxBackend(onnx_model)
    assert half.meta == full.meta  # one file is still a complete model
    x = np.random.default_rng(5).integers(0, 256, (16, 40, 40, 1), dtype=np.uint8)
    out_half, out_full = half.logits(x), full.logits(x)
    assert out_half.dtype == np.float32
    np.testing.assert_allclose(out_half, out_full, atol=2e-2)
    assert not np.array_equal(out_half, out_full)  # the weights really were rounded
    assert (out_half.argmax(1) == out_full.argmax(1)).mean() >= 0.9


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["-o", "{run}/model.safetensors"], "*.onnx"),
        (["-o", "{run}/model.json"], "*.onnx"),
        (["--int8", "--data", "{data}", "--float-twin", "{run}/model.json"], "*.onnx"),
        (["--int8", "--data", "{data}", "--calibration-images", "-40"], "at least 1"),
        (["--int8", "--data", "{data}", "--qat-epochs", "nan"], "--qat-epochs must be >= 0"),
    ],
)
def test_export_options_that_would_destroy_the_checkpoint_or_mislead_are_refused(
    args: list[str],
    fragment: str,
    trained_run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # -o RUN/model.safetensors wrote the ONNX file over the checkpoint; --calibration-images -40
    # calibrated on all but 40 images; --qat-epochs nan passed the >= 0 check.
    monkeypatch.setenv("EMOTRACE_CACHE", str(tmp_path / "cache"))
    run = Path(shutil.copytree(trained_run, tmp_path / "run"))
    data = make_class_folders(tmp_path / "ds", {"angry": 3, "happy": 3, "sad": 3}, size=40)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    filled = [a.format(run=run, data=data) for a in args]
    if "-o" not in args:
        filled = ["-o", str(tmp_path / "x.onnx"), *filled]
    try:
        code = cli_main(["export", str(run), *filled])
    except SystemExit as exc:  # argparse's refusal of an option's value
        code = exc.code
    assert code == 2
    assert fragment in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    assert not (tmp_path / "x.onnx").exists()


def test_int8_with_fp16_weights_is_refused(trained_run: Path, tmp_path: Path) -> None:
    from emotrace.export import export_onnx

    calibration = np.zeros((4, 40, 40, 1), np.uint8)
    with pytest.raises(ModelError, match="int8 or fp16"):
        export_onnx(
            trained_run,
            tmp_path / "x.onnx",
            int8=True,
            calibration_images=calibration,
            fp16_weights=True,
        )


def test_classifier_accepts_every_face_layout(onnx_model: Path) -> None:
    from emotrace import EmotionClassifier

    clf = EmotionClassifier(onnx_model)
    rng = np.random.default_rng(2)
    bgr = rng.integers(0, 256, (90, 70, 3), dtype=np.uint8)
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    one = clf.predict(bgr)
    assert one.shape == (1, 3) and one.dtype == np.float32
    np.testing.assert_allclose(one.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(clf.predict(bgr[:, :, ::-1].copy(), color="rgb"), one, atol=1e-6)
    np.testing.assert_allclose(clf.predict(gray), one, atol=1e-6)
    np.testing.assert_allclose(clf.predict(np.dstack([bgr, np.full((90, 70), 255, np.uint8)])), one)
    mixed = clf.predict([bgr, gray[:40, :50], rng.integers(0, 256, (200, 120, 3), dtype=np.uint8)])
    assert mixed.shape == (3, 3)
    np.testing.assert_allclose(mixed[0], one[0], atol=1e-6)
    assert clf.predict(np.stack([gray, gray])).shape == (2, 3)
    assert clf.predict([]).shape == (0, 3)


def test_classifier_applies_the_temperature(onnx_model: Path) -> None:
    from emotrace import EmotionClassifier

    clf = EmotionClassifier(onnx_model)
    face = np.random.default_rng(3).integers(0, 256, (40, 40), dtype=np.uint8)
    logits = clf.logits(face)[0].astype(np.float64)
    expected = np.exp(logits / 2.0) / np.exp(logits / 2.0).sum()
    np.testing.assert_allclose(clf.predict(face)[0], expected, rtol=1e-5)


@pytest.mark.parametrize(
    ("faces", "message"),
    [
        (np.zeros((48, 48), np.float32), "uint8"),
        (np.zeros((2, 2, 48, 48, 1), np.uint8), "shape"),
        ([np.zeros((0, 5), np.uint8)], "not an image"),
        ([np.zeros((20, 20, 2), np.uint8)], "channels"),
        (["face.png"], "uint8"),
        (None, "got None .cv2.imread gives None"),
        (3, "expected a face image array or a list of them, got int"),
    ],
)
def test_classifier_rejects_bad_input(onnx_model: Path, faces: object, message: str) -> None:
    from emotrace import EmotionClassifier

    with pytest.raises(InputError, match=message):
        EmotionClassifier(onnx_model).predict(faces)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (None, "got None .cv2.imread gives None"),
        (np.zeros((0, 0, 3), np.uint8), "empty image"),  # was a ZeroDivisionError
        (np.zeros((120, 120, 3), np.float32), "expected a uint8 image, got float32"),
        (np.zeros((120, 120, 2), np.uint8), "not a gray, BGR or BGRA image"),
        ("photo.jpg", "expected an image array, got str"),
    ],
)
def test_recognizer_and_detectors_reject_bad_frames(image: object, message: str) -> None:
    from emotrace import EmotionRecognizer
    from emotrace.faces import make_detector

    with pytest.raises(InputError, match=message):
        EmotionRecognizer().recognize(image)  # type: ignore[arg-type]
    for detector in (make_detector("yunet"), make_detector("haar", max_side=None)):
        with pytest.raises(InputError, match=message):
            detector.detect(image)  # type: ignore[arg-type]


def test_negative_threads_are_a_config_error() -> None:
    from emotrace import EmotionClassifier
    from emotrace.errors import ConfigError

    with pytest.raises(ConfigError, match="threads must be a whole number >= 0"):
        EmotionClassifier("default", threads=-1)
    assert EmotionClassifier("default", threads=0).predict(np.zeros((48, 48), np.uint8)).shape == (
        1,
        7,
    )


def test_prepared_float_faces_give_the_same_probabilities(
    onnx_model: Path, trained_run: Path
) -> None:
    """``predict_scaled`` (float faces in [0, 1], as distillation's teachers get augmented
    batches) answers as ``predict`` does on the same faces, on both backends."""
    from emotrace import EmotionClassifier

    rng = np.random.default_rng(4)
    faces = [rng.integers(0, 256, (60, 50, 3), dtype=np.uint8) for _ in range(5)]
    for model in (onnx_model, trained_run):
        clf = EmotionClassifier(model)
        prepared = clf.prepare(faces)
        scaled = prepared.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        np.testing.assert_allclose(clf.predict_scaled(scaled), clf.predict(faces), atol=1e-5)
        assert clf.predict_scaled(scaled[:0]).shape == (0, len(clf.classes))
        for bad in (prepared, scaled[0], scaled.astype(np.float64), scaled[:, :, 1:]):
            with pytest.raises(InputError, match="expected float32 faces of shape"):
                clf.predict_scaled(bad)


@pytest.mark.slow  # an ONNX export without metadata
def test_bad_model_files_raise_model_error(tmp_path: Path, onnx_model: Path) -> None:
    import onnx

    from emotrace import EmotionClassifier

    with pytest.raises(ModelError, match="no such model"):
        EmotionClassifier(tmp_path / "missing.onnx")
    # A config or a photo given as the model: say what a model is, not "metadata missing".
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("model: emonet\n")
    with pytest.raises(ModelError, match=r"recipe\.yaml: not a model \(give default"):
        EmotionClassifier(recipe)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a protobuf at all" * 10)
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        EmotionClassifier(garbage)
    # A working ONNX model without emotrace's metadata (the export's, stripped: a second export
    # of the model would cost seconds of torch.onnx).
    bare = tmp_path / "bare.onnx"
    proto = onnx.load(str(onnx_model))
    del proto.metadata_props[:]
    onnx.save(proto, str(bare))
    assert not onnx.load(str(bare)).metadata_props
    import onnxruntime

    onnxruntime.InferenceSession(str(bare), providers=["CPUExecutionProvider"])  # it loads
    with pytest.raises(ModelError, match="no emotrace metadata"):
        EmotionClassifier(bare)


def test_inference_path_never_imports_torch(onnx_model: Path) -> None:
    code = (
        "import sys, numpy as np\n"
        "from emotrace import EmotionClassifier, EmotionRecognizer\n"
        f"clf = EmotionClassifier({str(onnx_model)!r})\n"
        "p = clf.predict(np.zeros((64, 64, 3), np.uint8))\n"
        "EmotionRecognizer(clf).recognize(np.zeros((120, 160, 3), np.uint8))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print(p.shape)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(1, 3)"


def _astronaut(path: Path) -> Path:
    data = pytest.importorskip("skimage.data", reason="scikit-image (demo extra) not installed")
    cv2.imwrite(str(path), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    return path


def test_predict_annotates_same_named_photos_apart_and_refuses_a_bad_folder(
    onnx_model: Path, tmp_path: Path
) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / "x.png"), np.full((80, 80, 3), 127, np.uint8))
    photos = [tmp_path / "a" / "x.png", tmp_path / "b" / "x.png"]
    out = tmp_path / "ann"
    result = emotrace("predict", *photos, "--model", onnx_model, "--json", "--annotate", out)
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout[: result.stdout.rindex("]") + 1])
    assert [r["annotated"] for r in records] == [
        str(out / "x_emotrace.png"),
        str(out / "x_2_emotrace.png"),
    ]
    assert sorted(p.name for p in out.iterdir()) == ["x_2_emotrace.png", "x_emotrace.png"]

    a_file = tmp_path / "a" / "x.png"
    not_a_folder = emotrace("predict", *photos, "--model", onnx_model, "--annotate", a_file)
    assert_one_line_error(not_a_folder, f"--annotate {a_file}: exists and is not a folder")
    below_a_file = emotrace("predict", *photos, "--model", onnx_model, "--annotate", a_file / "sub")
    assert_one_line_error(below_a_file, "cannot create the folder")


def test_predict_takes_folders_and_skips_its_own_annotated_copies(
    onnx_model: Path, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    (photos / "day2").mkdir(parents=True)
    gray = np.full((80, 80, 3), 127, np.uint8)
    for name in ("b.png", "a.jpg", "day2/c.png"):
        cv2.imwrite(str(photos / name), gray)
    (photos / "notes.txt").write_text("not an image")
    out = photos / "annotated"  # inside the folder given: a rerun must not classify its copies
    for _ in range(2):
        result = emotrace("predict", photos, "--model", onnx_model, "--json", "--annotate", out)
        assert result.returncode == 0, result.stderr
        records = json.loads(result.stdout[: result.stdout.rindex("]") + 1])
        assert [Path(r["file"]).relative_to(photos).as_posix() for r in records] == [
            "a.jpg",
            "b.png",
            "day2/c.png",
        ]
    assert sorted(p.name for p in out.iterdir()) == [
        "a_emotrace.png",
        "b_emotrace.png",
        "c_emotrace.png",
    ]

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("no photos here")
    assert_one_line_error(
        emotrace("predict", photos / "a.jpg", empty, "--model", onnx_model),
        f"{empty}: a folder with no image files",
    )


def test_predict_cli_reports_faces_no_faces_and_unreadable_files(
    onnx_model: Path, tmp_path: Path
) -> None:
    photo = _astronaut(tmp_path / "astronaut.png")
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 127, np.uint8))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff truncated")
    cmd = [sys.executable, "-m", "emotrace", "predict", photo, blank, broken, "--model", onnx_model]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [*map(str, cmd), "--json", "--annotate", str(tmp_path / "ann")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout[: result.stdout.rindex("]") + 1])
    by_name = {Path(r["file"]).name: r for r in records}
    face = by_name["astronaut.png"]["faces"][0]
    assert set(face) == {
        "box", "score", "landmarks", "yaw", "pitch", "roll", "label", "confidence", "probabilities"
    }  # fmt: skip
    assert all(abs(face[angle]) < 30 for angle in ("yaw", "pitch", "roll"))  # she faces us
    box = face["box"]
    assert 150 < box["x"] + box["w"] / 2 < 280
    assert 0.7 <= face["score"] <= 1.0, "YuNet, the default detector, scores its faces"
    right_eye, left_eye, nose, mouth_right, mouth_left = face["landmarks"]
    assert right_eye[0] < left_eye[0] and mouth_right[0] < mouth_left[0]
    assert max(right_eye[1], left_eye[1]) < nose[1] < min(mouth_right[1], mouth_left[1])
    for px, py in face["landmarks"]:
        assert box["x"] <= px <= box["x"] + box["w"] and box["y"] <= py <= box["y"] + box["h"]
    assert face["label"] in ("angry", "happy", "sad")
    assert abs(sum(face["probabilities"].values()) - 1) < 1e-3
    assert by_name["blank.png"]["faces"] == [] and by_name["blank.png"]["error"] is None
    assert "broken.jpg" in by_name["broken.jpg"]["error"]
    assert "skipped" in result.stderr and "broken.jpg" in result.stderr
    annotated = cv2.imread(str(tmp_path / "ann" / "astronaut_emotrace.png"))
    assert annotated is not None and annotated.shape == (512, 512, 3)
    assert by_name["astronaut.png"]["annotated"] == str(tmp_path / "ann" / "astronaut_emotrace.png")
    assert "annotated" not in by_name["broken.jpg"]

    table = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, timeout=60, env=env)
    assert "no face found" in table.stdout and "unreadable" in table.stdout

    only_broken = subprocess.run(
        [sys.executable, "-m", "emotrace", "predict", str(broken), "--model", str(onnx_model)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert only_broken.returncode == 2
    assert only_broken.stderr.strip().splitlines()[-1].startswith("emotrace: error: ")
