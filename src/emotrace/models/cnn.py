"""A deep plain CNN in the style of the classic Keras FER2013 models (seed project 1).

Four blocks of ``[conv3x3-BN-ReLU] x 2 -> max-pool 2 -> dropout`` with 64-128-256-512 channels,
then a dense head ``Linear 256 -> BN -> ReLU -> Dropout 0.5 -> Linear num_classes``.

One departure from the Keras original: the head global-average-pools the last feature map instead
of flattening it. At 48 px a flatten feeds 3x3x512 = 4,608 values into the dense layer (1.2 M extra
weights that mostly memorise FER2013's 28 k training faces), and it would tie the weights to one
input size; pooling keeps the same surface and size-independence as every other emotrace model.
"""

from __future__ import annotations

import torch
from torch import nn

from emotrace.errors import ModelError
from emotrace.models._common import ClassifierHead, conv_bn_act
from emotrace.models._registry import register


def conv_block(in_channels: int, out_channels: int, dropout: float) -> nn.Sequential:
    """Two 3x3 conv-BN-ReLU layers, 2x2 max-pooling, then dropout: one Keras-style stage."""
    return nn.Sequential(
        conv_bn_act(in_channels, out_channels),
        conv_bn_act(out_channels, out_channels),
        nn.MaxPool2d(2),
        nn.Dropout(dropout),
    )


class DenseHead(ClassifierHead):
    """Global pool, a hidden ``Linear-BN-ReLU`` layer, dropout, then the final ``fc``."""

    def __init__(
        self, in_features: int, num_classes: int, hidden: int = 256, dropout: float = 0.5
    ) -> None:
        super().__init__(hidden, num_classes, dropout)
        # No bias: the BatchNorm right after it has its own shift.
        self.hidden = nn.Sequential(
            nn.Linear(in_features, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.hidden(torch.flatten(self.pool(x), 1))
        out: torch.Tensor = self.fc(self.dropout(x))
        return out


class DeepCNN(nn.Module):
    """Stacked conv blocks plus a dense head; see the module docstring."""

    def __init__(
        self,
        num_classes: int = 7,
        in_channels: int = 1,
        widths: tuple[int, ...] = (64, 128, 256, 512),
        block_dropout: float = 0.25,
        hidden: int = 256,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        channels = in_channels
        for width in widths:
            blocks.append(conv_block(channels, width, block_dropout))
            channels = width
        self.features = nn.Sequential(*blocks)
        self.num_features = channels
        self.head = DenseHead(channels, num_classes, hidden, dropout)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map before pooling."""
        out: torch.Tensor = self.features(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.forward_features(x))
        return out


@register("cnn", input_size=48, channels=1, summary="deep Keras-style CNN (4 conv blocks + dense)")
def cnn(
    num_classes: int = 7,
    in_channels: int = 1,
    input_size: int = 48,
    pretrained: bool = False,
    dropout: float = 0.5,
    block_dropout: float = 0.25,
    hidden: int = 256,
) -> nn.Module:
    """Build the deep CNN. ``dropout`` is the dense head's, ``block_dropout`` each conv block's.

    Four 2x poolings need at least 16 px input; 48 px (FER2013's size) is the intended one.
    """
    if pretrained:
        raise ModelError("no pretrained weights exist for 'cnn'; train it from scratch")
    if input_size < 16:
        raise ModelError(f"'cnn' needs input_size >= 16 (four 2x poolings), got {input_size}")
    return DeepCNN(
        num_classes, in_channels, block_dropout=block_dropout, hidden=hidden, dropout=dropout
    )
