"""The embedded code signature of one Mach-O slice: parsed and verified as Apple's Security framework does (spec §7.3).

The signature is the blob `LC_CODE_SIGNATURE` points at: a big-endian SuperBlob whose index names the
CodeDirectories, the requirements, the entitlements and the CMS signature. Layouts and constants follow Apple's
`cs_blobs.h`; the checks follow `libsecurity_codesigning` (`SuperBlob::validateBlob`,
`CodeDirectory::checkIntegrity`, `SecStaticCode::loadCodeDirectories`), and the CodeDirectory Santa reports is the
one `CodeDirectory::bestHashOf` picks: SHA-384 > SHA-256 > SHA-256-truncated > SHA-1.

Hashes come from the Rust engine (`santacore._core.digest`, `santacore._core.code_page_hashes`).

Special slots are numbered as Apple's `CodeDirectory::getSlot` and `codesign -d` number them: -1 Info.plist,
-2 requirements, -3 resource directory (CodeResources), -5 entitlements, -7 DER entitlements; code slots are 0, 1, ...

Every malformed signature raises `SignatureError` naming the problem.
"""

from __future__ import annotations

import os
import plistlib
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from santacore import _core
from santacore.errors import SignatureError
from santacore.identity.plists import PLIST_ERRORS

# --- cs_blobs.h ---------------------------------------------------------------------------------------------------

CSMAGIC_EMBEDDED_SIGNATURE: Final = 0xFADE0CC0
CSMAGIC_CODEDIRECTORY: Final = 0xFADE0C02
CSMAGIC_REQUIREMENTS: Final = 0xFADE0C01
CSMAGIC_EMBEDDED_ENTITLEMENTS: Final = 0xFADE7171
CSMAGIC_EMBEDDED_DER_ENTITLEMENTS: Final = 0xFADE7172
CSMAGIC_BLOBWRAPPER: Final = 0xFADE0B01

CSSLOT_CODEDIRECTORY: Final = 0
CSSLOT_INFOSLOT: Final = 1
CSSLOT_REQUIREMENTS: Final = 2
CSSLOT_RESOURCEDIR: Final = 3
CSSLOT_APPLICATION: Final = 4
CSSLOT_ENTITLEMENTS: Final = 5
CSSLOT_REP_SPECIFIC: Final = 6
CSSLOT_DER_ENTITLEMENTS: Final = 7
CSSLOT_ALTERNATE_CODEDIRECTORIES: Final = 0x1000
CSSLOT_ALTERNATE_CODEDIRECTORY_LIMIT: Final = 0x1005  # alternates are 0x1000–0x1004
CSSLOT_SIGNATURESLOT: Final = 0x10000
_ALTERNATE_CD_SLOTS: Final = range(CSSLOT_ALTERNATE_CODEDIRECTORIES, CSSLOT_ALTERNATE_CODEDIRECTORY_LIMIT)

# The SuperBlob slot types whose blob must carry a given magic.
_SLOT_MAGICS: Final[Mapping[int, int]] = {
    CSSLOT_CODEDIRECTORY: CSMAGIC_CODEDIRECTORY,
    **{slot: CSMAGIC_CODEDIRECTORY for slot in _ALTERNATE_CD_SLOTS},
    CSSLOT_REQUIREMENTS: CSMAGIC_REQUIREMENTS,
    CSSLOT_ENTITLEMENTS: CSMAGIC_EMBEDDED_ENTITLEMENTS,
    CSSLOT_DER_ENTITLEMENTS: CSMAGIC_EMBEDDED_DER_ENTITLEMENTS,
    CSSLOT_SIGNATURESLOT: CSMAGIC_BLOBWRAPPER,
}

# Special slots of a CodeDirectory, numbered as getSlot() takes them (codesign -d prints the same numbers).
SPECIAL_SLOT_INFO_PLIST: Final = -CSSLOT_INFOSLOT
SPECIAL_SLOT_REQUIREMENTS: Final = -CSSLOT_REQUIREMENTS
SPECIAL_SLOT_RESOURCE_DIR: Final = -CSSLOT_RESOURCEDIR
SPECIAL_SLOT_ENTITLEMENTS: Final = -CSSLOT_ENTITLEMENTS
SPECIAL_SLOT_DER_ENTITLEMENTS: Final = -CSSLOT_DER_ENTITLEMENTS

