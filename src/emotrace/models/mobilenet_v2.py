"""MobileNetV2 (Sandler et al., CVPR 2018), width 1.0, for ImageNet transfer learning.

Seed project 3 of emotrace.

The backbone's parameter names match torchvision's ``mobilenet_v2`` state dict exactly
(``features.0.0.weight``, ``features.1.conv.0.0.weight``, ... ``features.18.1.running_var``), so the
standard ImageNet checkpoint ``mobilenet_v2-b0353104.pth`` loads with strict key matching and no
torchvision install. The ImageNet classifier (``classifier.1.*``) is not loaded: it is replaced by
``head`` (pool, dropout 0.2, ``fc``), the same head surface every emotrace model has.

Transfer-learning controls:

* ``mode="frozen"`` trains the head only. The backbone's parameters do not require gradients and
  its BatchNorm layers stay in eval mode even under ``model.train()``, so a few FER batches cannot
  overwrite the ImageNet running statistics.
* ``mode="finetune"`` trains everything, or with ``unfreeze_blocks=N`` only the last N of the 19
  feature blocks (the others frozen as above). :meth:`MobileNetV2.parameter_groups` gives the
  backbone a lower learning rate (``backbone_lr_mult``) than the new head.
* Gray faces: ``gray_mode="repeat"`` copies the channel to RGB inside the model; ``"adapt"`` swaps
  the first conv for a 1-channel one whose filters are the sums of the pretrained RGB filters
  (the same response to a gray image, a third of the first layer's cost).
* Depth: ``repeats`` gives the number of inverted residual blocks in each of the seven stages
  (the paper's 1, 2, 3, 4, 3, 3, 1 by default). A shallower net keeps the first blocks of each
  stage, which take the pretrained weights of those same blocks; the dropped ones all have
  identity shortcuts, so the kept blocks still see the inputs they were trained on, roughly.
  Fewer blocks means fewer operators, which is what bounds int8 latency at small input sizes.
* Regularisation: ``drop_path`` sets stochastic depth (Huang et al., 2016), a rate that grows
  linearly from 0 at the first of the 17 inverted residual blocks to ``drop_path`` at the last
  (blocks without a shortcut never drop). Inference is unchanged: the rate acts in training only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

import torch
from torch import nn

from emotrace.errors import ModelError
from emotrace.models._common import ClassifierHead, InvertedResidual, conv_bn_act
from emotrace.models._registry import register
from emotrace.models.pretrained import find_or_fetch_weights, load_state_dict_file

# (expansion t, output channels c, repeats n, first stride s), the paper's Table 2.
_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
PAPER_REPEATS = tuple(n for _, _, n, _ in _SETTINGS)
NUM_BLOCKS = 19  # stem + 17 inverted residuals + final 1x1 conv: len(features) at full depth
MODES = ("frozen", "finetune")
GRAY_MODES = ("repeat", "adapt")


class MobileNetV2(nn.Module):
    """MobileNetV2 backbone with torchvision parameter names and an emotrace head."""

    def __init__(
        self,
        num_classes: int = 7,
        in_channels: int = 3,
        weights: Path | None = None,
        mode: str = "finetune",
        unfreeze_blocks: int | None = None,
        backbone_lr_mult: float = 0.1,
        gray_mode: str = "repeat",
        dropout: float = 0.2,
        drop_path: float = 0.0,
        repeats: tuple[int, ...] | list[int] | None = None,
    ) -> None:
        super().__init__()
        repeats = tuple(repeats) if repeats is not None else PAPER_REPEATS
        _check_options(
            in_channels, mode, unfreeze_blocks, backbone_lr_mult, gray_mode, drop_path, repeats
        )
        self.repeats = repeats
        blocks: list[nn.Module] = [conv_bn_act(3, 32, 3, 2, act=nn.ReLU6)]
        channels = 32
        depth = sum(repeats)
        for (t, c, _, s), n in zip(_SETTINGS, repeats, strict=True):
            for i in range(n):
                rate = drop_path * (len(blocks) - 1) / (depth - 1)
                blocks.append(InvertedResidual(channels, c, s if i == 0 else 1, t, drop_path=rate))
                channels = c
        blocks.append(conv_bn_act(channels, 1280, 1, act=nn.ReLU6))
        self.features = nn.Sequential(*blocks)
        self.num_features = 1280
        self.head = ClassifierHead(1280, num_classes, dropout)
        self.frozen_blocks = 0
        self._init_weights()

        if weights is not None:
            self.load_torchvision_weights(weights)
        # Decided after loading so that "adapt" can sum the pretrained RGB filters.
        self.repeat_gray = in_channels == 1 and gray_mode == "repeat"
        # emotrace arrays are BGR (OpenCV's order) but ImageNet filters expect RGB.
        self.bgr_to_rgb = in_channels == 3
        if in_channels == 1 and gray_mode == "adapt":
            self._adapt_first_conv()

        self.backbone_lr_mult = backbone_lr_mult
        total = len(self.features)
        self.frozen_blocks = total if mode == "frozen" else total - (unfreeze_blocks or total)
        for block in self.frozen():
            block.requires_grad_(False)
        self.train()  # puts the frozen blocks' BatchNorm into eval mode

    def _init_weights(self) -> None:
        # torchvision's initialisation, so pretrained=False matches a fresh torchvision model.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def load_torchvision_weights(self, path: Path) -> None:
        """Load the backbone from a torchvision ``mobilenet_v2`` state dict, strictly.

        Raises :class:`ModelError` for an unreadable file or one whose keys or shapes differ.
        """
        state = load_state_dict_file(path)
        kept = paper_block_indices(self.repeats)
        backbone = {}
        for key, value in state.items():
            if not key.startswith("features."):
                continue
            index, _, rest = key[len("features.") :].partition(".")
            if index.isdigit() and int(index) in kept:
                backbone[f"{kept[int(index)]}.{rest}"] = value
        expected = self.features.state_dict()
        missing = sorted(expected.keys() - backbone.keys())
        unexpected = sorted(backbone.keys() - expected.keys())
        mismatched = sorted(
            k for k in expected.keys() & backbone.keys() if expected[k].shape != backbone[k].shape
        )
        if missing or unexpected or mismatched:
            example = (missing or unexpected or mismatched)[0]
            raise ModelError(
                f"{path} is not a torchvision mobilenet_v2 checkpoint: {len(missing)} missing, "
                f"{len(unexpected)} unexpected, {len(mismatched)} mis-shaped backbone keys "
                f"(e.g. features.{example})"
            )
        self.features.load_state_dict(backbone, strict=True)

    def _adapt_first_conv(self) -> None:
        stem = self.features[0]
        old = stem[0] if isinstance(stem, nn.Sequential) else None
        if not isinstance(stem, nn.Sequential) or not isinstance(old, nn.Conv2d):
            raise TypeError("mobilenet_v2: features[0][0] is not the first convolution")
        new = nn.Conv2d(1, old.out_channels, 3, 2, 1, bias=False)
        with torch.no_grad():
            # A gray pixel g is the RGB pixel (g, g, g): the summed filter gives the same response.
            new.weight.copy_(old.weight.sum(dim=1, keepdim=True))
        stem[0] = new

    def train(self, mode: bool = True) -> Self:
        """Set train/eval mode, keeping frozen blocks in eval so their BN statistics stay fixed."""
        super().train(mode)
        for block in self.frozen():
            block.train(False)
        return self

    def frozen(self) -> list[nn.Module]:
        """The leading feature blocks that are not trained (all 19 in frozen mode)."""
        return list(self.features)[: self.frozen_blocks]

    def parameter_groups(self, lr: float) -> list[dict[str, Any]]:
        """Optimizer groups: the head at ``lr``, trainable backbone params at ``lr * mult``."""
        head = [p for p in self.head.parameters() if p.requires_grad]
        backbone = [p for p in self.features.parameters() if p.requires_grad]
        groups: list[dict[str, Any]] = []
        if head:
            groups.append({"params": head, "lr": lr})
        if backbone:
            groups.append({"params": backbone, "lr": lr * self.backbone_lr_mult})
        return groups

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map before pooling (gray input repeated to RGB first when configured)."""
        if self.repeat_gray:
            x = x.expand(-1, 3, -1, -1)
        elif self.bgr_to_rgb:
            x = x.flip(1)
        out: torch.Tensor = self.features(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.forward_features(x))
        return out


