"""Early stopping and best-model tracking, each with its own state so a resume continues them."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal


def _better(mode: str, value: float, best: float) -> bool:
    return value < best if mode == "min" else value > best


def mode_for(monitor: str) -> Literal["min", "max"]:
    """``min`` for losses, ``max`` for everything else."""
    return "min" if monitor.endswith("loss") else "max"


@dataclass
class BestTracker:
    """Keeps the best value of ``monitor`` (ModelCheckpoint's decision, without the I/O)."""

    monitor: str
    best: float = math.nan
    best_epoch: int = -1

    def update(self, metrics: dict[str, float], epoch: int) -> bool:
        """Record ``metrics``; True when this epoch is the new best."""
        value = metrics[self.monitor]
        if math.isnan(self.best) or _better(mode_for(self.monitor), value, self.best):
            self.best, self.best_epoch = value, epoch
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = float(state["best"]), int(state["best_epoch"])


@dataclass
class EarlyStopping:
    """Stop when ``monitor`` has not improved for ``patience`` epochs (0 disables)."""

    monitor: str
    patience: int
    min_delta: float = 0.0
    best: float = math.nan
    wait: int = 0

    def step(self, metrics: dict[str, float]) -> bool:
        """Record ``metrics``; True when training should stop."""
        if self.patience <= 0:
            return False
        value = metrics[self.monitor]
        improved = math.isnan(self.best) or _better(
            mode_for(self.monitor),
            value + (self.min_delta if mode_for(self.monitor) == "min" else -self.min_delta),
            self.best,
        )
        if improved:
            self.best, self.wait = value, 0
            return False
        self.wait += 1
        return self.wait >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.wait = float(state["best"]), int(state["wait"])
