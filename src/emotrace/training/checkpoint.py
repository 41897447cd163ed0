"""Checkpoints: weights in safetensors plus a JSON file of everything needed to use them.

``NAME.safetensors`` holds tensors only; ``NAME.json`` holds the architecture, class order, input
geometry, normalisation, preprocessing, dataset hash, metrics and the resolved config. Loading never
unpickles anything.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from emotrace.errors import ModelError

CHECKPOINT_FORMAT = "emotrace-checkpoint/1"


@dataclass
class Checkpoint:
    """A loaded checkpoint: the rebuilt model in eval mode and its metadata."""

    model: nn.Module
    meta: dict[str, Any]
    path: Path

    @property
    def classes(self) -> list[str]:
        """Class names in output order."""
        return list(self.meta["classes"])


def save_checkpoint(model: nn.Module, meta: dict[str, Any], path: Path | str) -> Path:
    """Write ``path`` (``.safetensors``) and its ``.json`` sidecar atomically."""
    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata={"format": CHECKPOINT_FORMAT})
    meta_path = path.with_suffix(".json")
    meta_tmp = meta_path.with_name(meta_path.name + ".tmp")
    meta_tmp.write_text(json.dumps({"format": CHECKPOINT_FORMAT, **meta}, indent=2), "utf-8")
    os.replace(tmp, path)
    os.replace(meta_tmp, meta_path)
    return path


def resolve_checkpoint(path: Path | str) -> Path:
    """The ``.safetensors`` file for a run folder, a checkpoint path or its ``.json`` sidecar."""
    p = Path(path)
    if p.is_dir():
        p = p / "model.safetensors"
    elif p.suffix == ".json":
        p = p.with_suffix(".safetensors")
    if not p.is_file():
        raise ModelError(f"{path}: no checkpoint found (expected a run folder or .safetensors)")
    if not p.with_suffix(".json").is_file():
        raise ModelError(f"{p}: metadata file {p.with_suffix('.json').name} is missing")
    return p


def read_metadata(path: Path | str) -> dict[str, Any]:
    """The JSON metadata of a checkpoint."""
    p = resolve_checkpoint(path)
    try:
        meta: dict[str, Any] = json.loads(p.with_suffix(".json").read_text("utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(
            f"{p.with_suffix('.json')}: unreadable checkpoint metadata ({exc})"
        ) from None
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ModelError(f"{p}: not an emotrace checkpoint (format {meta.get('format')!r})")
    return meta


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{path}: corrupted or truncated checkpoint ({exc})") from None


def load_checkpoint(path: Path | str) -> Checkpoint:
    """Rebuild the model from metadata and load its weights (safetensors; nothing unpickled)."""
    from emotrace.models import build

    p = resolve_checkpoint(path)
    meta = read_metadata(p)
    state = _read_weights(p)
    model = build(
        meta["architecture"],
        num_classes=len(meta["classes"]),
        in_channels=int(meta["channels"]),
        input_size=int(meta["input_size"]),
        **meta.get("model_options", {}),
    )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ModelError(f"{p}: weights do not fit {meta['architecture']} ({first})") from None
    model.eval()
    return Checkpoint(model=model, meta=meta, path=p)


def init_from_checkpoint(
    model: nn.Module,
    source: Path | str,
    architecture: str,
    classes: list[str],
    channels: int,
) -> str:
    """Load ``source``'s weights into a freshly built ``model``; returns what was loaded.

    The architecture and input channels must match. When the checkpoint's classes differ from
    ``classes`` (other names or order), its classifier head (``head.*``) is left as built, so the
    output rows keep their meaning. Raises :class:`ModelError` with one line otherwise.
    """
    path = resolve_checkpoint(source)
    meta = read_metadata(path)
    if meta.get("architecture") != architecture:
        raise ModelError(
            f"init_from {source}: the checkpoint is {meta.get('architecture')}, this run trains "
            f"{architecture}"
        )
    if str(meta.get("channels", channels)) != str(channels):
        raise ModelError(
            f"init_from {source}: the checkpoint takes {meta.get('channels')}-channel images, "
            f"this run's data has {channels}"
        )
    state = _read_weights(path)
    same_classes = list(meta.get("classes", [])) == list(classes)
    if not same_classes:
        state = {k: v for k, v in state.items() if not k.startswith("head.")}
    own = model.state_dict()
    misfits = [k for k, v in state.items() if k not in own or own[k].shape != v.shape]
    missing = [k for k in own if k not in state and (same_classes or not k.startswith("head."))]
    if misfits or missing:
        first = (misfits or missing)[0]
        raise ModelError(
            f"init_from {source}: its weights do not fit this {architecture} "
            f"({len(misfits) + len(missing)} tensors differ, first {first}; check model_options "
            f"and the image size)"
        )
    model.load_state_dict(state, strict=False)
    loaded = f"init_from: {len(state)} tensors from {path}"
    if same_classes:
        return loaded
    return (
        f"{loaded}; classifier head starts afresh (checkpoint classes "
        f"{', '.join(meta.get('classes', []))}; this run's {', '.join(classes)})"
    )


def save_state(state: dict[str, Any], path: Path) -> None:
    """Save optimizer/scheduler/progress state (tensors and plain values only)."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_state(path: Path) -> dict[str, Any]:
    """Load :func:`save_state` output with ``weights_only=True`` (no arbitrary unpickling)."""
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"{path}: no training state to resume from") from None
    except Exception as exc:  # torch raises many types for a bad file
        raise ModelError(f"{path}: corrupted training state ({type(exc).__name__})") from None
    return state
