"""Quantisation-aware fine-tuning: teach a model to give the same answers after int8 rounding.

Post-training int8 keeps a MobileNetV2's accuracy (-0.3 points) but changes its answer on about
1 face in 25: every layer's rounding moves the logits a little, and near-ties flip. Here a copy of
the model (the student) runs with onnxruntime's int8 arithmetic simulated in torch and is
fine-tuned to reproduce the fp32 model's output distribution (KL divergence) on the training
images; the fp32 model itself is the teacher and does not change.

The simulation copies the int8 model that :func:`emotrace.export.quantize.quantize_int8` wrote:
the same quantisation points (the network input, every convolution's output after its fused
ReLU6, every residual sum, the pooled features and the logits) with the same uint8 scales and zero
points, and the same per-channel symmetric 7-bit weights, taken from BatchNorm-folded weights as
onnxruntime folds them. BatchNorm statistics are frozen, so the fold stays exact; gradients pass
the rounding straight through (inside the clipping range). Afterwards the student is an ordinary
checkpoint of the same architecture, exported and quantised again by the same recipe.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emotrace.errors import ModelError

#: Architectures whose layers this simulation maps one to one onto onnxruntime's int8 graph.
SUPPORTED = ("mobilenet_v2",)
#: Symmetric weight range of onnxruntime's reduce_range int8 weights: [-64, 64].
WEIGHT_QMAX = 64

Scale = tuple[float, int]


@dataclass
class QuantPoints:
    """Where onnxruntime's int8 model rounds activations, and with which (scale, zero point)."""

    network_input: Scale
    conv_outputs: dict[str, Scale]  # torch module path of the Conv2d -> its output's rounding
    residual_sums: list[Scale]  # in graph order
    #: Whether the classifier (Gemm) is int8 too; the recipe keeps it float.
    classifier_int8: bool
    pooled: Scale | None
    logits: Scale | None
    #: Every activation rounding by tensor name, to quantise the fine-tuned model with exactly
    #: the scales it was fine-tuned against.
    by_tensor: dict[str, Scale] = field(default_factory=dict)


@dataclass
class QatSettings:
    """How to fine-tune for int8: training images prepared as the model expects, epochs, rate."""

    images: np.ndarray
    epochs: float = 1.0
    lr: float = 3e-5
    log: Callable[[str], None] | None = None


@dataclass
class QatResult:
    """What the fine-tuning did."""

    epochs: float
    steps: int
    images: int
    seconds: float
    lr: float
    losses: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The recipe as stored in the int8 model's metadata."""
        return {
            "epochs": self.epochs,
            "steps": self.steps,
            "train_images": self.images,
            "lr": self.lr,
            "loss": "KL(fp32 teacher || simulated int8 student)",
        }


