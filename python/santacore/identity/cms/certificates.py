"""X.509 certificates as Santa describes them (MOLCertificate), Santa's signing OIDs, the shipped Apple roots,
and the signing chain built from a CMS signature's embedded certificates (spec §4.3, §7.3, §7.5)."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asn1crypto import x509 as _ax509  # type: ignore[import-untyped,unused-ignore]
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from santacore.errors import SignatureError
from santacore.identity.cms.errors import CERTIFICATE_ERRORS, describe_error

if TYPE_CHECKING:
    from santacore.identity.cms.parse import CMSSignature

APPLE_ROOTS_PACKAGE = "santacore.identity.apple_roots"

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

_OID_CN = "2.5.4.3"
_OID_C = "2.5.4.6"
_OID_O = "2.5.4.10"
_OID_OU = "2.5.4.11"


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
class ParsedCertificate:
    """A certificate parsed by both libraries: asn1crypto for name matching, cryptography for keys.

    Everything name matching reads from ``asn1`` was parsed when it was loaded, so comparing
    names and key identifiers later cannot fail.
    """

    info: CertificateInfo
    asn1: Any  # asn1crypto.x509.Certificate
    crypto: x509.Certificate
    serial: int  # read once, warnings silenced: cryptography warns on each read of a non-positive serial


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_utc(ts: int) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` (UTC) of Unix seconds, for any year X.509 can express."""
    return (_EPOCH + timedelta(seconds=ts)).strftime("%Y-%m-%dT%H:%M:%SZ")


def unix_seconds(dt: datetime) -> int:
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


def load_certificate(der: bytes) -> ParsedCertificate:
    """Parse one DER certificate with both libraries; SignatureError if either refuses it."""
    if not isinstance(der, bytes | bytearray | memoryview):
        raise SignatureError("certificate must be bytes")
    return _parse_certificate(bytes(der))


# A catalog of one vendor's binaries carries the same few certificates thousands of times; parsing
# each with both libraries cost ~6 ms. The parsed form is never changed after loading, so the same
# object serves every signature that carries those bytes. A refused certificate is not cached.
@lru_cache(maxsize=1024)
def _parse_certificate(der: bytes) -> ParsedCertificate:
    try:  # library calls only: what they raise for malformed input is listed in CERTIFICATE_ERRORS
        with warnings.catch_warnings():
            # e.g. CryptographyDeprecationWarning for a negative serial: report, don't warn.
            warnings.simplefilter("ignore")
            crypto = x509.load_der_x509_certificate(der)
            serial = crypto.serial_number
            not_before = unix_seconds(crypto.not_valid_before_utc)
            not_after = unix_seconds(crypto.not_valid_after_utc)
            subject = crypto.subject
            issuer = crypto.issuer
            extension_oids = tuple(ext.oid.dotted_string for ext in crypto.extensions)
        asn1 = _ax509.Certificate.load(der, strict=True)
        # asn1crypto parses lazily: read now every part chain building compares, so that a malformed
        # name or key identifier fails here, as a malformed certificate, and never in a later comparison.
        _ = asn1.subject.hashable, asn1.issuer.hashable, asn1.key_identifier, asn1.authority_key_identifier
        self_issued = bool(asn1.self_issued)
    except CERTIFICATE_ERRORS as exc:
        raise SignatureError(f"malformed certificate: {describe_error(exc)}") from exc
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
        valid_from_iso=iso_utc(not_before),
        valid_until_iso=iso_utc(not_after),
        serial=_serial_hex(serial),
        self_issued=self_issued,
        production_signing_oids=tuple(oid for oid in extension_oids if oid in PRODUCTION_SIGNING_OIDS),
        extension_oids=extension_oids,
        der=der,
    )
    return ParsedCertificate(info=info, asn1=asn1, crypto=crypto, serial=serial)


def certificate_info(der: bytes) -> CertificateInfo:
    """Describe one DER-encoded X.509 certificate."""
    return load_certificate(der).info


_PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"


def certificate_info_from_file(path: str | Path) -> CertificateInfo:
    """Describe the certificate in a file, DER or PEM (the first CERTIFICATE block). OSError if unreadable."""
    data = Path(path).read_bytes()
    if _PEM_BEGIN in data:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                der = x509.load_pem_x509_certificate(data).public_bytes(Encoding.DER)
        except CERTIFICATE_ERRORS as exc:
            raise SignatureError(f"{path}: malformed PEM certificate: {describe_error(exc)}") from exc
    else:
        der = data
    try:
        return certificate_info(der)
    except SignatureError as exc:
        raise SignatureError(f"{path}: {exc}") from exc


# --- Apple roots ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AppleRoot:
    """One shipped Apple root certificate (``santacore/identity/apple_roots/<name>``)."""

    name: str
    info: CertificateInfo


@cache
def shipped_roots() -> tuple[tuple[AppleRoot, ParsedCertificate], ...]:
    """The shipped Apple roots, parsed once, by file name."""
    roots: list[tuple[AppleRoot, ParsedCertificate]] = []
    folder = resources.files(APPLE_ROOTS_PACKAGE)
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".cer"):
            cert = load_certificate(entry.read_bytes())
            roots.append((AppleRoot(name=entry.name, info=cert.info), cert))
    if not roots:
        raise SignatureError(f"no Apple root certificates found in {APPLE_ROOTS_PACKAGE}")
    return tuple(roots)


def apple_roots() -> tuple[AppleRoot, ...]:
    """The Apple root certificates santacore trusts as anchors, by file name."""
    return tuple(root for root, _ in shipped_roots())


# --- The signing chain ----------------------------------------------------------------------------------------


def build_chain(signer: bytes | None, certificates: Sequence[bytes]) -> list[ParsedCertificate]:
    """The chain from the signer's certificate up through ``certificates`` (see `signing_chain`)."""
    if signer is None:
        return []
    certs = [load_certificate(der) for der in certificates]
    leaf_index = next((i for i, c in enumerate(certs) if c.info.der == signer), None)
    leaf = certs[leaf_index] if leaf_index is not None else load_certificate(signer)
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
    return [cert.info for cert in build_chain(sig.signer_certificate, sig.certificates)]
