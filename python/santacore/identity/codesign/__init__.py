"""The embedded code signature of one Mach-O slice: parsed and verified as Apple's Security framework does (spec §7.3).

The signature is the blob `LC_CODE_SIGNATURE` points at: a big-endian SuperBlob whose index names the
CodeDirectories, the requirements, the entitlements and the CMS signature. Layouts and constants follow Apple's
`cs_blobs.h` (`cs_blobs`); the checks follow `libsecurity_codesigning`: `superblob` (`SuperBlob::validateBlob`,
`SecStaticCode::loadCodeDirectories`, `CodeDirectory::bestHashOf`), `code_directory`
(`CodeDirectory::checkIntegrity`) and `verify` (code pages, special slots).

Hashes come from the Rust engine (`santacore._core.digest`, `santacore._core.code_page_hashes`).

Special slots are numbered as Apple's `CodeDirectory::getSlot` and `codesign -d` number them: -1 Info.plist,
-2 requirements, -3 resource directory (CodeResources), -5 entitlements, -7 DER entitlements; code slots are 0, 1, ...

Every malformed signature raises `SignatureError` naming the problem. The constants stay in `cs_blobs`; the
types and functions below are the package's interface.
"""

from __future__ import annotations

from santacore.identity.codesign.code_directory import CodeDirectory, Scatter, parse_code_directory
from santacore.identity.codesign.cs_blobs import HashTypeName, hash_type_name
from santacore.identity.codesign.superblob import EmbeddedSignature, Slot, format_signing_id, parse_superblob
from santacore.identity.codesign.verify import (
    CodePageCheck,
    SpecialSlotOutcome,
    verify_code_pages,
    verify_special_slots,
)

__all__ = [
    "CodeDirectory",
    "CodePageCheck",
    "EmbeddedSignature",
    "HashTypeName",
    "Scatter",
    "Slot",
    "SpecialSlotOutcome",
    "format_signing_id",
    "hash_type_name",
    "parse_code_directory",
    "parse_superblob",
    "verify_code_pages",
    "verify_special_slots",
]
