"""An archive's own tree for Santa's bundle rules (spec §6.1–6.2): `ArchiveTree` is a
`santacore.identity.bundle.BundleTree`, so the layouts, the nearest-bundle and highest-ancestor
searches and the framework fallback are `identity.bundle`'s own, run over directories, files and
symlinks as the archive stores them. Symlinks are followed where the disk code follows them
(`isdir`, `isfile`, reading an Info.plist), at most 40 links per lookup as the kernel does; a loop
is "no such file" (ELOOP), as on disk, and noted. Binaries are never reached through a symlink: they
are the tree's own files.
"""

from __future__ import annotations

import posixpath
import time
from dataclasses import dataclass
from typing import Any

from santacore._core import ArchiveEntry, bundle_hash_from_hashes
from santacore.catalog.model import BundleRecord
from santacore.identity import constants as C
from santacore.identity.bundle import Bundle, ancestor_in, bundle_in
from santacore.identity.plists import plist_dict

MAX_SYMLINK_HOPS = 40  # Linux's and macOS's limit for one path lookup (ELOOP past it)


class _Loop(Exception):
    pass


@dataclass
class Node:
    kind: str  # "file", "directory", "symlink", "other"
    entry: ArchiveEntry | None  # None for a folder the archive implies but does not list
    children: dict[str, Node] | None = None


