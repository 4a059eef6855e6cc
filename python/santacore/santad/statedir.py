"""Files in santacore's state directory (events.db, rules.db, sync state), created private and durably.

Files are 0600 and directories 0700; every new entry is made durable by fsyncing its directory, as
santad keeps /var/db/santa."""

from __future__ import annotations

import errno
import os

# fsync errors on a directory that mean "this file system cannot sync a directory", not "the sync
# failed": EINVAL and EROFS are fsync(2)'s "fd is bound to a file which does not support
# synchronization" (some FUSE, network and virtual file systems, e.g. 9p and vboxsf, answer a
# directory fsync with EINVAL); EBADF is what some systems return for fsync on a read-only
# descriptor, the only kind a directory can be opened as; ENOTSUP/EOPNOTSUPP say it outright.
# There is nothing more santacore can ask of such a file system, so these are not reported.
# PostgreSQL decides the same (`fsync_fname_ext` in src/backend/storage/file/fd.c ignores EBADF
# and EINVAL for directories). Every other error (EIO, ENOSPC, EDQUOT, ...) can mean the new
# directory entry was not written and a power cut would lose the file, so it is raised.
BENIGN_DIRECTORY_FSYNC_ERRORS = frozenset({errno.EINVAL, errno.EROFS, errno.EBADF, errno.ENOTSUP, errno.EOPNOTSUPP})


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
    """Make a directory's entries (files created, renamed or removed in it) durable.

    Raises OSError naming the directory when it cannot be opened or its fsync fails, except for
    the errors in `BENIGN_DIRECTORY_FSYNC_ERRORS` (a file system that cannot sync directories)."""
    path = directory or "."
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise OSError(e.errno, f"cannot open the directory to make its entries durable: {e.strerror}", path) from e
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in BENIGN_DIRECTORY_FSYNC_ERRORS:
            raise OSError(
                e.errno, f"fsync of the directory failed, its new entries may not be durable: {e.strerror}", path
            ) from e
    finally:
        os.close(fd)
