"""Embedded code signatures (santacore.identity.codesign) against the corpus manifest, Apple's rules, and hostile input.

(a) every slice of every corpus file: signed or not, and every signing field the manifest records, plus the raw
    `santactl_2026.4.csblob` SuperBlob; the number of fields compared is checked;
(b) verification: code pages and special slots of every signed slice match; flipped bytes and edited blobs do not;
(c) which CodeDirectory Security picks (hash priority, gaps in the alternates, duplicates);
(d) hostile input: arbitrary bytes and mutations of real SuperBlobs either parse or raise SignatureError, with work
    bounded by their size.

Slices and their signatures are located with LIEF, independently of santacore's own Mach-O code.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import struct
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lief
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from santacore.errors import SignatureError
from santacore.identity import codesign as cs
from santacore.identity.codesign import CodeDirectory, EmbeddedSignature, cs_blobs, parse_superblob

lief.logging.disable()

# Manifest fields compared for each signed slice, for each CodeDirectory and for each SuperBlob index entry.
SLICE_FIELDS = (
    "signed",
    "offset",
    "cdhash",
    "signing_id",
    "team_id",
    "santa_signing_id",
    "platform",
    "platform_binary",
    "flags",
    "adhoc",
    "linker_signed",
    "hardened_runtime",
    "chosen_hash_type",
    "entitlements",
    "der_entitlements_present",
    "cms_present",
)
UNSIGNED_SLICE_FIELDS = ("signed", "offset")
CD_FIELDS = ("slot", "version", "hash_type", "flags", "identifier", "team_id", "platform", "cdhash", "cdhash_full")
SLOT_FIELDS = ("type", "magic", "length")
RAW_SUPERBLOB_FIELDS = (
    "cdhash",
    "signing_id",
    "team_id",
    "santa_signing_id",
    "platform_binary",
    "adhoc",
    "chosen_hash_type",
    "entitlements",
    "slots_present",
)


# --- Locating signatures with LIEF --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedSlice:
    path: Path
    rel: str
    slice_offset: int
    sig_offset: int
    """Offset of the signature within the slice (LC_CODE_SIGNATURE dataoff)."""
    blob: bytes
    expected: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.rel}@{self.slice_offset}"


def lief_slices(path: Path) -> list[tuple[int, tuple[int, int] | None]]:
    """(slice offset, (signature offset, size) or None) for each slice LIEF finds, in file order."""
    fat = lief.MachO.parse(str(path))
    if fat is None:
        return []
    found: list[tuple[int, tuple[int, int] | None]] = []
    for binary in fat:
        signature = None
        if binary.has_code_signature and binary.code_signature is not None:
            signature = (binary.code_signature.data_offset, binary.code_signature.data_size)
        found.append((binary.fat_offset, signature))
    return found


def manifest_files(manifest: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return [entry for entry in manifest["files"] if entry.get(key)]


@pytest.fixture(scope="session")
def signed_slices(corpus: Path, manifest: dict[str, Any]) -> list[SignedSlice]:
    result = []
    for entry in manifest_files(manifest, "slices"):
        path = corpus / entry["path"]
        data = path.read_bytes()
        for (slice_offset, signature), expected in zip(lief_slices(path), entry["slices"], strict=False):
            if signature is not None and expected["signed"]:
                start = slice_offset + signature[0]
                blob = data[start : start + signature[1]]
                result.append(SignedSlice(path, entry["path"], slice_offset, signature[0], blob, expected))
    assert result, "the corpus has no signed slices"
    return result


def find_slice(slices: Sequence[SignedSlice], suffix: str) -> list[SignedSlice]:
    found = [s for s in slices if s.rel.endswith(suffix)]
    assert found, f"no signed slice of {suffix} in the corpus"
    return found


# --- (a) Every corpus slice against the manifest ------------------------------------------------------------------


def slice_values(sig: EmbeddedSignature) -> dict[str, Any]:
    return {
        "signed": True,
        "cdhash": sig.cdhash,
        "signing_id": sig.signing_id,
        "team_id": sig.team_id,
        "santa_signing_id": sig.santa_signing_id,
        "platform": sig.platform,
        "platform_binary": sig.platform_binary,
        "flags": sig.flags,
        "adhoc": sig.adhoc,
        "linker_signed": sig.linker_signed,
        "hardened_runtime": sig.hardened_runtime,
        "chosen_hash_type": sig.chosen_hash_type,
        "entitlements": sig.entitlements,
        "der_entitlements_present": sig.der_entitlements is not None,
        "cms_present": sig.cms is not None,
        "slots_present": {hex(slot.type): True for slot in sig.slots},
    }


def cd_values(cd: CodeDirectory) -> dict[str, Any]:
    return {
        "slot": hex(cd.slot_type),
        "version": hex(cd.version),
        "hash_type": cd.hash_type_name,
        "flags": cd.flags,
        "identifier": cd.identifier,
        "team_id": cd.team_id,
        "platform": cd.platform,
        "cdhash": cd.cdhash,
        "cdhash_full": cd.cdhash_full,
    }


def manifest_cd_values(expected: dict[str, Any]) -> dict[str, Any]:
    """The manifest's CodeDirectory record, as santacore must report it.

    Apple's untruncated cdhash of a SHA-256-truncated CodeDirectory is 20 bytes (codedirectory.cpp hashFor:
    CCHashInstance(kCCDigestSHA256, SHA1::digestLength)); the manifest records the whole SHA-256 instead, so
    santacore's value must be its first 20 bytes. (`test_truncated_cdhash_full_is_a_sha256_prefix` checks that
    the manifest's value is the SHA-256 of the blob.)
    """
    if expected["hash_type"] == "sha256_truncated":
        return {**expected, "cdhash_full": expected["cdhash_full"][: 2 * cs_blobs.CDHASH_LEN]}
    return expected


def slot_values(slot: cs.Slot) -> dict[str, Any]:
    return {"type": hex(slot.type), "magic": f"0x{slot.magic:08x}", "length": slot.length}


class Comparison:
    """Field-by-field comparison that counts what it compared and collects every difference."""

    def __init__(self) -> None:
        self.compared = 0
        self.differences: list[str] = []

    def fields(self, where: str, names: Sequence[str], actual: dict[str, Any], expected: dict[str, Any]) -> None:
        for name in names:
            self.compared += 1
            if actual[name] != expected[name]:
                self.differences.append(f"{where}: {name} is {actual[name]!r}, manifest says {expected[name]!r}")

    def signature(
        self, where: str, sig: EmbeddedSignature, expected: dict[str, Any], names: Sequence[str], **extra: Any
    ) -> None:
        self.fields(where, names, {**slice_values(sig), **extra}, expected)
        self.compared += 2  # the number of CodeDirectories and of index entries
        if len(sig.code_directories) != len(expected["code_directories"]):
            self.differences.append(f"{where}: {len(sig.code_directories)} CodeDirectories")
        if len(sig.slots) != len(expected["slots"]):
            self.differences.append(f"{where}: {len(sig.slots)} index entries")
        for cd, expected_cd in zip(sig.code_directories, expected["code_directories"], strict=False):
            where_cd = f"{where} CD {expected_cd['slot']}"
            self.fields(where_cd, CD_FIELDS, cd_values(cd), manifest_cd_values(expected_cd))
        for slot, expected_slot in zip(sig.slots, expected["slots"], strict=False):
            self.fields(f"{where} slot {expected_slot['type']}", SLOT_FIELDS, slot_values(slot), expected_slot)


def expected_field_count(slices: Sequence[dict[str, Any]]) -> int:
    """What a complete comparison of these manifest slices compares."""
    count = 0
    for s in slices:
        if s["signed"]:
            count += len(SLICE_FIELDS) + 2
            count += len(CD_FIELDS) * len(s["code_directories"]) + len(SLOT_FIELDS) * len(s["slots"])
        else:
            count += len(UNSIGNED_SLICE_FIELDS)
    return count


def test_every_slice_matches_manifest(corpus: Path, manifest: dict[str, Any]) -> None:
    check = Comparison()
    all_slices: list[dict[str, Any]] = []
    for entry in manifest_files(manifest, "slices"):
        path = corpus / entry["path"]
        found = lief_slices(path)
        assert len(found) == len(entry["slices"]), f"{entry['path']}: LIEF finds {len(found)} slices"
        data = path.read_bytes()
        for (slice_offset, signature), expected in zip(found, entry["slices"], strict=True):
            all_slices.append(expected)
            where = f"{entry['path']}@{slice_offset}"
            if signature is None:
                check.fields(where, UNSIGNED_SLICE_FIELDS, {"signed": False, "offset": slice_offset}, expected)
                continue
            start = slice_offset + signature[0]
            sig = parse_superblob(data[start : start + signature[1]])
            check.signature(where, sig, expected, SLICE_FIELDS, offset=slice_offset)

    assert not check.differences, "\n".join(check.differences)
    signed = [s for s in all_slices if s["signed"]]
    assert signed and len(signed) < len(all_slices), "expected both signed and unsigned slices"
    assert sum(len(s["code_directories"]) for s in signed) > len(signed), "expected slices with alternate CDs"
    assert check.compared == expected_field_count(all_slices)
    assert check.compared > 1500


def test_raw_superblob_matches_manifest(corpus: Path, manifest: dict[str, Any]) -> None:
    entries = manifest_files(manifest, "raw_superblob")
    assert entries, "the manifest has no raw SuperBlob"
    check = Comparison()
    for entry in entries:
        sig = parse_superblob((corpus / entry["path"]).read_bytes())
        check.signature(entry["path"], sig, entry, RAW_SUPERBLOB_FIELDS)
        assert sig.cms is not None and sig.requirements is not None
    assert not check.differences, "\n".join(check.differences)
    expected = sum(
        len(RAW_SUPERBLOB_FIELDS) + 2 + len(CD_FIELDS) * len(e["code_directories"]) + len(SLOT_FIELDS) * len(e["slots"])
        for e in entries
    )
    assert check.compared == expected
    assert check.compared >= len(RAW_SUPERBLOB_FIELDS) + 2 + len(CD_FIELDS) + len(SLOT_FIELDS)


def blob_in_slot(superblob: bytes, slot_type: int) -> bytes:
    """The first blob of that slot type, read with struct (independently of santacore's parser)."""
    (count,) = struct.unpack_from(">I", superblob, 8)
    for i in range(count):
        entry_type, offset = struct.unpack_from(">II", superblob, 12 + 8 * i)
        if entry_type == slot_type:
            (length,) = struct.unpack_from(">I", superblob, offset + 4)
            return superblob[offset : offset + length]
    raise AssertionError(f"no slot 0x{slot_type:x}")


def test_truncated_cdhash_full_is_a_sha256_prefix(signed_slices: list[SignedSlice]) -> None:
    """The manifest's cdhash_full of a SHA-256-truncated CodeDirectory is the SHA-256 (hashlib) of the blob, so
    its first 20 bytes are Apple's untruncated cdhash, which `manifest_cd_values` expects santacore to report."""
    checked = 0
    for s in signed_slices:
        for expected in s.expected["code_directories"]:
            if expected["hash_type"] == "sha256_truncated":
                blob = blob_in_slot(s.blob, int(expected["slot"], 16))
                assert hashlib.sha256(blob).hexdigest() == expected["cdhash_full"], s.name
                checked += 1
    assert checked >= 2


def test_code_directory_structure(signed_slices: list[SignedSlice]) -> None:
    """Field relations every real CodeDirectory satisfies (cross-checks the parser, not the manifest)."""
    for s in signed_slices:
        sig = parse_superblob(s.blob)
        assert sig.raw == s.blob[: len(sig.raw)]
        assert sig.chosen in sig.code_directories
        for cd in sig.code_directories:
            assert cd.raw == sig.find(cd.slot_type).data  # type: ignore[union-attr]
            assert cd.hash_size == cs_blobs.HASH_SIZES[cd.hash_type]
            assert cd.signing_limit <= s.sig_offset, s.name  # code pages end where the signature starts
            assert len(cd.code_slot(cd.n_code_slots - 1)) == cd.hash_size
            assert cd.cdhash == cd.cdhash_full[:40]
            assert (cd.team_id is None) == (cd.team_offset == 0)
            with pytest.raises(ValueError, match="no code slot"):
                cd.code_slot(cd.n_code_slots)
            with pytest.raises(ValueError, match="numbered -1"):
                cd.special_slot(1)
            assert cd.special_slot(-(cd.n_special_slots + 1)) is None


# --- (b) Verification ---------------------------------------------------------------------------------------------


def test_code_pages_match(signed_slices: list[SignedSlice]) -> None:
    directories = 0
    for s in signed_slices:
        for cd in parse_superblob(s.blob).code_directories:
            check = cs.verify_code_pages(s.path, s.slice_offset, cd)
            assert check.ok, f"{s.name} CD 0x{cd.slot_type:x}: {check}"
            assert check.pages == cd.n_code_slots > 0
            directories += 1
    assert directories > len(signed_slices)


def flip_byte_in_page(s: SignedSlice, cd: CodeDirectory) -> tuple[int, int]:
    """(page, file position) of a byte in the middle of a middle code page."""
    page = cd.n_code_slots // 2
    page_bytes = cd.page_bytes or cd.signing_limit
    start = page * page_bytes
    end = min(start + page_bytes, cd.signing_limit)
    position = s.slice_offset + (start + end) // 2
    assert position < s.slice_offset + s.sig_offset  # inside the code, outside the signature
    return page, position


def test_flipped_byte_names_its_page(signed_slices: list[SignedSlice], tmp_path: Path) -> None:
    for i, s in enumerate(signed_slices):
        sig = parse_superblob(s.blob)
        page, position = flip_byte_in_page(s, sig.chosen)
        copy = tmp_path / f"{i}"
        shutil.copyfile(s.path, copy)
        with open(copy, "r+b") as f:
            f.seek(position)
            byte = f.read(1)
            f.seek(position)
            f.write(bytes([byte[0] ^ 0x01]))
        for cd in sig.code_directories:
            check = cs.verify_code_pages(copy, s.slice_offset, cd)
            assert check.mismatched_pages == ((position - s.slice_offset) // (cd.page_bytes or cd.signing_limit),)
            assert not check.ok
            if cd is sig.chosen:
                assert check.mismatched_pages == (page,)
                assert f"code page {page} " in str(check)
        # Other slices of the same file are untouched.
        for other in signed_slices:
            if other.path == s.path and other.slice_offset != s.slice_offset:
                assert cs.verify_code_pages(copy, other.slice_offset, parse_superblob(other.blob).chosen).ok
        copy.unlink()


def test_truncated_file_is_a_signature_error(signed_slices: list[SignedSlice], tmp_path: Path) -> None:
    s = signed_slices[0]
    cd = parse_superblob(s.blob).chosen
    copy = tmp_path / "truncated"
    copy.write_bytes(s.path.read_bytes()[: s.slice_offset + cd.signing_limit - 1])
    with pytest.raises(SignatureError, match="runs past the end"):
        cs.verify_code_pages(copy, s.slice_offset, cd)


SEALED_BLOBS = {
    cs_blobs.SPECIAL_SLOT_REQUIREMENTS: cs_blobs.CSSLOT_REQUIREMENTS,
    cs_blobs.SPECIAL_SLOT_ENTITLEMENTS: cs_blobs.CSSLOT_ENTITLEMENTS,
    cs_blobs.SPECIAL_SLOT_DER_ENTITLEMENTS: cs_blobs.CSSLOT_DER_ENTITLEMENTS,
}


def test_special_slots_match(signed_slices: list[SignedSlice]) -> None:
    matched: dict[int, int] = dict.fromkeys(SEALED_BLOBS, 0)
    for s in signed_slices:
        sig = parse_superblob(s.blob)
        for cd in sig.code_directories:
            outcomes = cs.verify_special_slots(sig, cd, info_plist=None, code_resources=None)
            assert set(outcomes) == {-1, -2, -3, -5, -7}
            for special, slot_type in SEALED_BLOBS.items():
                if sig.find(slot_type) is None:
                    assert outcomes[special] == "absent", s.name
                else:
                    assert outcomes[special] == "match", s.name
                    matched[special] += 1
            for special in (cs_blobs.SPECIAL_SLOT_INFO_PLIST, cs_blobs.SPECIAL_SLOT_RESOURCE_DIR):
                expected = "absent" if cd.special_slot(special) is None else "unverifiable"
                assert outcomes[special] == expected
    assert all(matched.values()), matched


@pytest.mark.parametrize("app", ["Designer", "Linguist"])
def test_info_plist_and_code_resources_slots(signed_slices: list[SignedSlice], app: str) -> None:
    """PySide6's ad-hoc sealed apps bind their Info.plist (-1) and CodeResources (-3)."""
    slices = find_slice(signed_slices, f"/{app}.app/Contents/MacOS/{app}")
    contents = slices[0].path.parent.parent
    info_plist = (contents / "Info.plist").read_bytes()
    code_resources = (contents / "_CodeSignature" / "CodeResources").read_bytes()
    for s in slices:
        sig = parse_superblob(s.blob)
        for cd in sig.code_directories:
            outcomes = cs.verify_special_slots(sig, cd, info_plist=info_plist, code_resources=code_resources)
            assert outcomes == {-1: "match", -2: "match", -3: "match", -5: "absent", -7: "absent"}
            edited = cs.verify_special_slots(
                sig, cd, info_plist=info_plist + b"\n", code_resources=code_resources.replace(b"<", b" <", 1)
            )
            assert edited[-1] == edited[-3] == "mismatch"


def replace_blob(sig: EmbeddedSignature, slot_type: int, new: bytes | None) -> bytes:
    """The SuperBlob rebuilt with one blob replaced (or dropped when `new` is None)."""
    blobs = [(slot.type, slot.data) for slot in sig.slots if slot.type != slot_type or new is not None]
    return build_superblob([(t, new if t == slot_type and new is not None else data) for t, data in blobs])


def test_edited_entitlements_mismatch(signed_slices: list[SignedSlice]) -> None:
    [s] = find_slice(signed_slices, "/hw_entitled")
    sig = parse_superblob(s.blob)
    entitlements = sig.find(cs_blobs.CSSLOT_ENTITLEMENTS)
    der = sig.find(cs_blobs.CSSLOT_DER_ENTITLEMENTS)
    assert entitlements is not None and der is not None
    assert sig.entitlements and all(value is True for value in sig.entitlements.values())

    # Revoke one entitlement: still a valid plist, but not the one the CodeDirectory seals.
    payload = entitlements.payload.replace(b"<true/>", b"<false/>", 1)
    edited = struct.pack(">II", cs_blobs.CSMAGIC_EMBEDDED_ENTITLEMENTS, 8 + len(payload)) + payload
    forged = parse_superblob(replace_blob(sig, cs_blobs.CSSLOT_ENTITLEMENTS, edited))
    assert forged.cdhash == sig.cdhash  # the CodeDirectory is unchanged; only the sealed blob differs
    assert forged.entitlements is not None and False in forged.entitlements.values()
    outcomes = cs.verify_special_slots(forged, forged.chosen, info_plist=None, code_resources=None)
    assert outcomes == {-1: "absent", -2: "match", -3: "absent", -5: "mismatch", -7: "match"}

    der_edited = der.data[:-1] + bytes([der.data[-1] ^ 0xFF])
    forged = parse_superblob(replace_blob(sig, cs_blobs.CSSLOT_DER_ENTITLEMENTS, der_edited))
    assert cs.verify_special_slots(forged, forged.chosen, info_plist=None, code_resources=None)[-7] == "mismatch"

    # A sealed blob that was removed is a mismatch too (SecStaticCode::component: "was supposed to be there").
    stripped = parse_superblob(replace_blob(sig, cs_blobs.CSSLOT_ENTITLEMENTS, None))
    assert stripped.entitlements is None
    assert cs.verify_special_slots(stripped, stripped.chosen, info_plist=None, code_resources=None)[-5] == "mismatch"


def test_santa_signing_id_format() -> None:
    assert cs.format_signing_id("", "TEAM", True) is None
    assert cs.format_signing_id("com.x", "TEAM", True) == "TEAM:com.x"
    assert cs.format_signing_id("com.x", None, True) == "platform:com.x"
    assert cs.format_signing_id("com.x", "", True) == "platform:com.x"
    assert cs.format_signing_id("com.x", None, False) is None


# --- (c) Which CodeDirectory is chosen ----------------------------------------------------------------------------


def build_superblob(blobs: Sequence[tuple[int, bytes]], *, offsets: Sequence[int] | None = None) -> bytes:
    """A SuperBlob of these (type, blob) pairs, laid out after the index (or at explicit `offsets`)."""
    index_end = 12 + 8 * len(blobs)
    body = b""
    positions = []
    for _, data in blobs:
        positions.append(index_end + len(body))
        body += data
    if offsets is not None:
        positions = list(offsets)
    index = b"".join(struct.pack(">II", t, o) for (t, _), o in zip(blobs, positions, strict=True))
    total = index_end + len(body)
    return struct.pack(">III", cs_blobs.CSMAGIC_EMBEDDED_SIGNATURE, total, len(blobs)) + index + body


@pytest.fixture(scope="session")
def universal_cds(signed_slices: list[SignedSlice]) -> dict[str, bytes]:
    """hw_universal's four CodeDirectories (SHA-1, SHA-256, SHA-256-truncated, SHA-384) by hash type name,
    and its requirements blob."""
    sig = parse_superblob(find_slice(signed_slices, "/hw_universal")[0].blob)
    cds = {cd.hash_type_name: cd.raw for cd in sig.code_directories}
    assert set(cds) == {"sha1", "sha256", "sha256_truncated", "sha384"}
    assert sig.requirements is not None
    return {**cds, "requirements": sig.requirements}


def cd_superblob(cds: Sequence[bytes], slots: Sequence[int] | None = None) -> bytes:
    slots = slots or [0, *range(0x1000, 0x1000 + len(cds) - 1)]
    return build_superblob(list(zip(slots, cds, strict=True)))


@pytest.mark.parametrize(
    ("present", "chosen"),
    [
        (("sha1", "sha256", "sha256_truncated", "sha384"), "sha384"),
        (("sha384", "sha1", "sha256_truncated", "sha256"), "sha384"),
        (("sha1", "sha256_truncated", "sha256"), "sha256"),
        (("sha1", "sha256_truncated"), "sha256_truncated"),
        (("sha256_truncated", "sha1"), "sha256_truncated"),
        (("sha1",), "sha1"),
    ],
)
def test_hash_priority(universal_cds: dict[str, bytes], present: tuple[str, ...], chosen: str) -> None:
    sig = parse_superblob(cd_superblob([universal_cds[name] for name in present]))
    assert sig.chosen_hash_type == chosen
    assert [cd.hash_type_name for cd in sig.code_directories] == list(present)


def set_hash_type(cd: bytes, hash_type: int) -> bytes:
    return cd[:37] + bytes([hash_type]) + cd[38:]


def test_unknown_hash_types_are_never_chosen(universal_cds: dict[str, bytes]) -> None:
    unknown = set_hash_type(universal_cds["sha384"], 9)
    requirements = (0x2, universal_cds["requirements"])
    sig = parse_superblob(build_superblob([(0, universal_cds["sha1"]), requirements, (0x1000, unknown)]))
    assert sig.chosen_hash_type == "sha1"
    assert sig.code_directories[1].hash_type_name == "unknown(9)"
    with pytest.raises(SignatureError, match="unsupported code signature hash type 9"):
        _ = sig.code_directories[1].cdhash
    assert cs.verify_special_slots(sig, sig.code_directories[1], info_plist=None, code_resources=None)[-2] == (
        "unverifiable"
    )
    with pytest.raises(SignatureError, match="no CodeDirectory uses a supported hash type"):
        parse_superblob(cd_superblob([unknown]))


def test_alternates_stop_at_first_gap(universal_cds: dict[str, bytes]) -> None:
    """Security loads 0x1000, 0x1001, ... until one is missing: a SHA-384 CD after a gap is ignored."""
    blob = cd_superblob([universal_cds["sha1"], universal_cds["sha384"]], slots=[0, 0x1001])
    sig = parse_superblob(blob)
    assert sig.chosen_hash_type == "sha1" and len(sig.code_directories) == 1
    assert len(sig.slots) == 2


def test_duplicate_hash_type_is_rejected(universal_cds: dict[str, bytes]) -> None:
    with pytest.raises(SignatureError, match="two CodeDirectories use hash type sha256"):
        parse_superblob(cd_superblob([universal_cds["sha256"], universal_cds["sha256"]]))


def test_no_code_directory(universal_cds: dict[str, bytes]) -> None:
    with pytest.raises(SignatureError, match="no CodeDirectory"):
        parse_superblob(build_superblob([(0x1000, universal_cds["sha256"])]))
    with pytest.raises(SignatureError, match="no CodeDirectory"):
        parse_superblob(build_superblob([]))


# --- (d) Hostile input --------------------------------------------------------------------------------------------


def assert_work_bounded_by_size(sig: EmbeddedSignature, blob: bytes) -> None:
    """Every loop parsing runs, and every value derived from its result, is bounded by the blob's size: the index
    entries, each CodeDirectory's hash slots and scatter vector fit inside it, so hostile input costs linear work
    (checked as sizes, not seconds: timing a shared machine measures the machine)."""
    assert len(sig.raw) <= len(blob)
    assert 12 + 8 * len(sig.slots) <= len(sig.raw)
    for cd in sig.code_directories:
        assert len(cd.raw) <= len(sig.raw)
        assert (cd.n_special_slots + cd.n_code_slots) * cd.hash_size <= len(cd.raw)
        assert 24 * len(cd.scatter) <= len(cd.raw)


def exercise(blob: bytes) -> None:
    """Parse and use every derived value: only SignatureError may escape, and the work is bounded by the size."""
    try:
        sig = parse_superblob(blob)
        assert_work_bounded_by_size(sig, blob)
        # What the chosen CodeDirectory yields never fails once the parse succeeded.
        assert len(sig.cdhash) == 2 * cs_blobs.CDHASH_LEN and sig.chosen_hash_type in cs_blobs.HASH_TYPE_NAMES.values()
        assert sig.santa_signing_id is None or ":" in sig.santa_signing_id
        assert isinstance(sig.hardened_runtime, bool) and (sig.cms is None or len(sig.cms) > 0)
        for name in ("entitlements", "der_entitlements", "requirements"):
            with contextlib.suppress(SignatureError):  # a malformed plist is a SignatureError too
                getattr(sig, name)
        for cd in sig.code_directories:
            with contextlib.suppress(SignatureError):  # unknown hash types cannot be hashed
                assert len(cd.cdhash_full) >= 2 * cs_blobs.CDHASH_LEN
            outcomes = cs.verify_special_slots(sig, cd, info_plist=b"x", code_resources=b"y")
            assert set(outcomes.values()) <= {"match", "mismatch", "absent", "unverifiable"}
            for i in range(min(cd.n_code_slots, 4)):
                assert len(cd.code_slot(i)) == cd.hash_size
            for n in range(1, min(cd.n_special_slots, 8) + 1):
                slot = cd.special_slot(-n)
                assert slot is None or len(slot) == cd.hash_size
        for entry in sig.slots[:64]:
            assert len(entry.data) == entry.length
    except SignatureError as e:
        assert str(e)


@pytest.fixture(scope="session")
def real_superblobs(signed_slices: list[SignedSlice], corpus: Path, manifest: dict[str, Any]) -> list[Template]:
    """Distinct kinds of real signatures: 4 CDs, entitlements, Developer ID, ad-hoc, linker-signed, csblob."""
    picks = ["/hw_universal", "/hw_entitled", "/signed-with-teamid", "/yikes-universal_adhoc", "/bin/esbuild"]
    blobs = [find_slice(signed_slices, suffix)[0].blob for suffix in picks]
    blobs += [(corpus / e["path"]).read_bytes() for e in manifest_files(manifest, "raw_superblob")]
    return [template(blob) for blob in blobs]


def u32(value: int) -> bytes:
    return struct.pack(">I", value)


def put(blob: bytes, offset: int, value: bytes) -> bytes:
    """`value` written over `blob` at `offset` (clipped to the blob, which may have been truncated)."""
    value = value[: max(len(blob) - offset, 0)]
    return blob[:offset] + value + blob[offset + len(value) :]


INTERESTING_U32 = st.sampled_from([0, 1, 7, 8, 12, 0x7F, 0xFF, 0x1000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF])
ANY_U32 = st.one_of(INTERESTING_U32, st.integers(0, 0xFFFFFFFF))

# Header fields of a CodeDirectory (offset, width) worth corrupting.
CD_HEADER_FIELDS = {
    "length": (4, 4),
    "version": (8, 4),
    "hashOffset": (16, 4),
    "identOffset": (20, 4),
    "nSpecialSlots": (24, 4),
    "nCodeSlots": (28, 4),
    "codeLimit": (32, 4),
    "hashSize": (36, 1),
    "hashType": (37, 1),
    "pageSize": (39, 1),
    "scatterOffset": (44, 4),
    "teamOffset": (48, 4),
    "codeLimit64": (56, 8),
    "preEncryptOffset": (92, 4),
}


@dataclass(frozen=True)
class Template:
    """A real SuperBlob and where its index entries and CodeDirectories are (read before any mutation)."""

    blob: bytes
    count: int
    cd_offsets: tuple[int, ...]


def template(blob: bytes) -> Template:
    sig = parse_superblob(blob)
    cd_offsets = tuple(slot.offset for slot in sig.slots if slot.magic == cs_blobs.CSMAGIC_CODEDIRECTORY)
    return Template(blob[: len(sig.raw)], len(sig.slots), cd_offsets)


@st.composite
def mutated_superblob(draw: st.DrawFn, templates: Sequence[Template]) -> bytes:
    t = draw(st.sampled_from(templates))

    def bit_flips(b: bytes) -> bytes:
        out = bytearray(b)
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(t.blob) - 1)) % len(out)
            out[i] ^= 1 << draw(st.integers(0, 7))
        return bytes(out)

    def truncate(b: bytes) -> bytes:
        return b[: draw(st.integers(0, len(t.blob)))]

    def header_field(b: bytes) -> bytes:  # SuperBlob length or count
        return put(b, draw(st.sampled_from([4, 8])), u32(draw(ANY_U32)))

    def index_field(b: bytes) -> bytes:  # an entry's type or offset, e.g. past the end
        i = draw(st.integers(0, t.count - 1))
        return put(b, 12 + 8 * i + draw(st.sampled_from([0, 4])), u32(draw(ANY_U32)))

    def repeat_entry(b: bytes) -> bytes:  # two index entries pointing at the same blob, with the same or another type
        i, j = draw(st.integers(0, t.count - 1)), draw(st.integers(0, t.count - 1))
        entry = t.blob[12 + 8 * j : 20 + 8 * j]
        if draw(st.booleans()):
            entry = u32(draw(ANY_U32)) + entry[4:]
        return put(b, 12 + 8 * i, entry)

    def cd_field(b: bytes) -> bytes:
        base = draw(st.sampled_from(t.cd_offsets))
        offset, width = CD_HEADER_FIELDS[draw(st.sampled_from(sorted(CD_HEADER_FIELDS)))]
        value = draw(st.one_of(ANY_U32, st.integers(0, 2**64 - 1))) % (1 << (8 * width))
        return put(b, base + offset, value.to_bytes(width, "big"))

    def cd_overflow(b: bytes) -> bytes:  # nCodeSlots * hashSize far beyond the blob
        base = draw(st.sampled_from(t.cd_offsets))
        b = put(b, base + 28, u32(draw(st.integers(0x10000000, 0xFFFFFFFF))))
        return put(b, base + 36, bytes([draw(st.sampled_from([20, 32, 48, 0xFF]))]))

    def splice(b: bytes) -> bytes:
        start = draw(st.integers(0, len(t.blob))) % (len(b) + 1)
        return b[:start] + draw(st.binary(max_size=64)) + b[start + draw(st.integers(0, 64)) :]

    mutations = [bit_flips, truncate, header_field, index_field, repeat_entry, cd_field, cd_overflow, splice]
    blob = t.blob
    for mutation in draw(st.lists(st.sampled_from(mutations), min_size=1, max_size=3)):
        blob = mutation(blob) if blob else blob
    return blob


