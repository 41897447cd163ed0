"""Evaluation: metrics against hand-computed values, temperature scaling, and ``emotrace evaluate``.

The end-to-end tests train a small model on generated images in-process, then run the command as
a user would (the CLI's ``main`` in this process: the same exit code and output, no interpreter
start).
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import assert_one_line_error, make_class_folders
from conftest import run_emotrace_in_process as emotrace
from emotrace.data.cache import PreparedDataset, SplitArrays, save
from emotrace.evaluation import (
    compute_metrics,
    expected_calibration_error,
    fit_temperature,
    softmax,
)
from emotrace.evaluation.compare import mcnemar_exact_p, wilson_interval
from emotrace.preprocessing import Preprocess
from emotrace.training import TrainConfig, fit

# Six predictions over three classes, chosen so that every figure can be worked out by hand.
#            true  predicted  confidence  top-2 holds the true class
PROBS = np.array(
    [
        [0.72, 0.18, 0.10],  # 0     0     0.72  yes
        [0.92, 0.05, 0.03],  # 0     0     0.92  yes
        [0.30, 0.62, 0.08],  # 0     1     0.62  yes (0 is second)
        [0.18, 0.72, 0.10],  # 1     1     0.72  yes
        [0.30, 0.08, 0.62],  # 1     2     0.62  no  (top-2 is 2, 0)
        [0.10, 0.08, 0.82],  # 2     2     0.82  yes
    ]
)
Y_TRUE = np.array([0, 0, 0, 1, 1, 2])
ABC = ["a", "b", "c"]


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Tiny models: on a busy 2-core machine extra threads only wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_metrics_match_hand_computed_values() -> None:
    m = compute_metrics(Y_TRUE, PROBS, ABC)
    assert m["n"] == 6 and m["classes"] == ABC
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["top2_accuracy"] == pytest.approx(5 / 6)
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    # a: P 2/2, R 2/3 -> F1 0.8.  b: P 1/2, R 1/2 -> 0.5.  c: P 1/2, R 1/1 -> 2/3.
    expected = {
        "a": (1.0, 2 / 3, 0.8, 3),
        "b": (0.5, 0.5, 0.5, 2),
        "c": (0.5, 1.0, 2 / 3, 1),
    }
    for name, (precision, recall, f1, support) in expected.items():
        row = m["per_class"][name]
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx(
            (precision, recall, f1)
        )
        assert row["support"] == support
    assert m["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert m["weighted_f1"] == pytest.approx((3 * 0.8 + 2 * 0.5 + 1 * 2 / 3) / 6)
    nll = -sum(math.log(p) for p in (0.72, 0.92, 0.30, 0.72, 0.08, 0.82)) / 6
    assert m["loss"] == pytest.approx(nll)
    # AUC of c (one-vs-rest): its one positive (0.82) outranks all five negatives.
    assert m["per_class"]["c"]["auc"] == pytest.approx(1.0)


def test_ece_matches_hand_computed_value() -> None:
    # 15 equal bins: 0.62 x2 (both wrong), 0.72 x2 (both right), 0.82 (right), 0.92 (right).
    expected = (2 * abs(0 - 0.62) + 2 * abs(1 - 0.72) + abs(1 - 0.82) + abs(1 - 0.92)) / 6
    assert expected_calibration_error(PROBS, Y_TRUE) == pytest.approx(expected)
    assert compute_metrics(Y_TRUE, PROBS, ABC)["ece"] == pytest.approx(expected)
    # Confident and always right is perfectly calibrated.
    assert expected_calibration_error(np.eye(3), np.arange(3)) == pytest.approx(0.0)


def test_class_without_support_is_reported_but_left_out_of_averages() -> None:
    # A fourth class that is never the truth and never predicted (like neutral on CK+).
    probs = np.hstack([PROBS, np.zeros((6, 1))])
    m = compute_metrics(Y_TRUE, probs, [*ABC, "d"])
    assert m["per_class"]["d"]["support"] == 0 and m["per_class"]["d"]["auc"] is None
    assert m["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert m["macro_auc"] == pytest.approx(
        np.mean([m["per_class"][c]["auc"] for c in ABC]), rel=1e-9
    )


def sample_labels(logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One label per row drawn from ``softmax(logits)``: logits calibrated by construction."""
    cumulative = softmax(logits).cumsum(axis=1)
    return (cumulative > rng.random((len(logits), 1))).argmax(axis=1)


def test_fit_temperature_recovers_a_known_temperature() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 1.5, (20_000, 5))
    y = sample_labels(z, rng)
    assert fit_temperature(z, y) == pytest.approx(1.0, rel=0.05)
    # Logits three times too confident: dividing by T = 3 restores calibration.
    temperature = fit_temperature(3 * z, y)
    assert temperature == pytest.approx(3.0, rel=0.05)
    before = expected_calibration_error(softmax(3 * z), y)
    after = expected_calibration_error(softmax(3 * z, temperature), y)
    assert after < before / 3
    # Under-confident logits need T < 1.
    assert fit_temperature(z / 2, y) == pytest.approx(0.5, rel=0.05)


