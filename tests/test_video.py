"""The video pipeline end to end on videos built from real faces (astronaut, FER2013).

The bundled model may be a placeholder, so no test asserts which emotion it sees; where a label
must be known (flicker), a tiny ONNX model whose prediction is the face's brightness is built in
the test and loaded through the normal runtime.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import (
    assert_one_line_error,
    run_emotrace,
    run_emotrace_in_process,
    sigint_as_in_a_terminal,
)
from emotrace.faces import make_detector
from emotrace.runtime.classifier import EmotionClassifier
from emotrace.runtime.loading import default_model_path
from emotrace.runtime.recognizer import EmotionRecognizer
from emotrace.video import EmotionSmoother, FaceTracker, FrameResult, process, record_columns
from video_helpers import (
    head_of_height,
    moving_head_video,
    paste,
    read_all_frames,
    render,
    stalling_mjpeg_server,
    write_video,
)

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def emotrace(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The CLI in this process (its exit code, stdout and stderr, native output included)."""
    return run_emotrace_in_process(*args, timeout=timeout)


def label_changes(results: list[FrameResult], track_id: int) -> int:
    labels = [r.faces.labels[list(r.faces.track_ids).index(track_id)] for r in results]
    return sum(a != b for a, b in itertools.pairwise(labels))


@pytest.fixture(scope="module")
def recognizer() -> EmotionRecognizer:
    return EmotionRecognizer(detector=make_detector(), threads=1)


# -- the pipeline (Python API) ------------------------------------------------------------------


def test_one_moving_face_is_detected_in_every_frame_with_one_track(
    tmp_path: Path, recognizer: EmotionRecognizer
) -> None:
    path = moving_head_video(tmp_path / "one.avi", n=24)
    results = list(process(path, recognizer, detect_every=1))
    assert [r.index for r in results] == list(range(24))
    assert all(len(r.faces) == 1 and r.detected for r in results)
    assert {int(r.faces.track_ids[0]) for r in results} == {1}
    xs = [int(r.faces.boxes[0, 0]) for r in results]
    assert xs[-1] - xs[0] > 100, "the box follows the face across the frame"
    classes = recognizer.classifier.classes
    assert all(r.faces.labels[0] in classes for r in results)
    assert all(r.timings.detect > 0 and r.timings.classify > 0 for r in results)
    row = results[0].rows()[0]
    assert list(row) == record_columns(classes) and row["track_id"] == 1


def test_two_faces_keep_two_stable_tracks(tmp_path: Path, recognizer: EmotionRecognizer) -> None:
    head = head_of_height(120)

    def place(i: int) -> list[tuple[np.ndarray, int, int]]:
        return [(head, 5 + 2 * i, 60), (head, 210, 10 + 4 * i)]

    path = write_video(tmp_path / "two.avi", render(20, (320, 240), place))
    results = list(process(path, recognizer))
    assert sum(len(r.faces) == 2 for r in results) >= 18
    sides: dict[int, set[bool]] = {}
    for r in results:
        for (x, _, w, _), track in zip(r.faces.boxes, r.faces.track_ids, strict=True):
            sides.setdefault(int(track), set()).add(x + w / 2 > 160)
    assert len(sides) == 2 and all(len(s) == 1 for s in sides.values()), sides


def test_detect_every_n_classifies_tracked_boxes_in_between(
    tmp_path: Path, recognizer: EmotionRecognizer
) -> None:
    path = moving_head_video(tmp_path / "one.avi", n=18)
    results = list(process(path, recognizer, detect_every=3))
    assert [r.detected for r in results] == [i % 3 == 0 for i in range(18)]
    assert all(len(r.faces) == 1 and r.faces.track_ids[0] == 1 for r in results)
    assert all(r.timings.detect == 0 for r in results if not r.detected)
    truth = list(process(path, recognizer, detect_every=1))
    # From the second detection on, the tracker knows the face's speed and predicts its boxes.
    for guess, real in zip(results[3:], truth[3:], strict=True):
        error = np.abs(guess.faces.boxes[0, :2] - real.faces.boxes[0, :2]).max()
        assert error <= 0.25 * real.faces.boxes[0, 2], (guess.index, error)


