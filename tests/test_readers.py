"""Dataset readers and layout detection, on small datasets generated in ``tmp_path``."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import emotrace.data
from conftest import face_like, make_class_folders, write_image
from emotrace.data.readers import FORMATS, detect_format, open_dataset
from emotrace.data.readers._csv import data_rows
from emotrace.data.types import DatasetIndex
from emotrace.errors import DatasetError, UnknownLabelError

AFFECTNET_HEADER = (
    "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,"
    "expression,valence,arousal"
)
Counts = dict[str, dict[str, int]]


# --- fixture writers -------------------------------------------------------------------------


def write_roboflow(
    folder: Path,
    rows: list[tuple[str, tuple[int, ...]]],
    classes: tuple[str, ...] = (" angry", " happy", " sad"),
    missing: tuple[str, ...] = (),
) -> Path:
    """A Roboflow ``_classes.csv`` split folder: one image per row unless listed in ``missing``."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["filename," + ",".join(classes)]
    for i, (name, flags) in enumerate(rows):
        lines.append(name + "," + ",".join(f" {f}" for f in flags))
        if name not in missing:
            write_image(folder / name, face_like(100 + i))
    (folder / "_classes.csv").write_text("\n".join(lines) + "\n")
    return folder


def fer_pixels(seed: int) -> str:
    return " ".join(map(str, face_like(seed).ravel()))


def write_fer_csv(path: Path, rows: list[tuple[str, str, str]], usage: bool = True) -> Path:
    """``rows`` are ``(emotion, pixels, Usage)``; the Usage column is left out with usage=False."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["emotion", "pixels", "Usage"] if usage else ["emotion", "pixels"])
        for emotion, pixels, split in rows:
            writer.writerow([emotion, pixels, split] if usage else [emotion, pixels])
    return path


def fer_rows(n: int = 6) -> list[tuple[str, str, str]]:
    usages = ["Training", "Training", "Training", "PublicTest", "PrivateTest", "PrivateTest"]
    return [(str(i % 7), fer_pixels(i), usages[i % 6]) for i in range(n)]


def write_affectnet(
    csv_path: Path,
    images_dir: Path,
    rows: list[tuple[str, str, int]],
    missing: tuple[str, ...] = (),
) -> Path:
    """``rows`` are ``(subDirectory_filePath, "x,y,w,h", expression)``; images are 96x96 BGR."""
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    lines = [AFFECTNET_HEADER]
    for i, (rel, box, code) in enumerate(rows):
        lines.append(f'{rel},{box},"10.5;20.1;30.2;40.3",{code},0.1,-0.2')
        if rel not in missing:
            write_image(images_dir / rel, face_like(200 + i, 96, color=True))
    csv_path.write_text("\n".join(lines) + "\n")
    return csv_path


AFFECTNET_ROWS = [
    ("1/a.jpg", "8,8,64,64", 0),
    ("1/b.jpg", "4,6,70,72", 1),
    ("2/c.jpg", "0,0,96,96", 6),
    ("2/d.jpg", "8,8,64,64", 9),
]


def write_rafdb(
    basic: Path, rows: list[tuple[str, int]], aligned: bool = True, missing: tuple[str, ...] = ()
) -> Path:
    """RAF-DB's release: ``basic/EmoLabel/list_patition_label.txt`` (``NAME CODE`` lines, codes
    1-7) and the images in ``Image/aligned/<stem>_aligned.jpg`` (100x100) or ``Image/original/``."""
    (basic / "EmoLabel").mkdir(parents=True, exist_ok=True)
    (basic / "EmoLabel" / "list_patition_label.txt").write_text(
        "".join(f"{name} {code}\n" for name, code in rows)
    )
    for i, (name, _) in enumerate(rows):
        if name in missing:
            continue
        stem = name.rsplit(".", 1)[0]
        image = f"aligned/{stem}_aligned.jpg" if aligned else f"original/{name}"
        write_image(basic / "Image" / image, face_like(300 + i, 100, color=True))
    return basic


RAFDB_ROWS = [(f"train_{i:05d}.jpg", code) for i, code in enumerate(range(1, 8), start=1)]
RAFDB_ROWS += [("test_0001.jpg", 4), ("test_0002.jpg", 7)]


def write_expw(root: Path, lines: list[str], photos: dict[str, int]) -> Path:
    """ExpW's release: ``label/label.lst`` and the photos (``name: size``) in image/origin/."""
    (root / "label").mkdir(parents=True, exist_ok=True)
    (root / "label" / "label.lst").write_text("\n".join(lines) + "\n")
    for i, (name, size) in enumerate(photos.items()):
        write_image(root / "image" / "origin" / name, face_like(400 + i, size, color=True))
    return root


# name face_id top left right bottom confidence label: two faces of one photo, then one more.
EXPW_LINES = [
    "party_1.jpg 0 10 12 60 64 72.5 3",
    "party_1.jpg 1 20 70 110 75 55.0 0",
    "office_9.jpg 0 5 5 80 90 80.1 6",
]
EXPW_PHOTOS = {"party_1.jpg": 120, "office_9.jpg": 96}


