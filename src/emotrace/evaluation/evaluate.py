"""Evaluate a model on a labelled dataset: metrics.json, plots and a self-contained report.html.

When the dataset's classes differ from the model's (CK+ has ``contempt`` and no ``neutral``), the
evaluation keeps the shared classes, says which were excluded, and reports accuracy both with the
model's full output and with predictions restricted to the shared classes.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from emotrace.data.cache import PreparedDataset, SplitArrays, read_meta
from emotrace.data.prepared import load_prepared
from emotrace.data.types import refuse_inside_dataset
from emotrace.errors import DatasetError, ModelError
from emotrace.evaluation.compare import PREDICTIONS_NAME
from emotrace.evaluation.metrics import compute_metrics, softmax
from emotrace.preprocessing import Preprocess
from emotrace.runtime.loading import Backend, load_backend


def choose_split(data: PreparedDataset, split: str | None) -> tuple[str, SplitArrays]:
    """The asked split; with none asked, ``test``, else the only split of a split-less folder."""
    if split is not None:
        arrays = data.split(split)
        return next(k for k, v in data.splits.items() if v is arrays), arrays
    for name in ("test", "all"):
        if name in data.splits:
            return name, data.splits[name]
    raise DatasetError(
        f"{data.source}: no 'test' split; pass --split (it has: {', '.join(data.splits)})"
    )


def _describe(settings: Preprocess) -> str:
    text = f"{settings.size} px {'gray' if settings.gray else 'colour'}"
    text += ", aligned" if settings.align else ""
    text += ", equalised" if settings.equalize else ""
    return text + (f", face crop margin {settings.margin:g}" if settings.face_crop else "")


def check_cache_fits(data: str | Path, settings: Preprocess, model: str | Path) -> None:
    """Refuse a prepared ``.npz`` whose images are not what the model takes, saying how to fix it.

    A dataset folder or CSV needs no check: it is prepared with the model's own settings.
    """
    path = Path(data)
    if path.suffix != ".npz":
        return
    cached = Preprocess.from_dict(read_meta(path)["preprocess"])
    if cached == settings:
        return
    flags = f"--size {settings.size} {'--gray' if settings.gray else '--color'}"
    if settings.face_crop:
        flags += f" --face-crop --margin {settings.margin:g}"
    if settings.align:
        flags += " --align"
    if settings.equalize:
        flags += " --equalize"
    raise ModelError(
        f"model {model} takes {_describe(settings)} images but {path} holds "
        f"{_describe(cached)} ones; evaluate the dataset folder itself, or prepare it again "
        f"with: emotrace data prepare DATASET -o {path.name} {flags}"
    )


def batched_logits(backend: Backend, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Backend logits over ``images`` in batches."""
    chunks = [backend.logits(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    return (
        np.concatenate(chunks) if chunks else np.zeros((0, len(backend.spec.classes)), np.float32)
    )


def class_mapping(model_classes: list[str], data_classes: list[str]) -> tuple[list[str], list[str]]:
    """``(shared, excluded)``: classes both know (model order) and data classes the model lacks."""
    shared = [c for c in model_classes if c in data_classes]
    excluded = [c for c in data_classes if c not in model_classes]
    if not shared:
        raise ModelError(
            f"model classes ({', '.join(model_classes)}) and dataset classes "
            f"({', '.join(data_classes)}) have nothing in common"
        )
    return shared, excluded


def evaluate(
    model: str | Path,
    data: str | Path,
    out_dir: str | Path,
    split: str | None = None,
    tta: str | None = None,
    format: str | None = None,
    threads: int | None = None,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
) -> dict[str, Any]:
    """Evaluate ``model`` (``default``, ``.onnx``, checkpoint or run folder) on ``data``.

    Writes ``metrics.json``, ``predictions.csv`` (each image's label, prediction and
    probabilities: what ``emotrace compare`` pairs two models on), ``confusion_matrix.png``,
    ``reliability.png`` and ``report.html`` into ``out_dir`` and returns the metrics.
    ``tta="flip"`` adds horizontally-flipped test-time augmentation, reported separately under
    ``"tta"``.
    """
    if tta not in (None, "flip"):
        raise DatasetError(f"unknown test-time augmentation {tta!r}; use 'flip'")
    refuse_inside_dataset(out_dir, data, "evaluation")
    backend = load_backend(model, threads=threads)
    spec = backend.spec
    check_cache_fits(data, spec.preprocess, model)
    dataset = load_prepared(data, spec.preprocess, format=format, progress=progress)
    split_name, arrays = choose_split(dataset, split)
    model_classes = list(spec.classes)
    shared, excluded = class_mapping(model_classes, dataset.classes)
    keep_names = np.array([dataset.classes[i] in shared for i in arrays.labels], dtype=bool)
    images = arrays.images[keep_names]
    if len(images) == 0:
        raise DatasetError(
            f"{dataset.source}: no images of the model's classes in split {split_name}"
        )
    to_model = {dataset.classes.index(c): model_classes.index(c) for c in shared}
    y_true = np.array([to_model[int(i)] for i in arrays.labels[keep_names]], dtype=np.int64)

    logits = batched_logits(backend, images)
    probs = softmax(logits, spec.temperature)
    metrics = _with_restriction(
        compute_metrics(y_true, probs, model_classes), y_true, probs, model_classes, shared
    )
    result: dict[str, Any] = {
        **metrics,
        "model": str(model),
        "model_name": spec.name,
        "temperature": spec.temperature,
        "dataset": str(data),
        "split": split_name,
        "dataset_classes": dataset.classes,
        "shared_classes": shared,
        "excluded_classes": excluded,
        "excluded_images": int((~keep_names).sum()),
        "model_only_classes": [c for c in model_classes if c not in shared],
        "skipped_files": len(dataset.skipped),
    }
    tta_probs = None
    if tta == "flip":
        flipped_logits = batched_logits(backend, np.ascontiguousarray(images[:, :, ::-1]))
        tta_probs = (probs + softmax(flipped_logits, spec.temperature)) / 2
        tta_metrics = _with_restriction(
            compute_metrics(y_true, tta_probs, model_classes),
            y_true,
            tta_probs,
            model_classes,
            shared,
        )
        result["tta"] = {"method": "flip", **{k: tta_metrics[k] for k in _HEADLINE}}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(result, indent=2), "utf-8")
    _write_predictions(
        out / PREDICTIONS_NAME, np.flatnonzero(keep_names), y_true, probs, tta_probs, model_classes
    )
    from emotrace.evaluation.report import write_report

    write_report(result, out)
    return result


def _write_predictions(
    path: Path,
    indices: np.ndarray,
    y_true: np.ndarray,
    probs: np.ndarray,
    tta_probs: np.ndarray | None,
    classes: list[str],
) -> None:
    """One row per image: its index in the split, label, prediction (and flip-TTA prediction)
    and the model's probabilities; numbers only, so it may be shared with the metrics."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        tta_column = [] if tta_probs is None else ["predicted_tta"]
        writer.writerow(["index", "label", "predicted", *tta_column, *(f"p_{c}" for c in classes)])
        predicted = probs.argmax(axis=1)
        tta_predicted = None if tta_probs is None else tta_probs.argmax(axis=1)
        for row, (index, label) in enumerate(zip(indices, y_true, strict=True)):
            extra = [] if tta_predicted is None else [classes[tta_predicted[row]]]
            writer.writerow(
                [int(index), classes[label], classes[predicted[row]], *extra]
                + [f"{p:.5f}" for p in probs[row]]
            )


_HEADLINE = (
    "accuracy",
    "restricted_accuracy",
    "macro_f1",
    "weighted_f1",
    "macro_auc",
    "top2_accuracy",
    "ece",
    "loss",
)


def _with_restriction(
    metrics: dict[str, Any],
    y_true: np.ndarray,
    probs: np.ndarray,
    model_classes: list[str],
    shared: list[str],
) -> dict[str, Any]:
    """Add accuracy with predictions restricted to the shared classes."""
    columns = [model_classes.index(c) for c in shared]
    restricted_pred = np.array(columns)[probs[:, columns].argmax(axis=1)]
    metrics["restricted_accuracy"] = float((restricted_pred == y_true).mean())
    return metrics
