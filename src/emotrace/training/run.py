"""A training run before its first step: the data as tensors, the model on its device, its
training forward and :class:`~emotrace.training.state.TrainState`, and the run folder (a new run
refuses one that holds a run; a resume checks the folder's run is this one, then loads it).

:func:`~emotrace.training.loop.fit` calls these, then loops over :class:`Run`'s epochs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from emotrace import __version__
from emotrace.data.augment import AugmentConfig
from emotrace.data.cache import PreparedDataset, SplitArrays
from emotrace.errors import ConfigError, DatasetError
from emotrace.models import build
from emotrace.preprocessing import Preprocess
from emotrace.training import distributed
from emotrace.training.checkpoint import init_from_checkpoint, load_state, read_metadata
from emotrace.training.config import TrainConfig
from emotrace.training.distill import Distillation, build_distillation
from emotrace.training.history import truncate_history
from emotrace.training.inference import to_tensor_nchw
from emotrace.training.optim import class_weights
from emotrace.training.state import TrainState


@dataclass
class Run:
    """What the epochs of one :func:`~emotrace.training.loop.fit` call share, built once by
    :func:`prepare_run`."""

    config: TrainConfig
    device: torch.device
    ddp: distributed.Distributed | None
    #: The plain module: checkpoints, EMA and validation use it, so weights keep their names.
    model: nn.Module
    #: The training forward: ``model`` in DDP's wrapper and/or compiled, as configured.
    forward: Callable[[torch.Tensor], torch.Tensor]
    state: TrainState
    train: SplitArrays
    num_classes: int
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    memory_format: torch.memory_format
    use_bf16: bool
    steps_per_epoch: int
    augment: AugmentConfig
    #: ``class_balance: weights``: per-class loss weights; ``sampler``: per-image draw weights.
    class_weights: torch.Tensor | None
    sample_weights: torch.Tensor | None
    distillation: Distillation | None = None


def check_data(config: TrainConfig, data: PreparedDataset) -> None:
    """Refuse data the config cannot train on, in one line."""
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


def prepare_run(
    config: TrainConfig,
    data: PreparedDataset,
    device: torch.device,
    ddp: distributed.Distributed | None,
    resume: bool,
    log: Callable[[str], None],
) -> Run:
    """The splits as tensors, the model on ``device``, its training forward and a fresh
    :class:`TrainState` (a resume loads into them afterwards: :func:`resume_run`)."""
    train = _limit(data.split(config.train_split), config.limit_train, config.seed)
    if config.limit_train is not None:
        log(f"limit_train: training on {len(train.labels):,} images")
    val = data.split(config.val_split)
    num_classes = len(data.classes)
    y_train = torch.from_numpy(train.labels)

    model = build_model(config, data, resume, log).to(device)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)  # type: ignore[call-overload]
    if ddp is not None:
        model = distributed.prepare_model(ddp, model, config)
    # Only the training forward goes through the compiled graph (and DDP's wrapper); checkpoints,
    # EMA and validation use the plain module, so weights keep their names and resume works.
    forward: Any = ddp.wrap(model) if ddp is not None else model
    forward = torch.compile(forward) if config.compile else forward
    steps_per_epoch = max(1, len(train.labels) // config.batch_size)
    return Run(
        config=config,
        device=device,
        ddp=ddp,
        model=model,
        forward=forward,
        state=TrainState.create(config, model, steps_per_epoch),
        train=train,
        num_classes=num_classes,
        x_train=to_tensor_nchw(train.images),
        y_train=y_train,
        x_val=to_tensor_nchw(val.images),
        y_val=torch.from_numpy(val.labels),
        memory_format=memory_format,
        use_bf16=config.precision == "bf16" and _bf16_is_fast(device, log),
        steps_per_epoch=steps_per_epoch,
        augment=AugmentConfig.from_dict(config.augment),
        class_weights=(
            class_weights(y_train, num_classes).to(device)
            if config.class_balance == "weights"
            else None
        ),
        sample_weights=(
            class_weights(y_train, num_classes)[y_train]
            if config.class_balance == "sampler"
            else None
        ),
    )


def build_model(
    config: TrainConfig, data: PreparedDataset, resume: bool, log: Callable[[str], None]
) -> nn.Module:
    """The configured model for ``data``'s classes and images, seeded from ``init_from``."""
    if config.model_options.get("mode") == "frozen" and not config.pretrained:
        # Loading a checkpoint builds frozen models without weights too, so the warning lives here.
        log("warning: mode=frozen without pretrained: true trains a head on a random backbone")
    # Weights from init_from replace ImageNet's, so they are not fetched for nothing.
    pretrained: bool | str = config.pretrained and config.init_from is None
    if pretrained and config.pretrained_weights:
        pretrained = config.pretrained_weights
    model = build(
        config.model,
        num_classes=len(data.classes),
        in_channels=data.preprocess.channels,
        input_size=data.preprocess.size,
        pretrained=pretrained,
        **config.model_options,
    )
    if config.init_from is not None and not resume:
        # A resume reloads last.safetensors; init_from only ever seeds epoch 1.
        log(
            init_from_checkpoint(
                model, config.init_from, config.model, data.classes, data.preprocess.channels
            )
        )
    return model