def tree_state(root: Path) -> list[tuple[str, int, int]]:
    """Every path under ``root`` with its mtime and size, to prove nothing was written."""
    return sorted(
        (str(p.relative_to(root)), p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*")
    )


# --- layouts: (builder, expected format, expected counts) --------------------------------------


def folder_splits(tmp: Path) -> Path:
    return make_class_folders(tmp / "ds", {"angry": 2, "happy": 3})


def folder_flat(tmp: Path) -> Path:
    return make_class_folders(tmp / "ds", {"Angry": 1, "sadness": 2}, splits=None)


def roboflow_splits(tmp: Path) -> Path:
    write_roboflow(tmp / "rf" / "train", [("a.jpg", (1, 0, 0)), ("b.jpg", (0, 1, 0))])
    write_roboflow(tmp / "rf" / "valid", [("c.jpg", (0, 0, 1))])
    return tmp / "rf"


def roboflow_flat(tmp: Path) -> Path:
    return write_roboflow(tmp / "rf", [("a.jpg", (1, 0, 0)), ("b.jpg", (1, 0, 0))])


def roboflow_csv_file(tmp: Path) -> Path:
    return roboflow_flat(tmp) / "_classes.csv"


def fer_csv_file(tmp: Path) -> Path:
    return write_fer_csv(tmp / "fer2013.csv", fer_rows())


def fer_csv_folder(tmp: Path) -> Path:
    write_fer_csv(tmp / "kaggle" / "fer2013" / "fer2013.csv", fer_rows())
    return tmp / "kaggle"


FERPLUS_HEADER = (
    "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
)
# One row per fer_rows() row: (Image name, votes in FERPLUS_HEADER's order) and the outcome.
FERPLUS_VOTES = [
    ("fer0000000.png", (2, 8, 0, 0, 0, 0, 0, 0, 0, 0)),  # happy
    ("fer0000001.png", (5, 0, 0, 3, 1, 0, 0, 0, 0, 0)),  # neutral: 5 of the 8 votes left
    ("fer0000002.png", (0, 0, 0, 0, 0, 4, 0, 6, 0, 0)),  # contempt
    ("fer0000003.png", (3, 0, 0, 0, 0, 0, 0, 0, 7, 0)),  # majority unknown: skipped
    ("", (0, 0, 0, 0, 0, 0, 0, 0, 0, 10)),  # removed by FER+: skipped
    ("fer0000005.png", (0, 2, 4, 0, 0, 0, 4, 0, 0, 0)),  # no majority: skipped
]


def write_ferplus(path: Path, votes: list[tuple[str, tuple[int, ...]]] = FERPLUS_VOTES) -> Path:
    usages = [usage for _, _, usage in fer_rows(len(votes))]
    lines = [FERPLUS_HEADER]
    lines += [
        f"{u},{name},{','.join(map(str, v))}" for u, (name, v) in zip(usages, votes, strict=True)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def ferplus_folder(tmp: Path) -> Path:
    """Microsoft's fer2013new.csv beside the original fer2013.csv."""
    write_fer_csv(tmp / "fer" / "fer2013.csv", fer_rows())
    write_ferplus(tmp / "fer" / "fer2013new.csv")
    return tmp / "fer"


def affectnet_csv_file(tmp: Path) -> Path:
    return write_affectnet(tmp / "an" / "training.csv", tmp / "an", AFFECTNET_ROWS)


def affectnet_csv_folder(tmp: Path) -> Path:
    write_affectnet(tmp / "an" / "training.csv", tmp / "an", AFFECTNET_ROWS[:2])
    write_affectnet(tmp / "an" / "validation.csv", tmp / "an", AFFECTNET_ROWS[2:])
    return tmp / "an"


def affectnet_official(tmp: Path) -> Path:
    """The official release: lists and images in sibling folders."""
    images = tmp / "an" / "Manually_Annotated_Images"
    write_affectnet(
        tmp / "an" / "Manually_Annotated_file_lists" / "validation.csv", images, AFFECTNET_ROWS
    )
    return tmp / "an"


def affectnet_names(tmp: Path) -> Path:
    names = ("anger", "contempt", "disgust", "fear", "happy", "neutral", "sad", "surprise")
    return make_class_folders(tmp / "an", dict.fromkeys(names, 1), splits=("train", "val"))


def affectnet_numeric(tmp: Path) -> Path:
    return make_class_folders(tmp / "an", {str(code): 1 for code in range(8)}, splits=None)


def ckplus(tmp: Path) -> Path:
    names = ("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")
    return make_class_folders(tmp / "ck", dict.fromkeys(names, 1), splits=None)


def expw_release(tmp: Path) -> Path:
    return write_expw(tmp / "ExpW", EXPW_LINES, EXPW_PHOTOS)


JAFFE_NAMES = ["KA.AN1.39.tiff", "KA.HA2.30.tiff", "KL.NE1.155.tiff", "YM.SU3.60.tiff"]


def jaffe_archive(tmp: Path) -> Path:
    """JAFFE unpacked: jaffedbase/ holding the photos and a README."""
    for i, name in enumerate(JAFFE_NAMES):
        write_image(tmp / "jaffe" / "jaffedbase" / name, face_like(500 + i, 64))
    (tmp / "jaffe" / "jaffedbase" / "README").write_text("JAFFE")
    return tmp / "jaffe"


def rafdb_release(tmp: Path) -> Path:
    """The release unpacked: its basic/ folder one level down, aligned faces."""
    write_rafdb(tmp / "RAF-DB" / "basic", RAFDB_ROWS)
    return tmp / "RAF-DB"


def rafdb_original(tmp: Path) -> Path:
    """basic/ itself, with the original photos only."""
    return write_rafdb(tmp / "basic", RAFDB_ROWS, aligned=False)


def rafdb_folders(tmp: Path) -> Path:
    """The common repackaging: train/1..7 and test/1..7."""
    return make_class_folders(tmp / "raf", {str(c): 1 for c in range(1, 8)}, ("train", "test"))


ALL8 = {c: 1 for c in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")}
LAYOUTS: list[tuple[Callable[[Path], Path], str, Counts]] = [
    (folder_splits, "folder", {s: {"angry": 2, "happy": 3} for s in ("train", "valid")}),
    (folder_flat, "folder", {"all": {"angry": 1, "sad": 2}}),
    (roboflow_splits, "roboflow_csv", {"train": {"angry": 1, "happy": 1}, "valid": {"sad": 1}}),
    (roboflow_flat, "roboflow_csv", {"all": {"angry": 2}}),
    (roboflow_csv_file, "roboflow_csv", {"all": {"angry": 2}}),
    (
        fer_csv_file,
        "fer2013_csv",
        {
            "train": {"angry": 1, "disgust": 1, "fear": 1},
            "valid": {"happy": 1},
            "test": {"sad": 1, "surprise": 1},
        },
    ),
    (fer_csv_folder, "fer2013_csv", {"train": {"angry": 1, "disgust": 1, "fear": 1}}),
    (affectnet_csv_file, "affectnet_csv", {"train": {"angry": 1, "happy": 1, "neutral": 1}}),
    (affectnet_csv_folder, "affectnet_csv", {"train": {"happy": 1, "neutral": 1}}),
    (affectnet_official, "affectnet_csv", {"valid": {"angry": 1, "happy": 1, "neutral": 1}}),
    (affectnet_names, "affectnet", {s: {**ALL8, "contempt": 1} for s in ("train", "valid")}),
    (affectnet_numeric, "affectnet", {"all": {**ALL8, "contempt": 1}}),
    (ckplus, "ckplus", {"all": {**{k: 1 for k in ALL8 if k != "neutral"}, "contempt": 1}}),
    (ferplus_folder, "ferplus", {"train": {"happy": 1, "neutral": 1, "contempt": 1}}),
    (jaffe_archive, "jaffe", {"all": {"angry": 1, "happy": 1, "surprise": 1, "neutral": 1}}),
    (expw_release, "expw", {"all": {"angry": 1, "happy": 1, "neutral": 1}}),
    (rafdb_release, "rafdb", {"train": ALL8, "test": {"happy": 1, "neutral": 1}}),
    (rafdb_original, "rafdb", {"train": ALL8, "test": {"happy": 1, "neutral": 1}}),
    (rafdb_folders, "rafdb", {"train": ALL8, "test": ALL8}),
]


@pytest.mark.parametrize(
    ("build", "expected_format", "expected_counts"), LAYOUTS, ids=[b.__name__ for b, *_ in LAYOUTS]
)
def test_layout_is_detected_and_indexed(
    tmp_path: Path, build: Callable[[Path], Path], expected_format: str, expected_counts: Counts
) -> None:
    path = build(tmp_path)
    before = tree_state(tmp_path)

    index = open_dataset(path)
    samples = list(index.iter_samples())

    assert detect_format(path) == expected_format
    assert index.format == expected_format
    counts = index.counts()
    assert {s: counts[s] for s in expected_counts} == expected_counts
    assert len(samples) == len(index.entries)
    assert all(s.image.dtype == np.uint8 and s.image.ndim in (2, 3) for s in samples)
    assert all(isinstance(e.fingerprint(), bytes) for e in index.entries if e.fingerprint)
    assert tree_state(tmp_path) == before, "reading a dataset must never write into it"


@pytest.mark.parametrize("build", [b for b, *_ in LAYOUTS], ids=[b.__name__ for b, *_ in LAYOUTS])
def test_explicit_format_matches_detection(tmp_path: Path, build: Callable[[Path], Path]) -> None:
    path = build(tmp_path)
    detected = open_dataset(path)
    forced = open_dataset(path, format=detected.format)
    assert [(e.source, e.label, e.split) for e in forced.entries] == [
        (e.source, e.label, e.split) for e in detected.entries
    ]


def test_every_format_is_named_in_the_cli_help() -> None:
    from conftest import run_emotrace

    result = run_emotrace("data", "prepare", "--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert all(name in text for name in FORMATS), text


def test_public_export_and_formats() -> None:
    assert emotrace.data.open_dataset is open_dataset
    assert FORMATS == (
        "folder",
        "roboflow_csv",
        "fer2013_csv",
        "affectnet_csv",
        "affectnet",
        "ckplus",
        "rafdb",
        "ferplus",
        "expw",
        "jaffe",
    )


# --- class folders ------------------------------------------------------------------------------


@pytest.mark.parametrize("splits", [None, ("train",)])
def test_anger_and_capitalised_angry_folders_are_one_class(
    tmp_path: Path, splits: tuple[str] | None
) -> None:
    root = make_class_folders(tmp_path / "ds", {"anger": 2, "Angry": 3, "happy": 1}, splits=splits)
    index = open_dataset(root)
    assert index.classes() == ["angry", "happy"]
    assert index.counts()[splits[0] if splits else "all"] == {"angry": 5, "happy": 1}


@pytest.mark.parametrize(
    ("format", "code", "expected"),
    [
        (None, "0", "neutral"),  # detected as AffectNet: its own code order
        (None, "6", "angry"),
        (None, "7", "contempt"),
        ("affectnet", "1", "happy"),
        ("folder", "0", "angry"),  # FER2013 order when asked for plain folders
        ("folder", "6", "neutral"),
    ],
)
def test_numeric_class_folders(
    tmp_path: Path, format: str | None, code: str, expected: str
) -> None:
    codes = range(7) if format == "folder" else range(8)
    root = make_class_folders(tmp_path / "ds", {str(c): 1 for c in codes}, splits=("train",))
    index = open_dataset(root, format=format)
    [entry] = [e for e in index.entries if Path(e.source).parent.name == code]
    assert entry.label == expected


def test_unreadable_files_are_skipped_and_listed(tmp_path: Path) -> None:
    root = make_class_folders(tmp_path / "ds", {"angry": 2, "happy": 2}, splits=None)
    good = (root / "angry" / "angry_0.png").read_bytes()
    (root / "angry" / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "happy" / "text.jpg").write_text("not an image")
    (root / "happy" / "empty.jpg").write_bytes(b"")
    (root / "happy" / "notes.txt").write_text("labelled by hand")

    index = open_dataset(root)
    indexed_skips = {Path(s.source).name for s in index.skipped}
    samples = list(index.iter_samples())

    assert indexed_skips == {"notes.txt"}
    assert len(samples) == 4
    reasons = {Path(s.source).name: s.reason for s in index.skipped}
    assert set(reasons) == {"notes.txt", "truncated.png", "text.jpg", "empty.jpg"}
    assert "not a decodable image" in reasons["truncated.png"]
    assert "empty file" in reasons["empty.jpg"]


def test_broken_links_are_skipped_and_listed_and_links_to_images_are_read(tmp_path: Path) -> None:
    root = make_class_folders(tmp_path / "ds", {"angry": 2, "happy": 2}, splits=None)
    (root / "angry" / "moved.png").symlink_to(tmp_path / "gone.png")
    (root / "happy" / "ünï çødé.png").symlink_to(root / "angry" / "angry_0.png")

    index = open_dataset(root)
    assert {Path(s.source).name: s.reason for s in index.skipped} == {"moved.png": "broken link"}
    assert len(list(index.iter_samples())) == 5


# --- Roboflow _classes.csv ----------------------------------------------------------------------


def test_roboflow_reports_rows_it_cannot_use(tmp_path: Path) -> None:
    root = tmp_path / "rf"
    rows = [
        ("ok.jpg", (0, 1, 0)),
        ("both.jpg", (1, 1, 0)),
        ("none.jpg", (0, 0, 0)),
        ("gone.jpg", (0, 0, 1)),
    ]
    write_roboflow(root / "valid", rows, missing=("gone.jpg",))
    write_roboflow(root / "test", [("t.jpg", (1, 0, 0))], classes=("Anger", "Happiness", "Sadness"))
    write_image(root / "valid" / "stray.jpg", face_like(7))

    index = open_dataset(root)

    assert [(Path(e.source).name, e.label, e.split) for e in index.entries] == [
        ("t.jpg", "angry", "test"),
        ("ok.jpg", "happy", "valid"),
    ]
    reasons = {Path(s.source).name: s.reason for s in index.skipped}
    assert set(reasons) == {"both.jpg", "none.jpg", "gone.jpg", "stray.jpg"}
    assert "multi-label" in reasons["both.jpg"] and "angry, happy" in reasons["both.jpg"]
    assert "no label" in reasons["none.jpg"]
    assert "missing" in reasons["gone.jpg"]
    assert "not listed" in reasons["stray.jpg"]


def test_roboflow_val_folder_is_the_valid_split(tmp_path: Path) -> None:
    write_roboflow(tmp_path / "rf" / "val", [("a.jpg", (0, 0, 1))])
    assert open_dataset(tmp_path / "rf").counts() == {"valid": {"sad": 1}}


# --- FER2013 CSV --------------------------------------------------------------------------------


def test_fer2013_csv_rows_decode_to_48x48_gray(tmp_path: Path) -> None:
    path = write_fer_csv(tmp_path / "fer2013.csv", fer_rows(3))
    index = open_dataset(path)

    first = index.entries[0]
    image = first.load()
    assert first.source == "fer2013.csv:row 2"
    assert (first.label, first.split) == ("angry", "train")
    assert image.shape == (48, 48) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, face_like(0))
    assert first.fingerprint is not None and first.fingerprint() == face_like(0).tobytes()
    image[:] = 0  # the caller's copy: the index must not change
    np.testing.assert_array_equal(first.load(), face_like(0))


def test_fer2013_csv_without_usage_is_split_all(tmp_path: Path) -> None:
    path = write_fer_csv(tmp_path / "train.csv", fer_rows(3), usage=False)
    assert open_dataset(path).counts() == {"all": {"angry": 1, "disgust": 1, "fear": 1}}


def test_icml_face_data_header_with_spaces_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "icml_face_data.csv"
    path.write_text(f"\ufeffemotion, Usage, pixels\n3,PublicTest,{fer_pixels(0)}\n", "utf-8")
    index = open_dataset(path)
    assert (index.format, index.counts()) == ("fer2013_csv", {"valid": {"happy": 1}})


def _replace_token(pixels: str, index: int, token: str) -> str:
    tokens = pixels.split()
    tokens[index] = token
    return " ".join(tokens)


BAD_FER_ROWS: list[tuple[str, Callable[[str], tuple[str, str, str]], str]] = [
    (
        "short",
        lambda p: ("0", p.rsplit(" ", 1)[0], "Training"),
        r"row 3: 2303 pixels, expected 2304 \(48x48\)",
    ),
    ("long", lambda p: ("0", p + " 7", "Training"), r"row 3: 2305 pixels, expected 2304"),
    ("empty", lambda p: ("0", "", "Training"), r"row 3: 0 pixels, expected 2304"),
    (
        "word",
        lambda p: ("0", _replace_token(p, 9, "abc"), "Training"),
        r"row 3: pixel 10 is 'abc', expected an integer 0-255",
    ),
    (
        "fraction",
        lambda p: ("0", _replace_token(p, 0, "1.5"), "Training"),
        r"row 3: pixel 1 is '1.5'",
    ),
    (
        "too big",
        lambda p: ("0", _replace_token(p, 5, "256"), "Training"),
        r"row 3: pixel 6 is '256'",
    ),
    (
        "negative",
        lambda p: ("0", _replace_token(p, 5, "-1"), "Training"),
        r"row 3: pixel 6 is '-1'",
    ),
    ("code 7", lambda p: ("7", p, "Training"), r"row 3: emotion '7', expected a code 0-6"),
    ("code text", lambda p: ("happy", p, "Training"), r"row 3: emotion 'happy'"),
    (
        "usage",
        lambda p: ("0", p, "Holdout"),
        r"row 3: Usage 'Holdout', expected Training, PublicTest or PrivateTest",
    ),
]


def test_csv_data_rows_skip_blank_rows_and_refuse_short_ones(tmp_path: Path) -> None:
    # The one row walk of the FER2013, FER+, AffectNet and Roboflow CSV readers.
    path = tmp_path / "labels.csv"
    path.write_text("name,code\na.jpg,1\n\n , \nb.jpg\n")
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = data_rows(reader, path, header)
        assert next(rows) == (2, ["a.jpg", "1"])
        with pytest.raises(
            DatasetError, match=r"labels\.csv row 5: 1 cells, expected 2 \(name,code\)"
        ):
            next(rows)


@pytest.mark.parametrize(
    ("make_row", "message"), [r[1:] for r in BAD_FER_ROWS], ids=[r[0] for r in BAD_FER_ROWS]
)
def test_fer2013_csv_bad_row_names_file_and_row(
    tmp_path: Path, make_row: Callable[[str], tuple[str, str, str]], message: str
) -> None:
    rows = fer_rows(3)
    rows[1] = make_row(fer_pixels(1))
    path = write_fer_csv(tmp_path / "fer2013.csv", rows)
    with pytest.raises(DatasetError, match=r"fer2013\.csv " + message) as caught:
        open_dataset(path)
    assert "\n" not in str(caught.value)


# --- FER+ ---------------------------------------------------------------------------------------


def test_ferplus_relabels_fer2013_by_majority_vote(tmp_path: Path) -> None:
    folder = ferplus_folder(tmp_path)
    index = open_dataset(folder)
    original = open_dataset(folder, format="fer2013_csv")

    assert [e.label for e in index.entries] == ["happy", "neutral", "contempt"]
    assert index.entries[0].source == "fer2013new.csv:row 2 (fer0000000.png)"
    # The same faces as the original file's first three rows, FER2013's own labels aside.
    for relabelled, face in zip(index.entries, original.entries[:3], strict=True):
        assert np.array_equal(relabelled.load(), face.load()) and relabelled.split == face.split
    assert [e.label for e in original.entries[:3]] == ["angry", "disgust", "fear"]
    reasons = [s.reason for s in index.skipped]
    assert reasons == [
        "majority says unknown",
        "removed by FER+ (empty Image name)",
        "no majority (4 of 10 votes for surprise)",
    ]
    assert open_dataset(folder / "fer2013new.csv").format == "ferplus"


@pytest.mark.parametrize(
    ("votes", "expected"),
    [
        ({"happiness": 6, "neutral": 3, "surprise": 1}, "happy"),  # 6 of 9 after the single vote
        ({"neutral": 4, "anger": 3, "disgust": 2, "sadness": 1}, None),  # 4 of 9: no majority
        ({"neutral": 1, "anger": 1, "fear": 1}, None),  # single votes only
        ({"nf": 6, "neutral": 4}, None),
        ({"contempt": 5, "neutral": 3}, "contempt"),
    ],
)
def test_ferplus_majority_voting(votes: dict[str, int], expected: str | None) -> None:
    from emotrace.data.readers.ferplus import VOTE_COLUMNS, majority_label

    label, why = majority_label({c: votes.get(c, 0) for c in VOTE_COLUMNS})
    assert label == expected and bool(why) == (expected is None)


def test_ferplus_errors_name_the_file_and_row(tmp_path: Path) -> None:
    alone = write_ferplus(tmp_path / "alone" / "fer2013new.csv")
    with pytest.raises(DatasetError, match=r"FER\+ holds labels only; put the original fer2013"):
        open_dataset(alone)
    folder = ferplus_folder(tmp_path)
    write_ferplus(folder / "fer2013new.csv", FERPLUS_VOTES[:5])
    with pytest.raises(DatasetError, match=r"5 rows but .*fer2013\.csv has 6; .*row by row"):
        open_dataset(folder)
    text = (
        (folder / "fer2013new.csv").read_text().replace(",8,0,0,0,0,0,0,0,0", ",8,x,0,0,0,0,0,0,0")
    )
    (folder / "fer2013new.csv").write_text(text)
    with pytest.raises(DatasetError, match=r"fer2013new\.csv row 2: surprise votes 'x'"):
        open_dataset(folder)


# --- ExpW ---------------------------------------------------------------------------------------


def test_expw_faces_carry_their_boxes_and_are_no_duplicates(tmp_path: Path) -> None:
    from emotrace.data.cache import prepare
    from emotrace.data.inspect import inspect_dataset
    from emotrace.preprocessing import Preprocess

    root = write_expw(
        tmp_path / "ExpW",
        [*EXPW_LINES, "office_9.jpg 1 200 200 260 260 40.0 4", "gone.jpg 0 1 1 9 9 50.0 2"],
        EXPW_PHOTOS,
    )
    index = open_dataset(root / "label" / "label.lst")
    assert [(e.label, e.face_box) for e in index.entries] == [
        ("happy", (12, 10, 48, 54)),  # x = left, y = top, w = right - left, h = bottom - top
        ("angry", (70, 20, 40, 55)),
        ("neutral", (5, 5, 75, 85)),
        ("sad", (200, 200, 60, 60)),  # outside its 96x96 photo: skipped when decoded
    ]
    assert [s.reason for s in index.skipped] == ["listed in label.lst line 5, missing"]

    summary = inspect_dataset(index, tmp_path / "eda")
    assert summary["duplicates"] == 0, "two faces of one photo are two images"
    [outside] = [s for s in summary["skipped"] if "outside" in s["reason"]]
    assert "face box (200, 200, 60, 60) lies outside the 96x96 image" in outside["reason"]

    data = prepare(index, Preprocess(size=32, gray=True))
    faces = data.splits["all"].images
    assert len(faces) == 3 and not np.array_equal(faces[0], faces[1])
    assert any("outside" in s.reason for s in data.skipped)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("a.jpg 0 10 12 60 64 72.5", r"line 1: 7 fields, expected 'NAME FACE_ID TOP LEFT"),
        ("a.jpg 0 10 12 60 64 72.5 7", r"line 1: label 7, expected 0-6 \(angry, disgust"),
        ("a.jpg 0 10 60 12 64 72.5 3", r"line 1: face box left 60 right 12 .*right > left"),
        (
            "a.jpg 0 10 12 60 x 72.5 3",
            r"line 1: 'a\.jpg 0 10 12 60 x 72\.5 3', expected .*integers",
        ),
        ("a.jpg 0 inf 12 60 64 72.5 3", r"line 1: .*integers"),
    ],
)
def test_expw_bad_line_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    root = write_expw(tmp_path / "ExpW", [line], {"a.jpg": 64})
    with pytest.raises(DatasetError, match=r"label\.lst " + message) as caught:
        open_dataset(root)
    assert "\n" not in str(caught.value)


# --- JAFFE --------------------------------------------------------------------------------------


def test_jaffe_labels_come_from_the_file_names(tmp_path: Path) -> None:
    folder = jaffe_archive(tmp_path) / "jaffedbase"
    write_image(folder / "holiday.jpg", face_like(1))
    index = open_dataset(folder)
    assert {Path(e.source).name: e.label for e in index.entries} == {
        "KA.AN1.39.tiff": "angry",
        "KA.HA2.30.tiff": "happy",
        "KL.NE1.155.tiff": "neutral",
        "YM.SU3.60.tiff": "surprise",
    }
    assert {Path(s.source).name: s.reason for s in index.skipped} == {
        "README": "not an image file",
        "holiday.jpg": "not named like JAFFE (e.g. KA.AN1.39.tiff)",
    }
    with pytest.raises(DatasetError, match=r"ds: no image named the JAFFE way"):
        open_dataset(folder_flat(tmp_path), format="jaffe")


# --- RAF-DB -------------------------------------------------------------------------------------


@pytest.mark.parametrize("build", [rafdb_release, rafdb_folders], ids=["release", "folders"])
def test_rafdb_codes_are_read_in_rafdb_order(tmp_path: Path, build: Callable[[Path], Path]) -> None:
    # 1 surprise, 2 fear, 3 disgust, 4 happiness, 5 sadness, 6 anger, 7 neutral (RAF-DB's README);
    # read as FER2013 or AffectNet codes, every one of them would be another class.
    index = open_dataset(build(tmp_path))
    train = [e for e in index.entries if e.split == "train"]
    code_of = {
        e.source: int(Path(e.source).parent.name)
        if build is rafdb_folders
        else int(Path(e.source).name.split("_")[1])
        for e in train
    }
    expected = ["surprise", "fear", "disgust", "happy", "sad", "angry", "neutral"]
    assert {code_of[e.source]: e.label for e in train} == dict(enumerate(expected, start=1))


def test_rafdb_release_prefers_aligned_faces_and_lists_missing_images(tmp_path: Path) -> None:
    basic = write_rafdb(tmp_path / "basic", RAFDB_ROWS, missing=("test_0002.jpg",))
    write_image(basic / "Image" / "original" / "train_00001.jpg", face_like(1, 400, color=True))

    index = open_dataset(basic)

    assert all("_aligned.jpg" in e.source for e in index.entries)
    assert index.entries[0].load().shape == (100, 100, 3)
    assert len(index.entries) == len(RAFDB_ROWS) - 1
    [skipped] = index.skipped
    assert skipped.source.endswith("test_0002_aligned.jpg")
    assert "list_patition_label.txt line 9" in skipped.reason and "missing" in skipped.reason


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "train_00001.jpg 8",
            r"line 1: 'train_00001\.jpg 8', expected 'NAME CODE' with a code 1-7",
        ),
        ("train_00001.jpg 0", r"line 1: .*code 1-7 \(surprise, fear"),
        ("train_00001.jpg", r"line 1: 'train_00001\.jpg', expected 'NAME CODE'"),
        ("train_00001.jpg happy", r"line 1: .*expected 'NAME CODE'"),
    ],
)
def test_rafdb_bad_line_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    basic = write_rafdb(tmp_path / "basic", RAFDB_ROWS)
    (basic / "EmoLabel" / "list_patition_label.txt").write_text(line + "\n")
    with pytest.raises(DatasetError, match=r"list_patition_label\.txt " + message) as caught:
        open_dataset(basic)
    assert "\n" not in str(caught.value)


