"""Holding Ctrl-C while a C++ extension initialises.

LIEF's module initialisation (nanobind) runs Python code from C++; a KeyboardInterrupt raised there does
not unwind through it: the process aborts (SIGABRT) or crashes (SIGSEGV) instead of printing
"interrupted". `deferred_sigint` keeps the interrupt until the import is done, then delivers it as the
handler that was in place would have."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["deferred_sigint"]


@contextmanager
def deferred_sigint() -> Iterator[None]:
    """Run the block with SIGINT held; an interrupt that arrived meanwhile is delivered when it ends.
    Off the main thread (where signal handlers cannot be set) the block runs as is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[FrameType | None] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            if callable(previous):
                previous(signal.SIGINT, received[0])  # Python's default handler raises KeyboardInterrupt here
            elif previous == signal.SIG_DFL:
                os.kill(os.getpid(), signal.SIGINT)
