"""Record what a trained recipe costs and reaches, for ``docs/results/<recipe>/``, and print the
README table of every recorded recipe.

    python scripts/record_recipe.py record RUN_DIR EVAL_DIR MODEL.onnx docs/results/RECIPE
    python scripts/record_recipe.py table docs/results

``record`` copies the run's ``history.csv`` and curves and the evaluation's ``metrics.json`` and
confusion matrix, and writes ``run.json``: parameters and multiply-adds of the architecture at the
run's input size, the ONNX file's size and batch-1 latency on one thread, measured interleaved with
the bundled default model in the same process (latencies from different runs or machines are only
comparable as that ratio), training time and throughput from the history, best epoch, and the
machine (CPU model and ISA flags).

``table`` reads every ``*/run.json`` with its ``metrics.json`` and prints the markdown table.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _common import describe, machine

#: Where the recorded recipes live: docs/results/<recipe>/.
RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"


def onnx_latency_ms(paths: list[Path], calls: int = 400, rounds: int = 40) -> list[float]:
    """Median batch-1 latency of each ONNX model, one intra-op thread, interleaved in short rounds
    (in alternating order) so load on the machine hits every model alike."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    sessions, inputs = [], []
    for path in paths:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        spec = session.get_inputs()[0]
        shape = [1 if not isinstance(d, int) else d for d in spec.shape]
        sessions.append(session)
        inputs.append({spec.name: np.random.default_rng(0).standard_normal(shape, np.float32)})
    samples: list[list[float]] = [[] for _ in paths]
    for session, feed in zip(sessions, inputs, strict=True):
        for _ in range(30):
            session.run(None, feed)
    order = list(range(len(paths)))
    for _ in range(rounds):
        order.reverse()
        for i in order:
            session, feed = sessions[i], inputs[i]
            for _ in range(calls // rounds):
                start = time.perf_counter_ns()
                session.run(None, feed)
                samples[i].append((time.perf_counter_ns() - start) / 1e6)
    return [statistics.median(s) for s in samples]


def history_figures(history: Path) -> dict[str, Any]:
    """Epochs, best epoch by valid accuracy, training time and median training throughput."""
    with history.open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise SystemExit(f"{history}: no epochs recorded")
    best = max(rows, key=lambda r: float(r["val_accuracy"]))
    return {
        "epochs_run": len(rows),
        "best_epoch": int(best["epoch"]),
        "best_val_accuracy_during_training": round(float(best["val_accuracy"]), 4),
        # Epochs x the median epoch time: a run stopped and resumed across sessions (or
        # suspended while the machine did other work) has epochs whose wall time includes the
        # pause; the plain sum is kept beside it.
        "training_minutes": round(
            len(rows) * statistics.median(float(r["seconds"]) for r in rows) / 60, 1
        ),
        "wall_minutes_summed": round(sum(float(r["seconds"]) for r in rows) / 60, 1),
        "train_images_per_s_median": round(
            statistics.median(float(r["images_per_s"]) for r in rows), 1
        ),
    }


def record(
    run: Path,
    evaluation: Path,
    onnx: Path,
    out: Path,
    peer: Path | None = None,
    trained_on: str | None = None,
) -> dict[str, Any]:
    """Write ``out/run.json`` and copy the run's and the evaluation's artefacts beside it.
    Latency is measured against ``peer`` (default: the bundled default model); ``trained_on``
    names the machine that trained the run when it is not this one (``machine`` is always the
    one that measured latency)."""
    from emotrace.models.profile import profile
    from emotrace.runtime.loading import default_model_path

    meta = json.loads((run / "model.json").read_text())
    config = meta.get("config", {})
    params, mmacs = profile(meta["architecture"], meta["input_size"])
    default = peer or default_model_path("default")
    ours, theirs = onnx_latency_ms([onnx, default])
    figures: dict[str, Any] = {
        "recipe": out.name,
        "architecture": meta["architecture"],
        "model_options": meta.get("model_options", {}),
        "preprocess": meta["preprocess"],
        "parameters": params,
        "mmacs": round(mmacs, 1),
        "onnx_mb": round(onnx.stat().st_size / 1e6, 2),
        "latency_ms_batch1_1thread": round(ours, 3),
        "latency_peer": default.name if peer else "bundled default",
        "default_latency_ms_same_run": round(theirs, 3),
        "latency_vs_default": round(ours / theirs, 2),
        "precision": config.get("precision", "fp32"),
        "epochs_planned": config.get("epochs"),
        **history_figures(run / "history.csv"),
        "machine": machine(),
    }
    if trained_on:
        figures["trained_on"] = trained_on
    out.mkdir(parents=True, exist_ok=True)
    for source in (run / "history.csv", run / "curves.png"):
        if source.exists():
            shutil.copy2(source, out / source.name)
    for name in ("metrics.json", "confusion_matrix.png", "reliability.png"):
        if (evaluation / name).exists():
            shutil.copy2(evaluation / name, out / name)
    (out / "run.json").write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def table(results: Path) -> str:
    """The README table of every recipe folder under ``results`` that has a ``run.json``."""
    lines = [
        "| recipe | architecture | input | accuracy | macro-F1 | params | MMACs | ONNX MB "
        "| latency (x default) | epochs (best) | training time | train img/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for path in sorted(results.glob("*/run.json")):
        run = json.loads(path.read_text())
        metrics = json.loads((path.parent / "metrics.json").read_text())
        prep = run["preprocess"]
        where = f" ({run['trained_on']})" if run.get("trained_on") else ""
        framing = "aligned" if prep.get("align") else "face crop" if prep.get("face_crop") else ""
        lines.append(
            f"| `{run['recipe']}` | {run['architecture']} | {prep['size']} px"
            f"{', ' + framing if framing else ''} | {metrics['accuracy']:.3f} "
            f"| {metrics['macro_f1']:.3f} | {run['parameters'] / 1e6:.2f} M | {run['mmacs']:.0f} "
            f"| {run['onnx_mb']:.1f} | {run['latency_ms_batch1_1thread']:.2f} ms "
            f"({run['latency_vs_default']:.1f}x) | {run['epochs_run']} ({run['best_epoch']}) "
            f"| {run['training_minutes'] / 60:.1f} h{where} "
            f"| {run['train_images_per_s_median']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("record", help="record one trained recipe")
    r.add_argument("run", type=Path, help="the run folder (emotrace train --out)")
    r.add_argument("evaluation", type=Path, help="the folder emotrace evaluate -o wrote")
    r.add_argument("onnx", type=Path, help="the run exported by emotrace export")
    r.add_argument("out", type=Path, help="docs/results/<recipe>")
    r.add_argument(
        "--peer", type=Path, help="ONNX model to time against (default: the bundled default)"
    )
    r.add_argument(
        "--trained-on",
        help="the machine that trained the run, when not this one (shown in the table)",
    )
    t = sub.add_parser("table", help="print the README table")
    t.add_argument("results", type=Path, nargs="?", default=RESULTS)
    args = parser.parse_args(argv)
    if args.command == "record":
        for path in (args.run / "model.json", args.evaluation / "metrics.json", args.onnx):
            if not path.exists():
                parser.error(f"{path} is not there")
        figures = record(args.run, args.evaluation, args.onnx, args.out, args.peer, args.trained_on)
        print(json.dumps({k: v for k, v in figures.items() if k != "machine"}, indent=2))
        print(describe(figures["machine"]))
    else:
        print(table(args.results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
