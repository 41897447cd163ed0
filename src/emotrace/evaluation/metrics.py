"""Classification metrics for emotion models, computed with scikit-learn.

Everything :func:`compute_metrics` returns is plain JSON: it is written to ``metrics.json`` as is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from emotrace._numeric import softmax
from emotrace.evaluation.calibration import expected_calibration_error, reliability_bins
from emotrace.evaluation.compare import wilson_interval

__all__ = ["compute_metrics", "macro_f1", "softmax"]


def macro_f1(confusion: np.ndarray) -> float:
    """Macro-averaged F1 from a confusion matrix (rows true, columns predicted).

    The mean of the per-class F1 over the classes present in the truth (a class never predicted
    scores 0), as scikit-learn's ``f1_score(average="macro", zero_division=0)`` over those labels.
    From counts rather than labels, so training processes can sum their confusion matrices first.
    """
    counts = np.asarray(confusion)
    tp = np.diag(counts).astype(float)
    true_sum, pred_sum = counts.sum(1), counts.sum(0)
    present = true_sum > 0
    if not present.any():
        return 0.0
    # F1 = 2 tp / (2 tp + fp + fn): scikit-learn's form, exact in counts. Present classes have
    # true_sum > 0, so no division by zero.
    f1 = 2 * tp[present] / (true_sum[present] + pred_sum[present])
    return float(np.mean(f1))


def compute_metrics(
    y_true: np.ndarray, probs: np.ndarray, classes: Sequence[str]
) -> dict[str, Any]:
    """Accuracy (with its Wilson 95% interval), loss, top-2, per-class P/R/F1, macro/weighted F1,
    one-vs-rest AUC, ECE.

    ``y_true`` indexes ``classes``; ``probs`` is ``(N, len(classes))``. Classes absent from
    ``y_true`` get no AUC (it is undefined) and do not count in the macro AUC.
    """
    from sklearn.metrics import (
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    k = len(classes)
    labels = list(range(k))
    y_pred = probs.argmax(axis=1)
    n = len(y_true)
    eps = 1e-12
    loss = float(-np.log(np.clip(probs[np.arange(n), y_true], eps, 1.0)).mean()) if n else 0.0
    top2 = np.argsort(-probs, axis=1)[:, :2]
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    present = [i for i in labels if (y_true == i).any()]
    auc: dict[str, float | None] = {}
    for i in labels:
        positives = y_true == i
        auc[classes[i]] = (
            float(roc_auc_score(positives, probs[:, i])) if 0 < positives.sum() < n else None
        )
    valid_auc = [v for v in auc.values() if v is not None]
    confusion = confusion_matrix(y_true, y_pred, labels=labels)
    row_sums = confusion.sum(axis=1, keepdims=True)
    normalised = np.divide(confusion, row_sums, out=np.zeros(confusion.shape), where=row_sums > 0)
    return {
        "n": n,
        "classes": list(classes),
        "accuracy": float((y_pred == y_true).mean()) if n else 0.0,
        "accuracy_ci95": list(wilson_interval(int((y_pred == y_true).sum()), n)),
        "loss": loss,
        "top2_accuracy": float((top2 == y_true[:, None]).any(axis=1).mean()) if n else 0.0,
        "macro_f1": macro_f1(confusion),
        "weighted_f1": float(
            f1_score(y_true, y_pred, labels=present, average="weighted", zero_division=0)
        ),
        "macro_precision": float(np.mean(precision[present])) if present else 0.0,
        "macro_recall": float(np.mean(recall[present])) if present else 0.0,
        "macro_auc": float(np.mean(valid_auc)) if valid_auc else None,
        "ece": expected_calibration_error(probs, y_true),
        "per_class": {
            classes[i]: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
                "auc": auc[classes[i]],
            }
            for i in labels
        },
        "confusion_matrix": confusion.astype(int).tolist(),
        "confusion_matrix_normalized": np.round(normalised, 4).tolist(),
        "reliability": reliability_bins(probs, y_true),
    }
