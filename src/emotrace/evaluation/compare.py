"""Whether one model is really better than another on the same images: a paired comparison.

Two models scored on one split differ by a few tenths of a point more often than not, and a
difference that small is noise: on FER2013's 3,589 valid images one accuracy alone has a 95%
interval of about +-1.5 points. But both models answer the *same* images, so what decides is
the images they disagree on (one right, the other wrong). :func:`compare_evaluations` reads the
``predictions.csv`` that ``emotrace evaluate`` writes beside ``metrics.json`` for each model and
reports:

* each accuracy with its Wilson score interval;
* the difference with its paired 95% interval (the variance of a difference of paired
  proportions, which counts only the discordant images);
* McNemar's exact test on the discordant images (a two-sided binomial test at 1/2): the chance of
  a split at least this uneven if the two models were equally good.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from emotrace.errors import DatasetError

#: The file ``emotrace evaluate`` writes beside metrics.json: one row per image.
PREDICTIONS_NAME = "predictions.csv"
_Z95 = 1.959963984540054


def wilson_interval(correct: int, n: int, z: float = _Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``correct / n`` (``(0, 1)`` when ``n`` is 0)."""
    if n == 0:
        return 0.0, 1.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_exact_p(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: how likely a split of the discordant images at least this
    uneven is when each is equally likely to favour either model."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    # log-space binomial terms: exact for any n without overflowing.
    tail = sum(
        math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2))
        for i in range(k + 1)
    )
    return min(1.0, 2 * tail)


def read_predictions(
    folder: str | Path, tta: bool = False
) -> tuple[dict[str, Any], list[tuple[int, str, str]]]:
    """``(metrics, rows)`` of an evaluation folder; each row is ``(index, label, predicted)``.

    ``tta=True`` reads the flip-TTA predictions. Raises :class:`DatasetError` (one line) for a
    folder that is not an evaluation of this version of emotrace.
    """
    folder = Path(folder)
    metrics_path, predictions_path = folder / "metrics.json", folder / PREDICTIONS_NAME
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such folder (give emotrace evaluate's -o folder)")
    if not metrics_path.is_file():
        raise DatasetError(f"{folder}: no metrics.json here (give emotrace evaluate's -o folder)")
    if not predictions_path.is_file():
        raise DatasetError(
            f"{folder}: no {PREDICTIONS_NAME} (evaluated by an older emotrace); run emotrace "
            "evaluate again"
        )
    try:
        metrics = json.loads(metrics_path.read_text("utf-8"))
        with predictions_path.open(newline="", encoding="utf-8") as f:
            table = list(csv.DictReader(f))
    except (ValueError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{folder}: unreadable evaluation ({exc})") from None
    column = "predicted_tta" if tta else "predicted"
    if table and not {"index", "label", "predicted"} <= set(table[0]):
        raise DatasetError(f"{folder}: {PREDICTIONS_NAME} is not emotrace's format")
    if table and column not in table[0]:
        raise DatasetError(
            f"{folder}: evaluated without flip TTA; run emotrace evaluate --tta flip, or compare "
            "without --tta"
        )
    try:
        rows = [(int(r["index"]), r["label"], r[column]) for r in table]
    except (KeyError, TypeError, ValueError):
        raise DatasetError(f"{folder}: {PREDICTIONS_NAME} is not emotrace's format") from None
    if not isinstance(metrics, dict) or not rows:
        raise DatasetError(f"{folder}: the evaluation holds no predictions")
    return metrics, rows


def compare_evaluations(a: str | Path, b: str | Path, tta: bool = False) -> dict[str, Any]:
    """Paired comparison of two evaluations of the same images (see the module docstring).

    ``a`` and ``b`` are ``emotrace evaluate`` output folders. Returns plain JSON: each model's
    name and accuracy with its interval, ``difference`` (b - a) with its interval, the discordant
    counts and ``p_value``. Raises :class:`DatasetError` when the two did not score the same
    images with the same labels.
    """
    metrics_a, rows_a = read_predictions(a, tta)
    metrics_b, rows_b = read_predictions(b, tta)
    keys_a = [(i, label) for i, label, _ in rows_a]
    keys_b = [(i, label) for i, label, _ in rows_b]
    if keys_a != keys_b:
        raise DatasetError(
            f"{a} and {b} scored different images ({len(rows_a):,} and {len(rows_b):,} "
            f"from {metrics_a.get('dataset')} {metrics_a.get('split')} and "
            f"{metrics_b.get('dataset')} {metrics_b.get('split')}); evaluate both models on the "
            "same dataset and split"
        )
    n = len(rows_a)
    right_a = [label == predicted for _, label, predicted in rows_a]
    right_b = [label == predicted for _, label, predicted in rows_b]
    only_a = sum(x and not y for x, y in zip(right_a, right_b, strict=True))
    only_b = sum(y and not x for x, y in zip(right_a, right_b, strict=True))
    difference = (only_b - only_a) / n
    # Var of a difference of paired proportions: ((b + c) - (c - b)^2 / n) / n^2.
    se = math.sqrt(max(0.0, (only_a + only_b) - (only_b - only_a) ** 2 / n)) / n
    p_value = mcnemar_exact_p(only_a, only_b)

    def side(metrics: dict[str, Any], right: list[bool], folder: str | Path) -> dict[str, Any]:
        correct = sum(right)
        low, high = wilson_interval(correct, n)
        return {
            "folder": str(folder),
            "model_name": metrics.get("model_name"),
            "accuracy": correct / n,
            "accuracy_ci95": [low, high],
        }

    return {
        "images": n,
        "dataset": metrics_a.get("dataset"),
        "split": metrics_a.get("split"),
        "tta": "flip" if tta else None,
        "a": side(metrics_a, right_a, a),
        "b": side(metrics_b, right_b, b),
        "difference": difference,
        "difference_ci95": [difference - _Z95 * se, difference + _Z95 * se],
        "only_a_right": only_a,
        "only_b_right": only_b,
        "p_value": p_value,
        "significant": p_value < 0.05,
    }
