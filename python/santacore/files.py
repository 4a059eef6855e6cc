"""Reading a file that must be a regular file of bounded size: an Info.plist, a configuration, a
profile, an import document. A FIFO there would block the open (or the read) forever, a device
such as /dev/zero would be read until memory runs out, and a huge sparse file costs its full size.

`read_regular_file` opens with O_NONBLOCK (so opening a FIFO without a writer cannot block), checks
the opened descriptor with fstat (no race with a rename between a stat and the open), clears
O_NONBLOCK and reads at most `limit` bytes, refusing the file if there is more."""

from __future__ import annotations

import errno
import os
import stat

MiB = 1024 * 1024

# Why each cap: far above any real file of the kind, far below what would hurt a laptop.
INFO_PLIST_LIMIT = 16 * MiB  # the largest Info.plist in macOS's own apps is well under 1 MiB
CODE_RESOURCES_LIMIT = 64 * MiB  # a seal of every resource file: a few MiB even for the largest apps
CONFIG_LIMIT = 1 * MiB  # a santacore TOML file is a few KiB, even with hundreds of StaticRules
PROFILE_LIMIT = 16 * MiB  # a signed .mobileconfig with certificates and StaticRules: tens of KiB
SYNC_STATE_LIMIT = 1 * MiB  # sync-state.json: a few hundred bytes of settings and times
IMPORT_LIMIT = 256 * MiB  # `rule --import`: ~250 bytes a rule, so a million rules fit with room to spare

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class UnsuitableFileError(OSError):
    """The file exists but is not one to read: not a regular file, or larger than the cap.
    An OSError with `filename` and `strerror` set, so every handler of OSError reports it as
    `path: reason`."""


def _size_text(limit: int) -> str:
    return f"{limit // MiB} MiB" if limit % MiB == 0 else f"{limit} bytes"


def _open_regular_file(path: str | os.PathLike[str]) -> tuple[int, os.stat_result]:
    """A blocking descriptor of the regular file at `path`, and its fstat; UnsuitableFileError
    for anything else. O_NONBLOCK makes opening a FIFO without a writer return at once."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = next((name for test, name in _KINDS if test(st.st_mode)), "a special file")
            code = errno.EISDIR if stat.S_ISDIR(st.st_mode) else errno.EINVAL
            raise UnsuitableFileError(code, f"not a regular file ({kind})", os.fspath(path))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def read_regular_file(path: str | os.PathLike[str], limit: int) -> bytes:
    """The contents of the regular file at `path`, at most `limit` bytes.

    Raises UnsuitableFileError ("not a regular file (a FIFO)", "larger than 16 MiB") or the
    OSError of the open or read itself."""
    fd, st = _open_regular_file(path)
    try:
        too_large = UnsuitableFileError(errno.EFBIG, f"larger than {_size_text(limit)}", os.fspath(path))
        if st.st_size > limit:
            raise too_large
        chunks = []
        remaining = limit + 1  # one byte more than allowed tells a file that grew past the cap
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1024 * 1024))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        if remaining <= 0:
            raise too_large
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_regular_file_head(path: str | os.PathLike[str], size: int) -> bytes:
    """The first `size` bytes (fewer if the file is shorter) of the regular file at `path`: a
    database's magic, say. Raises UnsuitableFileError or the OSError of the open or read."""
    fd, _ = _open_regular_file(path)
    try:
        return os.read(fd, size)
    finally:
        os.close(fd)
