"""Apple's cs_blobs.h: blob magics, SuperBlob slot numbers, hash types, CodeDirectory versions and flags;
and the digest of a CodeDirectory hash type (computed by the Rust engine, `santacore._core.digest`)."""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Final, Literal

from santacore import _core
from santacore.errors import SignatureError

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
ALTERNATE_CD_SLOTS: Final = range(CSSLOT_ALTERNATE_CODEDIRECTORIES, CSSLOT_ALTERNATE_CODEDIRECTORY_LIMIT)

# The SuperBlob slot types whose blob must carry a given magic.
SLOT_MAGICS: Final[Mapping[int, int]] = {
    CSSLOT_CODEDIRECTORY: CSMAGIC_CODEDIRECTORY,
    **{slot: CSMAGIC_CODEDIRECTORY for slot in ALTERNATE_CD_SLOTS},
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

BLOB_HEADER: Final = struct.Struct(">II")  # magic, length: the header of every blob


def hash_type_name(hash_type: int) -> str:
    """ "sha1", "sha256", "sha256_truncated", "sha384", or "unknown(N)"."""
    return HASH_TYPE_NAMES.get(hash_type, f"unknown({hash_type})")


def digest(hash_type: int, data: bytes) -> bytes:
    """The digest of a CodeDirectory hash type (SHA-256-truncated: its first 20 bytes); SignatureError if unknown."""
    if hash_type not in HASH_TYPE_NAMES:
        raise SignatureError(f"unsupported code signature hash type {hash_type}")
    return _core.digest(hash_type, data)
