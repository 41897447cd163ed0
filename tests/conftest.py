"""Shared fixtures. Tests that need ../shared skip with a reason when it is absent."""

from __future__ import annotations

import contextlib
import io
import locale
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EMOTRACE_SHARED", REPO.parent / "shared"))


#: Under pytest-xdist (``make unit`` and ``make quick`` run ``-n 2 --dist loadfile``) each module
#: runs whole on one worker, so its module-scoped servers, browsers and trained models are made
#: once. Modules go to the workers in this order, the longest (about 25-90 s each on two cores)
#: first, so that neither worker is left running one of them alone at the end.
XDIST_LONGEST_FIRST = (
    "test_bundled_model.py",
    "test_training.py",
    "test_serve_fuzz.py",
    "test_batch.py",
    "test_qat.py",
    "test_batch_ray.py",
    "test_serve_background.py",
    "test_download.py",
    "test_distributed.py",
    "test_serve_recovery.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On an xdist worker, the modules of ``XDIST_LONGEST_FIRST`` first (a stable sort: the
    rest, and the tests within each module, in the order collected)."""
    if hasattr(config, "workerinput"):
        rank = {name: i for i, name in enumerate(XDIST_LONGEST_FIRST)}
        items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` (or ``$EMOTRACE_SHARED``); skips the test when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"needs the shared material at {SHARED} (absent)")
    return SHARED


@pytest.fixture(scope="session")
def fer2013_dir(shared_dir: Path) -> Path:
    """The FER2013 image release in ``../shared/datasets/fer2013``."""
    path = shared_dir / "datasets" / "fer2013"
    if not path.is_dir():
        pytest.skip(f"needs FER2013 at {path} (absent)")
    return path


def face_like(seed: int, size: int = 48, color: bool = False) -> np.ndarray:
    """A deterministic synthetic image (gradient + blobs), different for every seed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    base = (xx * rng.uniform(0.5, 3) + yy * rng.uniform(0.5, 3)) % 256
    image = base.astype(np.float32)
    for _ in range(3):
        cx, cy, r = rng.integers(0, size, 3)
        image[(xx - cx) ** 2 + (yy - cy) ** 2 < (r % (size // 3) + 2) ** 2] = rng.integers(0, 256)
    image = np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
    if color:
        return np.stack([image, np.roll(image, 3, 0), np.roll(image, 5, 1)], axis=2)
    return image


def write_image(path: Path, image: np.ndarray) -> Path:
    """Write ``image`` with OpenCV, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"could not write {path}")
    return path


def make_class_folders(
    root: Path,
    counts: dict[str, int],
    splits: tuple[str, ...] | None = ("train", "valid"),
    size: int = 48,
    suffix: str = ".png",
) -> Path:
    """Generate ``root/[split/]class/i.png`` images; returns ``root``."""
    seed = 0
    for split in splits or (None,):
        for name, n in counts.items():
            for i in range(n):
                folder = root / split / name if split else root / name
                write_image(folder / f"{name}_{i}{suffix}", face_like(seed, size))
                seed += 1
    return root


def sigint_as_in_a_terminal() -> None:
    """``preexec_fn`` of a child that a test sends Ctrl+C: a test runner started in the
    background (``cmd &`` in a script) ignores SIGINT, and children inherit that, so the child
    would never see the signal a terminal sends."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_emotrace(
    *args: str | Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m emotrace ARGS`` as a user would: a real process, no terminal on stdin.

    One torch/onnxruntime thread keeps parallel runs fair; with ``cwd`` the dataset cache goes
    under it, never into the user's cache.
    """
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    if cwd is not None:
        full_env.setdefault("EMOTRACE_CACHE", str(cwd / ".emotrace-cache"))
    return subprocess.run(
        [sys.executable, "-m", "emotrace", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=full_env,
        stdin=subprocess.DEVNULL,
    )


def run_emotrace_in_process(
    *args: str | Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """``run_emotrace`` without starting an interpreter: ``emotrace.cli.main.main(ARGS)`` here.

    For argument parsing, error messages and commands that finish in moments; it returns what
    ``run_emotrace`` does (exit code, stdout, stderr). It sets up what a fresh process would see:
    the working directory, the environment (``EMOTRACE_CACHE`` under ``cwd``), no terminal on
    stdin, stdout or stderr (rich and argparse then use 80 columns unless ``COLUMNS`` says
    otherwise), Python's default warning filters with warnings printed to stderr, and a
    traceback on stderr with exit code 1 for an uncaught exception; all of it, and torch's thread
    count, is restored afterwards. What native code writes to file descriptors 1 and 2 (OpenCV's
    and onnxruntime's own messages) is captured too, after what Python printed. Use
    ``run_emotrace`` for what needs a real process: signals, exit codes after Ctrl+C, variables
    read at import, ``python -m emotrace`` itself. ``timeout`` is accepted for symmetry and not
    enforced.
    """
    import traceback
    import warnings
    from unittest import mock

    from emotrace.cli.main import main

    del timeout
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    if cwd is not None:
        full_env.setdefault("EMOTRACE_CACHE", str(cwd / ".emotrace-cache"))
    # Text streams over bytes with the encoding and error handlers a child process would get
    # (a lone surrogate printed to stdout fails there too), read back as subprocess.run does.
    stdout, stderr = (
        io.TextIOWrapper(io.BytesIO(), encoding=stream.encoding, errors=stream.errors)
        for stream in (sys.__stdout__ or sys.stdout, sys.__stderr__ or sys.stderr)
    )

    def show_warning(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: object = None,
        line: str | None = None,
    ) -> None:
        stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    def no_terminal(*_: object) -> os.terminal_size:
        raise OSError("not a terminal")

    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None
    old_cwd = os.getcwd()
    with (
        open(os.devnull) as stdin,
        mock.patch.dict(os.environ, full_env, clear=True),
        mock.patch.object(sys, "stdin", stdin),
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
        mock.patch.object(os, "get_terminal_size", no_terminal),
        _fd_output(1) as native_stdout,
        _fd_output(2) as native_stderr,
        warnings.catch_warnings(),
    ):
        # A fresh interpreter's filters; each one added goes in front of those before it.
        warnings.resetwarnings()
        warnings.simplefilter("default")
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning):
            warnings.filterwarnings("ignore", category=category)
        warnings.filterwarnings("ignore", category=ResourceWarning)
        warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")
        warnings.showwarning = show_warning
        try:
            if cwd is not None:
                os.chdir(cwd)
            code: int | str | None = main([str(arg) for arg in args])
        except SystemExit as exc:
            code = exc.code
        except Exception:
            traceback.print_exc(file=stderr)
            code = 1
        finally:
            os.chdir(old_cwd)
            if torch is not None and threads is not None:
                torch.set_num_threads(threads)
    if isinstance(code, str):  # sys.exit("message") prints it and exits with 1
        stderr.write(code + "\n")
        code = 1
    return subprocess.CompletedProcess(
        ["emotrace", *map(str, args)],
        code or 0,
        _read_back(stdout, *native_stdout),
        _read_back(stderr, *native_stderr),
    )


@contextlib.contextmanager
def _fd_output(fd: int) -> Iterator[list[bytes]]:
    """Send what is written to file descriptor ``fd`` to a file meanwhile; yields a list that
    holds those bytes once the block is left and ``fd`` is restored."""
    written: list[bytes] = []
    for stream in (sys.__stdout__, sys.__stderr__):
        if stream is not None:
            stream.flush()
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(fd)
        os.dup2(sink.fileno(), fd)
        try:
            yield written
        finally:
            for stream in (sys.__stdout__, sys.__stderr__):
                if stream is not None:
                    stream.flush()
            os.dup2(saved, fd)
            os.close(saved)
            sink.seek(0)
            written.append(sink.read())


def _read_back(stream: io.TextIOWrapper, native: bytes = b"") -> str:
    """What ``subprocess.run(..., text=True)`` makes of the bytes written to ``stream`` and then
    of the bytes ``native`` (written to the file descriptor by native code)."""
    stream.flush()
    raw = stream.buffer.getvalue() + native  # type: ignore[attr-defined]
    text = raw.decode(locale.getpreferredencoding(False))
    return text.replace("\r\n", "\n").replace("\r", "\n")


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit code 2, no traceback, one ``emotrace: error: ...`` line holding every fragment."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("emotrace: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def finer_activation_rounding(int8_path: Path, output: Path) -> Path:
    """Write a copy of the QDQ int8 model whose activations round to 16 bits instead of 8.

    Scales shrink 256-fold and zero points grow 256-fold, so each activation keeps (to within one
    8-bit step at the top) the range it is clipped to, and only its rounding gets finer. Weights
    stay int8. It is built independently of ``emotrace.export.float_twin``: a twin that really is
    "int8 without activation rounding" must land near this model, far nearer than int8 does.
    """
    import onnx
    from onnx import helper, numpy_helper

    proto = onnx.load(str(int8_path))
    consts = {init.name: init for init in proto.graph.initializer}
    rescaled: set[str] = set()
    for node in proto.graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear") or node.input[0] in consts:
            continue  # weights and biases keep their int8 rounding
        node.domain = "com.microsoft"  # onnxruntime's Q/DQ take uint16 at this opset
        scale, zero = node.input[1], node.input[2]
        if scale in rescaled:
            continue
        rescaled.add(scale)
        s, z = numpy_helper.to_array(consts[scale]), numpy_helper.to_array(consts[zero])
        assert z.dtype == np.uint8, f"{int8_path}: activation zero point is {z.dtype}, not uint8"
        consts[scale].CopyFrom(numpy_helper.from_array((s / 256).astype(np.float32), scale))
        consts[zero].CopyFrom(numpy_helper.from_array(z.astype(np.uint16) * 256, zero))
    assert rescaled, f"{int8_path}: no activation quantisation found"
    if not any(opset.domain == "com.microsoft" for opset in proto.opset_import):
        proto.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save(proto, str(output))
    return output
