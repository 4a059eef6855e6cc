"""Which artifacts a command line names: each PATH that is a file is one; a folder that is a bundle
(Santa's §6.1 test, with an extension) is one; any other folder is walked for the archives, bundles
and loose Mach-O files inside it (symlinks are not followed, a bundle is not entered). Files are
told by their first bytes, never by their names."""

from __future__ import annotations

import os
from collections.abc import Iterator

from santacore._core import archive_kind, sniff_macho_bytes
from santacore.identity.bundle import bundle_at

_HEAD = 4096


def is_candidate_file(path: str) -> bool:
    """An archive the engine reads, or a Mach-O file (any type)."""
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD)
    except OSError:
        return False
    return archive_kind(head) is not None or sniff_macho_bytes(head).is_macho or _fat_head(head)


def _fat_head(head: bytes) -> bool:
    # A fat file's slices lie past the first page, so the head alone cannot confirm them: let the
    # scan decide (it records "not an archive, bundle or Mach-O file" if it is a Java class).
    return head[:4] in (b"\xca\xfe\xba\xbe", b"\xbe\xba\xfe\xca")


def _is_bundle(path: str) -> bool:
    b = bundle_at(path)
    return b is not None and bool(b.extension)


def artifacts(paths: list[str]) -> Iterator[str]:
    """Absolute paths of the artifacts below `paths`, in order, each once. A PATH that does not
    exist raises FileNotFoundError when reached."""
    seen: set[str] = set()
    for given in paths:
        path = os.path.abspath(given)
        if not os.path.isdir(path):
            os.stat(path)  # a missing PATH is the caller's error to report
            if path not in seen:
                seen.add(path)
                yield path
            continue
        if _is_bundle(path):
            if path not in seen:
                seen.add(path)
                yield path
            continue
        for top, dirs, files in os.walk(path):
            dirs.sort()
            keep = []
            for d in dirs:
                full = os.path.join(top, d)
                if os.path.islink(full):
                    continue
                if _is_bundle(full):
                    if full not in seen:
                        seen.add(full)
                        yield full
                else:
                    keep.append(d)
            dirs[:] = keep
            for name in sorted(files):
                full = os.path.join(top, name)
                if full not in seen and not os.path.islink(full) and is_candidate_file(full):
                    seen.add(full)
                    yield full
