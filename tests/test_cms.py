"""The CMS signature of a code signature: parsing, the signing chain, certificates, and verification.

Expected values are read from the corpus manifest (`slices[*].signing_chain`, `signing_time`,
`secure_signing_time`, the `certificates` of the certificate files, and every comparable
`santa_facts` entry about certificates); nothing expected is written here. Each slice's
SuperBlob is located with LIEF and split with a minimal parser of this file's own (spec §7.3),
independent of `santacore.identity.codesign`. Tampered inputs are built at run time from the real ones.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lief
import pytest
from asn1crypto import core as asn1_core  # type: ignore[import-untyped,unused-ignore]
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from santacore.errors import SignatureError
from santacore.identity.cms import (
    DEVELOPMENT_SIGNING_OIDS,
    PRODUCTION_SIGNING_OIDS,
    CertificateInfo,
    CMSSignature,
    CMSVerification,
    apple_roots,
    certificate_info,
    certificate_info_from_file,
    parse_cms,
    signing_chain,
    verify_cms,
)
from santacore.identity.cms.parse import MAX_HIGH_BIT_RUN
from tests.conftest import corpus_path

SUPERBLOB_MAGIC = 0xFADE0CC0
CODE_DIRECTORY_SLOT = 0
CMS_SLOT = 0x10000
CMS_BLOB_MAGIC = 0xFADE0B01

# The manifest's certificate record, key by key: every one is compared (a key added to the
# manifest and not compared here fails `test_manifest_certificate_keys_are_all_compared`).
CERT_FIELDS = (
    "sha256",
    "sha1",
    "cn",
    "org",
    "ou",
    "ous",
    "country",
    "issuer_cn",
    "issuer_org",
    "valid_from",
    "valid_until",
    "valid_from_iso",
    "valid_until_iso",
    "serial",
    "self_issued",
    "production_signing_oids",
)
# Per-signature values compared besides the chain.
SIGNATURE_FIELDS = ("signing_time", "secure_signing_time", "signing_chain_count", "embedded_cert_count")

# Sizes of the corpus as the manifest describes it today: if the manifest grows or shrinks, these
# counts (not expected values of any file) say so loudly instead of silently comparing less.
EXPECTED_CMS_SIGNATURES = 22  # 21 signed Mach-O slices + santactl_2026.4.csblob
EXPECTED_CHAIN_CERTS = 62
EXPECTED_CERT_FILES = 5
EXPECTED_CERT_FACTS = 68

SELF_SIGNED_TEST_SIGNERS = {"goodcert", "badcert"}  # santad/testdata/binaryrules: self-signed test certificates


# --- extracting CMS blobs from the corpus (independent of santacore.identity.codesign) ---


def superblob_slots(superblob: bytes) -> dict[int, bytes]:
    """Spec §7.3: big-endian SuperBlob {magic, length, count, (type, offset)*}; each blob's length at +4."""
    magic, _length, count = struct.unpack_from(">III", superblob, 0)
    assert magic == SUPERBLOB_MAGIC
    slots: dict[int, bytes] = {}
    for i in range(count):
        slot_type, offset = struct.unpack_from(">II", superblob, 12 + 8 * i)
        (blob_length,) = struct.unpack_from(">I", superblob, offset + 4)
        slots.setdefault(slot_type, superblob[offset : offset + blob_length])
    return slots


@dataclass(frozen=True)
class Case:
    """One CMS signature of the corpus and what the manifest says about it."""

    name: str  # file name, plus the architecture for a slice
    path: str
    expected: dict[str, Any]  # the manifest slice (or, for a raw SuperBlob, the file entry)
    cms_blob: bytes  # slot 0x10000, header included
    code_directory: bytes  # slot 0, header included

    @property
    def cms(self) -> bytes:
        return self.cms_blob[8:]

    @property
    def file_name(self) -> str:
        return Path(self.path).name


def _lief_superblobs(path: Path) -> Iterator[tuple[int, bytes]]:
    """(slice offset, SuperBlob) of every slice with LC_CODE_SIGNATURE."""
    data = path.read_bytes()
    lief.logging.disable()
    fat = lief.MachO.parse(str(path))
    assert fat is not None, path
    for binary in fat:
        if binary.has_code_signature:
            signature = binary.code_signature
            assert signature is not None
            start = binary.fat_offset + signature.data_offset
            yield binary.fat_offset, data[start : start + signature.data_size]


@functools.cache
def all_cases(corpus: Path) -> tuple[list[Case], list[Case]]:
    """(CMS-signed cases, cases whose slot 0x10000 is empty): every slice in the manifest with a CMS slot."""
    manifest = _manifest(corpus)
    signed: list[Case] = []
    empty: list[Case] = []
    for entry in manifest["files"]:
        path = corpus / entry["path"]
        if entry.get("raw_superblob"):
            slots = superblob_slots(path.read_bytes())
            if CMS_SLOT in slots:
                case = Case(Path(entry["path"]).name, entry["path"], entry, slots[CMS_SLOT], slots[CODE_DIRECTORY_SLOT])
                (signed if len(case.cms_blob) > 8 else empty).append(case)
            continue
        if not entry.get("is_macho"):
            continue
        by_offset = {s["offset"]: s for s in entry.get("slices") or []}
        for offset, superblob in _lief_superblobs(path):
            slots = superblob_slots(superblob)
            if CMS_SLOT not in slots:
                continue
            expected = by_offset[offset]
            name = f"{Path(entry['path']).name}[{expected['arch']}]"
            case = Case(name, entry["path"], expected, slots[CMS_SLOT], slots[CODE_DIRECTORY_SLOT])
            (signed if expected["cms_present"] else empty).append(case)
    return signed, empty


@functools.cache
def _manifest(corpus: Path) -> dict[str, Any]:
    with open(corpus / "manifest.json", encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


@pytest.fixture(scope="session")
def cases(corpus: Path) -> list[Case]:
    return all_cases(corpus)[0]


@pytest.fixture(scope="session")
def empty_cases(corpus: Path) -> list[Case]:
    return all_cases(corpus)[1]


def case_named(cases: list[Case], file_name: str) -> Case:
    found = [c for c in cases if c.file_name == file_name]
    assert found, file_name
    return found[0]


def as_manifest_value(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def compare_cert(info: CertificateInfo, expected: dict[str, Any], where: str, mismatches: list[str]) -> int:
    """Compare every CERT_FIELDS key; return how many were compared."""
    for key in CERT_FIELDS:
        got = as_manifest_value(getattr(info, key))
        if got != expected[key]:
            mismatches.append(f"{where}.{key}: got {got!r}, manifest {expected[key]!r}")
    return len(CERT_FIELDS)


# --- the manifest, field by field -----------------------------------------------------------------------------


def test_corpus_has_the_expected_signatures(cases: list[Case], empty_cases: list[Case]) -> None:
    assert len(cases) == EXPECTED_CMS_SIGNATURES
    assert sum(len(c.expected["signing_chain"]) for c in cases) == EXPECTED_CHAIN_CERTS
    assert empty_cases, "ad-hoc slices with an empty CMS blob are expected in the corpus"


def test_manifest_certificate_keys_are_all_compared(cases: list[Case], manifest: dict[str, Any]) -> None:
    records = [cert for c in cases for cert in c.expected["signing_chain"]]
    records += [cert for entry in manifest["files"] for cert in entry.get("certificates") or []]
    assert records
    for record in records:
        assert set(record) == set(CERT_FIELDS)


def test_signing_chains_match_the_manifest_field_by_field(cases: list[Case]) -> None:
    mismatches: list[str] = []
    compared = 0
    for case in cases:
        sig = parse_cms(case.cms)
        chain = signing_chain(sig)
        expected_chain = case.expected["signing_chain"]
        assert len(chain) == len(expected_chain), case.name
        for index, (info, expected) in enumerate(zip(chain, expected_chain, strict=True)):
            compared += compare_cert(info, expected, f"{case.name}.signing_chain[{index}]", mismatches)
        got = {
            "signing_time": sig.signing_time,
            "secure_signing_time": sig.secure_signing_time,
            "signing_chain_count": len(chain),
            "embedded_cert_count": len(sig.certificates),
        }
        for key in SIGNATURE_FIELDS:
            if key in case.expected:
                compared += 1
                if got[key] != case.expected[key]:
                    mismatches.append(f"{case.name}.{key}: got {got[key]!r}, manifest {case.expected[key]!r}")
        if "chain_ends_self_signed" in case.expected:
            compared += 1
            if chain[-1].self_issued != case.expected["chain_ends_self_signed"]:
                mismatches.append(f"{case.name}.chain_ends_self_signed")
    assert not mismatches, "\n".join(mismatches)
    # 16 fields per certificate; signing_time and secure_signing_time everywhere; the chain count; the
    # embedded count and chain_ends_self_signed for the Mach-O slices (the raw SuperBlob has neither).
    slices = sum(1 for c in cases if "arch" in c.expected)
    assert slices == EXPECTED_CMS_SIGNATURES - 1
    assert compared == len(CERT_FIELDS) * EXPECTED_CHAIN_CERTS + 3 * EXPECTED_CMS_SIGNATURES + 2 * slices
    assert compared == 1100


def test_certificate_files_match_the_manifest(corpus: Path, manifest: dict[str, Any]) -> None:
    mismatches: list[str] = []
    compared = 0
    files = [entry for entry in manifest["files"] if entry.get("certificates")]
    assert len(files) == EXPECTED_CERT_FILES
    for entry in files:
        assert len(entry["certificates"]) == 1, entry["path"]
        info = certificate_info_from_file(corpus / entry["path"])
        compared += compare_cert(info, entry["certificates"][0], entry["path"], mismatches)
    assert not mismatches, "\n".join(mismatches)
    assert compared == len(CERT_FIELDS) * EXPECTED_CERT_FILES == 80


def test_pem_and_der_of_the_same_certificate_agree(corpus: Path) -> None:
    der = certificate_info_from_file(corpus / "santa/northpolesec/common/testdata/GIAG2.crt")
    pem = certificate_info_from_file(corpus / "santa/northpolesec/common/testdata/GIAG2.pem")
    assert der == pem
    assert hashlib.sha256(der.der).hexdigest() == der.sha256


_FACT_PATH = re.compile(
    r"^(?:slices_by_arch\.(?P<arch>[^.]+)\.)?"
    r"(?:(?P<list>signing_chain|certificates)\[(?P<index>\d+)\]\.(?P<key>\w+)(?:\[(?P<sub>\d+)\])?"
    r"|(?P<count>signing_chain_count))$"
)


def _chain_for(cases: list[Case], subject: str, arch: str | None) -> list[CertificateInfo]:
    """The signing chain of a subject (a slice of it, or — for a top-level field — every slice, which must agree)."""
    chains = [
        signing_chain(parse_cms(c.cms))
        for c in cases
        if c.path == subject and (arch is None or c.expected.get("arch") == arch)
    ]
    assert chains, (subject, arch)
    assert all(chain == chains[0] for chain in chains), f"{subject}: slices disagree"
    return chains[0]


def test_every_comparable_santa_fact_about_certificates(
    corpus: Path, manifest: dict[str, Any], cases: list[Case]
) -> None:
    checked = 0
    mismatches: list[str] = []
    for fact in manifest["santa_facts"]:
        match = _FACT_PATH.match(fact["field"])
        if re.search(r"signing_chain|certificates", fact["field"]):
            assert match, f"a certificate fact this test cannot read: {fact['field']}"
        if not match or not fact.get("comparable"):
            continue
        if match["count"]:
            got: object = len(_chain_for(cases, fact["subject"], None))
        else:
            if match["list"] == "certificates":
                chain = [certificate_info_from_file(corpus / fact["subject"])]
            else:
                chain = _chain_for(cases, fact["subject"], match["arch"])
            value = getattr(chain[int(match["index"])], match["key"])
            got = value[int(match["sub"])] if match["sub"] is not None else as_manifest_value(value)
        checked += 1
        if got != fact["expected"]:
            mismatches.append(f"{fact['subject']} {fact['field']}: got {got!r}, Santa says {fact['expected']!r}")
    assert not mismatches, "\n".join(mismatches)
    assert checked == EXPECTED_CERT_FACTS


def test_leaf_signing_status_follows_santas_production_oids(manifest: dict[str, Any], cases: list[Case]) -> None:
    """Santa's SigningStatus: not platform, not ad-hoc, leaf without a production OID → "development"."""
    statuses = {e["path"]: e.get("santa_signing_status") for e in manifest["files"]}
    seen = 0
    for case in cases:
        status = statuses[case.path]
        if status not in ("development", "production"):
            continue  # "invalid" (inconsistent universal binaries) or no status (raw SuperBlob)
        leaf = signing_chain(parse_cms(case.cms))[0]
        assert leaf.is_production_signing == (status == "production"), case.name
        seen += 1
    assert seen > 0


def test_development_and_production_markers(cases: list[Case]) -> None:
    for case in cases:
        chain = signing_chain(parse_cms(case.cms))
        leaf = chain[0]
        assert leaf.is_development == any(o in DEVELOPMENT_SIGNING_OIDS for o in leaf.extension_oids)
        assert not (leaf.is_development and leaf.is_production_signing), case.name
        assert set(leaf.production_signing_oids) <= set(PRODUCTION_SIGNING_OIDS)
        # Apple-issued developer certificates (Apple Development, Mac Developer) carry a development marker;
        # the self-signed test certificates carry neither marker.
        if leaf.cn and (leaf.cn.startswith("Apple Development:") or leaf.cn.startswith("Mac Developer:")):
            assert leaf.is_development, case.name
        if case.file_name in SELF_SIGNED_TEST_SIGNERS:
            assert not leaf.is_development and not leaf.is_production_signing


# --- parse_cms ------------------------------------------------------------------------------------------------


def test_parsed_attributes(cases: list[Case]) -> None:
    for case in cases:
        sig = parse_cms(case.cms)
        assert sig.signer_identifier == "issuer_and_serial_number"
        assert sig.signer_count == 1
        assert sig.digest_algorithm == "sha256"
        assert sig.signature_algorithm in ("sha256_rsa", "rsassa_pkcs1v15")
        assert sig.content_type == "data"
        assert sig.encapsulated_content is None  # detached: the content is the CodeDirectory
        assert sig.signed_attributes is not None and sig.signed_attributes[0] == 0x31
        assert sig.message_digest == hashlib.sha256(case.code_directory).digest()
        assert sig.signer_certificate is not None
        assert sig.signer is not None and sig.signer.sha256 == case.expected["signing_chain"][0]["sha256"]
        assert sig.certificates and all(der[0] == 0x30 for der in sig.certificates)
        # The CDHashes plist lists every CodeDirectory's cdhash, CDHashes2 every full digest, in slot order.
        directories = case.expected["code_directories"]
        assert sig.cdhashes == tuple(bytes.fromhex(cd["cdhash"]) for cd in directories)
        if sig.cdhashes2 is not None:
            assert sig.cdhashes2 == tuple((cd["hash_type"], bytes.fromhex(cd["cdhash_full"])) for cd in directories)
        assert (sig.timestamp is not None) == (case.expected["secure_signing_time"] is not None)


def test_cdhashes2_is_present_on_newer_signatures_only(cases: list[Case]) -> None:
    with_2 = {c.name for c in cases if parse_cms(c.cms).cdhashes2 is not None}
    without = {c.name for c in cases} - with_2
    assert with_2 and without  # the 2018 yikes signatures predate the attribute


def test_timestamp_token(cases: list[Case]) -> None:
    case = case_named(cases, "santactl_2026.4.csblob")
    sig = parse_cms(case.cms)
    token = sig.timestamp
    assert token is not None
    assert token.gen_time == case.expected["secure_signing_time"]
    assert token.hashed_message == hashlib.new(token.hash_algorithm, sig.signature).digest()
    assert token.signed_data.encapsulated_content_type == "tst_info"
    assert token.signed_data.timestamp is None
    tsa_chain = signing_chain(token.signed_data)
    assert tsa_chain[-1].sha256 in {root.info.sha256 for root in apple_roots()}


def test_parse_accepts_the_blob_with_its_header(cases: list[Case]) -> None:
    case = cases[0]
    assert parse_cms(case.cms_blob) == parse_cms(case.cms)
    assert parse_cms(case.cms + b"\x00" * 16) == parse_cms(case.cms)  # slot padding


def test_empty_cms_of_adhoc_signatures_is_refused(empty_cases: list[Case]) -> None:
    for case in empty_cases:
        with pytest.raises(SignatureError, match="empty CMS"):
            parse_cms(case.cms)
        with pytest.raises(SignatureError, match="empty CMS"):
            parse_cms(case.cms_blob)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty CMS"),
        (b"\x00" * 64, "SEQUENCE"),
        (b"\x30", "malformed CMS"),
        (b"\x30\x03\x06\x01\x00", "not signed_data"),
        (b"\x30\x80\x06\x09" + b"\x2a" * 4, "malformed CMS"),
        (struct.pack(">II", CMS_BLOB_MAGIC, 4096) + b"\x30\x00", "does not fit"),
        (struct.pack(">II", CMS_BLOB_MAGIC, 8), "empty CMS"),
    ],
    ids=["empty", "zeros", "lone tag", "OID 0.0", "truncated indefinite", "blob length too big", "empty blob"],
)
def test_malformed_cms_raises_signature_error(data: bytes, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        parse_cms(data)


def test_cms_that_is_not_signed_data_is_refused() -> None:
    from asn1crypto import cms as asn1_cms  # type: ignore[import-untyped,unused-ignore]

    data_only = asn1_cms.ContentInfo({"content_type": "data", "content": b"hello"}).dump()
    with pytest.raises(SignatureError, match="not signed_data"):
        parse_cms(data_only)


def test_trailing_garbage_is_refused(cases: list[Case]) -> None:
    with pytest.raises(SignatureError, match="unexpected bytes"):
        parse_cms(cases[0].cms + b"\x01")


def test_non_bytes_input_is_refused() -> None:
    with pytest.raises(SignatureError):
        parse_cms("not bytes")  # type: ignore[arg-type]


# --- malformed input versus errors of our own ------------------------------------------------------------------


def test_malformed_input_keeps_the_library_error_as_its_cause(cases: list[Case]) -> None:
    with pytest.raises(SignatureError, match="malformed CMS") as parsed:
        parse_cms(cases[0].cms[:100])
    assert type(parsed.value.__cause__) is ValueError  # asn1crypto's "Insufficient data"
    with pytest.raises(SignatureError, match="malformed certificate") as loaded:
        certificate_info(b"\x30\x03\x02\x01\x00")
    assert type(loaded.value.__cause__) is ValueError  # cryptography's "error parsing asn1 value"


class Bug(RuntimeError):
    """Stands for a mistake of ours, or a library that changed behind our back."""


def _raise_bug(*args: object, **kwargs: object) -> object:
    raise Bug("not a property of the input")


UNEXPECTED_ERRORS: dict[str, tuple[str, str, Callable[[Case, CMSSignature], object]]] = {
    "parsing": ("santacore.identity.cms.parse", "_parse_signed_data", lambda case, _: parse_cms(case.cms)),
    "asn1crypto": ("asn1crypto.cms.ContentInfo", "load", lambda case, _: parse_cms(case.cms)),
    "cryptography": (
        "santacore.identity.cms.certificates.x509",
        "load_der_x509_certificate",
        lambda _, sig: certificate_info(sig.certificates[0]),
    ),
    "chain building": ("santacore.identity.cms.certificates", "load_certificate", lambda _, sig: signing_chain(sig)),
    "signer algorithm": (
        "santacore.identity.cms.verify",
        "_signer_algorithm",
        lambda case, sig: verify_cms(sig, case.code_directory),
    ),
    "chain links": (
        "santacore.identity.cms.verify",
        "_verify_link",
        lambda case, sig: verify_cms(sig, case.code_directory),
    ),
}


@pytest.mark.parametrize("where", sorted(UNEXPECTED_ERRORS))
def test_an_unexpected_error_propagates_instead_of_passing_for_a_bad_signature(
    cases: list[Case], monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """Only the libraries' own "malformed input" errors become SignatureError (which santactl fileinfo shows as
    "Yes, but code/signature changed/unverifiable"); any other exception escapes as itself."""
    target, name, call = UNEXPECTED_ERRORS[where]
    case = case_named(cases, "santactl_2026.4.csblob")
    sig = parse_cms(case.cms)
    monkeypatch.setattr(f"{target}.{name}", _raise_bug)
    from santacore.identity.cms.certificates import _parse_certificate

    _parse_certificate.cache_clear()  # parsed certificates are cached: make this call parse again
    with pytest.raises(Bug):
        call(case, sig)


# --- certificates ---------------------------------------------------------------------------------------------


def make_certificate(
    subject: x509.Name,
    issuer: x509.Name | None = None,
    *,
    key: rsa.RSAPrivateKey | None = None,
    signing_key: rsa.RSAPrivateKey | None = None,
    serial: int = 0x1234,
) -> tuple[bytes, rsa.RSAPrivateKey]:
    """A fresh RSA certificate (self-signed unless ``signing_key``/``issuer`` say otherwise)."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer or subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2040, 1, 1, tzinfo=dt.UTC))
    )
    cert = builder.sign(signing_key or key, hashes.SHA256())
    return cert.public_bytes(Encoding.DER), key


@functools.cache
def _test_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_several_common_names_give_the_last_one() -> None:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "first"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Org One"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Unit A"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Org Two"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Unit B"),
            x509.NameAttribute(NameOID.COMMON_NAME, "last"),
        ]
    )
    der, _ = make_certificate(subject, key=_test_key())
    info = certificate_info(der)
    assert info.cn == "last"  # SecCertificateCopyCommonName
    assert (info.org, info.ou, info.ous) == ("Org One", "Unit A", ("Unit A", "Unit B"))
    assert info.issuer_cn == "last" and info.issuer_org == "Org One"
    assert info.self_issued
    assert info.country is None
    assert info.serial == "1234"
    assert (info.valid_from_iso, info.valid_until_iso) == ("2020-01-01T00:00:00Z", "2040-01-01T00:00:00Z")
    assert info.valid_from == int(dt.datetime(2020, 1, 1, tzinfo=dt.UTC).timestamp())


def test_certificate_without_names() -> None:
    der, _ = make_certificate(x509.Name([]), key=_test_key(), serial=1)
    info = certificate_info(der)
    assert (info.cn, info.org, info.ou, info.ous, info.country) == (None, None, None, (), None)
    assert info.serial == "1"


def test_malformed_certificates_raise_signature_error(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(SignatureError, match="malformed certificate"):
        certificate_info(b"\x30\x03\x02\x01\x00")
    not_a_cert = tmp_path / "garbage.pem"
    not_a_cert.write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(SignatureError, match="malformed PEM"):
        certificate_info_from_file(not_a_cert)
    with pytest.raises(SignatureError, match="malformed certificate"):
        certificate_info_from_file(corpus / "santa/northpolesec/common/testdata/signed-with-teamid")
    with pytest.raises(OSError):
        certificate_info_from_file(tmp_path / "missing.cer")


def test_shipped_apple_roots_match_their_readme() -> None:
    readme = Path(__file__).resolve().parent.parent / "python/santacore/identity/apple_roots/README.md"
    listed = dict(re.findall(r"\| `([^`]+\.cer)` \|[^|]*\| `([0-9a-f]{64})` \|", readme.read_text(encoding="utf-8")))
    roots = apple_roots()
    assert {root.name: root.info.sha256 for root in roots} == listed
    assert len(roots) == 4
    for root in roots:
        assert root.info.self_issued
        assert root.info.org in ("Apple Inc.", "Apple Computer, Inc.")


# --- verification ---------------------------------------------------------------------------------------------


def root_name(sha256: str) -> str | None:
    return next((root.name for root in apple_roots() if root.info.sha256 == sha256), None)


def assert_consistent(result: CMSVerification) -> None:
    assert result.signature_valid == (not result.problems)


def test_every_corpus_signature_verifies(cases: list[Case]) -> None:
    outcomes: dict[str, CMSVerification] = {}
    for case in cases:
        result = verify_cms(parse_cms(case.cms), case.code_directory)
        outcomes[case.name] = result
        assert_consistent(result)
        assert result.message_digest_ok, case.name
        assert result.signature_ok, case.name
        assert result.chain_ok, case.name
        assert result.cdhashes_ok is True, case.name
        assert [c.sha256 for c in result.chain] == [c["sha256"] for c in case.expected["signing_chain"]]
        apple_root = root_name(case.expected["signing_chain"][-1]["sha256"])
        if apple_root is not None:
            assert result.signature_valid, (case.name, result.problems)
            assert result.anchor == apple_root == "AppleRootCA.cer"
            assert result.problems == ()
        else:
            assert case.file_name in SELF_SIGNED_TEST_SIGNERS, case.name
    assert {name for name, r in outcomes.items() if r.anchor is None} == {
        c.name for c in cases if c.file_name in SELF_SIGNED_TEST_SIGNERS
    }


@pytest.mark.parametrize("file_name", sorted(SELF_SIGNED_TEST_SIGNERS))
def test_self_signed_test_certificates_verify_but_are_not_anchored(cases: list[Case], file_name: str) -> None:
    case = case_named(cases, file_name)
    result = verify_cms(parse_cms(case.cms), case.code_directory)
    leaf = case.expected["signing_chain"][0]
    assert (result.message_digest_ok, result.signature_ok, result.chain_ok) == (True, True, True)
    assert result.anchor is None
    assert result.signature_valid is False
    assert result.validity_ok is True and result.validity_time_source == "signing_time"
    assert result.timestamp_ok is None
    assert len(result.chain) == 1 and result.chain[0].self_issued
    assert result.problems == (
        f"self-signed leaf: {leaf['cn']!r} (sha256 {leaf['sha256'][:16]}…) is not one of the shipped Apple roots",
    )
    assert result.notes == ()


def test_validity_is_checked_at_the_best_known_time(cases: list[Case]) -> None:
    for case in cases:
        sig = parse_cms(case.cms)
        result = verify_cms(sig, case.code_directory)
        if sig.secure_signing_time is not None:
            assert (result.validity_time_source, result.validity_time) == (
                "secure_signing_time",
                sig.secure_signing_time,
            )
            assert result.timestamp_ok is True
            assert result.validity_ok is True
        elif sig.signing_time is not None:
            assert (result.validity_time_source, result.validity_time) == ("signing_time", sig.signing_time)
            assert result.validity_ok is True
        else:  # Apple's own "Software Signing" signatures carry no time at all
            assert signing_chain(sig)[0].cn == "Software Signing"
            assert (result.validity_ok, result.validity_time, result.validity_time_source) == (None, None, None)
            assert any("not checked" in note for note in result.notes)


def test_validity_at_a_requested_time(cases: list[Case]) -> None:
    case = case_named(cases, "signed-with-teamid")
    sig = parse_cms(case.cms)
    leaf = signing_chain(sig)[0]
    inside = verify_cms(sig, case.code_directory, at=leaf.valid_from)
    assert inside.signature_valid and inside.validity_time_source == "at"
    for when in (leaf.valid_from - 1, leaf.valid_until + 1):
        result = verify_cms(sig, case.code_directory, at=when)
        assert_consistent(result)
        assert result.validity_ok is False and result.signature_valid is False
        assert result.message_digest_ok and result.signature_ok and result.chain_ok
        assert any("was not valid at the requested time" in p for p in result.problems)


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def test_changed_code_directory_is_a_digest_mismatch(cases: list[Case]) -> None:
    for case in cases:
        sig = parse_cms(case.cms)
        for index in (8, len(case.code_directory) // 2, len(case.code_directory) - 1):
            result = verify_cms(sig, flip(case.code_directory, index))
            assert_consistent(result)
            assert result.message_digest_ok is False, case.name
            assert result.signature_ok is True  # the signed attributes themselves are intact
            assert result.cdhashes_ok is False
            assert result.signature_valid is False
            assert any("message digest mismatch" in p for p in result.problems)


def test_flipped_signature_byte_is_an_invalid_signature(cases: list[Case]) -> None:
    for case in cases:
        sig = parse_cms(case.cms)
        at = case.cms.index(sig.signature)
        for index in (at, at + len(sig.signature) // 2, at + len(sig.signature) - 1):
            tampered = parse_cms(flip(case.cms, index))
            result = verify_cms(tampered, case.code_directory)
            assert_consistent(result)
            assert result.message_digest_ok is True
            assert result.signature_ok is False, case.name
            assert result.signature_valid is False
            assert any("signature does not verify" in p for p in result.problems)
            if sig.timestamp is not None:  # the token's imprint covers the signature value too
                assert result.timestamp_ok is False


def test_flipped_signed_attribute_byte_is_detected(cases: list[Case]) -> None:
    for case in cases:
        sig = parse_cms(case.cms)
        assert sig.message_digest is not None
        at = case.cms.index(sig.message_digest)
        result = verify_cms(parse_cms(flip(case.cms, at)), case.code_directory)
        assert (result.message_digest_ok, result.signature_ok, result.signature_valid) == (False, False, False)


def apple_case(cases: list[Case]) -> tuple[Case, CMSSignature, list[CertificateInfo]]:
    case = case_named(cases, "signed-with-teamid")
    sig = parse_cms(case.cms)
    return case, sig, signing_chain(sig)


def test_chain_without_its_root_is_not_anchored(cases: list[Case]) -> None:
    case, sig, chain = apple_case(cases)
    rootless = dataclasses.replace(sig, certificates=tuple(d for d in sig.certificates if d != chain[-1].der))
    result = verify_cms(rootless, case.code_directory)
    assert_consistent(result)
    assert (result.signature_ok, result.chain_ok, result.anchor, result.signature_valid) == (True, False, None, False)
    assert [c.sha256 for c in result.chain] == [c.sha256 for c in chain[:-1]]
    assert any(p.startswith("incomplete chain") for p in result.problems)
    assert any("issued by the shipped root AppleRootCA.cer, which is not embedded" in n for n in result.notes)


def test_chain_without_its_intermediate_is_not_anchored(cases: list[Case]) -> None:
    case, sig, chain = apple_case(cases)
    broken = dataclasses.replace(sig, certificates=tuple(d for d in sig.certificates if d != chain[1].der))
    result = verify_cms(broken, case.code_directory)
    assert (result.chain_ok, result.anchor, result.signature_valid) == (False, None, False)
    assert len(result.chain) == 1


def test_chain_with_a_forged_root_is_not_anchored(cases: list[Case]) -> None:
    """A self-signed impostor with Apple Root CA's exact subject: names chain, signatures don't."""
    case, sig, chain = apple_case(cases)
    real_root = x509.load_der_x509_certificate(chain[-1].der)
    forged, _ = make_certificate(real_root.subject, key=_test_key(), serial=real_root.serial_number)
    replaced = tuple(forged if d == chain[-1].der else d for d in sig.certificates)
    result = verify_cms(dataclasses.replace(sig, certificates=replaced), case.code_directory)
    assert_consistent(result)
    assert [c.der for c in result.chain][-1] == forged
    assert (result.signature_ok, result.chain_ok, result.anchor, result.signature_valid) == (True, False, None, False)
    assert any("is not signed by" in p for p in result.problems)
    assert any(p.startswith("untrusted root") for p in result.problems)


def test_chain_with_another_apple_root_is_not_anchored(cases: list[Case]) -> None:
    case, sig, chain = apple_case(cases)
    g3 = next(root for root in apple_roots() if root.name == "AppleRootCA-G3.cer")
    replaced = tuple(g3.info.der if d == chain[-1].der else d for d in sig.certificates)
    result = verify_cms(dataclasses.replace(sig, certificates=replaced), case.code_directory)
    assert (result.chain_ok, result.anchor, result.signature_valid) == (False, None, False)


def test_wrong_signer_certificate_fails_the_signature(cases: list[Case]) -> None:
    case, sig, _ = apple_case(cases)
    other = case_named(cases, "hw_team_signed")
    other_sig = parse_cms(other.cms)
    assert other_sig.signer_certificate is not None and other_sig.signer_certificate != sig.signer_certificate
    swapped = dataclasses.replace(
        sig,
        signer_certificate=other_sig.signer_certificate,
        certificates=(other_sig.signer_certificate, *sig.certificates[1:]),
    )
    result = verify_cms(swapped, case.code_directory)
    assert result.signature_ok is False and result.signature_valid is False


def test_missing_signer_certificate(cases: list[Case]) -> None:
    case, sig, _ = apple_case(cases)
    result = verify_cms(dataclasses.replace(sig, signer_certificate=None), case.code_directory)
    assert_consistent(result)
    assert (result.signature_ok, result.chain_ok, result.signature_valid) == (False, False, False)
    assert result.chain == ()


def test_tampered_timestamp_is_rejected_and_not_trusted_for_time(cases: list[Case]) -> None:
    case = case_named(cases, "santactl_2026.4.csblob")
    sig = parse_cms(case.cms)
    assert sig.timestamp is not None
    token = dataclasses.replace(sig.timestamp, hashed_message=bytes(len(sig.timestamp.hashed_message)))
    result = verify_cms(dataclasses.replace(sig, timestamp=token), case.code_directory)
    assert_consistent(result)
    assert result.timestamp_ok is False and result.signature_valid is False
    assert result.validity_time_source == "signing_time"  # an unverified timestamp is not used
    assert any("message imprint" in p for p in result.problems)


def test_cdhashes_attribute_must_list_the_code_directory(cases: list[Case]) -> None:
    case, sig, _ = apple_case(cases)
    assert sig.cdhashes is not None
    result = verify_cms(dataclasses.replace(sig, cdhashes=(bytes(20),)), case.code_directory)
    assert result.cdhashes_ok is False and result.signature_valid is False


def test_content_type_attribute_must_match_the_encapsulated_type(cases: list[Case]) -> None:
    case, sig, _ = apple_case(cases)
    result = verify_cms(dataclasses.replace(sig, encapsulated_content_type="signed_data"), case.code_directory)
    assert_consistent(result)
    assert result.message_digest_ok is False and result.signature_valid is False
    assert any("does not match the encapsulated content type" in p for p in result.problems)


def test_certificates_are_their_embedded_bytes(cases: list[Case]) -> None:
    """Apple's CMS is BER (indefinite lengths); a certificate must never be re-encoded (asn1crypto would
    normalise a URI's host to lower case, silently restoring the original bytes and hashes)."""
    case, sig, chain = apple_case(cases)
    at = case.cms.index(b"crl.apple.com")
    tampered = parse_cms(case.cms[:at] + b"crL" + case.cms[at + 3 :])
    changed = [der for der in tampered.certificates if der not in sig.certificates]
    assert len(changed) == 1 and b"crL.apple.com" in changed[0]
    assert all(der in case.cms[:at] + b"crL" + case.cms[at + 3 :] for der in tampered.certificates)
    result = verify_cms(tampered, case.code_directory)
    assert result.signature_valid is False
    assert {c.sha256 for c in result.chain} != {c.sha256 for c in chain}


def test_codesign_module_agrees(cases: list[Case]) -> None:
    """santacore.identity.codesign's SuperBlob parser hands over the same CMS bytes as this test's own reader."""
    from santacore.identity.codesign import parse_superblob

    case = case_named(cases, "santactl_2026.4.csblob")
    parsed = parse_superblob(Path(corpus_path() / case.path).read_bytes())
    assert parsed.cms == case.cms
    slot = parsed.find(CODE_DIRECTORY_SLOT)
    assert slot is not None and slot.data == case.code_directory


# --- hostile input --------------------------------------------------------------------------------------------


class OidDecoding:
    """Every OID asn1crypto decodes while it is active: what parsing did where asn1crypto's work is quadratic.

    asn1crypto turns each OID sub-identifier into one Python int byte by byte (`ObjectIdentifier.dotted`, where
    every decode happens), so its cost grows with the square of the sub-identifier's length. Measured in bytes,
    not seconds, this stays a fact about santacore on any machine, however loaded.
    """

    def __init__(self) -> None:
        self.decoded_bytes = 0
        self.longest_subidentifier = 0
        self._original: Any = None

    def __enter__(self) -> OidDecoding:
        self._original = original = asn1_core.ObjectIdentifier.dotted

        def dotted(oid: Any) -> str:
            if oid._dotted is None:  # not cached yet: this call decodes
                contents = oid.contents or b""
                self.decoded_bytes += len(contents)
                runs = [len(run) for run in re.findall(rb"[\x80-\xff]*[\x00-\x7f]?", contents)]
                self.longest_subidentifier = max(self.longest_subidentifier, *runs)
            result: str = original.fget(oid)
            return result

        asn1_core.ObjectIdentifier.dotted = property(dotted)
        return self

    def __exit__(self, *exc: object) -> None:
        asn1_core.ObjectIdentifier.dotted = self._original

    def assert_linear_in(self, size: int) -> None:
        """The OID work is linear in the input: each sub-identifier short (the quadratic factor is bounded by
        `parse_cms`'s high-bit-run limit) and each input byte decoded a few times at most (parse, chain, verify)."""
        assert self.longest_subidentifier <= MAX_HIGH_BIT_RUN + 1, self.longest_subidentifier
        assert self.decoded_bytes <= 4 * size, f"{self.decoded_bytes} OID bytes decoded for {size} bytes of input"


def _check_hostile(data: bytes, code_directory: bytes, original: CMSSignature | None = None) -> None:
    with OidDecoding() as oids:
        try:
            sig = parse_cms(data)
        except SignatureError:
            event("parse_cms refused it")
        else:
            assert isinstance(sig, CMSSignature)
            try:
                signing_chain(sig)
                result = verify_cms(sig, code_directory)
            except SignatureError:
                event("verify_cms refused it")
            else:
                event(f"verified: signature_valid={result.signature_valid}")
                assert_consistent(result)
                if result.signature_valid and original is not None:
                    # Only bytes the signature does not cover may differ from the original.
                    assert sig.signed_attributes == original.signed_attributes
                    assert sig.signature == original.signature
                    assert sig.signer_certificate == original.signer_certificate
                    assert signing_chain(sig) == signing_chain(original)
    oids.assert_linear_in(len(data))


def tlv(tag: int, body: bytes) -> bytes:
    """A definite-length encoding (test data only)."""
    if len(body) < 0x80:
        return bytes([tag, len(body)]) + body
    size = len(body).to_bytes((len(body).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def nested(depth: int) -> bytes:
    data = b""
    for _ in range(depth):
        data = tlv(0x30, data)
    return data


SIGNED_DATA_OID = bytes.fromhex("06092a864886f70d010702")
PATHOLOGICAL = {
    "indefinite nesting": b"\x30\x80" * 100_000,
    "definite nesting": nested(2_000),
    "length beyond the data": b"\x30\x84\x7f\xff\xff\xff" + b"\x00" * 64,
    "64-bit length": b"\x30\x88" + b"\xff" * 8,
    "64 KiB OID sub-identifier": tlv(0x30, tlv(0x06, b"\x81" * 65_535 + b"\x01")),
    "256 KiB OID of 511-byte sub-identifiers": tlv(0x30, tlv(0x06, (b"\x81" * 511 + b"\x01") * 512)),
    "over-long content OID after signedData": tlv(0x30, tlv(0x06, b"\x2a" * 100) + tlv(0xA0, b"")),
    # asn1crypto decodes a ContentInfo's content type itself (to pick the content's type), before any size check.
    "64 KiB content-type sub-identifier before the content": tlv(
        0x30, tlv(0x06, b"\x81" * 65_535 + b"\x01") + tlv(0xA0, b"")
    ),
    "signedData with a nested indefinite body": tlv(0x30, SIGNED_DATA_OID + b"\xa0\x80" + b"\x30\x80" * 10_000),
    "200 000 NULLs": b"\x30\x80" + b"\x05\x00" * 200_000 + b"\x00\x00",
    "over the size limit": b"\x30" + b"\x00" * (2 << 20),
}


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_pathological_inputs_are_refused_with_bounded_work(name: str) -> None:
    """Refused as malformed (a RecursionError from deep nesting would escape as itself), and the OIDs decoded on
    the way cost work linear in the input. The size limit and the OID limits refuse before asn1crypto decodes."""
    data = PATHOLOGICAL[name]
    with OidDecoding() as oids, pytest.raises(SignatureError):
        parse_cms(data)
    oids.assert_linear_in(len(data))
    if name.startswith(("over the size limit", "64 KiB", "256 KiB")):
        assert oids.decoded_bytes == 0


@functools.cache
def _mutation_sources() -> tuple[tuple[bytes, bytes, CMSSignature], ...]:
    corpus = corpus_path()
    if not (corpus / "manifest.json").is_file():
        return ()
    signed, _ = all_cases(corpus)
    chosen = [case_named(signed, name) for name in ("santactl_2026.4.csblob", "goodcert", "signed-with-teamid")]
    return tuple((c.cms, c.code_directory, parse_cms(c.cms)) for c in chosen)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_arbitrary_bytes(data: bytes) -> None:
    _check_hostile(data, data)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=64).map(lambda tail: b"\x30\x82" + tail))
def test_arbitrary_bytes_that_look_like_der(data: bytes) -> None:
    _check_hostile(data, data)


@st.composite
def mutated_cms(draw: st.DrawFn) -> tuple[bytes, bytes, CMSSignature] | None:
    sources = _mutation_sources()
    if not sources:
        return None
    cms, code_directory, original = draw(st.sampled_from(sources))
    data = bytearray(cms)
    # Mostly in-place changes (which keep the structure parseable and so reach verify_cms), some
    # structural ones (which exercise the parser's error paths).
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        kind = draw(st.sampled_from(["flip"] * 6 + ["set"] * 2 + ["truncate", "insert", "delete"]))
        index = draw(st.integers(min_value=0, max_value=max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[index] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif kind == "set" and data:
            data[index] = draw(st.integers(min_value=0, max_value=255))
        elif kind == "truncate":
            del data[index:]
        elif kind == "insert":
            data[index:index] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[index : index + draw(st.integers(min_value=1, max_value=8))]
    return bytes(data), code_directory, original


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_cms())
def test_mutated_real_cms(sample: tuple[bytes, bytes, CMSSignature] | None) -> None:
    if sample is None:
        pytest.skip(f"corpus not found at {corpus_path()}")
    data, code_directory, original = sample
    _check_hostile(data, code_directory, original)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_single_bit_flips_of_real_cms(data: st.DataObject) -> None:
    sources = _mutation_sources()
    if not sources:
        pytest.skip(f"corpus not found at {corpus_path()}")
    cms, code_directory, original = data.draw(st.sampled_from(sources))
    index = data.draw(st.integers(min_value=0, max_value=len(cms) - 1))
    bit = data.draw(st.integers(min_value=0, max_value=7))
    mutated = cms[:index] + bytes([cms[index] ^ (1 << bit)]) + cms[index + 1 :]
    _check_hostile(mutated, code_directory, original)
