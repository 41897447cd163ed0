"""Ctrl+C in emotrace: never swallowed, and never in the middle of a file.

The rule, for every command (export, calibrate, train, analyze, live, batch, downloads):

1. :func:`watch_interrupts` (the CLI runs every command inside it) replaces Python's SIGINT
   handler with one that first *remembers* the signal, then raises ``KeyboardInterrupt`` as Python's
   own does. Python runs a signal handler between two bytecodes of the main thread, which may be
   inside a finalizer or a weakref callback (torch has many); an exception raised there is printed
   as "Exception ignored in ..." and dropped, and the program would go on as if nothing happened.
   The memory survives that.
2. Safe points act on the memory (and a command that stops because of it, in its own way, calls
   :func:`acknowledge_interrupt`): :func:`raise_if_interrupted` is called before a staged file
   replaces its destination (:mod:`emotrace._atomic`), at the end of each held block below, at each
   epoch, frame, video and download chunk, and by the CLI when the command returns, so a Ctrl+C
   the command never saw still ends it with exit code 130 and never installs a half-made file.
3. :func:`hold_interrupt` marks a unit of output (an epoch's files, a frame's records) that must be
   written whole: inside it the handler only remembers; the block's end is a safe point.

Outside :func:`watch_interrupts` (emotrace used as a library) Python's own handler stays in place
and nothing is remembered: the library does not take over its host's signals, except inside
:func:`hold_interrupt`, which remembers a Ctrl+C received during the block and raises at its end.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_received = False  # a Ctrl+C arrived since watch_interrupts() began (or within a held block)
_held = 0  # depth of hold_interrupt() blocks on the main thread


def _remember(signum: int, frame: FrameType | None) -> None:
    global _received
    _received = True
    if not _held:
        raise KeyboardInterrupt


def interrupted() -> bool:
    """True once a Ctrl+C has been received under :func:`watch_interrupts` (or in a held block)."""
    return _received


def acknowledge_interrupt() -> None:
    """Called where a command stops *because of* the Ctrl+C and ends in its own way (``live``
    ends its session normally, ``train`` saves and exits 130): the signal is acted on, so the CLI
    does not turn the command's own ending into "interrupted"."""
    global _received
    _received = False


def raise_if_interrupted() -> None:
    """A safe point: raise ``KeyboardInterrupt`` if a Ctrl+C was received and not yet acted on
    (its exception may have been swallowed where Python cannot propagate it)."""
    if _received and not _held:
        raise KeyboardInterrupt


def _can_handle_signals() -> bool:
    if threading.current_thread() is not threading.main_thread():
        return False
    return signal.getsignal(signal.SIGINT) not in (signal.SIG_IGN, None)


@contextmanager
def watch_interrupts() -> Iterator[None]:
    """Remember every Ctrl+C for the duration of the block (see the module's rule).

    Restores the previous handler and forgets the signal on exit, so one in-process run does not
    leak into the next. A no-op off the main thread, or where SIGINT is ignored.
    """
    global _received
    if not _can_handle_signals():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    _received = False
    signal.signal(signal.SIGINT, _remember)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _received = False


@contextmanager
def hold_interrupt() -> Iterator[None]:
    """Delay Ctrl+C until the block ends, so files written inside it are complete or absent.

    The end of the block is a safe point: a Ctrl+C received inside it, or earlier and swallowed,
    raises ``KeyboardInterrupt`` there. Only the main thread can handle signals; elsewhere (and
    where SIGINT is ignored) it is a no-op.
    """
    global _held, _received
    if not _can_handle_signals():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    watched = previous is _remember
    if not watched:  # a library caller: remember only for this block
        _received = False
        signal.signal(signal.SIGINT, _remember)
    _held += 1
    try:
        yield
    finally:
        _held -= 1
        if not watched:
            signal.signal(signal.SIGINT, previous)
    received = _received
    if not watched:
        _received = False
    if received and not _held:  # an enclosing held block acts on it at its own end
        raise KeyboardInterrupt
