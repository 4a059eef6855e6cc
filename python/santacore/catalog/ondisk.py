"""Artifacts that are already files and folders on disk: a loose Mach-O, a bundle, a directory.

Bundles are found and hashed exactly as `santacore bundleinfo` does it (`santacore.identity.bundle`:
Santa's bundle roots, the engine's parallel walk and hash), and every Mach-O gets the identity
`santacore fileinfo` gives it (`santacore.identity.fileinfo.file_info`).
"""

from __future__ import annotations

import hashlib
import os
import stat

from santacore._core import sniff_macho
from santacore.catalog.model import BinaryRecord, BundleRecord
from santacore.identity.bundle import Bundle, bundle_at, hash_bundle, resolve_bundle_root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _relative(root: str, path: str) -> str:
    rel = os.path.relpath(path, root)
    return "." if rel == "." else rel.replace(os.sep, "/")


def binary_record(path: str, member: str, bundle_path: str | None) -> tuple[BinaryRecord, str | None]:
    """`path`'s identity as a catalog record, and a warning when fileinfo could not describe it
    (the record then has its SHA-256 and size but no identity fields)."""
    from santacore.identity.fileinfo import file_info
    from santacore.identity.report import json_document

    try:
        document: dict[str, Any] = json_document(file_info(path))
    except Exception as e:  # a Mach-O LIEF or the CMS parser refuses: keep the hash, say why
        with open(path, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        size = os.stat(path).st_size
        return BinaryRecord(member, bundle_path, digest, size), f"{member}: identity not computed: {e}"
    return BinaryRecord.from_fileinfo(member, bundle_path, int(document["size"]), document), None


def tree_identity(root: str) -> tuple[str, int]:
    """A directory's identity: SHA-256 of its manifest (every entry's relative path, type, size and
    content SHA-256 or link target, in path order) and the bytes of its regular files. Two copies
    of a bundle anywhere have the same identity; any changed byte, name or link changes it."""
    entries: list[tuple[str, str]] = []
    total = 0
    for top, dirs, files in os.walk(root):
        dirs.sort()
        for name in dirs + files:
            full = os.path.join(top, name)
            rel = _relative(root, full)
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                entries.append((rel, f"l\0{os.readlink(full)}"))
            elif stat.S_ISDIR(st.st_mode):
                entries.append((rel, "d"))
            elif stat.S_ISREG(st.st_mode):
                with open(full, "rb") as f:
                    digest = hashlib.file_digest(f, "sha256").hexdigest()
                entries.append((rel, f"f\0{st.st_size}\0{digest}"))
                total += st.st_size
            else:
                entries.append((rel, "s"))
    manifest = hashlib.sha256()
    for rel, what in sorted(entries):
        manifest.update(f"{rel}\0{what}\n".encode("utf-8", "surrogateescape"))
    return manifest.hexdigest(), total


def bundle_roots(root: str) -> list[Bundle]:
    """Every bundle Santa would hash for something below `root` (spec §6.2), each once, in path order."""
    found: dict[str, Bundle] = {}
    for top, dirs, _files in os.walk(root):
        dirs.sort()
        if bundle_at(top) is None:
            continue
        resolved = resolve_bundle_root(top)
        if resolved is not None and _inside(resolved.path, root):
            found.setdefault(resolved.path, resolved)
    return [found[p] for p in sorted(found)]


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def scan_tree(root: str, threads: int) -> tuple[list[BundleRecord], list[BinaryRecord], list[str]]:
    """Bundles and Mach-O files below the directory `root` (an absolute, real path)."""
    warnings: list[str] = []
    bundles: list[BundleRecord] = []
    for b in bundle_roots(root):
        h = hash_bundle(b.path, threads=threads or None)
        for s in h.skipped:
            warnings.append(f"{_relative(root, s.path)}: {s.reason}")
        bundles.append(
            BundleRecord(
                path=_relative(root, b.path),
                bundle_hash=h.bundle_hash,
                binary_count=h.binary_count,
                hash_millis=h.hash_millis,
                bundle_id=h.bundle.bundle_id,
                name=h.bundle.bundle_name,
                version=h.bundle.bundle_version,
                short_version=h.bundle.bundle_version_string,
            )
        )
    roots = sorted((b.path for b in bundles), key=len, reverse=True)  # innermost first
    binaries: list[BinaryRecord] = []
    for top, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(top, name)
            try:
                if not stat.S_ISREG(os.lstat(full).st_mode) or not sniff_macho(full).is_macho:
                    continue
            except OSError as e:
                warnings.append(f"{_relative(root, full)}: {e.strerror or e}")
                continue
            member = _relative(root, full)
            owner = next((r for r in roots if r == "." or member.startswith(r + "/")), None)
            record, warning = binary_record(full, member, owner)
            binaries.append(record)
            if warning:
                warnings.append(warning)
    return bundles, binaries, warnings
