"""The CMS signature of an Apple code signature, its certificate chain, and real verification.

An embedded code signature's SuperBlob slot 0x10000 (blob magic 0xfade0b01) holds, after the
8-byte blob header, a CMS ContentInfo/SignedData (BER with indefinite lengths, as Apple writes
it) whose content is *detached*: it is the CodeDirectory of slot 0, byte for byte. This module

* parses that SignedData (`parse_cms`) into plain, immutable Python values — certificates,
  the signer, its algorithms, its signed attributes (content type, message digest, signing
  time, Apple's CDHashes plist ``1.2.840.113635.100.9.1`` and CDHashes2
  ``1.2.840.113635.100.9.2``) and an RFC 3161 timestamp token among its unsigned attributes;
* describes certificates the way Santa's MOLCertificate does (`CertificateInfo`,
  `certificate_info_from_file`) and orders them leaf → root (`signing_chain`, spec §7.3
  santacore guidance);
* verifies the signature for real (`verify_cms`): the message digest against the
  CodeDirectory, the signer's signature over its signed attributes, every link of the chain,
  an anchor byte-identical to one of Apple's root certificates shipped in
  ``santacore/identity/apple_roots``, certificate validity at the signing time, the timestamp
  token and the CDHashes attribute.

The CMS structure is parsed with asn1crypto, certificates and signatures with
``cryptography``. Any malformed input raises `SignatureError` (a ValueError); nothing from
either library leaks out, and every value is extracted eagerly so that a `CMSSignature` can
never fail later.

`verify_cms` is santacore's own verdict from the files alone. It is not Santa's (Santa asks
the Security framework, which may complete chains from the system keychain, check
revocation and apply policies); it never claims more than it checked, and says why in
``problems`` and ``notes``.
"""

from __future__ import annotations

import hashlib
import itertools
import plistlib
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from asn1crypto import algos as _algos  # type: ignore[import-untyped,unused-ignore]
from asn1crypto import cms as _cms  # type: ignore[import-untyped,unused-ignore]
from asn1crypto import core as _core  # type: ignore[import-untyped,unused-ignore]
from asn1crypto import parser as _parser  # type: ignore[import-untyped,unused-ignore]
from asn1crypto import tsp as _tsp  # type: ignore[import-untyped,unused-ignore]
from asn1crypto import x509 as _ax509  # type: ignore[import-untyped,unused-ignore]
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from santacore.errors import SignatureError

__all__ = [
    "APPLE_ROOTS_PACKAGE",
    "CDHASHES2_OID",
    "CDHASHES_PLIST_OID",
    "DEVELOPMENT_SIGNING_OIDS",
    "MAX_CMS_SIZE",
    "PRODUCTION_SIGNING_OIDS",
    "TIMESTAMP_TOKEN_OID",
    "AppleRoot",
    "CMSSignature",
    "CMSVerification",
    "CertificateInfo",
    "TimestampToken",
    "apple_roots",
    "certificate_info",
    "certificate_info_from_file",
    "parse_cms",
    "signing_chain",
    "verify_cms",
]

CDHASHES_PLIST_OID = "1.2.840.113635.100.9.1"
"""Signed attribute: XML plist ``{"cdhashes": [<data>...]}``, each CodeDirectory's cdhash (20 bytes)."""

CDHASHES2_OID = "1.2.840.113635.100.9.2"
"""Signed attribute: one ``SEQUENCE {hashAlgorithm OID, digest OCTET STRING}`` per CodeDirectory (full digest)."""

TIMESTAMP_TOKEN_OID = "1.2.840.113549.1.9.16.2.14"
"""Unsigned attribute id-aa-timeStampToken (RFC 3161): a ContentInfo/SignedData over a TSTInfo."""

DEVELOPMENT_SIGNING_OIDS: frozenset[str] = frozenset(
    {
        "1.2.840.113635.100.6.1.2",  # iPhone Developer / Apple Development
        "1.2.840.113635.100.6.1.12",  # Mac Developer / Apple Development
    }
)
"""Leaf extensions that make santad treat code as development-signed (spec §7.3)."""

PRODUCTION_SIGNING_OIDS: tuple[str, ...] = (
    "1.2.840.113635.100.6.1.9",  # Mac App Store Application
    "1.2.840.113635.100.6.1.13",  # Developer ID Application
    "1.2.840.113635.100.6.1.3",  # iOS App Store Application (iOS apps on Apple silicon)
    "1.2.840.113635.100.6.22",  # Apple Software Signing (Apple's own binaries)
)
"""The certificate extensions Santa's ``IsProductionSigningCert`` looks for (northpolesec/santa
``Source/common/CertificateHelpers.mm``): a non-platform, non-ad-hoc signature whose leaf has
none of them gets SigningStatus "development" — even when the leaf carries no development
marker at all (a self-signed certificate, say).

`CertificateInfo.production_signing_oids` lists those a certificate carries, in extension
order. Development markers (`DEVELOPMENT_SIGNING_OIDS`), CA markers (``...6.2.*``) and the
Developer ID date (``...6.1.33``) are never listed.
"""

APPLE_ROOTS_PACKAGE = "santacore.identity.apple_roots"

MAX_CMS_SIZE = 1 << 20
"""Largest CMS `parse_cms` accepts (1 MiB): Apple's are a few KiB (about 9 KiB with a timestamp)."""

# asn1crypto decodes an OID sub-identifier into one Python int, byte by byte: quadratic in its
# length (a 64 KiB sub-identifier takes ~0.7 s, 1 MiB ~3 min). A sub-identifier is a run of bytes
# with the high bit set; real ones are a few bytes, and a run of 512 such bytes has probability
# 2^-512 in random data (keys, signatures), so refusing any such run costs no real signature.
_LONG_HIGH_BIT_RUN = re.compile(rb"[\x80-\xff]{512}")

