"""Type stubs for the Rust engine `santacore._core` (kept in step by mypy.stubtest)."""

import os
from collections.abc import Sequence
from typing import final

__all__ = [
    "ArchiveEntry",
    "ArchiveScan",
    "BinaryFile",
    "FileDigests",
    "MachOInfo",
    "MachOSlice",
    "MemberImage",
    "MemberSink",
    "Progress",
    "SkippedPath",
    "TreeHash",
    "TreeStats",
    "__version__",
    "arch_name",
    "archive_kind",
    "bundle_hash_from_hashes",
    "code_page_hashes",
    "digest",
    "file_digests",
    "hash_tree",
    "scan_archive",
    "sniff_macho",
    "sniff_macho_bytes",
]

__version__: str

@final
class MachOSlice:
    """One valid slice: name and CPU pair from the fat_arch record, file type from its header."""

    @property
    def arch(self) -> str: ...
    @property
    def cputype(self) -> int: ...
    @property
    def cpusubtype(self) -> int: ...
    @property
    def filetype(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def is_64(self) -> bool: ...
    @property
    def big_endian(self) -> bool: ...

@final
class MachOInfo:
    """What Santa learns from a file's Mach-O headers (spec §6.4)."""

    @property
    def is_macho(self) -> bool: ...
    @property
    def is_fat(self) -> bool:
        """More than one valid slice."""
    @property
    def fat_container(self) -> bool:
        """The file starts with a fat magic, valid slices or not."""
    @property
    def is_executable(self) -> bool:
        """The first valid slice is MH_EXECUTE: the file counts towards a bundle hash."""
    @property
    def architectures(self) -> list[str]: ...
    @property
    def filetypes(self) -> list[int]: ...
    @property
    def slices(self) -> list[MachOSlice]: ...

@final
class BinaryFile:
    """An MH_EXECUTE file found below the root."""

    @property
    def path(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def sha256(self) -> str: ...
    @property
    def blake3(self) -> str | None: ...
    @property
    def architectures(self) -> list[str]: ...
    @property
    def macho(self) -> MachOInfo: ...

@final
class SkippedPath:
    """A path the walk could not examine, and why."""

    @property
    def path(self) -> str: ...
    @property
    def reason(self) -> str: ...

@final
class TreeStats:
    @property
    def directories(self) -> int: ...
    @property
    def regular_files(self) -> int: ...
    @property
    def symlinks(self) -> int: ...
    @property
    def special_files(self) -> int: ...
    @property
    def macho_files(self) -> int: ...
    @property
    def bytes_hashed(self) -> int: ...
    @property
    def walk_millis(self) -> float:
        """From the start of the call until the walk ended: every entry listed, every regular
        file's header sniffed. Hashing runs during the walk, so this includes hashing work."""
    @property
    def hashing_millis(self) -> float:
        """From the first executable's hashing start to the last one's end (0 without any).
        Overlaps walk_millis: when the two add up to more than hash_millis, the excess is
        how long walking and hashing ran at the same time."""

@final
class TreeHash:
    """Santa's bundle hash of a directory tree and everything that went into it."""

    @property
    def root(self) -> str: ...
    @property
    def bundle_hash(self) -> str | None: ...
    @property
    def binary_count(self) -> int: ...
    @property
    def binaries(self) -> list[BinaryFile]: ...
    @property
    def skipped(self) -> list[SkippedPath]: ...
    @property
    def stats(self) -> TreeStats: ...
    @property
    def hash_millis(self) -> float:
        """From the start of the call until the bundle hash was computed."""

@final
class Progress:
    """Live counters of a running hash_tree, readable from another thread."""

    def __new__(cls) -> Progress: ...
    @property
    def files_examined(self) -> int: ...
    @property
    def binaries_found(self) -> int: ...
    @property
    def bytes_found(self) -> int:
        """The sizes of the executables found so far: what bytes_hashed will reach."""
    @property
    def bytes_hashed(self) -> int: ...
    @property
    def walk_finished(self) -> bool:
        """The walk has ended: binaries_found and bytes_found are final."""
    @property
    def finished(self) -> bool: ...

def hash_tree(
    path: str | os.PathLike[str],
    /,
    *,
    threads: int | None = None,
    blake3: bool = False,
    progress: Progress | None = None,
) -> TreeHash:
    """Walk `path` in parallel and compute Santa's bundle hash of every MH_EXECUTE below it."""

def sniff_macho(path: str | os.PathLike[str], /) -> MachOInfo:
    """Read one file's Mach-O headers as Santa does."""

def sniff_macho_bytes(data: bytes, /) -> MachOInfo:
    """Sniff a whole file held in memory."""

def bundle_hash_from_hashes(hashes: Sequence[str], /) -> str | None:
    """Santa's super hash of SHA-256 hex digests; None for none."""

def arch_name(cputype: int, cpusubtype: int, /) -> str:
    """The architecture name Santa prints for a CPU type/subtype pair."""

@final
class FileDigests:
    """SHA-256 and SHA-1 of every byte of a file (spec §7.1)."""

    @property
    def size(self) -> int: ...
    @property
    def sha256(self) -> str: ...
    @property
    def sha1(self) -> str: ...

def file_digests(path: str | os.PathLike[str], /) -> FileDigests:
    """SHA-256 and SHA-1 of the whole file, in one read pass."""

def digest(hash_type: int, data: bytes, /) -> bytes:
    """A code-signature hash of `data`: 1 SHA-1, 2 SHA-256, 3 SHA-256 truncated to 20 bytes, 4 SHA-384."""

def code_page_hashes(
    path: str | os.PathLike[str], /, offset: int, length: int, page_size: int, hash_type: int
) -> list[bytes]:
    """The hash of each `page_size` chunk of `[offset, offset + length)`; page_size 0 = one hash of it all."""

@final
class ArchiveEntry:
    """One member of an archive's tree: its path ('/'-separated, relative), kind ("file",
    "directory", "symlink", "other"), size, link target, and for a Mach-O its SHA-256 and headers."""

    @property
    def path(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def link_target(self) -> str | None: ...
    @property
    def sha256(self) -> str | None: ...
    @property
    def macho(self) -> MachOInfo | None: ...
    @property
    def hash_micros(self) -> int: ...
    @property
    def note(self) -> str | None: ...
    @property
    def image(self) -> MemberImage | None:
        """What identity needs of a Mach-O member (`file_info_from_image`); None otherwise."""
    @property
    def plist(self) -> bytes | None:
        """The bytes of an Info.plist member (None for other members or one over the cap)."""

@final
class ArchiveScan:
    """An archive read in place: its identity, its tree, or why it could not be read."""

    @property
    def kind(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def entries(self) -> list[ArchiveEntry]: ...
    @property
    def error(self) -> str | None: ...

def scan_archive(
    path: str | os.PathLike[str],
    /,
    *,
    max_members: int = 0,
    max_declared_bytes: int = 0,
    max_expansion_ratio: int = 0,
    expansion_floor: int = 0,
) -> ArchiveScan:
    """Read the archive at `path` in place, sniffing and hashing every member as a file on disk is."""

def archive_kind(head: bytes) -> str | None:
    """The archive kind of a file starting with `head` (None if the engine does not read it)."""

@final
class MemberSink:
    """Streams one archive member for its identity: `update` in order, then `finish`."""

    def __new__(
        cls,
        *,
        capture_limit: int = ...,
        page_sizes: Sequence[int] | None = None,
        hash_types: Sequence[int] | None = None,
    ) -> MemberSink: ...
    @property
    def position(self) -> int: ...
    def update(self, data: bytes, /) -> None: ...
    def finish(self) -> MemberImage: ...

@final
class MemberImage:
    """What a finished MemberSink kept: digests, header sniff, byte ranges, code-page hashes."""

    @property
    def size(self) -> int: ...
    @property
    def is_macho(self) -> bool: ...
    @property
    def sha256(self) -> str: ...
    @property
    def sha1(self) -> str | None: ...
    @property
    def macho(self) -> MachOInfo: ...
    @property
    def captured_bytes(self) -> int: ...
    @property
    def ranges(self) -> list[tuple[int, bytes]]: ...
    @property
    def page_hashes(self) -> list[tuple[int, int, int, int, list[bytes]]]: ...
    @property
    def unavailable(self) -> list[tuple[int, int, str]]: ...
