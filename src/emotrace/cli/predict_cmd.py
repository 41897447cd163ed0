"""``emotrace predict``: faces and emotions in photos, as a table or JSON, optionally annotated."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from emotrace.bundled import MODEL_CHOICES_HELP
from emotrace.cli._common import console, positive_int
from emotrace.cli._pipeline import add_detector_options, detector_settings_from


def add_parser(sub: Any) -> None:
    """Register ``predict``."""
    p = sub.add_parser("predict", help="detect faces in images and classify their emotions")
    p.add_argument(
        "images",
        nargs="+",
        type=Path,
        metavar="IMAGE",
        help="image files, or folders (their images, subfolders included, in name order)",
    )
    p.add_argument("--model", default="default", help=MODEL_CHOICES_HELP)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--annotate", type=Path, metavar="OUT_DIR", help="write annotated copies here")
    add_detector_options(p.add_argument_group("face detection"))
    p.add_argument("--threads", type=positive_int, default=1, help="inference threads")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Predict every image; unreadable ones are reported and skipped."""
    import cv2

    from emotrace.data.imageio import read_image
    from emotrace.errors import InputError, UnreadableImageError
    from emotrace.preprocessing import to_bgr
    from emotrace.runtime.recognizer import EmotionRecognizer

    images = _expand_folders(args.images, args.annotate)
    if args.annotate is not None:
        _make_annotate_folder(args.annotate)
    detector = detector_settings_from(args).build()
    recognizer = EmotionRecognizer(model=args.model, detector=detector, threads=args.threads)
    results: list[dict[str, Any]] = []
    readable = 0
    annotated_names: set[str] = set()
    not_written: list[Path] = []
    for path in images:
        try:
            image = to_bgr(read_image(path))
        except UnreadableImageError as exc:
            print(f"emotrace: skipped {exc}", file=sys.stderr)
            results.append({"file": str(path), "error": str(exc), "faces": []})
            continue
        readable += 1
        faces = recognizer.recognize(image)
        records = [{k: v for k, v in r.items() if k != "track_id"} for r in faces.records()]
        results.append({"file": str(path), "faces": records, "error": None})
        if args.annotate is not None:
            from emotrace.annotate import draw_faces

            out = args.annotate / _annotated_name(path, annotated_names)
            if cv2.imwrite(str(out), draw_faces(image, faces)):
                results[-1]["annotated"] = str(out)
            else:
                not_written.append(out)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        _print_table(results, recognizer.classifier.classes)
    if args.annotate is not None and readable > len(not_written):
        console.print(f"annotated images in {args.annotate}", markup=False)
    if readable == 0:
        raise InputError("none of the given files is a readable image")
    if not_written:
        raise InputError(
            f"could not write {len(not_written)} annotated image(s), the first {not_written[0]}"
        )
    return 0


def _expand_folders(paths: list[Path], annotate: Path | None) -> list[Path]:
    """Each folder replaced by the images under it (by suffix, sorted), less those in the
    ``--annotate`` folder (a rerun would classify its own copies); files stay as given, so an
    unreadable one is still reported. A folder without images is an error before any work."""
    from emotrace.data.imageio import is_image_name
    from emotrace.errors import InputError

    images: list[Path] = []
    for path in paths:
        if not path.is_dir():
            images.append(path)
            continue
        found = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and is_image_name(p) and not _inside(p, annotate)
        )
        if not found:
            raise InputError(f"{path}: a folder with no image files (.jpg, .png, ...)")
        images.extend(found)
    return images


def _inside(path: Path, folder: Path | None) -> bool:
    return folder is not None and path.resolve().is_relative_to(folder.resolve())


def _make_annotate_folder(folder: Path) -> None:
    """Create ``--annotate``'s folder before any image is read: a bad folder is one line."""
    from emotrace.errors import InputError

    if folder.exists() and not folder.is_dir():
        raise InputError(f"--annotate {folder}: exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"--annotate {folder}: cannot create the folder ({exc.strerror or exc})"
        ) from None


def _annotated_name(path: Path, used: set[str]) -> str:
    """``NAME_emotrace.png``, numbered when two inputs share a name (a/x.jpg and b/x.jpg)."""
    name, n = f"{path.stem}_emotrace.png", 1
    while name in used:
        n += 1
        name = f"{path.stem}_{n}_emotrace.png"
    used.add(name)
    return name


def _print_table(results: list[dict[str, Any]], classes: tuple[str, ...]) -> None:
    from rich.table import Table

    table = Table("file", "face (x, y, w, h)", "label", "confidence", "probabilities")
    for result in results:
        name = Path(result["file"]).name
        if result["error"]:
            table.add_row(name, "-", "unreadable", "-", "")
            continue
        if not result["faces"]:
            table.add_row(name, "-", "no face found", "-", "")
            continue
        for face in result["faces"]:
            box = face["box"]
            top = sorted(face["probabilities"].items(), key=lambda kv: -kv[1])[:3]
            table.add_row(
                name,
                f"{box['x']}, {box['y']}, {box['w']}, {box['h']}",
                face["label"],
                f"{face['confidence']:.0%}",
                "  ".join(f"{k} {v:.0%}" for k, v in top),
            )
    del classes
    console.print(table)