_BLOB_HEADER = 8
_EMBEDDED_SIGNATURE_BLOB_MAGIC = 0xFADE0B01
_CODE_DIRECTORY_MAGIC = 0xFADE0C02
# CodeDirectory hashType (byte 37) -> its hash (type 3, SHA-256 truncated, lists the full digest's first 20 bytes).
_CD_HASH_TYPES: dict[int, str] = {1: "sha1", 2: "sha256", 3: "sha256", 4: "sha384"}
_CDHASH_LEN = 20

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}

_OID_CN = "2.5.4.3"
_OID_C = "2.5.4.6"
_OID_O = "2.5.4.10"
_OID_OU = "2.5.4.11"


# --------------------------------------------------------------------------------------------
# Certificates
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateInfo:
    """One certificate, described as Santa's MOLCertificate (spec §4.3, §7.3, §7.5) describes it.

    ``cn`` is the subject's *last* common name in subject order (SecCertificateCopyCommonName);
    ``org``/``ou``/``country`` the first O/OU/C; ``ous`` every OU in order; the issuer's CN
    (last) and first O likewise. Times are Unix seconds and ``YYYY-MM-DDTHH:MM:SSZ`` (UTC).
    ``serial`` is lowercase hex without leading zeros. Absent values are None.
    """

    sha256: str
    sha1: str
    cn: str | None
    org: str | None
    ou: str | None
    ous: tuple[str, ...]
    country: str | None
    issuer_cn: str | None
    issuer_org: str | None
    valid_from: int
    valid_until: int
    valid_from_iso: str
    valid_until_iso: str
    serial: str
    self_issued: bool
    production_signing_oids: tuple[str, ...]
    extension_oids: tuple[str, ...]
    der: bytes = field(repr=False)

    @property
    def is_production_signing(self) -> bool:
        """Santa's IsProductionSigningCert: the certificate has one of `PRODUCTION_SIGNING_OIDS`."""
        return bool(self.production_signing_oids)

    @property
    def is_development(self) -> bool:
        """The certificate carries a development-signing extension (spec §7.3: santad drops team/signing IDs)."""
        return any(oid in DEVELOPMENT_SIGNING_OIDS for oid in self.extension_oids)

    def valid_at(self, when: int) -> bool:
        """notBefore ≤ when ≤ notAfter (inclusive, as X.509 defines the validity period)."""
        return self.valid_from <= when <= self.valid_until


