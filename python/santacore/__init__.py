"""santacore: Santa's identifiers and sync protocol, computed from the files alone."""

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

__all__ = [
    "BinaryFile",
    "MachOInfo",
    "MachOSlice",
    "Progress",
    "SkippedPath",
    "TreeHash",
    "TreeStats",
    "__version__",
    "arch_name",
    "bundle_hash_from_hashes",
    "hash_tree",
    "sniff_macho",
    "sniff_macho_bytes",
]
