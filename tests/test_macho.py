"""santacore's Mach-O sniffer against the corpus manifest and against the plain-Python reference (tests/reference.py).

(a) every corpus file: santacore and the reference both give the manifest's values;
(b) property tests: on arbitrary and on structured (thin, fat, Java-class-like, mutated) inputs, santacore never
    raises and agrees with the reference field by field, in memory and through files on disk;
(c) explicit edge cases.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import santacore
from tests import reference
from tests.reference import RefMachO, RefSlice

MH_FILETYPES = {
    "MH_OBJECT": 1,
    "MH_EXECUTE": 2,
    "MH_FVMLIB": 3,
    "MH_CORE": 4,
    "MH_PRELOAD": 5,
    "MH_DYLIB": 6,
    "MH_DYLINKER": 7,
    "MH_BUNDLE": 8,
    "MH_DYLIB_STUB": 9,
    "MH_DSYM": 10,
    "MH_KEXT_BUNDLE": 11,
    "MH_FILESET": 12,
}

# On-disk first four bytes.
THIN_MAGIC_BYTES = {
    b"\xce\xfa\xed\xfe": ("<", False),  # MH_MAGIC, little-endian 32-bit
    b"\xcf\xfa\xed\xfe": ("<", True),  # MH_MAGIC_64, little-endian 64-bit
    b"\xfe\xed\xfa\xce": (">", False),  # MH_CIGAM, big-endian 32-bit
    b"\xfe\xed\xfa\xcf": (">", True),  # MH_CIGAM_64, big-endian 64-bit
}
FAT_MAGIC_BYTES = [
    b"\xca\xfe\xba\xbe",  # FAT_MAGIC as written by lipo (big-endian)
    b"\xbe\xba\xfe\xca",  # the byte-swapped form, also accepted
    b"\xca\xfe\xba\xbf",  # FAT_MAGIC_64: not supported
    b"\xbf\xba\xfe\xca",  # FAT_CIGAM_64: not supported
]

CPU_X86_64 = 0x01000007
CPU_ARM64 = 0x0100000C
# The table's pairs plus some it does not know (ppc7400, ppc64, cal-yikes' x86_64 record) and one nobody knows.
KNOWN_CPU_PAIRS = [
    (7, 3),
    (CPU_X86_64, 3),
    (CPU_X86_64, 8),
    (CPU_ARM64, 0),
    (CPU_ARM64, 2),
    (0x0200000C, 1),
    (12, 9),
    (12, 11),
    (12, 12),
    (18, 0),
    (18, 10),
    (0x01000012, 0),
    (0x01000005, 3),
    (12345, 678),
]
CAPABILITY_BITS = [0, 0x80000000, 0x40000000, 0x01000000, 0xFF000000]

U32 = 0xFFFFFFFF
u32s = st.integers(0, U32)
int32s = st.integers(-(2**31), 2**31 - 1)


def to_i32(value: int) -> int:
    value &= U32
    return value - (1 << 32) if value & 0x80000000 else value


# --------------------------------------------------------------------------- comparison helpers


def slices_of(info: santacore.MachOInfo) -> tuple[RefSlice, ...]:
    return tuple(
        RefSlice(s.arch, s.cputype, s.cpusubtype, s.filetype, s.offset, s.size, s.is_64, s.big_endian)
        for s in info.slices
    )


def assert_agrees(info: santacore.MachOInfo, ref: RefMachO, what: object) -> None:
    assert info.is_macho == ref.is_macho, what
    assert info.is_fat == ref.is_fat, what
    assert info.fat_container == ref.fat_container, what
    assert info.is_executable == ref.is_executable, what
    assert list(info.architectures) == ref.architectures, what
    assert list(info.filetypes) == ref.filetypes, what
    assert slices_of(info) == ref.slices, what


# --------------------------------------------------------------------------- (a) the corpus


def manifest_files(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    files: list[dict[str, Any]] = manifest["files"]
    assert len(files) == manifest["summary"]["corpus_files"]
    return files


def assert_matches_manifest(got: santacore.MachOInfo | RefMachO, entry: dict[str, Any]) -> None:
    path = entry["path"]
    assert got.is_macho == entry["is_macho"], path
    assert got.is_fat == entry["is_fat"], path
    assert list(got.architectures) == entry["architectures"], path
    assert list(got.filetypes) == [MH_FILETYPES[name] for name in entry["filetypes"]], path
    assert got.is_executable == entry["is_bundle_binary"], path


def test_corpus_santacore_matches_manifest(corpus: Path, manifest: dict[str, Any]) -> None:
    for entry in manifest_files(manifest):
        assert_matches_manifest(santacore.sniff_macho(str(corpus / entry["path"])), entry)


def test_corpus_santacore_accepts_pathlike(corpus: Path, manifest: dict[str, Any]) -> None:
    entry = next(e for e in manifest_files(manifest) if e["is_fat"])
    assert_matches_manifest(santacore.sniff_macho(corpus / entry["path"]), entry)


def test_corpus_reference_matches_manifest(corpus: Path, manifest: dict[str, Any]) -> None:
    """Validates the oracle itself, both from the path (header bytes only) and from the whole file in memory."""
    for entry in manifest_files(manifest):
        path = corpus / entry["path"]
        assert_matches_manifest(reference.sniff_file(path), entry)
        assert_matches_manifest(reference.sniff(path.read_bytes()), entry)


def test_corpus_santacore_matches_reference(corpus: Path, manifest: dict[str, Any]) -> None:
    """Beyond the manifest's fields: fat_container and every slice's CPU pair, offset, size, bitness, byte order."""
    for entry in manifest_files(manifest):
        path = corpus / entry["path"]
        data = path.read_bytes()
        ref = reference.sniff(data)
        assert_agrees(santacore.sniff_macho(str(path)), ref, entry["path"])
        assert_agrees(santacore.sniff_macho_bytes(data), ref, entry["path"])


def test_corpus_covers_the_interesting_shapes(manifest: dict[str, Any]) -> None:
    """Guard: the corpus still holds the cases the manifest comparison relies on."""
    files = manifest_files(manifest)
    assert any(e["is_fat"] for e in files)
    assert any(e["is_macho"] and not e["is_fat"] for e in files)
    assert any(not e["is_macho"] for e in files)
    assert any(e["is_macho"] and not e["is_bundle_binary"] for e in files)
    assert any(":" in arch for e in files for arch in e["architectures"])


# --------------------------------------------------------------------------- (b) property tests: strategies


@st.composite
def cpu_pairs(draw: st.DrawFn) -> tuple[int, int]:
    """A (cputype, cpusubtype) pair as signed 32-bit values: known ones with capability bits, or anything."""
    if draw(st.booleans()):
        cputype, subtype = draw(st.sampled_from(KNOWN_CPU_PAIRS))
        return cputype, to_i32(subtype | draw(st.sampled_from(CAPABILITY_BITS)))
    return draw(int32s), draw(int32s)


filetypes = st.one_of(st.just(2), st.sampled_from([1, 6, 8, 11]), st.integers(0, 13), u32s)  # MH_EXECUTE often


@st.composite
def thin_headers(draw: st.DrawFn) -> bytes:
    """A complete mach_header (28 bytes) or mach_header_64 (32 bytes), in either byte order."""
    magic = draw(st.sampled_from(sorted(THIN_MAGIC_BYTES)))
    endian, is_64 = THIN_MAGIC_BYTES[magic]
    cputype, cpusubtype = draw(cpu_pairs())
    filetype = draw(filetypes)
    ncmds, sizeofcmds, flags = draw(u32s), draw(u32s), draw(u32s)
    header = magic + struct.pack(endian + "iiIIII", cputype, cpusubtype, filetype, ncmds, sizeofcmds, flags)
    return header + (struct.pack(endian + "I", 0) if is_64 else b"")


@st.composite
def thin_files(draw: st.DrawFn) -> bytes:
    data = draw(thin_headers()) + draw(st.binary(max_size=64))
    if draw(st.booleans()):  # truncated, possibly below 28 bytes
        data = data[: draw(st.integers(0, len(data)))]
    return data


nfat_arch_values = st.one_of(
    st.integers(1, 4),
    st.integers(1, 4),
    st.integers(0, 8),
    st.sampled_from([63, 64, 65, 0x00010000, 0x7FFFFFFF, 0x80000000, U32]),
    st.integers(7, 70),
    u32s,
)


@st.composite
def fat_files(draw: st.DrawFn) -> bytes:
    """A fat header, a table of random records and thin headers at some of their offsets.

    Records may point at valid slices (possibly overlapping each other or the table), past the end of the file,
    straddle it, be too small, share an offset or an architecture with an earlier record, or hold any values.
    """
    magic = draw(st.sampled_from(FAT_MAGIC_BYTES[:2] * 3 + FAT_MAGIC_BYTES[2:]))  # mostly the supported magics
    nfat = draw(nfat_arch_values)
    table_end = 8 + 20 * nfat
    if nfat <= 70 and draw(st.integers(0, 4)) > 0:
        # usually room for the table and some slices, often past the first page
        size = table_end + draw(st.sampled_from([0, 28, 100, 4096, 4200, 8000]) | st.integers(0, 8000))
    else:
        size = draw(st.integers(0, 9000))
    pattern = draw(st.sampled_from([b"\x00", b"\xff"]) | st.binary(min_size=1, max_size=8))
    buf = bytearray((pattern * (size // len(pattern) + 1))[:size])

    def put(offset: int, data: bytes) -> None:
        if offset < size:
            buf[offset : offset + len(data)] = data[: size - offset]

    records: list[tuple[int, int, int, int, int]] = []
    for _ in range(min(nfat, draw(st.integers(1, 8)))):
        if records and draw(st.integers(0, 3)) == 0:  # the architecture of an earlier record
            cputype, cpusubtype = draw(st.sampled_from([record[:2] for record in records]))
        else:
            cputype, cpusubtype = draw(cpu_pairs())
        mode = draw(st.sampled_from(["valid"] * 4 + ["late", "shared", "past_eof", "straddle", "tiny", "any"]))
        if mode == "late" and size - 28 >= 4096:
            offset = draw(st.integers(4096, size - 28))
            length = draw(st.integers(28, size - offset))
        elif mode in ("valid", "tiny") and size - table_end >= 28:
            offset = draw(st.integers(table_end, size - 28))
            length = draw(st.integers(0, 27)) if mode == "tiny" else draw(st.integers(28, size - offset))
        elif mode == "shared" and records:
            offset, length = draw(st.sampled_from([r[2:4] for r in records]))
        elif mode == "past_eof":
            offset, length = draw(st.integers(size, size + 64)), draw(st.integers(0, 4096))
        elif mode == "straddle" and size > 0:
            offset = draw(st.integers(0, size - 1))
            length = size - offset + draw(st.integers(1, 64))
        else:
            offset, length = draw(u32s), draw(u32s)
        offset, length = offset & U32, length & U32
        records.append((cputype, cpusubtype, offset, length, draw(st.integers(0, 14))))
        if draw(st.integers(0, 5)) > 0:
            put(offset, draw(thin_headers()))

    put(0, magic + struct.pack(">I", nfat))
    for index, record in enumerate(records):
        put(8 + 20 * index, struct.pack(">iiIII", *record))
    return bytes(buf)


@st.composite
def java_class_like(draw: st.DrawFn) -> bytes:
    """0xCAFEBABE, then a class file's minor and major version: read as nfat_arch = minor << 16 | major."""
    minor = draw(st.sampled_from([0, 0, 3, 0xFFFF]) | st.integers(0, 0xFFFF))
    major = draw(st.integers(45, 70))
    return b"\xca\xfe\xba\xbe" + struct.pack(">HH", minor, major) + draw(st.binary(max_size=1600))


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(1, 4)) if data else 0):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


magic_prefixed = st.builds(
    lambda magic, rest: magic + rest,
    st.sampled_from(sorted(THIN_MAGIC_BYTES) + FAT_MAGIC_BYTES),
    st.binary(max_size=300),
)

structured_inputs = st.one_of(
    thin_files(),
    fat_files(),
    java_class_like(),
    mutated(fat_files()),
    mutated(thin_files()),
    magic_prefixed,
)

PROPERTY_SETTINGS = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DISK_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- (b) property tests


@PROPERTY_SETTINGS
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_agree_with_reference(data: bytes) -> None:
    assert_agrees(santacore.sniff_macho_bytes(data), reference.sniff(data), data.hex())


@PROPERTY_SETTINGS
@given(structured_inputs)
def test_structured_inputs_agree_with_reference(data: bytes) -> None:
    assert_agrees(santacore.sniff_macho_bytes(data), reference.sniff(data), data.hex())


@PROPERTY_SETTINGS
@given(fat_files())
def test_fat_files_agree_with_reference(data: bytes) -> None:
    assert_agrees(santacore.sniff_macho_bytes(data), reference.sniff(data), data.hex())


def test_fat_strategy_reaches_valid_multi_slice_and_late_slice_cases() -> None:
    """Guard against a strategy that silently stops producing the interesting cases."""
    seen: set[str] = set()

    @settings(max_examples=600, deadline=None, database=None, derandomize=True)
    @given(fat_files())
    def collect(data: bytes) -> None:
        ref = reference.sniff(data)
        if ref.is_macho:
            seen.add("valid")
        if ref.is_fat:
            seen.add("fat")
        if ref.is_macho and any(s.offset >= reference.HEAD_SIZE for s in ref.slices):
            seen.add("beyond_first_page")

    collect()
    assert seen == {"valid", "fat", "beyond_first_page"}


@DISK_SETTINGS
@given(data=st.one_of(structured_inputs, st.binary(max_size=512)))
def test_files_on_disk_agree_with_reference(data: bytes, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("sniff") / "candidate"
    path.write_bytes(data)
    ref = reference.sniff_file(path)
    assert ref == reference.sniff(data)
    assert_agrees(santacore.sniff_macho(str(path)), ref, data.hex())


@PROPERTY_SETTINGS
@given(int32s, int32s)
def test_arch_name_agrees_with_reference(cputype: int, cpusubtype: int) -> None:
    assert santacore.arch_name(cputype, cpusubtype) == reference.arch_name(cputype, cpusubtype)


@given(cpu_pairs())
def test_arch_name_agrees_on_known_pairs(pair: tuple[int, int]) -> None:
    assert santacore.arch_name(*pair) == reference.arch_name(*pair)


# --------------------------------------------------------------------------- (c) explicit cases


def thin(filetype: int = 2, cpu: tuple[int, int] = (CPU_X86_64, 3), size: int = 32) -> bytes:
    """A little-endian mach_header_64 (32 bytes), cut or zero-padded to `size` bytes."""
    header = b"\xcf\xfa\xed\xfe" + struct.pack("<iiIIIII", cpu[0], cpu[1], filetype, 0, 0, 0, 0)
    return (header + b"\x00" * size)[:size]


def fat(records: list[tuple[tuple[int, int], int, int]], slices: dict[int, bytes], nfat: int | None = None) -> bytes:
    """A fat file: records are ((cputype, cpusubtype), offset, size); slices maps offsets to their bytes."""
    table = struct.pack(">II", 0xCAFEBABE, len(records) if nfat is None else nfat)
    table += b"".join(struct.pack(">iiIII", cpu[0], cpu[1], offset, size, 12) for cpu, offset, size in records)
    end = max([len(table)] + [offset + len(data) for offset, data in slices.items()])
    buf = bytearray(end)
    buf[: len(table)] = table
    for offset, data in slices.items():
        buf[offset : offset + len(data)] = data
    return bytes(buf)


def sniff_both(data: bytes) -> santacore.MachOInfo:
    info = santacore.sniff_macho_bytes(data)
    assert_agrees(info, reference.sniff(data), data.hex())
    return info


def test_java_class_from_corpus_is_not_macho(corpus: Path, manifest: dict[str, Any]) -> None:
    entry = next(e for e in manifest["files"] if e["path"].endswith("commons/cli/OptionValidator.class"))
    path = corpus / entry["path"]
    data = path.read_bytes()
    assert data[:4] == b"\xca\xfe\xba\xbe"
    assert struct.unpack(">I", data[4:8])[0] == 51  # Java 7's version, read as 51 fat architectures
    for info in (santacore.sniff_macho(str(path)), sniff_both(data)):
        assert not info.is_macho
        assert not info.is_fat
        assert not info.is_executable
        assert list(info.architectures) == []
        assert list(info.filetypes) == []
        assert list(info.slices) == []
        assert info.fat_container  # it does start with a fat magic


def test_27_byte_thin_header_is_not_macho() -> None:
    assert sniff_both(thin(size=28)).is_macho
    info = sniff_both(thin(size=27))
    assert not info.is_macho
    assert list(info.architectures) == []


def test_small_thin_file_is_macho() -> None:
    """northpolesec reads min(size, 4096) bytes: a 28-byte thin header is Mach-O."""
    info = sniff_both(thin(size=28))
    assert info.is_macho and info.is_executable and not info.is_fat and not info.fat_container
    assert list(info.architectures) == ["x86_64"]
    assert list(info.filetypes) == [2]


def test_big_endian_thin_header_fields_are_swapped() -> None:
    data = b"\xfe\xed\xfa\xce" + struct.pack(">iiI", 18, 0, 6) + b"\x00" * 16
    info = sniff_both(data)
    assert list(info.architectures) == ["ppc"]
    assert list(info.filetypes) == [6]
    assert not info.is_executable
    assert [(s.big_endian, s.is_64) for s in info.slices] == [(True, False)]


def test_valid_fat_file() -> None:
    data = fat([((CPU_X86_64, 3), 4096, 64), ((CPU_ARM64, 0), 8192, 64)], {4096: thin(size=64), 8192: thin(6, size=64)})
    info = sniff_both(data)
    assert info.is_macho and info.is_fat and info.fat_container and info.is_executable
    assert list(info.architectures) == ["x86_64", "arm64"]  # names from the records, not the slice headers
    assert list(info.filetypes) == [2, 6]
    assert [(s.offset, s.size) for s in info.slices] == [(4096, 64), (8192, 64)]


def test_nfat_arch_64_is_accepted_but_65_is_not() -> None:
    def file_with(nfat: int) -> bytes:
        records = [((7, n), 4096 + 64 * n, 64) for n in range(nfat)]  # 65 distinct names, all valid slices
        return fat(records, {4096 + 64 * n: thin(size=64) for n in range(nfat)})

    at_cap = sniff_both(file_with(64))
    assert at_cap.is_macho and len(at_cap.architectures) == 64
    over_cap = sniff_both(file_with(65))
    assert not over_cap.is_macho and not over_cap.is_fat and not over_cap.is_executable
    assert over_cap.fat_container
    assert list(over_cap.architectures) == []


def test_fat_magic_64_is_not_macho() -> None:
    valid = fat([((CPU_X86_64, 3), 4096, 64)], {4096: thin(size=64)})
    assert sniff_both(valid).is_macho
    for magic in (b"\xca\xfe\xba\xbf", b"\xbf\xba\xfe\xca"):
        info = sniff_both(magic + valid[4:])
        assert not info.is_macho and not info.fat_container
        assert list(info.architectures) == []


def test_byte_swapped_fat_magic_is_accepted() -> None:
    valid = fat([((CPU_X86_64, 3), 4096, 64)], {4096: thin(size=64)})
    info = sniff_both(b"\xbe\xba\xfe\xca" + valid[4:])
    assert info.is_macho and info.fat_container and list(info.architectures) == ["x86_64"]


def test_fat_table_past_end_of_file_has_no_slices() -> None:
    # 60 bytes: one record for the slice at 28..60, whose header bytes also form an (invalid) second record.
    data = fat([((CPU_X86_64, 3), 28, 32)], {28: thin()}, nfat=2)
    assert len(data) == 60
    assert list(sniff_both(data).architectures) == ["x86_64"]
    info = sniff_both(data[:4] + struct.pack(">I", 3) + data[8:])  # a 3-record table needs 68 bytes
    assert not info.is_macho and info.fat_container


def test_invalid_slices_are_dropped() -> None:
    data = fat(
        [
            ((7, 3), 4096, 27),  # too small
            ((CPU_X86_64, 3), 4096, 4097),  # runs past the end
            ((CPU_ARM64, 0), 0, 64),  # starts with the fat header, not a thin magic
            ((CPU_ARM64, 2), 0xFFFFFFF0, 64),  # far past the end
            ((12, 9), 4096, 4096),  # valid
        ],
        {4096: thin(size=4096)},
    )
    info = sniff_both(data)
    assert list(info.architectures) == ["armv7"]
    assert info.is_macho and not info.is_fat


def test_duplicate_architecture_keeps_position_takes_last_value() -> None:
    data = fat(
        [((CPU_X86_64, 3), 4096, 64), ((CPU_ARM64, 0), 8192, 64), ((CPU_X86_64, 0x80000003 - (1 << 32)), 12288, 64)],
        {4096: thin(2, size=64), 8192: thin(2, size=64), 12288: thin(6, size=64)},
    )
    info = sniff_both(data)
    assert list(info.architectures) == ["x86_64", "arm64"]
    assert list(info.filetypes) == [6, 2]
    assert [s.offset for s in info.slices] == [12288, 8192]
    assert info.is_fat
    assert not info.is_executable  # the first value is now the MH_DYLIB slice


def test_slice_end_is_not_computed_in_32_bits() -> None:
    """offset + size wraps around 2**32 to 64, inside the file: the slice still runs past the end."""
    data = fat([((CPU_X86_64, 3), 4096, (1 << 32) - 4096 + 64)], {4096: thin(size=64)})
    assert len(data) == 4160
    info = sniff_both(data)
    assert not info.is_macho and info.fat_container


def test_slices_beyond_the_first_page_are_read_from_disk(tmp_path: Path) -> None:
    data = fat(
        [((CPU_X86_64, 3), 8192, 64), ((CPU_ARM64, 0), 12288, 64), ((CPU_ARM64, 2), 12300, 64)],
        {8192: thin(6, size=64), 12288: thin(2, size=64)},
    )
    assert len(data) == 12352  # the arm64e record runs 12 bytes past the end
    path = tmp_path / "late"
    path.write_bytes(data)
    info = santacore.sniff_macho(str(path))
    assert_agrees(info, reference.sniff_file(path), data.hex())
    assert list(info.architectures) == ["x86_64", "arm64"]
    assert list(info.filetypes) == [6, 2]
    assert not info.is_executable


def test_slices_at_and_beyond_2_gib_are_accepted(tmp_path: Path) -> None:
    """northpolesec reads offsets and sizes as unsigned 32-bit values (a sparse 4 GiB file)."""
    path = tmp_path / "sparse"
    records = [((CPU_X86_64, 3), 0x80000000, 4096), ((CPU_ARM64, 0), 0xFFFFF000, 4096)]
    with open(path, "wb") as f:
        f.write(fat(records, {}))
        f.seek(0x80000000)
        f.write(thin(2, size=64))
        f.seek(0xFFFFF000)
        f.write(thin(2, cpu=(CPU_ARM64, 0), size=64))
        f.truncate(1 << 32)
    info = santacore.sniff_macho(str(path))
    assert_agrees(info, reference.sniff_file(path), "sparse 4 GiB file")
    assert list(info.architectures) == ["x86_64", "arm64"]
    assert [(s.offset, s.size) for s in info.slices] == [(0x80000000, 4096), (0xFFFFF000, 4096)]
    assert info.is_executable


def test_overlapping_slices_are_each_recorded() -> None:
    data = fat([((CPU_X86_64, 3), 4096, 4096), ((CPU_ARM64, 0), 4096, 64)], {4096: thin(size=4096)})
    info = sniff_both(data)
    assert list(info.architectures) == ["x86_64", "arm64"]
    assert info.is_fat


def test_unknown_architectures_print_signed_record_values() -> None:
    data = fat(
        [((0x01000005, 0x80000003 - (1 << 32)), 4096, 64), ((18, 10), 8192, 64)],
        {4096: thin(size=64), 8192: thin(size=64)},
    )
    assert list(sniff_both(data).architectures) == ["16777221:-2147483645", "18:10"]


def test_empty_and_non_regular_files_are_not_macho(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (empty, tmp_path, fifo):
        info = santacore.sniff_macho(str(path))
        assert not info.is_macho and not info.fat_container and list(info.slices) == []
        assert reference.sniff_file(path) == reference.NOT_MACHO


def test_missing_file_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        santacore.sniff_macho(str(tmp_path / "missing"))
    with pytest.raises(OSError):
        reference.sniff_file(tmp_path / "missing")


@pytest.mark.parametrize(
    ("cputype", "cpusubtype", "name"),
    [
        (7, 3, "i386"),
        (CPU_X86_64, 3, "x86_64"),
        (CPU_X86_64, 0x80000003 - (1 << 32), "x86_64"),  # CPU_SUBTYPE_LIB64 ignored
        (CPU_X86_64, 8, "x86_64h"),
        (CPU_ARM64, 0, "arm64"),
        (CPU_ARM64, 2, "arm64e"),
        (CPU_ARM64, 0x80000002 - (1 << 32), "arm64e"),  # pointer-auth ABI bits ignored
        (0x0200000C, 1, "arm64_32"),
        (12, 9, "armv7"),
        (12, 11, "armv7s"),
        (12, 12, "armv7k"),
        (18, 0, "ppc"),
        (18, 10, "18:10"),  # ppc7400
        (0x01000012, 0x80000000 - (1 << 32), "16777234:-2147483648"),  # ppc64 with CPU_SUBTYPE_LIB64
        (0x01000012, 0, "16777234:0"),  # ppc64 is not in macOS's table
        (0x01000005, 0x80000003 - (1 << 32), "16777221:-2147483645"),  # cal-yikes' x86_64 record
        (CPU_X86_64, 4, "16777223:4"),
        (-1, -1, "-1:-1"),
        (0, 0, "0:0"),
    ],
)
def test_arch_name_table(cputype: int, cpusubtype: int, name: str) -> None:
    assert santacore.arch_name(cputype, cpusubtype) == name
    assert reference.arch_name(cputype, cpusubtype) == name
