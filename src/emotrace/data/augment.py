"""Batched image augmentation on torch tensors (CPU or GPU), seedable.

One random affine matrix per image (rotation, zoom, translation, flips) applied with a single
``grid_sample`` call for the whole batch, then per-image brightness/contrast and random erasing as
tensor arithmetic. No per-image Python loop, so augmentation stays far from being the bottleneck
of a training step.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F

from emotrace.errors import ConfigError


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths. Zero (or probability 0) turns a transform off.

    ``rotation``: max degrees either way. ``zoom``: max relative scale change either way.
    ``translate``: max shift as a fraction of the side. ``brightness``/``contrast``: max relative
    change. ``hflip``/``vflip``/``erasing``: probabilities (vertical flip off by default since faces
    are upright). ``erasing_area``: max fraction of the image one erased rectangle covers.
    """

    hflip: float = 0.5
    vflip: float = 0.0
    rotation: float = 10.0
    zoom: float = 0.1
    translate: float = 0.1
    brightness: float = 0.2
    contrast: float = 0.2
    erasing: float = 0.25
    erasing_area: float = 0.15

    def __post_init__(self) -> None:
        for name in ("hflip", "vflip", "erasing"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"augment.{name} is a probability (0-1), got {getattr(self, name)}")
        for name in ("rotation", "zoom", "translate", "brightness", "contrast", "erasing_area"):
            if getattr(self, name) < 0:
                raise ConfigError(f"augment.{name} must be >= 0, got {getattr(self, name)}")
        if self.zoom >= 1 or self.erasing_area > 1:
            raise ConfigError("augment.zoom must be < 1 and augment.erasing_area <= 1")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AugmentConfig:
        """Build from a mapping; unknown keys raise :class:`ConfigError` listing valid ones."""
        valid = {f.name for f in fields(cls)}
        unknown = set(data).difference(valid)
        if unknown:
            raise ConfigError(
                f"unknown augment keys {sorted(unknown)}; valid: {', '.join(sorted(valid))}"
            )
        return cls(**{k: float(v) for k, v in data.items()})

    def to_dict(self) -> dict[str, float]:
        """Plain mapping (for configs and checkpoint metadata)."""
        return asdict(self)

    @classmethod
    def none(cls) -> AugmentConfig:
        """Every transform off."""
        return cls(0, 0, 0, 0, 0, 0, 0, 0, 0)


class BatchAugment:
    """Apply :class:`AugmentConfig` to a float batch ``(B, C, H, W)`` with values in ``[0, 1]``.

    Pass a seeded ``torch.Generator`` (or ``seed``) for reproducible output; the same seed and
    input give bit-identical results on the same device.
    """

    def __init__(self, config: AugmentConfig | None = None, seed: int | None = None) -> None:
        self.config = config or AugmentConfig()
        self.generator = torch.Generator()
        if seed is not None:
            self.generator.manual_seed(seed)

    def _uniform(self, n: int, low: float, high: float, device: torch.device) -> torch.Tensor:
        return (torch.rand(n, generator=self.generator) * (high - low) + low).to(device)

    def _bernoulli(self, n: int, p: float, device: torch.device) -> torch.Tensor:
        return (torch.rand(n, generator=self.generator) < p).to(device)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        if batch.ndim != 4:
            raise ValueError(f"expected a (B, C, H, W) batch, got shape {tuple(batch.shape)}")
        cfg, n, device = self.config, batch.shape[0], batch.device
        out = batch
        if cfg.rotation or cfg.zoom or cfg.translate or cfg.hflip or cfg.vflip:
            out = self._affine(out)
        if cfg.brightness or cfg.contrast:
            out = self._photometric(out)
        if cfg.erasing:
            out = self._erase(out)
        del n, device
        return out

    def _affine(self, x: torch.Tensor) -> torch.Tensor:
        cfg, n, device = self.config, x.shape[0], x.device
        angle = self._uniform(n, -cfg.rotation, cfg.rotation, device) * (math.pi / 180)
        scale = self._uniform(n, 1 - cfg.zoom, 1 + cfg.zoom, device)
        tx = self._uniform(n, -cfg.translate, cfg.translate, device) * 2
        ty = self._uniform(n, -cfg.translate, cfg.translate, device) * 2
        fx = torch.where(self._bernoulli(n, cfg.hflip, device), -1.0, 1.0)
        fy = torch.where(self._bernoulli(n, cfg.vflip, device), -1.0, 1.0)
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        # theta maps output coordinates to input coordinates; zoom > 1 samples a smaller area.
        theta = torch.stack(
            [
                torch.stack([cos * fx, -sin * fy, tx], dim=1),
                torch.stack([sin * fx, cos * fy, ty], dim=1),
            ],
            dim=1,
        ).to(x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def _photometric(self, x: torch.Tensor) -> torch.Tensor:
        cfg, n, device = self.config, x.shape[0], x.device
        shape = (n, 1, 1, 1)
        brightness = self._uniform(n, -cfg.brightness, cfg.brightness, device).view(shape)
        contrast = self._uniform(n, 1 - cfg.contrast, 1 + cfg.contrast, device).view(shape)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return ((x - mean) * contrast + mean + brightness).clamp_(0.0, 1.0)

    def _erase(self, x: torch.Tensor) -> torch.Tensor:
        cfg, n, device = self.config, x.shape[0], x.device
        height, width = x.shape[2], x.shape[3]
        area = self._uniform(n, 0.02, max(0.02, cfg.erasing_area), device)
        aspect = torch.exp(self._uniform(n, math.log(0.3), math.log(3.3), device))
        eh = (torch.sqrt(area * aspect) * height).clamp(1, height)
        ew = (torch.sqrt(area / aspect) * width).clamp(1, width)
        y0 = self._uniform(n, 0, 1, device) * (height - eh)
        x0 = self._uniform(n, 0, 1, device) * (width - ew)
        ys = torch.arange(height, device=device).view(1, height, 1)
        xs = torch.arange(width, device=device).view(1, 1, width)
        inside = (
            (ys >= y0.view(n, 1, 1))
            & (ys < (y0 + eh).view(n, 1, 1))
            & (xs >= x0.view(n, 1, 1))
            & (xs < (x0 + ew).view(n, 1, 1))
        )
        apply = self._bernoulli(n, cfg.erasing, device).view(n, 1, 1)
        mask = (inside & apply).unsqueeze(1)
        fill = torch.rand(x.shape, generator=self.generator).to(device)
        return torch.where(mask, fill, x)
