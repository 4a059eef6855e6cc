"""Files in santacore's state directory (events.db, rules.db, sync state): created private
(0600, directories 0700) and durably (the directory entry is fsynced), as santad keeps
/var/db/santa."""

from __future__ import annotations

import os


def create_private_file(path: str) -> None:
    """Create `path` empty with mode 0600 and any missing directories with 0700, durably.
    An existing file is left alone (a concurrent opener won; the caller inspects it)."""
    directory = os.path.dirname(path)
    missing = []
    d = directory
    while d and not os.path.isdir(d):
        missing.append(d)
        d = os.path.dirname(d)
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            pass
        fsync_directory(os.path.dirname(d))
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600))
    except FileExistsError:
        return
    fsync_directory(directory)


def fsync_directory(directory: str) -> None:
    """Make a directory's entries durable; best effort where the platform cannot."""
    try:
        fd = os.open(directory or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
