"""Knowledge distillation: soft targets from one teacher model or an ensemble of them.

A training image's target is ``distill_weight`` of the teachers' average probabilities plus the
rest of its label-smoothed one-hot label. Teachers run through the engine users get (onnxruntime
for ``.onnx`` files and bundled models), in one of two ways (``distill_mode``):

``fixed``
    Each teacher's probabilities on every training image, averaged over the image and its mirror,
    are computed once before training. Each teacher sees the images prepared its own way (its own
    framing, size, colour), re-read from the dataset when that differs from the training data's.
    A mixed batch (mixup, CutMix) mixes its targets as it mixes its images.

``consistent``
    A teacher that prepares faces as the training data is prepared (the same framing, colour and
    equalisation; only the size may differ, and the batch is resized for it) sees every
    augmented, mixed batch exactly as the student sees it, each step: the student learns the
    teacher's answers on the views it trains on rather than on views it never sees ("a good
    teacher is patient and consistent", Beyer et al., CVPR 2022). Teachers that frame faces
    another way cannot see the student's view; they keep fixed targets (logged).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from emotrace.errors import ConfigError
from emotrace.preprocessing import Preprocess
from emotrace.training.config import TrainConfig

if TYPE_CHECKING:
    from emotrace.runtime.classifier import EmotionClassifier


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``logits`` against probability rows ``target``."""
    return -(target * F.log_softmax(logits.float(), dim=1)).sum(dim=1).mean()


class Distillation:
    """The targets of each training batch: a precomputed part per image (the label's share and
    the fixed teachers' share) plus, in ``consistent`` mode, the online teachers' answers on the
    batch itself."""

    def __init__(
        self,
        base: torch.Tensor,
        online: list[EmotionClassifier],
        online_weight: float,
        mean: float,
        std: float,
    ) -> None:
        self.base = base
        self.online = online
        self.online_weight = online_weight  # each online teacher's share of the target
        self.mean, self.std = mean, std

    def targets(
        self,
        idx: torch.Tensor,
        x: torch.Tensor,
        perm: torch.Tensor | None = None,
        lam: float = 1.0,
    ) -> torch.Tensor:
        """Targets ``(B, K)`` for the batch of training images ``idx``, fed to the student as
        ``x`` (augmented, normalised with the run's mean and std, and mixed: image ``i`` is
        ``lam`` of image ``i`` and ``1 - lam`` of image ``perm[i]``)."""
        target = self.base[idx]
        if perm is not None:
            pair = perm.cpu()
            target = lam * target + (1 - lam) * target[pair]
        target = target.to(x.device)
        if self.online:
            # Mixing commutes with the affine normalisation, so this is the mixed [0, 1] batch.
            scaled = x.detach().float() * self.std + self.mean
            for teacher in self.online:
                view = _resized(scaled, teacher.spec.input_size)
                target = target + self.online_weight * _probabilities(teacher, view)
        return target


def build_distillation(
    config: TrainConfig,
    images: np.ndarray,
    labels: torch.Tensor,
    num_classes: int,
    log: Callable[[str], None] = print,
    prepared_as: Preprocess | None = None,
    images_for: Callable[[Preprocess], np.ndarray] | None = None,
    classes: list[str] | None = None,
    device: torch.device | None = None,
) -> Distillation:
    """The :class:`Distillation` of ``config`` for training ``images`` and their ``labels``.

    Fixed teachers' probabilities are each averaged over the image and its mirror (so they agree
    with flip augmentation) and several teachers are averaged. ``images`` are the training images
    as prepared with ``prepared_as`` (unknown: only their shape is checked); a fixed teacher whose
    preprocessing differs (another framing, size or colour) gets ``images_for(its
    preprocessing)`` instead, the same images in the same order prepared its way. Teachers that
    are checkpoints (run folders) run on ``device``, the student's; ONNX teachers on the CPU."""
    teachers = [(n, load_teacher(n, config, num_classes, classes, device)) for n in config.teachers]
    online: list[tuple[str, EmotionClassifier]] = []
    if config.distill_mode == "consistent":
        if prepared_as is None:
            raise ConfigError("distill_mode=consistent needs to know how the data was prepared")
        online = [(n, t) for n, t in teachers if sees_as(t.spec.preprocess, prepared_as)]
        if not online:
            raise ConfigError(
                "distill_mode=consistent: no teacher prepares faces as the training data is "
                f"prepared ({prepared_as.to_dict()}; only the size may differ); use "
                "distill_mode=fixed"
            )
    fixed = [pair for pair in teachers if pair not in online]
    base = _targets(
        config, fixed, len(teachers), images, labels, num_classes, log, prepared_as, images_for
    )
    for name, teacher in online:
        resized = (
            f", resized to {teacher.spec.input_size} px"
            if prepared_as is not None and teacher.spec.input_size != prepared_as.size
            else ""
        )
        log(
            f"distillation: teacher {name} sees each augmented batch as the student does "
            f"(consistent{resized})"
        )
    return Distillation(
        base,
        [teacher for _, teacher in online],
        config.distill_weight / len(teachers),
        config.mean,
        config.std,
    )