CS_HASHTYPE_SHA1: Final = 1
CS_HASHTYPE_SHA256: Final = 2
CS_HASHTYPE_SHA256_TRUNCATED: Final = 3
CS_HASHTYPE_SHA384: Final = 4

HashTypeName = Literal["sha1", "sha256", "sha256_truncated", "sha384"]
HASH_TYPE_NAMES: Final[Mapping[int, HashTypeName]] = {
    CS_HASHTYPE_SHA1: "sha1",
    CS_HASHTYPE_SHA256: "sha256",
    CS_HASHTYPE_SHA256_TRUNCATED: "sha256_truncated",
    CS_HASHTYPE_SHA384: "sha384",
}
HASH_SIZES: Final[Mapping[int, int]] = {
    CS_HASHTYPE_SHA1: 20,
    CS_HASHTYPE_SHA256: 32,
    CS_HASHTYPE_SHA256_TRUNCATED: 20,
    CS_HASHTYPE_SHA384: 48,
}
# codedirectory.cpp `hashPriorities`, best first. A hash type not listed is never chosen.
HASH_PRIORITIES: Final = (CS_HASHTYPE_SHA384, CS_HASHTYPE_SHA256, CS_HASHTYPE_SHA256_TRUNCATED, CS_HASHTYPE_SHA1)

CS_ADHOC: Final = 0x2
CS_RUNTIME: Final = 0x10000
CS_LINKER_SIGNED: Final = 0x20000

CDHASH_LEN: Final = 20

# CodeDirectory versions: where each optional field appeared, and the range Security accepts.
CD_EARLIEST_VERSION: Final = 0x20001
CD_COMPATIBILITY_LIMIT: Final = 0x2F000
CD_SUPPORTS_SCATTER: Final = 0x20100
CD_SUPPORTS_TEAM_ID: Final = 0x20200
CD_SUPPORTS_CODE_LIMIT_64: Final = 0x20300
CD_SUPPORTS_EXEC_SEGMENT: Final = 0x20400
CD_SUPPORTS_RUNTIME: Final = 0x20500
CD_SUPPORTS_LINKAGE: Final = 0x20600

_BLOB_HEADER = struct.Struct(">II")  # magic, length
_SUPERBLOB_HEADER = struct.Struct(">III")  # magic, length, count
_INDEX_ENTRY = struct.Struct(">II")  # type, offset
# magic length version flags hashOffset identOffset nSpecialSlots nCodeSlots codeLimit
# hashSize hashType platform pageSize spare2
_CD_BASE = struct.Struct(">9I4BI")
_SCATTER = struct.Struct(">IIQQ")  # count, base, targetOffset, spare

SpecialSlotOutcome = Literal["match", "mismatch", "absent", "unverifiable"]


def hash_type_name(hash_type: int) -> str:
    """ "sha1", "sha256", "sha256_truncated", "sha384", or "unknown(N)"."""
    return HASH_TYPE_NAMES.get(hash_type, f"unknown({hash_type})")


def _digest(hash_type: int, data: bytes) -> bytes:
    if hash_type not in HASH_TYPE_NAMES:
        raise SignatureError(f"unsupported code signature hash type {hash_type}")
    return _core.digest(hash_type, data)


# --- Blobs --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    """One SuperBlob index entry and the blob it points at (the bytes are sliced on demand)."""

    type: int
    offset: int
    """Offset of the blob within the SuperBlob."""
    magic: int
    length: int
    """Length of the whole blob, its 8-byte header included."""
    _superblob: bytes = field(repr=False, compare=False)

    @property
    def data(self) -> bytes:
        """The whole blob, header included (what special-slot hashes cover)."""
        return self._superblob[self.offset : self.offset + self.length]

    @property
    def payload(self) -> bytes:
        """The blob without its 8-byte magic/length header."""
        return self._superblob[self.offset + _BLOB_HEADER.size : self.offset + self.length]