def test_numbered_folders_from_0_stay_affectnet_and_from_1_are_rafdb(tmp_path: Path) -> None:
    affectnet = make_class_folders(tmp_path / "an", {str(c): 1 for c in range(8)}, ("train",))
    rafdb = make_class_folders(tmp_path / "raf", {str(c): 1 for c in range(1, 8)}, ("train",))
    assert detect_format(affectnet) == "affectnet" and detect_format(rafdb) == "rafdb"
    # Asked for explicitly, the same folders are read the other way (the user knows best).
    [one] = [e for e in open_dataset(rafdb, "affectnet").entries if "/1/" in e.source]
    assert one.label == "happy"


# --- AffectNet CSV ------------------------------------------------------------------------------


def test_affectnet_csv_keeps_box_loads_whole_image_and_drops_codes_8_to_10(tmp_path: Path) -> None:
    rows = [*AFFECTNET_ROWS, ("3/e.jpg", "1,2,30,40", 8), ("3/f.jpg", "1,2,30,40", 10)]
    rows.append(("3/gone.jpg", "1,2,30,40", 3))
    path = write_affectnet(tmp_path / "an" / "training.csv", tmp_path / "an", rows, ("3/gone.jpg",))

    index = open_dataset(path)

    by_name = {Path(e.source).name: e for e in index.entries}
    assert {n: e.label for n, e in by_name.items()} == {
        "a.jpg": "neutral",
        "b.jpg": "happy",
        "c.jpg": "angry",
    }
    assert by_name["b.jpg"].face_box == (4, 6, 70, 72)
    assert by_name["b.jpg"].load().shape == (96, 96, 3)
    reasons = {Path(s.source).name: s.reason for s in index.skipped}
    assert set(reasons) == {"d.jpg", "e.jpg", "f.jpg", "gone.jpg"}
    assert "expression 9 (uncertain)" in reasons["d.jpg"] and "dropped" in reasons["d.jpg"]
    assert "expression 8" in reasons["e.jpg"] and "expression 10" in reasons["f.jpg"]
    assert "training.csv row 8" in reasons["gone.jpg"] and "missing" in reasons["gone.jpg"]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (("1/a.jpg", "8,8,64,64", 11), r"training\.csv row 2: expression 11, expected 0-7"),
        (
            ("1/a.jpg", "8,8,64,64", "x"),
            r"training\.csv row 2: expression 'x', expected an integer",
        ),
        (("1/a.jpg", "8,eight,64,64", 1), r"training\.csv row 2: face_y 'eight'"),
        (
            ("1/a.jpg", "8,8,0,64", 1),
            r"training\.csv row 2: face box 0x64, expected a positive size",
        ),
    ],
)
def test_affectnet_csv_bad_row_names_file_and_row(
    tmp_path: Path, row: tuple[str, str, int], message: str
) -> None:
    path = write_affectnet(tmp_path / "training.csv", tmp_path, [row])
    with pytest.raises(DatasetError, match=message):
        open_dataset(path)


