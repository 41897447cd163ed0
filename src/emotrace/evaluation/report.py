"""The evaluation report: PNG plots and one self-contained HTML file (images inline), in the
reports' shared shell (:mod:`emotrace._html`)."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import numpy as np

from emotrace._html import page

#: This report's own rules: figures right-aligned under left-aligned row labels.
_CSS = "th,td{text-align:right}th{text-align:left}img{margin:0.5rem 0}"


def _plots(metrics: dict[str, Any], out: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = metrics["classes"]
    written: dict[str, Path] = {}
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    for ax, key, title, fmt in (
        (axes[0], "confusion_matrix", "counts", "d"),
        (axes[1], "confusion_matrix_normalized", "row-normalised (recall)", ".2f"),
    ):
        matrix = np.array(metrics[key], dtype=float)
        ax.imshow(matrix, cmap="Blues", vmin=0)
        ax.set(
            xticks=range(len(classes)),
            yticks=range(len(classes)),
            xlabel="predicted",
            ylabel="true",
            title=title,
        )
        ax.set_xticklabels(classes, rotation=45, ha="right")
        ax.set_yticklabels(classes)
        peak = matrix.max() if matrix.size else 1
        for (i, j), value in np.ndenumerate(matrix):
            text = format(int(value), fmt) if fmt == "d" else format(value, fmt)
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=8,
                color="white" if value > peak / 2 else "black",
            )
    fig.tight_layout()
    written["confusion"] = out / "confusion_matrix.png"
    fig.savefig(written["confusion"], dpi=90)
    plt.close(fig)

    bins = [b for b in metrics["reliability"] if b["count"]]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.bar(
        [b["lower"] for b in bins],
        [b["accuracy"] for b in bins],
        width=[b["upper"] - b["lower"] for b in bins],
        align="edge",
        alpha=0.7,
        edgecolor="black",
        label="accuracy",
    )
    ax.plot(
        [b["confidence"] for b in bins],
        [b["accuracy"] for b in bins],
        "o-",
        color="C1",
        label="mean confidence",
    )
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="confidence",
        ylabel="accuracy",
        title=f"reliability (ECE {metrics['ece']:.3f})",
    )
    ax.legend(loc="upper left")
    fig.tight_layout()
    written["reliability"] = out / "reliability.png"
    fig.savefig(written["reliability"], dpi=90)
    plt.close(fig)
    return written


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}"
    return html.escape(str(value))


def _interval(bounds: list[float] | None) -> str | None:
    return None if bounds is None else f"{bounds[0]:.4f} – {bounds[1]:.4f}"


def write_report(metrics: dict[str, Any], out: Path) -> Path:
    """Write plots and ``report.html`` for ``metrics`` into ``out``; returns the HTML path."""
    try:
        plots = _plots(metrics, out)
    except ImportError:
        plots = {}
    e = html.escape
    headline = [
        ("images", metrics["n"]),
        ("accuracy", metrics["accuracy"]),
        ("accuracy, 95% interval (Wilson)", _interval(metrics.get("accuracy_ci95"))),
        ("accuracy, predictions restricted to shared classes", metrics.get("restricted_accuracy")),
        ("top-2 accuracy", metrics["top2_accuracy"]),
        ("macro F1", metrics["macro_f1"]),
        ("weighted F1", metrics["weighted_f1"]),
        ("macro ROC AUC (one-vs-rest)", metrics["macro_auc"]),
        ("log loss", metrics["loss"]),
        ("expected calibration error", metrics["ece"]),
        ("temperature", metrics.get("temperature")),
    ]
    rows = "".join(f"<tr><th>{e(k)}</th><td>{_fmt(v)}</td></tr>" for k, v in headline)
    per_class = "".join(
        f"<tr><th>{e(name)}</th><td>{_fmt(v['precision'])}</td><td>{_fmt(v['recall'])}</td>"
        f"<td>{_fmt(v['f1'])}</td><td>{_fmt(v['auc'])}</td><td>{v['support']}</td></tr>"
        for name, v in metrics["per_class"].items()
    )
    tta = ""
    if "tta" in metrics:
        tta_rows = "".join(
            f"<tr><th>{e(k)}</th><td>{_fmt(v)}</td></tr>" for k, v in metrics["tta"].items()
        )
        tta = f"<h2>Test-time augmentation</h2><table>{tta_rows}</table>"
    cross = ""
    if metrics.get("excluded_classes") or metrics.get("model_only_classes"):
        cross = (
            "<h2>Cross-dataset evaluation</h2><p>"
            f"Shared classes: {e(', '.join(metrics['shared_classes']))}.<br>"
            f"Dataset classes excluded (the model cannot predict them): "
            f"{e(', '.join(metrics['excluded_classes']) or 'none')} "
            f"({metrics['excluded_images']} images dropped).<br>"
            f"Model classes absent from the dataset: "
            f"{e(', '.join(metrics['model_only_classes']) or 'none')}; a prediction of one of them "
            "counts as an error in <em>accuracy</em> and is impossible in the restricted accuracy."
            "</p>"
        )
    images = "".join(_img(p) for p in plots.values())
    body = f"""
<h1>Evaluation of {e(metrics["model_name"])}</h1>
<p>Model <code>{e(metrics["model"])}</code> on <code>{e(metrics["dataset"])}</code>,
split <strong>{e(metrics["split"])}</strong>.</p>
<h2>Summary</h2><table>{rows}</table>
<h2>Per class</h2>
<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>AUC</th><th>support</th></tr>
{per_class}</table>
{tta}{cross}
<h2>Confusion matrix and calibration</h2>{images}
"""
    path = out / "report.html"
    path.write_text(page(f"emotrace evaluation: {metrics['model_name']}", body, _CSS), "utf-8")
    return path