@dataclass(frozen=True)
class Scatter:
    """One scatter-vector entry (only non-Mach-O code uses them)."""

    count: int
    base: int
    target_offset: int
    spare: int


@dataclass(frozen=True)
class CodeDirectory:
    """A CodeDirectory blob (magic 0xfade0c02), every field its version has.

    Fields a version predates read 0, as Apple's accessors report them.
    """

    slot_type: int
    """The SuperBlob slot it came from: 0, or an alternate 0x1000–0x1004."""
    raw: bytes
    """The whole blob (`length` bytes): what the cdhash covers."""
    version: int
    flags: int
    hash_offset: int
    ident_offset: int
    n_special_slots: int
    n_code_slots: int
    code_limit: int
    hash_size: int
    hash_type: int
    platform: int
    page_size: int
    """log2 of the code page size; 0 means one page covers all the code."""
    spare2: int
    scatter_offset: int  # ≥ 0x20100
    team_offset: int  # ≥ 0x20200
    spare3: int  # ≥ 0x20300
    code_limit_64: int  # ≥ 0x20300
    exec_seg_base: int  # ≥ 0x20400
    exec_seg_limit: int
    exec_seg_flags: int
    runtime: int  # ≥ 0x20500
    pre_encrypt_offset: int
    linkage_hash_type: int  # ≥ 0x20600
    linkage_application_type: int
    linkage_application_sub_type: int
    linkage_offset: int
    linkage_size: int
    identifier: str
    team_id: str | None
    """None when the version has no team field or its offset is 0."""
    scatter: tuple[Scatter, ...]
    """The scatter vector without its terminating entry (empty when there is none)."""

    @property
    def length(self) -> int:
        return len(self.raw)

    @property
    def hash_type_name(self) -> str:
        return hash_type_name(self.hash_type)

    @property
    def signing_limit(self) -> int:
        """Bytes of the slice the code slots cover: codeLimit64 when set (≥ 0x20300), else codeLimit."""
        return self.code_limit_64 if self.code_limit_64 else self.code_limit

    @property
    def page_bytes(self) -> int:
        """The code page size in bytes; 0 when one page covers all the code."""
        return 1 << self.page_size if self.page_size else 0

    @property
    def adhoc(self) -> bool:
        return bool(self.flags & CS_ADHOC)

    @property
    def linker_signed(self) -> bool:
        return bool(self.flags & CS_LINKER_SIGNED)

    @property
    def hardened_runtime(self) -> bool:
        return bool(self.flags & CS_RUNTIME)

    @property
    def platform_binary(self) -> bool:
        return self.platform != 0

    @property
    def cdhash_full(self) -> str:
        """The CodeDirectory's own hash type over the whole blob, lowercase hex (untruncated)."""
        return _digest(self.hash_type, self.raw).hex()

    @property
    def cdhash(self) -> str:
        """The cdhash: `cdhash_full` cut to 20 bytes (40 hex characters)."""
        return self.cdhash_full[: 2 * CDHASH_LEN]

    def code_slot(self, index: int) -> bytes:
        """The hash of code page `index` (0-based), `hash_size` bytes."""
        if not 0 <= index < self.n_code_slots:
            raise ValueError(f"no code slot {index}: the CodeDirectory has {self.n_code_slots}")
        start = self.hash_offset + index * self.hash_size
        return self.raw[start : start + self.hash_size]

    def special_slot(self, slot: int) -> bytes | None:
        """The hash in special slot `slot` (-1 Info.plist, -2 requirements, ...); None if absent or all zeros."""
        if slot >= 0:
            raise ValueError(f"special slots are numbered -1, -2, ... (got {slot})")
        if -slot > self.n_special_slots:
            return None
        start = self.hash_offset + slot * self.hash_size
        value = self.raw[start : start + self.hash_size]
        return value if any(value) else None