# --- errors -------------------------------------------------------------------------------------


def _nothing(tmp: Path) -> Path:
    return tmp / "no_such_dataset"


def _empty(tmp: Path) -> Path:
    (tmp / "empty").mkdir()
    return tmp / "empty"


def _text_file(tmp: Path) -> Path:
    (tmp / "readme.txt").write_text("hello")
    return tmp / "readme.txt"


def _unknown_class(tmp: Path) -> Path:
    return make_class_folders(tmp / "ds", {"happy": 1, "bored": 1}, splits=None)


def _empty_class(tmp: Path) -> Path:
    root = make_class_folders(tmp / "ds", {"happy": 1}, splits=("train",))
    (root / "train" / "sad").mkdir()
    return root


def _roboflow_unknown_column(tmp: Path) -> Path:
    return write_roboflow(tmp / "rf", [("a.jpg", (1, 0))], classes=(" happy", " bored"))


def _roboflow_split_without_csv(tmp: Path) -> Path:
    write_roboflow(tmp / "rf" / "train", [("a.jpg", (1, 0, 0))])
    write_image(tmp / "rf" / "test" / "b.jpg", face_like(1))
    return tmp / "rf"


def _affectnet_images_elsewhere(tmp: Path) -> Path:
    write_affectnet(tmp / "lists" / "training.csv", tmp / "somewhere", AFFECTNET_ROWS)
    return tmp / "lists" / "training.csv"


