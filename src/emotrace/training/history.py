"""Run history: ``history.csv`` rows, the per-epoch progress bar and the curves PNG."""

from __future__ import annotations

import csv
from pathlib import Path

HISTORY_FIELDS = [
    "epoch",
    "lr",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "val_macro_f1",
    "seconds",
    "images_per_s",
]


def truncate_history(path: Path, last_epoch: int) -> None:
    """Drop rows after ``last_epoch``: an epoch logged but not saved (killed) is trained again."""
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return
    kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= last_epoch]
    if len(kept) != len(rows):
        with path.open("w", newline="") as handle:
            csv.writer(handle).writerows(kept)


class ProgressBar:
    """A rich progress bar for one epoch, with live loss/accuracy and an ETA."""

    def __init__(self, description: str, total: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f} acc {task.fields[acc]:.3f}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            transient=True,
        )
        self._task = self._progress.add_task(description, total=total, loss=0.0, acc=0.0)
        self._progress.start()

    def update(self, n: int, loss: float, acc: float) -> None:
        self._progress.update(self._task, advance=n, loss=loss, acc=acc)

    def close(self) -> None:
        self._progress.stop()


def progress_bar(enabled: bool, description: str, total: int) -> ProgressBar | None:
    """A bar when ``enabled``, else ``None``."""
    return ProgressBar(description, total) if enabled else None


def plot_history(history_path: Path, png: Path) -> None:
    """Loss and accuracy curves from ``history.csv`` as a PNG (skipped without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    with history_path.open() as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return
    epochs = [int(r["epoch"]) for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [float(r["train_loss"]) for r in rows], label="train")
    ax_loss.plot(epochs, [float(r["val_loss"]) for r in rows], label="valid")
    ax_loss.set(title="loss", xlabel="epoch")
    ax_acc.plot(epochs, [float(r["train_accuracy"]) for r in rows], label="train")
    ax_acc.plot(epochs, [float(r["val_accuracy"]) for r in rows], label="valid")
    ax_acc.plot(epochs, [float(r["val_macro_f1"]) for r in rows], label="valid macro-F1")
    ax_acc.set(title="accuracy", xlabel="epoch")
    for ax in (ax_loss, ax_acc):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
