"""Edits of a written ONNX file, shared by export, quantisation and the float twin.

Each rewrites the file atomically (a crash never leaves half a model). This module imports no
other ``emotrace.export`` module, so every step of the export can use it without an import cycle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from emotrace._atomic import staged_file
from emotrace.runtime.onnx_backend import METADATA_KEY


def write_metadata(path: Path, metadata: dict[str, Any]) -> None:
    """Set the emotrace metadata_props entry of an ONNX file in place."""
    import onnx

    proto = onnx.load(str(path))
    kept = [p for p in proto.metadata_props if p.key != METADATA_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
    save_replacing(proto, path)


def save_replacing(proto: Any, path: Path) -> None:
    """Write an ONNX proto over ``path`` atomically (a crash never leaves half a model)."""
    import onnx

    with staged_file(path) as staged:
        onnx.save(proto, str(staged))


def store_weights_fp16(path: Path) -> None:
    """Store an ONNX file's float32 weights as float16 followed by a Cast back to float32.

    Halves the file; compute stays float32 because onnxruntime folds each Cast into a float32
    weight when the session is created.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    proto = onnx.load(str(path))
    graph = proto.graph
    kept, casts = [], []
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT:
            kept.append(init)
            continue
        half = numpy_helper.from_array(
            numpy_helper.to_array(init).astype(np.float16), init.name + "__fp16"
        )
        kept.append(half)
        casts.append(
            helper.make_node(
                "Cast", [half.name], [init.name], to=TensorProto.FLOAT, name=init.name + "__cast"
            )
        )
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    save_replacing(proto, path)
