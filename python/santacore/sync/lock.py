"""The sync lock (spec §1.2, §1.4): one sync at a time per state directory, for `santacore sync` and the daemon.

An flock on ``<state directory>/sync.lock``: a second sync waits, as santactl's request queues behind a running one.
The holder writes its pid and the time it took the lock into the file (``<pid> <ISO 8601 UTC>``), so a waiting
sync can say whom it waits for (`lock_holder`)."""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final

__all__ = ["SYNC_LOCK_NAME", "lock_holder", "sync_lock"]

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
            held = True
        else:
            held = _poll(fd, stop, waiting)
        if held:
            _write_holder(fd)
        yield held
    finally:
        os.close(fd)


def _write_holder(fd: int) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {stamp}\n".encode("ascii"), 0)
    except OSError:
        pass  # the lock itself is what matters; the note is for people


def lock_holder(state_directory: str | os.PathLike[str]) -> str:
    """Who holds (or last held) the sync lock, for a waiting sync's message: ``pid 123 since 2026-…Z``; "another
    process" when the file says nothing readable."""
    try:
        with open(os.path.join(os.fspath(state_directory), SYNC_LOCK_NAME), encoding="ascii") as f:
            pid, _, since = f.read(200).strip().partition(" ")
    except (OSError, UnicodeDecodeError):
        return "another process"
    if not pid.isdigit():
        return "another process"
    return f"pid {pid}" + (f" since {since}" if since else "")


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
