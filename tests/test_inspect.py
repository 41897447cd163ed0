"""The dataset EDA report: counts, duplicates and leakage, skipped files, a self-contained page."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import cv2
import numpy as np
import pytest

from conftest import face_like, make_class_folders, write_image
from emotrace.data.inspect import LIST_LIMIT, inspect_dataset
from emotrace.data.readers.folder import read_class_folders
from emotrace.errors import DatasetError

SECTION_TITLES = (
    "Overview",
    "Class balance",
    "Image properties",
    "Brightness &amp; contrast",
    "Samples",
    "Duplicates &amp; leakage",
    "Skipped files",
)
ODD_NAME = "odd <b>&'name\".png"


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and mtime (ns)."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


@dataclass
class Inspected:
    root: Path
    out: Path
    summary: dict[str, Any]
    html: str
    before: dict[str, tuple[int, int]]
    after: dict[str, tuple[int, int]]
    progress_total: int
    entries: int


@pytest.fixture(scope="module")
def inspected(tmp_path_factory: pytest.TempPathFactory) -> Inspected:
    """A small train/valid dataset with planted duplicates, a leak and unreadable files."""
    root = make_class_folders(
        tmp_path_factory.mktemp("ds") / "faces", {"angry": 3, "happy": 5}, splits=("train", "valid")
    )
    # Same pixels, different file bytes (BMP vs PNG): duplicates are judged on decoded pixels.
    happy0 = cv2.imread(str(root / "train/happy/happy_0.png"), cv2.IMREAD_UNCHANGED)
    write_image(root / "train/happy/copy_of_happy_0.bmp", happy0)
    angry0 = cv2.imread(str(root / "train/angry/angry_0.png"), cv2.IMREAD_UNCHANGED)
    write_image(root / "valid/angry/leaked.png", angry0)
    ok, jpeg = cv2.imencode(".jpg", face_like(999))
    assert ok
    (root / "valid/happy/truncated.jpg").write_bytes(jpeg.tobytes()[: len(jpeg) // 2])
    (root / "train/angry/notes.jpg").write_text("not an image, just a name\n")
    (root / "train/happy/README.txt").write_text("class notes\n")
    write_image(root / "valid/happy" / ODD_NAME, face_like(1234))

    before = _snapshot(root)
    index = read_class_folders(root)
    ticks: list[int] = []
    out = tmp_path_factory.mktemp("report") / "eda"
    summary = inspect_dataset(index, out, samples_per_class=2, progress=ticks.append)
    return Inspected(
        root=root,
        out=out,
        summary=summary,
        html=(out / "report.html").read_text(encoding="utf-8"),
        before=before,
        after=_snapshot(root),
        progress_total=sum(ticks),
        entries=len(index.entries),
    )


def test_counts_per_split_count_only_decoded_images(inspected: Inspected) -> None:
    s = inspected.summary
    assert s["classes"] == ["angry", "happy"]
    # notes.jpg (train/angry) and truncated.jpg (valid/happy) are indexed but not counted.
    assert s["splits"] == {
        "train": {"angry": 3, "happy": 6},
        "valid": {"angry": 4, "happy": 6},
    }
    assert s["split_totals"] == {"train": 9, "valid": 10}
    assert s["total_images"] == 19
    assert s["imbalance"]["train"] == pytest.approx(2.0)
    assert s["imbalance"]["overall"] == pytest.approx(12 / 7, abs=1e-3)


def test_duplicates_within_and_across_splits(inspected: Inspected) -> None:
    s = inspected.summary
    assert s["duplicates"] == 2
    assert s["duplicate_group_total"] == 2
    groups = {frozenset(Path(m["source"]).name for m in g) for g in s["duplicate_groups"]}
    assert groups == {
        frozenset({"happy_0.png", "copy_of_happy_0.bmp"}),
        frozenset({"angry_0.png", "leaked.png"}),
    }
    assert s["cross_split_duplicates"] == 1
    assert s["cross_split_by_pair"] == {"train/valid": 1}
    [leak] = s["cross_split_groups"]
    assert {(m["split"], Path(m["source"]).name) for m in leak} == {
        ("train", "angry_0.png"),
        ("valid", "leaked.png"),
    }
    assert s["duplicate_label_conflicts"] == 0


def test_unreadable_and_non_image_files_are_skipped_with_reasons(inspected: Inspected) -> None:
    s = inspected.summary
    reasons = {Path(x["source"]).name: x["reason"] for x in s["skipped"]}
    assert set(reasons) == {"truncated.jpg", "notes.jpg", "README.txt"}
    assert all(reasons.values())
    assert s["skipped_total"] == 3
    assert s["truncated"]["skipped"] is False
    for name in reasons:
        assert name in inspected.html


def test_summary_json_is_written_and_matches_return(inspected: Inspected) -> None:
    on_disk = json.loads((inspected.out / "summary.json").read_text(encoding="utf-8"))
    assert on_disk == inspected.summary
    assert isinstance(on_disk["duplicates"], int)
    assert isinstance(on_disk["cross_split_duplicates"], int)
    assert on_disk["list_limit"] >= 100


def test_image_properties_and_brightness(inspected: Inspected) -> None:
    s = inspected.summary
    assert s["colour_modes"] == {"gray": 19, "colour": 0}
    assert s["image_sizes"]["most_common"] == [{"width": 48, "height": 48, "count": 19}]
    for key in ("brightness", "contrast"):
        for cls in ("angry", "happy"):
            stats = s[key][cls]
            assert 0 < stats["mean"] < 255
            assert stats["std"] >= 0
            assert sum(stats["histogram"]) == stats["n"]
    assert s["brightness"]["angry"]["n"] == 7


def test_report_is_self_contained_with_sections_and_inline_images(inspected: Inspected) -> None:
    html = inspected.html
    for title in SECTION_TITLES:
        assert f"<h2>{title}</h2>" in html
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html
    # Two samples per class asked for, two classes.
    assert html.count("data:image/png;base64,") == 4
    svgs = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    assert len(svgs) >= 4
    for svg in svgs:
        ElementTree.fromstring(svg)  # well-formed, so browsers draw every chart


def test_progress_counts_every_entry(inspected: Inspected) -> None:
    assert inspected.progress_total == inspected.entries


def test_dataset_folder_is_left_unchanged(inspected: Inspected) -> None:
    assert inspected.after == inspected.before
    assert not list(inspected.root.rglob("report.html"))
    assert not list(inspected.root.rglob("summary.json"))


def test_odd_file_names_are_escaped_when_shown(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    write_image(root / "happy" / ODD_NAME, face_like(1))
    (root / "happy" / "bad <i>.jpg").write_text("nope")
    out = tmp_path / "out"
    inspect_dataset(read_class_folders(root), out, samples_per_class=1)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "odd &lt;b&gt;&amp;&#x27;name&quot;.png" in html
    assert "bad &lt;i&gt;.jpg" in html
    assert ODD_NAME not in html and "bad <i>.jpg" not in html


def test_colour_images_of_several_sizes_without_splits(tmp_path: Path) -> None:
    root = make_class_folders(tmp_path / "flat", {"sad": 2, "surprise": 1}, splits=None)
    write_image(root / "sad" / "big.png", face_like(50, size=64, color=True))
    out = tmp_path / "out"
    s = inspect_dataset(read_class_folders(root), out, samples_per_class=0)
    assert s["splits"] == {"all": {"sad": 3, "surprise": 1}}
    assert s["colour_modes"] == {"gray": 3, "colour": 1}
    assert {(x["width"], x["height"]): x["count"] for x in s["image_sizes"]["most_common"]} == {
        (48, 48): 3,
        (64, 64): 1,
    }
    assert s["duplicates"] == 0 and s["cross_split_duplicates"] == 0
    assert "data:image/png;base64," not in (out / "report.html").read_text(encoding="utf-8")


def test_identical_images_with_different_labels_are_reported(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    image = face_like(7)
    write_image(root / "happy" / "a.png", image)
    write_image(root / "sad" / "b.png", image)
    write_image(root / "sad" / "c.png", face_like(8))
    s = inspect_dataset(read_class_folders(root), tmp_path / "out")
    assert s["duplicates"] == 1
    assert s["duplicate_label_conflicts"] == 1


def test_same_pixels_in_another_shape_are_not_duplicates(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    image = face_like(3)
    write_image(root / "happy" / "square.png", image)
    write_image(root / "happy" / "tall.png", image.reshape(96, 24))
    s = inspect_dataset(read_class_folders(root), tmp_path / "out")
    assert s["duplicates"] == 0


def test_long_lists_are_capped_but_counted_in_full(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    n = LIST_LIMIT + 5
    for i in range(n):
        tile = np.full((8, 8), i % 256, dtype=np.uint8)
        tile[0, 0] = i // 256  # every pair distinct from every other
        write_image(root / "train" / "happy" / f"{i}.png", tile)
        write_image(root / "valid" / "happy" / f"{i}.png", tile)
    s = inspect_dataset(read_class_folders(root), tmp_path / "out", samples_per_class=1)
    assert s["duplicates"] == n and s["cross_split_duplicates"] == n
    assert s["duplicate_group_total"] == n and s["cross_split_group_total"] == n
    assert len(s["duplicate_groups"]) == len(s["cross_split_groups"]) == LIST_LIMIT
    assert s["truncated"] == {
        "duplicate_groups": True,
        "cross_split_groups": True,
        "skipped": False,
    }
    assert f"Only the first {LIST_LIMIT} groups" in (tmp_path / "out" / "report.html").read_text(
        encoding="utf-8"
    )


def test_report_inside_the_dataset_is_refused(tmp_path: Path) -> None:
    root = make_class_folders(tmp_path / "ds", {"angry": 1}, splits=None)
    before = _snapshot(root)
    with pytest.raises(DatasetError, match="inside the dataset"):
        inspect_dataset(read_class_folders(root), root / "report")
    assert _snapshot(root) == before


def test_negative_samples_per_class_is_rejected(tmp_path: Path) -> None:
    root = make_class_folders(tmp_path / "ds", {"angry": 1}, splits=None)
    with pytest.raises(ValueError, match="samples_per_class"):
        inspect_dataset(read_class_folders(root), tmp_path / "out", samples_per_class=-1)


@pytest.mark.slow
@pytest.mark.needs_shared
@pytest.mark.full_data
def test_fer2013_counts(fer2013_dir: Path, tmp_path: Path) -> None:
    s = inspect_dataset(read_class_folders(fer2013_dir), tmp_path / "fer")
    assert s["splits"]["train"] == {
        "angry": 3995,
        "disgust": 436,
        "fear": 4097,
        "happy": 7215,
        "sad": 4830,
        "surprise": 3171,
        "neutral": 4965,
    }
    assert s["split_totals"]["valid"] == 3589
    assert s["colour_modes"]["colour"] == 0
    html = (tmp_path / "fer" / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"https?://", html)
    assert np.isclose(s["imbalance"]["train"], 7215 / 436, atol=1e-3)
