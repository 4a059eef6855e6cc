"""santacore: Santa's identifiers and sync protocol, computed from the files alone.

`hash_bundle` resolves and hashes the bundle Santa would hash for a path; `hash_tree`
hashes any directory the same way; `sniff_macho` reads one file's Mach-O headers;
`file_info` is a file's full identity (hashes, signing IDs, cdhash, certificate chain), verified.
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
from santacore.errors import BundleError, MachOError, NotABundleError, SantacoreError, SignatureError
from santacore.fileinfo import FileInfo, FileInfoError, SliceSigning, file_info

__all__ = [
    "BinaryFile",
    "Bundle",
    "BundleError",
    "BundleHash",
    "FileInfo",
    "FileInfoError",
    "MachOError",
    "MachOInfo",
    "MachOSlice",
    "NotABundleError",
    "Progress",
    "SantacoreError",
    "SignatureError",
    "SkippedPath",
    "SliceSigning",
    "TreeHash",
    "TreeStats",
    "__version__",
    "ancestor_bundle",
    "arch_name",
    "bundle_at",
    "bundle_hash_from_hashes",
    "file_info",
    "hash_bundle",
    "hash_tree",
    "nearest_bundle",
    "resolve_bundle_root",
    "sniff_macho",
    "sniff_macho_bytes",
]
