"""Training: the loop with every model and option, checkpoints, resume, callbacks and configs.

Everything trains on a tiny generated dataset held in memory (a bright band whose position is the
class), on one torch thread, so a run takes a fraction of a second per epoch.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from conftest import assert_one_line_error, make_class_folders
from conftest import run_emotrace_in_process as emotrace
from emotrace.cli.main import main as cli_main
from emotrace.data.cache import PreparedDataset, SplitArrays, save
from emotrace.errors import ConfigError, DatasetError, ModelError
from emotrace.models import build, list_models
from emotrace.models import pretrained as pretrained_mod
from emotrace.preprocessing import Preprocess
from emotrace.training import FitResult, TrainConfig, fit, load_checkpoint, load_config
from emotrace.training.history import HISTORY_FIELDS

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
CLASSES = ["angry", "happy", "sad"]
SIZE = 32
RUN_FILES = (
    "model.safetensors",
    "model.json",
    "last.safetensors",
    "last.json",
    "state.pt",
    "history.csv",
    "curves.png",
    "config.yaml",
)


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Tiny batches: on a busy 2-core machine extra threads only wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def band_images(labels: np.ndarray, classes: int, size: int, seed: int) -> np.ndarray:
    """Noise images ``(N, S, S, 1)`` whose class is the horizontal band that is bright.

    Horizontal bands survive the flips and small rotations of the default augmentation.
    """
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 70, (len(labels), size, size, 1)).astype(np.uint8)
    band = size // classes
    for i, label in enumerate(labels):
        images[i, label * band : (label + 1) * band] += 150
    return images


def band_dataset(
    n_train: int = 64,
    n_valid: int = 32,
    classes: list[str] | None = None,
    size: int = SIZE,
    constant_valid: bool = False,
) -> PreparedDataset:
    """A learnable in-memory dataset with ``train`` and ``valid`` splits.

    ``constant_valid`` makes every validation image the same with labels spread evenly, so every
    model predicts one class for all of them: validation accuracy is ``1/K`` and cannot improve.
    """
    names = classes or CLASSES
    k = len(names)
    y_train = np.arange(n_train) % k
    y_valid = np.arange(n_valid) % k
    x_valid = band_images(y_valid, k, size, seed=1)
    if constant_valid:
        x_valid = np.repeat(x_valid[:1], n_valid, axis=0)
    return PreparedDataset(
        classes=names,
        preprocess=Preprocess(size=size, gray=True),
        splits={
            "train": SplitArrays(band_images(y_train, k, size, seed=0), y_train),
            "valid": SplitArrays(x_valid, y_valid),
        },
        key=f"band-{n_train}-{n_valid}-{k}-{size}-{constant_valid}",
        source="generated",
    )


DATA = band_dataset()


def config(**overrides: Any) -> TrainConfig:
    """A config sized for the tiny dataset: 2 steps of 32 images per epoch, one thread."""
    base: dict[str, Any] = {
        "model": "emonet",
        "preprocess": {"size": SIZE, "gray": True},
        "epochs": 1,
        "batch_size": 32,
        "lr": 3e-3,
        "warmup_epochs": 0,
        "min_lr": 1e-6,
        "augment": {"rotation": 5, "zoom": 0.05, "erasing": 0.0},
        "threads": 1,
    }
    return TrainConfig.from_dict({**base, **overrides})


def train(
    cfg: TrainConfig,
    out: Path,
    data: PreparedDataset = DATA,
    resume: bool = False,
    log: list[str] | None = None,
    plot: bool = False,
) -> FitResult:
    """``fit`` quietly; ``curves.png`` only with ``plot`` (drawing it is most of a tiny run)."""
    lines = log if log is not None else []
    return fit(cfg, data, out, resume=resume, log=lines.append, progress=False, plot=plot)


def history(run: Path) -> list[dict[str, str]]:
    with (run / "history.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def column(run: Path, name: str) -> list[float]:
    return [float(row[name]) for row in history(run)]


def val_loss_and_accuracy(run: Path, data: PreparedDataset = DATA) -> tuple[float, float]:
    """Validation loss and accuracy of ``run/model.safetensors``, rebuilt from the file alone."""
    loaded = load_checkpoint(run)
    norm = loaded.meta["normalization"]
    valid = data.split("valid")
    x = torch.from_numpy(valid.images.transpose(0, 3, 1, 2).copy()).float() / 255
    with torch.no_grad():
        logits = loaded.model((x - norm["mean"]) / norm["std"])
    labels = torch.from_numpy(valid.labels)
    loss = torch.nn.functional.cross_entropy(logits, labels)
    return float(loss), float((logits.argmax(1) == labels).float().mean())


def weights_equal(a: Path, b: Path) -> bool:
    left, right = load_file(str(a)), load_file(str(b))
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


# One epoch of every model -------------------------------------------------------------------------


#: Architectures whose epoch here takes seconds: `make quick` trains the others.
HEAVY_MODELS = {"cnn", "emonet_deep", "mobilevit_s", "mobilevit_xs"}


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY_MODELS else n for n in list_models()],
)
def test_one_epoch_of_every_model_writes_a_complete_run(name: str, tmp_path: Path) -> None:
    cfg = config(model=name)  # mobilenet_v2: pretrained is False by default, nothing is fetched
    result = train(cfg, tmp_path, plot=True)

    assert result.epochs_run == 1 and result.stopped_reason == "completed"
    assert not result.stopped_early and not result.interrupted
    for filename in RUN_FILES:
        assert (tmp_path / filename).is_file(), f"{filename} missing"
    with (tmp_path / "history.csv").open(newline="") as handle:
        assert next(csv.reader(handle)) == HISTORY_FIELDS
    rows = history(tmp_path)
    assert [row["epoch"] for row in rows] == ["1"]
    assert all(np.isfinite(float(rows[0][k])) for k in HISTORY_FIELDS)
    assert load_config(tmp_path / "config.yaml") == cfg

    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["architecture"] == name
    assert meta["classes"] == CLASSES
    assert (meta["input_size"], meta["channels"]) == (SIZE, 1)
    assert meta["normalization"] == {"mean": cfg.mean, "std": cfg.std}
    assert meta["preprocess"] == DATA.preprocess.to_dict()
    assert meta["dataset_key"] == DATA.key
    assert meta["config"] == cfg.to_dict()
    assert meta["epoch"] == 1
    assert {"val_loss", "val_accuracy", "val_macro_f1", "train_loss"} <= set(meta["metrics"])

    # The checkpoint alone rebuilds a model giving the outputs the training run measured.
    loss, accuracy = val_loss_and_accuracy(tmp_path)
    assert accuracy == meta["metrics"]["val_accuracy"]
    assert loss == pytest.approx(meta["metrics"]["val_loss"], rel=1e-4, abs=1e-5)


# Resume and determinism ---------------------------------------------------------------------------


def interrupt_after(epoch: int, lines: list[str]) -> Any:
    """A log callback that records lines and presses Ctrl+C once ``epoch`` has been logged."""

    def log(line: str) -> None:
        lines.append(line)
        if line.startswith(f"epoch {epoch}/"):
            raise KeyboardInterrupt

    return log


@pytest.mark.slow
@pytest.mark.parametrize(
    "options",
    [
        # Dropout, augmentation, a class-balanced sampler, mixup and EMA all draw random numbers
        # or carry state across epochs: each would break bit-exact resumption if mishandled.
        {"ema": 0.9, "mixup": 0.2, "class_balance": "sampler", "augment": {"rotation": 10}},
        {"scheduler": "plateau", "plateau_patience": 0, "optimizer": "sgd", "cutmix": 1.0},
    ],
    ids=["ema-mixup-sampler", "plateau-sgd-cutmix"],
)
def test_resumed_run_ends_with_the_same_weights(options: dict[str, Any], tmp_path: Path) -> None:
    assert_resume_is_exact(config(epochs=3, **options), tmp_path)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-epoch run, the distillation tests' teacher (they read it, never change it)."""
    run = tmp_path_factory.mktemp("teacher") / "run"
    train(config(epochs=2), run)
    return run