# --- SuperBlob ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmbeddedSignature:
    """A parsed SuperBlob (magic 0xfade0cc0) and the CodeDirectory the Security framework would use."""

    raw: bytes
    """The SuperBlob (`length` bytes; padding after it is dropped)."""
    slots: tuple[Slot, ...]
    """Every index entry, in index order (repeats included)."""
    code_directories: tuple[CodeDirectory, ...]
    """Slot 0, then the alternates 0x1000, 0x1001, ... up to the first one missing (as Security loads them)."""
    chosen: CodeDirectory
    """The CodeDirectory with the best hash type (SHA-384 > SHA-256 > SHA-256-truncated > SHA-1)."""

    def find(self, slot_type: int) -> Slot | None:
        """The first index entry of that type, as `SuperBlob::find` returns it."""
        for slot in self.slots:
            if slot.type == slot_type:
                return slot
        return None

    @property
    def cdhash(self) -> str:
        return self.chosen.cdhash

    @property
    def signing_id(self) -> str:
        """The chosen CodeDirectory's identifier (the raw signing identifier, not Santa's `TEAM:id`)."""
        return self.chosen.identifier

    @property
    def team_id(self) -> str | None:
        return self.chosen.team_id

    @property
    def platform(self) -> int:
        return self.chosen.platform

    @property
    def platform_binary(self) -> bool:
        return self.chosen.platform_binary

    @property
    def flags(self) -> int:
        return self.chosen.flags

    @property
    def adhoc(self) -> bool:
        return self.chosen.adhoc

    @property
    def linker_signed(self) -> bool:
        return self.chosen.linker_signed

    @property
    def hardened_runtime(self) -> bool:
        return self.chosen.hardened_runtime

    @property
    def chosen_hash_type(self) -> HashTypeName:
        return HASH_TYPE_NAMES[self.chosen.hash_type]

    @property
    def santa_signing_id(self) -> str | None:
        """Santa's `FormatSigningID` (spec §7.3): `TEAMID:identifier`, `platform:identifier`, or None."""
        return format_signing_id(self.signing_id, self.team_id, self.platform_binary)

    @property
    def requirements(self) -> bytes | None:
        """The requirements blob (slot 2), header included, or None."""
        slot = self.find(CSSLOT_REQUIREMENTS)
        return None if slot is None else slot.data

    @property
    def entitlements(self) -> dict[str, Any] | None:
        """The entitlements dictionary from the plist blob (slot 5), or None when there is none."""
        slot = self.find(CSSLOT_ENTITLEMENTS)
        if slot is None:
            return None
        try:
            value = plistlib.loads(slot.payload)
        except PLIST_ERRORS as e:
            raise SignatureError(f"entitlements blob is not a property list: {e}") from e
        if not isinstance(value, dict):
            raise SignatureError(f"entitlements blob holds a {type(value).__name__}, not a dictionary")
        return value

    @property
    def der_entitlements(self) -> bytes | None:
        """The DER entitlements (slot 7 payload, without the blob header), or None."""
        slot = self.find(CSSLOT_DER_ENTITLEMENTS)
        return None if slot is None else slot.payload

    @property
    def cms(self) -> bytes | None:
        """The DER CMS SignedData (slot 0x10000 payload); None when absent or empty (ad-hoc)."""
        slot = self.find(CSSLOT_SIGNATURESLOT)
        if slot is None:
            return None
        return slot.payload or None


def format_signing_id(identifier: str | None, team_id: str | None, platform_binary: bool) -> str | None:
    """Santa's FormatSigningID (spec §7.3)."""
    if not identifier:
        return None
    if team_id:
        return f"{team_id}:{identifier}"
    if platform_binary:
        return f"platform:{identifier}"
    return None


def parse_superblob(blob: bytes) -> EmbeddedSignature:
    """Parse an embedded signature (the `LC_CODE_SIGNATURE` data; trailing padding is allowed)."""
    blob = bytes(blob)
    if len(blob) < _SUPERBLOB_HEADER.size:
        raise SignatureError(f"code signature is {len(blob)} bytes, too short for a SuperBlob header")
    magic, length, count = _SUPERBLOB_HEADER.unpack_from(blob, 0)
    if magic != CSMAGIC_EMBEDDED_SIGNATURE:
        raise SignatureError(f"bad SuperBlob magic 0x{magic:08x} (expected 0x{CSMAGIC_EMBEDDED_SIGNATURE:08x})")
    if length > len(blob):
        raise SignatureError(f"SuperBlob length {length} runs past the {len(blob)} bytes of the signature")
    index_end = _SUPERBLOB_HEADER.size + count * _INDEX_ENTRY.size
    if index_end > length:
        raise SignatureError(f"SuperBlob index of {count} entries does not fit in its {length} bytes")
    raw = blob[:length]

    slots = []
    for i, (slot_type, offset) in enumerate(_INDEX_ENTRY.iter_unpack(raw[_SUPERBLOB_HEADER.size : index_end])):
        if offset < index_end or offset + _BLOB_HEADER.size > length:
            raise SignatureError(f"SuperBlob index entry {i} (type 0x{slot_type:x}) has bad offset {offset}")
        blob_magic, blob_length = _BLOB_HEADER.unpack_from(raw, offset)
        if blob_length < _BLOB_HEADER.size or offset + blob_length > length:
            raise SignatureError(
                f"blob in slot 0x{slot_type:x} at offset {offset} has length {blob_length}, "
                f"outside the {length}-byte SuperBlob"
            )
        slots.append(Slot(slot_type, offset, blob_magic, blob_length, raw))
    signature = tuple(slots)

    first: dict[int, Slot] = {}
    for entry in signature:
        first.setdefault(entry.type, entry)
    for slot_type, expected in _SLOT_MAGICS.items():
        found = first.get(slot_type)
        if found is not None and found.magic != expected:
            raise SignatureError(
                f"blob in slot 0x{slot_type:x} has magic 0x{found.magic:08x}, expected 0x{expected:08x}"
            )

    # SecStaticCode::loadCodeDirectories: slot 0, then alternates until the first gap; one CodeDirectory per hash type.
    if CSSLOT_CODEDIRECTORY not in first:
        raise SignatureError("SuperBlob has no CodeDirectory (slot 0)")
    directories: list[CodeDirectory] = []
    for slot_type in (CSSLOT_CODEDIRECTORY, *_ALTERNATE_CD_SLOTS):
        found = first.get(slot_type)
        if found is None:
            break
        try:
            cd = parse_code_directory(found.data, slot_type=slot_type)
        except SignatureError as e:
            raise SignatureError(f"slot 0x{slot_type:x}: {e}") from e
        if any(other.hash_type == cd.hash_type for other in directories):
            raise SignatureError(f"two CodeDirectories use hash type {cd.hash_type_name}")
        directories.append(cd)

    by_type = {cd.hash_type: cd for cd in directories}
    chosen = next((by_type[t] for t in HASH_PRIORITIES if t in by_type), None)
    if chosen is None:
        types = ", ".join(cd.hash_type_name for cd in directories)
        raise SignatureError(f"no CodeDirectory uses a supported hash type ({types})")
    return EmbeddedSignature(raw=raw, slots=signature, code_directories=tuple(directories), chosen=chosen)


# --- CodeDirectory ------------------------------------------------------------------------------------------------


def _header_size(version: int) -> int:
    """Bytes of the fixed CodeDirectory header a version has (cs_blobs.h)."""
    if version >= CD_SUPPORTS_LINKAGE:
        return 108
    if version >= CD_SUPPORTS_RUNTIME:
        return 96
    if version >= CD_SUPPORTS_EXEC_SEGMENT:
        return 88
    if version >= CD_SUPPORTS_CODE_LIMIT_64:
        return 64
    if version >= CD_SUPPORTS_TEAM_ID:
        return 52
    if version >= CD_SUPPORTS_SCATTER:
        return 48
    return _CD_BASE.size


def _string_at(raw: bytes, offset: int, what: str) -> str:
    """A NUL-terminated UTF-8 string inside the blob (CodeDirectory::stringAt)."""
    if offset >= len(raw):
        raise SignatureError(f"CodeDirectory {what} offset {offset} is outside the {len(raw)}-byte blob")
    end = raw.find(b"\0", offset)
    if end < 0:
        raise SignatureError(f"CodeDirectory {what} at offset {offset} has no terminating NUL")
    try:
        return raw[offset:end].decode("utf-8")
    except UnicodeDecodeError as e:
        raise SignatureError(f"CodeDirectory {what} is not UTF-8: {raw[offset:end]!r}") from e


def parse_code_directory(data: bytes, *, slot_type: int = CSSLOT_CODEDIRECTORY) -> CodeDirectory:
    """Parse and check one CodeDirectory blob (`CodeDirectory::checkIntegrity`)."""
    data = bytes(data)
    if len(data) < _BLOB_HEADER.size:
        raise SignatureError(f"CodeDirectory is {len(data)} bytes, too short for a blob header")
    magic, length = _BLOB_HEADER.unpack_from(data, 0)
    if magic != CSMAGIC_CODEDIRECTORY:
        raise SignatureError(f"bad CodeDirectory magic 0x{magic:08x}")
    if length > len(data):
        raise SignatureError(f"CodeDirectory length {length} runs past its {len(data)} bytes")
    raw = data[:length]
    if length < _CD_BASE.size:
        raise SignatureError(f"CodeDirectory is {length} bytes, too short for its header")
    (
        _,
        _,
        version,
        flags,
        hash_offset,
        ident_offset,
        n_special,
        n_code,
        code_limit,
        hash_size,
        hash_type,
        platform,
        page_size,
        spare2,
    ) = _CD_BASE.unpack_from(raw, 0)
    if not CD_EARLIEST_VERSION <= version < CD_COMPATIBILITY_LIMIT:
        raise SignatureError(f"unsupported CodeDirectory version 0x{version:x}")
    if length < _header_size(version):
        raise SignatureError(f"CodeDirectory version 0x{version:x} needs {_header_size(version)} bytes, has {length}")

    def field_at(fmt: str, offset: int, since: int) -> int:
        value: int = struct.unpack_from(fmt, raw, offset)[0] if version >= since else 0
        return value

    scatter_offset = field_at(">I", 44, CD_SUPPORTS_SCATTER)
    team_offset = field_at(">I", 48, CD_SUPPORTS_TEAM_ID)
    spare3 = field_at(">I", 52, CD_SUPPORTS_CODE_LIMIT_64)
    code_limit_64 = field_at(">Q", 56, CD_SUPPORTS_CODE_LIMIT_64)
    exec_seg_base = field_at(">Q", 64, CD_SUPPORTS_EXEC_SEGMENT)
    exec_seg_limit = field_at(">Q", 72, CD_SUPPORTS_EXEC_SEGMENT)
    exec_seg_flags = field_at(">Q", 80, CD_SUPPORTS_EXEC_SEGMENT)
    runtime = field_at(">I", 88, CD_SUPPORTS_RUNTIME)
    pre_encrypt_offset = field_at(">I", 92, CD_SUPPORTS_RUNTIME)
    linkage_hash_type = field_at(">B", 96, CD_SUPPORTS_LINKAGE)
    linkage_application_type = field_at(">B", 97, CD_SUPPORTS_LINKAGE)
    linkage_application_sub_type = field_at(">H", 98, CD_SUPPORTS_LINKAGE)
    linkage_offset = field_at(">I", 100, CD_SUPPORTS_LINKAGE)
    linkage_size = field_at(">I", 104, CD_SUPPORTS_LINKAGE)

    identifier = _string_at(raw, ident_offset, "identifier")
    team_id = _string_at(raw, team_offset, "team ID") if team_offset else None

    expected_size = HASH_SIZES.get(hash_type)
    if expected_size is not None and hash_size != expected_size:
        raise SignatureError(
            f"CodeDirectory hash size {hash_size} does not match {hash_type_name(hash_type)} ({expected_size} bytes)"
        )
    hashes_start = hash_offset - hash_size * n_special
    hashes_end = hash_offset + hash_size * n_code
    if hashes_start < 0 or hashes_end > length:
        raise SignatureError(
            f"CodeDirectory hash slots ({n_special} special, {n_code} code, {hash_size} bytes each "
            f"at offset {hash_offset}) lie outside the {length}-byte blob"
        )
    if pre_encrypt_offset and pre_encrypt_offset + hash_size * n_code > length:
        raise SignatureError(f"CodeDirectory pre-encrypt hashes at {pre_encrypt_offset} lie outside the blob")
    if linkage_offset and linkage_offset + linkage_size > length:
        raise SignatureError(f"CodeDirectory linkage data at {linkage_offset} lies outside the blob")

    scatter: list[Scatter] = []
    if scatter_offset:
        pages = 0
        position = scatter_offset
        while True:
            if position + _SCATTER.size > length:
                raise SignatureError("CodeDirectory scatter vector runs past the end of the blob")
            entry = Scatter(*_SCATTER.unpack_from(raw, position))
            if entry.count == 0:
                break
            scatter.append(entry)
            pages += entry.count
            position += _SCATTER.size
        if hash_offset + (pages + 1) * hash_size > length:
            raise SignatureError(f"CodeDirectory scatter vector covers {pages} pages, more than its hash slots")

    limit = code_limit_64 if code_limit_64 else code_limit
    if page_size:
        if limit == 0:
            raise SignatureError("CodeDirectory has paged hashes but a code limit of 0")
        covered = ((limit - 1) >> page_size) + 1
        if covered != n_code:
            raise SignatureError(
                f"CodeDirectory code limit {limit} with 2^{page_size}-byte pages needs {covered} code slots, "
                f"it has {n_code}"
            )
    elif (limit > 0) != (n_code > 0) or n_code > 1:
        raise SignatureError(f"CodeDirectory without pages must have one code slot for code limit {limit}")

    return CodeDirectory(
        slot_type=slot_type,
        raw=raw,
        version=version,
        flags=flags,
        hash_offset=hash_offset,
        ident_offset=ident_offset,
        n_special_slots=n_special,
        n_code_slots=n_code,
        code_limit=code_limit,
        hash_size=hash_size,
        hash_type=hash_type,
        platform=platform,
        page_size=page_size,
        spare2=spare2,
        scatter_offset=scatter_offset,
        team_offset=team_offset,
        spare3=spare3,
        code_limit_64=code_limit_64,
        exec_seg_base=exec_seg_base,
        exec_seg_limit=exec_seg_limit,
        exec_seg_flags=exec_seg_flags,
        runtime=runtime,
        pre_encrypt_offset=pre_encrypt_offset,
        linkage_hash_type=linkage_hash_type,
        linkage_application_type=linkage_application_type,
        linkage_application_sub_type=linkage_application_sub_type,
        linkage_offset=linkage_offset,
        linkage_size=linkage_size,
        identifier=identifier,
        team_id=team_id,
        scatter=tuple(scatter),
    )


# --- Verification -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CodePageCheck:
    """Code page hashes of a slice compared with one CodeDirectory's code slots."""

    hash_type: int
    page_bytes: int
    """Page size in bytes; 0 when one page covers everything."""
    slice_offset: int
    signing_limit: int
    pages: int
    mismatched_pages: tuple[int, ...]

    @property
    def ok(self) -> bool:
        return not self.mismatched_pages

    def page_range(self, page: int) -> tuple[int, int]:
        """The file bytes [start, end) page `page` covers."""
        if not self.page_bytes:
            return self.slice_offset, self.slice_offset + self.signing_limit
        start = page * self.page_bytes
        return self.slice_offset + start, self.slice_offset + min(start + self.page_bytes, self.signing_limit)

    def __str__(self) -> str:
        name = hash_type_name(self.hash_type)
        if self.ok:
            return f"all {self.pages} code pages match their {name} hashes"
        first = self.mismatched_pages[0]
        start, end = self.page_range(first)
        more = f" (and {len(self.mismatched_pages) - 1} more)" if len(self.mismatched_pages) > 1 else ""
        return f"code page {first} (file bytes {start}–{end}) does not match its {name} hash{more}"


def verify_code_pages(path: str | os.PathLike[str], slice_offset: int, cd: CodeDirectory) -> CodePageCheck:
    """Hash the slice's pages [slice_offset, slice_offset + signing_limit) and compare them with `cd`'s code slots."""
    if cd.hash_type not in HASH_TYPE_NAMES:
        raise SignatureError(f"cannot verify code pages: unsupported hash type {cd.hash_type}")
    if cd.scatter:
        raise SignatureError("cannot verify code pages: scatter vectors (non-Mach-O code) are not supported")
    limit = cd.signing_limit
    page_bytes = cd.page_bytes
    if page_bytes >= limit:
        page_bytes = 0  # one page holds everything either way
    if cd.n_code_slots == 0:
        return CodePageCheck(cd.hash_type, page_bytes, slice_offset, limit, 0, ())
    size = os.stat(path).st_size
    if slice_offset < 0 or slice_offset + limit > size:
        raise SignatureError(
            f"code limit {limit} at slice offset {slice_offset} runs past the end of the {size}-byte file"
        )
    try:
        hashes = _core.code_page_hashes(
            path, offset=slice_offset, length=limit, page_size=page_bytes, hash_type=cd.hash_type
        )
    except ValueError as e:
        raise SignatureError(f"cannot hash code pages: {e}") from e
    if len(hashes) != cd.n_code_slots:
        raise SignatureError(f"{len(hashes)} code pages hashed, but the CodeDirectory has {cd.n_code_slots} slots")
    mismatched = tuple(i for i, h in enumerate(hashes) if h[: cd.hash_size] != cd.code_slot(i))
    return CodePageCheck(cd.hash_type, page_bytes, slice_offset, limit, len(hashes), mismatched)


