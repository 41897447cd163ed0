"""MobileViT (Mehta & Rastegari, ICLR 2022): MobileNetV2 blocks plus local-global MobileViT blocks.

Layout and sizes follow the paper and Apple's ml-cvnets reference (``mobilevit_xxs/xs/s``):
a 3x3 stem, one MV2 block, three MV2 blocks (the first strided), then three stages of a strided
MV2 block followed by a MobileViT block with L = 2, 4, 3 transformer layers on 2x2 patches
(4 heads, FFN width 2d, SiLU everywhere), a 1x1 expansion conv and the classifier.

Small faces: the paper downsamples 32x (stem stride 2 plus four strided MV2 blocks) for 256 px
input. At 64 px that leaves a 2x2 map in the last stage, i.e. a single patch, so the last
transformer would attend over one token. For ``input_size <= 96`` the stem stride defaults to 1
(16x in total): 64 px ends at 4x4 (stages at 16/8/4 px with 64/16/4 patches), at the cost of the
compute of a 128 px image at stride 2. Maps that are not a multiple of the patch size (48 px ends
at 3x3) are bilinearly resized up to one and back, as ml-cvnets does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from emotrace.errors import ModelError
from emotrace.models._common import ClassifierHead, InvertedResidual, conv_bn_act
from emotrace.models._registry import register


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round ``value`` to a multiple of ``divisor``, losing at most 10% (the MobileNet rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def mv2_block(in_channels: int, out_channels: int, stride: int, expansion: int) -> nn.Module:
    """MobileViT's MV2 block: MobileNetV2's inverted residual with SiLU and a divisible width."""
    hidden = make_divisible(in_channels * expansion)
    return InvertedResidual(in_channels, out_channels, stride, expansion, nn.SiLU, hidden)


class Attention(nn.Module):
    """Multi-head self-attention over ``(batch, tokens, dim)`` with fused q/k/v projection."""

    def __init__(self, dim: int, heads: int, attn_dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ModelError(f"transformer dim {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.attn_dropout = attn_dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        dropout = self.attn_dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)
        projected: torch.Tensor = self.proj(out.transpose(1, 2).reshape(b, n, d))
        return projected

    def matmul_macs(self, x: torch.Tensor) -> int:
        """Multiply-adds of the two attention matmuls (QK^T and AV), which are not layers."""
        b, n, d = x.shape
        return 2 * b * n * n * d


class TransformerLayer(nn.Module):
    """Pre-norm encoder layer: ``x + MHA(LN(x))`` then ``x + FFN(LN(x))`` with a SiLU FFN."""

    def __init__(
        self, dim: int, heads: int, ffn_dim: int, dropout: float = 0.0, attn_dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, attn_dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, ffn_dim),
            nn.SiLU(),
            nn.Dropout(dropout),
            nn.Linear(ffn_dim, dim),
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.attn(self.norm1(x)))
        out: torch.Tensor = x + self.dropout(self.ffn(self.norm2(x)))
        return out


class MobileViTBlock(nn.Module):
    """Local 3x3 + 1x1 conv to ``dim``, transformers across patches, 1x1 back, concat, 3x3 fuse."""

    def __init__(
        self,
        channels: int,
        dim: int,
        depth: int,
        heads: int = 4,
        patch_size: int = 2,
        dropout: float = 0.0,
        attn_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.local = nn.Sequential(
            conv_bn_act(channels, channels, 3, act=nn.SiLU),
            nn.Conv2d(channels, dim, 1, bias=False),
        )
        self.transformer = nn.Sequential(
            *(TransformerLayer(dim, heads, 2 * dim, dropout, attn_dropout) for _ in range(depth)),
            nn.LayerNorm(dim),
        )
        self.project = conv_bn_act(dim, channels, 1, act=nn.SiLU)
        self.fuse = conv_bn_act(2 * channels, channels, 3, act=nn.SiLU)

    def unfold(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` with H, W multiples of p -> ``(B * p * p, patches, C)``.

        Each token sequence holds the pixels at one position inside every patch, so attention
        mixes information across patches (global) while the convolutions handle the local part.
        """
        b, c, h, w = x.shape
        p = self.patch_size
        x = x.reshape(b, c, h // p, p, w // p, p).permute(0, 3, 5, 2, 4, 1)
        return x.reshape(b * p * p, (h // p) * (w // p), c)

    def fold(self, x: torch.Tensor, batch: int, height: int, width: int) -> torch.Tensor:
        """Inverse of :meth:`unfold` back to ``(B, C, height, width)``."""
        p = self.patch_size
        c = x.shape[-1]
        x = x.reshape(batch, p, p, height // p, width // p, c).permute(0, 5, 3, 1, 4, 2)
        return x.reshape(batch, c, height, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.local(x)
        b, _, h, w = y.shape
        p = self.patch_size
        ph, pw = math.ceil(h / p) * p, math.ceil(w / p) * p
        resized = (ph, pw) != (h, w)
        if resized:
            y = F.interpolate(y, size=(ph, pw), mode="bilinear", align_corners=False)
        y = self.fold(self.transformer(self.unfold(y)), b, ph, pw)
        if resized:
            y = F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)
        fused: torch.Tensor = self.fuse(torch.cat([x, self.project(y)], dim=1))
        return fused


@dataclass(frozen=True)
class MobileViTConfig:
    """Channel plan of one MobileViT size, as in the paper and ml-cvnets' configs."""

    channels: tuple[int, int, int, int, int, int, int]  # stem, 5 stages, 1x1 expansion
    dims: tuple[int, int, int]  # transformer width d of the three MobileViT blocks
    expansion: int  # MV2 expansion factor
    depths: tuple[int, int, int] = (2, 4, 3)  # transformer layers L per MobileViT block
    heads: int = 4


CONFIGS: dict[str, MobileViTConfig] = {
    "xxs": MobileViTConfig((16, 16, 24, 48, 64, 80, 320), (64, 80, 96), expansion=2),
    "xs": MobileViTConfig((16, 32, 48, 64, 80, 96, 384), (96, 120, 144), expansion=4),
    "s": MobileViTConfig((16, 32, 64, 96, 128, 160, 640), (144, 192, 240), expansion=4),
}


class MobileViT(nn.Module):
    """MobileViT classifier; see the module docstring for the small-input stem choice."""

    def __init__(
        self,
        config: MobileViTConfig,
        num_classes: int = 7,
        in_channels: int = 1,
        stem_stride: int = 2,
        dropout: float = 0.1,
        transformer_dropout: float = 0.0,
        patch_size: int = 2,
    ) -> None:
        super().__init__()
        c, e = config.channels, config.expansion
        self.stem = conv_bn_act(in_channels, c[0], 3, stem_stride, act=nn.SiLU)

        def vit_stage(i: int) -> nn.Sequential:
            return nn.Sequential(
                mv2_block(c[i + 1], c[i + 2], 2, e),
                MobileViTBlock(
                    c[i + 2],
                    config.dims[i - 1],
                    config.depths[i - 1],
                    config.heads,
                    patch_size,
                    transformer_dropout,
                ),
            )

        self.stages = nn.Sequential(
            nn.Sequential(mv2_block(c[0], c[1], 1, e)),
            nn.Sequential(
                mv2_block(c[1], c[2], 2, e),
                mv2_block(c[2], c[2], 1, e),
                mv2_block(c[2], c[2], 1, e),
            ),
            vit_stage(1),
            vit_stage(2),
            vit_stage(3),
        )
        self.expand = conv_bn_act(c[5], c[6], 1, act=nn.SiLU)
        self.num_features = c[6]
        self.head = ClassifierHead(c[6], num_classes, dropout)
        self._init_weights()

    def _init_weights(self) -> None:
        # ml-cvnets' scheme: He init for convs, small truncated normal for linear layers.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map before pooling (after the 1x1 expansion)."""
        out: torch.Tensor = self.expand(self.stages(self.stem(x)))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.forward_features(x))
        return out


def _build(
    size: str,
    num_classes: int,
    in_channels: int,
    input_size: int,
    pretrained: bool,
    stem_stride: int | None,
    dropout: float,
    transformer_dropout: float,
) -> MobileViT:
    """Shared builder. Options: ``stem_stride`` (1 or 2; default 1 for input_size <= 96, else 2
    as in the paper), ``dropout`` (classifier, 0.1) and ``transformer_dropout`` (0.0)."""
    name = f"mobilevit_{size}"
    if pretrained:
        raise ModelError(f"no pretrained weights are available for {name!r}; train it from scratch")
    if stem_stride is None:
        stem_stride = 1 if input_size <= 96 else 2
    if stem_stride not in (1, 2):
        raise ModelError(f"{name}: stem_stride must be 1 or 2, got {stem_stride}")
    if input_size < 16 * stem_stride:
        raise ModelError(f"{name}: input_size {input_size} is below {16 * stem_stride} px")
    return MobileViT(
        CONFIGS[size], num_classes, in_channels, stem_stride, dropout, transformer_dropout
    )


@register("mobilevit_xxs", input_size=64, channels=1, summary="MobileViT-XXS (d 64/80/96)")
def mobilevit_xxs(
    num_classes: int = 7,
    in_channels: int = 1,
    input_size: int = 64,
    pretrained: bool = False,
    stem_stride: int | None = None,
    dropout: float = 0.1,
    transformer_dropout: float = 0.0,
) -> nn.Module:
    """MobileViT-XXS: channels 16-16-24-48-64-80-320, MV2 expansion 2."""
    return _build(
        "xxs",
        num_classes,
        in_channels,
        input_size,
        pretrained,
        stem_stride,
        dropout,
        transformer_dropout,
    )


@register("mobilevit_xs", input_size=64, channels=1, summary="MobileViT-XS (d 96/120/144)")
def mobilevit_xs(
    num_classes: int = 7,
    in_channels: int = 1,
    input_size: int = 64,
    pretrained: bool = False,
    stem_stride: int | None = None,
    dropout: float = 0.1,
    transformer_dropout: float = 0.0,
) -> nn.Module:
    """MobileViT-XS: channels 16-32-48-64-80-96-384, MV2 expansion 4."""
    return _build(
        "xs",
        num_classes,
        in_channels,
        input_size,
        pretrained,
        stem_stride,
        dropout,
        transformer_dropout,
    )


@register("mobilevit_s", input_size=64, channels=1, summary="MobileViT-S (d 144/192/240)")
def mobilevit_s(
    num_classes: int = 7,
    in_channels: int = 1,
    input_size: int = 64,
    pretrained: bool = False,
    stem_stride: int | None = None,
    dropout: float = 0.1,
    transformer_dropout: float = 0.0,
) -> nn.Module:
    """MobileViT-S: channels 16-32-64-96-128-160-640, MV2 expansion 4."""
    return _build(
        "s",
        num_classes,
        in_channels,
        input_size,
        pretrained,
        stem_stride,
        dropout,
        transformer_dropout,
    )