@pytest.fixture(scope="module")
def sharp_teacher(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(run, its ONNX export)``: a teacher trained long enough that its outputs depend on the
    image (a barely trained model's are flat); read, never changed."""
    from emotrace.export import export_onnx

    folder = tmp_path_factory.mktemp("sharp-teacher")
    train(config(epochs=8, lr=1e-2, augment={}), folder / "teacher")
    export_onnx(folder / "teacher", folder / "teacher.onnx")
    return folder / "teacher", folder / "teacher.onnx"


@pytest.mark.slow
def test_resumed_consistent_distillation_ends_with_the_same_weights(
    teacher: Path, tmp_path: Path
) -> None:
    """The teacher answers on each augmented, mixed batch; after a resume it must see the very
    batches the uninterrupted run's teacher saw."""
    cfg = config(
        epochs=3,
        distill_teacher=str(teacher),
        distill_mode="consistent",
        mixup=0.4,
        cutmix=1.0,
        mix_prob=0.8,
    )
    assert_resume_is_exact(cfg, tmp_path)


def assert_resume_is_exact(cfg: TrainConfig, tmp_path: Path) -> None:
    """A run interrupted after epoch 2 and resumed ends as the uninterrupted run does."""
    whole = train(cfg, tmp_path / "whole")

    first: list[str] = []
    part = fit(
        cfg, DATA, tmp_path / "part", log=interrupt_after(2, first), progress=False, plot=False
    )
    assert part.interrupted and part.stopped_reason == "interrupted"
    assert part.epochs_run == 2 and len(history(tmp_path / "part")) == 2
    assert any("--resume" in line for line in first)

    second: list[str] = []
    saved = load_config(tmp_path / "part" / "config.yaml")
    resumed = train(saved, tmp_path / "part", resume=True, log=second)
    assert any("at epoch 3/3" in line for line in second)
    assert resumed.epochs_run == whole.epochs_run == 3
    assert (resumed.best_epoch, resumed.best_metric) == (whole.best_epoch, whole.best_metric)
    for name in ("last.safetensors", "model.safetensors"):
        assert weights_equal(tmp_path / "whole" / name, tmp_path / "part" / name), name
    timing = {"seconds", "images_per_s"}
    strip = [{k: v for k, v in r.items() if k not in timing} for r in history(tmp_path / "whole")]
    assert [
        {k: v for k, v in r.items() if k not in timing} for r in history(tmp_path / "part")
    ] == strip


def test_resume_of_a_finished_run_trains_nothing(tmp_path: Path) -> None:
    train(config(epochs=1), tmp_path)
    before = (tmp_path / "last.safetensors").read_bytes()
    lines: list[str] = []
    result = train(config(epochs=1), tmp_path, resume=True, log=lines)
    assert result.epochs_run == 1 and len(history(tmp_path)) == 1
    assert any("nothing to train" in line and "epochs=2" in line for line in lines)
    assert (tmp_path / "last.safetensors").read_bytes() == before


def test_overrides_given_on_resume_are_saved_for_the_next_resume(tmp_path: Path) -> None:
    train(config(epochs=1), tmp_path)
    train(config(epochs=2), tmp_path, resume=True)
    saved = load_config(tmp_path / "config.yaml")
    assert saved.epochs == 2 and len(history(tmp_path)) == 2


def test_resume_without_saved_state_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no training state to resume from"):
        train(config(), tmp_path, resume=True)


def test_state_pt_keeps_the_layout_older_runs_saved(tmp_path: Path) -> None:
    """Runs in the wild hold state.pt files of this layout (the loop assembled it by hand before
    TrainState): a resume must go on reading them, so a change of keys needs a loader for both."""
    train(config(epochs=1, ema=0.9, scheduler="plateau"), tmp_path)
    state = torch.load(tmp_path / "state.pt", map_location="cpu", weights_only=True)
    assert set(state) == {
        "epoch",
        "optimizer",
        "scheduler",
        "best",
        "early_stopping",
        "plateau",
        "ema",
    }
    assert state["epoch"] == 0  # the last finished epoch, counted from 0
    assert set(state["best"]) == {"monitor", "best", "best_epoch"}
    assert set(state["early_stopping"]) == {"best", "wait"}


def test_a_state_saved_without_ema_or_plateau_resumes_with_them_fresh(tmp_path: Path) -> None:
    train(config(epochs=1), tmp_path)
    assert not {"ema", "plateau"} & set(torch.load(tmp_path / "state.pt", weights_only=True))
    resumed = train(config(epochs=2, ema=0.9, scheduler="plateau"), tmp_path, resume=True)
    assert resumed.epochs_run == 2 and len(history(tmp_path)) == 2


# Time budget and training subset ------------------------------------------------------------------


def test_time_budget_stops_after_the_running_epoch_and_resume_continues(tmp_path: Path) -> None:
    lines: list[str] = []
    # A budget far below one epoch runs out during the first epoch, which still completes.
    result = train(config(epochs=3, max_minutes=1e-6), tmp_path, log=lines)
    assert result.stopped_reason == "time_budget" and not result.interrupted
    assert result.epochs_run == 1 and len(history(tmp_path)) == 1
    assert any(line.startswith("time budget") and "--resume" in line for line in lines)

    resumed = train(config(epochs=3), tmp_path, resume=True)
    assert resumed.stopped_reason == "completed"
    assert [int(r["epoch"]) for r in history(tmp_path)] == [1, 2, 3]


def test_time_budget_on_the_last_epoch_is_a_normal_end(tmp_path: Path) -> None:
    assert train(config(max_minutes=1e-6), tmp_path).stopped_reason == "completed"


def test_limit_train_uses_that_many_images(tmp_path: Path) -> None:
    lines: list[str] = []
    train(config(limit_train=20, batch_size=64), tmp_path, log=lines)
    row = history(tmp_path)[0]
    # images/s x seconds is the number of images the epoch trained on.
    assert round(float(row["images_per_s"]) * float(row["seconds"])) == 20
    assert any("training on 20 images" in line for line in lines)

    # A limit above the split's size changes nothing.
    train(config(limit_train=1000), tmp_path / "big")
    train(config(), tmp_path / "all")
    assert weights_equal(tmp_path / "big" / "last.safetensors", tmp_path / "all/last.safetensors")


# Callbacks ----------------------------------------------------------------------------------------


def test_early_stopping_stops_when_the_monitor_cannot_improve(tmp_path: Path) -> None:
    lines: list[str] = []
    stalled = band_dataset(n_valid=30, constant_valid=True)
    result = train(config(epochs=6, early_stopping=1), tmp_path, stalled, log=lines)
    assert result.stopped_early and result.stopped_reason == "early_stopping"
    assert result.epochs_run == 2 and len(history(tmp_path)) == 2
    assert column(tmp_path, "val_accuracy") == pytest.approx([1 / 3, 1 / 3])
    assert result.best_epoch == 1
    assert any(line.startswith("early stopping") for line in lines)


def test_resume_of_an_early_stopped_run_stays_stopped_unless_patience_is_raised(
    tmp_path: Path,
) -> None:
    stalled = band_dataset(n_valid=30, constant_valid=True)
    train(config(epochs=6, early_stopping=1), tmp_path, stalled)
    before = (tmp_path / "last.safetensors").read_bytes()
    lines: list[str] = []
    again = train(config(epochs=6, early_stopping=1), tmp_path, stalled, resume=True, log=lines)
    assert again.stopped_reason == "early_stopping" and again.epochs_run == 2
    assert any(
        "stopped early after epoch 2" in line and "early_stopping=2" in line for line in lines
    )
    assert len(history(tmp_path)) == 2
    assert (tmp_path / "last.safetensors").read_bytes() == before
    more = train(config(epochs=6, early_stopping=3), tmp_path, stalled, resume=True)
    assert more.stopped_reason == "early_stopping" and more.epochs_run == 4
    assert len(history(tmp_path)) == 4


def test_model_checkpoint_keeps_the_best_epoch(tmp_path: Path) -> None:
    result = train(config(epochs=4, lr=0.01), tmp_path)
    accuracy = column(tmp_path, "val_accuracy")
    best_epoch = accuracy.index(max(accuracy)) + 1  # the first epoch reaching the best value
    meta = json.loads((tmp_path / "model.json").read_text())
    assert (result.best_epoch, meta["epoch"]) == (best_epoch, best_epoch)
    assert result.best_metric == meta["metrics"]["val_accuracy"] == max(accuracy)
    assert val_loss_and_accuracy(tmp_path)[1] == max(accuracy)
    assert json.loads((tmp_path / "last.json").read_text())["epoch"] == 4


def test_monitoring_a_loss_keeps_its_minimum(tmp_path: Path) -> None:
    train(config(epochs=3, monitor="val_loss"), tmp_path)
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["metrics"]["val_loss"] == pytest.approx(min(column(tmp_path, "val_loss")), 1e-5)


def test_plateau_halves_the_learning_rate_when_the_monitor_stalls(tmp_path: Path) -> None:
    cfg = config(epochs=3, scheduler="plateau", plateau_patience=0, lr=1e-3)
    train(cfg, tmp_path, band_dataset(n_valid=30, constant_valid=True))
    # The halving is decided after an epoch, so it shows in the next epoch's row.
    assert column(tmp_path, "lr") == pytest.approx([1e-3, 1e-3, 5e-4])


# Options ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"class_balance": "weights"},
        {"class_balance": "sampler"},
        {"mixup": 0.4, "mix_prob": 1.0},
        {"cutmix": 1.0, "mix_prob": 1.0},
        {"mixup": 0.4, "cutmix": 1.0, "mix_prob": 1.0},
        {"grad_clip": 0.5},
        {"ema": 0.9},
        {"optimizer": "sgd", "lr": 0.05},
        {"optimizer": "adam"},
        {"optimizer": "adamw", "scheduler": "cosine"},
        {"scheduler": "plateau"},
        {"scheduler": "none"},
        {"precision": "bf16"},
        # augment {} is the default augmentation, erasing included.
        {"channels_last": False, "label_smoothing": 0.0, "augment": {}},
    ],
    ids=lambda options: ",".join(f"{k}={v}" for k, v in options.items()),
)
def test_training_options_run(options: dict[str, Any], tmp_path: Path) -> None:
    result = train(config(epochs=2, **options), tmp_path)
    assert result.stopped_reason == "completed"
    rows = history(tmp_path)
    assert len(rows) == 2
    assert all(np.isfinite(float(r[k])) for r in rows for k in HISTORY_FIELDS)


