"""The built wheel, installed in a fresh virtual environment without torch, runs the demo path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import cv2
import pytest

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "src" / "emotrace" / "assets"


@pytest.mark.slow
def test_wheel_installs_without_torch_and_labels_the_astronaut_happy(tmp_path: Path) -> None:
    if not (ASSETS / "emotrace_default.onnx").is_file():
        pytest.fail("the bundled default model is missing from src/emotrace/assets")
    data = pytest.importorskip("skimage.data", reason="scikit-image (demo extra) not installed")
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("emotrace-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    from emotrace.bundled import BUNDLED_MODELS

    for file in BUNDLED_MODELS.values():
        assert f"emotrace/assets/{file}" in names, file
    # Calibrated labels need the models' neutral reference (sessions/baseline.py).
    assert "emotrace/assets/neutral_reference.json" in names
    assert "emotrace/py.typed" in names
    static = REPO / "src" / "emotrace" / "server" / "static"
    page_files = {f"emotrace/server/static/{p.relative_to(static)}" for p in static.rglob("*.*")}
    assert page_files and page_files <= set(names), page_files - set(names)
    # Every bundled model (default, default-int8, accurate, fast) within the 20 MB budget.
    assert wheel.stat().st_size < 20e6

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if install.returncode != 0 and "No matching distribution" in install.stderr:
        pytest.skip(f"dependencies not installable here: {install.stderr.strip()[-200:]}")
    assert install.returncode == 0, install.stderr
    probe = subprocess.run(
        [str(python), "-c", "import importlib.util; print(importlib.util.find_spec('torch'))"],
        capture_output=True,
        text=True,
    )
    assert probe.stdout.strip() == "None", "torch must not be installed by the base package"

    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [str(env_dir / "bin" / "emotrace"), "predict", str(photo), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    (record,) = json.loads(result.stdout)
    assert [face["label"] for face in record["faces"]] == ["happy"]
