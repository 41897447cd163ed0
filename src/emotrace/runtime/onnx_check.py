"""Refuse ONNX files whose tensors live in external data files, before any loader sees them.

ONNX lets a tensor say "my bytes are in that other file" (``data_location = EXTERNAL`` with a
``location`` path). Older onnxruntime releases (emotrace allows 1.17 on) follow such a path even
out of the model's folder (``../../home/you/.ssh/id_ed25519``), so a crafted ``.onnx`` handed to
``--model`` could read any file of the user's into its weights and leak it through its outputs.
emotrace's models, and YuNet, are single files: a model with external data is refused whatever the
runtime.

The check walks the protobuf wire format itself (a few dozen lines, no ``onnx`` package: that is
the train extra's, and inference needs neither it nor torch). It visits every place a tensor can
sit: graph initializers and sparse initializers, node attributes (``Constant`` values, tensors
lists), subgraphs of ``If``/``Loop``/``Scan`` at any depth, model-local functions and training
graphs. A file the walk cannot parse is refused too: what cannot be checked is not loaded.
"""

from __future__ import annotations

from collections.abc import Iterator

from emotrace.errors import ModelError

# Field numbers from onnx.proto (ONNX IR version 10).
_MODEL_GRAPH, _MODEL_TRAINING, _MODEL_FUNCTIONS = 7, 20, 25
_TRAINING_GRAPHS = (1, 2)  # TrainingInfoProto.initialization, .algorithm
_FUNCTION_NODE, _FUNCTION_ATTRIBUTE = 7, 11
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_SPARSE = 1, 5, 15
_NODE_ATTRIBUTE = 5
_ATTR_TENSOR, _ATTR_GRAPH, _ATTR_TENSORS, _ATTR_GRAPHS = 5, 6, 10, 11
_ATTR_SPARSE, _ATTR_SPARSES = 22, 23
_SPARSE_VALUES, _SPARSE_INDICES = 1, 2
_TENSOR_NAME, _TENSOR_EXTERNAL, _TENSOR_LOCATION = 8, 13, 14
_ENTRY_KEY, _ENTRY_VALUE = 1, 2
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL

#: Which fields of each message hold which messages (the ones a tensor can be reached through).
_CHILDREN: dict[str, dict[int, str]] = {
    "model": {_MODEL_GRAPH: "graph", _MODEL_TRAINING: "training", _MODEL_FUNCTIONS: "function"},
    "training": dict.fromkeys(_TRAINING_GRAPHS, "graph"),
    "function": {_FUNCTION_NODE: "node", _FUNCTION_ATTRIBUTE: "attribute"},
    "graph": {_GRAPH_NODE: "node", _GRAPH_INITIALIZER: "tensor", _GRAPH_SPARSE: "sparse"},
    "node": {_NODE_ATTRIBUTE: "attribute"},
    "attribute": {
        _ATTR_TENSOR: "tensor",
        _ATTR_TENSORS: "tensor",
        _ATTR_GRAPH: "graph",
        _ATTR_GRAPHS: "graph",
        _ATTR_SPARSE: "sparse",
        _ATTR_SPARSES: "sparse",
    },
    "sparse": {_SPARSE_VALUES: "tensor", _SPARSE_INDICES: "tensor"},
}


class _Malformed(Exception):
    """Not protobuf, or not as ONNX writes it."""


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise _Malformed
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(buf: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """``(field number, value)`` of each field: an int for varints, the bytes of length-delimited
    fields (sub-messages, strings, packed arrays); fixed-width values are skipped."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, value
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > len(buf):
                raise _Malformed
            yield number, buf[pos : pos + length]
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:  # groups (3, 4) are no part of ONNX; 6 and 7 do not exist
            raise _Malformed
    if pos != len(buf):
        raise _Malformed


def _text(buf: memoryview) -> str:
    return bytes(buf[:200]).decode("utf-8", "replace")


def _external(tensor: memoryview) -> tuple[str, str] | None:
    """``(tensor name, location)`` when the tensor's bytes are in an external file."""
    name, location, external = "", "", False
    for number, value in _fields(tensor):
        if number == _TENSOR_NAME and isinstance(value, memoryview):
            name = _text(value)
        elif number == _TENSOR_LOCATION and value == _EXTERNAL:
            external = True
        elif number == _TENSOR_EXTERNAL and isinstance(value, memoryview):
            external = True  # entries without the flag: refused as well, never guessed at
            entry = dict(_fields(value))
            key, text = entry.get(_ENTRY_KEY), entry.get(_ENTRY_VALUE)
            if isinstance(key, memoryview) and bytes(key) == b"location":
                location = _text(text) if isinstance(text, memoryview) else ""
    return (name, location) if external else None


def refuse_external_data(model: bytes, where: str) -> None:
    """Raise :class:`ModelError` (naming ``where``) when any tensor of the ONNX ``model`` keeps its
    data in an external file, or when ``model`` cannot be walked as an ONNX protobuf at all."""
    stack = [("model", memoryview(model))]
    try:
        while stack:
            kind, buf = stack.pop()
            if kind == "tensor":
                found = _external(buf)
                if found is not None:
                    name, location = found
                    raise ModelError(
                        f"{where}: refused: tensor {name!r} keeps its data in an external file "
                        f"({location!r}); emotrace loads only self-contained .onnx files"
                    )
                continue
            children = _CHILDREN[kind]
            for number, value in _fields(buf):
                child = children.get(number)
                if child is not None and isinstance(value, memoryview):
                    stack.append((child, value))
    except _Malformed:
        raise ModelError(f"{where}: not a loadable ONNX model (malformed protobuf)") from None
