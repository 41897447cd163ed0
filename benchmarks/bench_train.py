"""Training benchmark: images/s of a full training step and of inference, per registered model.

    python benchmarks/bench_train.py                                  # every model, 1 thread
    python benchmarks/bench_train.py --threads 1 2 --models 'mobilevit*' cnn --steps 5

A training step is what :func:`emotrace.training.fit` does per batch: uint8 batch to float,
batched augmentation (the default :class:`~emotrace.data.augment.AugmentConfig`), normalisation,
forward, label-smoothed cross-entropy, backward and an AdamW step (with the model's own parameter
groups when it has them). Inference is an eval-mode forward under ``torch.inference_mode``. Both
use batches of ``--batch`` (128, the trainer's default) at each model's default input size and
channels, in NCHW and in channels-last layout; MobileNetV2 is measured in its default
``finetune`` mode (everything trains) without pretrained weights, which do not change the speed.
The training step is also timed under bfloat16 autocast (``precision: bf16`` in a config), which
pays on CPUs with AVX512-BF16 or AMX and slows down elsewhere.

Each figure is ``--steps`` timed batches after one warm-up batch. Other jobs on the machine slow
every figure: the load average is printed with them, and with more threads than free cores the
threads wait on each other at every parallel step, so compare ``--threads 1 2`` there.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from emotrace.data.augment import AugmentConfig, BatchAugment
from emotrace.models import build, list_models, model_info
from emotrace.models.profile import profile


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models",
        nargs="+",
        default=["*"],
        metavar="PATTERN",
        help="model names or shell-style patterns (default: every registered model)",
    )
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[1], help="torch thread counts, e.g. 1 2"
    )
    parser.add_argument("--steps", type=int, default=10, help="timed batches per figure")
    parser.add_argument("--batch", type=int, default=128, help="batch size (default 128)")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.batch < 1 or min(args.threads) < 1:
        parser.error("--steps, --batch and --threads must be >= 1")
    return args


def chosen_models(patterns: list[str]) -> list[str]:
    """Registered names matching any pattern, in registry order; an unmatched pattern exits."""
    names: list[str] = []
    for pattern in patterns:
        matched = list_models(pattern)
        if not matched:
            sys.exit(f"no model matches {pattern!r}; registered: {', '.join(list_models())}")
        names += [n for n in matched if n not in names]
    return sorted(names)


@dataclass
class Setup:
    """One model with its optimizer, augmenter and a fixed random uint8 batch."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    augment: BatchAugment
    images: torch.Tensor
    labels: torch.Tensor
    memory_format: torch.memory_format


def make_setup(name: str, batch: int, channels_last: bool) -> Setup:
    """Build ``name`` at its default geometry with an AdamW optimizer and a random batch."""
    info = model_info(name)
    torch.manual_seed(0)
    model = build(name, num_classes=7)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)  # type: ignore[call-overload]
    groups_fn = getattr(model, "parameter_groups", None)
    params: Any = (
        groups_fn(1e-3)
        if callable(groups_fn)
        else [p for p in model.parameters() if p.requires_grad]
    )
    size, channels = info.default_input_size, info.default_channels
    generator = torch.Generator().manual_seed(0)
    return Setup(
        model=model,
        optimizer=torch.optim.AdamW(params, lr=1e-3),
        augment=BatchAugment(AugmentConfig(), seed=0),
        images=torch.randint(0, 256, (batch, channels, size, size), generator=generator).to(
            torch.uint8
        ),
        labels=torch.randint(0, 7, (batch,), generator=generator),
        memory_format=memory_format,
    )


def train_step(s: Setup, bf16: bool = False) -> None:
    """One optimisation step as the trainer runs it."""
    x = s.augment(s.images.float().div_(255.0))
    x = ((x - 0.5) / 0.5).contiguous(memory_format=s.memory_format)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = F.cross_entropy(s.model(x), s.labels, label_smoothing=0.1)
    s.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    s.optimizer.step()


def train_step_bf16(s: Setup) -> None:
    """:func:`train_step` under bfloat16 autocast."""
    train_step(s, bf16=True)


def infer_step(s: Setup) -> None:
    """One eval-mode forward pass, as validation and the torch backend run it."""
    x = ((s.images.float() / 255.0 - 0.5) / 0.5).contiguous(memory_format=s.memory_format)
    with torch.inference_mode():
        s.model(x)


def images_per_second(step: Any, s: Setup, steps: int) -> float:
    step(s)  # warm-up: first-call allocations and kernel selection
    started = time.perf_counter()
    for _ in range(steps):
        step(s)
    return steps * s.images.shape[0] / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = chosen_models(args.models)
    print(
        f"python {sys.version.split()[0]}, torch {torch.__version__}, "
        f"{os.cpu_count()} CPU core(s), load average {os.getloadavg()[0]:.2f} "
        "(other jobs on the machine slow every figure below)"
    )
    print(f"batch {args.batch}, {args.steps} timed step(s) after 1 warm-up per figure\n")
    header = (
        "model",
        "input",
        "MMACs",
        "threads",
        "layout",
        "train img/s",
        "train bf16 img/s",
        "infer img/s",
    )
    rows: list[tuple[str, ...]] = []
    for name in names:
        info = model_info(name)
        _, mmacs = profile(name)
        geometry = f"{info.default_input_size}px x{info.default_channels}"
        for threads in args.threads:
            torch.set_num_threads(threads)
            for channels_last in (False, True):
                setup = make_setup(name, args.batch, channels_last)
                setup.model.train()
                train_rate = images_per_second(train_step, setup, args.steps)
                bf16_rate = images_per_second(train_step_bf16, setup, args.steps)
                setup.model.eval()
                infer_rate = images_per_second(infer_step, setup, args.steps)
                row = (
                    name,
                    geometry,
                    f"{mmacs:.1f}",
                    str(threads),
                    "channels_last" if channels_last else "NCHW",
                    f"{train_rate:,.0f}",
                    f"{bf16_rate:,.0f}",
                    f"{infer_rate:,.0f}",
                )
                rows.append(row)
                print("  ".join(row), flush=True)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print()
    for row in [header, *rows]:
        cells = [
            cell.ljust(width) if i < 5 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
