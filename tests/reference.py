"""Plain-Python reference implementation (the test oracle) of Santa's Mach-O sniffing and bundle hash.

Written from the spec (santa-protocol.md §6.3-6.5 and §7.2) with nothing but `struct`, `os` and
`hashlib`, independently of the Rust engine, so that the two can be compared on any input. It is
also what the benchmarks run as "the plain Python implementation": a straightforward,
single-threaded walk + sniff + SHA-256, with no multiprocessing and no tricks.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

MACH_HEADER_SIZE = 28  # sizeof(struct mach_header): anything shorter is not Mach-O
HEAD_SIZE = 4096  # Santa looks at the first page of a file at most
FAT_HEADER_SIZE = 8  # struct fat_header {magic, nfat_arch}
FAT_ARCH_SIZE = 20  # struct fat_arch {cputype, cpusubtype, offset, size, align}
MAX_FAT_ARCH_COUNT = 64  # northpolesec/santa's kMaxFatArchCount
HASH_CHUNK_SIZE = 256 * 1024  # Santa hashes in chunks of 256 KiB

MH_EXECUTE = 2

# Magics as read from the first four bytes in host (little-endian) order.
MH_MAGIC = 0xFEEDFACE
MH_MAGIC_64 = 0xFEEDFACF
MH_CIGAM = 0xCEFAEDFE  # a big-endian 32-bit header
MH_CIGAM_64 = 0xCFFAEDFE  # a big-endian 64-bit header
FAT_MAGIC = 0xCAFEBABE  # on disk BE BA FE CA
FAT_CIGAM = 0xBEBAFECA  # on disk CA FE BA BE (the usual one)

CPU_SUBTYPE_LOW_BITS = 0x00FFFFFF  # ~CPU_SUBTYPE_MASK: the capability bits 0xff000000 are ignored when naming

# (cputype, cpusubtype & CPU_SUBTYPE_LOW_BITS) -> name, as macOS's macho_arch_name_for_cpu_type gives it.
# It knows ppc but neither ppc7400 nor ppc64: those print as "%i:%i".
ARCH_NAMES: dict[tuple[int, int], str] = {
    (7, 3): "i386",
    (0x01000007, 3): "x86_64",
    (0x01000007, 8): "x86_64h",
    (0x0100000C, 0): "arm64",
    (0x0100000C, 2): "arm64e",
    (0x0200000C, 1): "arm64_32",
    (12, 9): "armv7",
    (12, 11): "armv7s",
    (12, 12): "armv7k",
    (18, 0): "ppc",
}

# Reads `length` bytes at `offset` of the file being sniffed (fewer at end of file).
ReadAt = Callable[[int, int], bytes]


@dataclass(frozen=True)
class RefSlice:
    """One recognised slice: name and CPU pair from the fat_arch record (or thin header), filetype from its header."""

    arch: str
    cputype: int
    cpusubtype: int
    filetype: int
    offset: int
    size: int
    is_64: bool
    big_endian: bool


@dataclass(frozen=True)
class RefMachO:
    """What Santa learns from a file's headers (mirrors santacore.MachOInfo)."""

    fat_container: bool
    slices: tuple[RefSlice, ...]

    @property
    def is_macho(self) -> bool:
        return len(self.slices) > 0

    @property
    def is_fat(self) -> bool:
        return len(self.slices) > 1

    @property
    def is_executable(self) -> bool:
        return self.is_macho and self.slices[0].filetype == MH_EXECUTE

    @property
    def architectures(self) -> list[str]:
        return [s.arch for s in self.slices]

    @property
    def filetypes(self) -> list[int]:
        return [s.filetype for s in self.slices]


NOT_MACHO = RefMachO(fat_container=False, slices=())


def arch_name(cputype: int, cpusubtype: int) -> str:
    """Architecture name of a (signed 32-bit) CPU type and subtype pair."""
    name = ARCH_NAMES.get((cputype, cpusubtype & CPU_SUBTYPE_LOW_BITS))
    return name if name is not None else f"{cputype}:{cpusubtype}"


@dataclass(frozen=True)
class _ThinHeader:
    cputype: int
    cpusubtype: int
    filetype: int
    is_64: bool
    big_endian: bool


def _thin_header(header: bytes) -> _ThinHeader | None:
    """Parse a mach_header's first 16 bytes; None unless the magic is a thin Mach-O magic."""
    if len(header) < 16:
        return None
    (magic,) = struct.unpack_from("<I", header, 0)
    if magic in (MH_MAGIC, MH_MAGIC_64):
        endian = "<"
    elif magic in (MH_CIGAM, MH_CIGAM_64):
        endian = ">"
    else:
        return None
    cputype, cpusubtype, filetype = struct.unpack_from(endian + "iiI", header, 4)
    return _ThinHeader(
        cputype=cputype,
        cpusubtype=cpusubtype,
        filetype=filetype,
        is_64=magic in (MH_MAGIC_64, MH_CIGAM_64),
        big_endian=endian == ">",
    )


