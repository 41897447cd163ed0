"""Optimisation pieces of a training step: optimizer, schedule, class weights, Mixup/CutMix."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from emotrace.training.config import TrainConfig


def make_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """The configured optimizer over the model's trainable parameters (or its own groups)."""
    groups_fn = getattr(model, "parameter_groups", None)
    params: Any = (
        groups_fn(config.lr)
        if callable(groups_fn)
        else [p for p in model.parameters() if p.requires_grad]
    )
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            nesterov=True,
        )
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=config.lr, weight_decay=config.weight_decay)


def lr_factor(config: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """Per-step learning-rate multiplier: linear warm-up, then cosine to ``min_lr`` (or flat)."""
    total = config.epochs * steps_per_epoch
    warmup = min(config.warmup_epochs * steps_per_epoch, total // 2)
    floor = config.min_lr / config.lr

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if config.scheduler != "cosine":
            return 1.0
        progress = (step - warmup) / max(1, total - warmup)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def class_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Inverse-frequency class weights with mean 1 (rare classes such as disgust weigh more)."""
    counts = torch.bincount(labels, minlength=num_classes).float().clamp(min=1)
    weights = counts.sum() / (num_classes * counts)
    return weights / weights.mean()


def mix_batch(
    x: torch.Tensor, y: torch.Tensor, config: TrainConfig, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mixup or CutMix on a batch; returns the mixed inputs, the permutation that paired each
    image with its partner (``y[perm]`` are the second targets) and the first target's weight."""
    use_mixup = config.mixup > 0 and (config.cutmix <= 0 or torch.rand(1, generator=gen) < 0.5)
    alpha = config.mixup if use_mixup else config.cutmix
    lam = float(
        np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=gen))).beta(alpha, alpha)
    )
    perm = torch.randperm(x.shape[0], generator=gen).to(x.device)
    if use_mixup:
        return lam * x + (1 - lam) * x[perm], perm, lam
    h, w = x.shape[2], x.shape[3]
    cut_h, cut_w = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
    cy, cx = (
        int(torch.randint(0, h, (1,), generator=gen)),
        int(torch.randint(0, w, (1,), generator=gen)),
    )
    y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, h)
    x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, w)
    x = x.clone()
    x[:, :, y0:y1, x0:x1] = x[perm][:, :, y0:y1, x0:x1]
    lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
    return x, perm, lam
