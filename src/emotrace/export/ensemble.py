"""One ONNX file that holds several emotrace models and answers as their average.

``compose_ensemble`` joins member ONNX files into a single self-describing graph: it takes the
first member's input (size, framing, normalisation), gives each member that face at its own size
and normalisation, optionally averages each face with its mirror image (flip test-time
augmentation inside the graph), and returns the log of the members' mean probabilities, each
member tempered by its own temperature. The result loads like any emotrace model, without torch,
and its metadata lists its members (name, sha256, size, temperature).

Members must frame faces the same way (the same alignment geometry, gray or colour): only their
input size and normalisation may differ, and each size must divide the first member's (the face
is reduced by exact block averaging, as an area resize does). A member that expects another
framing would be shown faces it was not trained on, and is refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emotrace.errors import ModelError
from emotrace.export.onnx_file import save_replacing
from emotrace.runtime.model_info import ModelSpec
from emotrace.runtime.onnx_backend import METADATA_KEY

#: Preprocessing fields every member must share with the first (everything but the size).
_FRAMING_FIELDS = (
    "gray",
    "face_crop",
    "margin",
    "equalize",
    "align",
    "eye_line",
    "face_scale",
    "mouth_ratio",
)
#: Probabilities are clipped here before the log, so a certain member never yields -inf.
_MIN_PROBABILITY = 1e-7


def _member_metadata(proto: Any, path: Path) -> dict[str, Any]:
    props = {p.key: p.value for p in proto.metadata_props}
    if METADATA_KEY not in props:
        raise ModelError(f"{path}: ONNX file has no emotrace metadata")
    meta: dict[str, Any] = json.loads(props[METADATA_KEY])
    return meta


def _check_members(specs: list[ModelSpec], paths: Sequence[Path]) -> None:
    first, first_path = specs[0], paths[0]
    first_framing = first.preprocess.to_dict()
    for spec, path in zip(specs[1:], paths[1:], strict=True):
        if spec.classes != first.classes:
            raise ModelError(
                f"{path}: its classes {list(spec.classes)} differ from {first_path}'s "
                f"{list(first.classes)}"
            )
        framing = spec.preprocess.to_dict()
        differ = [f for f in _FRAMING_FIELDS if framing.get(f) != first_framing.get(f)]
        if differ:
            raise ModelError(
                f"{path}: frames faces differently from {first_path} ({', '.join(differ)}); "
                "ensemble members must see the same crop"
            )
        if first.input_size % spec.input_size:
            raise ModelError(
                f"{path}: its input size {spec.input_size} does not divide {first_path}'s "
                f"{first.input_size}"
            )


def compose_ensemble(
    members: Sequence[Path | str],
    output: Path | str,
    name: str,
    flip: bool = True,
) -> dict[str, Any]:
    """Write one ONNX file at ``output`` averaging ``members`` (ONNX files); return its metadata.

    ``flip``: average each face with its mirror image inside the graph (twice the compute).
    Its temperature is 1.0: fit one on a validation split afterwards
    (:func:`emotrace.evaluation.calibration.fit_temperature` on its outputs).
    """
    import onnx
    from onnx import TensorProto, compose, helper, numpy_helper

    paths = [Path(m) for m in members]
    if len(paths) < 2:
        raise ModelError("an ensemble needs at least two members")
    protos, metas, specs = [], [], []
    for path in paths:
        if not path.is_file():
            raise ModelError(f"{path}: no such model file")
        proto = onnx.load(str(path))
        meta = _member_metadata(proto, path)
        protos.append(proto)
        metas.append(meta)
        specs.append(ModelSpec.from_metadata(meta, name=str(meta.get("name", path.stem))))
    _check_members(specs, paths)
    first = specs[0]
    size, channels = first.input_size, first.channels

    def const(name_: str, values: Any, dtype: Any = None) -> Any:
        import numpy as np

        return numpy_helper.from_array(np.asarray(values, dtype=dtype or np.float32), name_)

    nodes: list[Any] = []
    inits: list[Any] = []
    faces = "input"
    if flip:
        inits += [
            const("flip_starts", [-1], "int64"),
            const("flip_ends", [-(2**62)], "int64"),
            const("flip_axes", [3], "int64"),
            const("flip_steps", [-1], "int64"),
        ]
        nodes += [
            helper.make_node(
                "Slice",
                ["input", "flip_starts", "flip_ends", "flip_axes", "flip_steps"],
                ["mirrored"],
                name="mirror",
            ),
            helper.make_node("Concat", ["input", "mirrored"], ["faces"], axis=0, name="both"),
        ]
        faces = "faces"
    # Back to [0, 1] once, for the members that normalise differently or take a smaller face.
    inits += [const("first_std", first.std), const("first_mean", first.mean)]
    nodes += [
        helper.make_node("Mul", [faces, "first_std"], ["faces_scaled"], name="unscale"),
        helper.make_node("Add", ["faces_scaled", "first_mean"], ["faces_01"], name="unshift"),
    ]
    merged_nodes, merged_inits, probabilities = [], [], []
    opsets: dict[str, int] = {}
    for i, (proto, spec) in enumerate(zip(protos, specs, strict=True)):
        prefix = f"m{i}_"
        # The glue's own names start with "ensemble_", which no prefixed member name can.
        glue = f"ensemble_{i}_"
        member = compose.add_prefix(proto, prefix)
        graph = member.graph
        member_input, member_output = graph.input[0].name, graph.output[0].name
        if spec.input_size == size and (spec.mean, spec.std) == (first.mean, first.std):
            nodes.append(helper.make_node("Identity", [faces], [member_input], name=f"{glue}in"))
        else:
            source = "faces_01"
            factor = size // spec.input_size
            if factor > 1:
                nodes.append(
                    helper.make_node(
                        "AveragePool",
                        [source],
                        [f"{glue}reduced"],
                        kernel_shape=[factor, factor],
                        strides=[factor, factor],
                        name=f"{glue}reduce",
                    )
                )
                source = f"{glue}reduced"
            inits += [const(f"{glue}mean", spec.mean), const(f"{glue}std", spec.std)]
            nodes += [
                helper.make_node("Sub", [source, f"{glue}mean"], [f"{glue}centred"]),
                helper.make_node("Div", [f"{glue}centred", f"{glue}std"], [member_input]),
            ]
        merged_nodes += list(graph.node)
        merged_inits += list(graph.initializer)
        inits.append(const(f"{glue}temperature", spec.temperature))
        nodes_after = [
            helper.make_node("Div", [member_output, f"{glue}temperature"], [f"{glue}tempered"]),
            helper.make_node("Softmax", [f"{glue}tempered"], [f"{glue}probs"], axis=1),
        ]
        probabilities.append(f"{glue}probs")
        merged_nodes += nodes_after
        for opset in proto.opset_import:
            opsets[opset.domain] = max(opsets.get(opset.domain, 0), opset.version)
    classes = len(first.classes)
    inits += [
        const("member_count", float(len(paths))),
        const("min_probability", _MIN_PROBABILITY),
        const("views_shape", [2, -1, classes], "int64"),
    ]
    tail = [
        helper.make_node("Sum", probabilities, ["probs_sum"], name="members_sum"),
        helper.make_node("Div", ["probs_sum", "member_count"], ["probs_mean"], name="members_mean"),
    ]
    mean = "probs_mean"
    if flip:
        tail += [
            helper.make_node("Reshape", ["probs_mean", "views_shape"], ["views"], name="views"),
            helper.make_node(
                "ReduceMean", ["views", "views_axis"], ["probs_views"], keepdims=0, name="fold"
            ),
        ]
        inits.append(const("views_axis", [0], "int64"))
        mean = "probs_views"
    tail += [
        helper.make_node("Max", [mean, "min_probability"], ["probs_clipped"], name="clip"),
        helper.make_node("Log", ["probs_clipped"], ["logits"], name="log"),
    ]
    graph = helper.make_graph(
        nodes + merged_nodes + tail,
        "emotrace_ensemble",
        [
            helper.make_tensor_value_info(
                "input", TensorProto.FLOAT, ["batch", channels, size, size]
            )
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])],
        initializer=inits + merged_inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())],
        producer_name="emotrace",
    )
    model.ir_version = max(p.ir_version for p in protos)
    onnx.checker.check_model(model)
    member_info = [
        {
            "name": spec.name,
            "architecture": meta.get("architecture"),
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "input_size": spec.input_size,
            "normalization": {"mean": spec.mean, "std": spec.std},
            "temperature": spec.temperature,
            **({"quantization": meta["quantization"]} if "quantization" in meta else {}),
        }
        for path, meta, spec in zip(paths, metas, specs, strict=True)
    ]
    metadata = {
        "architecture": "ensemble",
        "classes": list(first.classes),
        "input_size": size,
        "channels": channels,
        "normalization": {"mean": first.mean, "std": first.std},
        "preprocess": first.preprocess.to_dict(),
        "face_margin": first.face_margin,
        "temperature": 1.0,
        "name": name,
        "emotrace_version": metas[0].get("emotrace_version", ""),
        "ensemble": {
            "members": member_info,
            "combination": "mean of tempered member probabilities; output is its log",
            "flip": flip,
        },
    }
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
    save_replacing(model, Path(output))
    return metadata