@dataclass(frozen=True)
class _Cert:
    """A certificate parsed by both libraries: asn1crypto for name matching, cryptography for keys."""

    info: CertificateInfo
    asn1: Any  # asn1crypto.x509.Certificate
    crypto: x509.Certificate
    serial: int  # read once, warnings silenced: cryptography warns on each read of a non-positive serial


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _iso(ts: int) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` (UTC) of Unix seconds, for any year X.509 can express."""
    return (_EPOCH + timedelta(seconds=ts)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _unix(dt: datetime) -> int:
    """Whole Unix seconds (fractions dropped) of an aware datetime."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() // 1)


def _attr_text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _name_values(name: x509.Name, oid: str) -> list[str]:
    return [
        _attr_text(attr.value)
        for rdn in name.rdns
        for attr in rdn
        if attr.oid.dotted_string == oid  # subject order; within an RDN, its SET order
    ]


def _first(values: list[str]) -> str | None:
    return values[0] if values else None


def _last(values: list[str]) -> str | None:
    return values[-1] if values else None


def _serial_hex(serial: int) -> str:
    if serial >= 0:
        return format(serial, "x")
    # A (non-conforming) negative serial: its two's-complement bytes, as Security shows them.
    length = (serial.bit_length() + 8) // 8
    return serial.to_bytes(length, "big", signed=True).hex().lstrip("0") or "0"


def _load_cert(der: bytes) -> _Cert:
    """Parse one DER certificate with both libraries; SignatureError if either refuses it."""
    if not isinstance(der, bytes | bytearray | memoryview):
        raise SignatureError("certificate must be bytes")
    der = bytes(der)
    try:
        with warnings.catch_warnings():
            # e.g. CryptographyDeprecationWarning for a negative serial: report, don't warn.
            warnings.simplefilter("ignore")
            crypto = x509.load_der_x509_certificate(der)
            serial = crypto.serial_number
            not_before = _unix(crypto.not_valid_before_utc)
            not_after = _unix(crypto.not_valid_after_utc)
            subject = crypto.subject
            issuer = crypto.issuer
            extension_oids = tuple(ext.oid.dotted_string for ext in crypto.extensions)
        asn1 = _ax509.Certificate.load(der, strict=True)
        info = CertificateInfo(
            sha256=hashlib.sha256(der).hexdigest(),
            sha1=hashlib.sha1(der).hexdigest(),
            cn=_last(_name_values(subject, _OID_CN)),
            org=_first(_name_values(subject, _OID_O)),
            ou=_first(_name_values(subject, _OID_OU)),
            ous=tuple(_name_values(subject, _OID_OU)),
            country=_first(_name_values(subject, _OID_C)),
            issuer_cn=_last(_name_values(issuer, _OID_CN)),
            issuer_org=_first(_name_values(issuer, _OID_O)),
            valid_from=not_before,
            valid_until=not_after,
            valid_from_iso=_iso(not_before),
            valid_until_iso=_iso(not_after),
            serial=_serial_hex(serial),
            self_issued=bool(asn1.self_issued),
            production_signing_oids=tuple(oid for oid in extension_oids if oid in PRODUCTION_SIGNING_OIDS),
            extension_oids=extension_oids,
            der=der,
        )
    except Exception as exc:  # the libraries' own errors must not leak: see module docstring
        raise SignatureError(f"malformed certificate: {_describe(exc)}") from None
    return _Cert(info=info, asn1=asn1, crypto=crypto, serial=serial)


def certificate_info(der: bytes) -> CertificateInfo:
    """Describe one DER-encoded X.509 certificate."""
    return _load_cert(der).info


_PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"


def certificate_info_from_file(path: str | Path) -> CertificateInfo:
    """Describe the certificate in a file, DER or PEM (the first CERTIFICATE block). OSError if unreadable."""
    data = Path(path).read_bytes()
    if _PEM_BEGIN in data:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                der = x509.load_pem_x509_certificate(data).public_bytes(Encoding.DER)
        except Exception as exc:
            raise SignatureError(f"{path}: malformed PEM certificate: {_describe(exc)}") from None
    else:
        der = data
    try:
        return certificate_info(der)
    except SignatureError as exc:
        raise SignatureError(f"{path}: {exc}") from None


# --------------------------------------------------------------------------------------------
# Apple roots
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AppleRoot:
    """One shipped Apple root certificate (``santacore/identity/apple_roots/<name>``)."""

    name: str
    info: CertificateInfo


@cache
def _apple_roots() -> tuple[tuple[AppleRoot, _Cert], ...]:
    roots: list[tuple[AppleRoot, _Cert]] = []
    folder = resources.files(APPLE_ROOTS_PACKAGE)
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".cer"):
            cert = _load_cert(entry.read_bytes())
            roots.append((AppleRoot(name=entry.name, info=cert.info), cert))
    if not roots:
        raise SignatureError(f"no Apple root certificates found in {APPLE_ROOTS_PACKAGE}")
    return tuple(roots)


def apple_roots() -> tuple[AppleRoot, ...]:
    """The Apple root certificates santacore trusts as anchors, by file name."""
    return tuple(root for root, _ in _apple_roots())


# --------------------------------------------------------------------------------------------
# CMS parsing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimestampToken:
    """An RFC 3161 timestamp token (unsigned attribute ``1.2.840.113549.1.9.16.2.14``).

    ``gen_time`` is the TSTInfo genTime in whole Unix seconds; ``hash_algorithm`` and
    ``hashed_message`` its messageImprint (which must be the digest of the signer's signature
    value); ``signed_data`` the token's own SignedData, verified like the code signature.
    """

    gen_time: int
    hash_algorithm: str
    hashed_message: bytes
    serial: int
    policy: str
    signed_data: CMSSignature


@dataclass(frozen=True)
class CMSSignature:
    """A parsed CMS SignedData: everything extracted into plain values.

    ``certificates`` are DER, in embedded order; ``signer_certificate`` is the one matching the
    (first) SignerInfo's identifier, or None when it is not embedded. ``signed_attributes`` is
    the DER ``SET OF Attribute`` the signature covers (None when the SignerInfo has none).
    Times are Unix seconds. ``cdhashes`` is the CDHashes plist's list (None without the
    attribute), ``cdhashes2`` the CDHashes2 attribute's (algorithm, digest) pairs.
    """

    certificates: tuple[bytes, ...] = field(repr=False)
    signer_certificate: bytes | None = field(repr=False)
    signer_identifier: str
    signer_count: int
    digest_algorithm: str
    signature_algorithm: str
    signature_algorithm_der: bytes = field(repr=False)
    signature: bytes = field(repr=False)
    signed_attributes: bytes | None = field(repr=False)
    content_type: str | None
    message_digest: bytes | None
    signing_time: int | None
    cdhashes_plist: bytes | None = field(repr=False)
    cdhashes: tuple[bytes, ...] | None
    cdhashes2: tuple[tuple[str, bytes], ...] | None
    timestamp: TimestampToken | None
    encapsulated_content_type: str
    encapsulated_content: bytes | None = field(repr=False)

    @property
    def secure_signing_time(self) -> int | None:
        """The timestamp token's genTime (Unix seconds), if the signature carries one."""
        return self.timestamp.gen_time if self.timestamp is not None else None

    @property
    def signer(self) -> CertificateInfo | None:
        """The signer's certificate, described."""
        return certificate_info(self.signer_certificate) if self.signer_certificate is not None else None


def _describe(exc: BaseException) -> str:
    """The exception's type and first line, at most 200 characters (hostile input can make messages huge)."""
    text = str(exc).strip().splitlines()
    if not text:
        return type(exc).__name__
    first = text[0] if len(text[0]) <= 200 else text[0][:200] + "…"
    return f"{type(exc).__name__}: {first}"


_MAX_OID_BYTES = 64  # the longest registered OIDs take about 30 bytes


def _check_oid_size(oid_value: Any) -> None:
    size = len(oid_value.contents or b"")
    if size > _MAX_OID_BYTES:
        raise SignatureError(f"an object identifier of {size} bytes (at most {_MAX_OID_BYTES} are accepted)")


def _oid_name(oid_value: Any) -> str:
    """An asn1crypto ObjectIdentifier's name, or its dotted form when asn1crypto has no name."""
    _check_oid_size(oid_value)
    return str(oid_value.native)


def _oid_dotted(oid_value: Any) -> str:
    _check_oid_size(oid_value)
    return str(oid_value.dotted)


def _der_tlv(tag: int, contents: bytes) -> bytes:
    """A definite-length (DER) encoding of a single-byte tag and these contents."""
    length = len(contents)
    if length < 0x80:
        return bytes([tag, length]) + contents
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + contents


_SET_OF = 0x31  # what the signature over signed attributes covers (RFC 5652 §5.4)
_SIGNED_ATTRS_TAG = 0xA0  # [0] IMPLICIT, as the SignerInfo carries them


class _CDHashEntry(_core.Sequence):  # type: ignore[misc]
    """One value of the CDHashes2 attribute."""

    _fields: ClassVar[list[tuple[str, type]]] = [
        ("hash_algorithm", _core.ObjectIdentifier),
        ("digest", _core.OctetString),
    ]


_HASH_OIDS: dict[str, str] = {
    "1.3.14.3.2.26": "sha1",
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
    "2.16.840.1.101.3.4.2.4": "sha224",
}


def _single_value(attr: Any, what: str) -> Any:
    values = attr["values"]
    if len(values) != 1:
        raise SignatureError(f"{what} attribute must have exactly one value, has {len(values)}")
    return values[0]


def _parse_cdhashes_plist(raw: bytes) -> tuple[bytes, ...]:
    try:
        plist = plistlib.loads(raw)
    except Exception as exc:
        raise SignatureError(f"CDHashes attribute is not a plist: {_describe(exc)}") from None
    hashes_list = plist.get("cdhashes") if isinstance(plist, dict) else None
    if not isinstance(hashes_list, list) or not all(isinstance(h, bytes) for h in hashes_list):
        raise SignatureError("CDHashes plist has no 'cdhashes' array of data")
    return tuple(bytes(h) for h in hashes_list)


def _parse_cdhashes2(attr: Any) -> tuple[tuple[str, bytes], ...]:
    entries: list[tuple[str, bytes]] = []
    for value in attr["values"]:
        entry = _CDHashEntry.load(value.dump(), strict=True)
        oid = _oid_dotted(entry["hash_algorithm"])
        entries.append((_HASH_OIDS.get(oid, oid), bytes(entry["digest"].native)))
    return tuple(entries)


def _match_signer(sid: Any, certs: Sequence[_Cert]) -> tuple[str, _Cert | None]:
    kind = str(sid.name)
    chosen = sid.chosen
    if kind == "issuer_and_serial_number":
        issuer = chosen["issuer"]
        serial = int(chosen["serial_number"].native)
        for cert in certs:
            if cert.serial == serial and cert.asn1.issuer == issuer:
                return kind, cert
        return kind, None
    if kind == "subject_key_identifier":
        ski = bytes(chosen.native)
        for cert in certs:
            if cert.asn1.key_identifier == ski:
                return kind, cert
        return kind, None
    raise SignatureError(f"unknown signer identifier {kind!r}")


def _parse_signed_data(signed_data: Any, source: bytes, *, allow_timestamp: bool) -> CMSSignature:
    """Extract a SignedData into a CMSSignature (asn1crypto is lazy: everything is read here).

    ``source`` is the whole input: every certificate must occur in it verbatim. Apple's CMS is
    BER with indefinite lengths, and asn1crypto re-encodes (and normalises, e.g. URI hosts)
    whatever it has to dump in DER; a certificate's hashes must be those of its real bytes.
    """
    certs: list[_Cert] = []
    raw_certs = signed_data["certificates"]
    for index, choice in enumerate(raw_certs or []):
        if choice.name != "certificate":
            continue  # attribute certificates and other formats are not part of a code signature's chain
        der = bytes(choice.chosen.dump())
        if der not in source:
            raise SignatureError(f"embedded certificate #{index} is not DER-encoded")
        try:
            certs.append(_load_cert(der))
        except SignatureError as exc:
            raise SignatureError(f"embedded certificate #{index}: {exc}") from None

    signer_infos = signed_data["signer_infos"]
    if len(signer_infos) == 0:
        raise SignatureError("CMS SignedData has no SignerInfo")
    signer_info = signer_infos[0]
    signer_identifier, signer_cert = _match_signer(signer_info["sid"], certs)

    digest_algorithm = _oid_name(signer_info["digest_algorithm"]["algorithm"])
    signature_algorithm_value = signer_info["signature_algorithm"]
    signature_algorithm = _oid_name(signature_algorithm_value["algorithm"])
    signature_algorithm_der = bytes(signature_algorithm_value.dump())
    signature = bytes(signer_info["signature"].native)

    encap = signed_data["encap_content_info"]
    encapsulated_content_type = _oid_name(encap["content_type"])
    encapsulated = encap["content"]
    encapsulated_content = None if isinstance(encapsulated, _core.Void) else bytes(encapsulated)

    signed_attributes: bytes | None = None
    content_type: str | None = None
    message_digest: bytes | None = None
    signing_time: int | None = None
    cdhashes_plist: bytes | None = None
    cdhashes: tuple[bytes, ...] | None = None
    cdhashes2: tuple[tuple[str, bytes], ...] | None = None
    attrs = signer_info["signed_attrs"]
    if attrs.contents is not None and len(attrs) > 0:
        contents = bytes(attrs.contents)
        if _der_tlv(_SIGNED_ATTRS_TAG, contents) not in source:
            raise SignatureError("signed attributes are not DER-encoded (RFC 5652 §5.3)")
        signed_attributes = _der_tlv(_SET_OF, contents)
        seen: set[str] = set()
        for attr in attrs:
            oid = _oid_dotted(attr["type"])
            if oid in seen:
                raise SignatureError(f"signed attribute {oid} appears twice")
            seen.add(oid)
            if oid == "1.2.840.113549.1.9.3":
                content_type = _oid_name(_single_value(attr, "content-type"))
            elif oid == "1.2.840.113549.1.9.4":
                message_digest = bytes(_single_value(attr, "message-digest").native)
            elif oid == "1.2.840.113549.1.9.5":
                signing_time = _unix(_single_value(attr, "signing-time").native)
            elif oid == CDHASHES_PLIST_OID:
                raw = _core.OctetString.load(_single_value(attr, "CDHashes").dump(), strict=True)
                cdhashes_plist = bytes(raw.native)
                cdhashes = _parse_cdhashes_plist(cdhashes_plist)
            elif oid == CDHASHES2_OID:
                cdhashes2 = _parse_cdhashes2(attr)
        if message_digest is None:
            raise SignatureError("signed attributes lack the message-digest attribute")
        if content_type is None:
            raise SignatureError("signed attributes lack the content-type attribute")

    timestamp: TimestampToken | None = None
    unsigned = signer_info["unsigned_attrs"]
    if unsigned.contents is not None:
        for attr in unsigned:
            if _oid_dotted(attr["type"]) != TIMESTAMP_TOKEN_OID:
                continue
            if not allow_timestamp:
                raise SignatureError("a timestamp token must not itself carry a timestamp token")
            if timestamp is not None:
                raise SignatureError("more than one timestamp token")
            timestamp = _parse_timestamp(_single_value(attr, "timestamp-token"), source)

    return CMSSignature(
        certificates=tuple(cert.info.der for cert in certs),
        signer_certificate=signer_cert.info.der if signer_cert is not None else None,
        signer_identifier=signer_identifier,
        signer_count=len(signer_infos),
        digest_algorithm=digest_algorithm,
        signature_algorithm=signature_algorithm,
        signature_algorithm_der=signature_algorithm_der,
        signature=signature,
        signed_attributes=signed_attributes,
        content_type=content_type,
        message_digest=message_digest,
        signing_time=signing_time,
        cdhashes_plist=cdhashes_plist,
        cdhashes=cdhashes,
        cdhashes2=cdhashes2,
        timestamp=timestamp,
        encapsulated_content_type=encapsulated_content_type,
        encapsulated_content=encapsulated_content,
    )


def _parse_timestamp(content_info: Any, source: bytes) -> TimestampToken:
    if not isinstance(content_info, _cms.ContentInfo):
        raise SignatureError("timestamp token is not a ContentInfo")
    if _oid_name(content_info["content_type"]) != "signed_data":
        raise SignatureError("timestamp token is not a SignedData")
    signed = _parse_signed_data(content_info["content"], source, allow_timestamp=False)
    if signed.encapsulated_content_type != "tst_info" or signed.encapsulated_content is None:
        raise SignatureError("timestamp token does not encapsulate a TSTInfo")
    tst = _tsp.TSTInfo.load(signed.encapsulated_content, strict=True)
    imprint = tst["message_imprint"]
    return TimestampToken(
        gen_time=_unix(tst["gen_time"].native),
        hash_algorithm=_oid_name(imprint["hash_algorithm"]["algorithm"]),
        hashed_message=bytes(imprint["hashed_message"].native),
        serial=int(tst["serial_number"].native),
        policy=_oid_dotted(tst["policy"]),
        signed_data=signed,
    )


def parse_cms(der: bytes) -> CMSSignature:
    """Parse the CMS blob of a code signature: the payload after the 8-byte blob header, or the
    whole blob (magic 0xfade0b01, which is then checked and stripped).

    Raises SignatureError for anything that is not a well-formed CMS SignedData (an ad-hoc
    signature's empty CMS blob included).
    """
    if not isinstance(der, bytes | bytearray | memoryview):
        raise SignatureError(f"CMS must be bytes, not {type(der).__name__}")
    data = bytes(der)
    if len(data) >= _BLOB_HEADER and int.from_bytes(data[:4], "big") == _EMBEDDED_SIGNATURE_BLOB_MAGIC:
        length = int.from_bytes(data[4:8], "big")
        if length < _BLOB_HEADER or length > len(data):
            raise SignatureError(f"CMS blob length {length} does not fit its {len(data)} bytes")
        data = data[_BLOB_HEADER:length]
    if not data:
        raise SignatureError("empty CMS signature (ad-hoc signatures carry no CMS)")
    if len(data) > MAX_CMS_SIZE:
        raise SignatureError(f"CMS of {len(data)} bytes exceeds the {MAX_CMS_SIZE}-byte limit")
    if _LONG_HIGH_BIT_RUN.search(data):
        raise SignatureError("CMS holds 512 consecutive bytes with the high bit set (a runaway OID sub-identifier)")
    if data[0] != 0x30:
        raise SignatureError(f"CMS does not start with a DER SEQUENCE (first byte 0x{data[0]:02x})")
    try:
        # The encoded length (BER: Apple uses indefinite lengths), without re-encoding anything.
        _, _, _, header, contents, trailer = _parser.parse(data, strict=False)
        end = len(header) + len(contents) + len(trailer)
        if data[end:].strip(b"\x00"):  # zero padding after it is tolerated, nothing else
            raise SignatureError(f"{len(data) - end} unexpected bytes after the CMS ContentInfo")
        data = data[:end]
        content_info = _cms.ContentInfo.load(data, strict=True)
        content_type = _oid_name(content_info["content_type"])
        if content_type != "signed_data":
            raise SignatureError(f"CMS content type is {content_type!r}, not signed_data")
        return _parse_signed_data(content_info["content"], data, allow_timestamp=True)
    except SignatureError:
        raise
    except Exception as exc:  # asn1crypto's errors (ValueError, TypeError, ...), recursion on deep nesting
        raise SignatureError(f"malformed CMS: {_describe(exc)}") from None


# --------------------------------------------------------------------------------------------
# The chain
# --------------------------------------------------------------------------------------------


def _build_chain(sig: CMSSignature) -> list[_Cert]:
    if sig.signer_certificate is None:
        return []
    certs = [_load_cert(der) for der in sig.certificates]
    leaf_index = next((i for i, c in enumerate(certs) if c.info.der == sig.signer_certificate), None)
    leaf = certs[leaf_index] if leaf_index is not None else _load_cert(sig.signer_certificate)
    chain = [leaf]
    used = {leaf_index} if leaf_index is not None else set()
    current = leaf
    while not current.info.self_issued:
        issuer = current.asn1.issuer
        candidates = [i for i, c in enumerate(certs) if i not in used and c.asn1.subject == issuer]
        if not candidates:
            break
        aki = current.asn1.authority_key_identifier
        preferred = [i for i in candidates if aki is not None and certs[i].asn1.key_identifier == aki]
        chosen = (preferred or candidates)[0]
        used.add(chosen)
        current = certs[chosen]
        chain.append(current)
    return chain


def signing_chain(sig: CMSSignature) -> list[CertificateInfo]:
    """The signing chain, leaf (the signer's certificate) first, as santacore builds it (spec §7.3).

    Starts at the signer's certificate and follows issuer → subject among the embedded
    certificates (each used once, preferring the one whose subject key identifier matches the
    authority key identifier) until a self-issued certificate. Empty without a signer certificate.
    """
    try:
        return [cert.info for cert in _build_chain(sig)]
    except SignatureError:
        raise
    except Exception as exc:
        raise SignatureError(f"cannot build the signing chain: {_describe(exc)}") from None


# --------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CMSVerification:
    """santacore's verdict on a CMS code signature, with every check's outcome.

    * ``message_digest_ok`` — the signed attributes bind the CodeDirectory: the message-digest attribute
      equals its digest, and the content-type attribute matches the encapsulated content type.
    * ``signature_ok`` — the signer's signature over the DER signed attributes verifies with the leaf key.
    * ``chain_ok`` — every certificate is signed by the next and the last is self-signed (its
      self-signature verifies).
    * ``anchor`` — file name of the shipped Apple root the chain ends at (byte-identical), else None.
    * ``validity_ok`` — every chain certificate was valid at ``validity_time`` (None: no time to check at);
      ``validity_time_source`` is "at", "secure_signing_time" or "signing_time".
    * ``timestamp_ok`` — the timestamp token covers this signature and verifies to an Apple root (None: none).
    * ``cdhashes_ok`` — the CDHashes/CDHashes2 attributes list this CodeDirectory's hash (None: no attributes).
    * ``signature_valid`` — all of the above that apply hold, and the chain is anchored.

    ``problems`` explains every failure (empty exactly when ``signature_valid``); ``notes`` records
    what was not checked or is merely informative.
    """

    signature_valid: bool
    message_digest_ok: bool
    signature_ok: bool
    chain_ok: bool
    anchor: str | None
    validity_ok: bool | None
    validity_time: int | None
    validity_time_source: str | None
    timestamp_ok: bool | None
    cdhashes_ok: bool | None
    chain: tuple[CertificateInfo, ...]
    problems: tuple[str, ...]
    notes: tuple[str, ...]


def _label(info: CertificateInfo) -> str:
    return f"{info.cn or '(no common name)'!r} (sha256 {info.sha256[:16]}…)"


def _hash_for_signature(sig: CMSSignature) -> tuple[str, str]:
    """(scheme, hash name) of the signer's signature algorithm."""
    algorithm = _algos.SignedDigestAlgorithm.load(sig.signature_algorithm_der, strict=True)
    scheme = str(algorithm.signature_algo)
    try:
        hash_name = str(algorithm.hash_algo)
    except ValueError:  # e.g. plain rsaEncryption: the hash is the SignerInfo's digest algorithm
        hash_name = sig.digest_algorithm
    return scheme, hash_name


def _verify_signer_signature(sig: CMSSignature, leaf: x509.Certificate, data: bytes) -> str | None:
    """None when the signature over ``data`` verifies with the leaf key, else the reason."""
    try:
        scheme, hash_name = _hash_for_signature(sig)
    except Exception as exc:
        return f"unsupported signature algorithm {sig.signature_algorithm!r}: {_describe(exc)}"
    try:
        key = leaf.public_key()
        if scheme in ("ed25519", "ed448"):
            if not isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
                return f"signature algorithm {scheme} does not match the leaf's {type(key).__name__}"
            key.verify(sig.signature, data)
            return None
        if hash_name not in _HASHES:
            return f"unsupported hash {hash_name!r} in signature algorithm {sig.signature_algorithm!r}"
        hash_algorithm = _HASHES[hash_name]()
        if scheme == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPublicKey):
            key.verify(sig.signature, data, padding.PKCS1v15(), hash_algorithm)
        elif scheme == "rsassa_pss" and isinstance(key, rsa.RSAPublicKey):
            algorithm = _algos.SignedDigestAlgorithm.load(sig.signature_algorithm_der, strict=True)
            params = algorithm["parameters"]
            mgf_hash = str(params["mask_gen_algorithm"]["parameters"]["algorithm"].native)
            if mgf_hash not in _HASHES:
                return f"unsupported PSS mask hash {mgf_hash!r}"
            pss = padding.PSS(mgf=padding.MGF1(_HASHES[mgf_hash]()), salt_length=int(params["salt_length"].native))
            key.verify(sig.signature, data, pss, hash_algorithm)
        elif scheme == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(sig.signature, data, ec.ECDSA(hash_algorithm))
        elif scheme == "dsa" and isinstance(key, dsa.DSAPublicKey):
            key.verify(sig.signature, data, hash_algorithm)
        else:
            return f"signature algorithm {sig.signature_algorithm!r} does not match the leaf's {type(key).__name__}"
    except InvalidSignature:
        return "the signer's signature does not verify with the leaf certificate's key"
    except (UnsupportedAlgorithm, ValueError, TypeError) as exc:
        return f"the signer's signature cannot be checked: {_describe(exc)}"
    return None


def _verify_link(child: _Cert, parent: _Cert) -> str | None:
    """None when ``parent`` issued ``child`` (names chain, and the key verifies the signature), else why.

    Not `Certificate.verify_directly_issued_by`: it refuses SHA-1, and Apple Root CA (2006) and
    many of its intermediates are signed with sha1WithRSAEncryption.
    """
    if child.asn1.issuer != parent.asn1.subject:
        return f"the issuer of {_label(child.info)} is not the subject of {_label(parent.info)}"
    cert = child.crypto
    try:
        key = parent.crypto.public_key()
        params = cert.signature_algorithm_parameters
        hash_algorithm = cert.signature_hash_algorithm
        if isinstance(key, rsa.RSAPublicKey) and isinstance(params, padding.PKCS1v15 | padding.PSS):
            if hash_algorithm is None:
                return f"{_label(child.info)} has an RSA signature without a hash algorithm"
            key.verify(cert.signature, cert.tbs_certificate_bytes, params, hash_algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(params, ec.ECDSA):
            key.verify(cert.signature, cert.tbs_certificate_bytes, params)
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey) and params is None:
            key.verify(cert.signature, cert.tbs_certificate_bytes)
        elif isinstance(key, dsa.DSAPublicKey) and hash_algorithm is not None:
            key.verify(cert.signature, cert.tbs_certificate_bytes, hash_algorithm)
        else:
            return (
                f"the signature algorithm of {_label(child.info)} ({cert.signature_algorithm_oid.dotted_string}) "
                f"does not fit the key of {_label(parent.info)} ({type(key).__name__})"
            )
    except InvalidSignature:
        return f"{_label(child.info)} is not signed by {_label(parent.info)}"
    except (UnsupportedAlgorithm, ValueError, TypeError) as exc:
        return f"cannot check that {_label(parent.info)} signed {_label(child.info)}: {_describe(exc)}"
    return None


@dataclass
class _Checks:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _check_chain(chain: Sequence[_Cert], checks: _Checks) -> tuple[bool, str | None]:
    """(chain_ok, anchor) of a leaf-first chain; reasons appended to ``checks``."""
    if not chain:
        checks.problems.append("no signer certificate among the embedded certificates")
        return False, None
    ok = True
    for child, parent in itertools.pairwise(chain):
        problem = _verify_link(child, parent)
        if problem:
            checks.problems.append(problem)
            ok = False
    top = chain[-1]
    roots = _apple_roots()
    if top.info.self_issued:
        problem = _verify_link(top, top)
        if problem:
            checks.problems.append(f"self-issued root: {problem}")
            ok = False
    else:
        ok = False
        checks.problems.append(
            f"incomplete chain: the issuer of {_label(top.info)} ({top.info.issuer_cn!r}) is not embedded"
        )
        for root, root_cert in roots:
            if root_cert.asn1.subject == top.asn1.issuer and _verify_link(top, root_cert) is None:
                checks.notes.append(
                    f"{_label(top.info)} is issued by the shipped root {root.name}, which is not embedded"
                )
    anchor = next((root.name for root, root_cert in roots if root_cert.info.der == top.info.der), None)
    if anchor is None and top.info.self_issued:
        kind = "self-signed leaf" if len(chain) == 1 else "untrusted root"
        checks.problems.append(f"{kind}: {_label(top.info)} is not one of the shipped Apple roots")
    return ok, anchor


_TIME_SOURCES = {
    "at": "requested time",
    "secure_signing_time": "timestamp's time",
    "signing_time": "signing time",
    "timestamp": "timestamp's time",
}


def _check_validity(chain: Sequence[_Cert], when: int, source: str, checks: _Checks) -> bool:
    ok = True
    for cert in chain:
        if not cert.info.valid_at(when):
            ok = False
            checks.problems.append(
                f"{_label(cert.info)} was not valid at the {_TIME_SOURCES.get(source, source)} {_iso(when)} "
                f"(valid {cert.info.valid_from_iso} to {cert.info.valid_until_iso})"
            )
    return ok


def _digest(name: str, data: bytes) -> bytes | None:
    if name not in _HASHES:
        return None
    return hashlib.new(name, data).digest()


def _check_core(sig: CMSSignature, content: bytes, checks: _Checks, what: str) -> tuple[bool, bool, list[_Cert]]:
    """Message digest and signer signature of ``sig`` over ``content``: (digest_ok, signature_ok, chain)."""
    chain = _build_chain(sig)
    if sig.signed_attributes is None:
        digest_ok = True
        checks.notes.append(f"{what}: no signed attributes; the signature covers the content itself")
        signed_data = content
    else:
        digest = _digest(sig.digest_algorithm, content)
        if digest is None:
            digest_ok = False
            checks.problems.append(f"{what}: unsupported digest algorithm {sig.digest_algorithm!r}")
        else:
            digest_ok = digest == sig.message_digest
            if not digest_ok:
                checks.problems.append(
                    f"{what}: message digest mismatch: the signed {sig.digest_algorithm} digest is "
                    f"{(sig.message_digest or b'').hex()}, the content's is {digest.hex()}"
                )
        signed_data = sig.signed_attributes
        if sig.content_type != sig.encapsulated_content_type:  # RFC 5652 §11.1
            digest_ok = False
            checks.problems.append(
                f"{what}: the content-type attribute ({sig.content_type!r}) does not match the "
                f"encapsulated content type ({sig.encapsulated_content_type!r})"
            )
    if not chain:
        checks.problems.append(f"{what}: the signer's certificate is not embedded; the signature cannot be checked")
        return digest_ok, False, chain
    problem = _verify_signer_signature(sig, chain[0].crypto, signed_data)
    if problem:
        checks.problems.append(f"{what}: {problem}")
    return digest_ok, problem is None, chain


def _check_timestamp(sig: CMSSignature, checks: _Checks) -> bool | None:
    token = sig.timestamp
    if token is None:
        return None
    sub = _Checks()
    ok = True
    imprint = _digest(token.hash_algorithm, sig.signature)
    if imprint is None:
        ok = False
        sub.problems.append(f"unsupported message imprint hash {token.hash_algorithm!r}")
    elif imprint != token.hashed_message:
        ok = False
        sub.problems.append("its message imprint is not the digest of this signature")
    inner = token.signed_data
    if inner.content_type is not None and inner.content_type != "tst_info":
        ok = False
        sub.problems.append(f"its signed content type is {inner.content_type!r}, not tst_info")
    digest_ok, signature_ok, chain = _check_core(inner, inner.encapsulated_content or b"", sub, "token")
    chain_ok, anchor = _check_chain(chain, sub)
    if chain:
        ok = _check_validity(chain, token.gen_time, "timestamp", sub) and ok
    ok = ok and digest_ok and signature_ok and chain_ok and anchor is not None
    checks.problems.extend(f"timestamp: {p}" for p in sub.problems)
    checks.notes.extend(f"timestamp: {n}" for n in sub.notes)
    return ok


def _check_cdhashes(sig: CMSSignature, code_directory: bytes, checks: _Checks) -> bool | None:
    if sig.cdhashes is None and sig.cdhashes2 is None:
        return None
    if len(code_directory) < 38 or int.from_bytes(code_directory[:4], "big") != _CODE_DIRECTORY_MAGIC:
        checks.notes.append("CDHashes attributes not checked: the content is not a CodeDirectory")
        return None
    hash_type = code_directory[37]
    hash_name = _CD_HASH_TYPES.get(hash_type)
    if hash_name is None:
        checks.notes.append(f"CDHashes attributes not checked: unknown CodeDirectory hash type {hash_type}")
        return None
    length = int.from_bytes(code_directory[4:8], "big")
    full = hashlib.new(hash_name, code_directory[:length]).digest()
    ok = True
    if sig.cdhashes is not None and full[:_CDHASH_LEN] not in sig.cdhashes:
        ok = False
        checks.problems.append(f"the CDHashes attribute does not list this CodeDirectory's cdhash {full[:20].hex()}")
    if sig.cdhashes2 is not None and hash_type != 3 and (hash_name, full) not in sig.cdhashes2:
        ok = False
        checks.problems.append(f"the CDHashes2 attribute does not list this CodeDirectory's {hash_name} {full.hex()}")
    return ok


def verify_cms(sig: CMSSignature, code_directory: bytes, *, at: int | None = None) -> CMSVerification:
    """Verify a code signature's CMS against its CodeDirectory (the bytes of SuperBlob slot 0).

    Certificate validity is checked at ``at`` when given, else at the timestamp token's
    genTime when the token verifies, else at the signing-time attribute; with none of these it
    is not checked (``validity_ok`` None, and a note). Never raises for a well-formed
    `CMSSignature`; SignatureError for a CMSSignature whose certificates cannot be parsed.
    """
    checks = _Checks()
    try:
        content = bytes(code_directory)
        if sig.content_type is not None and sig.content_type != "data":
            checks.notes.append(f"signed content type is {sig.content_type!r} (Apple signs 'data')")
        if sig.encapsulated_content is not None:
            checks.notes.append("the CMS is not detached: its encapsulated content is ignored")
        if sig.signer_count != 1:
            checks.notes.append(f"{sig.signer_count} SignerInfos: only the first is checked")
        digest_ok, signature_ok, chain = _check_core(sig, content, checks, "signature")
        chain_ok, anchor = _check_chain(chain, checks)
        cdhashes_ok = _check_cdhashes(sig, content, checks)
        timestamp_ok = _check_timestamp(sig, checks)

        validity_time: int | None
        if at is not None:
            validity_time, source = at, "at"
        elif sig.timestamp is not None and timestamp_ok:
            validity_time, source = sig.timestamp.gen_time, "secure_signing_time"
        elif sig.signing_time is not None:
            validity_time, source = sig.signing_time, "signing_time"
        else:
            validity_time, source = None, None
        validity_ok: bool | None = None
        if validity_time is not None and source is not None and chain:
            validity_ok = _check_validity(chain, validity_time, source, checks)
        elif validity_time is None:
            checks.notes.append("no signing time or verified timestamp: certificate validity not checked")
    except SignatureError:
        raise
    except Exception as exc:
        raise SignatureError(f"cannot verify the CMS signature: {_describe(exc)}") from None

    valid = (
        digest_ok
        and signature_ok
        and chain_ok
        and anchor is not None
        and validity_ok is not False
        and timestamp_ok is not False
        and cdhashes_ok is not False
    )
    if valid and checks.problems:  # a check failed without flipping a flag: never report valid then
        valid = False
    return CMSVerification(
        signature_valid=valid,
        message_digest_ok=digest_ok,
        signature_ok=signature_ok,
        chain_ok=chain_ok,
        anchor=anchor,
        validity_ok=validity_ok,
        validity_time=validity_time,
        validity_time_source=source,
        timestamp_ok=timestamp_ok,
        cdhashes_ok=cdhashes_ok,
        chain=tuple(cert.info for cert in chain),
        problems=tuple(checks.problems),
        notes=tuple(checks.notes),
    )
