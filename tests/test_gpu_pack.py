"""scripts/gpu/pack_data.py: FER2013 and the ImageNet backbone packed for a GPU lease come
back byte for byte (images) and as a loadable backbone (weights), run as the script it is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from emotrace.data.readers import open_dataset

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu" / "pack_data.py"
torch = pytest.importorskip("torch", reason="torch (the train extra) not installed")


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_pack_then_unpack_rebuilds_every_file_and_the_backbone(tmp_path: Path) -> None:
    dataset = tmp_path / "fer"
    rng = np.random.default_rng(0)
    for split, classes in (("train", ("happy", "sad")), ("valid", ("happy", "sad"))):
        for label in classes:
            folder = dataset / split / label
            folder.mkdir(parents=True)
            for i in range(3):
                face = rng.integers(0, 256, (48, 48), dtype=np.uint8)
                cv2.imwrite(str(folder / f"{split}_{i}.jpg"), face)
    backbone = {
        "features.0.0.weight": torch.randn(32, 3, 3, 3),
        "features.0.1.running_mean": torch.randn(32),
        "classifier.1.weight": torch.randn(1000, 1280),  # ImageNet's head: left behind
    }
    weights = tmp_path / "mobilenet_v2.pth"
    torch.save(backbone, weights)

    packed = _run("pack", dataset, weights, tmp_path / "pack")
    assert packed.returncode == 0, packed.stderr
    assert "12 files" in packed.stdout
    rebuilt_weights = tmp_path / "out" / "imagenet.pth"
    unpacked = _run("unpack", tmp_path / "pack", tmp_path / "out" / "fer", rebuilt_weights)
    assert unpacked.returncode == 0, unpacked.stderr

    originals = sorted(p.relative_to(dataset) for p in dataset.rglob("*.jpg"))
    rebuilt = sorted(
        p.relative_to(tmp_path / "out" / "fer") for p in (tmp_path / "out").rglob("*.jpg")
    )
    assert rebuilt == originals
    for name in originals:
        assert (tmp_path / "out" / "fer" / name).read_bytes() == (dataset / name).read_bytes()
    # The same files under the same labels: the reader (and so the cache key) sees one dataset.
    index = open_dataset(tmp_path / "out" / "fer")
    assert sorted(index.splits()) == ["train", "valid"] and index.classes() == ["happy", "sad"]

    state = torch.load(rebuilt_weights, weights_only=True)
    assert sorted(state) == ["features.0.0.weight", "features.0.1.running_mean"]
    for key, value in state.items():
        assert value.dtype == torch.float32
        torch.testing.assert_close(value, backbone[key], rtol=1e-3, atol=1e-3)
        assert not torch.equal(value, backbone[key])  # fp16-rounded, as the docstring says


def test_wrong_arguments_print_the_usage() -> None:
    result = _run("pack", "only-one-path")
    assert result.returncode == 2
    assert "Usage:" in result.stderr


def test_session_script_parses_and_its_overrides_are_valid_config(tmp_path: Path) -> None:
    # The GPU session cannot run here; its shell must parse, and the backbone must travel as a
    # training option (no monkeypatched weights lookup).
    session = SCRIPT.with_name("session.sh")
    subprocess.run(["bash", "-n", str(session)], check=True, timeout=30)
    assert "pretrained_weights=$weights" in session.read_text()
    from emotrace.training import load_config

    config = load_config(
        ROOT / "configs" / "mobilenet_v2_distilled_aligned_fer2013.yaml",
        [f"pretrained_weights={tmp_path / 'imagenet.pth'}"],
    )
    assert config.pretrained and config.pretrained_weights == str(tmp_path / "imagenet.pth")