def test_bf16_falls_back_to_fp32_where_the_cpu_emulates_it(tmp_path: Path) -> None:
    # Whichever this CPU is: emulated bf16 (AVX2 and older) is announced and replaced by fp32,
    # native bf16 is used as asked. The flag comes from oneDNN, not from this module.
    native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    lines: list[str] = []
    result = train(config(precision="bf16"), tmp_path, log=lines)
    assert result.stopped_reason == "completed"
    fallback = [line for line in lines if "training in fp32" in line]
    assert bool(fallback) != native, lines
    lines.clear()
    train(config(precision="fp32"), tmp_path / "fp32", log=lines)
    assert not any("bfloat16" in line for line in lines)


def test_bf16_training_keeps_float32_weights(tmp_path: Path) -> None:
    train(config(precision="bf16"), tmp_path)
    for name in ("model.safetensors", "last.safetensors"):
        tensors = load_file(str(tmp_path / name))
        floats = {t.dtype for t in tensors.values() if t.is_floating_point()}
        assert floats == {torch.float32}, name


@pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None,
    reason="torch.compile on CPU needs a C++ compiler (none on PATH)",
)
# torch's own compile machinery triggers this deprecation inside torch.
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
@pytest.mark.slow  # torch.compile: about a minute on a fresh machine, before its cache is warm
def test_compiled_training_saves_plain_weights_and_resumes(tmp_path: Path) -> None:
    eager, compiled = tmp_path / "eager", tmp_path / "compiled"
    train(config(epochs=1), eager)
    train(config(epochs=1, compile=True, precision="bf16"), compiled)
    plain = load_file(str(eager / "model.safetensors"))
    saved = load_file(str(compiled / "model.safetensors"))
    assert saved.keys() == plain.keys()  # no "_orig_mod." prefixes from the compiled wrapper
    assert all(saved[k].shape == plain[k].shape for k in plain)
    # The compiled run resumes in eager mode (and the other way round): same weight names.
    train(config(epochs=2, precision="bf16"), compiled, resume=True)
    assert len(history(compiled)) == 2


def test_ema_checkpoint_holds_the_averaged_weights(tmp_path: Path) -> None:
    train(config(ema=0.9), tmp_path)
    # model.safetensors is the EMA (the best epoch's), last.safetensors the live weights.
    assert not weights_equal(tmp_path / "model.safetensors", tmp_path / "last.safetensors")


@pytest.mark.parametrize(
    ("scheduler", "expected"),
    [
        ("none", [3e-3, 3e-3, 3e-3]),
        # From 3e-3 down to min_lr 1e-6 over 6 steps, read after steps 2, 4 and 6:
        # 1e-6 + (3e-3 - 1e-6) * (1 + cos(pi * step / 6)) / 2.
        ("cosine", [1e-6 + 2.999e-3 * 0.75, 1e-6 + 2.999e-3 * 0.25, 1e-6]),
    ],
)
def test_learning_rate_schedules(scheduler: str, expected: list[float], tmp_path: Path) -> None:
    train(config(epochs=3, scheduler=scheduler), tmp_path)
    assert column(tmp_path, "lr") == pytest.approx(expected, rel=1e-4)


# Errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        ({"epochz": 3}, ["unknown config key", "epochz", "valid keys", "epochs", "max_minutes"]),
        ({"optimizer": "rmsprop"}, ["optimizer='rmsprop'", "adamw"]),
        ({"max_minutes": 0}, ["max_minutes"]),
        ({"max_minutes": True}, ["max_minutes"]),
        ({"limit_train": 0}, ["limit_train"]),
        ({"limit_train": 2.5}, ["limit_train"]),
        ({"precision": "fp16"}, ["precision='fp16'", "bf16"]),
        ({"compile": "yes please"}, ["compile", "true or false"]),
        ({"lr": "fast"}, ["lr must be a number", "'fast'"]),
        ({"lr": float("nan")}, ["lr must be a finite number"]),
        ({"epochs": 2.5}, ["epochs must be a whole number", "2.5"]),
        ({"batch_size": True}, ["batch_size must be a whole number"]),
        ({"mixup": [0.2]}, ["mixup must be a number"]),
        ({"init_from": ""}, ["init_from must be a run folder or checkpoint path"]),
        ({"augment": 3}, ["augment must be a mapping of key: value"]),
        ({"model_options": "wide"}, ["model_options must be a mapping"]),
        ({"preprocess": [48]}, ["preprocess must be a mapping"]),
        ({"threads": "abc"}, ["threads must be a whole number"]),
        ({"threads": 0}, ["threads must be >= 1 or null"]),
        ({"pretrained": 1}, ["pretrained must be true or false"]),
        # Out of range: these failed inside torch (tracebacks) or trained silently wrong.
        ({"weight_decay": -1}, ["weight_decay must be >= 0"]),
        ({"momentum": -0.5}, ["momentum must be >= 0"]),
        ({"label_smoothing": 2}, ["label_smoothing must be in [0, 1]"]),
        ({"std": 0}, ["std must be > 0"]),
        ({"min_lr": -1}, ["min_lr must be >= 0"]),
        ({"mixup": -0.2}, ["mixup must be >= 0"]),
        ({"mix_prob": 5}, ["mix_prob must be in [0, 1]"]),
        ({"warmup_epochs": -1}, ["warmup_epochs must be a whole number >= 0"]),
        ({"early_stopping": -2}, ["early_stopping must be a whole number >= 0"]),
        # Text settings given as numbers or lists: tracebacks (Path / int, int.lower()) before.
        ({"name": 5}, ["name must be text, got 5"]),
        ({"data": 5}, ["data must be text"]),
        ({"val_split": 5}, ["val_split must be text"]),
        ({"device": ["a"]}, ["device must be text"]),
    ],
)
def test_bad_config_is_a_config_error(data: dict[str, Any], fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict(data)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_exponent_overrides_without_a_dot_are_numbers() -> None:
    # YAML 1.1 reads 3e-4 as text; a learning rate typed the usual way must still train.
    cfg = load_config(None, ["lr=3e-4", "weight_decay=5e-2", "ema=0.998"])
    assert (cfg.lr, cfg.weight_decay, cfg.ema) == (3e-4, 5e-2, 0.998)
    assert isinstance(cfg.lr, float)


def test_unknown_override_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"epochz.*valid keys"):
        load_config(None, ["epochz=3"])


def test_unknown_model_is_a_model_error_listing_the_models(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="unknown model 'resnet9000'") as info:
        train(config(model="resnet9000"), tmp_path)
    for name in list_models():
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("device", "fragment"),
    [("tpu", "not a torch device"), ("cuda", "no CUDA GPU")],
)
def test_unknown_or_absent_device_is_a_config_error(
    device: str, fragment: str, tmp_path: Path
) -> None:
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    with pytest.raises(ConfigError, match=fragment):
        train(config(device=device), tmp_path)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (b"model: [\n", "not valid YAML (expected the node content"),
        (b"\xff\xfe", "not a YAML text file"),
    ],
)
def test_unreadable_config_file_is_a_one_line_error(
    text: bytes, fragment: str, tmp_path: Path
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(text)
    result = emotrace("train", "--config", path, "--data", tmp_path, cwd=tmp_path)
    assert_one_line_error(result, "bad.yaml", fragment)


def test_a_dataset_of_one_class_is_refused(tmp_path: Path) -> None:
    # It trained to a constant answer and reported validation accuracy 1.0.
    with pytest.raises(DatasetError, match=r"one class \(happy\).*at least two"):
        train(config(), tmp_path, data=band_dataset(classes=["happy"]))
    assert not (tmp_path / "model.safetensors").exists()


def test_config_asking_for_another_image_size_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="48 px images but the data is 32 px"):
        train(config(preprocess={"size": 48, "gray": True}), tmp_path)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished one-epoch emonet run; copy it before changing anything in it."""
    run = tmp_path_factory.mktemp("trained") / "run"
    train(config(), run, plot=True)  # tests compare every file in RUN_FILES
    return run


def test_truncated_weights_and_garbage_metadata_are_one_line_model_errors(
    trained_run: Path, tmp_path: Path
) -> None:
    run = Path(shutil.copytree(trained_run, tmp_path / "run"))
    weights = run / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelError, match="corrupted or truncated") as info:
        load_checkpoint(run)
    assert "\n" not in str(info.value)

    (run / "last.json").write_text("{not json")
    with pytest.raises(ModelError, match="unreadable checkpoint metadata") as info:
        load_checkpoint(run / "last.safetensors")
    assert "\n" not in str(info.value)


def test_a_new_run_into_a_run_folder_is_refused_and_leaves_it_whole(
    trained_run: Path, tmp_path: Path
) -> None:
    run = Path(shutil.copytree(trained_run, tmp_path / "run"))
    before = {name: (run / name).read_bytes() for name in RUN_FILES}
    with pytest.raises(ConfigError, match=r"already holds a run.*--resume"):
        train(config(epochs=2), run)
    # The CLI says so before preparing the data.
    data = make_class_folders(tmp_path / "data", {"angry": 2, "happy": 2})
    result = emotrace(
        "train", "--config", REPO / "configs/emonet_fer2013.yaml", "--data", data, "--out", run,
        cwd=tmp_path,
    )  # fmt: skip
    assert_one_line_error(result, "already holds a run")
    assert not (tmp_path / ".emotrace-cache").exists()
    assert {name: (run / name).read_bytes() for name in RUN_FILES} == before


@pytest.mark.parametrize(
    ("overrides", "data", "fragment"),
    [
        ({"model": "cnn"}, DATA, "architecture 'emonet', this resume has 'cnn'"),
        ({"optimizer": "sgd"}, DATA, "optimizer 'adamw', this resume has 'sgd'"),
        ({"model_options": {"dropout": 0.1}}, DATA, "model_options"),
        ({}, band_dataset(classes=["angry", "happy", "sad", "fear"]), "classes"),
        (
            {"preprocess": {"size": 40, "gray": True}},
            band_dataset(size=40),
            "input_size 32, this resume has 40",
        ),
    ],
)
def test_resume_with_another_model_data_or_optimizer_is_refused(
    overrides: dict[str, Any],
    data: PreparedDataset,
    fragment: str,
    trained_run: Path,
    tmp_path: Path,
) -> None:
    run = Path(shutil.copytree(trained_run, tmp_path / "run"))
    before = {name: (run / name).read_bytes() for name in RUN_FILES}
    with pytest.raises(ConfigError, match=f"--resume.*{re.escape(fragment)}"):
        train(config(epochs=2, **overrides), run, data=data, resume=True)
    assert {name: (run / name).read_bytes() for name in RUN_FILES} == before


def test_a_run_saved_before_a_preprocessing_setting_existed_still_resumes(
    trained_run: Path, tmp_path: Path
) -> None:
    run = Path(shutil.copytree(trained_run, tmp_path / "run"))
    meta = json.loads((run / "last.json").read_text())
    del meta["preprocess"]["mouth_ratio"]  # an older emotrace wrote no such key
    (run / "last.json").write_text(json.dumps(meta))
    assert train(config(epochs=2), run, resume=True).epochs_run == 2


@pytest.mark.parametrize("flag", ["--config", "--out"])
def test_resume_with_config_or_out_is_refused_not_ignored(
    flag: str, trained_run: Path, tmp_path: Path
) -> None:
    run = Path(shutil.copytree(trained_run, tmp_path / "run"))
    before = {name: (run / name).read_bytes() for name in RUN_FILES}
    value = REPO / "configs/cnn_fer2013.yaml" if flag == "--config" else tmp_path / "other"
    result = emotrace("train", "--resume", run, flag, value, "epochs=2", cwd=tmp_path)
    assert_one_line_error(result, f"drop {flag}")
    assert {name: (run / name).read_bytes() for name in RUN_FILES} == before
    assert not (tmp_path / "other").exists()


def test_corrupted_training_state_is_a_model_error(trained_run: Path, tmp_path: Path) -> None:
    run = Path(shutil.copytree(trained_run, tmp_path / "run"))
    (run / "state.pt").write_bytes(b"garbage")
    with pytest.raises(ModelError, match="corrupted training state"):
        train(config(epochs=2), run, resume=True)


# Starting from an earlier run's weights ---------------------------------------------------------


def parameters(checkpoint: Path) -> dict[str, torch.Tensor]:
    """The trainable tensors of a checkpoint (BatchNorm statistics move even at lr ~0)."""
    model = load_checkpoint(checkpoint).model
    return {name: tensor.detach().clone() for name, tensor in model.named_parameters()}


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, atol=1e-6)


@pytest.fixture(scope="module")
def narrow_cnn_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-epoch cnn run with a 16-unit dense layer (the default has 256)."""
    run = tmp_path_factory.mktemp("narrow") / "run"
    train(config(model="cnn", model_options={"hidden": 16}), run)
    return run