def load_teacher(
    name: str,
    config: TrainConfig,
    num_classes: int,
    classes: list[str] | None,
    device: torch.device | None = None,
) -> EmotionClassifier:
    """A teacher model, checked to predict the data's classes in the data's order; a checkpoint
    is moved to ``device``."""
    from emotrace.runtime.classifier import EmotionClassifier
    from emotrace.runtime.torch_backend import TorchBackend

    # As many threads as torch's (one per process under torchrun, unless OMP_NUM_THREADS says
    # otherwise), so teachers in several processes do not each take every core.
    teacher = EmotionClassifier(name, threads=config.threads or torch.get_num_threads())
    if device is not None and isinstance(teacher.backend, TorchBackend):
        teacher.backend.to(device)
    if len(teacher.spec.classes) != num_classes or (
        classes is not None and list(teacher.spec.classes) != list(classes)
    ):
        raise ConfigError(
            f"teacher {name} predicts {', '.join(teacher.spec.classes)}; the data's classes "
            f"are {', '.join(classes) if classes else num_classes} (same names, same order)"
        )
    return teacher


def sees_as(teacher: Preprocess, data: Preprocess) -> bool:
    """Whether a teacher preparing faces as ``teacher`` can be given the training data's images
    (prepared as ``data``) resized: everything but the size agrees."""
    return dataclasses.replace(teacher, size=data.size) == data


def _targets(
    config: TrainConfig,
    teachers: list[tuple[str, EmotionClassifier]],
    total: int,
    images: np.ndarray,
    labels: torch.Tensor,
    num_classes: int,
    log: Callable[[str], None],
    prepared_as: Preprocess | None,
    images_for: Callable[[Preprocess], np.ndarray] | None,
) -> torch.Tensor:
    """The label's share of the targets plus the share of the fixed ``teachers`` (each
    ``distill_weight / total``: the online teachers fill the rest)."""
    probs = np.zeros((len(images), num_classes), np.float32)
    for name, teacher in teachers:
        started = time.perf_counter()
        seen = images
        own_way = teacher.spec.preprocess
        if (prepared_as is not None and own_way != prepared_as) or not _shape_fits(own_way, images):
            if images_for is None:
                raise ConfigError(
                    f"teacher {name} expects {teacher.spec.input_size} px images with "
                    f"{teacher.spec.channels} channel(s) prepared as "
                    f"{own_way.to_dict()}; the training data has "
                    f"{images.shape[1]} px and {images.shape[3]} and its source dataset is "
                    "not available to prepare them that way"
                )
            seen = images_for(own_way)
        own = np.empty_like(probs)
        for start in range(0, len(seen), 1024):
            batch = seen[start : start + 1024]
            own[start : start + 1024] = (
                teacher.predict(batch) + teacher.predict(np.ascontiguousarray(batch[:, :, ::-1]))
            ) / 2
        agreement = float((own.argmax(1) == labels.numpy()).mean())
        log(
            f"distillation: teacher {name} agrees with {agreement:.1%} of the training labels "
            f"({time.perf_counter() - started:.0f} s)"
        )
        probs += own / total
    if len(teachers) > 1:
        agreement = float((probs.argmax(1) == labels.numpy()).mean())
        log(f"distillation: the {len(teachers)} teachers together agree with {agreement:.1%}")
    smooth = F.one_hot(labels, num_classes).float() * (1 - config.label_smoothing)
    smooth += config.label_smoothing / num_classes
    weight = config.distill_weight
    return weight * torch.from_numpy(probs) + (1 - weight) * smooth


def _probabilities(teacher: EmotionClassifier, view: torch.Tensor) -> torch.Tensor:
    """A teacher's probabilities on a batch of [0, 1] faces ``view``, on ``view``'s device: a
    checkpoint answers where the batch is; an ONNX model through onnxruntime on the CPU."""
    from emotrace.runtime.torch_backend import TorchBackend

    backend = teacher.backend
    if isinstance(backend, TorchBackend):
        return torch.softmax(backend.logits_tensor(view) / teacher.spec.temperature, dim=1)
    probs = teacher.predict_scaled(view.cpu().contiguous().numpy())
    return torch.from_numpy(probs).to(view.device)


def _resized(x: torch.Tensor, size: int) -> torch.Tensor:
    """``x`` at ``size`` pixels, resampled as :func:`emotrace.preprocessing.prepare_face` does:
    pixel areas when shrinking, bilinear when growing."""
    if x.shape[-1] == size:
        return x
    mode = "area" if size < x.shape[-1] else "bilinear"
    return F.interpolate(x, size=(size, size), mode=mode)


def _shape_fits(settings: Preprocess, images: np.ndarray) -> bool:
    """Whether images of this shape can have been prepared with ``settings``."""
    return settings.size == images.shape[1] and settings.channels == images.shape[3]
