"""Live views switch to the fast model on crowded frames, say so, and record the rule."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import assert_one_line_error, face_like, run_emotrace_in_process
from emotrace.errors import ConfigError
from emotrace.runtime.classifier import EmotionClassifier
from emotrace.runtime.recognizer import CrowdSwitch, EmotionRecognizer
from emotrace.video import CrowdOptions
from emotrace.video.defaults import DEFAULT_CROWD_FACES, DEFAULT_CROWD_MODEL


def group(faces: int) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """A BGR frame holding ``faces`` different face-like images, and their boxes."""
    frame = np.full((120, 100 * faces, 3), 60, np.uint8)
    boxes = []
    for i in range(faces):
        face = cv2.cvtColor(face_like(i, 80), cv2.COLOR_GRAY2BGR)
        frame[20:100, 100 * i + 10 : 100 * i + 90] = face
        boxes.append((100 * i + 10, 20, 80, 80))
    return frame, boxes


def test_frames_with_more_faces_than_the_threshold_get_the_fast_model() -> None:
    fast = EmotionClassifier("fast")
    switching = EmotionRecognizer(detector=None, crowd=CrowdSwitch(fast, above=2))
    default_only = EmotionRecognizer(detector=None)
    fast_only = EmotionRecognizer(fast, detector=None)
    for faces in (1, 2, 3, 5):
        frame, boxes = group(faces)
        result = switching.classify_boxes(frame, boxes)
        crowded = faces > 2
        peer = fast_only if crowded else default_only
        np.testing.assert_allclose(
            result.probabilities, peer.classify_boxes(frame, boxes).probabilities, atol=1e-6
        )
        assert result.crowd_model == ("fast" if crowded else "")
        # It travels with the faces through the tracker, the smoother and a subset.
        assert result.replace(track_ids=np.arange(faces)).crowd_model == result.crowd_model
        assert result.select([0]).crowd_model == result.crowd_model
    # The two models answer differently, so the equalities above tell them apart.
    frame, boxes = group(3)
    assert not np.allclose(
        default_only.classify_boxes(frame, boxes).probabilities,
        fast_only.classify_boxes(frame, boxes).probabilities,
        atol=1e-3,
    )


def test_the_crowd_options_are_checked_and_off_when_they_would_change_nothing() -> None:
    assert CrowdOptions() == CrowdOptions(DEFAULT_CROWD_MODEL, DEFAULT_CROWD_FACES)
    assert CrowdOptions(above=0).switch("default") is None  # 0: never
    assert CrowdOptions(model="fast").switch("fast") is None  # already the fast model
    switch = CrowdOptions(above=3).switch("default")
    assert switch is not None and switch.above == 3 and switch.name == "fast"
    assert CrowdOptions().record(switch)["crowd"]["above_faces"] == 3
    assert CrowdOptions().record(None) == {"crowd": None}
    for bad in (-1, 1.5, True):
        with pytest.raises(ConfigError, match="--crowd-faces"):
            CrowdOptions(above=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="crowd threshold"):
        CrowdSwitch(EmotionClassifier("fast"), above=0)


def test_live_records_the_crowd_rule_and_refuses_bad_crowd_options(tmp_path: Path) -> None:
    frame, _ = group(5)
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"{i}.png"), cv2.resize(frame, None, fx=2, fy=2))
    out = tmp_path / "out"
    result = run_emotrace_in_process(
        "live", "--camera", frames, "--no-window", "--record", out, "--crowd-faces", "2"
    )
    assert result.returncode == 0, result.stderr
    settings = json.loads((out / "summary.json").read_text())["settings"]
    assert settings["crowd"]["name"] == "fast" and settings["crowd"]["above_faces"] == 2
    assert_one_line_error(
        run_emotrace_in_process("live", "--crowd-faces", "-1"), "--crowd-faces", "-1"
    )
    assert_one_line_error(
        run_emotrace_in_process(
            "live", "--camera", frames, "--no-window", "--record", out, "--crowd-model", "nope"
        ),
        "nope",
    )
    # serve checks its crowd and file models before it listens.
    for flag in ("--crowd-model", "--file-model"):
        assert_one_line_error(
            run_emotrace_in_process(
                "serve", "--port", "0", "--workspace", tmp_path / "ws", flag, "nope.onnx"
            ),
            "nope.onnx",
            "no such model",
        )