@pytest.mark.parametrize(("correct", "n"), [(0, 10), (3, 10), (50, 100), (2482, 3589), (40, 40)])
def test_wilson_interval_agrees_with_scipy(correct: int, n: int) -> None:
    from scipy.stats import binomtest

    expected = binomtest(correct, n).proportion_ci(method="wilson")
    assert wilson_interval(correct, n) == pytest.approx((expected.low, expected.high), abs=1e-9)


@pytest.mark.parametrize(("only_a", "only_b"), [(0, 0), (0, 1), (5, 5), (170, 183), (40, 75)])
def test_mcnemar_exact_p_is_scipys_two_sided_binomial_test(only_a: int, only_b: int) -> None:
    from scipy.stats import binomtest

    expected = binomtest(only_b, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    assert mcnemar_exact_p(only_a, only_b) == pytest.approx(expected, rel=1e-9)
    assert mcnemar_exact_p(only_a, only_b) == mcnemar_exact_p(only_b, only_a)


# emotrace evaluate, end to end --------------------------------------------------------------------

FER_CLASSES = ["angry", "happy", "neutral", "sad", "surprise"]
SIZE = 32


def band_split(n: int, seed: int) -> SplitArrays:
    """Noise images whose class is the horizontal band that is bright (flip-invariant classes)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(FER_CLASSES)
    images = rng.integers(0, 70, (n, SIZE, SIZE, 1)).astype(np.uint8)
    band = SIZE // len(FER_CLASSES)
    for i, label in enumerate(labels):
        images[i, label * band : (label + 1) * band] += 150
    return SplitArrays(images, labels)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(run folder, cache.npz)``: a small EmoNet trained on FER-style classes, and its data."""
    root = tmp_path_factory.mktemp("evaluate")
    data = PreparedDataset(
        classes=FER_CLASSES,
        preprocess=Preprocess(size=SIZE, gray=True),
        splits={"train": band_split(100, 0), "valid": band_split(40, 1)},
        key="bands",
        source="generated",
    )
    cache = save(data, root / "cache.npz")
    config = TrainConfig(
        model="emonet",
        preprocess={"size": SIZE, "gray": True},
        epochs=3,
        batch_size=25,
        lr=0.01,
        warmup_epochs=0,
        augment={"erasing": 0.0},
        threads=1,
    )
    fit(config, data, root / "run", log=lambda line: None, progress=False, plot=False)
    return root / "run", cache


def evaluate(run: Path, data: Path, out: Path, *extra: str) -> dict[str, Any]:
    args = ["--model", run, "--data", data, "-o", out, "--threads", "1", *extra]
    result = emotrace("evaluate", *args, cwd=out.parent)
    assert result.returncode == 0, result.stderr
    metrics: dict[str, Any] = json.loads((out / "metrics.json").read_text())
    return metrics


@pytest.mark.slow
def test_evaluate_writes_metrics_and_a_self_contained_report(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    run, cache = trained
    m = evaluate(run, cache, tmp_path / "out", "--split", "valid", "--tta", "flip")

    for key in ("accuracy", "macro_f1", "weighted_f1", "macro_auc", "ece", "n", "classes"):
        assert key in m, key
    assert m["n"] == 40 and m["classes"] == FER_CLASSES and m["split"] == "valid"
    assert m["excluded_classes"] == [] and m["model_only_classes"] == []
    assert set(m["per_class"]) == set(FER_CLASSES)
    for row in m["per_class"].values():
        assert {"precision", "recall", "f1", "support"} <= set(row)
        assert row["support"] == 8
    assert np.array(m["confusion_matrix"]).shape == (5, 5)
    assert np.array(m["confusion_matrix"]).sum() == 40
    # The same model on the same images as the training run's validation pass.
    meta = json.loads((run / "model.json").read_text())
    assert m["accuracy"] == pytest.approx(meta["metrics"]["val_accuracy"])

    assert m["tta"]["method"] == "flip"
    assert 0.0 <= m["tta"]["accuracy"] <= 1.0 and "macro_f1" in m["tta"]
    low, high = m["accuracy_ci95"]
    assert low <= m["accuracy"] <= high and 0.05 < high - low < 0.5  # 40 images: a wide interval

    # One row per image: what emotrace compare pairs models on (numbers only, no pixels).
    rows = list(csv.DictReader((tmp_path / "out" / "predictions.csv").open(newline="")))
    assert [int(r["index"]) for r in rows] == list(range(40))
    assert [r["label"] for r in rows] == [FER_CLASSES[i % 5] for i in range(40)]
    assert sum(r["label"] == r["predicted"] for r in rows) / 40 == pytest.approx(m["accuracy"])
    tta_right = sum(r["label"] == r["predicted_tta"] for r in rows) / 40
    assert tta_right == pytest.approx(m["tta"]["accuracy"])
    for r in rows:
        probabilities = {c: float(r[f"p_{c}"]) for c in FER_CLASSES}
        assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-3)
        assert max(probabilities, key=probabilities.__getitem__) == r["predicted"]

    report = (tmp_path / "out" / "report.html").read_text()
    assert not re.search(r"https?://", report), "report.html must not load anything from the web"
    assert report.count('src="data:image/png;base64,') >= 2
    assert "Test-time augmentation" in report


@pytest.mark.slow
def test_cross_dataset_evaluation_on_class_folders_without_splits(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    run, _ = trained
    # CK+ names its folders anger/sadness, has contempt and no neutral, and has no split folders.
    counts = {"anger": 3, "contempt": 2, "happy": 3, "sadness": 3, "surprise": 3}
    ck = make_class_folders(tmp_path / "ck", counts, splits=None)
    m = evaluate(run, ck, tmp_path / "out")

    assert m["split"] == "all"
    assert m["excluded_classes"] == ["contempt"] and m["excluded_images"] == 2
    assert "neutral" in m["model_only_classes"]
    assert m["shared_classes"] == ["angry", "happy", "sad", "surprise"]
    assert m["n"] == 12
    assert 0.0 <= m["restricted_accuracy"] <= 1.0
    assert m["restricted_accuracy"] >= m["accuracy"]  # fewer ways to be wrong
    assert m["per_class"]["neutral"]["support"] == 0
    report = (tmp_path / "out" / "report.html").read_text()
    assert "Cross-dataset evaluation" in report and "contempt" in report


@pytest.mark.slow
def test_missing_split_is_a_one_line_error(trained: tuple[Path, Path], tmp_path: Path) -> None:
    run, cache = trained
    result = emotrace(
        "evaluate", "--model", run, "--data", cache, "--split", "test", "-o", tmp_path / "out",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("emotrace: error: "), result.stderr
    assert "no split 'test'" in lines[0] and "train, valid" in lines[0]
    assert not (tmp_path / "out").exists()


def _with_wrong_rows(source: Path, target: Path, wrong: set[int]) -> None:
    """Copy an evaluation folder as a second model's: right on every image except the rows
    ``wrong``, so its paired counts against another such copy are known."""
    import shutil

    shutil.copytree(source, target)
    path = target / "predictions.csv"
    rows = list(csv.DictReader(path.open(newline="")))
    for i, row in enumerate(rows):
        row["predicted"] = (
            next(c for c in FER_CLASSES if c != row["label"]) if i in wrong else row["label"]
        )
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.slow
def test_compare_pairs_two_evaluations_of_the_same_images(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    from scipy.stats import binomtest

    run, cache = trained
    evaluated = tmp_path / "evaluated"
    evaluate(run, cache, evaluated, "--split", "valid")
    a, b = tmp_path / "a", tmp_path / "b"
    _with_wrong_rows(evaluated, a, {0, 1, 2, 3, 4})
    _with_wrong_rows(evaluated, b, {4, 10})  # right where A is wrong on 0-3, wrong on 10

    result = emotrace("compare", a, b, "--json")
    assert result.returncode == 0, result.stderr
    c = json.loads(result.stdout)
    assert c["images"] == 40 and c["split"] == "valid" and c["tta"] is None
    assert c["a"]["accuracy"] == 35 / 40 and c["b"]["accuracy"] == 38 / 40
    assert (c["only_a_right"], c["only_b_right"]) == (1, 4)
    assert c["difference"] == pytest.approx(3 / 40)
    low, high = c["difference_ci95"]
    assert low < 0 < 3 / 40 < high, "5 discordant images cannot settle it"
    assert c["p_value"] == pytest.approx(binomtest(1, 5).pvalue) and not c["significant"]

    text = emotrace("compare", a, b)
    assert text.returncode == 0, text.stderr
    assert "+7.50 points" in text.stdout and "no significant difference" in text.stdout

    same = json.loads(emotrace("compare", evaluated, evaluated, "--json").stdout)
    assert same["difference"] == 0 and same["p_value"] == 1.0
    metrics = json.loads((evaluated / "metrics.json").read_text())
    assert same["a"]["accuracy"] == pytest.approx(metrics["accuracy"])
    assert same["a"]["accuracy_ci95"] == pytest.approx(metrics["accuracy_ci95"])


@pytest.mark.slow
def test_compare_refuses_what_it_cannot_pair(trained: tuple[Path, Path], tmp_path: Path) -> None:
    run, cache = trained
    valid, train = tmp_path / "valid", tmp_path / "train"
    evaluate(run, cache, valid, "--split", "valid")
    evaluate(run, cache, train, "--split", "train")
    assert_one_line_error(emotrace("compare", valid, train), "scored different images")
    assert_one_line_error(
        emotrace("compare", valid, tmp_path / "missing"), "missing", "no such folder"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(emotrace("compare", valid, empty), "no metrics.json")
    old = tmp_path / "old"
    old.mkdir()
    (old / "metrics.json").write_text((valid / "metrics.json").read_text())
    assert_one_line_error(emotrace("compare", valid, old), "no predictions.csv", "again")
    assert_one_line_error(emotrace("compare", valid, valid, "--tta"), "without flip TTA")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "metrics.json").write_text("{}")
    (broken / "predictions.csv").write_text("index,label\nx,happy\n")
    assert_one_line_error(emotrace("compare", valid, broken), "not emotrace's format")
