"""``emotrace data prepare|inspect|augment|download``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from emotrace.cli._common import console, non_negative_int, progress_factory


def add_parser(sub: Any) -> None:
    """Register ``data`` and its sub-commands."""
    data = sub.add_parser("data", help="download, prepare, inspect and augment datasets")
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    def dataset_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("dataset", type=Path, help="dataset folder or CSV file")
        p.add_argument(
            "--format",
            default=None,
            help="force a layout: folder, roboflow_csv, fer2013_csv, affectnet_csv, affectnet, "
            "ckplus, rafdb, ferplus, expw, jaffe (default: detected)",
        )

    prep = data_sub.add_parser(
        "prepare", help="decode, preprocess and cache a dataset as a compressed .npz"
    )
    dataset_args(prep)
    prep.add_argument("-o", "--output", type=Path, required=True, help="cache file (.npz)")
    prep.add_argument("--size", type=int, default=48, help="square side in pixels (default 48)")
    colour = prep.add_mutually_exclusive_group()
    colour.add_argument("--gray", dest="gray", action="store_true", default=True, help="1 channel")
    colour.add_argument("--color", dest="gray", action="store_false", help="3 channels (BGR)")
    prep.add_argument("--face-crop", action="store_true", help="detect and crop the largest face")
    prep.add_argument("--margin", type=float, default=0.0, help="face-crop margin (fraction)")
    prep.add_argument(
        "--align",
        action="store_true",
        help="aligned crops: YuNet landmarks, eyes level, FER2013's framing (as models expect)",
    )
    prep.add_argument(
        "--equalize", action="store_true", help="histogram-equalise faces (as FER2013's images are)"
    )
    prep.add_argument("--split", action="append", help="only this split (repeatable)")
    prep.set_defaults(handler=run_prepare)

    insp = data_sub.add_parser("inspect", help="write an EDA report (report.html, summary.json)")
    dataset_args(insp)
    insp.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    insp.add_argument("--samples", type=non_negative_int, default=8, help="sample images per class")
    insp.set_defaults(handler=run_inspect)

    aug = data_sub.add_parser("augment", help="write augmented copies of a dataset to a folder")
    dataset_args(aug)
    aug.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    aug.add_argument("--copies", type=int, default=1, help="augmented copies per image")
    aug.add_argument("--seed", type=int, default=0)
    aug.add_argument("--split", default=None, help="only this split")
    aug.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="augmentation setting, e.g. rotation=15 hflip=0.5 (repeatable)",
    )
    aug.set_defaults(handler=run_augment)
    add_download_parser(data_sub)


def add_download_parser(data_sub: Any) -> None:
    """``data download roboflow|hf|kaggle``: the only commands that use the network."""
    dl = data_sub.add_parser(
        "download", help="download a dataset from Roboflow, Hugging Face or Kaggle"
    )
    services = dl.add_subparsers(dest="service", metavar="SERVICE", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("-o", "--output", type=Path, required=True, help="dataset folder to create")
        p.add_argument(
            "--max-size",
            type=_size,
            default=None,
            metavar="SIZE",
            help="refuse archives that unpack to more than this (e.g. 200G; default 64G)",
        )
        p.set_defaults(handler=run_download)

    rf = services.add_parser("roboflow", help="a Roboflow dataset version (classification export)")
    rf.add_argument("ref", metavar="WORKSPACE/PROJECT/VERSION")
    rf.add_argument(
        "--api-key", default=None, help="Roboflow API key (default: $ROBOFLOW_API_KEY, preferred)"
    )
    common(rf)
    hf = services.add_parser("hf", help="an archive from a Hugging Face dataset repository")
    hf.add_argument("ref", metavar="REPO_ID", help="e.g. chitradrishti/AffectNet")
    hf.add_argument("--file", default=None, help="archive in the repo (default: its only one)")
    hf.add_argument("--revision", default=None, help="branch, tag or commit (default: main)")
    common(hf)
    kg = services.add_parser("kaggle", help="a Kaggle dataset")
    kg.add_argument("ref", metavar="OWNER/DATASET", help="e.g. msambare/fer2013")
    common(kg)


def _size(text: str) -> int:
    """``500M``, ``64G``, ``1T`` or plain bytes."""
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    number, unit = (value[:-1], value[-1]) if value[-1:] in units else (value, "")
    try:
        size = int(float(number) * units[unit])
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a size such as 500M or 64G") from None
    if size <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive size")
    return size


def run_download(args: argparse.Namespace) -> int:
    """Download, unpack and check a dataset; print what it holds. A finished folder is kept."""
    from emotrace.data import download as dl

    limits = {"max_bytes": args.max_size} if args.max_size else {}
    with progress_factory(in_bytes=True) as make:
        if args.service == "roboflow":
            result = dl.download_roboflow(
                args.ref, args.output, api_key=args.api_key, progress=make, **limits
            )
        elif args.service == "hf":
            result = dl.download_hf(
                args.ref,
                args.output,
                filename=args.file,
                revision=args.revision,
                progress=make,
                **limits,
            )
        else:
            result = dl.download_kaggle(args.ref, args.output, progress=make, **limits)
    what = result.source.describe()
    if result.already_complete:
        console.print(f"{args.output} already holds {what}; nothing to do")
    else:
        console.print(f"downloaded {what} into {args.output}")
    index = result.index
    classes = index.classes()
    console.print(f"format: {index.format}; {len(classes)} classes: {', '.join(classes)}")
    for split, counts in index.counts().items():
        per_class = " ".join(f"{k}={v}" for k, v in counts.items())
        console.print(f"{split:>6}: {sum(counts.values()):,} images  {per_class}")
    if index.skipped:
        first = index.skipped[0]
        console.print(f"skipped: {len(index.skipped)}, e.g. {first.source}: {first.reason}")
    else:
        console.print("skipped: 0")
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    """Prepare and cache; an up-to-date cache is left alone."""
    from emotrace.data.cache import dataset_key, prepare, read_meta, save
    from emotrace.data.readers import open_dataset
    from emotrace.data.types import refuse_inside_dataset
    from emotrace.errors import CacheError, DatasetError
    from emotrace.preprocessing import Preprocess

    settings = Preprocess(
        size=args.size,
        gray=args.gray,
        face_crop=args.face_crop,
        margin=args.margin,
        equalize=args.equalize,
        align=args.align,
    )
    output: Path = args.output if args.output.suffix == ".npz" else args.output.with_suffix(".npz")
    refuse_inside_dataset(output, args.dataset, "cache file")
    index = open_dataset(args.dataset, args.format)
    key = dataset_key(index, settings)
    if output.is_file():
        try:
            meta = read_meta(output)
            # A cache of some splits only (--split) is not up to date for all of them.
            whole = set(meta.get("splits", [])) == set(index.splits())
            if meta.get("key") == key and not args.split and whole:
                console.print(f"{output} is up to date (key {key})")
                return 0
        except CacheError:
            # Caches are written atomically: this is someone's own .npz (arrays, a seed
            # project's data), which was overwritten.
            raise DatasetError(
                f"{output}: exists and is not an emotrace cache; choose another -o "
                "(emotrace does not overwrite it)"
            ) from None
    with progress_factory() as make:
        tick = make("preparing", len(index.entries))
        data = prepare(index, settings, splits=args.split, progress=tick)
    save(data, output)
    for split, arrays in data.splits.items():
        console.print(f"{split:>6}: {len(arrays.labels):,} images")
    console.print(f"classes: {', '.join(data.classes)}")
    if data.skipped:
        console.print(f"skipped {len(data.skipped)} file(s), e.g. {data.skipped[0].source}")
    if settings.face_crop or settings.align:
        total = sum(len(a.labels) for a in data.splits.values())
        share = data.no_face / total if total else 0.0
        console.print(f"no face found (kept whole): {data.no_face:,} of {total:,} ({share:.1%})")
    console.print(f"wrote {output} (key {data.key})")
    return 0


def run_inspect(args: argparse.Namespace) -> int:
    """EDA report."""
    from emotrace.data.inspect import inspect_dataset
    from emotrace.data.readers import open_dataset

    index = open_dataset(args.dataset, args.format)
    with progress_factory() as make:
        tick = make("inspecting", len(index.entries))
        summary = inspect_dataset(index, args.output, samples_per_class=args.samples, progress=tick)
    for split, counts in summary["splits"].items():
        total = sum(counts.values())
        per_class = " ".join(f"{k}={v}" for k, v in counts.items())
        console.print(f"{split:>6}: {total:,} images  {per_class}")
    console.print(
        f"skipped: {summary['skipped_total']}  duplicates: {summary['duplicates']}  "
        f"cross-split duplicates: {summary['cross_split_duplicates']}"
    )
    console.print(f"wrote {args.output / 'report.html'} and {args.output / 'summary.json'}")
    return 0


def run_augment(args: argparse.Namespace) -> int:
    """Augmented copies on disk."""
    from emotrace.data.augment import AugmentConfig
    from emotrace.data.augment_export import write_augmented
    from emotrace.data.readers import open_dataset
    from emotrace.training.config import apply_overrides

    config = AugmentConfig.from_dict(apply_overrides(AugmentConfig().to_dict(), args.settings))
    index = open_dataset(args.dataset, args.format)
    entries = len(index.select(args.split))
    with progress_factory() as make:
        written = write_augmented(
            index,
            args.output,
            copies=args.copies,
            config=config,
            seed=args.seed,
            split=args.split,
            progress=make("augmenting", entries),
        )
    console.print(f"wrote {written:,} augmented images to {args.output}")
    if index.skipped:
        console.print(
            f"skipped {len(index.skipped)} file(s): " + json.dumps(index.skipped[0].source)
        )
    return 0
