"""The plain-Python catalog scan the benchmark compares against: zipfile / tarfile + hashlib, one
process, one thread, no engine. For every archive: every regular member is read once (streamed
through SHA-256; a member whose first bytes are a Mach-O magic is kept whole for the sniff, which
needs its fat slice headers), Mach-O files are sniffed with `tests/reference.py`, and each bundle
root — the highest folder with a bundle extension that holds an Info.plist where Santa looks
(`Contents/Info.plist`, `Resources/Info.plist`, `Info.plist`) — gets Santa's bundle hash over its
MH_EXECUTE members.

    python -m benches.catalog_plain ARCHIVE... > result.json

It prints one JSON object per archive: its SHA-256, size, Mach-O count, and {bundle root: [bundle
hash, binary count]} — what the benchmark checks against the catalog's.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from typing import IO

from tests.reference import HASH_CHUNK_SIZE, sniff, super_hash

MAGICS = {
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",
    b"\xbe\xba\xfe\xca",
}
BUNDLE_EXTENSIONS = (".app", ".framework", ".bundle", ".plugin", ".appex", ".kext", ".xpc", ".qlgenerator")
PLIST_PLACES = ("Contents/Info.plist", "Resources/Info.plist", "Info.plist")


def _members(path: str) -> Iterator[tuple[str, IO[bytes]]]:
    """(name, stream) of every regular member, in archive order."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if not info.is_dir() and (info.external_attr >> 28) != 0o12:  # not a symlink
                    with z.open(info) as f:
                        yield info.filename, f
        return
    with tarfile.open(path) as t:
        for member in t:
            if member.isreg():
                extracted = t.extractfile(member)
                if extracted is not None:
                    yield member.name, extracted


def scan(path: str) -> dict[str, object]:
    with open(path, "rb") as f:
        artifact = hashlib.file_digest(f, "sha256").hexdigest()
    names: set[str] = set()
    executables: dict[str, str] = {}
    macho = 0
    for name, stream in _members(path):
        name = posixpath.normpath(name.lstrip("/"))
        names.add(name)
        head = stream.read(HASH_CHUNK_SIZE)
        digest = hashlib.sha256(head)
        kept = [head] if head[:4] in MAGICS else None
        while chunk := stream.read(HASH_CHUNK_SIZE):
            digest.update(chunk)
            if kept is not None:
                kept.append(chunk)
        if kept is None:
            continue
        found = sniff(b"".join(kept))
        if found.is_macho:
            macho += 1
            if found.is_executable:
                executables[name] = digest.hexdigest()
    bundles: dict[str, list[object]] = {}
    for root in _bundle_roots(names):
        hashes = [h for member, h in executables.items() if member.startswith(root + "/")]
        bundles[root] = [super_hash(hashes), len(set(hashes))]
    return {"path": path, "sha256": artifact, "macho": macho, "bundles": bundles}


def _bundle_roots(names: set[str]) -> list[str]:
    """The highest folders with a bundle extension and an Info.plist where Santa reads it."""
    folders = {posixpath.dirname(n) for n in names}
    while "" not in folders and folders:
        folders |= {posixpath.dirname(f) for f in folders}
    candidates = sorted(
        f for f in folders if f.endswith(BUNDLE_EXTENSIONS) and any(f"{f}/{place}" in names for place in PLIST_PLACES)
    )
    roots: list[str] = []
    for folder in candidates:
        if not any(folder.startswith(root + "/") for root in roots):
            roots.append(folder)
    return roots


if __name__ == "__main__":
    for archive in sys.argv[1:]:
        print(json.dumps(scan(archive)))
