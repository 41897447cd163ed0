"""EmoNet: emotrace's own architecture, built for real-time CPU inference on 48-64 px faces.

``emonet`` is the fast variant (depths 1-2-2-1) and ``emonet_deep`` (depths 1-2-3-2) the deeper
one: emotrace 0.1.0's default and, on aligned crops, the next one. Both are now recipes
(``configs/emonet_*.yaml``) and the teachers of the bundled default, a distilled MobileNetV2
(``docs/model_card.md``). ``emonet_wide`` is retired (no recipe or result ever used it): it still
builds, with a warning, so checkpoints trained under that name load.

Why this shape:

* FER faces are small (48 px). A full-resolution 3x3 convolution with few channels (16) keeps the
  fine detail of mouth corners and brows for almost no cost, then one strided convolution moves to
  24 px where the real work starts. Striding straight away lost that detail; running the whole
  first stage at 48 px cost 2.5x the compute for the same training budget.
* Residual stages of plain 3x3 convolutions (widths 32-64-128-256, depths 1-2-2-1): dense 3x3
  convolutions are the fastest kernel per FLOP in both PyTorch's CPU backend and onnxruntime,
  unlike depthwise convolutions, which are cheap in FLOPs but slow in wall-clock time on 2 cores.
* ~60 M multiply-adds and 1.6 M parameters: about 1 ms per face with one onnxruntime thread and
  ~430 training images/s on a 2-core CPU, so a useful model trains in an hour there.
* Global average pooling makes the same weights work at 48 or 64 px input.
"""

from __future__ import annotations

import torch
from torch import nn

from emotrace.models._common import ClassifierHead, conv_bn_act
from emotrace.models._registry import register, register_model_deprecations


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 projection) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = conv_bn_act(in_channels, out_channels, stride=stride)
        self.conv2 = nn.Sequential(
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))


class EmoNet(nn.Module):
    """Compact residual CNN; see the module docstring for the design rationale."""

    def __init__(
        self,
        num_classes: int = 7,
        in_channels: int = 1,
        widths: tuple[int, ...] = (32, 64, 128, 256),
        depths: tuple[int, ...] = (1, 2, 2, 1),
        stem_channels: int = 16,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            conv_bn_act(in_channels, stem_channels),
            conv_bn_act(stem_channels, widths[0], stride=2),
        )
        blocks: list[nn.Module] = []
        channels = widths[0]
        for stage, (width, depth) in enumerate(zip(widths, depths, strict=True)):
            for i in range(depth):
                stride = 2 if (i == 0 and stage > 0) else 1
                blocks.append(BasicBlock(channels, width, stride))
                channels = width
        self.features = nn.Sequential(*blocks)
        self.num_features = channels
        self.head = ClassifierHead(channels, num_classes, dropout)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map before pooling."""
        return self.features(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


@register("emonet", input_size=48, channels=1, summary="fast residual CNN (depths 1-2-2-1)")
def emonet(
    num_classes: int = 7,
    in_channels: int = 1,
    input_size: int = 48,
    pretrained: bool = False,
    dropout: float = 0.3,
) -> nn.Module:
    """Build EmoNet (no pretrained weights exist for it; train it or use the bundled model)."""
    del input_size, pretrained  # size-agnostic; weights come from training
    return EmoNet(num_classes=num_classes, in_channels=in_channels, dropout=dropout)


@register("emonet_wide", input_size=48, channels=1, summary="retired: EmoNet with 1.5x channels")
def emonet_wide(
    num_classes: int = 7,
    in_channels: int = 1,
    input_size: int = 48,
    pretrained: bool = False,
    dropout: float = 0.3,
) -> nn.Module:
    """EmoNet with widths 48-96-192-384 (~2x compute); retired in favour of ``emonet_deep``."""
    del input_size, pretrained
    return EmoNet(
        num_classes, in_channels, widths=(48, 96, 192, 384), stem_channels=24, dropout=dropout
    )


@register(
    "emonet_deep",
    input_size=48,
    channels=1,
    summary="previous default: EmoNet, 3+2 blocks at 6/3 px",
)
def emonet_deep(
    num_classes: int = 7,
    in_channels: int = 1,
    input_size: int = 48,
    pretrained: bool = False,
    dropout: float = 0.3,
) -> nn.Module:
    """EmoNet with depths 1-2-3-2: ~1.2x the compute of ``emonet``, more capacity at 6x6 and 3x3."""
    del input_size, pretrained
    return EmoNet(num_classes, in_channels, depths=(1, 2, 3, 2), dropout=dropout)


# emonet_wide (0.1.0) has no recipe or result: emonet_deep is the larger EmoNet with results, at
# 0.6x its multiply-adds. Its builder stays so a checkpoint that records the name still loads.
register_model_deprecations({"emonet_wide": "emonet_deep"})
