"""Ctrl+C is never swallowed: the rule in ``emotrace._interrupts``.

The signals here are sent by the process to itself (``os.kill``), so Python runs the handler at a
known place: no timing is involved and the tests cannot race.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import pytest

from conftest import sigint_as_in_a_terminal
from emotrace._atomic import staged_file
from emotrace._interrupts import (
    hold_interrupt,
    interrupted,
    raise_if_interrupted,
    watch_interrupts,
)

# A Ctrl+C that lands inside a weakref callback, as it did inside torch during an int8 export:
# Python prints "Exception ignored in ..." and drops the KeyboardInterrupt.
SWALLOWED_IN_A_CALLBACK = textwrap.dedent(
    """
    import os, signal, sys, weakref
    from pathlib import Path
    from emotrace._atomic import staged_file
    from emotrace._interrupts import watch_interrupts

    class Resource:
        pass

    out = Path(sys.argv[1])
    with watch_interrupts():
        try:
            with staged_file(out) as staged:
                staged.write_text("half-made")
                resource = Resource()
                ref = weakref.ref(resource, lambda _: os.kill(os.getpid(), signal.SIGINT))
                del resource  # the callback runs here; its KeyboardInterrupt is dropped
                print("went on", flush=True)
        except KeyboardInterrupt:
            sys.exit(130)
    """
)


@pytest.fixture(autouse=True)
def _ctrl_c_as_in_a_terminal() -> Iterator[None]:
    # A test runner started in the background ignores SIGINT (emotrace then rightly leaves it
    # alone); these tests are about Ctrl+C as a terminal sends it.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_ctrl_c_swallowed_in_a_callback_keeps_the_staged_file_out(tmp_path: Path) -> None:
    out = tmp_path / "model.onnx"
    out.write_text("earlier, good")
    run = subprocess.run(
        [sys.executable, "-c", SWALLOWED_IN_A_CALLBACK, str(out)],
        capture_output=True, text=True, timeout=60, preexec_fn=sigint_as_in_a_terminal,
    )  # fmt: skip
    assert "Exception ignored" in run.stderr  # Python did swallow it: the case under test
    assert run.stdout == "went on\n"
    assert run.returncode == 130, run.stderr
    assert out.read_text() == "earlier, good"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_watched_ctrl_c_raises_and_is_remembered_until_the_block_ends() -> None:
    before = signal.getsignal(signal.SIGINT)
    with watch_interrupts():
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            raise_if_interrupted()  # not reached: the handler raised already
        assert interrupted()
        with pytest.raises(KeyboardInterrupt):
            raise_if_interrupted()  # every later safe point acts on it
    assert not interrupted()
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.parametrize("watched", [True, False], ids=["under the CLI", "as a library"])
def test_a_held_block_finishes_its_unit_then_raises(watched: bool) -> None:
    written: list[str] = []
    watching = watch_interrupts() if watched else nullcontext()
    with watching, pytest.raises(KeyboardInterrupt), hold_interrupt():
        os.kill(os.getpid(), signal.SIGINT)
        written.append("frames.csv")
        with hold_interrupt():  # nested: only the outermost block raises
            written.append("faces.csv")
        written.append("summary.json")
    assert written == ["frames.csv", "faces.csv", "summary.json"]
    assert not interrupted()


def test_a_held_block_without_ctrl_c_is_transparent() -> None:
    with watch_interrupts(), hold_interrupt():
        pass
    with hold_interrupt():
        pass
    raise_if_interrupted()


def test_a_staged_file_replaces_its_destination_when_not_interrupted(tmp_path: Path) -> None:
    out = tmp_path / "model.onnx"
    out.write_text("old")
    with watch_interrupts(), staged_file(out) as staged:
        staged.write_text("new")
    assert out.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_a_command_that_ends_because_of_ctrl_c_acknowledges_it() -> None:
    # `live` ends its session normally on Ctrl+C (exit 0); `train` saves and exits 130 itself.
    from emotrace._interrupts import acknowledge_interrupt

    with watch_interrupts():
        try:
            os.kill(os.getpid(), signal.SIGINT)
        except KeyboardInterrupt:
            acknowledge_interrupt()
        assert not interrupted()
        raise_if_interrupted()  # nothing left to act on