# A learning rate this small leaves the weights where the first step found them.
STILL = {"lr": 1e-9, "min_lr": 1e-12, "scheduler": "none", "weight_decay": 0.0}


def test_init_from_starts_from_the_earlier_runs_weights(trained_run: Path, tmp_path: Path) -> None:
    log: list[str] = []
    train(config(init_from=str(trained_run), **STILL), tmp_path / "seeded", log=log)
    train(config(seed=1, **STILL), tmp_path / "fresh")
    before = parameters(trained_run)
    seeded = parameters(tmp_path / "seeded")
    fresh = parameters(tmp_path / "fresh")
    assert all(close(seeded[k], before[k]) for k in before)
    assert not all(close(fresh[k], before[k]) for k in before)
    assert any(
        f"init_from: {len(load_file(str(trained_run / 'model.safetensors')))} tensors" in line
        for line in log
    ), log
    # The run records where it started, and a resume does not start there again.
    assert yaml.safe_load((tmp_path / "seeded" / "config.yaml").read_text())["init_from"] == str(
        trained_run
    )
    resumed: list[str] = []
    train(
        config(init_from=str(trained_run), epochs=2, **STILL),
        tmp_path / "seeded",
        resume=True,
        log=resumed,
    )
    assert not any(line.startswith("init_from:") for line in resumed), resumed


