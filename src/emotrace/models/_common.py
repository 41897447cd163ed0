"""Layers shared by several architectures."""

from __future__ import annotations

import torch
from torch import nn


def conv_bn_act(
    in_channels: int,
    out_channels: int,
    kernel: int = 3,
    stride: int = 1,
    groups: int = 1,
    act: type[nn.Module] | None = nn.ReLU,
) -> nn.Sequential:
    """Conv2d (no bias, 'same' padding) + BatchNorm2d + activation."""
    layers: list[nn.Module] = [
        nn.Conv2d(
            in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=False
        ),
        nn.BatchNorm2d(out_channels),
    ]
    if act is not None:
        layers.append(act(inplace=True) if act in (nn.ReLU, nn.ReLU6, nn.SiLU) else act())
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2's block in torchvision's layout: ``conv`` = [1x1 expand], 3x3 depthwise, 1x1
    linear projection + BN, with an identity shortcut where shapes allow.

    MobileNetV2 uses ReLU6 and ``round(in * expansion)`` hidden channels (its ImageNet weights load
    by these parameter names); MobileViT's MV2 blocks pass SiLU and a divisible-by-8 width.
    ``drop_path`` is the stochastic-depth rate of a block with a shortcut (Huang et al., 2016):
    in training, each sample skips the block's branch with that probability.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        expansion: float,
        act: type[nn.Module] = nn.ReLU6,
        hidden: int | None = None,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= drop_path < 1.0:
            raise ValueError(f"drop_path must be in [0, 1), not {drop_path}")
        hidden = hidden if hidden is not None else round(in_channels * expansion)
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(conv_bn_act(in_channels, hidden, 1, act=act))
        layers += [
            conv_bn_act(hidden, hidden, 3, stride, groups=hidden, act=act),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels
        # Without a shortcut there is nothing to fall back on, so the branch is never dropped.
        self.drop_path = drop_path if self.use_residual else 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.conv(x)
        if not self.use_residual:
            return y
        if self.training and self.drop_path > 0:
            keep = 1.0 - self.drop_path
            # One draw per sample; dividing by `keep` keeps the expected output equal to the
            # evaluation-mode output, which always adds the whole branch.
            mask = torch.empty((y.shape[0], 1, 1, 1), dtype=y.dtype, device=y.device)
            y = y * mask.bernoulli_(keep).div_(keep)
        return x + y


class ClassifierHead(nn.Module):
    """Global average pool, dropout, linear: the same head surface on every model."""

    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(torch.flatten(self.pool(x), 1)))
