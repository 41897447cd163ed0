"""The model over in-memory image tensors: the validation pass of :func:`~emotrace.training.fit`.

Both the single-process loop and :meth:`~emotrace.training.distributed.Distributed.evaluate`
score the validation split through :func:`predict_logits`; neither imports the other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emotrace.evaluation.metrics import macro_f1

if TYPE_CHECKING:
    from emotrace.training.config import TrainConfig


def to_tensor_nchw(images: np.ndarray) -> torch.Tensor:
    """``(N, H, W, C)`` uint8 array to a ``(N, C, H, W)`` uint8 tensor."""
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


def normalise(batch_uint8: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """uint8 batch to float, scaled to ``[0, 1]`` then standardised."""
    return (batch_uint8.float() / 255.0 - mean) / std


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    images: torch.Tensor,
    mean: float,
    std: float,
    device: torch.device,
    batch_size: int = 512,
    channels_last: bool = False,
) -> torch.Tensor:
    """Logits for a uint8 ``(N, C, H, W)`` tensor, in eval mode."""
    model.eval()
    chunks = []
    for start in range(0, images.shape[0], batch_size):
        x = normalise(images[start : start + batch_size].to(device), mean, std)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        chunks.append(model(x).float().cpu())
    return torch.cat(chunks) if chunks else torch.empty(0)


def confusion_matrix(true: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``(K, K)`` counts, rows true class, columns predicted."""
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (true, pred), 1)
    return confusion


def evaluate_arrays(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    config: TrainConfig,
    device: torch.device,
    num_classes: int,
) -> dict[str, float]:
    """Validation loss, accuracy and macro-F1 on in-memory arrays."""
    logits = predict_logits(
        model, images, config.mean, config.std, device, channels_last=config.channels_last
    )
    loss = float(F.cross_entropy(logits, labels))
    pred = logits.argmax(1).numpy()
    true = labels.numpy()
    return {
        "val_loss": loss,
        "val_accuracy": float((pred == true).mean()),
        "val_macro_f1": macro_f1(confusion_matrix(true, pred, num_classes)),
    }