def _bf16_is_fast(device: torch.device, log: Callable[[str], None]) -> bool:
    if has_fast_bf16(device):
        return True
    # The configs ask for bf16 because it is faster where it is native; where it is not, it is
    # over ten times slower, and fp32 trains the same network as well.
    log(
        f"precision bf16: this {device.type.upper()} has no native bfloat16 "
        "(on a CPU: AVX-512 or AMX), so autocast would emulate it, over 10x slower; "
        "training in fp32"
    )
    return False


def resume_run(
    run: Run, data: PreparedDataset, out: Path, log: Callable[[str], None], main: bool
) -> bool:
    """Load ``out``'s ``last.safetensors`` and ``state.pt`` into ``run``; True when the run had
    stopped early (it stays stopped)."""
    from safetensors.torch import load_file

    config, state = run.config, run.state
    saved = load_state(out / "state.pt")  # first: a folder without one is "nothing to resume"
    _check_resumable(out, config, data)
    run.model.load_state_dict(load_file(str(out / "last.safetensors")))
    state.load_state_dict(saved)
    start, stopper = state.next_epoch, state.early_stopping
    if main:
        truncate_history(out / "history.csv", start)
    if start >= config.epochs:
        log(
            f"{out} already ran {start} of epochs={config.epochs}; nothing to train "
            f"(pass epochs={start + 1} or more to continue)"
        )
        return False
    if stopper.patience > 0 and stopper.wait >= stopper.patience:
        log(
            f"{out} stopped early after epoch {start} ({config.monitor} did not "
            f"improve for {stopper.wait} epochs); nothing to train (pass "
            f"early_stopping={stopper.wait + 1} or more, or 0, to continue)"
        )
        return True
    log(f"resuming {out} at epoch {start + 1}/{config.epochs}")
    return False


def distillation_for(run: Run, data: PreparedDataset, log: Callable[[str], None]) -> Distillation:
    """The teachers' targets for ``run``'s training images (:mod:`emotrace.training.distill`)."""
    return build_distillation(
        run.config,
        run.train.images,
        run.y_train,
        run.num_classes,
        log,
        prepared_as=data.preprocess,
        images_for=_reprepare(data, run.config, run.train.labels) if data.source else None,
        classes=data.classes,
        device=run.device,
    )


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


def _check_resumable(out: Path, config: TrainConfig, data: PreparedDataset) -> None:
    """Refuse a resume whose model, data or optimizer differ from the run's: its weights or
    optimizer state would not load (a traceback), or the run would go on at another image size
    or preprocessing than its earlier epochs and its best checkpoint."""
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
