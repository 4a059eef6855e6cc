"""Who is running what (santad's execution context, spec §4.1 rows 4, 6–7, 18–20) and its code-signing flags.

The executing user, the process and its parent, the login sessions from utmp/utmpx, and the runtime
code-signing flags (`CS_*`) an exec event reports."""

from __future__ import annotations

import os
import pwd
import struct
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, NamedTuple


class UtmpEntry(NamedTuple):
    """A USER_PROCESS login record."""

    user: str
    line: str
    host: str


# Code-signing flags of a running process (xnu `cs_blobs.h`), as an ES exec event reports them
# (`ExecutionContext.cs_flags`): what decides the identifiers santad looks a process up by (§7.3)
# and what its execution event carries (§4.1).
CS_VALID = 0x1
CS_ADHOC = 0x2
CS_HARD = 0x100
CS_KILL = 0x200
CS_PLATFORM_BINARY = 0x4000000
CS_SIGNED = 0x20000000
CS_DEV_CODE = 0x40000000

_USER_PROCESS = 7
# glibc `struct utmp` (x86_64/aarch64, 384 bytes): type, pid, line, id, user, host, ...
_UTMP_LINUX = struct.Struct("<h2xi32s4s32s256s2hi2i4i20s")
# Darwin's on-disk `struct utmpx32` (628 bytes): user, id, line, pid, type, tv32, host, pad.
_UTMPX_DARWIN = struct.Struct("<256s4s32sih2x2i256s64s")


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def parse_utmp(data: bytes, layout: Literal["linux", "darwin"]) -> list[UtmpEntry]:
    """The USER_PROCESS records of a utmp (Linux) or utmpx (macOS) file's bytes."""
    entries = []
    fmt = _UTMP_LINUX if layout == "linux" else _UTMPX_DARWIN
    for offset in range(0, len(data) - fmt.size + 1, fmt.size):
        rec = fmt.unpack_from(data, offset)
        if layout == "linux":
            ut_type, line, user, host = rec[0], rec[2], rec[4], rec[5]
        else:
            user, line, ut_type, host = rec[0], rec[2], rec[4], rec[7]
        if ut_type == _USER_PROCESS and _cstr(user):
            entries.append(UtmpEntry(_cstr(user), _cstr(line), _cstr(host)))
    return entries


def read_utmp() -> list[UtmpEntry]:
    """This machine's login records; empty when there is no readable utmp file."""
    candidates: tuple[tuple[str, Literal["linux", "darwin"]], ...]
    if sys.platform == "darwin":
        candidates = (("/var/run/utmpx", "darwin"),)
    else:
        candidates = (("/var/run/utmp", "linux"), ("/run/utmp", "linux"))
    for path, layout in candidates:
        try:
            with open(path, "rb") as f:
                return parse_utmp(f.read(), layout)
        except OSError:
            continue
    return []


def sessions(entries: Iterable[UtmpEntry]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(`logged_in_users`, `current_sessions`) from USER_PROCESS records (§4.1 rows 6–7):
    distinct user names, and `user@host` (or `user@line` without a host) per record."""
    users: dict[str, None] = {}
    current = []
    for entry in entries:
        users.setdefault(entry.user)
        current.append(f"{entry.user}@{entry.host or entry.line}")
    return tuple(users), tuple(current)


def _process_name(pid: int) -> str | None:
    """Basename of a process's executable."""
    try:
        return os.path.basename(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
            return f.read().strip() or None
    except OSError:
        pass
    try:
        out = subprocess.run(["ps", "-o", "comm=", "-p", str(pid)], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    name = out.stdout.strip()
    return os.path.basename(name) if out.returncode == 0 and name else None


@dataclass(frozen=True, kw_only=True)
class ExecutionContext:
    """What santad knows about the process besides its file (§4.1 rows 4, 6–7, 18–20)."""

    executing_user: str | None = None
    pid: int | None = None
    ppid: int | None = None
    parent_name: str | None = None
    logged_in_users: tuple[str, ...] = ()
    current_sessions: tuple[str, ...] = ()
    cs_flags: int | None = None
    """The process's runtime code-signing flags; None = derive them from the file (`static_cs_flags`)."""

    @classmethod
    def current(cls) -> ExecutionContext:
        """This Python process: real UID's user name, pid, parent, and the utmp sessions."""
        try:
            user: str | None = pwd.getpwuid(os.getuid()).pw_name
        except KeyError:
            user = None
        ppid = os.getppid()
        users, current = sessions(read_utmp())
        return cls(
            executing_user=user,
            pid=os.getpid(),
            ppid=ppid,
            parent_name=_process_name(ppid),
            logged_in_users=users,
            current_sessions=current,
        )