def paper_block_indices(repeats: tuple[int, ...]) -> dict[int, int]:
    """Full-depth ``features`` index -> index in a net with ``repeats`` (the blocks it keeps)."""
    kept = {0: 0}
    paper, ours = 1, 1
    for full, n in zip(PAPER_REPEATS, repeats, strict=True):
        for i in range(n):
            kept[paper + i] = ours + i
        paper += full
        ours += n
    kept[paper] = ours  # the final 1x1 conv
    return kept


def _check_options(
    in_channels: int,
    mode: str,
    unfreeze_blocks: int | None,
    backbone_lr_mult: float,
    gray_mode: str,
    drop_path: float = 0.0,
    repeats: tuple[int, ...] = PAPER_REPEATS,
) -> None:
    if in_channels not in (1, 3):
        raise ModelError(
            f"mobilenet_v2 takes 1 (gray) or 3 (RGB) input channels, not {in_channels}"
        )
    if mode not in MODES:
        raise ModelError(f"mobilenet_v2 mode must be one of {', '.join(MODES)}, not {mode!r}")
    if gray_mode not in GRAY_MODES:
        raise ModelError(f"gray_mode must be one of {', '.join(GRAY_MODES)}, not {gray_mode!r}")
    if len(repeats) != len(PAPER_REPEATS) or not all(
        isinstance(n, int) and 1 <= n <= full
        for n, full in zip(repeats, PAPER_REPEATS, strict=False)
    ):
        raise ModelError(
            f"repeats must be {len(PAPER_REPEATS)} whole numbers, each from 1 to the paper's "
            f"{', '.join(map(str, PAPER_REPEATS))}; got {list(repeats)}"
        )
    total = sum(repeats) + 2
    if unfreeze_blocks is not None and not 0 <= unfreeze_blocks <= total:
        raise ModelError(f"unfreeze_blocks must be between 0 and {total}, not {unfreeze_blocks}")
    if mode == "frozen" and unfreeze_blocks:
        raise ModelError(
            "unfreeze_blocks needs mode='finetune' (mode='frozen' trains the head only)"
        )
    if backbone_lr_mult < 0:
        raise ModelError(f"backbone_lr_mult must be >= 0, not {backbone_lr_mult}")
    if not 0 <= drop_path < 1:
        raise ModelError(f"drop_path must be in [0, 1), not {drop_path}")


