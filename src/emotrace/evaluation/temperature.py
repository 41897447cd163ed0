"""Fit temperature scaling for a checkpoint on a validation split and store it in its metadata."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from emotrace._atomic import staged_file
from emotrace._numeric import softmax
from emotrace.data.prepared import load_prepared
from emotrace.evaluation.calibration import expected_calibration_error, fit_temperature
from emotrace.evaluation.evaluate import batched_logits


def _nll(probs: np.ndarray, y: np.ndarray) -> float:
    return float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, 1)).mean())


def calibrate_checkpoint(
    model: Path | str, data: str | Path, split: str = "valid"
) -> dict[str, Any]:
    """Fit T on ``split`` of ``data``; store it and the before/after figures in the JSON sidecar.

    The dataset's classes must be the model's classes in the same order: calibration on a
    different label set would be meaningless.
    """
    from emotrace.errors import ModelError
    from emotrace.runtime.torch_backend import TorchBackend
    from emotrace.training.checkpoint import resolve_checkpoint

    backend = TorchBackend(model)
    dataset = load_prepared(data, backend.spec.preprocess)
    if list(dataset.classes) != list(backend.spec.classes):
        raise ModelError(
            f"dataset classes {dataset.classes} differ from the model's "
            f"{list(backend.spec.classes)}"
        )
    arrays = dataset.split(split)
    logits = batched_logits(backend, arrays.images)
    y = arrays.labels
    temperature = fit_temperature(logits, y)
    before, after = softmax(logits), softmax(logits, temperature)
    result = {
        "temperature": temperature,
        "split": split,
        "n": len(y),
        "nll_before": _nll(before, y),
        "nll_after": _nll(after, y),
        "ece_before": expected_calibration_error(before, y),
        "ece_after": expected_calibration_error(after, y),
        "dataset_key": dataset.key,
    }
    meta_path = resolve_checkpoint(model).with_suffix(".json")
    meta = json.loads(meta_path.read_text("utf-8"))
    meta["temperature"] = temperature
    meta["calibration"] = result
    # Replaced whole: an interrupted write must not leave the run without its metadata.
    with staged_file(meta_path) as staged:
        staged.write_text(json.dumps(meta, indent=2), "utf-8")
    return result
