"""DistributedDataParallel for ``emotrace train`` under ``torchrun``: what :func:`fit` needs.

torchrun starts one process per GPU (or CPU worker) and sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`setup` reads them and joins the process
group (NCCL on GPUs, gloo on CPUs). Outside torchrun (or with one process) it returns ``None``
and :func:`fit` runs exactly as before.

How the loop is shared, so that a DDP run means the same as a single-process one:

* ``batch_size`` stays the *global* batch: every step takes the same ``batch_size`` indices of one
  seeded order on every rank, and rank ``r`` trains on every ``world_size``-th of them. Each image
  is seen once per epoch across the ranks, the steps per epoch and the learning-rate schedule are
  those of a single process, and no learning-rate scaling is needed.
* Augmentation and dropout draw from per-rank seeds derived from ``(seed, epoch, rank)`` only,
  so a resumed run repeats an uninterrupted one (with the same number of processes).
* Training and validation figures are summed over the ranks (validation: each rank scores its
  share of the split), so ``history.csv`` holds whole-split numbers, and every rank takes the
  same early-stopping, plateau and time-budget decisions.
* Only rank 0 writes (checkpoints, ``state.pt``, history, curves, config) and logs; every rank
  reads the run folder on ``--resume``, so several machines need it on shared storage.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from emotrace.errors import ConfigError
from emotrace.evaluation.metrics import macro_f1
from emotrace.training.inference import confusion_matrix, predict_logits

if TYPE_CHECKING:
    from emotrace.training.config import TrainConfig


@dataclass(frozen=True)
class Distributed:
    """This process's place in a torchrun job."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes and logs."""
        return self.rank == 0

    def shard(self, indices: torch.Tensor) -> torch.Tensor:
        """This rank's share of one global batch (or of any index list)."""
        return indices[self.rank :: self.world_size]

    def seed(self, seed: int) -> int:
        """A seed for this rank's own randomness (augmentation, dropout) from ``seed``."""
        return int(np.random.SeedSequence([seed, self.rank]).generate_state(1)[0])

    def wrap(self, model: nn.Module) -> nn.Module:
        """``model`` in DistributedDataParallel: gradients are averaged over the ranks."""
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def _reduce(self, values: tuple[float, ...], op: Any) -> list[float]:
        # NCCL reduces GPU tensors only; gloo CPU ones. float64 keeps counts exact.
        device = self.device if dist.get_backend() == "nccl" else torch.device("cpu")
        tensor = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(tensor, op=op)
        return [float(v) for v in tensor.cpu()]

    def sum(self, *values: float) -> list[float]:
        """Each value summed over all ranks."""
        return self._reduce(values, dist.ReduceOp.SUM)

    def max(self, value: float) -> float:
        """The largest ``value`` of all ranks (for a decision every rank must share)."""
        return self._reduce((value,), dist.ReduceOp.MAX)[0]

    def evaluate(
        self,
        model: nn.Module,
        images: torch.Tensor,
        labels: torch.Tensor,
        config: TrainConfig,
        num_classes: int,
    ) -> dict[str, float]:
        """:func:`~emotrace.training.inference.evaluate_arrays` over the whole split, each rank
        scoring every ``world_size``-th image."""
        mine = torch.arange(self.rank, images.shape[0], self.world_size)
        logits = predict_logits(
            model,
            images[mine],
            config.mean,
            config.std,
            self.device,
            channels_last=config.channels_last,
        )
        truth = labels[mine]
        confusion = confusion_matrix(truth.numpy(), logits.argmax(1).numpy(), num_classes)
        loss = float(F.cross_entropy(logits, truth, reduction="sum")) if len(mine) else 0.0
        totals = self.sum(loss, *confusion.ravel().tolist())
        confusion = np.array(totals[1:], dtype=np.int64).reshape(num_classes, num_classes)
        count = max(int(confusion.sum()), 1)
        return {
            "val_loss": totals[0] / count,
            "val_accuracy": float(np.trace(confusion)) / count,
            "val_macro_f1": macro_f1(confusion),
        }


def launched() -> bool:
    """Whether this process is one of several started by torchrun."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def check_config(config: TrainConfig, world_size: int, device: torch.device) -> None:
    """Refuse, in one line, what cannot run distributed this way."""
    if config.batch_size % world_size:
        raise ConfigError(
            f"batch_size={config.batch_size} is the global batch and must divide evenly among "
            f"the {world_size} processes"
        )
    if config.sync_batchnorm and device.type != "cuda":
        raise ConfigError("sync_batchnorm needs GPUs (PyTorch's SyncBatchNorm is CUDA-only)")


def setup(config: TrainConfig) -> Distributed | None:
    """Join torchrun's process group (once; later calls return the same); ``None`` outside it."""
    if not launched():
        return None
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    wanted = config.device
    if wanted == "auto":
        wanted = "cuda" if torch.cuda.is_available() else "cpu"
    if wanted.startswith("cuda"):
        device = torch.device("cuda", local_rank)  # one GPU per process, by its local rank
        torch.cuda.set_device(device)
    else:
        device = torch.device(wanted)
    check_config(config, world, device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Distributed(rank, world, local_rank, device)


def prepare_model(ddp: Distributed, model: nn.Module, config: TrainConfig) -> nn.Module:
    """The model to train with: its BatchNorm layers synchronised when configured (same
    parameter names, so checkpoints load into a plain model). Wrap it with
    :meth:`Distributed.wrap` for the training forward."""
    if config.sync_batchnorm:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model


@contextmanager
def main_first(ddp: Distributed | None) -> Iterator[None]:
    """Run the block on rank 0 first, then on the others (rank 0 fills the dataset cache)."""
    if ddp is not None and not ddp.is_main:
        dist.barrier()
    yield
    if ddp is not None and ddp.is_main:
        dist.barrier()


def shutdown(wait_for_all: bool = False) -> None:
    """Leave the process group (at the end of a torchrun process).

    ``wait_for_all``: meet every rank at a barrier first (after a normal end). A rank that tears
    its group down while rank 0 is still writing curves can abort in gloo's threads ("terminate
    called without an active exception"); after an error the barrier is skipped, as the other
    ranks may never reach it.
    """
    if dist.is_available() and dist.is_initialized():
        if wait_for_all:
            dist.barrier()
        dist.destroy_process_group()


def quiet(log: Any, ddp: Distributed | None) -> Any:
    """``log`` on rank 0, a no-op elsewhere (one line per epoch, not one per process)."""
    return log if ddp is None or ddp.is_main else (lambda *args, **kwargs: None)