def test_init_from_other_classes_keeps_all_but_the_classifier_head(
    trained_run: Path, tmp_path: Path
) -> None:
    four = band_dataset(classes=["angry", "happy", "sad", "neutral"])
    log: list[str] = []
    train(config(init_from=str(trained_run), **STILL), tmp_path / "run", data=four, log=log)
    before = parameters(trained_run)
    after = parameters(tmp_path / "run")
    body = [k for k in before if not k.startswith("head.")]
    assert body and all(close(after[k], before[k]) for k in body)
    assert after["head.fc.weight"].shape[0] == 4 and before["head.fc.weight"].shape[0] == 3
    assert any("classifier head starts afresh" in line for line in log), log
    # Same names in another order would swap the meaning of the output rows: the head restarts.
    reordered = band_dataset(classes=["sad", "happy", "angry"])
    train(config(init_from=str(trained_run), **STILL), tmp_path / "reordered", data=reordered)
    assert not close(parameters(tmp_path / "reordered")["head.fc.weight"], before["head.fc.weight"])


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (["init_from=NOWHERE"], "no checkpoint found"),
        (["model=cnn", "init_from=RUN"], "the checkpoint is emonet, this run trains cnn"),
        (["model=cnn", "init_from=CNN"], "do not fit this cnn"),
        (["init_from=[1, 2]"], "init_from must be a run folder or checkpoint path"),
    ],
)
def test_init_from_that_cannot_start_the_run_is_a_one_line_error(
    overrides: list[str],
    fragment: str,
    trained_run: Path,
    narrow_cnn_run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = save(DATA, tmp_path / "data.npz")
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(config().to_dict()))
    argv = ["train", "--config", str(recipe), "--data", str(data), "--out", str(tmp_path / "run")]
    argv += [
        "--no-progress",
        *[
            o.replace("NOWHERE", str(tmp_path / "nowhere"))
            .replace("RUN", str(trained_run))
            .replace("CNN", str(narrow_cnn_run))
            for o in overrides
        ],
    ]
    assert fragment in one_line_error(capsys, argv)
    assert not (tmp_path / "run" / "model.safetensors").exists()


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run the CLI in-process; assert exit code 2 with one error line, and return that line."""
    assert cli_main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("emotrace: error: "), lines
    return lines[0]


def test_evaluate_refuses_data_of_another_size_or_other_classes(
    trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "eval")
    bigger = save(band_dataset(size=48), tmp_path / "big.npz")
    args = ["evaluate", "--model", str(trained_run), "--split", "valid", "-o", out, "--data"]
    line = one_line_error(capsys, [*args, str(bigger)])
    assert "32 px gray" in line and "48 px gray" in line and "--size 32" in line

    other = save(band_dataset(classes=["disgust", "fear"]), tmp_path / "other.npz")
    line = one_line_error(capsys, [*args, str(other)])
    assert "nothing in common" in line and "disgust" in line and "angry" in line
    assert not Path(out).exists()


# Seed-recipe configs ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_is_documented_and_trains(path: Path, tmp_path: Path) -> None:
    text = path.read_text()
    header = "\n".join(line for line in text.splitlines()[:12] if line.startswith("#"))
    assert text.startswith("#")
    assert f"Reproduce: emotrace train --config configs/{path.name}" in header
    # Every recipe says whose it is: one of the seed projects', or emotrace's own.
    assert header.startswith(("# Seed project", "# emotrace's")), header.splitlines()[0]
    raw = yaml.safe_load(text)
    assert "threads" in raw and raw["threads"] is None

    cfg = load_config(path)
    assert cfg.name == path.stem
    # The recipe's own options at a tiny size, offline (no pretrained download), 8 images.
    smoke = load_config(
        path,
        [
            "pretrained=false",
            "epochs=1",
            "limit_train=8",
            "batch_size=8",
            "threads=1",
            f"preprocess={{size: {SIZE}, gray: true}}",
        ],
    )
    result = train(smoke, tmp_path)
    assert result.epochs_run == 1
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["architecture"] == cfg.model and meta["model_options"] == cfg.model_options


@pytest.fixture
def imagenet_weights(
    shared_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, torch.Tensor]:
    """The shared MobileNetV2 ImageNet file in a temporary TORCH_HOME; downloads are refused."""
    source = shared_dir / "weights" / pretrained_mod.MOBILENET_V2_FILE
    if not source.is_file():
        pytest.skip(f"needs {source} (absent)")
    hub = tmp_path / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    shutil.copy(source, hub / source.name)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))

    def refuse(url: str, dst: str, hash_prefix: str | None) -> None:
        raise AssertionError(f"test tried to download {url}")

    monkeypatch.setattr(pretrained_mod, "_default_download", refuse)
    state: dict[str, torch.Tensor] = torch.load(source, map_location="cpu", weights_only=True)
    return state


@pytest.mark.needs_shared
def test_frozen_recipe_trains_the_head_only(
    imagenet_weights: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    cfg = load_config(
        REPO / "configs" / "mobilenet_v2_frozen.yaml",
        ["epochs=1", "batch_size=32", "threads=1", f"preprocess={{size: {SIZE}, gray: true}}"],
    )
    assert cfg.pretrained
    train(cfg, tmp_path / "run")
    trained = load_file(str(tmp_path / "run" / "last.safetensors"))
    backbone = {k: v for k, v in imagenet_weights.items() if k.startswith("features.")}
    assert set(trained) - set(backbone) == {"head.fc.weight", "head.fc.bias"}
    # Weights and BatchNorm statistics of the backbone are exactly ImageNet's ...
    assert all(torch.equal(trained[k], v) for k, v in backbone.items())
    # ... while the head moved from its initialisation (fit seeds torch before building).
    torch.manual_seed(cfg.seed)
    initial = build("mobilenet_v2", 3, 1, SIZE, pretrained=True, **cfg.model_options)
    assert not torch.equal(initial.head.fc.weight, trained["head.fc.weight"])


# Ctrl+C in a real process -------------------------------------------------------------------------


def _sigint_default() -> None:
    # A test runner started in the background ignores SIGINT, and children inherit that; the
    # training process must receive Ctrl+C as it would from a terminal.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_ctrl_c_saves_and_resume_continues_from_the_saved_epoch(tmp_path: Path) -> None:
    data = save(band_dataset(n_train=512), tmp_path / "cache.npz")
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(
        f"model: emonet\npreprocess: {{size: {SIZE}, gray: true}}\nbatch_size: 32\n"
        "augment: {rotation: 5}\n"
    )
    run = tmp_path / "RUN"
    env = {**os.environ, "EMOTRACE_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    args = ["train", "--config", cfg, "--data", data, "--out", run, "threads=1", "epochs=50"]
    process = subprocess.Popen(
        [sys.executable, "-m", "emotrace", *map(str, args), "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
        preexec_fn=_sigint_default,
    )
    try:
        deadline = time.monotonic() + 90
        while not (run / "history.csv").is_file() or len(history(run)) < 1:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no epoch finished in 90 s"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert f"resume with: emotrace train --resume {run}" in stdout.replace("\n", "")
    saved = len(history(run))
    assert 1 <= saved < 50
    state = torch.load(run / "state.pt", map_location="cpu", weights_only=True)
    assert state["epoch"] + 1 == saved  # the state and the history agree on the last epoch

    # The resume reads RUN/config.yaml; the override gives it one more epoch to run.
    resumed = emotrace(
        "train", "--resume", run, f"epochs={saved + 1}", "--no-progress", cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"at epoch {saved + 1}/{saved + 1}" in resumed.stdout
    assert [int(r["epoch"]) for r in history(run)] == list(range(1, saved + 2))


def fixed_targets(*args: Any, **kwargs: Any) -> torch.Tensor:
    """The per-image targets of ``distill_mode: fixed`` (nothing is added per batch)."""
    from emotrace.training.distill import build_distillation

    distillation = build_distillation(*args, **kwargs)
    assert not distillation.online
    return distillation.base


def test_distillation_targets_mix_the_teachers_flip_averaged_probabilities(
    teacher: Path,
) -> None:
    from emotrace.runtime.classifier import EmotionClassifier

    images = DATA.split("train").images
    labels = torch.from_numpy(DATA.split("train").labels)
    classifier = EmotionClassifier(teacher, threads=1)
    expected = (classifier.predict(images) + classifier.predict(images[:, :, ::-1].copy())) / 2
    only_teacher = fixed_targets(
        config(distill_teacher=str(teacher), distill_weight=1.0), images, labels, 3
    )
    np.testing.assert_allclose(only_teacher.numpy(), expected, atol=1e-5)
    only_labels = fixed_targets(
        config(distill_teacher=str(teacher), distill_weight=0.0), images, labels, 3
    )
    smoothed = torch.full((len(labels), 3), 0.1 / 3) + 0.9 * torch.eye(3)[labels]
    torch.testing.assert_close(only_labels, smoothed)
    half = fixed_targets(config(distill_teacher=str(teacher)), images, labels, 3)
    torch.testing.assert_close(half, (only_teacher + only_labels) / 2)
    np.testing.assert_allclose(half.sum(1).numpy(), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    "mixing",
    [
        {},
        {"mixup": 0.4, "mix_prob": 1.0},
        {"distill_mode": "consistent", "cutmix": 1.0, "mix_prob": 1.0},
    ],
)
def test_distilled_training_runs_and_learns(
    mixing: dict[str, Any], teacher: Path, tmp_path: Path
) -> None:
    log: list[str] = []
    result = train(
        config(epochs=3, distill_teacher=str(teacher), **mixing),
        tmp_path / "student",
        log=log,
    )
    assert result.stopped_reason == "completed"
    assert any("distillation: teacher" in line for line in log)
    consistent = mixing.get("distill_mode") == "consistent"
    assert any("sees each augmented batch" in line for line in log) == consistent
    losses = column(tmp_path / "student", "train_loss")
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    if mixing:
        return
    # Resuming the finished run trains nothing, so the teachers do not run again.
    again: list[str] = []
    cfg = config(epochs=3, distill_teacher=str(teacher))
    train(cfg, tmp_path / "student", resume=True, log=again)
    assert any("nothing to train" in line for line in again)
    assert not any("distillation: teacher" in line for line in again)


def test_distillation_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="distill_weight"):
        config(distill_teacher="default", distill_weight=1.5)
    with pytest.raises(ConfigError, match="distill_mode='online' is not valid"):
        config(distill_teacher="default", distill_mode="online")
    with pytest.raises(ConfigError, match="class_balance"):
        config(distill_teacher="default", class_balance="weights")
    for bad in ([], [""], ["default", 3], 7):
        with pytest.raises(ConfigError, match="distill_teacher must be a model or a list"):
            config(distill_teacher=bad)
    with pytest.raises(ConfigError, match="same names, same order"):
        train(config(distill_teacher="default"), tmp_path)
    # The bundled default takes aligned 48 px faces; this data is 32 px and generated, so there
    # is no dataset to prepare the teacher's way.
    seven = band_dataset(
        classes=["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    )
    with pytest.raises(ConfigError, match="source generated is not there"):
        train(config(distill_teacher="default"), tmp_path, data=seven)


def flip_averaged(model: Path, images: np.ndarray) -> np.ndarray:
    from emotrace.runtime.classifier import EmotionClassifier

    teacher = EmotionClassifier(model, threads=1)
    return (teacher.predict(images) + teacher.predict(images[:, :, ::-1].copy())) / 2


def test_an_ensemble_of_teachers_averages_their_probabilities(tmp_path: Path) -> None:
    train(config(epochs=1), tmp_path / "one")
    train(config(epochs=2, seed=5), tmp_path / "two")
    images = DATA.split("train").images
    labels = torch.from_numpy(DATA.split("train").labels)
    teachers = [str(tmp_path / "one"), str(tmp_path / "two")]
    log: list[str] = []
    targets = fixed_targets(
        config(distill_teacher=teachers, distill_weight=1.0), images, labels, 3, log.append
    )
    one, two = (flip_averaged(Path(t), images) for t in teachers)
    assert not np.allclose(one, two, atol=1e-3)  # two different teachers, or this proves nothing
    np.testing.assert_allclose(targets.numpy(), (one + two) / 2, atol=1e-5)
    assert sum("distillation: teacher" in line for line in log) == 2
    assert any("the 2 teachers together agree" in line for line in log)


@pytest.mark.slow
def test_a_teacher_framed_differently_sees_the_dataset_prepared_its_own_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The teacher was trained on equalised faces, the student trains on raw ones: the teacher's
    targets come from the same training images, re-read from the dataset and equalised."""
    from emotrace.data.prepared import load_prepared
    from emotrace.training.run import _reprepare

    dataset = make_class_folders(tmp_path / "faces", {"angry": 12, "happy": 12, "sad": 12})
    cache = tmp_path / "cache"
    monkeypatch.setenv("EMOTRACE_CACHE", str(cache))  # where fit() caches the teacher's view
    equalised = Preprocess(size=SIZE, gray=True, equalize=True)
    raw = Preprocess(size=SIZE, gray=True)
    teacher_data = load_prepared(dataset, equalised, cache_dir=cache)
    # Trained long enough that its outputs depend on the image (a barely trained model's are flat).
    teacher_config = config(preprocess=equalised.to_dict(), epochs=8, lr=1e-2, augment={})
    train(teacher_config, tmp_path / "teacher", data=teacher_data)
    student_data = load_prepared(dataset, raw, cache_dir=cache)
    student = config(distill_teacher=str(tmp_path / "teacher"), distill_weight=1.0, limit_train=30)
    labels = _limit_labels(student_data, 30)
    targets = fixed_targets(
        student,
        _limit_images(student_data, 30),
        torch.from_numpy(labels),
        3,
        prepared_as=student_data.preprocess,
        images_for=_reprepare(student_data, student, labels),
    )
    own_way = _limit_images(teacher_data, 30)
    np.testing.assert_allclose(
        targets.numpy(), flip_averaged(tmp_path / "teacher", own_way), atol=1e-5
    )
    student_way = flip_averaged(tmp_path / "teacher", _limit_images(student_data, 30))
    assert np.abs(targets.numpy() - student_way).max() > 1e-3  # 100x the tolerance above

    # fit() does the same on its own; a dataset that no longer lines up is a one-line error.
    log: list[str] = []
    train(student, tmp_path / "student", data=student_data, log=log)
    assert any("distillation: teacher" in line for line in log)
    shuffled = PreparedDataset(
        student_data.classes,
        raw,
        {
            "train": SplitArrays(
                student_data.split("train").images, student_data.split("train").labels[::-1].copy()
            ),
            "valid": student_data.split("valid"),
        },
        key="shuffled",
        source=str(dataset),
    )
    with pytest.raises(ConfigError, match="does not line up"):
        train(config(distill_teacher=str(tmp_path / "teacher")), tmp_path / "s2", data=shuffled)


