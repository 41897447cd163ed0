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
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        expansion: float,
        act: type[nn.Module] = nn.ReLU6,
        hidden: int | None = None,
    ) -> None:
        super().__init__()
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.conv(x)
        return x + y if self.use_residual else y


class ClassifierHead(nn.Module):
    """Global average pool, dropout, linear: the same head surface on every model."""

    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(torch.flatten(self.pool(x), 1)))
