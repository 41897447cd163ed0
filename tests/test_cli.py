"""The command line as a user runs it: real files, exit codes and messages.

Most tests call the CLI in this process (``run_emotrace_in_process``: the same exit code, stdout
and stderr, without an interpreter start each); the first runs ``python -m emotrace`` for real.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_one_line_error, make_class_folders, run_emotrace, write_image
from conftest import run_emotrace_in_process as emotrace


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def test_help_lists_every_command_with_a_description() -> None:
    result = run_emotrace("--help")  # a real `python -m emotrace`
    assert result.returncode == 0
    for command in ("data", "models", "train", "evaluate", "compare", "demo"):
        assert f"    {command} " in result.stdout
    data_help = emotrace("data", "--help").stdout
    for action in ("prepare", "inspect", "augment"):
        assert action in data_help


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        ([], ["required: COMMAND", "(see emotrace --help)"]),
        (["sessions", "bogus"], ["invalid choice: 'bogus'", "(see emotrace sessions --help)"]),
        (["predict"], ["required: IMAGE", "(see emotrace predict --help)"]),
        (["analyze", "clip.mp4", "--every", "0"], ["--every: must be at least 1, got 0"]),
        (["train", "--no-such-flag"], ["unrecognized arguments: --no-such-flag", "train --help"]),
        (
            ["sessions", "mark", "s1", "--label", "x"],
            ["--label", "(see emotrace sessions mark --help)"],
        ),
    ],
    ids=[
        "no-command",
        "unknown-action",
        "missing-argument",
        "bad-number",
        "unknown-flag",
        "unknown-flag-of-an-action",
    ],
)
def test_usage_mistakes_are_one_line_errors(args: list[str], fragments: list[str]) -> None:
    # Like every other error: one line and exit 2, not argparse's usage block.
    assert_one_line_error(emotrace(*args), *fragments)


def test_an_output_path_the_system_refuses_is_a_one_line_error(tmp_path: Path) -> None:
    dataset = make_class_folders(tmp_path / "ds", {"anger": 2, "happy": 2})
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = emotrace("data", "prepare", dataset, "-o", blocker / "cache.npz", cwd=tmp_path)
    assert_one_line_error(result, str(blocker))
    assert blocker.read_text() == "not a folder"


def test_prepare_inspect_augment_round_trip(tmp_path: Path) -> None:
    dataset = make_class_folders(tmp_path / "ds", {"anger": 3, "Happy": 4}, splits=("train", "val"))
    before = snapshot(dataset)

    cache = tmp_path / "cache.npz"
    first = emotrace("data", "prepare", dataset, "-o", cache, "--size", "32", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "train:" in first.stdout.replace(" ", "") and cache.is_file()
    with np.load(cache) as data:
        assert data["x_train"].shape == (7, 32, 32, 1)
        assert data["x_valid"].shape == (7, 32, 32, 1)
    again = emotrace("data", "prepare", dataset, "-o", cache, "--size", "32", cwd=tmp_path)
    assert "up to date" in again.stdout

    eda = emotrace("data", "inspect", dataset, "-o", tmp_path / "eda", cwd=tmp_path)
    assert eda.returncode == 0, eda.stderr
    summary = json.loads((tmp_path / "eda" / "summary.json").read_text())
    assert summary["splits"]["train"] == {"angry": 3, "happy": 4}
    assert (tmp_path / "eda" / "report.html").is_file()

    aug = emotrace(
        "data", "augment", dataset, "-o", tmp_path / "aug", "--copies", "2", "--split", "train",
        "--set", "rotation=15", cwd=tmp_path,
    )  # fmt: skip
    assert aug.returncode == 0, aug.stderr
    assert len(list((tmp_path / "aug").rglob("*.png"))) == 14

    assert snapshot(dataset) == before, "a command wrote into the dataset folder"


def _empty_class(root: Path) -> Path:
    make_class_folders(root, {"happy": 2}, splits=None)
    (root / "sad").mkdir()
    return root


def _unknown_class(root: Path) -> Path:
    return make_class_folders(root, {"happy": 2, "bored": 2}, splits=None)


def _bad_csv_row(root: Path) -> Path:
    root.mkdir()
    good = " ".join(["0"] * 2304)
    short = " ".join(["0"] * 2303)
    csv = root / "fer2013.csv"
    csv.write_text(f"emotion,pixels,Usage\n3,{good},Training\n4,{short},Training\n")
    return csv


def _only_train(root: Path) -> Path:
    return make_class_folders(root, {"happy": 2}, splits=("train",))


@pytest.mark.parametrize(
    ("build", "extra", "fragments"),
    [
        (_empty_class, [], ["sad", "empty class folder"]),
        (_unknown_class, [], ["bored", "unknown emotion class"]),
        (_bad_csv_row, [], ["row 3", "2303 pixels", "2304"]),
        (_only_train, ["--split", "test"], ["no split 'test'", "train"]),
        (lambda root: root / "missing", [], ["missing"]),
        (_only_train, ["--format", "parquet"], ["parquet"]),
    ],
)
def test_bad_datasets_give_one_line_and_exit_2(
    tmp_path: Path, build: object, extra: list[str], fragments: list[str]
) -> None:
    dataset = build(tmp_path / "ds")  # type: ignore[operator]
    result = emotrace("data", "prepare", dataset, "-o", tmp_path / "c.npz", *extra, cwd=tmp_path)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "c.npz").exists()


def test_unreadable_images_are_skipped_and_reported(tmp_path: Path) -> None:
    dataset = make_class_folders(tmp_path / "ds", {"happy": 3, "sad": 2}, splits=None)
    (dataset / "happy" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    write_image(dataset / "sad" / "ok.png", np.zeros((10, 10), np.uint8))
    result = emotrace("data", "prepare", dataset, "-o", tmp_path / "c.npz", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "skipped 1 file" in result.stdout and "broken.jpg" in result.stdout


def test_augment_refuses_to_write_into_the_dataset(tmp_path: Path) -> None:
    dataset = make_class_folders(tmp_path / "ds", {"happy": 2}, splits=None)
    before = snapshot(dataset)
    result = emotrace("data", "augment", dataset, "-o", dataset / "aug", cwd=tmp_path)
    assert_one_line_error(result)
    assert snapshot(dataset) == before


def test_prepare_evaluate_and_train_refuse_to_write_into_the_dataset(tmp_path: Path) -> None:
    # Each wrote there: a run or evaluation folder then read as an unknown class.
    dataset = make_class_folders(tmp_path / "ds", {"happy": 2, "sad": 2})
    before = snapshot(dataset)
    config = tmp_path / "c.yaml"
    config.write_text("model: emonet\npreprocess: {size: 32, gray: true}\n")
    for args in (
        ("data", "prepare", dataset, "-o", dataset / "train" / "c.npz"),
        ("evaluate", "--model", "default", "--data", dataset, "-o", dataset / "valid" / "ev"),
        ("evaluate", "--model", "default", "--data", dataset, "-o", dataset),
        ("train", "--config", config, "--data", dataset, "--out", dataset / "run", "epochs=1"),
    ):
        assert_one_line_error(emotrace(*args, cwd=tmp_path), "inside the dataset folder")
    assert snapshot(dataset) == before


def test_a_cache_of_one_split_is_not_up_to_date_for_all(tmp_path: Path) -> None:
    # It was: the next full prepare said "up to date" and training then found no valid split.
    dataset = make_class_folders(tmp_path / "ds", {"happy": 2, "sad": 2})
    cache = tmp_path / "c.npz"
    partial = emotrace("data", "prepare", dataset, "-o", cache, "--split", "train", cwd=tmp_path)
    assert partial.returncode == 0, partial.stderr
    full = emotrace("data", "prepare", dataset, "-o", cache, cwd=tmp_path)
    assert full.returncode == 0, full.stderr
    assert "up to date" not in full.stdout
    with np.load(cache) as data:
        assert {"x_train", "x_valid"} <= set(data.files)


def test_inspect_with_negative_samples_is_a_usage_error(tmp_path: Path) -> None:
    dataset = make_class_folders(tmp_path / "ds", {"happy": 2}, splits=None)
    result = emotrace("data", "inspect", dataset, "-o", tmp_path / "eda", "--samples", "-1")
    assert_one_line_error(result, "--samples", "0 or more")  # was a ValueError traceback


def test_prepare_does_not_overwrite_a_file_that_is_not_its_cache(tmp_path: Path) -> None:
    dataset = make_class_folders(tmp_path / "ds", {"happy": 2, "sad": 2}, splits=None)
    mine = tmp_path / "mine.npz"
    np.savez(mine, x=np.arange(3))  # someone's own arrays (seed project 2 kept data as .npz)
    before = mine.read_bytes()
    result = emotrace("data", "prepare", dataset, "-o", mine, cwd=tmp_path)
    assert_one_line_error(result, "mine.npz", "not an emotrace cache")
    assert mine.read_bytes() == before


def test_bad_training_config_lists_valid_keys(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("model: emonet\nepochz: 3\n")
    result = emotrace("train", "--config", config, "--data", tmp_path, cwd=tmp_path)
    assert_one_line_error(result, "epochz", "valid keys", "epochs")
    unknown_model = emotrace(
        "train", "--config", config, "--data", tmp_path, "model=resnet9000", cwd=tmp_path
    )
    assert_one_line_error(unknown_model, "epochz")


@pytest.mark.slow  # profiles three models
def test_models_lists_the_matching_architectures_with_their_cost() -> None:
    from emotrace.models import list_models
    from emotrace.models.profile import profile

    result = emotrace("models", "mobilevit*")
    assert result.returncode == 0, result.stderr
    assert "MMACs" in result.stdout
    rows = [line for line in result.stdout.splitlines() if "mobilevit" in line]
    assert [row.split("│")[1].strip() for row in rows] == list_models("mobilevit*")
    for row, name in zip(rows, list_models("mobilevit*"), strict=True):
        params, mmacs = profile(name)
        assert f"{mmacs:.1f}" in row and f"{params / 1e6:.2f}" in row
    assert "emonet" not in result.stdout


def test_models_with_a_pattern_that_matches_nothing_says_what_exists() -> None:
    assert_one_line_error(emotrace("models", "resnet*"), "'resnet*'", "mobilenet_v2")
