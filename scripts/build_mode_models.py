"""Build the bundled ``accurate`` and ``fast`` models (see docs/model_card.md, "Modes").

    python scripts/build_mode_models.py accurate ../shared/datasets/fer2013 RUN_DIR
    python scripts/build_mode_models.py fast-init ../shared/datasets/fer2013 INIT_DIR
    python scripts/build_mode_models.py fast ../shared/datasets/fer2013 RUN_DIR

``accurate``: one int8 ONNX file (``emotrace.export.ensemble``) averaging ``default-int8`` and a
post-training int8 of the previous aligned default (EmoNet-deep, commit 8c47658, fitted on train;
512 train images, seed 0), each face with its mirror image. Its reference, the same ensemble of
the float members (``default``'s float twin and the EmoNet-deep file), is written to
``RUN/accurate_float_members.onnx``: not bundled, it is what the int8 file's figures are
compared with; ``RUN/fast_teacher.onnx`` is the same before its temperature is fitted, the
teacher ``fast`` was distilled from. Each file's temperature is fitted on aligned valid
(the only thing valid chooses besides the members); nothing is trained.

``fast-init``: the checkpoint ``fast`` starts from: the bundled default's trained weights (from its
float twin, ``emotrace.training.warm_start``) in the shallower 64 px net of
``configs/mobilenet_v2_fast_fer2013.yaml``, BatchNorm statistics from 2,048 train images (seed 0).

``fast``: a run of that config (started from ``fast-init``'s checkpoint and distilled from the
float-members ensemble; train it first, see the config), calibrated on valid and exported as
int8 fine-tuned for int8, as the default is (``emotrace export --int8 --qat-epochs 1``); its
float twin goes to ``RUN/fast_float_twin.onnx``.

Run from the repository root with the train extra installed; needs git (the EmoNet-deep member
comes from the repository's history).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "src" / "emotrace" / "assets"
#: The previous aligned default (EmoNet-deep on aligned crops), fitted on train only.
EMONET_COMMIT = "8c47658"


def aligned_split(data: Path, preprocess: object, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Prepared images and labels (in the model's class order) of one split."""
    from emotrace.data.prepared import load_prepared
    from emotrace.evaluation.evaluate import choose_split

    dataset = load_prepared(data, preprocess)  # type: ignore[arg-type]
    _, arrays = choose_split(dataset, split)
    return arrays.images, arrays.labels


def set_temperature(path: Path, data: Path) -> float:
    """Fit the file's temperature on aligned valid and store it in its metadata."""
    from emotrace.evaluation.calibration import fit_temperature
    from emotrace.evaluation.evaluate import batched_logits
    from emotrace.export.onnx_file import write_metadata
    from emotrace.runtime.onnx_backend import OnnxBackend

    backend = OnnxBackend(path, threads=None)
    images, labels = aligned_split(data, backend.spec.preprocess, "valid")
    temperature = fit_temperature(batched_logits(backend, images), labels)
    write_metadata(path, {**backend.meta, "temperature": temperature})
    return temperature


def build_accurate(data: Path, run: Path) -> None:
    from emotrace.export.ensemble import compose_ensemble
    from emotrace.export.quantize import quantize_int8
    from emotrace.runtime.onnx_backend import OnnxBackend

    with tempfile.TemporaryDirectory() as tmp:
        emonet = Path(tmp) / "emonet_deep_aligned.onnx"
        emonet.write_bytes(
            subprocess.run(
                ["git", "show", f"{EMONET_COMMIT}:src/emotrace/assets/emotrace_default.onnx"],
                cwd=ROOT,
                check=True,
                capture_output=True,
            ).stdout
        )
        member = OnnxBackend(emonet)
        train, _ = aligned_split(data, member.spec.preprocess, "train")
        calibration = train[np.random.default_rng(0).choice(len(train), 512, replace=False)]
        emonet_int8 = Path(tmp) / "emonet_deep_aligned_int8.onnx"
        quantize_int8(emonet, emonet_int8, calibration, member.meta)
        run.mkdir(parents=True, exist_ok=True)
        for name, members, out in (
            (
                "accurate-float-members",
                [ASSETS / "emotrace_default.onnx", emonet],
                run / "accurate_float_members.onnx",
            ),
            (
                "accurate",
                [ASSETS / "emotrace_default_int8.onnx", emonet_int8],
                ASSETS / "emotrace_accurate.onnx",
            ),
        ):
            compose_ensemble(members, out, name=name, flip=True)
            if name == "accurate-float-members":
                # fast's teacher: the float ensemble as composed, before its temperature is fit.
                shutil.copyfile(out, run / "fast_teacher.onnx")
            print(f"{out.name}: temperature {set_temperature(out, data):.4f}")


def build_fast_init(data: Path, out: Path) -> None:
    import torch

    from emotrace.models import build
    from emotrace.preprocessing import Preprocess
    from emotrace.training.checkpoint import save_checkpoint
    from emotrace.training.config import load_config
    from emotrace.training.inference import normalise, to_tensor_nchw
    from emotrace.training.warm_start import exported_weights, warm_start_mobilenet_v2

    config = load_config(ROOT / "configs" / "mobilenet_v2_fast_fer2013.yaml")
    preprocess = Preprocess.from_dict(config.preprocess)
    images, _ = aligned_split(data, preprocess, "train")
    chosen = np.random.default_rng(0).choice(len(images), 2048, replace=False)
    batch = normalise(to_tensor_nchw(images[np.sort(chosen)]), config.mean, config.std)
    options = {k: v for k, v in config.model_options.items() if k != "backbone_lr_mult"}
    model = build(
        "mobilenet_v2", num_classes=7, in_channels=1, input_size=preprocess.size,
        pretrained=False, **options,
    )  # fmt: skip
    torch.manual_seed(0)
    source = ASSETS / "emotrace_default.onnx"
    print(warm_start_mobilenet_v2(model, source, batch))
    meta = {
        "architecture": "mobilenet_v2",
        "model_options": options,
        "classes": exported_weights(source)[1]["classes"],  # the default's, in its order
        "channels": 1,
        "input_size": preprocess.size,
        "mean": config.mean,
        "std": config.std,
        "preprocess": preprocess.to_dict(),
        "source": "the bundled default's float twin (emotrace_default.onnx)",
    }
    print(save_checkpoint(model, meta, out / "model.safetensors"))


def build_fast(data: Path, run: Path) -> None:
    emotrace = [sys.executable, "-m", "emotrace"]
    subprocess.run([*emotrace, "calibrate", str(run), "--data", str(data), "--split", "valid"],
                   check=True)  # fmt: skip
    subprocess.run(
        [
            *emotrace, "export", str(run), "-o", str(ASSETS / "emotrace_fast.onnx"),
            "--int8", "--data", str(data), "--qat-epochs", "1", "--qat-lr", "3e-5",
            "--qat-augment", "--float-twin", str(run / "fast_float_twin.onnx"),
            "--fp16-weights", "--name", "fast",
        ],
        check=True,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("accurate", "fast-init", "fast"))
    parser.add_argument("data", type=Path, help="FER2013 image folders (train, valid)")
    parser.add_argument(
        "run",
        type=Path,
        help="accurate: where the float reference goes; fast-init: where the starting checkpoint "
        "goes; fast: the trained run",
    )
    args = parser.parse_args()
    if args.mode == "accurate":
        build_accurate(args.data, args.run)
    elif args.mode == "fast-init":
        build_fast_init(args.data, args.run)
    else:
        build_fast(args.data, args.run)


if __name__ == "__main__":
    main()