# Consistent teaching: teachers answer on the augmented, mixed batch the student sees -------------


def scaled_nchw(images: np.ndarray) -> torch.Tensor:
    """uint8 ``(N, S, S, C)`` images as float ``(N, C, S, S)`` in [0, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0


def checkpoint_probabilities(run: Path, scaled: torch.Tensor) -> np.ndarray:
    """The teacher's probabilities from its own torch checkpoint (an independent reference)."""
    loaded = load_checkpoint(run)
    norm = loaded.meta["normalization"]
    mean, std = float(norm["mean"]), float(norm["std"])
    with torch.inference_mode():
        logits = loaded.model((scaled - mean) / std)
    return torch.softmax(logits, 1).numpy()


@pytest.mark.slow
def test_a_consistent_teacher_answers_on_the_augmented_mixed_batch(
    sharp_teacher: tuple[Path, Path],
) -> None:
    from emotrace.data.augment import AugmentConfig, BatchAugment
    from emotrace.runtime.classifier import EmotionClassifier
    from emotrace.training.distill import build_distillation

    # Through onnxruntime, as a user's teacher runs.
    checkpoint, onnx_teacher = sharp_teacher
    images = DATA.split("train").images
    labels = torch.from_numpy(DATA.split("train").labels)
    idx = torch.arange(len(labels))
    student = config(
        distill_teacher=str(onnx_teacher), distill_weight=1.0, distill_mode="consistent"
    )
    log: list[str] = []
    distillation = build_distillation(
        student, images, labels, 3, log.append, prepared_as=DATA.preprocess
    )
    assert any("sees each augmented batch as the student does" in line for line in log)
    assert not any("agrees with" in line for line in log)  # nothing computed ahead

    def normalised(scaled: torch.Tensor) -> torch.Tensor:
        return (scaled - student.mean) / student.std

    # Un-augmented, it is the teacher's plain answer on each image (no mirror averaging) ...
    plain = distillation.targets(idx, normalised(scaled_nchw(images)))
    teacher = EmotionClassifier(onnx_teacher, threads=1)
    np.testing.assert_allclose(plain.numpy(), teacher.predict(images), atol=1e-5)
    # ... and on an augmented batch, its answer on exactly what the student is fed.
    augmented = BatchAugment(AugmentConfig(rotation=25, zoom=0.2), seed=3)(scaled_nchw(images))
    targets = distillation.targets(idx, normalised(augmented))
    reference = checkpoint_probabilities(checkpoint, augmented)
    np.testing.assert_allclose(targets.numpy(), reference, atol=1e-4)
    assert np.abs(targets.numpy() - plain.numpy()).max() > 1e-2  # the augmentation mattered

    # Mixed images: the teacher answers on the mixture; the label part is mixed by lam.
    half = build_distillation(
        config(distill_teacher=str(onnx_teacher), distill_mode="consistent"),
        images,
        labels,
        3,
        prepared_as=DATA.preprocess,
    )
    perm, lam = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0)), 0.3
    mixed = lam * augmented + (1 - lam) * augmented[perm]
    smoothed = torch.full((len(labels), 3), 0.1 / 3) + 0.9 * torch.eye(3)[labels]
    expected = 0.5 * torch.from_numpy(checkpoint_probabilities(checkpoint, mixed)) + (
        0.5 * (lam * smoothed + (1 - lam) * smoothed[perm])
    )
    mixed_targets = half.targets(idx, normalised(mixed), perm, lam)
    torch.testing.assert_close(mixed_targets, expected, atol=1e-4, rtol=0)
    np.testing.assert_allclose(mixed_targets.sum(1).numpy(), 1.0, atol=1e-5)


