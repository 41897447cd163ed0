"""Batched augmentation (BatchAugment, AugmentConfig) and writing augmented copies to disk."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import face_like, make_class_folders, write_image
from emotrace.data.augment import AugmentConfig, BatchAugment, _affine_grid, _theta
from emotrace.data.augment_export import write_augmented
from emotrace.data.readers import read_class_folders
from emotrace.errors import ConfigError, DatasetError

SHAPES = [(6, 1, 48, 48), (5, 3, 64, 80)]
#: Everything on and strong, so every code path runs in one call.
STRONG = AugmentConfig(
    hflip=0.5,
    vflip=0.5,
    rotation=30,
    zoom=0.3,
    translate=0.3,
    brightness=0.8,
    contrast=0.8,
    erasing=1.0,
    erasing_area=0.5,
)


def only(**values: float) -> AugmentConfig:
    """A config with every transform off except ``values``."""
    return AugmentConfig(**{**AugmentConfig.none().to_dict(), **values})


def batch(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


# --- BatchAugment ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_same_seed_is_bit_identical_and_different_seeds_differ(shape: tuple[int, ...]) -> None:
    x = batch(shape)
    first = BatchAugment(STRONG, seed=7)(x)
    assert torch.equal(first, BatchAugment(STRONG, seed=7)(x))
    assert not torch.equal(first, BatchAugment(STRONG, seed=8)(x))


def test_default_config_is_deterministic_and_unseeded_runs_differ() -> None:
    x = batch((8, 1, 48, 48))
    assert torch.equal(BatchAugment(seed=1)(x), BatchAugment(seed=1)(x))
    assert not torch.equal(BatchAugment()(x), BatchAugment()(x))


@pytest.mark.parametrize("shape", SHAPES)
def test_identity_config_leaves_batch_unchanged(shape: tuple[int, ...]) -> None:
    x = batch(shape)
    assert torch.equal(BatchAugment(AugmentConfig.none(), seed=0)(x), x)


@pytest.mark.parametrize("shape", SHAPES)
def test_certain_flips_are_exact_mirrors(shape: tuple[int, ...]) -> None:
    x = batch(shape)
    assert torch.equal(BatchAugment(only(hflip=1.0), seed=0)(x), torch.flip(x, dims=[3]))
    assert torch.equal(BatchAugment(only(vflip=1.0), seed=0)(x), torch.flip(x, dims=[2]))


def test_flip_probability_flips_some_images_and_keeps_others() -> None:
    x = batch((64, 1, 16, 16))
    out = BatchAugment(only(hflip=0.5), seed=0)(x)
    flipped = [torch.equal(o, i.flip(2)) for o, i in zip(out, x, strict=True)]
    kept = [torch.equal(o, i) for o, i in zip(out, x, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 10 < sum(flipped) < 54


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("fill", ["random", "zeros", "ones"])
def test_values_stay_in_unit_range_without_nan(shape: tuple[int, ...], fill: str) -> None:
    x = {"random": batch(shape), "zeros": torch.zeros(shape), "ones": torch.ones(shape)}[fill]
    for seed in range(3):
        out = BatchAugment(STRONG, seed=seed)(x)
        assert not out.isnan().any()
        assert out.min() >= 0.0
        assert out.max() <= 1.0


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("config", [AugmentConfig(), STRONG, only(erasing=1.0, erasing_area=0.3)])
def test_shape_and_dtype_preserved(
    shape: tuple[int, ...], dtype: torch.dtype, config: AugmentConfig
) -> None:
    out = BatchAugment(config, seed=0)(batch(shape).to(dtype))
    assert out.shape == shape
    assert out.dtype == dtype


def test_input_batch_is_not_modified() -> None:
    x = batch((4, 1, 32, 32))
    before = x.clone()
    for config in (STRONG, only(erasing=1.0, erasing_area=0.5), only(hflip=1.0)):
        BatchAugment(config, seed=0)(x)
        assert torch.equal(x, before)


def test_erasing_replaces_one_rectangle_per_image() -> None:
    x = torch.full((16, 1, 40, 60), 2.0)  # out of the noise's [0, 1) range: erased pixels show
    out = BatchAugment(only(erasing=1.0, erasing_area=0.2), seed=0)(x)
    for image in out[:, 0]:
        rows, cols = (image != 2.0).nonzero(as_tuple=True)
        assert rows.numel() > 0
        height = int(rows.max() - rows.min()) + 1
        width = int(cols.max() - cols.min()) + 1
        assert rows.numel() == height * width  # a filled rectangle
        assert height * width <= 0.2 * 40 * 60 + 40 + 60  # area bound, rounding to whole pixels


def test_geometric_transforms_keep_a_constant_image_constant() -> None:
    # Border padding: no black corners after rotation, zoom out or shift.
    x = torch.full((8, 3, 30, 50), 0.6)
    out = BatchAugment(only(rotation=45, zoom=0.5, translate=0.5), seed=0)(x)
    assert torch.allclose(out, x, atol=1e-6)


def test_fast_grid_matches_affine_grid() -> None:
    theta = torch.randn(4, 2, 3, generator=torch.Generator().manual_seed(0))
    for height, width in [(48, 48), (64, 80), (7, 13)]:
        expected = F.affine_grid(theta, [4, 1, height, width], align_corners=False)
        assert torch.allclose(_affine_grid(theta, height, width), expected, atol=1e-5)


def test_rotation_is_rigid_on_non_square_images() -> None:
    # A horizontal bar 20 px long, rotated 90 degrees, must become a vertical bar 20 px long
    # (rotating in normalised coordinates would stretch it by the aspect ratio).
    height, width = 40, 80
    x = torch.zeros(1, 1, height, width)
    x[0, 0, 19:21, 30:50] = 1.0
    one, zero = torch.ones(1), torch.zeros(1)
    theta = _theta(one * math.pi / 2, one, zero, zero, one, one, height / width)
    out = F.grid_sample(x, _affine_grid(theta, height, width), align_corners=False)
    rows, cols = (out[0, 0] > 0.5).nonzero(as_tuple=True)
    assert (int(rows.min()), int(rows.max())) == (10, 29)
    assert (int(cols.min()), int(cols.max())) == (39, 40)


def test_rejects_wrong_rank_and_integer_batches() -> None:
    augment = BatchAugment(seed=0)
    with pytest.raises(ValueError, match="B, C, H, W"):
        augment(torch.rand(1, 48, 48))
    with pytest.raises(ValueError, match="float"):
        augment(torch.zeros(2, 1, 48, 48, dtype=torch.uint8))


def test_empty_batch() -> None:
    assert BatchAugment(STRONG, seed=0)(torch.rand(0, 1, 48, 48)).shape == (0, 1, 48, 48)


# --- AugmentConfig ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"hflip": 1.5}, "hflip"),
        ({"vflip": -0.1}, "vflip"),
        ({"erasing": 2}, "erasing"),
        ({"erasing_area": 1.5}, "erasing_area"),
        ({"rotation": -1}, "rotation"),
        ({"rotation": 200}, "rotation"),
        ({"zoom": 1.0}, "zoom"),
        ({"zoom": -0.1}, "zoom"),
        ({"translate": 1.5}, "translate"),
        ({"brightness": -0.2}, "brightness"),
        ({"contrast": 1.5}, "contrast"),
        ({"rotation": math.nan}, "rotation"),
        ({"translate": math.inf}, "translate"),
        ({"hflip": math.nan}, "hflip"),
    ],
)
def test_invalid_values_raise_config_error(values: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AugmentConfig(**values)
    with pytest.raises(ConfigError, match=message):
        AugmentConfig.from_dict(values)


def test_from_dict_unknown_keys_list_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        AugmentConfig.from_dict({"rotate": 10, "hflip": 0.5})
    message = str(info.value)
    assert "rotate" in message
    for name in AugmentConfig().to_dict():
        assert name in message


@pytest.mark.parametrize("value", ["ten", None, [1, 2]])
def test_from_dict_non_numbers_raise_config_error(value: Any) -> None:
    with pytest.raises(ConfigError, match="rotation"):
        AugmentConfig.from_dict({"rotation": value})
    with pytest.raises(ConfigError, match="augment must be a mapping"):
        AugmentConfig.from_dict(value)


def test_from_dict_round_trip_and_string_numbers() -> None:
    config = AugmentConfig(rotation=15, hflip=0.0)
    assert AugmentConfig.from_dict(config.to_dict()) == config
    assert AugmentConfig.from_dict({"rotation": "12.5"}).rotation == 12.5
    assert AugmentConfig.from_dict({}) == AugmentConfig()


# --- write_augmented --------------------------------------------------------------------------


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """train/valid x happy/sad gray 48x48, plus a colour 40x64 image and a gray 30x50 image."""
    root = make_class_folders(tmp_path / "ds", {"happy": 2, "sad": 3})
    write_image(root / "train" / "happy" / "colour.png", face_like(100, 64, color=True)[:40])
    write_image(root / "valid" / "sad" / "wide.jpg", face_like(101, 50)[:30])
    return root


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*.png")}


def test_write_augmented_writes_every_copy_keeping_size_and_mode(
    dataset: Path, tmp_path: Path
) -> None:
    index = read_class_folders(dataset)
    calls: list[int] = []
    n = write_augmented(index, tmp_path / "out", copies=3, seed=0, progress=calls.append)
    assert n == len(index.entries) * 3 == 36
    assert sum(calls) == len(index.entries)
    files = tree(tmp_path / "out")
    assert len(files) == n
    for entry in index.entries:
        source = cv2.imread(entry.source, cv2.IMREAD_UNCHANGED)
        for k in range(3):
            path = (
                tmp_path
                / "out"
                / entry.split
                / entry.label
                / f"{Path(entry.source).stem}_aug{k}.png"
            )
            written = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            assert written.shape == source.shape
            assert written.dtype == np.uint8
    assert sorted({p.split("/")[0] for p in files}) == ["train", "valid"]


def test_write_augmented_copies_differ_and_identity_config_copies_pixels(
    dataset: Path, tmp_path: Path
) -> None:
    index = read_class_folders(dataset)
    write_augmented(index, tmp_path / "aug", copies=2, config=STRONG, split="train")
    folder = tmp_path / "aug" / "train" / "happy"
    first, second = (cv2.imread(str(folder / f"colour_aug{k}.png")) for k in range(2))
    assert not np.array_equal(first, second)

    write_augmented(index, tmp_path / "same", copies=1, config=AugmentConfig.none())
    for entry in index.entries:
        written = (
            tmp_path / "same" / entry.split / entry.label / f"{Path(entry.source).stem}_aug0.png"
        )
        original = cv2.imread(entry.source, cv2.IMREAD_UNCHANGED)
        assert np.array_equal(cv2.imread(str(written), cv2.IMREAD_UNCHANGED), original)


def test_write_augmented_is_deterministic_per_seed(dataset: Path, tmp_path: Path) -> None:
    index = read_class_folders(dataset)
    write_augmented(index, tmp_path / "a", copies=2, seed=3)
    write_augmented(index, tmp_path / "b", copies=2, seed=3)
    write_augmented(index, tmp_path / "c", copies=2, seed=4)
    write_augmented(index, tmp_path / "d", copies=2, seed=3, split="valid")
    a, b, c, d = (tree(tmp_path / name) for name in "abcd")
    assert a == b
    assert a.keys() == c.keys()
    assert a != c
    # One image's output does not depend on which other images are written.
    assert d == {k: v for k, v in a.items() if k.startswith("valid/")}


@pytest.mark.parametrize("inside", [".", "augmented", "train/happy/more"])
def test_write_augmented_refuses_out_dir_inside_dataset(dataset: Path, inside: str) -> None:
    index = read_class_folders(dataset)
    before = sorted(dataset.rglob("*"))
    with pytest.raises(DatasetError, match="dataset"):
        write_augmented(index, dataset / inside, copies=1)
    assert sorted(dataset.rglob("*")) == before


def test_write_augmented_refuses_when_output_would_land_in_dataset(tmp_path: Path) -> None:
    # A dataset without split folders is split "all": out_dir/all/<class> would be the dataset.
    root = make_class_folders(tmp_path / "parent" / "all", {"happy": 1}, splits=None)
    with pytest.raises(DatasetError, match="dataset"):
        write_augmented(read_class_folders(root), tmp_path / "parent", copies=1)
    assert sorted(p.name for p in root.rglob("*.png")) == ["happy_0.png"]


@pytest.mark.parametrize("copies", [0, -1])
def test_write_augmented_refuses_fewer_than_one_copy(
    dataset: Path, tmp_path: Path, copies: int
) -> None:
    with pytest.raises(DatasetError, match="copies"):
        write_augmented(read_class_folders(dataset), tmp_path / "out", copies=copies)
    assert not (tmp_path / "out").exists()


def test_write_augmented_missing_split_is_dataset_error(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="test"):
        write_augmented(read_class_folders(dataset), tmp_path / "out", copies=1, split="test")


def test_write_augmented_skips_truncated_image(dataset: Path, tmp_path: Path) -> None:
    broken = dataset / "train" / "sad" / "sad_0.png"
    broken.write_bytes(broken.read_bytes()[:40])
    index = read_class_folders(dataset)
    n = write_augmented(index, tmp_path / "out", copies=2)
    assert n == (len(index.entries) - 1) * 2
    assert [s.source for s in index.skipped] == [str(broken)]
    assert not (tmp_path / "out" / "train" / "sad" / "sad_0_aug0.png").exists()
    assert (tmp_path / "out" / "train" / "sad" / "sad_1_aug0.png").exists()


def test_write_augmented_keeps_images_with_the_same_stem_apart(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_image(root / "happy" / "a.png", face_like(1))
    write_image(root / "happy" / "a.jpg", face_like(2))
    n = write_augmented(read_class_folders(root), tmp_path / "out", copies=1)
    assert n == 2
    assert sorted(tree(tmp_path / "out")) == ["all/happy/a_2_aug0.png", "all/happy/a_aug0.png"]
