"""``emotrace train``: fit a model from a YAML config."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from emotrace.cli._common import console, progress_factory


def add_parser(sub: Any) -> None:
    """Register ``train``."""
    p = sub.add_parser("train", help="train a model from a YAML config (resumable)")
    p.add_argument("--config", type=Path, help="YAML config (see configs/)")
    p.add_argument("--data", help="dataset folder/CSV or prepared .npz (overrides config 'data')")
    p.add_argument("--out", type=Path, help="run folder (default runs/<config name>)")
    p.add_argument("--resume", type=Path, metavar="RUN", help="continue the run in this folder")
    p.add_argument("--format", default=None, help="force the dataset layout")
    p.add_argument("--no-progress", action="store_true", help="log one line per epoch only")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Train (or resume) and print where the best checkpoint is."""
    from emotrace.errors import require

    require("torch", "train")
    from emotrace.training import distributed

    try:
        code = _train(args)
    except BaseException:
        distributed.shutdown()  # under torchrun: leave the process group
        raise
    distributed.shutdown(wait_for_all=True)
    return code


def _train(args: argparse.Namespace) -> int:
    from emotrace.data.prepared import load_prepared
    from emotrace.data.types import refuse_inside_dataset
    from emotrace.errors import ConfigError
    from emotrace.preprocessing import Preprocess
    from emotrace.training import distributed, fit, load_config
    from emotrace.training.run import check_new_run

    if args.resume is not None:
        # Both were ignored: the run goes on with its own config.yaml, in its own folder.
        for flag, given in (("--config", args.config), ("--out", args.out)):
            if given is not None:
                raise ConfigError(
                    f"--resume continues {args.resume} with its own config.yaml, in that "
                    f"folder; drop {flag} (key=value overrides still apply)"
                )
        config_path = args.resume / "config.yaml"
        if not config_path.is_file():
            raise ConfigError(f"{args.resume}: not a run folder (no config.yaml)")
        config = load_config(config_path, args.overrides)
        out = args.resume
    else:
        if args.config is None:
            raise ConfigError("give --config configs/NAME.yaml (or --resume runs/NAME)")
        config = load_config(args.config, args.overrides)
        out = args.out or Path("runs") / config.name
        check_new_run(out)  # before the data is prepared (minutes), as fit() would
    if args.data:
        config.data = args.data
    if not config.data:
        raise ConfigError("no dataset: pass --data PATH or set 'data' in the config")
    refuse_inside_dataset(out, config.data, "run folder")
    settings = Preprocess.from_dict(config.preprocess)
    # Under torchrun every process trains and only rank 0 speaks; rank 0 also prepares (and
    # caches) the dataset before the others read it.
    ddp = distributed.setup(config)
    say = distributed.quiet(console.print, ddp)
    with distributed.main_first(ddp), progress_factory() as make:
        data = load_prepared(config.data, settings, format=args.format, progress=make)
    if ddp is not None:
        say(f"distributed: {ddp.world_size} processes on {ddp.device.type}")
    say(
        f"training {config.model} on {config.data}: "
        + ", ".join(f"{s} {len(a.labels):,}" for s, a in data.splits.items())
    )
    result = fit(
        config,
        data,
        out,
        resume=args.resume is not None,
        log=console.print,
        progress=not args.no_progress,
    )
    say(
        f"best {config.monitor} {result.best_metric:.4f} at epoch {result.best_epoch}; "
        f"checkpoint {out / 'model.safetensors'}"
    )
    return 130 if result.interrupted else 0
