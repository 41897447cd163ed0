"""The training loop: read it top to bottom in :func:`fit`, then :func:`train_epoch` and
:func:`compute_loss`.

Data lives in memory as a uint8 tensor; each step indexes a batch, augments it as a batch, and runs
the model in channels-last layout. Every epoch appends to ``history.csv``, replaces
``model.safetensors`` when the monitored validation metric improves, and writes
``last.safetensors`` + ``state.pt`` (the resume point, a
:class:`~emotrace.training.state.TrainState`), with Ctrl+C held back until all of them are written.
Each epoch's randomness (order, augmentation, mixing, dropout) is seeded from ``(seed, epoch)``, so
a resumed run ends with the same weights as an uninterrupted one. Setting the run up (model, data,
resume) is :mod:`emotrace.training.run`.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from emotrace._interrupts import acknowledge_interrupt, hold_interrupt, raise_if_interrupted
from emotrace.data.augment import BatchAugment
from emotrace.data.cache import PreparedDataset
from emotrace.training import distributed
from emotrace.training.checkpoint import save_checkpoint, save_state
from emotrace.training.config import TrainConfig
from emotrace.training.distill import soft_cross_entropy
from emotrace.training.history import HISTORY_FIELDS, plot_history, progress_bar
from emotrace.training.inference import evaluate_arrays
from emotrace.training.optim import mix_batch
from emotrace.training.run import (
    Run,
    check_data,
    check_new_run,
    checkpoint_meta,
    distillation_for,
    prepare_run,
    resume_run,
    select_device,
)

#: Why :func:`fit` returned: all epochs done, early stopping, ``max_minutes`` spent, or Ctrl+C.
STOP_REASONS = ("completed", "early_stopping", "time_budget", "interrupted")


@dataclass
class FitResult:
    """Where the run wrote its outputs and how it ended.

    ``epochs_run`` is the number of the last finished epoch (counting epochs before a resume);
    ``stopped_reason`` is one of :data:`STOP_REASONS`.
    """

    out_dir: Path
    best_metric: float
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    interrupted: bool
    stopped_reason: str = "completed"


@dataclass
class Batch:
    """One training batch as the model sees it, with what its loss needs."""

    idx: torch.Tensor  # the training images it holds (this rank's share)
    x: torch.Tensor  # augmented, normalised, possibly mixed, in the run's memory format
    y: torch.Tensor
    perm: torch.Tensor | None = None  # mixed: image i is lam of image i, 1 - lam of perm[i]
    lam: float = 1.0
    target: torch.Tensor | None = None  # distillation: probability rows to learn


def fit(
    config: TrainConfig,
    data: PreparedDataset,
    out_dir: Path | str,
    resume: bool = False,
    log: Callable[[str], None] = print,
    progress: bool = True,
    plot: bool = True,
) -> FitResult:
    """Train ``config.model`` on ``data`` and write checkpoints and history into ``out_dir``.

    With ``resume`` the run continues after the last epoch saved in ``out_dir``. Ctrl+C ends the
    run after saving nothing partial (``interrupted``); ``config.max_minutes`` ends it after the
    epoch during which that budget, counted from this call, ran out. The learning-rate schedule
    still spans ``config.epochs`` either way. ``plot=False`` skips drawing ``curves.png``.
    """
    fit_started = time.perf_counter()
    out = Path(out_dir)
    if not resume:
        check_new_run(out)
    out.mkdir(parents=True, exist_ok=True)
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    # Under torchrun: this process's rank, device and process group (None in one process).
    ddp = distributed.setup(config)
    device = ddp.device if ddp is not None else select_device(config.device)
    main = ddp is None or ddp.is_main  # the one process that writes files
    log, progress = distributed.quiet(log, ddp), progress and main
    check_data(config, data)
    run = prepare_run(config, data, device, ddp, resume, log)
    state = run.state
    history_path = out / "history.csv"

    stopped_before = False  # a resumed run that had already stopped early stays stopped
    if resume:
        stopped_before = resume_run(run, data, out, log, main)
    elif main:
        with history_path.open("w", newline="") as handle:
            csv.writer(handle).writerow(HISTORY_FIELDS)
    start_epoch = state.next_epoch
    last_epoch = start_epoch if stopped_before else config.epochs
    if config.distill_teacher is not None and start_epoch < last_epoch:
        # The teachers run over the whole training split (minutes on a CPU): only when there is
        # an epoch to train, not for a resume that finds the run finished.
        run.distillation = distillation_for(run, data, log)
    # Rewritten on resume too, so overrides given then (epochs=...) stick for the next resume.
    if main:
        (out / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), "utf-8")

    stopped_reason = "early_stopping" if stopped_before else "completed"
    epochs_done = start_epoch
    try:
        for epoch in range(start_epoch, last_epoch):
            training = train_epoch(run, epoch, progress)
            eval_model: nn.Module = state.ema.module if state.ema is not None else run.model
            metrics = {**validate(run, eval_model), **training}
            state.step_plateau(metrics[config.monitor])
            with hold_interrupt():
                improved = state.best.update(metrics, epoch + 1)  # on every rank: the same state
                # Stepped before state.pt is saved, so a resume continues the patience count
                # where it was (and a run that had stopped early stays stopped).
                stop_now = state.early_stopping.step(metrics)
                state.epoch = epoch
                if main:
                    save_epoch(run, data, out, metrics, eval_model, improved)
                epochs_done = epoch + 1  # before a held Ctrl+C is raised at the block's end
            log(epoch_summary(epoch, config, metrics))
            if stop_now:
                stopped_reason = "early_stopping"
                log(
                    f"early stopping: {config.monitor} did not improve "
                    f"for {state.early_stopping.patience} epochs"
                )
                break
            minutes = (time.perf_counter() - fit_started) / 60
            if ddp is not None:  # every rank must stop after the same epoch
                minutes = ddp.max(minutes)
            if (
                config.max_minutes is not None
                and minutes >= config.max_minutes
                and epoch + 1 < config.epochs
            ):
                stopped_reason = "time_budget"
                log(
                    f"time budget: stopping after epoch {epoch + 1}/{config.epochs} "
                    f"({minutes:.1f} of max_minutes={config.max_minutes:g}); "
                    f"continue with: emotrace train --resume {out}"
                )
                break
    except KeyboardInterrupt:
        acknowledge_interrupt()  # acted on: the run stops here, saved, and says so
        stopped_reason = "interrupted"
        log(f"interrupted; resume with: emotrace train --resume {out}")
    if main and plot:
        plot_history(history_path, out / "curves.png")
    return FitResult(
        out_dir=out,
        best_metric=state.best.best,
        best_epoch=state.best.best_epoch,
        epochs_run=epochs_done,
        stopped_early=stopped_reason == "early_stopping",
        interrupted=stopped_reason == "interrupted",
        stopped_reason=stopped_reason,
    )


def train_epoch(run: Run, epoch: int, progress: bool) -> dict[str, float]:
    """One pass over the training split: ``train_loss``, ``train_accuracy`` (summed over the
    ranks), the ``lr`` at its end, ``seconds`` and ``images_per_s``.

    Everything random in it is drawn from ``(seed, epoch)`` (and the rank) alone, so a resumed
    run trains the very epoch an uninterrupted run trains.
    """
    config, ddp, state = run.config, run.ddp, run.state
    seed = config.seed * 100_003 + epoch
    gen = torch.Generator().manual_seed(seed)  # the order and the mixing
    # Dropout (and anything else drawing from the global generator) must not depend on how many
    # epochs this process has run, or a resumed run would diverge.
    dropout_seed = _epoch_seed(config.seed, epoch)
    torch.manual_seed(dropout_seed if ddp is None else ddp.seed(dropout_seed))
    augment = BatchAugment(run.augment, seed=seed if ddp is None else ddp.seed(seed))
    if run.sample_weights is not None:
        order = torch.multinomial(run.sample_weights, run.x_train.shape[0], True, generator=gen)
    else:
        order = torch.randperm(run.x_train.shape[0], generator=gen)

    run.model.train()
    started = time.perf_counter()
    total_loss = correct = seen = 0.0
    bar = progress_bar(progress, f"epoch {epoch + 1}/{config.epochs}", run.steps_per_epoch)
    for step in range(run.steps_per_epoch):
        raise_if_interrupted()  # a Ctrl+C swallowed inside torch stops at the next step
        idx = order[step * config.batch_size : (step + 1) * config.batch_size]
        batch = next_batch(run, idx, augment, gen)
        with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=run.use_bf16):
            logits = run.forward(batch.x)
            loss = compute_loss(logits, batch, config, run.class_weights)
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            nn.utils.clip_grad_norm_(run.model.parameters(), config.grad_clip)
        state.optimizer.step()
        state.scheduler.step()
        if state.ema is not None:
            state.ema.update_parameters(run.model)
        total_loss += loss.item() * len(batch.idx)
        correct += float((logits.argmax(1) == batch.y).sum())
        seen += len(batch.idx)
        if bar is not None:
            bar.update(1, loss=total_loss / seen, acc=correct / seen)
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - started
    if ddp is not None:
        total_loss, correct, seen = ddp.sum(total_loss, correct, seen)
    return {
        "train_loss": total_loss / seen,
        "train_accuracy": correct / seen,
        "lr": state.lr,
        "seconds": elapsed,
        "images_per_s": seen / elapsed,
    }


def next_batch(run: Run, idx: torch.Tensor, augment: BatchAugment, gen: torch.Generator) -> Batch:
    """The training images ``idx`` (one global batch) as this rank's model sees them: its share,
    augmented, normalised, mixed ``mix_prob`` of the time, with distillation targets when
    distilling."""
    config = run.config
    if run.ddp is not None:
        idx = run.ddp.shard(idx)  # one global batch, split among the ranks
    x = run.x_train[idx].to(run.device).float().div_(255.0)
    y = run.y_train[idx].to(run.device)
    x = augment(x)
    x = ((x - config.mean) / config.std).contiguous(memory_format=run.memory_format)
    batch = Batch(idx, x, y)
    # The draw happens only when mixing is configured: other runs keep their random stream.
    if (config.mixup > 0 or config.cutmix > 0) and float(
        torch.rand(1, generator=gen)
    ) < config.mix_prob:
        batch.x, batch.perm, batch.lam = mix_batch(x, y, config, gen)
    if run.distillation is not None:
        batch.target = run.distillation.targets(idx, batch.x, batch.perm, batch.lam)
    return batch


def compute_loss(
    logits: torch.Tensor, batch: Batch, config: TrainConfig, weights: torch.Tensor | None
) -> torch.Tensor:
    """The loss of one batch: soft cross-entropy against distillation targets (which mix the
    label and the teachers, and the partner's when the batch is mixed); else cross-entropy
    against the labels, class-``weights`` and ``label_smoothing`` applied, ``lam`` of it against
    each image's own label and ``1 - lam`` against its mixing partner's."""
    if batch.target is not None:
        return soft_cross_entropy(logits, batch.target)

    def cross_entropy(labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(
            logits, labels, weight=weights, label_smoothing=config.label_smoothing
        )

    if batch.perm is not None:
        return batch.lam * cross_entropy(batch.y) + (1 - batch.lam) * cross_entropy(
            batch.y[batch.perm]
        )
    return cross_entropy(batch.y)


def validate(run: Run, model: nn.Module) -> dict[str, float]:
    """``val_loss``, ``val_accuracy`` and ``val_macro_f1`` of ``model`` on the whole split (under
    torchrun each rank scores its share and the figures are summed)."""
    if run.ddp is None:
        return evaluate_arrays(model, run.x_val, run.y_val, run.config, run.device, run.num_classes)
    return run.ddp.evaluate(model, run.x_val, run.y_val, run.config, run.num_classes)


def save_epoch(
    run: Run,
    data: PreparedDataset,
    out: Path,
    metrics: dict[str, float],
    eval_model: nn.Module,
    improved: bool,
) -> None:
    """Write the finished epoch (``run.state.epoch``): its ``history.csv`` row, ``eval_model`` as
    ``model.safetensors`` when it ``improved``, the live weights as ``last.safetensors`` and the
    :class:`~emotrace.training.state.TrainState` as ``state.pt``."""
    epoch = run.state.epoch + 1
    # The history row goes first: a crash before state.pt is saved leaves an extra row, which a
    # resume drops (truncate_history) and writes again.
    with (out / "history.csv").open("a", newline="") as handle:
        csv.writer(handle).writerow([epoch] + [f"{metrics[k]:.6g}" for k in HISTORY_FIELDS[1:]])
    meta = checkpoint_meta(run.config, data, metrics, epoch)
    if improved:
        save_checkpoint(eval_model, meta, out / "model.safetensors")
    save_checkpoint(run.model, meta, out / "last.safetensors")
    save_state(run.state.state_dict(), out / "state.pt")


def epoch_summary(epoch: int, config: TrainConfig, metrics: dict[str, float]) -> str:
    """The one log line of a finished epoch."""
    return (
        f"epoch {epoch + 1}/{config.epochs}  loss {metrics['train_loss']:.4f}  "
        f"acc {metrics['train_accuracy']:.4f}  val_loss {metrics['val_loss']:.4f}  "
        f"val_acc {metrics['val_accuracy']:.4f}  val_f1 {metrics['val_macro_f1']:.4f}  "
        f"{metrics['images_per_s']:.0f} img/s  {metrics['seconds']:.0f}s"
    )


def _epoch_seed(seed: int, epoch: int) -> int:
    # A separate stream from the order/augmentation generator's, derived from (seed, epoch) alone.
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])