def _rafdb_without_images(tmp: Path) -> Path:
    return write_rafdb(tmp / "basic", RAFDB_ROWS, missing=tuple(name for name, _ in RAFDB_ROWS))


ERRORS: list[tuple[Callable[[Path], Path], str | None, type[Exception], str]] = [
    (
        _nothing,
        None,
        DatasetError,
        r"no_such_dataset: no such file or folder; expected class folders",
    ),
    (
        _empty,
        None,
        DatasetError,
        r"empty: no dataset layout recognised; expected class folders .*Roboflow.*FER2013.*FER\+"
        r".*Affect.*RAF-DB.*ExpW.*JAFFE",
    ),
    (_text_file, None, DatasetError, r"readme\.txt: not a dataset file; expected"),
    (
        folder_flat,
        "coco",
        DatasetError,
        r"unknown dataset format 'coco': expected one of folder, roboflow_csv, .*, ckplus",
    ),
    (_unknown_class, None, UnknownLabelError, r"ds/bored: unknown emotion class 'bored'"),
    (_empty_class, None, DatasetError, r"train/sad: empty class folder"),
    (
        _roboflow_unknown_column,
        None,
        UnknownLabelError,
        r"rf/_classes\.csv: unknown emotion class 'bored'",
    ),
    (_roboflow_split_without_csv, None, DatasetError, r"rf/test: no _classes\.csv"),
    (_affectnet_images_elsewhere, None, DatasetError, r"none of the listed images exist"),
    (fer_csv_file, "folder", DatasetError, r"format 'folder' expects a folder"),
    (folder_flat, "fer2013_csv", DatasetError, r"ds: no FER2013 CSV here"),
    (folder_flat, "affectnet_csv", DatasetError, r"ds: no AffectNet CSV here"),
    (folder_flat, "roboflow_csv", DatasetError, r"ds: no _classes\.csv"),
    (fer_csv_file, "rafdb", DatasetError, r"format 'rafdb' expects a folder"),
    (folder_flat, "ferplus", DatasetError, r"ds: no FER\+ label file here \(expected fer2013new"),
    (
        _rafdb_without_images,
        None,
        DatasetError,
        r"basic: none of the 9 listed images exist under Image/aligned or Image/original \(neither",
    ),
]


