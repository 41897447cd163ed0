"""Quantisation-aware fine-tuning: teach a model to give the same answers after int8 rounding.

Post-training int8 keeps a MobileNetV2's accuracy (-0.3 points) but changes its answer on about
1 face in 25: every layer's rounding moves the logits a little, and near-ties flip. Here a copy of
the model (the student) runs with onnxruntime's int8 arithmetic simulated in torch and is
fine-tuned to reproduce the fp32 model's logits (mean squared error) on the training images; the
fp32 model itself is the teacher and does not change. The logits rather than the probabilities,
because a flipped answer is a near-tie whose two logits moved: on the candidate default, one epoch
gave 97.8% agreement with the logit loss against 97.6% with the KL divergence, and 98.2% when the
images were augmented as in training (harder faces than the train images the teacher fits).

The simulation copies the int8 model that :func:`emotrace.export.quantize.quantize_int8` wrote:
the same rounding points (every int8 layer's input, every convolution's output after its fused
ReLU6, every residual sum; the pooled features and the logits too in files whose classifier is
int8) with the same uint8 scales and zero points, the same per-channel symmetric 7-bit weights,
taken from BatchNorm-folded weights as onnxruntime folds them, and the int32 rounding of the
folded bias. BatchNorm statistics are frozen, so the fold stays exact; gradients pass the rounding
straight through (inside the clipping range). On the candidate default the simulation gives
onnxruntime's answer for 99.1% of valid faces. Afterwards the student is an ordinary checkpoint of
the same architecture, quantised with exactly the scales it was fine-tuned against.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from emotrace.errors import ModelError

#: Architectures whose layers this simulation maps one to one onto onnxruntime's int8 graph.
SUPPORTED = ("mobilenet_v2",)
#: Symmetric weight range of onnxruntime's reduce_range int8 weights: [-64, 64].
WEIGHT_QMAX = 64


class Scale(NamedTuple):
    """One uint8 rounding of onnxruntime's int8 model: the tensor it applies to, scale, zero."""

    tensor: str
    scale: float
    zero: int


@dataclass
class QuantPoints:
    """Where onnxruntime's int8 model rounds activations, and with which (scale, zero point)."""

    #: Torch module path of each int8 Conv2d -> the rounding of its input (which also sets the
    #: scale of its int32 bias). Layers kept in float are absent.
    conv_inputs: dict[str, Scale]
    conv_outputs: dict[str, Scale]  # int8 Conv2d -> the rounding of its output (after ReLU6)
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
    #: Also learn the activation scales (LSQ) instead of keeping the calibrated ones.
    learn_scales: bool = False
    #: Augmentation settings (``AugmentConfig`` fields) for the fine-tuning images; None: flips.
    augment: dict[str, Any] | None = None


