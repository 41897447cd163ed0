"""The prepared-dataset cache: prepare -> save -> load, content keys, corrupted files."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import face_like, make_class_folders, write_image
from emotrace.data import load, prepare, save
from emotrace.data.cache import PreparedDataset, dataset_key, read_meta
from emotrace.data.readers import read_class_folders
from emotrace.errors import CacheError, DatasetError
from emotrace.preprocessing import Preprocess

COUNTS = {"angry": 2, "happy": 3, "sad": 2}


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """train/valid x angry/happy/sad, gray 48x48 PNGs."""
    return make_class_folders(tmp_path / "ds", COUNTS)


def key_of(root: Path, settings: Preprocess | None = None) -> str:
    return dataset_key(read_class_folders(root), settings or Preprocess())


def assert_same(a: PreparedDataset, b: PreparedDataset) -> None:
    assert a.classes == b.classes
    assert a.preprocess == b.preprocess
    assert a.key == b.key
    assert a.source == b.source
    assert a.skipped == b.skipped
    assert a.no_face == b.no_face
    assert list(a.splits) == list(b.splits)
    for name in a.splits:
        x, y = a.splits[name], b.splits[name]
        assert x.images.dtype == y.images.dtype == np.uint8
        assert x.labels.dtype == y.labels.dtype == np.int64
        assert np.array_equal(x.images, y.images)
        assert np.array_equal(x.labels, y.labels)


# --- round trip -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings", [Preprocess(), Preprocess(size=32, gray=False)], ids=["gray48", "colour32"]
)
def test_round_trip_gives_identical_dataset(
    dataset: Path, tmp_path: Path, settings: Preprocess
) -> None:
    prepared = prepare(read_class_folders(dataset), settings)
    path = save(prepared, tmp_path / "cache" / "fer")
    assert path == tmp_path / "cache" / "fer.npz"
    assert not list(path.parent.glob("*.tmp"))  # written atomically, nothing left behind
    loaded = load(path)
    assert_same(prepared, loaded)
    assert loaded.key == key_of(dataset, settings)
    assert read_meta(path)["key"] == prepared.key


def test_prepared_arrays_follow_the_index(dataset: Path) -> None:
    prepared = prepare(read_class_folders(dataset), Preprocess())
    assert prepared.classes == ["angry", "happy", "sad"]
    assert list(prepared.splits) == ["train", "valid"]
    train = prepared.split("train")
    assert train.images.shape == (7, 48, 48, 1)
    assert np.bincount(train.labels).tolist() == [2, 3, 2]
    # The images are the files' pixels (48x48 gray sources need no resizing).
    assert np.array_equal(train.images[0, :, :, 0], face_like(0))


def test_gray_and_colour_shapes(dataset: Path) -> None:
    write_image(dataset / "train" / "happy" / "colour.png", face_like(50, 64, color=True))
    index = read_class_folders(dataset)
    gray = prepare(index, Preprocess(size=32)).split("train").images
    colour = prepare(index, Preprocess(size=32, gray=False)).split("train").images
    assert gray.shape == (8, 32, 32, 1)
    assert colour.shape == (8, 32, 32, 3)
    assert gray.dtype == colour.dtype == np.uint8
    # Gray sources give three equal channels; the colour source keeps distinct ones.
    labels = prepare(index, Preprocess(size=32, gray=False)).split("train").labels
    distinct = [not np.array_equal(img[..., 0], img[..., 1]) for img in colour]
    assert sum(distinct) == 1
    assert labels[distinct.index(True)] == 1  # happy


def test_face_crop_without_faces_keeps_whole_image_and_counts(dataset: Path) -> None:
    index = read_class_folders(dataset)
    whole = prepare(index, Preprocess())
    cropped = prepare(index, Preprocess(face_crop=True), workers=4)
    assert cropped.no_face == len(index.entries) == 14
    assert whole.no_face == 0
    for name in whole.splits:
        assert np.array_equal(cropped.split(name).images, whole.split(name).images)


def test_unreadable_images_are_skipped_and_listed(dataset: Path, tmp_path: Path) -> None:
    broken = dataset / "train" / "happy" / "happy_1.png"
    broken.write_bytes(broken.read_bytes()[:50])
    prepared = prepare(read_class_folders(dataset), Preprocess())
    assert [s.source for s in prepared.skipped] == [str(broken)]
    assert len(prepared.split("train").labels) == 6
    assert load(save(prepared, tmp_path / "c.npz")).skipped == prepared.skipped


def test_source_is_recorded_absolute_so_the_cache_works_from_anywhere(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(dataset.parent)
    prepared = prepare(read_class_folders(Path(dataset.name)), Preprocess())
    path = save(prepared, tmp_path / "c.npz")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    source = Path(load(path).source)
    assert source.is_absolute()
    assert source == dataset.resolve()
    # The recorded path leads to the data: re-reading it gives the same dataset.
    assert_same(prepare(read_class_folders(source), prepared.preprocess), prepared)


def test_only_chosen_splits_are_prepared(dataset: Path) -> None:
    prepared = prepare(read_class_folders(dataset), Preprocess(), splits=["validation"])
    assert list(prepared.splits) == ["valid"]


def test_missing_split_is_dataset_error(dataset: Path) -> None:
    prepared = prepare(read_class_folders(dataset), Preprocess())
    assert prepared.split("Validation") is prepared.splits["valid"]
    with pytest.raises(DatasetError, match=r"no split 'test'.*train, valid"):
        prepared.split("test")


# --- content key ------------------------------------------------------------------------------


def test_key_is_stable_when_nothing_that_matters_changes(dataset: Path, tmp_path: Path) -> None:
    key = key_of(dataset)
    assert key_of(dataset) == key
    image = dataset / "train" / "happy" / "happy_0.png"
    os.utime(image, (1_000_000, 1_000_000))  # timestamps are not content
    (dataset / "train" / "happy" / "notes.txt").write_text("not an image")
    assert key_of(dataset) == key
    copy = shutil.copytree(dataset, tmp_path / "elsewhere")  # the same files in another folder
    assert key_of(copy) == key


def test_key_changes_when_image_bytes_change(dataset: Path) -> None:
    key = key_of(dataset)
    write_image(dataset / "valid" / "sad" / "sad_1.png", face_like(999))
    assert key_of(dataset) != key


@pytest.mark.parametrize(
    ("source", "target"),
    [("train/happy", "train/sad"), ("train/happy", "valid/happy")],
    ids=["label", "split"],
)
def test_key_changes_when_label_or_split_changes(dataset: Path, source: str, target: str) -> None:
    key = key_of(dataset)
    (dataset / source / "happy_0.png").rename(dataset / target / "moved.png")
    assert key_of(dataset) != key


@pytest.mark.parametrize(
    "settings",
    [
        Preprocess(size=32),
        Preprocess(gray=False),
        Preprocess(face_crop=True),
        Preprocess(face_crop=True, margin=0.2),
    ],
    ids=["size", "gray", "face_crop", "margin"],
)
def test_key_changes_with_preprocessing(dataset: Path, settings: Preprocess) -> None:
    assert key_of(dataset, settings) != key_of(dataset, Preprocess())
    assert key_of(dataset, settings) == key_of(dataset, settings)


# --- broken cache files -----------------------------------------------------------------------


@pytest.fixture
def cache_bytes(dataset: Path, tmp_path: Path) -> bytes:
    return save(
        prepare(read_class_folders(dataset), Preprocess()), tmp_path / "ok.npz"
    ).read_bytes()


@pytest.mark.parametrize("keep", [0.0, 0.001, 0.3, 0.5, 0.9, 0.999])
def test_truncated_cache_raises_cache_error(
    cache_bytes: bytes, tmp_path: Path, keep: float
) -> None:
    path = tmp_path / "cut.npz"
    path.write_bytes(cache_bytes[: int(len(cache_bytes) * keep)])
    with pytest.raises(CacheError, match=r"cut\.npz"):
        load(path)


@pytest.mark.parametrize("where", [0.2, 0.5, 0.8])
def test_corrupted_cache_raises_cache_error(
    cache_bytes: bytes, tmp_path: Path, where: float
) -> None:
    data = bytearray(cache_bytes)
    start = int(len(data) * where)
    data[start : start + 64] = np.random.default_rng(0).integers(0, 256, 64, np.uint8).tobytes()
    path = tmp_path / "bad.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(CacheError, match=r"bad\.npz"):
        load(path)


def test_foreign_files_raise_cache_error(tmp_path: Path) -> None:
    random_file = tmp_path / "random.npz"
    random_file.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, np.uint8).tobytes())
    npy = tmp_path / "array.npy"
    np.save(npy, np.zeros(3))
    no_meta = tmp_path / "no_meta.npz"
    np.savez(no_meta, x_train=np.zeros(3))
    list_meta = tmp_path / "list_meta.npz"
    np.savez(list_meta, meta=np.array("[1, 2]"))
    other_format = tmp_path / "other.npz"
    np.savez(other_format, meta=np.array('{"emotrace_cache": 99}'))
    incomplete = tmp_path / "incomplete.npz"
    np.savez(incomplete, meta=np.array('{"emotrace_cache": 1, "splits": ["train"]}'))
    for path in (random_file, npy, no_meta, list_meta, other_format, incomplete):
        with pytest.raises(CacheError, match=re.escape(path.name)):
            load(path)


def test_missing_cache_file_raises_cache_error(tmp_path: Path) -> None:
    with pytest.raises(CacheError, match="no such cache file"):
        load(tmp_path / "absent.npz")
    with pytest.raises(CacheError):
        read_meta(tmp_path)  # a folder