def _sniff(head: bytes, file_size: int, read_at: ReadAt) -> RefMachO:
    """Sniff a file from its first min(size, 4096) bytes, its size, and a reader for slice headers."""
    if file_size < MACH_HEADER_SIZE:
        return NOT_MACHO

    thin = _thin_header(head)
    if thin is not None:
        name = arch_name(thin.cputype, thin.cpusubtype)
        only = RefSlice(name, thin.cputype, thin.cpusubtype, thin.filetype, 0, file_size, thin.is_64, thin.big_endian)
        return RefMachO(fat_container=False, slices=(only,))

    magic, nfat_arch = struct.unpack_from("<I", head, 0)[0], struct.unpack_from(">I", head, 4)[0]
    if magic not in (FAT_MAGIC, FAT_CIGAM):
        return NOT_MACHO
    if nfat_arch > MAX_FAT_ARCH_COUNT or FAT_HEADER_SIZE + FAT_ARCH_SIZE * nfat_arch > file_size:
        return RefMachO(fat_container=True, slices=())

    table = read_at(FAT_HEADER_SIZE, FAT_ARCH_SIZE * nfat_arch)
    by_arch: dict[str, RefSlice] = {}  # a duplicate name keeps its place and takes the later value
    for index in range(nfat_arch):
        cputype, cpusubtype, offset, size, _align = struct.unpack_from(">iiIII", table, FAT_ARCH_SIZE * index)
        if size < MACH_HEADER_SIZE or offset + size > file_size:
            continue
        header = _thin_header(read_at(offset, 16))
        if header is None:
            continue
        name = arch_name(cputype, cpusubtype)
        by_arch[name] = RefSlice(
            name, cputype, cpusubtype, header.filetype, offset, size, header.is_64, header.big_endian
        )
    return RefMachO(fat_container=True, slices=tuple(by_arch.values()))


def sniff(data: bytes) -> RefMachO:
    """Sniff `data`, taken as a whole file."""

    def read_at(offset: int, length: int) -> bytes:
        return data[offset : offset + length]

    return _sniff(data[:HEAD_SIZE], len(data), read_at)


def _sniff_fd(fd: int, file_size: int) -> RefMachO:
    def read_at(offset: int, length: int) -> bytes:
        return os.pread(fd, length, offset)

    return _sniff(read_at(0, min(file_size, HEAD_SIZE)), file_size, read_at)


def sniff_file(path: str | os.PathLike[str]) -> RefMachO:
    """Sniff the file at `path`, reading only header bytes. Not a regular non-empty file: not Mach-O."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
        return NOT_MACHO
    fd = os.open(path, os.O_RDONLY)
    try:
        return _sniff_fd(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def super_hash(hashes: Iterable[str]) -> str | None:
    """Santa's bundle hash of a collection of SHA-256 hex digests (None when there are none)."""
    unique = sorted({h.lower() for h in hashes})
    if not unique:
        return None
    return hashlib.sha256("".join(unique).encode("ascii")).hexdigest()


def _executable_sha256(path: str) -> str | None:
    """SHA-256 of `path` if it is a regular, non-empty, readable file whose first slice is MH_EXECUTE."""
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
            return None
        with open(path, "rb") as f:
            if not _sniff_fd(f.fileno(), st.st_size).is_executable:
                return None
            digest = hashlib.sha256()
            while chunk := f.read(HASH_CHUNK_SIZE):
                digest.update(chunk)
            return digest.hexdigest()
    except OSError:
        return None


def reference_tree_hash(root: str) -> tuple[str | None, int, list[tuple[str, str]]]:
    """(bundle hash, binary count, sorted [(path, sha256)] of every bundle binary) of the tree below `root`.

    Every entry below `root` (hidden ones and nested bundles included) is considered; symlinks are
    never followed nor hashed. Paths are `root` joined with the subpath, as os.walk gives them.
    """
    binaries: list[tuple[str, str]] = []
    for dirpath, _dirnames, filenames in os.walk(root, followlinks=False):
        for name in filenames:
            path = os.path.join(dirpath, name)
            sha256 = _executable_sha256(path)
            if sha256 is not None:
                binaries.append((path, sha256))
    binaries.sort()
    unique = {sha256 for _path, sha256 in binaries}
    return super_hash(unique), len(unique), binaries
