"""Training configuration: a dataclass read from YAML, with ``key=value`` overrides on top."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from emotrace._fields import check_fields
from emotrace.errors import ConfigError

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULERS = ("cosine", "plateau", "none")
BALANCING = ("none", "weights", "sampler")
MONITORS = ("val_accuracy", "val_macro_f1", "val_loss")
PRECISIONS = ("fp32", "bf16")
#: What distillation's teachers see: each training image once, before training (``fixed``), or
#: each augmented, mixed batch as the student sees it (``consistent``; see training/distill.py).
DISTILL_MODES = ("fixed", "consistent")


@dataclass
class TrainConfig:
    """Everything that defines a training run. Saved resolved beside the checkpoint."""

    name: str = "run"
    model: str = "emonet"
    model_options: dict[str, Any] = field(default_factory=dict)
    pretrained: bool = False
    #: With ``pretrained``: a weights file to start from in place of the architecture's own (for
    #: mobilenet_v2, a torchvision state dict instead of torch hub's verified ImageNet file), for
    #: a machine without network given the backbone by hand (scripts/gpu/).
    pretrained_weights: str | None = None
    data: str | None = None
    train_split: str = "train"
    val_split: str = "valid"
    preprocess: dict[str, Any] = field(default_factory=lambda: {"size": 48, "gray": True})
    mean: float = 0.5
    std: float = 0.5
    epochs: int = 30
    batch_size: int = 128
    optimizer: str = "adamw"
    lr: float = 2e-3
    weight_decay: float = 5e-4
    momentum: float = 0.9
    scheduler: str = "cosine"
    warmup_epochs: int = 1
    min_lr: float = 1e-5
    plateau_patience: int = 3
    label_smoothing: float = 0.1
    class_balance: str = "none"
    mixup: float = 0.0
    cutmix: float = 0.0
    mix_prob: float = 0.5
    grad_clip: float = 0.0
    early_stopping: int = 0
    monitor: str = "val_accuracy"
    augment: dict[str, Any] = field(default_factory=dict)
    ema: float = 0.0
    seed: int = 0
    #: Stop after the epoch during which this many minutes (of this invocation) have passed.
    max_minutes: float | None = None
    #: Train on only this many images, drawn by a seeded shuffle of the train split (smoke runs).
    limit_train: int | None = None
    threads: int | None = None
    device: str = "auto"
    channels_last: bool = True
    #: "bf16" runs forward and loss under bfloat16 autocast: ~1.8x faster on CPUs with AVX512-BF16
    #: or AMX (and on recent GPUs); weights, optimizer state and validation stay float32. Where
    #: bf16 is not native (AVX2-only CPUs) it would be emulated, over 10x slower: fp32 is used.
    precision: str = "fp32"
    #: Train through ``torch.compile`` (needs a C++ compiler on CPU): ~12% faster steps for
    #: emonet_deep with bf16 on 2 cores, after ~45 s of compilation. Evaluation stays eager.
    compile: bool = False
    #: Knowledge distillation: a teacher model (``default``, an ``.onnx`` file or a run folder),
    #: or a list of them (an ensemble), whose probabilities on each training image are mixed into
    #: its target with weight ``distill_weight`` (the rest is the label-smoothed one-hot label).
    #: ``distill_mode: fixed``: each teacher's answer on the image and its mirror, computed once
    #: on the images prepared its own way (its own framing), re-read from the dataset when that
    #: differs from the training data's. ``consistent``: teachers that frame faces as the
    #: training data does see each augmented, mixed batch as the student does, every step.
    distill_teacher: str | list[str] | None = None
    distill_weight: float = 0.5
    distill_mode: str = "fixed"
    #: Under torchrun on GPUs: BatchNorm statistics over the global batch instead of each
    #: process's share (worth it when per-GPU batches are small). CUDA only.
    sync_batchnorm: bool = False
    #: Start from the weights of an earlier run (its folder) or checkpoint (``.safetensors``) of
    #: the same architecture instead of ``pretrained`` or random ones: fine-tuning a FER model on
    #: your own faces, or a second schedule after a converged one. A checkpoint trained on other
    #: classes lends everything but its classifier head, which starts afresh.
    init_from: str | None = None

    def __post_init__(self) -> None:
        # YAML 1.1 reads 3e-4 (no dot) as text: lr=3e-4 becomes a number here, and a value of
        # the wrong kind fails naming its key rather than inside the optimizer.
        # Types (bools included: "max_minutes: yes" is not one minute) are settled here; the checks
        # below are about ranges.
        check_fields(self)
        # YAML reads name: 2024 as a number and val_split: [a] as a list: tracebacks later on.
        for key in ("name", "model", "data", "train_split", "val_split", "device"):
            value = getattr(self, key)
            if not (isinstance(value, str) or (key == "data" and value is None)):
                raise ConfigError(f"{key} must be text, got {value!r} (quote it in YAML)")
        checks = [
            ("optimizer", self.optimizer, OPTIMIZERS),
            ("scheduler", self.scheduler, SCHEDULERS),
            ("class_balance", self.class_balance, BALANCING),
            ("monitor", self.monitor, MONITORS),
            ("precision", self.precision, PRECISIONS),
            ("distill_mode", self.distill_mode, DISTILL_MODES),
        ]
        for key, value, valid in checks:
            if value not in valid:
                raise ConfigError(f"{key}={value!r} is not valid; choose one of {', '.join(valid)}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("epochs and batch_size must be >= 1")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        # Out of range, these failed inside torch (a traceback after the data was prepared) or
        # trained silently wrong: std=0 gave NaN losses, a negative min_lr a negative learning
        # rate at the end of the cosine schedule.
        if not self.std > 0:
            raise ConfigError(f"std must be > 0, got {self.std}")
        for key in ("weight_decay", "momentum", "min_lr", "grad_clip", "mixup", "cutmix"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} must be >= 0, got {getattr(self, key)}")
        for key in ("warmup_epochs", "plateau_patience", "early_stopping"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} must be a whole number >= 0, got {getattr(self, key)}")
        for key in ("label_smoothing", "mix_prob"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(f"{key} must be in [0, 1], got {getattr(self, key)}")
        if not 0.0 <= self.distill_weight <= 1.0:
            raise ConfigError(f"distill_weight must be in [0, 1], got {self.distill_weight}")
        teachers = self.distill_teacher
        if teachers is not None and not (
            (isinstance(teachers, str) and teachers)
            or (
                isinstance(teachers, list)
                and teachers
                and all(isinstance(t, str) and t for t in teachers)
            )
        ):
            raise ConfigError(
                f"distill_teacher must be a model or a list of models, got {teachers!r}"
            )
        if self.pretrained_weights is not None and not (
            isinstance(self.pretrained_weights, str) and self.pretrained_weights and self.pretrained
        ):
            raise ConfigError(
                "pretrained_weights is a weights file for pretrained: true, got "
                f"{self.pretrained_weights!r} with pretrained: {self.pretrained}"
            )
        if self.init_from is not None and not (isinstance(self.init_from, str) and self.init_from):
            raise ConfigError(
                f"init_from must be a run folder or checkpoint path, got {self.init_from!r}"
            )
        if self.distill_teacher is not None and self.class_balance == "weights":
            raise ConfigError("distill_teacher does not combine with class_balance=weights")
        if not 0.0 <= self.ema < 1.0:
            raise ConfigError(f"ema is a decay in [0, 1), got {self.ema}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ConfigError(f"max_minutes must be a number > 0 or null, got {self.max_minutes!r}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be >= 1 or null, got {self.threads}")
        if self.limit_train is not None and self.limit_train < 1:
            raise ConfigError(
                f"limit_train must be an integer >= 1 or null, got {self.limit_train!r}"
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a mapping; unknown keys raise :class:`ConfigError` listing the valid ones."""
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(data).difference(valid))
        if unknown:
            raise ConfigError(
                f"unknown config key(s) {', '.join(unknown)}; "
                f"valid keys: {', '.join(sorted(valid))}"
            )
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"invalid config: {exc}") from None

    @property
    def teachers(self) -> list[str]:
        """``distill_teacher`` as a list (empty without distillation)."""
        if self.distill_teacher is None:
            return []
        if isinstance(self.distill_teacher, str):
            return [self.distill_teacher]
        return list(self.distill_teacher)

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping, as saved in ``config.yaml`` and checkpoint metadata."""
        return asdict(self)


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's error in one line (its own message spans several, with a caret under the spot)."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(exc).split())


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key=value`` strings (``augment.rotation=15`` reaches into nested mappings)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value")
        key, raw = item.split("=", 1)
        value = _parse_value(raw)
        parts = key.strip().split(".")
        target = out
        for part in parts[:-1]:
            nested = target.setdefault(part, {})
            if not isinstance(nested, dict):
                raise ConfigError(f"override {key!r}: {part} is not a mapping")
            target = nested
        target[parts[-1]] = value
    return out


def load_config(path: Path | str | None, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML config (or start from defaults with ``None``) and apply overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{p}: no such config file")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except UnicodeDecodeError:
            raise ConfigError(f"{p}: not a YAML text file (not UTF-8)") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML ({_yaml_problem(exc)})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p}: expected a mapping of config keys")
        data = loaded
        data.setdefault("name", p.stem)
    return TrainConfig.from_dict(apply_overrides(data, overrides or []))