@pytest.mark.slow
def test_frames_without_faces_tiny_faces_border_faces_and_4k_do_not_crash(
    tmp_path: Path, recognizer: EmotionRecognizer
) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    empty = render(1, (320, 240), lambda i: [])[0]
    tiny = render(1, (320, 240), lambda i: [(head_of_height(24), 150, 100)])[0]
    border = render(1, (320, 240), lambda i: [(head_of_height(150), -60, 130)])[0]
    big = render(1, (3840, 2160), lambda i: [(head_of_height(900), 2400, 700)])[0]
    for i, frame in enumerate([empty, tiny, border, big]):
        cv2.imwrite(str(folder / f"{i}.jpg"), frame)
    results = list(process(folder, recognizer, detect_every=1))  # unrelated images
    assert [len(r.faces) for r in results[:2]] == [0, 0]
    for r in results:
        height, width = r.image.shape[:2]
        boxes = r.faces.boxes
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 0] + boxes[:, 2] <= width).all()
        assert (boxes[:, 1] + boxes[:, 3] <= height).all()
    assert len(results[3].faces) == 1, "the 4K face is found on the downscaled copy"
    x, _, w, _ = results[3].faces.boxes[0]
    assert 2400 < x + w / 2 < 2400 + 720 and w > 300, "its box is in 4K pixels"
    assert results[0].rows()[0]["track_id"] is None


