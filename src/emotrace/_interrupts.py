"""Holding Ctrl+C back while a unit of output (an epoch's files, a frame's records) is written."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def hold_interrupt() -> Iterator[None]:
    """Delay Ctrl+C until the block ends, so files written inside it are complete or absent.

    Only the main thread can handle signals; elsewhere (and where SIGINT is ignored) it is a no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous in (signal.SIG_IGN, None):
        yield
        return
    received: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt
