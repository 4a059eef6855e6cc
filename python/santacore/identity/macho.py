"""Mach-O structure beyond the header, read with LIEF: where each slice keeps its code
signature, its embedded Info.plist, and whether an i386 executable has a proper
__PAGEZERO (spec §7.2, §7.4). Which slices exist is decided by Santa's own header rules
(`santacore._core.sniff_macho`); LIEF is asked only about those slices.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import lief

from santacore._core import MachOInfo, sniff_macho
from santacore.errors import MachOError
from santacore.identity.constants import MH_EXECUTE
from santacore.identity.source import ByteSource, as_source

lief.logging.disable()

# Santa reads an embedded Info.plist only from a section smaller than this (SNTFileInfo).
MAX_INFO_PLIST_SECTION = 2_000_000


@dataclass(frozen=True)
class SliceLayout:
    """One slice, located in the file."""

    arch: str
    offset: int
    size: int
    filetype: int
    code_signature: tuple[int, int] | None
    """(offset, size) of the LC_CODE_SIGNATURE data, relative to the slice start."""
    info_plist_section: tuple[int, int] | None
    """(offset, size) of `__TEXT,__info_plist`, relative to the slice start."""
    missing_pagezero: bool
    """Santa's page-zero check: an i386 MH_EXECUTE whose first load command is not a proper __PAGEZERO."""


@dataclass(frozen=True)
class MachOLayout:
    header: MachOInfo
    slices: tuple[SliceLayout, ...]

    def slice(self, arch: str) -> SliceLayout:
        for s in self.slices:
            if s.arch == arch:
                return s
        raise KeyError(arch)


def _name(raw: str | bytes) -> str:
    """Segment and section names are fixed 16-byte fields; LIEF may hand them over as bytes."""
    return raw.decode("latin-1") if isinstance(raw, bytes) else raw


def _info_plist_section(binary: lief.MachO.Binary) -> tuple[int, int] | None:
    """The first `__TEXT*` segment's first `__info_plist*` section, as Santa looks for it."""
    for segment in binary.segments:
        if not _name(segment.name).startswith("__TEXT"):
            continue
        for section in segment.sections:
            if _name(section.name).startswith("__info_plist") and section.size < MAX_INFO_PLIST_SECTION:
                return section.offset, section.size
        return None
    return None


def _missing_pagezero(arch: str, filetype: int, binary: lief.MachO.Binary) -> bool:
    if arch != "i386" or filetype != MH_EXECUTE:
        return False
    commands = list(binary.commands)
    if not commands or not isinstance(commands[0], lief.MachO.SegmentCommand):
        return True
    first = commands[0]
    # Santa requires the 32-bit LC_SEGMENT named __PAGEZERO at address 0, non-empty, no access.
    proper = (
        first.command == lief.MachO.LoadCommand.TYPE.SEGMENT
        and _name(first.name) == "__PAGEZERO"
        and first.virtual_address == 0
        and first.virtual_size != 0
        and first.init_protection == 0
        and first.max_protection == 0
    )
    return not proper


_MH_MAGIC = 0xFEEDFACE
_MH_MAGIC_64 = 0xFEEDFACF
# A load command is at least its 8-byte (cmd, cmdsize) prefix.
_MIN_LOAD_COMMAND = 8


def _load_command_region(source: ByteSource, arch: str, offset: int, size: int) -> tuple[bytes, int]:
    """The slice's mach header and load commands, and `ncmds`: all LIEF needs for the fields
    read here (the code signature and __info_plist are located from the load commands and read
    later from the file). Handing LIEF only these bytes keeps its memory independent of the file
    size (parsing a whole 2 GB file held about twice the file). MachOError when the header's
    `ncmds`/`sizeofcmds` cannot describe load commands inside the slice."""
    name = source.name
    head = source.read(offset, 32)
    if len(head) < 28:
        raise MachOError(f"{name}: malformed Mach-O header in the {arch} slice: truncated header")
    magic = struct.unpack("<I", head[:4])[0]
    if magic in (_MH_MAGIC, _MH_MAGIC_64):
        order = "<"
    else:
        order = ">"
        magic = struct.unpack(">I", head[:4])[0]
    header_size = 32 if magic == _MH_MAGIC_64 else 28
    ncmds, sizeofcmds = struct.unpack(order + "II", head[16:24])
    if ncmds * _MIN_LOAD_COMMAND > sizeofcmds or header_size + sizeofcmds > size:
        raise MachOError(
            f"{name}: malformed Mach-O header in the {arch} slice: ncmds {ncmds} (0x{ncmds:x}) "
            f"and sizeofcmds {sizeofcmds} (0x{sizeofcmds:x}) do not fit in the {size}-byte slice"
        )
    return source.read(offset, header_size + sizeofcmds), ncmds


def read_layout(path: str | os.PathLike[str] | ByteSource, header: MachOInfo | None = None) -> MachOLayout:
    """Locate every slice Santa recognises (in a file, or any `ByteSource` with its `header`).
    Raises MachOError when LIEF cannot read the load commands of a slice Santa's header rules
    accept (a truncated or hostile file), or when the header is malformed (e.g. `ncmds = 0xffffffff`)."""
    source = as_source(path)
    if header is None:
        header = sniff_macho(source.name)
    if not header.is_macho:
        return MachOLayout(header, ())
    name = source.name
    slices = []
    for s in header.slices:
        region, ncmds = _load_command_region(source, s.arch, s.offset, s.size)
        parsed = lief.MachO.parse(region)
        binary = parsed.at(0) if parsed is not None and parsed.size > 0 else None
        if binary is None:
            raise MachOError(f"{name}: the {s.arch} slice at offset {s.offset} could not be read")
        if len(binary.commands) != ncmds:
            raise MachOError(
                f"{name}: malformed Mach-O header in the {s.arch} slice: ncmds is {ncmds} "
                f"but {len(binary.commands)} load commands could be read"
            )
        signature = binary.code_signature if binary.has_code_signature else None
        slices.append(
            SliceLayout(
                arch=s.arch,
                offset=s.offset,
                size=s.size,
                filetype=s.filetype,
                code_signature=(signature.data_offset, signature.data_size) if signature else None,
                info_plist_section=_info_plist_section(binary),
                missing_pagezero=_missing_pagezero(s.arch, s.filetype, binary),
            )
        )
    return MachOLayout(header, tuple(slices))


def read_slice_bytes(path: str | os.PathLike[str] | ByteSource, layout: SliceLayout, offset: int, size: int) -> bytes:
    """`size` bytes at `offset` inside the slice; MachOError if they lie outside it or the file."""
    source = as_source(path)
    if offset < 0 or size < 0 or offset + size > layout.size:
        raise MachOError(f"{source.name}: {layout.arch} range {offset}+{size} lies outside the slice")
    data = source.read(layout.offset + offset, size)
    if len(data) != size:
        raise MachOError(f"{source.name}: {layout.arch} range {offset}+{size} runs past the end of the file")
    return data