@pytest.fixture(scope="module")
def brightness_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ONNX model (32 px colour input): happy for a bright face, sad for a dark one."""
    onnx = pytest.importorskip("onnx", reason="building the test model needs onnx (train extra)")
    from onnx import TensorProto, helper

    head = head_of_height(150)
    means = []
    for gain in (1.0, 0.6):
        patch = (head * gain).astype(np.uint8)
        means.append(patch.astype(np.float64).mean() / 127.5 - 1.0)  # the runtime's scaling
    middle, half_gap = sum(means) / 2, abs(means[0] - means[1]) / 2
    k = 1.0 / half_gap  # logit gap of 2 (p about 0.88) at either brightness
    weight = np.array([[k, -k, 0.0]] * 3, np.float32) / 3  # mean over 3 channels
    bias = np.array([-k * middle, k * middle, 0.0], np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "w"], ["scaled"]),
            helper.make_node("Add", ["scaled", "b"], ["logits"]),
        ],
        "brightness",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 3])],
        [helper.make_tensor("w", TensorProto.FLOAT, [3, 3], weight.ravel().tolist()),
         helper.make_tensor("b", TensorProto.FLOAT, [3], bias.tolist())],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = {
        "architecture": "brightness",
        "classes": ["happy", "sad", "neutral"],
        "preprocess": {"size": 32, "gray": False, "face_crop": False, "margin": 0.0},
        "normalization": {"mean": 0.5, "std": 0.5},
        "face_margin": 0.0,
    }
    helper.set_model_props(model, {"emotrace": json.dumps(meta)})
    path = tmp_path_factory.mktemp("model") / "brightness.onnx"
    onnx.save(model, str(path))
    return path


def test_smoothing_lowers_label_flicker_end_to_end(tmp_path: Path, brightness_model: Path) -> None:
    head = head_of_height(150)
    bright, dark = head, (head * 0.6).astype(np.uint8)

    def place(i: int) -> list[tuple[np.ndarray, int, int]]:
        # 3 s of a face flickering between bright and dark every frame, then 3 s of dark.
        patch = (bright if i % 2 == 0 else dark) if i < 30 else dark
        return [(patch, 80, 45)]

    path = write_video(tmp_path / "flicker.avi", render(60, (320, 240), place), fps=10)
    classifier = EmotionClassifier(brightness_model)
    assert classifier.spec.input_size == 32 and classifier.spec.channels == 3
    shown = EmotionRecognizer(classifier, make_detector())
    raw = list(process(path, shown, smooth=False))
    smoothed = list(process(path, shown))
    assert all(len(r.faces) == 1 for r in raw + smoothed)
    seconds = 6.0
    raw_rate, smooth_rate = label_changes(raw, 1) / seconds, label_changes(smoothed, 1) / seconds
    assert raw_rate >= 4.5, f"raw labels should flicker ({raw_rate:.1f} changes/s)"
    assert smooth_rate <= 0.5 and smooth_rate < raw_rate / 5
    assert smoothed[0].faces.labels == ["happy"] and smoothed[-1].faces.labels == ["sad"]
    assert raw[-1].faces.labels == ["sad"]
    np.testing.assert_allclose(raw[0].raw.probabilities, raw[0].faces.probabilities)


def test_fer2013_faces_are_tracked_and_classified(
    tmp_path: Path, fer2013_dir: Path, recognizer: EmotionRecognizer
) -> None:
    detector = make_detector()
    chosen: list[np.ndarray] = []
    for name in ("happy", "surprise", "angry", "neutral"):
        for file in sorted((fer2013_dir / "valid" / name).glob("*.jpg"))[:10]:
            face = cv2.resize(cv2.imread(str(file)), (144, 144), interpolation=cv2.INTER_CUBIC)
            still = render(1, (320, 240), lambda i, f=face: [(f, 90, 50)])[0]  # type: ignore[misc]
            if len(detector.detect(still)) == 1:
                chosen.append(face)
                break
    assert len(chosen) == 4, "Haar finds faces in upscaled FER2013 crops"
    # One person changing expression every 4 frames, in place.
    frames = render(32, (320, 240), lambda i: [(chosen[(i // 4) % 4], 90, 50)])
    path = write_video(tmp_path / "fer.avi", frames)
    raw = list(process(path, recognizer, smooth=False))
    smoothed = list(process(path, recognizer))
    assert all(len(r.faces) == 1 for r in smoothed)
    assert {int(r.faces.track_ids[0]) for r in smoothed} == {1}
    assert label_changes(smoothed, 1) <= label_changes(raw, 1)
    assert {label for r in smoothed for label in r.faces.labels} <= set(
        recognizer.classifier.classes
    )


# -- the command line ---------------------------------------------------------------------------


def _clip_with_empty_ends(path: Path, codec: str = "MJPG") -> Path:
    head = head_of_height(150)
    frames = render(30, (320, 240), lambda i: [(head, 10 + 5 * i, 45)] if 5 <= i < 25 else [])
    return write_video(path, frames, fps=10, codec=codec)


def test_analyze_writes_records_annotated_video_and_summary(tmp_path: Path) -> None:
    clip = _clip_with_empty_ends(tmp_path / "clip.avi")
    out = tmp_path / "out"
    result = emotrace("analyze", clip, "-o", out, "--annotated", "--detect-every", "1")
    assert result.returncode == 0, result.stderr
    assert "30 frames" in result.stdout

    summary = json.loads((out / "summary.json").read_text())
    classes = tuple(summary["settings"]["model"]["classes"])
    with (out / "frames.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == record_columns(classes)
        rows = list(reader)
    jsonl = [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]
    assert len(rows) == len(jsonl) == 30
    assert [int(r["frame"]) for r in rows] == list(range(30))
    for row, record in zip(rows, jsonl, strict=True):
        assert list(record) == record_columns(classes)
        face = 5 <= int(row["frame"]) < 25
        assert (row["track_id"] != "") == face and (record["track_id"] is not None) == face
        if face:
            assert row["track_id"] == "1" and row["label"] in classes
            probs = [record[f"p_{c}"] for c in classes]
            assert abs(sum(probs) - 1) < 1e-3 and record["label"] == row["label"]
            assert float(row["time_s"]) == pytest.approx(int(row["frame"]) / 10)
        else:
            assert row["label"] == "" and record["label"] is None

    assert read_all_frames(out / "annotated.mp4") == 30
    assert summary["frames"] == 30 and summary["frames_with_faces"] == 20
    assert summary["tracks"] == 1 and summary["completed"] and summary["stop_reason"] == "end"
    assert summary["detector_runs"] == 30
    assert {"read", "detect", "classify", "track", "smooth", "overlay", "write_records"} <= set(
        summary["stages_ms_per_frame"]
    )
    assert summary["processed_fps"] > 0 and summary["outputs"]["video"] == "annotated.mp4"


def test_analyze_mp4_every_n_with_detection_every_n_and_no_smoothing(tmp_path: Path) -> None:
    clip = _clip_with_empty_ends(tmp_path / "clip.mp4", codec="mp4v")
    out = tmp_path / "out"
    result = emotrace(
        "analyze", clip, "-o", out, "--every", "2", "--detect-every", "2", "--no-smooth"
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((out / "frames.csv").open(newline="")))
    assert [int(r["frame"]) for r in rows] == list(range(0, 30, 2))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["smoothing"] is None and summary["detector_runs"] == 8


def _unknown_codec(tmp_path: Path) -> Path:
    path = moving_head_video(tmp_path / "zzzz.avi", n=3)
    path.write_bytes(path.read_bytes().replace(b"MJPG", b"ZZZZ"))  # a codec tag no decoder knows
    return path


def _empty_onnx(tmp_path: Path) -> Path:
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    return path


def _garbage_onnx(tmp_path: Path) -> Path:
    path = tmp_path / "yunet.onnx"
    path.write_bytes(os.urandom(2048))
    return path


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["analyze", "{tmp}/missing.mp4", "-o", "{tmp}/out"], ["missing.mp4", "no such file"]),
        (["analyze", "{zero}", "-o", "{tmp}/out"], ["empty file"]),
        (["analyze", "{garbage}", "-o", "{tmp}/out"], ["cannot open as a video"]),
        (["analyze", "{zzzz}", "-o", "{tmp}/out"], ["unsupported format or codec"]),
        (["analyze", "rtsp://127.0.0.1:9/none", "-o", "{tmp}/out", "--timeout", "2"],
         ["cannot connect to the stream"]),
        (["live", "--camera", "99", "--no-window", "--record", "{tmp}/out"],
         ["camera 99 cannot be opened"]),
        (["live", "--no-window"], ["--record"]),
        (["live", "--no-window", "--annotated", "--session", "s"], ["--annotated needs --record"]),
        (["analyze", "{clip}", "-o", "{tmp}/out", "--detector-model", "{tmp}/none.onnx"],
         ["no such YuNet model file"]),
        (["analyze", "{clip}", "-o", "{tmp}/out", "--detector", "yunet", "--detector-model",
          "{garbage_onnx}"], ["yunet.onnx: not a loadable ONNX model"]),
        (["analyze", "{clip}", "-o", "{tmp}/out", "--detector-model", "{empty_onnx}"],
         ["empty file, not a YuNet ONNX model"]),
        (["analyze", "{clip}", "-o", "{tmp}/out", "--detector-model", "{wrong_onnx}"],
         ["not a loadable YuNet ONNX model"]),
        (["analyze", "{clip}", "-o", "{tmp}/out", "--detector", "haar", "--detector-model",
          "{garbage}"], ["not a valid Haar cascade file"]),
        (["analyze", "{clip}", "-o", "{tmp}/out", "--score-threshold", "1.5"],
         ["--score-threshold must be in (0, 1], got 1.5"]),
        # OpenCV asserts scaleFactor > 1 only when the first frame is searched.
        (["analyze", "{clip}", "-o", "{tmp}/out", "--detector", "haar", "--scale-factor", "1.0"],
         ["--scale-factor must be a finite number > 1, got 1.0"]),
        (["analyze", "{clip}", "-o", "{tmp}/out", "--timeout", "-1"],
         ["--timeout", "must be a finite number > 0"]),
        (["analyze", "{clip}", "-o", "{tmp}/out", "--reconnects", "-1"],
         ["--reconnects", "must be 0 or more"]),
        (["analyze", "{clip}", "-o", "{tmp}/out", "--smooth-window", "inf"],
         ["--smooth-window", "must be a finite number > 0"]),
        (["predict", "{clip}", "--threads", "0"], ["--threads", "must be at least 1"]),
        # A setting of the other detector used to be ignored without a word.
        (["predict", "{clip}", "--scale-factor", "1.5"],
         ["--scale-factor tunes the haar detector; this run uses yunet"]),
        (["analyze", "{clip}", "-o", "{tmp}/out", "--detector", "haar", "--score-threshold", "0.5"],
         ["--score-threshold tunes the yunet detector; this run uses haar"]),
        (["serve", "--detector", "haar", "--nms-threshold", "0.5"],
         ["--nms-threshold tunes the yunet detector; this run uses haar"]),
        (["analyze", "{clip}", "-o", "{tmp}/out", "--max-side", "10"],
         ["--max-side", "must be 0 (never downscale) or at least 64, got 10"]),
    ],
    ids=["missing", "zero-byte", "garbage", "unknown-codec", "unreachable-stream", "camera-99",
         "no-window-no-record", "annotated-no-record", "yunet-missing", "yunet-corrupt",
         "yunet-empty", "yunet-wrong-model", "haar-corrupt", "bad-threshold", "haar-scale-1",
         "negative-timeout", "negative-reconnects", "infinite-window", "predict-zero-threads",
         "yunet-given-haar-setting", "haar-given-yunet-setting", "serve-haar-given-nms",
         "max-side-10"],
)  # fmt: skip
def test_bad_input_gives_one_line_and_exit_2(
    tmp_path: Path, args: list[str], fragments: list[str]
) -> None:
    zero = tmp_path / "zero.mp4"
    zero.write_bytes(b"")
    garbage = tmp_path / "garbage.avi"
    garbage.write_bytes(os.urandom(4096))
    names = {
        "tmp": tmp_path,
        "zero": zero,
        "garbage": garbage,
        "garbage_onnx": _garbage_onnx(tmp_path),
        "empty_onnx": _empty_onnx(tmp_path),
        # A real ONNX model that is not a face detector: emotrace's own emotion classifier.
        "wrong_onnx": default_model_path(),
        "zzzz": _unknown_codec(tmp_path),
        "clip": tmp_path / "zero.mp4",  # never opened: the detector fails first
    }
    # A source that FFmpeg opens needs a fresh process: OpenCV reads the log level the CLI sets
    # (OPENCV_FFMPEG_LOGLEVEL) once per process, so here FFmpeg's own lines could reach stderr.
    run = emotrace if "{clip}" in args else run_emotrace
    result = run(*(a.format(**names) for a in args))
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "out" / "frames.csv").exists(), "no output for a source never opened"


@pytest.mark.parametrize(
    ("bad", "fragments"),
    [
        (["--hysteresis", "2"], ["--hysteresis", "must be in [0, 1)"]),
        (["--max-age", "nan"], ["--max-age", "must be a finite number >= 0"]),
        (["--min-face", "-1"], ["--min-face", "must be 0 or more"]),
        (["--patient-track", "2"], ["--patient-track needs --session"]),
        (["--consent"], ["--consent needs --session"]),
        (["--session", "s", "--patient", "p", "--workspace", "{tmp}/ws", "--patient-track", "0"],
         ["--patient-track", "must be at least 1"]),
    ],
    ids=["hysteresis-2", "max-age-nan", "min-face-negative", "patient-track-alone",
         "consent-alone", "patient-track-0"],
)  # fmt: skip
def test_a_bad_setting_leaves_earlier_records_as_they_were(
    tmp_path: Path, bad: list[str], fragments: list[str]
) -> None:
    clip = moving_head_video(tmp_path / "clip.avi", n=6)
    out = tmp_path / "out"
    assert emotrace("analyze", clip, "-o", out).returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert len(before["frames.csv"].splitlines()) == 7  # header + 6 frames
    result = emotrace("analyze", clip, "-o", out, *(a.format(tmp=tmp_path) for a in bad))
    assert_one_line_error(result, *fragments)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not (tmp_path / "ws").exists()


def test_a_rerun_without_annotated_says_the_folder_keeps_an_older_video(tmp_path: Path) -> None:
    clip = moving_head_video(tmp_path / "clip.avi", n=6)
    out = tmp_path / "out"
    first = emotrace("analyze", clip, "-o", out, "--annotated")
    assert first.returncode == 0 and "earlier run" not in first.stderr
    again = emotrace("analyze", clip, "-o", out, "--annotated")
    assert again.returncode == 0 and "earlier run" not in again.stderr, "replaced: nothing to say"
    rerun = emotrace("analyze", clip, "-o", out, "--every", "2")
    assert rerun.returncode == 0, rerun.stderr
    assert f"{out / 'annotated.mp4'} is from an earlier run" in rerun.stderr
    assert read_all_frames(out / "annotated.mp4") == 6, "the user's video is left alone"
    assert "video" not in json.loads((out / "summary.json").read_text())["outputs"]


def test_live_window_on_headless_opencv_suggests_no_window() -> None:
    import importlib.util
    import re

    gui = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    if gui is None or gui.group(1).upper() != "NONE":
        pytest.skip("this OpenCV build has window support")
    if importlib.util.find_spec("fastapi") is not None:
        pytest.skip("with the serve extra, live opens the web page (test_serve_api)")
    assert_one_line_error(emotrace("live", "--camera", "99"), "no window support", "--no-window")


def test_truncated_video_flushes_the_records_before_the_failure(tmp_path: Path) -> None:
    full = moving_head_video(tmp_path / "full.avi", n=40)
    cut = tmp_path / "cut.avi"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    out = tmp_path / "out"
    # A real process: FFmpeg's complaints about the cut file must stay out of stderr (see above).
    result = run_emotrace("analyze", cut, "-o", out, "--annotated")
    line = assert_one_line_error(result, "cut.avi", "of 40 frames", "truncated")
    frames_done = int(line.split("ended after ")[1].split()[0])
    rows = list(csv.DictReader((out / "frames.csv").open(newline="")))
    assert len(rows) == frames_done > 10 and all(r["track_id"] == "1" for r in rows)
    assert len((out / "frames.jsonl").read_text().splitlines()) == frames_done
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == frames_done and not summary["completed"]
    assert summary["stop_reason"] == "error" and "truncated" in summary["error"]
    assert read_all_frames(out / "annotated.mp4") == frames_done, "the video is closed properly"


def test_ctrl_c_stops_cleanly_with_every_record_on_disk(tmp_path: Path) -> None:
    clip = moving_head_video(tmp_path / "long.avi", n=1200)  # far from done at the signal
    out = tmp_path / "out"
    process_ = subprocess.Popen(
        [sys.executable, "-m", "emotrace", "analyze", str(clip), "-o", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        preexec_fn=sigint_as_in_a_terminal,
    )
    csv_path = out / "frames.csv"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (
        not csv_path.exists() or len(csv_path.read_text().splitlines()) < 6
    ):
        time.sleep(0.05)
    process_.send_signal(signal.SIGINT)
    _, stderr = process_.communicate(timeout=30)
    assert process_.returncode == 130, stderr
    assert stderr.strip() == "emotrace: interrupted"
    summary = json.loads((out / "summary.json").read_text())
    rows = list(csv.DictReader(csv_path.open(newline="")))
    assert 5 <= len(rows) == summary["frames"] < 1200
    assert summary["stop_reason"] == "interrupted" and not summary["completed"]


@pytest.mark.slow
def test_stalled_stream_stops_cleanly_after_bounded_reconnects(tmp_path: Path) -> None:
    frames = render(8, (320, 240), lambda i: [(head_of_height(150), 80, 45)])
    out = tmp_path / "out"
    with stalling_mjpeg_server(frames) as url:  # a real process: FFmpeg opens the stream
        result = run_emotrace(
            "analyze", url, "-o", out, "--timeout", "1", "--reconnects", "1", timeout=30
        )
    assert result.returncode == 0, result.stderr
    warning = result.stderr.strip().splitlines()
    assert len(warning) == 1 and "stopped delivering frames" in warning[0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stop_reason"] == "stalled" and summary["completed"]
    assert summary["reconnects"] == 1 and summary["source"]["live"]
    rows = (out / "frames.jsonl").read_text().splitlines()
    assert len(rows) == summary["frames"] >= 2


def test_live_records_numbers_only_unless_annotated_is_asked(tmp_path: Path) -> None:
    clip = moving_head_video(tmp_path / "clip.avi", n=20)
    out = tmp_path / "rec"
    result = emotrace("live", "--camera", clip, "--no-window", "--record", out, "--max-frames", "8")
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 8 and summary["stop_reason"] == "max-frames"
    assert len((out / "frames.jsonl").read_text().splitlines()) == 8
    assert sorted(p.name for p in out.iterdir()) == ["frames.csv", "frames.jsonl", "summary.json"]
    assert "video" not in summary["outputs"], "no frames on disk without --annotated"

    opted = tmp_path / "opted"
    args = ("--no-window", "--record", opted, "--max-frames", "8", "--annotated")
    result = emotrace("live", "--camera", clip, *args)
    assert result.returncode == 0, result.stderr
    assert read_all_frames(opted / "annotated.mp4") == 8
    assert json.loads((opted / "summary.json").read_text())["outputs"]["video"] == "annotated.mp4"


def test_video_path_never_imports_torch(tmp_path: Path) -> None:
    clip = moving_head_video(tmp_path / "clip.avi", n=5)
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from emotrace.annotate import draw_overlay\n"
        "from emotrace import EmotionRecognizer\n"
        "from emotrace.video import VideoOutputs, open_source, process\n"
        "recognizer = EmotionRecognizer()\n"
        f"source = open_source({str(clip)!r})\n"
        f"folder = Path({str(tmp_path / 'out')!r})\n"
        "classes = recognizer.classifier.classes\n"
        "with VideoOutputs(folder, classes, source.info, annotated=True) as out:\n"
        "    for r in process(source, recognizer):\n"
        "        out.write(r, draw_overlay(r.image, r.faces, 30.0))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=ENV
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_every_default_of_the_pipeline_has_one_source() -> None:
    # Defaults live in video.options and faces.settings (which import no OpenCV, so the CLI's
    # --help reads them); every class and function that has one takes it from there.
    import inspect

    from emotrace.faces import factory, haar, yunet
    from emotrace.faces.settings import TUNING_DEFAULTS
    from emotrace.video import options, pipeline, smoothing

    assert pipeline.DEFAULT_DETECT_EVERY == options.DEFAULT_DETECT_EVERY
    assert inspect.signature(pipeline.process).parameters["detect_every"].default == 2
    assert smoothing.DEFAULT_WINDOW_S == options.DEFAULT_SMOOTH_WINDOW_S
    smoother = EmotionSmoother()
    assert (smoother.window_s, smoother.margin) == (0.4, options.DEFAULT_HYSTERESIS)
    assert FaceTracker().max_age_s == options.DEFAULT_MAX_AGE_S
    assert TUNING_DEFAULTS["yunet"]["score_threshold"] == yunet.DEFAULT_SCORE_THRESHOLD
    assert TUNING_DEFAULTS["yunet"]["nms_threshold"] == yunet.DEFAULT_NMS_THRESHOLD
    assert TUNING_DEFAULTS["haar"]["scale_factor"] == haar.DEFAULT_SCALE_FACTOR
    factory_defaults = inspect.signature(factory.make_detector).parameters
    assert factory_defaults["scale_factor"].default == haar.DEFAULT_SCALE_FACTOR


def test_paste_clips_at_the_border() -> None:
    frame = np.zeros((10, 10, 3), np.uint8)
    paste(frame, np.full((6, 6, 3), 255, np.uint8), -3, 7)
    assert frame[7:, :3].min() == 255 and frame.sum() == 255 * 3 * 3 * 3


def test_paths_with_brackets_are_printed_as_they_are(tmp_path: Path) -> None:
    # rich reads "[/b]" as a closing tag and "[bold]" as a style: output must not interpret paths.
    clip = moving_head_video(tmp_path / "[bold]clip.avi", n=3)
    out = tmp_path / "out[/b]"
    result = emotrace("analyze", clip, "-o", out)
    assert result.returncode == 0, result.stderr
    assert f"{out}/frames.csv" in result.stdout
    assert (out / "frames.csv").is_file()