@pytest.mark.slow
def test_a_checkpoint_teacher_answers_where_the_batch_is_as_its_onnx_export_does(
    sharp_teacher: tuple[Path, Path],
) -> None:
    from emotrace.runtime.torch_backend import TorchBackend
    from emotrace.training.distill import build_distillation, soft_cross_entropy

    checkpoint, onnx_teacher = sharp_teacher
    images = DATA.split("train").images
    labels = torch.from_numpy(DATA.split("train").labels)
    idx = torch.arange(len(labels))

    def consistent(teacher: Path) -> Any:
        return build_distillation(
            config(distill_teacher=str(teacher), distill_weight=1.0, distill_mode="consistent"),
            images,
            labels,
            3,
            prepared_as=DATA.preprocess,
            device=torch.device("cpu"),
        )

    from_checkpoint, from_onnx = consistent(checkpoint), consistent(onnx_teacher)
    assert isinstance(from_checkpoint.online[0].backend, TorchBackend)  # torch, on the device
    assert from_checkpoint.online[0].backend.device == torch.device("cpu")
    student = config()
    x = (scaled_nchw(images) - student.mean) / student.std
    targets = from_checkpoint.targets(idx, x)
    torch.testing.assert_close(targets, from_onnx.targets(idx, x), atol=1e-4, rtol=0)
    # The targets feed a loss that autograd differentiates (an inference-mode tensor could not).
    logits = torch.zeros(len(labels), 3, requires_grad=True)
    soft_cross_entropy(logits, targets).backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_a_consistent_teacher_of_another_size_gets_the_batch_resized(tmp_path: Path) -> None:
    from emotrace.runtime.classifier import EmotionClassifier
    from emotrace.training.distill import build_distillation

    small = band_dataset(size=SIZE // 2)
    small_config = config(epochs=8, lr=1e-2, augment={}, preprocess={"size": SIZE // 2})
    train(small_config, tmp_path / "t", small)
    images = DATA.split("train").images
    labels = torch.from_numpy(DATA.split("train").labels)
    log: list[str] = []
    distillation = build_distillation(
        config(distill_teacher=str(tmp_path / "t"), distill_weight=1.0, distill_mode="consistent"),
        images,
        labels,
        3,
        log.append,
        prepared_as=DATA.preprocess,
    )
    assert any(f"resized to {SIZE // 2} px" in line for line in log)
    targets = distillation.targets(torch.arange(len(labels)), (scaled_nchw(images) - 0.5) / 0.5)
    # The runtime shrinks the 32 px faces to 16 px by pixel areas too (only its uint8 rounding
    # differs), so the answers agree closely: the same class for every face, and probabilities
    # within 0.01. (0.001 held for the teacher trained on one CPU and not on another: how much
    # a half-grey-level rounding moves the output depends on the teacher.)
    own_resize = EmotionClassifier(tmp_path / "t", threads=1).predict(images)
    np.testing.assert_array_equal(targets.numpy().argmax(1), own_resize.argmax(1))
    np.testing.assert_allclose(targets.numpy(), own_resize, atol=1e-2)


@pytest.mark.slow
def test_consistent_mode_keeps_fixed_targets_for_a_teacher_framed_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from emotrace.data.prepared import load_prepared
    from emotrace.training.distill import build_distillation
    from emotrace.training.run import _reprepare

    dataset = make_class_folders(tmp_path / "faces", {"angry": 12, "happy": 12, "sad": 12})
    cache = tmp_path / "cache"
    monkeypatch.setenv("EMOTRACE_CACHE", str(cache))
    equalised = Preprocess(size=SIZE, gray=True, equalize=True)
    raw = Preprocess(size=SIZE, gray=True)
    equalised_data = load_prepared(dataset, equalised, cache_dir=cache)
    raw_data = load_prepared(dataset, raw, cache_dir=cache)
    for name, data, prep in (("eq", equalised_data, equalised), ("raw", raw_data, raw)):
        cfg = config(preprocess=prep.to_dict(), epochs=8, lr=1e-2, augment={})
        train(cfg, tmp_path / name, data=data)
    student = config(
        distill_teacher=[str(tmp_path / "eq"), str(tmp_path / "raw")],
        distill_weight=1.0,
        distill_mode="consistent",
    )
    images = raw_data.split("train").images
    labels = raw_data.split("train").labels
    log: list[str] = []
    distillation = build_distillation(
        student,
        images,
        torch.from_numpy(labels),
        3,
        log.append,
        prepared_as=raw,
        images_for=_reprepare(raw_data, student, labels),
    )
    # The equalised teacher cannot see the raw batch: its targets are fixed, flip-averaged on
    # its own view; the raw one answers on the batch.
    assert sum(f"teacher {tmp_path / 'eq'} agrees with" in line for line in log) == 1
    assert sum(f"teacher {tmp_path / 'raw'} sees each augmented" in line for line in log) == 1
    targets = distillation.targets(torch.arange(len(labels)), (scaled_nchw(images) - 0.5) / 0.5)
    from emotrace.runtime.classifier import EmotionClassifier

    expected = (
        flip_averaged(tmp_path / "eq", equalised_data.split("train").images)
        + EmotionClassifier(tmp_path / "raw", threads=1).predict(images)
    ) / 2
    np.testing.assert_allclose(targets.numpy(), expected, atol=1e-5)

    # With no teacher that frames faces as the data does, consistent mode is a one-line error.
    with pytest.raises(ConfigError, match="no teacher prepares faces as the training data"):
        train(
            config(distill_teacher=str(tmp_path / "eq"), distill_mode="consistent"),
            tmp_path / "student",
            data=raw_data,
        )


def _limit_images(data: PreparedDataset, limit: int) -> np.ndarray:
    from emotrace.training.run import _limit

    return _limit(data.split("train"), limit, 0).images


def _limit_labels(data: PreparedDataset, limit: int) -> np.ndarray:
    from emotrace.training.run import _limit

    return _limit(data.split("train"), limit, 0).labels
