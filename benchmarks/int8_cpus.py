"""Int8 accuracy on CPUs without AVX-512 or VNNI, emulated with QEMU user mode, in one run.

    python benchmarks/int8_cpus.py                               # bundled default / default-int8
    python benchmarks/int8_cpus.py --model m_int8.onnx --reference m.onnx --every 3
    python benchmarks/int8_cpus.py --cpus Haswell Nehalem --json int8_cpus.json

onnxruntime picks its int8 kernels by the CPU's instruction sets: VNNI (AVX-512 or AVX-VNNI)
adds u8*s8 products in int32, while AVX2 and SSE4 add pairs of them in int16 with saturation, so
a model can be exact on one CPU and lose points on another (emotrace 0.1.0's int8 model: 68.5%
here, 65.0% on a real AVX2-only CPU). This script runs the same int8 model on the same FER2013
faces natively and under ``qemu-x86_64 -cpu MODEL`` (Haswell: AVX2 without AVX-512/VNNI;
Nehalem: SSE4.2 without AVX) and prints, per CPU: accuracy, agreement with the fp32 reference
and with the native int8 run, and the largest logit difference from the native run. The images
are prepared as the model expects (aligned crops included) by emotrace's dataset cache.

Needs ``qemu-user`` (Debian: ``apt-get install qemu-user``); emulation is slow (about 0.1 s per
face), so ``--every N`` takes every N-th image. Not timing: emulated speed means nothing.
Exit status 1 when an emulated CPU's logits differ from the native ones by more than
``--tolerance``, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from _common import describe, machine

REPO = Path(__file__).resolve().parents[1]

#: QEMU CPU models and what they lack, oldest last.
CPUS = {"Haswell": "AVX2 + FMA, no AVX-512, no VNNI", "Nehalem": "SSE4.2, no AVX"}

#: Run by this Python, natively and under QEMU: logits of a normalised batch (numpy + onnxruntime
#: only, so the emulated process starts quickly).
CHILD = """
import sys, numpy as np, onnxruntime as ort
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
x = np.load(sys.argv[2])
name = session.get_inputs()[0].name
np.save(sys.argv[3], np.concatenate([session.run(None, {name: x[i:i + 64]})[0]
                                     for i in range(0, len(x), 64)]))
"""


def model_file(name: str, folder: Path) -> Path:
    """A bundled model name (copied out of the package) or an ONNX path."""
    from emotrace.runtime.loading import BUNDLED_MODELS

    if name in BUNDLED_MODELS:
        path = folder / BUNDLED_MODELS[name]
        path.write_bytes(
            (resources.files("emotrace") / "assets" / BUNDLED_MODELS[name]).read_bytes()
        )
        return path
    path = Path(name)
    if not path.is_file():
        raise SystemExit(f"error: {name}: no such model file")
    return path


def logits(model: Path, x: Path, out: Path, prefix: list[str]) -> np.ndarray:
    """Run the child script (under ``prefix``, e.g. qemu) and read its logits."""
    script = out.with_suffix(".py")
    script.write_text(CHILD)
    run = subprocess.run(
        [*prefix, sys.executable, str(script), str(model), str(x), str(out)],
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        last = (run.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"error: running {model.name} {' '.join(prefix) or 'natively'}: {last}")
    return np.load(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default-int8", help="int8 model (name or .onnx)")
    parser.add_argument("--reference", default="default", help="its fp32 model (name or .onnx)")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/datasets/fer2013")
    parser.add_argument("--split", default="valid")
    parser.add_argument("--every", type=int, default=3, help="take every N-th image")
    parser.add_argument("--cpus", nargs="+", default=list(CPUS), choices=list(CPUS))
    # Kernels that do not saturate differ only in the float rounding of requantisation (SSE4.2
    # without FMA: up to 0.09); saturation moves logits by whole units (0.1.0's model: 4.2).
    parser.add_argument("--tolerance", type=float, default=0.5, help="max |logit difference|")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        print("error: needs qemu-x86_64 (Debian: apt-get install qemu-user)", file=sys.stderr)
        return 2
    if args.every < 1:
        print("error: --every must be at least 1", file=sys.stderr)
        return 2
    from emotrace.data.prepared import load_prepared
    from emotrace.errors import EmotraceError
    from emotrace.runtime.onnx_backend import OnnxBackend

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        try:
            int8_path = model_file(args.model, folder)
            ref_path = model_file(args.reference, folder)
            spec = OnnxBackend(int8_path).spec
            split = load_prepared(args.data, spec.preprocess).split(args.split)
        except EmotraceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        images, labels = split.images[:: args.every], split.labels[:: args.every]
        x = images.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        np.save(folder / "x.npy", ((x - spec.mean) / spec.std).astype(np.float32))
        fp32 = logits(ref_path, folder / "x.npy", folder / "fp32.npy", []).argmax(1)
        native = logits(int8_path, folder / "x.npy", folder / "native.npy", [])
        rows: list[dict[str, Any]] = []
        for cpu in ["native", *args.cpus]:
            out = native
            if cpu != "native":
                print(f"running {len(images)} faces under qemu -cpu {cpu} ...", flush=True)
                out = logits(
                    int8_path, folder / "x.npy", folder / f"{cpu}.npy", [qemu, "-cpu", cpu]
                )
            rows.append({
                "cpu": cpu,
                "isa": CPUS.get(cpu, "this machine"),
                "accuracy": float((out.argmax(1) == labels).mean()),
                "agreement_with_fp32": float((out.argmax(1) == fp32).mean()),
                "agreement_with_native": float((out.argmax(1) == native.argmax(1)).mean()),
                "max_logit_difference": float(np.abs(out - native).max()),
            })  # fmt: skip
    info = machine()
    print(f"\n{args.model} on {len(images)} FER2013 {args.split} faces (every {args.every});")
    print(f"host: {describe(info)}; fp32 {args.reference}: {(fp32 == labels).mean():.2%}")
    head = ("CPU", "instruction sets", "acc", "=fp32", "=native", "max|dlogit|")
    print(f"{head[0]:<9} {head[1]:<32} {head[2]:>7} {head[3]:>7} {head[4]:>8} {head[5]:>12}")
    for r in rows:
        print(
            f"{r['cpu']:<9} {r['isa']:<32} {r['accuracy']:>7.2%} {r['agreement_with_fp32']:>7.2%} "
            f"{r['agreement_with_native']:>8.2%} {r['max_logit_difference']:>12.4f}"
        )
    if args.json:
        args.json.write_text(
            json.dumps({"host": info, "model": args.model, "rows": rows}, indent=2)
        )
    return 0 if all(r["max_logit_difference"] <= args.tolerance for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