@register("mobilenet_v2", input_size=96, channels=3, summary="MobileNetV2 1.0, ImageNet transfer")
def mobilenet_v2(
    num_classes: int = 7,
    in_channels: int = 3,
    input_size: int = 96,
    pretrained: bool | str | Path = False,
    mode: str = "finetune",
    unfreeze_blocks: int | None = None,
    backbone_lr_mult: float | None = None,
    gray_mode: str = "repeat",
    dropout: float = 0.2,
    drop_path: float = 0.0,
    repeats: list[int] | None = None,
) -> nn.Module:
    """Build MobileNetV2; ``pretrained=True`` loads ImageNet weights (torch hub cache or download,
    checked against their hash); a path loads that torchvision ``mobilenet_v2`` state dict instead,
    unchecked but for its keys and shapes (a machine without network, given the backbone by hand).

    ``backbone_lr_mult`` defaults to 0.1 with pretrained weights and 1.0 without: a lower rate
    protects pretrained features, but would only slow down a randomly initialised backbone.
    Five stride-2 stages need at least 32 px input (a 1x1 final map); 96 px is the default.
    ``repeats`` sets the blocks per stage (a shallower net; see the module docstring).
    """
    if input_size < 32:
        raise ModelError(f"mobilenet_v2 needs input_size >= 32, got {input_size}")
    if backbone_lr_mult is None:
        backbone_lr_mult = 0.1 if pretrained else 1.0
    # Checked here too so that a bad option fails before a 14 MB download.
    depth = tuple(repeats) if repeats is not None else PAPER_REPEATS
    _check_options(
        in_channels, mode, unfreeze_blocks, backbone_lr_mult, gray_mode, drop_path, depth
    )
    if isinstance(pretrained, str | Path):
        weights: Path | None = Path(pretrained)
    else:
        weights = find_or_fetch_weights() if pretrained else None
    return MobileNetV2(
        num_classes,
        in_channels,
        weights,
        mode,
        unfreeze_blocks,
        backbone_lr_mult,
        gray_mode,
        dropout,
        drop_path,
        depth,
    )
