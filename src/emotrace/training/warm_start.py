"""Warm starts: a MobileNetV2 run seeded from an exported emotrace model instead of ImageNet.

The bundled ``default`` ships as ONNX only; its training checkpoint is not kept. Its float twin
still holds every trained weight, with each BatchNorm folded into the convolution before it
(emotrace's exports keep the parameter names: ``features.3.conv.0.0.weight_DequantizeLinear_Output``
is that convolution's folded weight, ``..._bias`` its folded bias). :func:`warm_start_mobilenet_v2`
puts those weights into a freshly built MobileNetV2, which may be shallower (``repeats``), take
one gray channel (``gray_mode="adapt"``: the stem's RGB filters summed) or another input size.

Unfolding a BatchNorm is not unique. Setting it to "add the folded bias" reproduces the model
exactly in eval mode, but training normalises each batch by its own statistics, which would
rescale every channel on the first step. So each BatchNorm gets the mean and variance its inputs
actually have on training images (at the new size, in the new net) as running statistics, and
the scale and shift that undo them: eval output is unchanged, and a training batch, normalised
by statistics close to those, starts where the exported model was.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from emotrace.errors import ModelError
from emotrace.models.mobilenet_v2 import MobileNetV2, paper_block_indices

_WEIGHT = "_DequantizeLinear_Output"
_BIAS = "_bias"


def exported_weights(path: Path | str) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    """Trained parameters of an emotrace ONNX export by parameter name, and its metadata.

    Convolution weights come back with their BatchNorm folded in; ``NAME.bias`` holds the
    folded bias of convolution ``NAME.weight``. Raises :class:`ModelError` in one line for a
    file that is not an emotrace float export with parameter names (an int8 file, say).
    """
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises several types for unreadable files
        raise ModelError(f"{path}: not a readable ONNX file ({type(exc).__name__})") from None
    props = {p.key: p.value for p in model.metadata_props}
    if "emotrace" not in props:
        raise ModelError(f"{path}: ONNX file has no emotrace metadata")
    meta: dict[str, object] = json.loads(props["emotrace"])
    weights: dict[str, np.ndarray] = {}
    for init in model.graph.initializer:
        name = init.name.removesuffix("__fp16")
        array = numpy_helper.to_array(init).astype(np.float32)
        if name.endswith(_WEIGHT):
            weights[name.removesuffix(_WEIGHT)] = array
        elif name.endswith(".weight" + _BIAS):
            weights[name.removesuffix(".weight" + _BIAS) + ".bias"] = array
        elif name.startswith(("features.", "head.")) and name.endswith((".weight", ".bias")):
            weights[name] = array
    if not any(k.startswith("features.") for k in weights):
        raise ModelError(
            f"{path}: no named trained weights found (a float emotrace export is needed, such "
            "as the bundled default's float twin; int8 files do not keep them)"
        )
    return weights, meta


def _conv_bn_pairs(model: nn.Module) -> list[tuple[str, nn.Conv2d, nn.BatchNorm2d]]:
    """Each convolution followed directly by a BatchNorm, in order, by the convolution's name."""
    pairs = []
    previous: tuple[str, nn.Conv2d] | None = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            previous = (name, module)
        elif isinstance(module, nn.BatchNorm2d) and previous is not None:
            pairs.append((previous[0], previous[1], module))
            previous = None
    return pairs


def _running_stats(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    mean, var = bn.running_mean, bn.running_var
    if mean is None or var is None:  # emotrace's BatchNorm layers all track statistics
        raise ModelError("a BatchNorm layer without running statistics cannot be warm-started")
    return mean, var


@torch.no_grad()
def warm_start_mobilenet_v2(
    model: MobileNetV2, source: Path | str, images: torch.Tensor, batch_size: int = 256
) -> str:
    """Load ``source``'s trained weights into ``model`` (see the module docstring); returns a
    one-line summary. ``images`` are normalised training faces ``(N, C, S, S)`` at ``model``'s
    input size, for the BatchNorm statistics. ``source`` must be a full-depth MobileNetV2 export
    with ``model``'s classes count; raises :class:`ModelError` otherwise.
    """
    weights, meta = exported_weights(source)
    if meta.get("architecture") != "mobilenet_v2":
        raise ModelError(f"{source}: a {meta.get('architecture')} export, not mobilenet_v2")
    paper_index = {ours: paper for paper, ours in paper_block_indices(model.repeats).items()}
    pairs = _conv_bn_pairs(model)
    for conv_name, conv, bn in pairs:
        # features.<ours>.rest -> features.<paper>.rest
        _, index, rest = conv_name.split(".", 2)
        key = f"features.{paper_index[int(index)]}.{rest}"
        if key + ".weight" not in weights or key + ".bias" not in weights:
            raise ModelError(f"{source}: no trained weights for {key} (not a full MobileNetV2)")
        weight = torch.from_numpy(weights[key + ".weight"])
        if weight.shape[1] != conv.weight.shape[1] and conv.weight.shape[1] == 1:
            # A gray pixel g is the RGB pixel (g, g, g): the summed filter answers the same.
            weight = weight.sum(dim=1, keepdim=True)
        if weight.shape != conv.weight.shape:
            raise ModelError(
                f"{source}: {key}.weight is {tuple(weight.shape)}, this model's is "
                f"{tuple(conv.weight.shape)}"
            )
        conv.weight.copy_(weight)
        running_mean, running_var = _running_stats(bn)
        running_mean.zero_()
        running_var.fill_(1.0 - bn.eps)  # eval: x / sqrt(var + eps) == x
        bn.weight.fill_(1.0)
        bn.bias.copy_(torch.from_numpy(weights[key + ".bias"]))
    fc_weight, fc_bias = weights.get("head.fc.weight"), weights.get("head.fc.bias")
    if fc_weight is None or fc_bias is None or fc_weight.shape != model.head.fc.weight.shape:
        raise ModelError(f"{source}: its classifier does not fit this model's classes")
    model.head.fc.weight.copy_(torch.from_numpy(fc_weight))
    model.head.fc.bias.copy_(torch.from_numpy(fc_bias))

    # What each BatchNorm sees on these images, in eval mode (which the unfolding above keeps
    # equal to the exported model, so one pass measures every layer's true inputs).
    sums: dict[int, torch.Tensor] = {}  # per BatchNorm: sum of x, sum of x*x, per channel
    pixels: dict[int, int] = {}

    def record(module: nn.Module, inputs: tuple[torch.Tensor, ...], _: object) -> None:
        x = inputs[0].double().transpose(0, 1).flatten(1)  # (channels, N*H*W)
        moments = torch.stack((x.sum(dim=1), (x * x).sum(dim=1)))
        sums[id(module)] = sums.get(id(module), 0) + moments
        pixels[id(module)] = pixels.get(id(module), 0) + x.shape[1]

    hooks = [bn.register_forward_hook(record) for _, _, bn in pairs]
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(images), batch_size):
            model(images[start : start + batch_size])
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    for _, _, bn in pairs:
        total, squares = sums[id(bn)] / pixels[id(bn)]
        mean = total
        var = (squares - mean * mean).clamp_min(0.0)
        # gamma * (x - mean) / sqrt(var + eps) + beta == x + bias
        bn.bias.copy_((bn.bias.double() + mean).float())
        bn.weight.copy_(torch.sqrt(var + bn.eps).float())
        running_mean, running_var = _running_stats(bn)
        running_mean.copy_(mean.float())
        running_var.copy_(var.float())
    return (
        f"warm start: {len(pairs)} convolutions and the classifier from {source} "
        f"(BatchNorm statistics from {len(images)} images)"
    )