def read_quant_points(int8_path: Path) -> QuantPoints:
    """Read the activation scales of a QDQ model written by :func:`quantize_int8`."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(int8_path)).graph
    consts = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def rounding_of(tensor: str) -> Scale | None:
        for node in consumers.get(tensor, []):
            if node.op_type == "QuantizeLinear":
                return float(consts[node.input[1]]), int(consts[node.input[2]])
        return None

    def rounding_before(tensor: str) -> Scale | None:
        # A quantised op reads DequantizeLinear(QuantizeLinear(x)): the scale of that x.
        dq = producer.get(tensor)
        if dq is None or dq.op_type != "DequantizeLinear":
            return None
        q = producer.get(dq.input[0])
        return rounding_of(q.input[0]) if q is not None and q.op_type == "QuantizeLinear" else None

    convs: dict[str, Scale] = {}
    sums: list[Scale] = []
    first_input: Scale | None = None
    pooled = logits = None
    classifier_int8 = False
    for node in graph.node:
        if node.op_type in ("Conv", "Gemm"):
            weight = producer.get(node.input[1])
            if weight is None or weight.op_type != "DequantizeLinear":
                continue
            module = weight.input[0].removesuffix("_quantized").removesuffix(".weight")
            out = rounding_of(node.output[0])
            if node.op_type == "Gemm":
                classifier_int8 = True
                pooled, logits = rounding_before(node.input[0]), out
            elif out is not None:
                convs[module] = out
            if first_input is None:
                first_input = rounding_before(node.input[0])
        elif node.op_type == "Add" and (out := rounding_of(node.output[0])) is not None:
            sums.append(out)
    if first_input is None or not convs:
        raise ModelError(f"{int8_path}: not an emotrace int8 QDQ model (no quantised convolution)")
    by_tensor = {
        node.input[0]: (float(consts[node.input[1]]), int(consts[node.input[2]]))
        for node in graph.node
        if node.op_type == "QuantizeLinear" and node.input[0] not in consts
    }
    return QuantPoints(first_input, convs, sums, classifier_int8, pooled, logits, by_tensor)


def _fake_quant(x: Any, scale: Scale) -> Any:
    import torch

    return torch.fake_quantize_per_tensor_affine(x, scale[0], scale[1], 0, 255)


def _weight_rounding(fold: Any) -> Any:
    """A parametrization: weight -> int8-rounded (BatchNorm-folded) weight, unfolded again."""
    import torch
    from torch import nn

    class FoldedWeightRounding(nn.Module):
        def __init__(self, fold: torch.Tensor) -> None:
            super().__init__()
            self.register_buffer("fold", fold)

        def forward(self, weight: torch.Tensor) -> torch.Tensor:
            shape = (-1,) + (1,) * (weight.dim() - 1)
            fold = self.get_buffer("fold").view(shape)
            folded = weight * fold
            scale = (folded.detach().abs().flatten(1).amax(1) / WEIGHT_QMAX).clamp_min(1e-12)
            zero = torch.zeros_like(scale, dtype=torch.int32)
            rounded = torch.fake_quantize_per_channel_affine(
                folded, scale, zero, 0, -WEIGHT_QMAX, WEIGHT_QMAX
            )
            return rounded / fold

    return FoldedWeightRounding(fold)


class Int8Simulation:
    """Context manager: while active, ``model`` computes as onnxruntime's int8 model does."""

    def __init__(self, model: Any, points: QuantPoints) -> None:
        self.model, self.points = model, points
        self._handles: list[Any] = []
        self._weights: list[Any] = []

    def __enter__(self) -> Int8Simulation:
        import torch
        from torch import nn
        from torch.nn.utils import parametrize

        from emotrace.models._common import InvertedResidual

        model, points = self.model, self.points
        hook = self._handles.append
        hook(model.features.register_forward_pre_hook(
            lambda _m, args: (_fake_quant(args[0], points.network_input),)))  # fmt: skip
        for path, scale in points.conv_outputs.items():
            parent_path, _, index = path.rpartition(".")
            parent = model.get_submodule(parent_path)
            if not isinstance(parent, nn.Sequential) or not index.isdigit():
                raise ModelError(f"int8 simulation: {path} is not a layer of a Sequential")
            layers = list(parent)[int(index) :]
            conv, last = layers[0], layers[0]
            if not isinstance(conv, nn.Conv2d):
                raise ModelError(f"int8 simulation: {path} is not a convolution")
            fold = torch.ones(conv.out_channels)
            if len(layers) > 1 and isinstance(layers[1], nn.BatchNorm2d):
                bn = last = layers[1]
                assert bn.running_var is not None
                fold = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().clone()
                fold[fold.abs() < 1e-12] = 1.0  # a dead channel: any weight gives the same output
                if len(layers) > 2 and isinstance(layers[2], (nn.ReLU6, nn.ReLU)):
                    last = layers[2]
            parametrize.register_parametrization(conv, "weight", _weight_rounding(fold))
            self._weights.append(conv)
            hook(last.register_forward_hook(lambda _m, _i, out, s=scale: _fake_quant(out, s)))
        blocks = [b for b in model.modules() if isinstance(b, InvertedResidual) and b.use_residual]
        if len(blocks) != len(points.residual_sums):
            raise ModelError(
                f"int8 simulation: {len(blocks)} residual blocks but "
                f"{len(points.residual_sums)} int8 sums"
            )
        for block, scale in zip(blocks, points.residual_sums, strict=True):
            hook(block.register_forward_hook(lambda _m, _i, out, s=scale: _fake_quant(out, s)))
        fc, pool = model.head.fc, model.head.pool
        if points.classifier_int8:
            ones = torch.ones(fc.out_features)
            parametrize.register_parametrization(fc, "weight", _weight_rounding(ones))
            self._weights.append(fc)
        pooled, logits = points.pooled, points.logits
        if pooled is not None:
            hook(pool.register_forward_hook(lambda _m, _i, out: _fake_quant(out, pooled)))
        if logits is not None:
            hook(fc.register_forward_hook(lambda _m, _i, out: _fake_quant(out, logits)))
        return self

    def __exit__(self, *exc: object) -> None:
        from torch.nn.utils import parametrize

        for handle in self._handles:
            handle.remove()
        for module in self._weights:
            # The trained float weights stay; the rounding goes.
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)
        self._handles, self._weights = [], []