@given(st.binary(max_size=2048))
def test_arbitrary_bytes(blob: bytes) -> None:
    exercise(blob)


@given(length=ANY_U32, count=ANY_U32, rest=st.binary(max_size=512))
def test_arbitrary_superblob_headers(length: int, count: int, rest: bytes) -> None:
    exercise(struct.pack(">III", cs_blobs.CSMAGIC_EMBEDDED_SIGNATURE, length, count) + rest)


@settings(max_examples=500)
@given(data=st.data())
def test_mutated_real_superblobs(real_superblobs: list[Template], data: st.DataObject) -> None:
    exercise(data.draw(mutated_superblob(real_superblobs)))


@settings(max_examples=50)
@given(data=st.data())
def test_mutated_code_directory_verification(signed_slices: list[SignedSlice], data: st.DataObject) -> None:
    """A corrupted CodeDirectory checked against the real file: a result or SignatureError, never anything else."""
    s = data.draw(st.sampled_from(find_slice(signed_slices, "/hw_universal")))
    try:
        sig = parse_superblob(data.draw(mutated_superblob([template(s.blob)])))
    except SignatureError:
        return
    for cd in sig.code_directories:
        try:
            check = cs.verify_code_pages(s.path, s.slice_offset, cd)
        except SignatureError as e:
            assert str(e)
        else:
            assert check.pages == cd.n_code_slots


