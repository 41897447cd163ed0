"""Tracker and smoother on synthetic box and probability streams: deterministic, no model."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from emotrace.errors import ConfigError, InputError
from emotrace.results import FaceEmotions
from emotrace.video import EmotionSmoother, FaceTracker

CLASSES = ("angry", "happy", "sad", "neutral")


def faces_at(*boxes: tuple[int, int, int, int], probs: np.ndarray | None = None) -> FaceEmotions:
    n = len(boxes)
    p = probs if probs is not None else np.full((n, len(CLASSES)), 1 / len(CLASSES))
    return FaceEmotions(np.array(boxes, np.int64).reshape(n, 4), p, CLASSES)


def label_changes(labels: list[str]) -> int:
    return sum(a != b for a, b in itertools.pairwise(labels))


# -- tracking -----------------------------------------------------------------------------------


def test_tracker_follows_two_moving_faces_with_stable_ids() -> None:
    tracker = FaceTracker()
    seen: dict[str, set[int]] = {"left": set(), "right": set()}
    for i in range(30):
        t = i / 10
        # The left face moves right, the right face moves down; the detector lists them by size,
        # which swaps halfway (the right face shrinks).
        left, right = (20 + 6 * i, 50, 80, 80), (400, 30 + 5 * i, 100 - i, 100 - i)
        order = [left, right] if i >= 15 else [right, left]
        tracked = tracker.update(faces_at(*order), t)
        names = ["left", "right"] if i >= 15 else ["right", "left"]
        ids = dict(zip(names, tracked.track_ids, strict=True))
        for name, track_id in ids.items():
            seen[name].add(int(track_id))
    assert seen == {"left": {2}, "right": {1}}  # ids follow the first frame's order


def test_tracker_survives_missed_detections_but_not_long_absences() -> None:
    tracker = FaceTracker(max_age_s=1.0)
    box = (100, 100, 60, 60)
    assert tracker.update(faces_at(box), 0.0).track_ids.tolist() == [1]
    for t in (0.1, 0.2, 0.3):  # three frames without a detection
        assert len(tracker.update(faces_at(), t)) == 0
    assert tracker.update(faces_at((104, 101, 60, 60)), 0.4).track_ids.tolist() == [1]
    tracker.update(faces_at(), 1.0)
    # Gone for 1.1 s > max_age_s: the same place now holds a new person.
    assert tracker.update(faces_at(box), 1.5).track_ids.tolist() == [2]


def test_a_pause_between_frames_renumbers_no_one() -> None:
    # A still group (five faces) streamed by a page that paused 1.5 s (a click, a busy tab):
    # every id was renewed and the chosen patient lost. Only a processed frame can show a face
    # missing.
    tracker = FaceTracker(max_age_s=1.0)
    group = [(20 + 120 * i, 100, 80, 80) for i in range(5)]
    for t in (0.0, 0.1, 0.2):
        assert tracker.update(faces_at(*group), t).track_ids.tolist() == [1, 2, 3, 4, 5]
    assert tracker.update(faces_at(*group), 1.7).track_ids.tolist() == [1, 2, 3, 4, 5]
    # Missing from the frame at 1.8 and still missing at 3.0: gone, and a new id after that.
    assert tracker.update(faces_at(*group[1:]), 1.8).track_ids.tolist() == [2, 3, 4, 5]
    assert tracker.update(faces_at(*group[1:]), 3.0).track_ids.tolist() == [2, 3, 4, 5]
    assert tracker.update(faces_at(*group), 3.1).track_ids.tolist() == [6, 2, 3, 4, 5]


def test_tracker_centroid_fallback_and_prediction() -> None:
    tracker = FaceTracker()
    tracker.update(faces_at((0, 100, 50, 50)), 0.0)
    tracker.update(faces_at((30, 100, 50, 50)), 0.1)  # IoU 0.25: still an overlap match
    # A jump without overlap, but within one face size and of similar size: same face.
    assert tracker.update(faces_at((75, 105, 48, 48)), 0.2).track_ids.tolist() == [1]
    # A face of very different size far away is someone else.
    assert tracker.update(faces_at((75, 105, 48, 48), (400, 20, 200, 200)), 0.3).track_ids[1] == 2
    boxes, ids, _ = tracker.predict(0.4)
    assert ids.tolist() == [1, 2]
    assert boxes[0][0] > 75, "the moving face is predicted further along its path"


def test_tracker_rejects_bad_settings() -> None:
    with pytest.raises(ConfigError):
        FaceTracker(iou_threshold=0)
    with pytest.raises(ConfigError):
        FaceTracker(max_age_s=-1)


# -- smoothing ----------------------------------------------------------------------------------


def flickering_stream(n: int = 120, seed: int = 0) -> np.ndarray:
    """happy and sad almost tied with noise (raw argmax flips often), then sad clearly leads."""
    rng = np.random.default_rng(seed)
    p = np.zeros((n, len(CLASSES)))
    lead = np.where(np.arange(n) < 80, 0.0, 0.35)  # sad's real lead after frame 80
    noise = rng.normal(0, 0.08, n)
    p[:, 1] = 0.4 - lead / 2 + noise
    p[:, 2] = 0.4 + lead / 2 - noise
    p[:, 0] = p[:, 3] = 0.1
    p = np.clip(p, 0.01, None)
    return p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("method", ["ema", "window"])
def test_smoothing_and_hysteresis_cut_flicker_but_follow_real_changes(method: str) -> None:
    stream = flickering_stream()
    smoother = EmotionSmoother(window_s=10 / 30, method=method, margin=0.1)  # type: ignore[arg-type]
    raw, shown = [], []
    for i, p in enumerate(stream):
        faces = faces_at((10, 10, 50, 50), probs=p[None])
        faces.track_ids[:] = 7
        out = smoother.update(faces, i / 30)
        raw.append(faces.labels[0])
        shown.append(out.labels[0])
        np.testing.assert_allclose(out.probabilities.sum(), 1.0, atol=1e-5)
        assert out.confidences[0] == out.probabilities[0, out.label_ids[0]]
    fps, seconds = 30, len(stream) / 30
    raw_rate, shown_rate = label_changes(raw) / seconds, label_changes(shown) / seconds
    assert raw_rate > 5 * fps / 30, f"the synthetic stream should flicker ({raw_rate}/s)"
    assert shown_rate <= raw_rate / 10
    assert shown[-1] == "sad" and shown[100:] == ["sad"] * 20, "a clear change is followed"


def test_smoother_keeps_tracks_apart_evicts_them_and_passes_untracked_faces() -> None:
    smoother = EmotionSmoother(window_s=0.5, max_age_s=1.0)
    happy, sad = np.array([[0.1, 0.7, 0.1, 0.1]]), np.array([[0.1, 0.1, 0.7, 0.1]])
    for i in range(5):
        faces = faces_at((0, 0, 10, 10), (50, 0, 10, 10), probs=np.vstack([happy, sad]))
        faces.track_ids[:] = [1, 2]
        out = smoother.update(faces, i * 0.1)
    assert out.labels == ["happy", "sad"] and len(smoother) == 2
    untracked = faces_at((0, 0, 10, 10), probs=sad)
    assert smoother.update(untracked, 0.6).labels == ["sad"]
    assert len(smoother) == 2
    smoother.update(faces_at(), 2.0)
    assert len(smoother) == 0, "tracks unseen for longer than max_age_s are dropped"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"window_s": 0}, ConfigError),
        ({"max_age_s": 0}, ConfigError),
        ({"method": "median"}, ConfigError),
        ({"margin": 1.5}, ConfigError),
    ],
)
def test_smoother_rejects_bad_settings(kwargs: dict[str, object], error: type) -> None:
    with pytest.raises(error):
        EmotionSmoother(**kwargs)  # type: ignore[arg-type]


def test_held_labels_travel_with_the_result() -> None:
    p = np.array([[0.1, 0.5, 0.3, 0.1], [0.7, 0.1, 0.1, 0.1]])
    faces = FaceEmotions(
        np.array([[0, 0, 9, 9], [5, 5, 20, 20]]), p, CLASSES, held_label_ids=[2, 0]
    )
    assert faces.labels == ["sad", "angry"]
    np.testing.assert_allclose(faces.confidences, [0.3, 0.7])
    assert faces.select([1]).labels == ["angry"]
    assert next(faces.records())["label"] == "sad"
    with pytest.raises(InputError):
        FaceEmotions(faces.boxes, p, CLASSES, held_label_ids=[0, 9])