def _batches(count: int, batch: int, steps: int, seed: int) -> Iterator[np.ndarray]:
    rng = np.random.default_rng(seed)
    order = np.empty(0, dtype=np.int64)
    for _ in range(steps):
        if len(order) < batch:
            order = np.concatenate([order, rng.permutation(count)])
        yield order[:batch]
        order = order[batch:]


def fine_tune_for_int8(
    model: Any,
    int8_path: Path,
    images: np.ndarray,
    mean: float,
    std: float,
    epochs: float = 1.0,
    lr: float = 3e-5,
    batch: int = 64,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> QatResult:
    """Fine-tune ``model`` in place so that its int8 export agrees with the fp32 ``model``.

    ``images``: uint8 ``(N, S, S, C)`` training images prepared as the model expects (randomly
    flipped here); ``int8_path``: the post-training int8 export whose rounding is simulated.
    """
    import copy

    import torch
    import torch.nn.functional as F

    if epochs <= 0 or lr <= 0 or len(images) == 0:
        raise ModelError("int8 fine-tuning needs epochs > 0, lr > 0 and training images")
    points = read_quant_points(int8_path)
    teacher = copy.deepcopy(model).eval()
    model.eval()  # frozen BatchNorm statistics (the fold must stay exact) and no dropout
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.requires_grad_(False)
    steps = max(1, math.ceil(epochs * len(images) / batch))
    result = QatResult(epochs, steps, len(images), 0.0, lr)
    start = time.perf_counter()
    with Int8Simulation(model, points):
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=lr, total_steps=steps, pct_start=0.05
        )
        flips = np.random.default_rng(seed + 1)
        for step, index in enumerate(_batches(len(images), batch, steps, seed)):
            x = torch.from_numpy(images[np.sort(index)].transpose(0, 3, 1, 2).astype(np.float32))
            x = (x / 255.0 - mean) / std
            flip = torch.from_numpy(flips.random(len(x)) < 0.5)
            x[flip] = x[flip].flip(3)
            with torch.no_grad():
                target = F.log_softmax(teacher(x), 1)
            loss = F.kl_div(F.log_softmax(model(x), 1), target, log_target=True,
                            reduction="batchmean")  # fmt: skip
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            result.losses.append(loss.item())
            if log and (step % 50 == 0 or step == steps - 1):
                log(f"int8 fine-tuning step {step + 1}/{steps}: KL {loss.item():.4f}")
    result.seconds = time.perf_counter() - start
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.requires_grad_(True)
    return result