@dataclass
class QatResult:
    """What the fine-tuning did."""

    epochs: float
    steps: int
    images: int
    seconds: float
    lr: float
    losses: list[float] = field(default_factory=list)
    #: The roundings the model was fine-tuned against (learned or calibrated), by tensor name.
    scales: dict[str, Scale] = field(default_factory=dict)
    learn_scales: bool = False
    augment: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The recipe as stored in the int8 model's metadata."""
        return {
            "epochs": self.epochs,
            "steps": self.steps,
            "train_images": self.images,
            "lr": self.lr,
            "loss": "MSE(simulated int8 logits, fp32 logits)",
            "learned_scales": self.learn_scales,
            "augment": self.augment,
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
                return Scale(tensor, float(consts[node.input[1]]), int(consts[node.input[2]]))
        return None

    def rounding_before(tensor: str) -> Scale | None:
        # A quantised op reads DequantizeLinear(QuantizeLinear(x)): the scale of that x.
        dq = producer.get(tensor)
        if dq is None or dq.op_type != "DequantizeLinear":
            return None
        q = producer.get(dq.input[0])
        return rounding_of(q.input[0]) if q is not None and q.op_type == "QuantizeLinear" else None

    convs: dict[str, Scale] = {}
    inputs: dict[str, Scale] = {}
    sums: list[Scale] = []
    pooled = logits = None
    classifier_int8 = False
    for node in graph.node:
        if node.op_type in ("Conv", "Gemm"):
            weight = producer.get(node.input[1])
            if weight is None or weight.op_type != "DequantizeLinear":
                continue  # a layer kept in float: its neighbours' roundings are enough
            module = weight.input[0].removesuffix("_quantized").removesuffix(".weight")
            if node.op_type == "Gemm":
                classifier_int8 = True
                pooled, logits = rounding_before(node.input[0]), rounding_of(node.output[0])
                continue
            before = rounding_before(node.input[0])
            if before is None:
                continue
            inputs[module] = before
            out = rounding_of(node.output[0])
            after = consumers.get(node.output[0], [])
            if out is None and len(after) == 1 and after[0].op_type in ("Clip", "Relu"):
                out = rounding_of(after[0].output[0])  # an activation kept in the graph
            if out is not None:
                convs[module] = out
        elif node.op_type == "Add" and (out := rounding_of(node.output[0])) is not None:
            sums.append(out)
    if not inputs:
        raise ModelError(f"{int8_path}: not an emotrace int8 QDQ model (no quantised convolution)")
    by_tensor = {
        node.input[0]: Scale(
            node.input[0], float(consts[node.input[1]]), int(consts[node.input[2]])
        )
        for node in graph.node
        if node.op_type == "QuantizeLinear" and node.input[0] not in consts
    }
    return QuantPoints(inputs, convs, sums, classifier_int8, pooled, logits, by_tensor)


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


def _bias_rounding(conv: Any, fold: Any, input_scale: Callable[[], float]) -> Callable[..., Any]:
    """A BatchNorm forward hook: the folded bias rounded to int32 as onnxruntime stores it
    (scale = input scale x the channel's weight scale)."""
    import torch

    def hook(bn: Any, _inputs: Any, out: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            bias = bn.bias - bn.running_mean * fold
            weight = conv.parametrizations.weight.original * fold.view(-1, 1, 1, 1)
            scale = input_scale() * weight.abs().flatten(1).amax(1) / WEIGHT_QMAX
            scale = scale.clamp_min(1e-30)
            shift = torch.round(bias / scale) * scale - bias
        return out + shift.view(1, -1, 1, 1)

    return hook


class Int8Simulation:
    """Context manager: while active, ``model`` computes as onnxruntime's int8 model does."""

    def __init__(self, model: Any, points: QuantPoints, learn_scales: bool = False) -> None:
        self.model, self.points, self.learn_scales = model, points, learn_scales
        self._handles: list[Any] = []
        self._weights: list[Any] = []
        #: One learnable scale per rounded tensor (LSQ, Esser et al. 2020) when ``learn_scales``.
        self.scales: dict[str, Any] = {}

    def _round(self, x: Any, rounding: Scale) -> Any:
        import torch

        if not self.learn_scales:
            return torch.fake_quantize_per_tensor_affine(x, rounding.scale, rounding.zero, 0, 255)
        scale = self.scales[rounding.tensor]
        zero = torch.tensor([float(rounding.zero)])
        # LSQ's gradient scale: 1 / sqrt(elements per sample x levels).
        grad = 1.0 / math.sqrt(x[0].numel() * 255)
        return torch._fake_quantize_learnable_per_tensor_affine(x, scale, zero, 0, 255, grad)

    def _scale_value(self, rounding: Scale) -> float:
        """The scale in use now: learned (when learning) or calibrated."""
        if not self.learn_scales:
            return rounding.scale
        return float(self.scales[rounding.tensor].detach().abs())

    def parameters(self) -> list[Any]:
        """The learnable scales (empty unless ``learn_scales``)."""
        return list(self.scales.values())

    def learned(self) -> dict[str, Scale]:
        """The roundings by tensor name, with the learned scales."""
        out = dict(self.points.by_tensor)
        for name, scale in self.scales.items():
            out[name] = out[name]._replace(scale=float(scale.detach().abs().clamp_min(1e-8)))
        return out

    def __enter__(self) -> Int8Simulation:
        import torch
        from torch import nn
        from torch.nn.utils import parametrize

        from emotrace.models._common import InvertedResidual

        model, points = self.model, self.points
        hook = self._handles.append
        if self.learn_scales:
            self.scales = {
                name: nn.Parameter(torch.tensor([r.scale])) for name, r in points.by_tensor.items()
            }
        fq = self._round
        for path, in_scale in points.conv_inputs.items():
            parent_path, _, index = path.rpartition(".")
            parent = model.get_submodule(parent_path)
            if not isinstance(parent, nn.Sequential) or not index.isdigit():
                raise ModelError(f"int8 simulation: {path} is not a layer of a Sequential")
            layers = list(parent)[int(index) :]
            conv, last = layers[0], layers[0]
            if not isinstance(conv, nn.Conv2d):
                raise ModelError(f"int8 simulation: {path} is not a convolution")
            # Rounding an input twice at the same scale changes nothing, so every int8 layer
            # rounds its own input, whatever its producer (an int8 layer, a float one, the input).
            hook(conv.register_forward_pre_hook(
                lambda _m, args, s=in_scale: (fq(args[0], s),)))  # fmt: skip
            fold = torch.ones(conv.out_channels)
            if len(layers) > 1 and isinstance(layers[1], nn.BatchNorm2d):
                bn = last = layers[1]
                assert bn.running_var is not None
                fold = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().clone()
                fold[fold.abs() < 1e-12] = 1.0  # a dead channel: any weight gives the same output
                if len(layers) > 2 and isinstance(layers[2], (nn.ReLU6, nn.ReLU)):
                    last = layers[2]
                scale_now = partial(self._scale_value, in_scale)
                hook(bn.register_forward_hook(_bias_rounding(conv, fold, scale_now)))
            parametrize.register_parametrization(conv, "weight", _weight_rounding(fold))
            self._weights.append(conv)
            out_scale = points.conv_outputs.get(path)
            if out_scale is not None:
                hook(last.register_forward_hook(
                    lambda _m, _i, out, s=out_scale: fq(out, s)))  # fmt: skip
        blocks = [b for b in model.modules() if isinstance(b, InvertedResidual) and b.use_residual]
        if len(blocks) != len(points.residual_sums):
            raise ModelError(
                f"int8 simulation: {len(blocks)} residual blocks but "
                f"{len(points.residual_sums)} int8 sums"
            )
        for block, scale in zip(blocks, points.residual_sums, strict=True):
            hook(block.register_forward_hook(lambda _m, _i, out, s=scale: fq(out, s)))
        fc, pool = model.head.fc, model.head.pool
        if points.classifier_int8:
            ones = torch.ones(fc.out_features)
            parametrize.register_parametrization(fc, "weight", _weight_rounding(ones))
            self._weights.append(fc)
        pooled, logits = points.pooled, points.logits
        if pooled is not None:
            hook(pool.register_forward_hook(lambda _m, _i, out: fq(out, pooled)))
        if logits is not None:
            hook(fc.register_forward_hook(lambda _m, _i, out: fq(out, logits)))
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
    learn_scales: bool = False,
    augment: dict[str, Any] | None = None,
) -> QatResult:
    """Fine-tune ``model`` in place so that its int8 export agrees with the fp32 ``model``.

    ``images``: uint8 ``(N, S, S, C)`` training images prepared as the model expects, augmented
    with ``augment`` (``AugmentConfig`` fields; the model's own training augmentation shows the
    student faces as varied as the teacher saw) or else randomly mirrored; ``int8_path``: the
    post-training int8 export whose rounding is simulated.
    """
    import copy

    import torch
    import torch.nn.functional as F

    from emotrace.data.augment import AugmentConfig, BatchAugment

    if epochs <= 0 or lr <= 0 or len(images) == 0:
        raise ModelError("int8 fine-tuning needs epochs > 0, lr > 0 and training images")
    points = read_quant_points(int8_path)
    teacher = copy.deepcopy(model).eval()
    model.eval()  # frozen BatchNorm statistics (the fold must stay exact) and no dropout
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    trainable = [[p.requires_grad for p in m.parameters()] for m in norms]
    for module in norms:
        module.requires_grad_(False)
    steps = max(1, math.ceil(epochs * len(images) / batch))
    result = QatResult(
        epochs, steps, len(images), 0.0, lr, learn_scales=learn_scales, augment=augment
    )
    start = time.perf_counter()
    with Int8Simulation(model, points, learn_scales) as simulation:
        params = [p for p in model.parameters() if p.requires_grad] + simulation.parameters()
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=lr, total_steps=steps, pct_start=0.05
        )
        flips = np.random.default_rng(seed + 1)
        augmenter = (
            None if augment is None else BatchAugment(AugmentConfig.from_dict(augment), seed)
        )
        for step, index in enumerate(_batches(len(images), batch, steps, seed)):
            x = torch.from_numpy(images[np.sort(index)].transpose(0, 3, 1, 2).astype(np.float32))
            x = x / 255.0
            if augmenter is not None:
                x = augmenter(x)
            else:
                flip = torch.from_numpy(flips.random(len(x)) < 0.5)
                x[flip] = x[flip].flip(3)
            x = (x - mean) / std
            with torch.no_grad():
                target = teacher(x)
            loss = F.mse_loss(model(x), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            result.losses.append(loss.item())
            if log and (step % 50 == 0 or step == steps - 1):
                log(f"int8 fine-tuning step {step + 1}/{steps}: logit MSE {loss.item():.5f}")
        result.scales = simulation.learned()
    result.seconds = time.perf_counter() - start
    for module, flags in zip(norms, trainable, strict=True):
        for param, flag in zip(module.parameters(), flags, strict=True):
            param.requires_grad_(flag)
    return result
