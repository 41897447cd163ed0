"""The float twin of an int8 model: the same network, computed in float.

An int8 QDQ model differs from the fp32 model it came from in two ways: its weights are rounded
to 7-bit per-channel grids (and quantisation-aware fine-tuning moves them), and its activations
are rounded to 8 bits and clipped to the calibrated ranges. The float twin keeps the first and
drops the second's rounding: weights are the int8 file's dequantised weights, and every
activation rounding becomes a clip to the same range. So int8 and its twin differ only by
activation rounding, and give the same answer far more often than int8 and the original fp32
model (the bundled default pair: 98.9% against 98.2% of FER2013 valid faces), at the cost of
the original's small accuracy edge.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from emotrace._atomic import staged_file
from emotrace.errors import ModelError
from emotrace.export.onnx_file import save_replacing, store_weights_fp16, write_metadata


def write_float_twin(int8_path: Path, output: Path, fp16_weights: bool = False) -> dict[str, Any]:
    """Write the float twin of the QDQ int8 model ``int8_path`` to ``output``; return its
    ``float_twin`` metadata entry. ``fp16_weights`` stores the weights in half precision."""
    import onnx
    from onnx import helper, numpy_helper

    from emotrace.runtime.onnx_backend import METADATA_KEY

    try:
        proto = onnx.load(str(int8_path))
    except Exception as exc:  # onnx raises DecodeError, OSError, ...
        raise ModelError(f"{int8_path}: not an ONNX file ({type(exc).__name__})") from None
    graph = proto.graph
    props = {p.key: p.value for p in proto.metadata_props}
    if METADATA_KEY not in props:
        raise ModelError(f"{int8_path}: ONNX file has no emotrace metadata")
    metadata = json.loads(props[METADATA_KEY])
    consts = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    # Nodes by identity: names are optional in ONNX.
    dropped: set[int] = set()
    replaced: dict[int, Any] = {}  # DequantizeLinear -> the Clip that takes its place
    new_inits = []
    weights = 0
    for node in graph.node:
        if node.op_type != "DequantizeLinear":
            continue
        scale = consts[node.input[1]].astype(np.float32)
        zero = consts[node.input[2]].astype(np.float32) if len(node.input) > 2 else np.float32(0)
        if node.input[0] in consts:  # a weight or bias: store it dequantised
            q = consts[node.input[0]].astype(np.float32)
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            if scale.ndim == 1 and q.ndim > 1:
                shape = [1] * q.ndim
                shape[axis] = -1
                scale, zero = scale.reshape(shape), zero.reshape(shape) if zero.ndim else zero
            new_inits.append(numpy_helper.from_array((q - zero) * scale, node.output[0]))
            dropped.add(id(node))
            weights += 1
            continue
        quantize = producer.get(node.input[0])
        if quantize is None or quantize.op_type != "QuantizeLinear":
            raise ModelError(f"{int8_path}: DequantizeLinear without its QuantizeLinear")
        # uint8 rounding clips to [(0 - zero) x scale, (255 - zero) x scale]: keep the clip.
        s, z = float(consts[quantize.input[1]]), int(consts[quantize.input[2]])
        low, high = node.output[0] + "_low", node.output[0] + "_high"
        new_inits.append(numpy_helper.from_array(np.array((0 - z) * s, np.float32), low))
        new_inits.append(numpy_helper.from_array(np.array((255 - z) * s, np.float32), high))
        clip = helper.make_node(
            "Clip", [quantize.input[0], low, high], [node.output[0]], name=node.output[0] + "_clip"
        )
        replaced[id(node)] = clip
        dropped.add(id(quantize))
    if not weights:
        raise ModelError(f"{int8_path}: not an int8 QDQ model (no quantised weights)")
    nodes = [replaced.get(id(n), n) for n in graph.node if id(n) not in dropped]
    used = {name for node in nodes for name in node.input}
    kept = [init for init in graph.initializer if init.name in used]
    kept += [init for init in new_inits if init.name in used]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    onnx.checker.check_model(proto)
    output.parent.mkdir(parents=True, exist_ok=True)
    # Built beside ``output`` and moved onto it complete (weights, then metadata).
    with staged_file(output, "twin") as staged:
        return _write_staged(proto, staged, metadata, int8_path, len(replaced), fp16_weights)


def _write_staged(
    proto: Any,
    staged: Path,
    metadata: dict[str, Any],
    int8_path: Path,
    clipped: int,
    fp16_weights: bool,
) -> dict[str, Any]:
    """Write the twin's graph, (fp16) weights and metadata to ``staged``; return its
    ``float_twin`` entry."""
    save_replacing(proto, staged)
    if fp16_weights:
        store_weights_fp16(staged)
    twin = {
        "of": int8_path.name,
        "activation_roundings_clipped": clipped,
        "quantization": metadata.pop("quantization", None),
    }
    if isinstance(metadata.get("name"), str):  # "x-int8" -> "x": the twin is the float model
        metadata["name"] = metadata["name"].removesuffix("-int8")
    write_metadata(staged, {**metadata, "float_twin": twin})
    return twin
