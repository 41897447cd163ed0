"""``emotrace evaluate``: metrics.json and report.html for a model on a labelled dataset."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from emotrace.bundled import BUNDLED_MODELS
from emotrace.cli._common import console, positive_int, progress_factory


def add_parser(sub: Any) -> None:
    """Register ``evaluate``."""
    p = sub.add_parser("evaluate", help="evaluate a model: metrics.json + report.html")
    p.add_argument(
        "--model",
        required=True,
        help=f"{', '.join(BUNDLED_MODELS)}, an .onnx file, a checkpoint or a run folder",
    )
    p.add_argument("--data", required=True, help="dataset folder/CSV or prepared .npz")
    p.add_argument("--split", default=None, help="split to evaluate (default: test, or all)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    p.add_argument("--tta", choices=["flip"], default=None, help="also report flip TTA")
    p.add_argument("--format", default=None, help="force the dataset layout")
    p.add_argument("--threads", type=positive_int, default=None, help="inference threads")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the headline figures."""
    from emotrace.evaluation.evaluate import evaluate

    with progress_factory() as make:
        m = evaluate(
            args.model,
            args.data,
            args.output,
            split=args.split,
            tta=args.tta,
            format=args.format,
            threads=args.threads,
            progress=make,
        )
    auc = f"{m['macro_auc']:.4f}" if m["macro_auc"] is not None else "n/a"
    low, high = m["accuracy_ci95"]
    console.print(
        f"{m['model_name']} on {m['split']} ({m['n']:,} images): accuracy {m['accuracy']:.4f} "
        f"(95% interval {low:.4f}-{high:.4f})  "
        f"macro-F1 {m['macro_f1']:.4f}  weighted-F1 {m['weighted_f1']:.4f}  "
        f"macro-AUC {auc}  ECE {m['ece']:.4f}"
    )
    if m["excluded_classes"] or m["model_only_classes"]:
        console.print(
            f"cross-dataset: shared {', '.join(m['shared_classes'])}; excluded "
            f"{', '.join(m['excluded_classes']) or 'none'}; restricted accuracy "
            f"{m['restricted_accuracy']:.4f}"
        )
    if "tta" in m:
        console.print(f"flip TTA accuracy {m['tta']['accuracy']:.4f}")
    written = ("metrics.json", "predictions.csv", "report.html")
    console.print("wrote " + ", ".join(str(args.output / name) for name in written))
    return 0