# Explicit hostile cases, each with the problem its message must name.


def hw_universal_blob(signed_slices: list[SignedSlice]) -> bytes:
    return find_slice(signed_slices, "/hw_universal")[0].blob


def slot_zero_offset(blob: bytes) -> int:
    slot = parse_superblob(blob).find(cs_blobs.CSSLOT_CODEDIRECTORY)
    assert slot is not None
    return slot.offset


def corrupt_first_cd(blob: bytes, offset: int, value: bytes) -> bytes:
    base = slot_zero_offset(blob)
    return blob[: base + offset] + value + blob[base + offset + len(value) :]


@pytest.mark.parametrize(
    ("offset", "value", "message"),
    [
        (28, u32(0xFFFFFFFF), "hash slots"),  # nCodeSlots * hashSize overflows 32 bits and the blob
        (24, u32(0xFFFFFFFF), "hash slots"),  # nSpecialSlots
        (16, u32(0xFFFFFFF0), "hash slots"),  # hashOffset
        (20, u32(0xFFFFFFF0), "identifier offset"),  # identOffset outside
        (48, u32(0xFFFFFFF0), "team ID offset"),  # teamOffset outside
        (8, u32(0x30000), "unsupported CodeDirectory version"),
        (8, u32(0x20000), "unsupported CodeDirectory version"),
        (4, u32(0xFFFFFFFF), "outside the"),  # CD length past the SuperBlob
        (4, u32(20), "too short"),
        (36, bytes([19]), "hash size 19"),
        (39, bytes([13]), "code slots"),  # pageSize no longer matches nCodeSlots
        (0, u32(0xFADE0C01), "magic"),
    ],
)
def test_corrupt_code_directory(signed_slices: list[SignedSlice], offset: int, value: bytes, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        parse_superblob(corrupt_first_cd(hw_universal_blob(signed_slices), offset, value))


def test_identifier_not_utf8_or_unterminated(signed_slices: list[SignedSlice]) -> None:
    blob = hw_universal_blob(signed_slices)
    cd = parse_superblob(blob).code_directories[0]
    base = slot_zero_offset(blob)
    bad = blob[: base + cd.ident_offset] + b"\xff" + blob[base + cd.ident_offset + 1 :]
    with pytest.raises(SignatureError, match="identifier is not UTF-8"):
        parse_superblob(bad)
    # identOffset at the last byte of the CD, which is not NUL: the string runs off the blob.
    last = len(cd.raw) - 1
    assert cd.raw[last] != 0
    with pytest.raises(SignatureError, match="no terminating NUL"):
        parse_superblob(corrupt_first_cd(blob, 20, u32(last)))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda b: b[:11], "too short"),
        (lambda b: u32(0xFADE0CC1) + b[4:], "bad SuperBlob magic"),
        (lambda b: b[:4] + u32(len(b) + 1) + b[8:], "runs past"),
        (lambda b: b[:8] + u32(0xFFFFFFFF) + b[12:], "index of 4294967295 entries"),
        (lambda b: b[:16] + u32(0xFFFFFFF8) + b[20:], "bad offset"),
        (lambda b: b[:16] + u32(0) + b[20:], "bad offset"),  # a blob inside the header/index
    ],
)
def test_corrupt_superblob(signed_slices: list[SignedSlice], edit: Callable[[bytes], bytes], message: str) -> None:
    blob = hw_universal_blob(signed_slices)
    blob = blob[: struct.unpack_from(">I", blob, 4)[0]]
    with pytest.raises(SignatureError, match=message):
        parse_superblob(edit(blob))


