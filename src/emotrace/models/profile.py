"""Parameter count and compute of registered models, for the ``emotrace models`` listing.

Compute is counted in multiply-adds (MACs), the unit papers call "FLOPs" (MobileNet, MobileViT),
by running one image through the model with forward hooks on ``Conv2d`` and ``Linear`` layers.
Attention matmuls are not layers, so a module can report them itself through a
``matmul_macs(input)`` method (MobileViT's attention does). Normalisation, activations, pooling and
additions are left out: they are a few percent and the papers leave them out too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from emotrace.models._registry import build, model_info


def count_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of one forward pass of ``model`` on ``x`` (all images of the batch)."""
    total = 0

    def conv(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(module, nn.Conv2d)
        kh, kw = module.kernel_size
        total += output.numel() * (module.in_channels // module.groups) * kh * kw

    def linear(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(module, nn.Linear)
        total += output.numel() * module.in_features

    def matmuls(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        nonlocal total
        count: Callable[[torch.Tensor], int] = module.matmul_macs  # type: ignore[assignment]
        total += count(inputs[0])

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear))
        if callable(getattr(module, "matmul_macs", None)):
            handles.append(module.register_forward_hook(matmuls))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return total


def profile(name: str, input_size: int | None = None) -> tuple[int, float]:
    """``(parameters, MMACs)`` of registered model ``name`` for one image at its default size.

    MMACs are millions of multiply-adds ("MFLOPs" in the mobile-network papers' sense).
    """
    info = model_info(name)
    size = input_size or info.default_input_size
    model = build(name, input_size=size)
    params = sum(p.numel() for p in model.parameters())
    x = torch.zeros(1, info.default_channels, size, size)
    return params, count_macs(model, x) / 1e6
