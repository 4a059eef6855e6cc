"""Bundles as santabundleservice sees them (spec §6.1–6.2, §6.6).

Where a bundle is and what it is called are decided here, in Python, from Info.plist files;
the walk and the hashing happen in the Rust engine (`santacore._core.hash_tree`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from santacore._core import BinaryFile, Progress, SkippedPath, TreeStats, hash_tree
from santacore.errors import NotABundleError
from santacore.files import INFO_PLIST_LIMIT, read_regular_file
from santacore.identity import constants as C
from santacore.identity.plists import InfoPlistValues, plist_dict

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: start-up stays cheap
if TYPE_CHECKING:
    from typing import Any, Protocol

    class BundleTree(Protocol):
        """A file tree the bundle rules can look at: the disk (`DISK`), or an archive's own tree
        (`santacore.catalog.tree.ArchiveTree`). Lookups follow symlinks, as stat() does."""

        def isdir(self, path: str) -> bool: ...
        def isfile(self, path: str) -> bool: ...
        def listdir(self, path: str) -> list[str]: ...  # sorted; [] when it cannot be listed
        def plist(self, path: str) -> dict[str, Any] | None: ...  # None: no bundle (unreadable, malformed)


StrPath = str | os.PathLike[str]


@dataclass(frozen=True)
class Bundle(InfoPlistValues):
    """A directory whose info dictionary has a `CFBundleIdentifier`; `bundle_id`, `bundle_name`... are its values."""

    path: str
    info_plist: str
    info: dict[str, Any]
    main_executable: str | None
    """Absolute path of `CFBundleExecutable` if it exists on disk, else None."""

    @property
    def extension(self) -> str:
        return os.path.splitext(os.path.basename(self.path))[1][1:]


# CoreFoundation refuses a flat bundle whose path ends in one of these names, "to exclude
# the case where a bundle is spuriously created from the innards of another bundle"
# (CFBundle's version-3 lookup). Santa's testBundle relies on it: BundleExample.app/Contents
# holds an Info.plist but is not a bundle, so the nearest bundle is BundleExample.app.
_NOT_FLAT_BUNDLE_SUFFIXES = ("Contents", "Resources", "Support Files")


class _Disk:
    """The bundle rules' view of the disk."""

    isdir = staticmethod(os.path.isdir)
    isfile = staticmethod(os.path.isfile)

    @staticmethod
    def listdir(path: str) -> list[str]:
        try:
            return sorted(os.listdir(path))
        except OSError:
            return []

    @staticmethod
    def plist(path: str) -> dict[str, Any] | None:
        """The plist's top-level dictionary; an unreadable or malformed plist is no bundle, as in Santa."""
        try:
            return plist_dict(read_regular_file(path, INFO_PLIST_LIMIT))
        except OSError:  # also a FIFO, a device or an Info.plist over the cap: read nothing, wait for nothing
            return None


DISK: BundleTree = _Disk()


def _layout(tree: BundleTree, directory: str) -> tuple[str, str] | None:
    """CoreFoundation's bundle layouts (spec §6.1): (Info.plist path, executable folder)."""
    resources = os.path.join(directory, "Resources")
    if directory.endswith(".framework") and tree.isdir(resources):
        return os.path.join(resources, C.INFO_PLIST), directory
    contents = os.path.join(directory, "Contents")
    if tree.isdir(contents):
        return os.path.join(contents, C.INFO_PLIST), os.path.join(contents, "MacOS")
    if tree.isdir(resources):
        return os.path.join(resources, C.INFO_PLIST), directory
    if directory.endswith(_NOT_FLAT_BUNDLE_SUFFIXES):
        return None
    return os.path.join(directory, C.INFO_PLIST), directory


def _main_executable(tree: BundleTree, directory: str, executable_folder: str, info: dict[str, Any]) -> str | None:
    name = info.get(C.CF_BUNDLE_EXECUTABLE)
    if not isinstance(name, str) or not name or "/" in name:
        return None
    candidates = [os.path.join(executable_folder, name)]
    if directory.endswith(".framework"):
        # A framework's top-level executable is normally a symlink into Versions/Current;
        # wheels and zips drop symlinks, leaving only Versions/<v>/ (e.g. QtConcurrent).
        versions = os.path.join(directory, "Versions")
        candidates.append(os.path.join(versions, "Current", name))
        candidates += [os.path.join(versions, v, name) for v in tree.listdir(versions) if v != "Current"]
    return next((c for c in candidates if tree.isfile(c)), None)


def bundle_in(tree: BundleTree, directory: str) -> Bundle | None:
    """The bundle rooted at `directory` of `tree`, or None if it has no `CFBundleIdentifier` (spec §6.1)."""
    if directory in ("/", "") or not tree.isdir(directory):
        return None
    layout = _layout(tree, directory)
    if layout is None:
        return None
    info_plist, executable_folder = layout
    info = tree.plist(info_plist)
    if info is None or C.CF_BUNDLE_IDENTIFIER not in info:
        return None
    return Bundle(directory, info_plist, info, _main_executable(tree, directory, executable_folder, info))


def bundle_at(directory: StrPath) -> Bundle | None:
    """The bundle rooted at `directory` on disk, or None if it has no `CFBundleIdentifier` (spec §6.1)."""
    return bundle_in(DISK, os.fspath(directory))


def _directories_upward(tree: BundleTree, start: str) -> list[str]:
    """`start` (if a directory) and each parent, stopping before `/` (a disk) or `` (an archive's root)."""
    current = start if tree.isdir(start) else os.path.dirname(start)
    out = []
    while current not in ("/", ""):
        out.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return out


def nearest_in(tree: BundleTree, path: str) -> Bundle | None:
    """Santa's nearest-bundle search: the first bundle upward ends the walk, and counts
    only if its name has an extension (so `DirectoryBundle` hides anything inside it)."""
    for directory in _directories_upward(tree, path):
        bundle = bundle_in(tree, directory)
        if bundle is not None:
            return bundle if bundle.extension else None
    return None


def ancestor_in(tree: BundleTree, path: str) -> Bundle | None:
    """Santa's highest-ancestor search: the highest bundle upward whose extension is one of
    app, bundle, framework, kext, xctest, xpc."""
    best = None
    for directory in _directories_upward(tree, path):
        bundle = bundle_in(tree, directory)
        if bundle is not None and bundle.extension in C.ANCESTOR_BUNDLE_EXTENSIONS:
            best = bundle
    return best


def nearest_bundle(path: StrPath) -> Bundle | None:
    """`nearest_in` on disk."""
    return nearest_in(DISK, _absolute(path))


def ancestor_bundle(path: StrPath) -> Bundle | None:
    """`ancestor_in` on disk."""
    return ancestor_in(DISK, _absolute(path))


def _absolute(path: StrPath) -> str:
    return os.path.normpath(os.path.abspath(os.fspath(path)))


def resolve_bundle_root(path: StrPath) -> Bundle | None:
    """The bundle Santa hashes for `path` (spec §6.2): from the nearest bundle's main
    executable, the highest qualifying ancestor. `path` may be the bundle, its main
    executable, or any file or folder inside it; symlinks in it are resolved first."""
    real = os.path.realpath(os.fspath(path))
    if not os.path.exists(real):
        raise FileNotFoundError(2, "No such file or directory", os.fspath(path))
    nearest = nearest_bundle(real)
    if nearest is None or nearest.main_executable is None:
        return None
    return ancestor_bundle(nearest.main_executable)


@dataclass(frozen=True)
class BundleHash:
    """Santa's bundle hash of an app and what its `BUNDLE_BINARY` events are made from."""

    bundle: Bundle
    bundle_hash: str | None
    binary_count: int
    hash_millis: float
    """Wall-clock ms from the request to the digest, root resolution included (spec §6.6)."""
    binaries: tuple[BinaryFile, ...]
    skipped: tuple[SkippedPath, ...]
    stats: TreeStats

    @property
    def bundle_root(self) -> str:
        return self.bundle.path

    @property
    def executable_rel_path(self) -> str | None:
        """`file_bundle_executable_rel_path`: the root's main executable below the root."""
        exe = self.bundle.main_executable
        if exe is None or len(exe) <= len(self.bundle.path):
            return None
        return exe[len(self.bundle.path) + 1 :]

    def unique_binaries(self) -> tuple[BinaryFile, ...]:
        """One binary per distinct SHA-256 (the first by path): one event each, as Santa sends."""
        seen: dict[str, BinaryFile] = {}
        for b in self.binaries:
            seen.setdefault(b.sha256, b)
        return tuple(seen.values())


def hash_bundle(
    path: StrPath,
    *,
    threads: int | None = None,
    blake3: bool = False,
    progress: Progress | None = None,
) -> BundleHash:
    """Resolve the bundle Santa would hash for `path` and hash it.

    Raises NotABundleError when no bundle qualifies, OSError when the path is unusable.
    """
    started = time.perf_counter()
    root = resolve_bundle_root(path)
    if root is None:
        raise NotABundleError(os.fspath(path))
    tree = hash_tree(root.path, threads=threads, blake3=blake3, progress=progress)
    millis = (time.perf_counter() - started) * 1000.0
    return BundleHash(
        bundle=root,
        bundle_hash=tree.bundle_hash,
        binary_count=tree.binary_count,
        hash_millis=millis,
        binaries=tuple(tree.binaries),
        skipped=tuple(tree.skipped),
        stats=tree.stats,
    )
