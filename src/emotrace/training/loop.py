"""The training loop: read it top to bottom in :func:`fit`.

Data lives in memory as a uint8 tensor; each step indexes a batch, augments it as a batch, and runs
the model in channels-last layout. Every epoch appends to ``history.csv``, replaces
``model.safetensors`` when the monitored validation metric improves, and writes
``last.safetensors`` + ``state.pt`` (the resume point), with Ctrl+C held back until all of them are
written. Each epoch's randomness (order, augmentation, mixing, dropout) is seeded from
``(seed, epoch)``, so a resumed run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from emotrace import __version__
from emotrace._interrupts import acknowledge_interrupt, hold_interrupt, raise_if_interrupted
from emotrace.data.augment import AugmentConfig, BatchAugment
from emotrace.data.cache import PreparedDataset, SplitArrays
from emotrace.errors import ConfigError, DatasetError
from emotrace.models import build
from emotrace.preprocessing import Preprocess
from emotrace.training import distributed
from emotrace.training.callbacks import BestTracker, EarlyStopping, mode_for
from emotrace.training.checkpoint import (
    init_from_checkpoint,
    load_state,
    save_checkpoint,
    save_state,
)
from emotrace.training.config import TrainConfig
from emotrace.training.distill import build_distillation, soft_cross_entropy
from emotrace.training.history import (
    HISTORY_FIELDS,
    plot_history,
    progress_bar,
    truncate_history,
)
from emotrace.training.optim import class_weights, lr_factor, make_optimizer, mix_batch

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


def select_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(
            f"device={name!r} is not a torch device (auto, cpu, cuda, cuda:1...)"
        ) from None
    # Checked here: torch itself fails on the first tensor moved there, with a traceback.
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r}: this torch sees no CUDA GPU; use device=auto or cpu")
    return device


def has_fast_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively. On a CPU without AVX-512 or AMX, oneDNN
    emulates it: a MobileNetV2 epoch under bf16 autocast took 13x as long as in fp32 on an
    AVX2-only 2-core EPYC (1 against 11 images/s, same load)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type != "cpu":
        return True
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch built without oneDNN
        return False


def to_tensor_nchw(images: np.ndarray) -> torch.Tensor:
    """``(N, H, W, C)`` uint8 array to a ``(N, C, H, W)`` uint8 tensor."""
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


def normalise(batch_uint8: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """uint8 batch to float, scaled to ``[0, 1]`` then standardised."""
    return (batch_uint8.float() / 255.0 - mean) / std


def macro_f1(confusion: np.ndarray) -> float:
    """Macro-averaged F1 from a confusion matrix (rows true, columns predicted)."""
    tp = np.diag(confusion).astype(float)
    precision = np.divide(tp, confusion.sum(0), out=np.zeros_like(tp), where=confusion.sum(0) > 0)
    recall = np.divide(tp, confusion.sum(1), out=np.zeros_like(tp), where=confusion.sum(1) > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    present = confusion.sum(1) > 0
    return float(f1[present].mean()) if present.any() else 0.0


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    images: torch.Tensor,
    mean: float,
    std: float,
    device: torch.device,
    batch_size: int = 512,
    channels_last: bool = False,
) -> torch.Tensor:
    """Logits for a uint8 ``(N, C, H, W)`` tensor, in eval mode."""
    model.eval()
    chunks = []
    for start in range(0, images.shape[0], batch_size):
        x = normalise(images[start : start + batch_size].to(device), mean, std)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        chunks.append(model(x).float().cpu())
    return torch.cat(chunks) if chunks else torch.empty(0)


def _epoch_seed(seed: int, epoch: int) -> int:
    # A separate stream from the order/augmentation generator's, derived from (seed, epoch) alone.
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def _limit(train: SplitArrays, limit: int | None, seed: int) -> SplitArrays:
    """The first ``limit`` images of a seeded shuffle (the same subset on every resume)."""
    if limit is None or limit >= len(train.labels):
        return train
    keep = np.random.default_rng(seed).permutation(len(train.labels))[:limit]
    return SplitArrays(train.images[keep], train.labels[keep])


def checkpoint_meta(
    config: TrainConfig, data: PreparedDataset, metrics: dict[str, float], epoch: int
) -> dict[str, Any]:
    """Metadata stored beside weights: enough to rebuild, preprocess and label."""
    return {
        "architecture": config.model,
        "model_options": config.model_options,
        "classes": data.classes,
        "input_size": data.preprocess.size,
        "channels": data.preprocess.channels,
        "normalization": {"mean": config.mean, "std": config.std},
        "preprocess": data.preprocess.to_dict(),
        "dataset_key": data.key,
        "dataset_source": data.source,
        "metrics": metrics,
        "epoch": epoch,
        "temperature": 1.0,
        "emotrace_version": __version__,
        "config": config.to_dict(),
    }


def check_new_run(out: Path) -> None:
    """Refuse to start a new run in a folder that holds one: it would rewrite ``history.csv``
    at once and, after its first epoch, the checkpoints."""
    held = [n for n in ("model.safetensors", "state.pt") if (out / n).exists()]
    if held:
        raise ConfigError(
            f"{out} already holds a run ({held[0]}); continue it with --resume {out}, "
            "or give another --out"
        )


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
    main = ddp is None or ddp.is_main
    log, progress = distributed.quiet(log, ddp), progress and main
    if data.preprocess.size != int(config.preprocess.get("size", data.preprocess.size)):
        raise ConfigError(
            f"config asks for {config.preprocess.get('size')} px images but the data is "
            f"{data.preprocess.size} px; prepare the data with "
            f"--size {config.preprocess.get('size')}"
        )
    if len(data.classes) < 2:
        # One class trains to a constant answer with a perfect validation score.
        raise DatasetError(
            f"{data.source or 'the dataset'} has one class ({', '.join(data.classes)}); "
            "a classifier needs at least two"
        )
    train = _limit(data.split(config.train_split), config.limit_train, config.seed)
    if config.limit_train is not None:
        log(f"limit_train: training on {len(train.labels):,} images")
    val = data.split(config.val_split)
    num_classes = len(data.classes)
    x_train, y_train = to_tensor_nchw(train.images), torch.from_numpy(train.labels)
    x_val, y_val = to_tensor_nchw(val.images), torch.from_numpy(val.labels)

    if config.model_options.get("mode") == "frozen" and not config.pretrained:
        # Loading a checkpoint builds frozen models without weights too, so the warning lives here.
        log("warning: mode=frozen without pretrained: true trains a head on a random backbone")
    # Weights from init_from replace ImageNet's, so they are not fetched for nothing.
    pretrained: bool | str = config.pretrained and config.init_from is None
    if pretrained and config.pretrained_weights:
        pretrained = config.pretrained_weights
    model = build(
        config.model,
        num_classes=num_classes,
        in_channels=data.preprocess.channels,
        input_size=data.preprocess.size,
        pretrained=pretrained,
        **config.model_options,
    )
    if config.init_from is not None and not resume:
        # A resume reloads last.safetensors below; init_from only ever seeds epoch 1.
        log(
            init_from_checkpoint(
                model, config.init_from, config.model, data.classes, data.preprocess.channels
            )
        )
    model = model.to(device)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)  # type: ignore[call-overload]
    optimizer = make_optimizer(config, model)
    use_bf16 = config.precision == "bf16"
    if use_bf16 and not has_fast_bf16(device):
        # The configs ask for bf16 because it is faster where it is native; where it is not,
        # it is over ten times slower, and fp32 trains the same network as well.
        log(
            f"precision bf16: this {device.type.upper()} has no native bfloat16 "
            "(on a CPU: AVX-512 or AMX), so autocast would emulate it, over 10x slower; "
            "training in fp32"
        )
        use_bf16 = False
    if ddp is not None:
        model = distributed.prepare_model(ddp, model, config)
    # Only the training forward goes through the compiled graph (and DDP's wrapper); checkpoints,
    # EMA and validation use the plain module, so weights keep their names and resume works.
    train_forward: Any = ddp.wrap(model) if ddp is not None else model
    train_forward = torch.compile(train_forward) if config.compile else train_forward
    steps_per_epoch = max(1, x_train.shape[0] // config.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config, steps_per_epoch))
    plateau = (
        torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode=mode_for(config.monitor),
            factor=0.5,
            patience=config.plateau_patience,
            min_lr=config.min_lr,
        )
        if config.scheduler == "plateau"
        else None
    )
    ema = (
        torch.optim.swa_utils.AveragedModel(
            model,
            multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(config.ema),
            # BatchNorm statistics are averaged with the weights: the live model's statistics do
            # not fit averaged weights (that mismatch collapsed validation to one class).
            use_buffers=True,
        )
        if config.ema > 0
        else None
    )
    weights = (
        class_weights(y_train, num_classes).to(device)
        if config.class_balance == "weights"
        else None
    )
    sample_weights = (
        class_weights(y_train, num_classes)[y_train] if config.class_balance == "sampler" else None
    )
    best = BestTracker(config.monitor)
    stopper = EarlyStopping(config.monitor, config.early_stopping)
    augment_config = AugmentConfig.from_dict(config.augment)
    start_epoch = 0
    stopped_before = False  # a resumed run that had already stopped early stays stopped
    history_path = out / "history.csv"
    state_path = out / "state.pt"
    if resume:
        from safetensors.torch import load_file

        state = load_state(state_path)
        _check_resumable(out, config, data)
        model.load_state_dict(load_file(str(out / "last.safetensors")))
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if plateau is not None and "plateau" in state:
            plateau.load_state_dict(state["plateau"])
        if ema is not None and "ema" in state:
            ema.load_state_dict(state["ema"])
        best.load_state_dict(state["best"])
        stopper.load_state_dict(state["early_stopping"])
        start_epoch = int(state["epoch"]) + 1
        if main:
            truncate_history(history_path, start_epoch)
        if start_epoch >= config.epochs:
            log(
                f"{out} already ran {start_epoch} of epochs={config.epochs}; nothing to train "
                f"(pass epochs={start_epoch + 1} or more to continue)"
            )
        elif stopper.patience > 0 and stopper.wait >= stopper.patience:
            stopped_before = True
            log(
                f"{out} stopped early after epoch {start_epoch} ({config.monitor} did not "
                f"improve for {stopper.wait} epochs); nothing to train (pass "
                f"early_stopping={stopper.wait + 1} or more, or 0, to continue)"
            )
        else:
            log(f"resuming {out} at epoch {start_epoch + 1}/{config.epochs}")
    elif main:
        with history_path.open("w", newline="") as handle:
            csv.writer(handle).writerow(HISTORY_FIELDS)
    # The teachers run over the whole training split (minutes on a CPU): only when there is
    # an epoch to train, not for a resume that finds the run finished.
    distillation = (
        build_distillation(
            config,
            train.images,
            y_train,
            num_classes,
            log,
            prepared_as=data.preprocess,
            images_for=_reprepare(data, config, train.labels) if data.source else None,
            classes=data.classes,
            device=device,
        )
        if config.distill_teacher is not None and start_epoch < config.epochs and not stopped_before
        else None
    )
    # Rewritten on resume too, so overrides given then (epochs=...) stick for the next resume.
    if main:
        (out / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), "utf-8")

    stopped_reason = "early_stopping" if stopped_before else "completed"
    epochs_done = start_epoch
    try:
        for epoch in range(start_epoch, start_epoch if stopped_before else config.epochs):
            seed = config.seed * 100_003 + epoch
            gen = torch.Generator().manual_seed(seed)
            # Dropout (and anything else drawing from the global generator) must not depend on
            # how many epochs this process has run, or a resumed run would diverge.
            dropout_seed = _epoch_seed(config.seed, epoch)
            torch.manual_seed(dropout_seed if ddp is None else ddp.seed(dropout_seed))
            augment = BatchAugment(augment_config, seed=seed if ddp is None else ddp.seed(seed))
            if sample_weights is not None:
                order = torch.multinomial(sample_weights, x_train.shape[0], True, generator=gen)
            else:
                order = torch.randperm(x_train.shape[0], generator=gen)
            model.train()
            started = time.perf_counter()
            total_loss = correct = seen = 0.0
            bar = progress_bar(progress, f"epoch {epoch + 1}/{config.epochs}", steps_per_epoch)
            for step in range(steps_per_epoch):
                raise_if_interrupted()  # a Ctrl+C swallowed inside torch stops at the next step
                idx = order[step * config.batch_size : (step + 1) * config.batch_size]
                if ddp is not None:
                    idx = ddp.shard(idx)  # one global batch, split among the ranks
                x = x_train[idx].to(device).float().div_(255.0)
                y = y_train[idx].to(device)
                x = augment(x)
                x = ((x - config.mean) / config.std).contiguous(memory_format=memory_format)
                mixing = (config.mixup > 0 or config.cutmix > 0) and float(
                    torch.rand(1, generator=gen)
                ) < config.mix_prob
                if mixing:
                    x, perm, lam = mix_batch(x, y, config, gen)
                if distillation is not None:
                    target = (
                        distillation.targets(idx, x, perm, lam)
                        if mixing
                        else distillation.targets(idx, x)
                    )
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                    logits = train_forward(x)
                    if distillation is not None:
                        loss = soft_cross_entropy(logits, target)
                    elif mixing:
                        loss = lam * F.cross_entropy(
                            logits, y, weight=weights, label_smoothing=config.label_smoothing
                        ) + (1 - lam) * F.cross_entropy(
                            logits, y[perm], weight=weights, label_smoothing=config.label_smoothing
                        )
                    else:
                        loss = F.cross_entropy(
                            logits, y, weight=weights, label_smoothing=config.label_smoothing
                        )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip > 0:
                    nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
                scheduler.step()
                if ema is not None:
                    ema.update_parameters(model)
                total_loss += loss.item() * len(idx)
                correct += float((logits.argmax(1) == y).sum())
                seen += len(idx)
                if bar is not None:
                    bar.update(1, loss=total_loss / seen, acc=correct / seen)
            if bar is not None:
                bar.close()
            elapsed = time.perf_counter() - started
            eval_model: nn.Module = ema.module if ema is not None else model
            if ddp is None:
                metrics = evaluate_arrays(eval_model, x_val, y_val, config, device, num_classes)
            else:
                total_loss, correct, seen = ddp.sum(total_loss, correct, seen)
                metrics = ddp.evaluate(eval_model, x_val, y_val, config, num_classes)
            metrics.update(
                train_loss=total_loss / seen,
                train_accuracy=correct / seen,
                lr=optimizer.param_groups[0]["lr"],
                seconds=elapsed,
                images_per_s=seen / elapsed,
            )
            if plateau is not None:
                before = [group["lr"] for group in optimizer.param_groups]
                plateau.step(metrics[config.monitor])
                # LambdaLR recomputes every lr from its base_lrs at the next step, which would
                # undo the plateau's cut; scale the bases by the same factor so it sticks.
                scheduler.base_lrs = [
                    base * group["lr"] / old if old > 0 else base
                    for base, group, old in zip(
                        scheduler.base_lrs, optimizer.param_groups, before, strict=True
                    )
                ]
            with hold_interrupt():
                improved = best.update(metrics, epoch + 1)  # on every rank: the same state
                # Stepped before state.pt is saved, so a resume continues the patience count
                # where it was (and a run that had stopped early stays stopped).
                stop_now = stopper.step(metrics)
                if main:  # the one writer
                    # The history row goes first: a crash before state.pt is saved leaves an extra
                    # row, which a resume drops (_truncate_history) and writes again.
                    with history_path.open("a", newline="") as handle:
                        csv.writer(handle).writerow(
                            [epoch + 1] + [f"{metrics[k]:.6g}" for k in HISTORY_FIELDS[1:]]
                        )
                    meta = checkpoint_meta(config, data, metrics, epoch + 1)
                    if improved:
                        save_checkpoint(eval_model, meta, out / "model.safetensors")
                    save_checkpoint(model, meta, out / "last.safetensors")
                    progress_state: dict[str, Any] = {
                        "epoch": epoch,
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "best": best.state_dict(),
                        "early_stopping": stopper.state_dict(),
                    }
                    if plateau is not None:
                        progress_state["plateau"] = plateau.state_dict()
                    if ema is not None:
                        progress_state["ema"] = ema.state_dict()
                    save_state(progress_state, state_path)
                epochs_done = epoch + 1  # before a held Ctrl+C is raised at the block's end
            log(
                f"epoch {epoch + 1}/{config.epochs}  loss {metrics['train_loss']:.4f}  "
                f"acc {metrics['train_accuracy']:.4f}  val_loss {metrics['val_loss']:.4f}  "
                f"val_acc {metrics['val_accuracy']:.4f}  val_f1 {metrics['val_macro_f1']:.4f}  "
                f"{metrics['images_per_s']:.0f} img/s  {elapsed:.0f}s"
            )
            if stop_now:
                stopped_reason = "early_stopping"
                log(
                    f"early stopping: {config.monitor} did not improve "
                    f"for {stopper.patience} epochs"
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
        best_metric=best.best,
        best_epoch=best.best_epoch,
        epochs_run=epochs_done,
        stopped_early=stopped_reason == "early_stopping",
        interrupted=stopped_reason == "interrupted",
        stopped_reason=stopped_reason,
    )


def _check_resumable(out: Path, config: TrainConfig, data: PreparedDataset) -> None:
    """Refuse a resume whose model, data or optimizer differ from the run's: its weights or
    optimizer state would not load (a traceback), or the run would go on at another image size
    or preprocessing than its earlier epochs and its best checkpoint."""
    from emotrace.training.checkpoint import read_metadata

    saved = read_metadata(out / "last.safetensors")
    # Through JSON, as the saved metadata went: tuples become lists, keys strings.
    now = json.loads(json.dumps(checkpoint_meta(config, data, {}, 0)))
    differ = [
        (key, saved.get(key), now[key])
        for key in ("architecture", "model_options", "classes", "channels", "input_size")
        if saved.get(key) != now[key]
    ]
    try:  # through Preprocess: a run saved before a setting existed has its default
        same = Preprocess.from_dict(saved.get("preprocess") or {}) == data.preprocess
    except ConfigError:
        same = False
    if not same:
        differ.append(("preprocess", saved.get("preprocess"), now["preprocess"]))
    was = saved.get("config", {}).get("optimizer", config.optimizer)
    if was != config.optimizer:
        differ.append(("optimizer", was, config.optimizer))
    if differ:
        key, before, after = differ[0]
        raise ConfigError(
            f"--resume {out}: the run was trained with {key} {before!r}, this resume has "
            f"{after!r}; resume with the run's own settings and data, or start a new run "
            "(init_from= it to keep its weights)"
        )


def _reprepare(
    data: PreparedDataset, config: TrainConfig, labels: np.ndarray
) -> Callable[[Preprocess], np.ndarray]:
    """The training images of ``data``'s source dataset prepared another way (cached by content
    like any prepared dataset), in the same order and subset as the training data, whose
    ``labels`` they must match."""

    def images_for(settings: Preprocess) -> np.ndarray:
        from emotrace.data.prepared import load_prepared

        if not Path(data.source).exists():
            raise ConfigError(
                f"a teacher needs the training images prepared as {settings.to_dict()}, but "
                f"the data's source {data.source} is not there (moved? older caches record "
                "it relative to the directory they were prepared in)"
            )
        other = load_prepared(data.source, settings)
        train = _limit(other.split(config.train_split), config.limit_train, config.seed)
        if not np.array_equal(train.labels, labels):
            raise ConfigError(
                f"{data.source} prepared as {settings.to_dict()} does not line up with the "
                "training data (has the dataset changed since?); prepare the data again"
            )
        return train.images

    return images_for


def evaluate_arrays(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    config: TrainConfig,
    device: torch.device,
    num_classes: int,
) -> dict[str, float]:
    """Validation loss, accuracy and macro-F1 on in-memory arrays."""
    logits = predict_logits(
        model, images, config.mean, config.std, device, channels_last=config.channels_last
    )
    loss = float(F.cross_entropy(logits, labels))
    pred = logits.argmax(1).numpy()
    true = labels.numpy()
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (true, pred), 1)
    return {
        "val_loss": loss,
        "val_accuracy": float((pred == true).mean()),
        "val_macro_f1": macro_f1(confusion),
    }
