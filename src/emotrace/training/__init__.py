"""Training: config, loop with callbacks, safetensors checkpoints (needs the ``train`` extra)."""

from emotrace.training.checkpoint import Checkpoint, load_checkpoint, read_metadata
from emotrace.training.config import TrainConfig, load_config
from emotrace.training.loop import FitResult, fit

__all__ = [
    "Checkpoint",
    "FitResult",
    "TrainConfig",
    "fit",
    "load_checkpoint",
    "load_config",
    "read_metadata",
]