class ArchiveTree:
    """The tree of one archive: every listed member and every folder their names imply."""

    def __init__(self, entries: list[ArchiveEntry]) -> None:
        self.nodes: dict[str, Node] = {"": Node("directory", None, {})}
        self.loops: set[str] = set()
        for e in entries:
            self._add(e)

    def _add(self, e: ArchiveEntry) -> None:
        parent = self._folder(posixpath.dirname(e.path))
        if parent is None:  # a file where a folder should be: the later name is unreachable
            return
        existing = self.nodes.get(e.path)
        if existing is not None and existing.kind == "directory" and e.kind == "directory":
            existing.entry = e
            return
        node = Node(e.kind, e, {} if e.kind == "directory" else None)
        if existing is not None and existing.children:  # a later member replaces an earlier one
            node.children = existing.children if e.kind == "directory" else None
        self.nodes[e.path] = node
        assert parent.children is not None
        parent.children[posixpath.basename(e.path)] = node

    def _folder(self, path: str) -> Node | None:
        """The folder node at `path`, created with its parents if the archive did not list them
        (iterative: a hostile name may have thousands of components)."""
        missing = []
        node = self.nodes.get(path)
        while node is None:
            missing.append(path)
            path = posixpath.dirname(path)
            node = self.nodes.get(path)
        for p in reversed(missing):
            if node.kind != "directory" or node.children is None:
                return None
            child = Node("directory", None, {})
            self.nodes[p] = child
            node.children[posixpath.basename(p)] = child
            node = child
        return node if node.kind == "directory" else None

    # -- lookups that follow symlinks, like stat() -------------------------------------------

    def resolve(self, path: str) -> str | None:
        """The real path of `path` inside the archive, None if it does not exist (a dangling
        link, one leaving the archive, or a loop: then noted in `loops`)."""
        try:
            return self._resolve(path, [0])
        except _Loop:
            self.loops.add(path)
            return None

    def _resolve(self, path: str, hops: list[int]) -> str | None:
        current = ""
        parts = [p for p in path.split("/") if p and p != "."]
        while parts:
            part = parts.pop(0)
            if part == "..":
                if not current:
                    return None  # above the archive's root
                current = posixpath.dirname(current)
                continue
            candidate = f"{current}/{part}" if current else part
            node = self.nodes.get(candidate)
            if node is None:
                return None
            if node.kind == "symlink":
                hops[0] += 1
                if hops[0] > MAX_SYMLINK_HOPS:
                    raise _Loop
                target = (node.entry.link_target if node.entry else None) or ""
                if target.startswith("/"):
                    return None  # points outside the archive
                parts = [p for p in target.split("/") if p and p != "."] + parts
                continue
            current = candidate
        return current

    def _kind(self, path: str) -> str | None:
        real = self.resolve(path)
        return None if real is None else self.nodes[real].kind

    def isdir(self, path: str) -> bool:
        return self._kind(path) == "directory"

    def isfile(self, path: str) -> bool:
        return self._kind(path) == "file"

    def listdir(self, path: str) -> list[str]:
        real = self.resolve(path)
        node = self.nodes.get(real) if real is not None else None
        return sorted(node.children) if node is not None and node.children is not None else []

    def kept_bytes(self, path: str) -> bytes | None:
        """The bytes the engine kept of the file at `path` (an Info.plist or CodeResources)."""
        real = self.resolve(path)
        node = self.nodes.get(real) if real is not None else None
        return node.entry.plist if node is not None and node.kind == "file" and node.entry else None

    def plist(self, path: str) -> dict[str, Any] | None:
        data = self.kept_bytes(path)
        return plist_dict(data) if data is not None else None

    def directories(self) -> list[str]:
        """Every real folder except the archive's root, in path order."""
        return sorted(p for p, n in self.nodes.items() if p and n.kind == "directory")

    def _bundle_candidates(self) -> list[str]:
        """The folders that can be bundles (§6.1 needs an Info.plist in one of its layouts): the
        parent of every member named Info.plist, and the parent of that when it is Contents or
        Resources or of any Contents/Resources symlink. The rest of `directories()` cannot be."""
        found = set()
        for p, n in self.nodes.items():
            name = posixpath.basename(p)
            parent = posixpath.dirname(p)
            if name == C.INFO_PLIST:
                found.add(parent)
                if posixpath.basename(parent) in ("Contents", "Resources"):
                    found.add(posixpath.dirname(parent))
            elif name in ("Contents", "Resources") and n.kind == "symlink":
                found.add(parent)
        return sorted(d for d in found if d and self.nodes.get(d, Node("other", None)).kind == "directory")

    def bundle_roots(self) -> list[Bundle]:
        """Every bundle Santa would hash for something in the archive, each once, in path order:
        for each folder that is a bundle with an extension (its own nearest bundle), the highest
        qualifying ancestor of its main executable."""
        found: dict[str, Bundle] = {}
        for d in self._bundle_candidates():
            b = bundle_in(self, d)
            if b is None or not b.extension or b.main_executable is None:
                continue
            root = ancestor_in(self, b.main_executable)
            if root is not None:
                found.setdefault(root.path, root)
        return [found[p] for p in sorted(found)]

    def executables_below(self, root: str) -> list[ArchiveEntry]:
        """The regular, non-empty MH_EXECUTE files below `root` (resolved), symlinks never followed."""
        real = self.resolve(root)
        if real is None:
            return []
        prefix = f"{real}/"
        return [
            n.entry
            for p, n in self.nodes.items()
            if p.startswith(prefix)
            and n.kind == "file"
            and n.entry is not None
            and n.entry.size > 0
            and n.entry.macho is not None
            and n.entry.macho.is_executable
        ]


def bundle_records(tree: ArchiveTree) -> list[BundleRecord]:
    """Each bundle root with Santa's bundle hash over the archive's members (spec §6.5).
    `hash_millis` is the root search plus the time the engine spent reading and hashing the
    bundle's executables as they streamed past."""
    records = []
    for b in tree.bundle_roots():
        started = time.perf_counter()
        binaries = tree.executables_below(b.path)
        digests = sorted({e.sha256 for e in binaries if e.sha256})
        millis = (time.perf_counter() - started) * 1000 + sum(e.hash_micros for e in binaries) / 1000
        records.append(
            BundleRecord(
                path=b.path,
                bundle_hash=bundle_hash_from_hashes(digests),
                binary_count=len(digests),
                hash_millis=millis,
                bundle_id=b.bundle_id,
                name=b.bundle_name,
                version=b.bundle_version,
                short_version=b.bundle_version_string,
            )
        )
    return records
