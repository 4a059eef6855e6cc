"""The sync lock (spec §1.2, §1.4): one sync at a time per state directory, for `santacore sync` and the daemon.

An flock on ``<state directory>/sync.lock``: a second sync waits, as santactl's request queues behind a running one."""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final

__all__ = ["SYNC_LOCK_NAME", "sync_lock"]

SYNC_LOCK_NAME: Final = "sync.lock"
_POLL: Final = 0.05


@contextmanager
def sync_lock(
    state_directory: str | os.PathLike[str],
    *,
    stop: Callable[[], bool] | None = None,
    waiting: Callable[[], None] = lambda: None,
) -> Iterator[bool]:
    """Hold the state directory's sync lock for the `with` block; a second sync waits for the first, as santactl's
    request queues behind a running one. Without `stop`, blocks until the lock is free and yields True. With it,
    polls instead (so the caller can give up): yields False as soon as `stop()` is true before the lock was taken.
    `waiting` is called once when the lock is held elsewhere. The lock goes with the file descriptor on exit."""
    directory = os.fspath(state_directory)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd = os.open(os.path.join(directory, SYNC_LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if stop is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield True
        else:
            yield _poll(fd, stop, waiting)
    finally:
        os.close(fd)


def _poll(fd: int, stop: Callable[[], bool], waiting: Callable[[], None]) -> bool:
    announced = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
        if stop():
            return False
        if not announced:
            waiting()
            announced = True
        time.sleep(_POLL)