@pytest.mark.parametrize(
    ("build", "format", "error", "message"),
    ERRORS,
    ids=[f"{b.__name__}-{f}" for b, f, *_ in ERRORS],
)
def test_bad_input_is_a_one_line_error(
    tmp_path: Path,
    build: Callable[[Path], Path],
    format: str | None,
    error: type[Exception],
    message: str,
) -> None:
    path = build(tmp_path)
    with pytest.raises(error, match=message) as caught:
        open_dataset(path, format=format)
    assert "\n" not in str(caught.value)


def test_missing_split_is_an_error(tmp_path: Path) -> None:
    index: DatasetIndex = open_dataset(folder_splits(tmp_path))
    with pytest.raises(DatasetError, match=r"no split 'test'; this dataset has: train, valid"):
        index.select("test")


# --- the real FER2013 release -------------------------------------------------------------------


@pytest.mark.needs_shared
@pytest.mark.full_data
def test_real_fer2013_folder_counts(fer2013_dir: Path) -> None:
    index = open_dataset(fer2013_dir)
    counts = index.counts()
    assert index.format == "folder"
    assert counts["train"] == {
        "angry": 3995,
        "disgust": 436,
        "fear": 4097,
        "happy": 7215,
        "neutral": 4965,
        "sad": 4830,
        "surprise": 3171,
    }
    assert sum(counts["valid"].values()) == 3589
    assert index.skipped == []
