"""``emotrace train`` under torchrun: two real gloo processes on CPU, a generated dataset.

Each torchrun launch costs ~10 s on two busy cores (two Python processes importing torch), so the
whole story is one test: a 3-epoch run; a run stopped by its time budget after epoch 1 and then
resumed; both end with bit-identical weights and history.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from emotrace.data.cache import save
from emotrace.errors import ConfigError
from emotrace.training import TrainConfig
from emotrace.training.distributed import Distributed, check_config, setup
from test_training import RUN_FILES, band_dataset, history, val_loss_and_accuracy, weights_equal

DATA = band_dataset(n_train=96, n_valid=30)
CONFIG = {
    "model": "emonet",
    "preprocess": {"size": 32, "gray": True},
    "epochs": 3,
    "batch_size": 32,  # the global batch: 16 images per process and step
    "lr": 3e-3,
    "warmup_epochs": 0,
    "min_lr": 1e-6,
    "augment": {"rotation": 5, "zoom": 0.05, "erasing": 0.0},
    "threads": 1,
}
TIMING = {"seconds", "images_per_s"}


def torchrun(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m torch.distributed.run --nproc_per_node 2 -m emotrace train ARGS``."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [*command, "2", "-m", "emotrace", "train", *map(str, args), "--no-progress"],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def without_timing(run: Path) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k not in TIMING} for row in history(run)]


@pytest.mark.slow
@pytest.mark.torchrun
def test_two_gloo_processes_train_write_once_and_resume_exactly(tmp_path: Path) -> None:
    save(DATA, tmp_path / "data.npz")
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    before = set(tmp_path.iterdir())

    whole = torchrun("--config", "cfg.yaml", "--data", "data.npz", "--out", "whole", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert "distributed: 2 processes on cpu" in whole.stdout
    # Only rank 0 logs and writes: one line per epoch, one history row per epoch, run files only.
    assert [line.split()[1] for line in whole.stdout.splitlines() if line.startswith("epoch")] == [
        "1/3",
        "2/3",
        "3/3",
    ]
    assert {p.name for p in (tmp_path / "whole").iterdir()} == set(RUN_FILES)
    assert set(tmp_path.iterdir()) - before == {tmp_path / "whole"}
    rows = history(tmp_path / "whole")
    losses = [float(r["train_loss"]) for r in rows]
    assert len(rows) == 3 and losses[2] < losses[0] * 0.7  # it learns
    # The figures are over the whole split, not one process's share: the best row's validation
    # accuracy is what the saved model scores on all 30 images.
    best = max(rows, key=lambda r: float(r["val_accuracy"]))
    _, accuracy = val_loss_and_accuracy(tmp_path / "whole", DATA)
    assert accuracy == pytest.approx(float(best["val_accuracy"]), abs=1e-5)
    assert accuracy > 1 / 3

    # A time budget stops every process after epoch 1; the resumed run (2 processes again)
    # continues from its checkpoint and ends exactly where the uninterrupted one did.
    part = torchrun(
        "--config", "cfg.yaml", "--data", "data.npz", "--out", "part", "max_minutes=0.000001",
        cwd=tmp_path,
    )  # fmt: skip
    assert part.returncode == 0, part.stderr[-3000:]
    assert len(history(tmp_path / "part")) == 1
    resumed = torchrun("--resume", "part", "--data", "data.npz", "max_minutes=null", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming part at epoch 2/3" in resumed.stdout
    for name in ("last.safetensors", "model.safetensors"):
        assert weights_equal(tmp_path / "whole" / name, tmp_path / "part" / name), name
    assert without_timing(tmp_path / "part") == without_timing(tmp_path / "whole")


# The pieces, in this process ---------------------------------------------------------------------


def test_each_rank_takes_its_own_share_of_a_global_batch() -> None:
    batch = torch.randperm(12)
    shards = [Distributed(r, 3, r, torch.device("cpu")).shard(batch) for r in range(3)]
    assert [len(s) for s in shards] == [4, 4, 4]
    assert sorted(torch.cat(shards).tolist()) == sorted(batch.tolist())


def test_ranks_draw_different_but_reproducible_seeds() -> None:
    ranks = [Distributed(r, 2, r, torch.device("cpu")) for r in range(2)]
    assert ranks[0].seed(7) != ranks[1].seed(7)
    assert ranks[1].seed(7) == Distributed(1, 2, 1, torch.device("cpu")).seed(7)


def test_outside_torchrun_training_is_single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert setup(TrainConfig()) is None
    monkeypatch.setenv("WORLD_SIZE", "1")  # torchrun --nproc_per_node 1: nothing to share
    assert setup(TrainConfig()) is None


@pytest.mark.parametrize(
    ("options", "world", "fragment"),
    [
        ({"batch_size": 30}, 4, "batch_size=30 is the global batch"),
        ({"sync_batchnorm": True}, 2, "sync_batchnorm needs GPUs"),
    ],
)
def test_what_cannot_run_distributed_is_a_config_error(
    options: dict[str, object], world: int, fragment: str
) -> None:
    with pytest.raises(ConfigError, match=fragment):
        check_config(TrainConfig.from_dict(options), world, torch.device("cpu"))


def test_sync_batchnorm_must_be_a_boolean() -> None:
    with pytest.raises(ConfigError, match="sync_batchnorm must be true or false"):
        TrainConfig.from_dict({"sync_batchnorm": "yes"})
