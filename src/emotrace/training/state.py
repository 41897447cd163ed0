"""What a resume needs besides the weights: :class:`TrainState`, saved as ``state.pt``.

The model's own weights go to ``last.safetensors``; everything else that carries over from one
epoch to the next (optimizer moments, schedules, the averaged model, the best value so far, the
early-stopping count and the last finished epoch) lives here, each part with its own
``state_dict``, as Lightning's callbacks keep theirs.

``state.pt`` keys (unchanged since the first resumable release, so older runs resume):
``epoch`` (last finished, counted from 0), ``optimizer``, ``scheduler``, ``best``,
``early_stopping``, and ``plateau`` / ``ema`` when those are configured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from emotrace.training.callbacks import BestTracker, EarlyStopping, mode_for
from emotrace.training.config import TrainConfig
from emotrace.training.optim import lr_factor, make_optimizer


@dataclass
class TrainState:
    """The optimizer, schedules, averaged model and callbacks of a run, and its last epoch."""

    optimizer: torch.optim.Optimizer
    scheduler: LambdaLR
    best: BestTracker
    early_stopping: EarlyStopping
    plateau: ReduceLROnPlateau | None = None
    ema: AveragedModel | None = None
    #: The last finished epoch, counted from 0; -1 before the first.
    epoch: int = -1

    @classmethod
    def create(cls, config: TrainConfig, model: nn.Module, steps_per_epoch: int) -> TrainState:
        """A fresh state for training ``model`` (already on its device) as ``config`` says."""
        optimizer = make_optimizer(config, model)
        plateau = None
        if config.scheduler == "plateau":
            plateau = ReduceLROnPlateau(
                optimizer,
                mode=mode_for(config.monitor),
                factor=0.5,
                patience=config.plateau_patience,
                min_lr=config.min_lr,
            )
        ema = None
        if config.ema > 0:
            ema = AveragedModel(
                model,
                multi_avg_fn=get_ema_multi_avg_fn(config.ema),
                # BatchNorm statistics are averaged with the weights: the live model's statistics
                # do not fit averaged weights (that mismatch collapsed validation to one class).
                use_buffers=True,
            )
        return cls(
            optimizer=optimizer,
            scheduler=LambdaLR(optimizer, lr_factor(config, steps_per_epoch)),
            best=BestTracker(config.monitor),
            early_stopping=EarlyStopping(config.monitor, config.early_stopping),
            plateau=plateau,
            ema=ema,
        )

    @property
    def next_epoch(self) -> int:
        """The epoch to train next, counted from 0."""
        return self.epoch + 1

    @property
    def lr(self) -> float:
        """The first parameter group's learning rate now."""
        return float(self.optimizer.param_groups[0]["lr"])

    def step_plateau(self, value: float) -> None:
        """End-of-epoch ReduceLROnPlateau step on the monitored ``value`` (when configured)."""
        if self.plateau is None:
            return
        before = [group["lr"] for group in self.optimizer.param_groups]
        self.plateau.step(value)
        # LambdaLR recomputes every lr from its base_lrs at the next step, which would undo the
        # plateau's cut; scale the bases by the same factor so it sticks.
        self.scheduler.base_lrs = [
            base * group["lr"] / old if old > 0 else base
            for base, group, old in zip(
                self.scheduler.base_lrs, self.optimizer.param_groups, before, strict=True
            )
        ]

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain values only, for ``torch.load(weights_only=True)``."""
        state: dict[str, Any] = {
            "epoch": self.epoch,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "best": self.best.state_dict(),
            "early_stopping": self.early_stopping.state_dict(),
        }
        if self.plateau is not None:
            state["plateau"] = self.plateau.state_dict()
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict` output. A ``plateau`` or ``ema`` part the file lacks
        (the run was saved without it) starts afresh rather than failing the resume."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.plateau is not None and "plateau" in state:
            self.plateau.load_state_dict(state["plateau"])
        if self.ema is not None and "ema" in state:
            self.ema.load_state_dict(state["ema"])
        self.best.load_state_dict(state["best"])
        self.early_stopping.load_state_dict(state["early_stopping"])
        self.epoch = int(state["epoch"])
