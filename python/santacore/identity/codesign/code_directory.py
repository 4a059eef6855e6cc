"""One CodeDirectory blob (magic 0xfade0c02): every field its version has, parsed and checked as
`CodeDirectory::checkIntegrity` checks it; its cdhash, code slots and special slots."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from santacore.errors import SignatureError
from santacore.identity.codesign.cs_blobs import (
    BLOB_HEADER,
    CD_COMPATIBILITY_LIMIT,
    CD_EARLIEST_VERSION,
    CD_SUPPORTS_CODE_LIMIT_64,
    CD_SUPPORTS_EXEC_SEGMENT,
    CD_SUPPORTS_LINKAGE,
    CD_SUPPORTS_RUNTIME,
    CD_SUPPORTS_SCATTER,
    CD_SUPPORTS_TEAM_ID,
    CDHASH_LEN,
    CS_ADHOC,
    CS_LINKER_SIGNED,
    CS_RUNTIME,
    CSMAGIC_CODEDIRECTORY,
    CSSLOT_CODEDIRECTORY,
    HASH_SIZES,
    digest,
    hash_type_name,
)

# magic length version flags hashOffset identOffset nSpecialSlots nCodeSlots codeLimit
# hashSize hashType platform pageSize spare2
_CD_BASE = struct.Struct(">9I4BI")
_SCATTER = struct.Struct(">IIQQ")  # count, base, targetOffset, spare


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
        return digest(self.hash_type, self.raw).hex()

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
    if len(data) < BLOB_HEADER.size:
        raise SignatureError(f"CodeDirectory is {len(data)} bytes, too short for a blob header")
    magic, length = BLOB_HEADER.unpack_from(data, 0)
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
