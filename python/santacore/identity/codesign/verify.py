"""Checking a CodeDirectory against what it seals: the slice's code pages, and the special slots
(-1 Info.plist, -2 requirements, -3 CodeResources, -5 entitlements, -7 DER entitlements) as
`SecStaticCode::component` checks them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from santacore.errors import SignatureError
from santacore.identity.codesign.code_directory import CodeDirectory
from santacore.identity.codesign.cs_blobs import (
    CSSLOT_DER_ENTITLEMENTS,
    CSSLOT_ENTITLEMENTS,
    CSSLOT_REQUIREMENTS,
    HASH_TYPE_NAMES,
    SPECIAL_SLOT_DER_ENTITLEMENTS,
    SPECIAL_SLOT_ENTITLEMENTS,
    SPECIAL_SLOT_INFO_PLIST,
    SPECIAL_SLOT_REQUIREMENTS,
    SPECIAL_SLOT_RESOURCE_DIR,
    digest,
    hash_type_name,
)
from santacore.identity.codesign.superblob import EmbeddedSignature
from santacore.identity.source import ByteSource, as_source

SpecialSlotOutcome = Literal["match", "mismatch", "absent", "unverifiable"]


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


def verify_code_pages(path: str | os.PathLike[str] | ByteSource, slice_offset: int, cd: CodeDirectory) -> CodePageCheck:
    """Hash the slice's pages [slice_offset, slice_offset + signing_limit) of a file (or any
    `ByteSource`) and compare them with `cd`'s code slots."""
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
    source = as_source(path)
    size = source.size
    if slice_offset < 0 or slice_offset + limit > size:
        raise SignatureError(
            f"code limit {limit} at slice offset {slice_offset} runs past the end of the {size}-byte file"
        )
    try:
        hashes = source.code_page_hashes(slice_offset, limit, page_bytes, cd.hash_type)
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
            actual = digest(cd.hash_type, component)[: cd.hash_size]
            outcomes[special] = "match" if actual == expected else "mismatch"
    return outcomes