def verify_special_slots(
    sig: EmbeddedSignature,
    cd: CodeDirectory,
    *,
    info_plist: bytes | None,
    code_resources: bytes | None,
) -> dict[int, SpecialSlotOutcome]:
    """Check `cd`'s special slots -1, -2, -3, -5 and -7 as `SecStaticCode::component` does.

    "absent": the CodeDirectory has no hash for the slot (the component, if any, is not sealed);
    "match"/"mismatch": the hash of the component compared with the slot, where a sealed blob missing from the
    signature is a mismatch; "unverifiable": the caller did not supply the Info.plist/CodeResources bytes, or the
    hash type is unsupported.
    """
    sealed_blobs = {
        SPECIAL_SLOT_REQUIREMENTS: CSSLOT_REQUIREMENTS,
        SPECIAL_SLOT_ENTITLEMENTS: CSSLOT_ENTITLEMENTS,
        SPECIAL_SLOT_DER_ENTITLEMENTS: CSSLOT_DER_ENTITLEMENTS,
    }
    supplied = {SPECIAL_SLOT_INFO_PLIST: info_plist, SPECIAL_SLOT_RESOURCE_DIR: code_resources}

    outcomes: dict[int, SpecialSlotOutcome] = {}
    for special in (
        SPECIAL_SLOT_INFO_PLIST,
        SPECIAL_SLOT_REQUIREMENTS,
        SPECIAL_SLOT_RESOURCE_DIR,
        SPECIAL_SLOT_ENTITLEMENTS,
        SPECIAL_SLOT_DER_ENTITLEMENTS,
    ):
        expected = cd.special_slot(special)
        if expected is None:
            outcomes[special] = "absent"
            continue
        if special in sealed_blobs:
            blob = sig.find(sealed_blobs[special])
            if blob is None:  # sealed, but missing from the signature: SecStaticCode::component fails
                outcomes[special] = "mismatch"
                continue
            component: bytes | None = blob.data
        else:
            component = supplied[special]
        if component is None or cd.hash_type not in HASH_TYPE_NAMES:
            outcomes[special] = "unverifiable"
        else:
            actual = _digest(cd.hash_type, component)[: cd.hash_size]
            outcomes[special] = "match" if actual == expected else "mismatch"
    return outcomes
