"""Write augmented copies of a dataset's images to a folder-per-class tree.

For inspecting what the training augmentation does, or for tools that want augmented files on
disk. Each image is augmented as a batch of its own ``copies`` duplicates, so images of any size
and colour mode keep their size and mode with no resizing. Nothing is ever written inside the
dataset's own folder.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from emotrace.data.augment import AugmentConfig, BatchAugment
from emotrace.data.types import DatasetIndex, Entry, Skipped
from emotrace.errors import DatasetError, UnreadableImageError


def write_augmented(
    index: DatasetIndex,
    out_dir: Path | str,
    copies: int,
    config: AugmentConfig | None = None,
    seed: int = 0,
    split: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write ``copies`` augmented versions of every image of ``index`` (or of one ``split``).

    Files go to ``out_dir/<split>/<class>/<stem>_aug<k>.png`` (``k`` from 0), lossless, with the
    source image's size and colour mode. Existing files of the same name are overwritten. Output
    depends only on ``seed``, ``config`` and each image (its content, split, class and path inside
    the dataset), so it is the same whichever split is chosen or which other images are present.
    Unreadable images are appended to ``index.skipped`` and left out. ``progress`` is called with 1
    after each source image. Returns the number of files written.

    Raises :class:`DatasetError` when ``copies`` < 1, when ``out_dir`` is inside the dataset's
    folder (or would put files there), or when ``split`` is not in the dataset.
    """
    if isinstance(copies, bool) or not isinstance(copies, int) or copies < 1:
        raise DatasetError(f"copies must be a whole number >= 1, got {copies!r}")
    out = Path(out_dir).expanduser().resolve()
    dataset_dir = _dataset_folder(index.root)
    if _is_within(out, dataset_dir):
        raise DatasetError(
            f"{out}: output folder is inside the dataset folder {dataset_dir}; choose a folder "
            "outside it (emotrace never writes into a dataset)"
        )
    entries = index.select(split)
    for folder in {out / e.split / e.label for e in entries}:
        # out_dir may be a parent of the dataset (e.g. out/train/<class> == the dataset itself).
        if _is_within(folder, dataset_dir):
            raise DatasetError(
                f"{folder}: writing there would put files inside the dataset folder {dataset_dir}"
            )
    augment = BatchAugment(config or AugmentConfig())
    names: set[Path] = set()
    written = 0
    for entry in entries:
        try:
            image = entry.load()
        except UnreadableImageError as exc:
            index.skipped.append(Skipped(entry.source, str(exc)))
        else:
            # A generator per image keeps each image's output independent of the others.
            augment.generator.manual_seed(_image_seed(seed, entry, dataset_dir))
            folder = out / entry.split / entry.label
            stem = _unique_stem(folder, Path(entry.source).stem, names)
            folder.mkdir(parents=True, exist_ok=True)
            for k, augmented in enumerate(_augment_copies(augment, image, copies)):
                _write_png(folder / f"{stem}_aug{k}.png", augmented)
                written += 1
        if progress is not None:
            progress(1)
    return written


def _augment_copies(augment: BatchAugment, image: np.ndarray, copies: int) -> list[np.ndarray]:
    """``copies`` augmented versions of a uint8 ``HxW`` or ``HxWx3`` image, same shape and type."""
    # torch.tensor copies: readers may hand out read-only arrays, which from_numpy warns about.
    chw = torch.tensor(image if image.ndim == 3 else image[:, :, None]).permute(2, 0, 1)
    batch = chw.unsqueeze(0).expand(copies, -1, -1, -1).float().div_(255.0)
    result = augment(batch).mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
    arrays = result.permute(0, 2, 3, 1).numpy()
    return [np.ascontiguousarray(a if image.ndim == 3 else a[:, :, 0]) for a in arrays]


def _write_png(path: Path, image: np.ndarray) -> None:
    # imencode + write_bytes: cv2.imwrite fails silently on some non-ASCII paths, and OSError
    # from write_bytes names the real cause (permissions, full disk).
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"{path}: could not encode PNG")
    path.write_bytes(encoded.tobytes())


def _image_seed(seed: int, entry: Entry, dataset_dir: Path) -> int:
    """A 63-bit seed from the run's seed and the image's identity inside the dataset."""
    source = Path(entry.source)
    try:
        name = source.resolve().relative_to(dataset_dir).as_posix()
    except ValueError:
        name = entry.source
    text = f"{seed}\0{entry.split}\0{entry.label}\0{name}"
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") >> 1


def _unique_stem(folder: Path, stem: str, taken: set[Path]) -> str:
    """``stem``, or ``stem_2``, ``stem_3``... when another image in ``folder`` had the same stem."""
    candidate, n = stem, 1
    while folder / candidate in taken:
        n += 1
        candidate = f"{stem}_{n}"
    taken.add(folder / candidate)
    return candidate


def _dataset_folder(root: Path) -> Path:
    """The folder that holds the dataset: ``root`` itself, or its parent for a single file (CSV)."""
    root = Path(root).expanduser().resolve()
    return root if root.is_dir() or not root.exists() else root.parent


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents
