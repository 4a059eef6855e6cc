"""The embedded signature's SuperBlob (magic 0xfade0cc0): its index and blobs, checked as `SuperBlob::validateBlob`
checks them, its CodeDirectories loaded as `SecStaticCode::loadCodeDirectories` loads them, and the one
`CodeDirectory::bestHashOf` picks (SHA-384 > SHA-256 > SHA-256-truncated > SHA-1)."""

from __future__ import annotations

import plistlib
import struct
from dataclasses import dataclass, field
from typing import Any

from santacore.errors import SignatureError
from santacore.identity.codesign.code_directory import CodeDirectory, parse_code_directory
from santacore.identity.codesign.cs_blobs import (
    ALTERNATE_CD_SLOTS,
    BLOB_HEADER,
    CSMAGIC_EMBEDDED_SIGNATURE,
    CSSLOT_CODEDIRECTORY,
    CSSLOT_DER_ENTITLEMENTS,
    CSSLOT_ENTITLEMENTS,
    CSSLOT_REQUIREMENTS,
    CSSLOT_SIGNATURESLOT,
    HASH_PRIORITIES,
    HASH_TYPE_NAMES,
    SLOT_MAGICS,
    HashTypeName,
)
from santacore.identity.plists import PLIST_ERRORS

_SUPERBLOB_HEADER = struct.Struct(">III")  # magic, length, count
_INDEX_ENTRY = struct.Struct(">II")  # type, offset


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
        return self._superblob[self.offset + BLOB_HEADER.size : self.offset + self.length]


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
        if offset < index_end or offset + BLOB_HEADER.size > length:
            raise SignatureError(f"SuperBlob index entry {i} (type 0x{slot_type:x}) has bad offset {offset}")
        blob_magic, blob_length = BLOB_HEADER.unpack_from(raw, offset)
        if blob_length < BLOB_HEADER.size or offset + blob_length > length:
            raise SignatureError(
                f"blob in slot 0x{slot_type:x} at offset {offset} has length {blob_length}, "
                f"outside the {length}-byte SuperBlob"
            )
        slots.append(Slot(slot_type, offset, blob_magic, blob_length, raw))
    signature = tuple(slots)

    first: dict[int, Slot] = {}
    for entry in signature:
        first.setdefault(entry.type, entry)
    for slot_type, expected in SLOT_MAGICS.items():
        found = first.get(slot_type)
        if found is not None and found.magic != expected:
            raise SignatureError(
                f"blob in slot 0x{slot_type:x} has magic 0x{found.magic:08x}, expected 0x{expected:08x}"
            )

    # SecStaticCode::loadCodeDirectories: slot 0, then alternates until the first gap; one CodeDirectory per hash type.
    if CSSLOT_CODEDIRECTORY not in first:
        raise SignatureError("SuperBlob has no CodeDirectory (slot 0)")
    directories: list[CodeDirectory] = []
    for slot_type in (CSSLOT_CODEDIRECTORY, *ALTERNATE_CD_SLOTS):
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
