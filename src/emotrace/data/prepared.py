"""One entry point from "a dataset path or a cache file" to arrays in memory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from emotrace.data.cache import PreparedDataset, dataset_key, default_cache_dir, load, prepare, save
from emotrace.errors import CacheError, DatasetError
from emotrace.preprocessing import Preprocess

ProgressFactory = Callable[[str, int], Callable[[int], None]]


def load_prepared(
    source: Path | str,
    settings: Preprocess,
    format: str | None = None,
    cache_dir: Path | None = None,
    progress: ProgressFactory | None = None,
) -> PreparedDataset:
    """Arrays for ``source``: a ``.npz`` cache, or a dataset prepared once and cached by content.

    A dataset folder/CSV is hashed (file bytes + labels + ``settings``); the cache
    ``cache_dir/<key>.npz`` is reused when present, else written. A ``.npz`` whose preprocessing
    differs from ``settings`` is an error rather than a silent mismatch.
    """
    path = Path(source)
    if path.suffix == ".npz":
        data = load(path)
        if data.preprocess != settings:
            raise CacheError(
                f"{path}: prepared with {data.preprocess.to_dict()} but {settings.to_dict()} "
                "is needed; run emotrace data prepare again with those settings"
            )
        return data
    if not path.exists():
        raise DatasetError(f"{path}: no such dataset")
    from emotrace.data.readers import open_dataset

    index = open_dataset(path, format)
    key = dataset_key(index, settings)
    cached = (cache_dir or default_cache_dir()) / "datasets" / f"{key}.npz"
    if cached.is_file():
        try:
            return load(cached)
        except CacheError:
            cached.unlink(missing_ok=True)  # a broken cache is rebuilt, never trusted
    tick = progress(f"preparing {path.name}", len(index.entries)) if progress else None
    data = prepare(index, settings, progress=tick)
    save(data, cached)
    return data