def test_wrong_magic_in_known_slot(universal_cds: dict[str, bytes]) -> None:
    fake_requirements = struct.pack(">II", cs_blobs.CSMAGIC_EMBEDDED_ENTITLEMENTS, 12) + b"\0" * 4
    with pytest.raises(SignatureError, match="slot 0x2 has magic 0xfade7171"):
        parse_superblob(build_superblob([(0, universal_cds["sha256"]), (2, fake_requirements)]))


def test_many_entries_for_one_big_blob_are_not_copied(universal_cds: dict[str, bytes]) -> None:
    """8 MiB of blob named by 1,000 index entries: parsing must not copy it once per entry.

    Measured as allocation, not time: parsing keeps one copy of the SuperBlob (trailing padding dropped) and a
    few hundred bytes per entry; one more copy of the big blob, even a transient one, would show in the peak.
    """
    count, size = 1_000, 8 << 20
    big = struct.pack(">II", cs_blobs.CSMAGIC_BLOBWRAPPER, size) + b"\0" * (size - 8)
    cd = universal_cds["sha256"]
    index_end = 12 + 8 * count
    blobs = [(0, cd)] + [(0x20 + i % 7, big) for i in range(count - 1)]
    offsets = [index_end] + [index_end + len(cd)] * (count - 1)
    index = b"".join(struct.pack(">II", t, o) for (t, _), o in zip(blobs, offsets, strict=True))
    total = index_end + len(cd) + len(big)
    blob = struct.pack(">III", cs_blobs.CSMAGIC_EMBEDDED_SIGNATURE, total, count) + index + cd + big + b"\0" * 16
    tracemalloc.start()
    try:
        sig = parse_superblob(blob)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(sig.slots) == count and sig.chosen_hash_type == "sha256"
    assert sig.slots[1].length == sig.slots[-1].length == size
    assert len(sig.raw) == total
    assert peak < total + size // 2, f"parsing allocated {peak} bytes at its peak for a {total}-byte SuperBlob"


def test_trailing_padding_is_ignored(signed_slices: list[SignedSlice]) -> None:
    blob = hw_universal_blob(signed_slices)
    padded = parse_superblob(blob + b"\0" * 100)
    assert padded.raw == parse_superblob(blob).raw


def iter_signed(slices: Sequence[SignedSlice]) -> Iterator[tuple[SignedSlice, EmbeddedSignature]]:
    for s in slices:
        yield s, parse_superblob(s.blob)


def test_entitlements_blob_not_a_dictionary(signed_slices: list[SignedSlice]) -> None:
    [(_, sig)] = list(iter_signed(find_slice(signed_slices, "/hw_entitled")))
    for payload, message in [(b"<plist><array/></plist>", "holds a list"), (b"not a plist", "not a property list")]:
        blob = struct.pack(">II", cs_blobs.CSMAGIC_EMBEDDED_ENTITLEMENTS, 8 + len(payload)) + payload
        forged = parse_superblob(replace_blob(sig, cs_blobs.CSSLOT_ENTITLEMENTS, blob))
        with pytest.raises(SignatureError, match=message):
            _ = forged.entitlements
