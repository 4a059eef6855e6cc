"""santacore: Santa's identifiers and sync protocol, computed from the files alone.

`hash_bundle` resolves and hashes the bundle Santa would hash for a path; `hash_tree`
hashes any directory the same way; `sniff_macho` reads one file's Mach-O headers.
"""

from santacore._core import (
    BinaryFile,
    MachOInfo,
    MachOSlice,
    Progress,
    SkippedPath,
    TreeHash,
    TreeStats,
    __version__,
    arch_name,
    bundle_hash_from_hashes,
    hash_tree,
    sniff_macho,
    sniff_macho_bytes,
)
from santacore.bundle import (
    Bundle,
    BundleHash,
    ancestor_bundle,
    bundle_at,
    hash_bundle,
    nearest_bundle,
    resolve_bundle_root,
)
from santacore.errors import BundleError, NotABundleError, SantacoreError

__all__ = [
    "BinaryFile",
    "Bundle",
    "BundleError",
    "BundleHash",
    "MachOInfo",
    "MachOSlice",
    "NotABundleError",
    "Progress",
    "SantacoreError",
    "SkippedPath",
    "TreeHash",
    "TreeStats",
    "__version__",
    "ancestor_bundle",
    "arch_name",
    "bundle_at",
    "bundle_hash_from_hashes",
    "hash_bundle",
    "hash_tree",
    "nearest_bundle",
    "resolve_bundle_root",
    "sniff_macho",
    "sniff_macho_bytes",
]
