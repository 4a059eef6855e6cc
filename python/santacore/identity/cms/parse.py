"""A code signature's CMS SignedData parsed into plain values, from bounded input (size, OID lengths).

Apple's CMS (SuperBlob slot 0x10000, blob magic 0xfade0b01) is BER with indefinite lengths and a
*detached* content: the CodeDirectory of slot 0. asn1crypto reads the structure; every value is
extracted here, eagerly, so that a `CMSSignature` can never fail later.
"""

from __future__ import annotations

import plistlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from asn1crypto import cms as _cms  # type: ignore[import-untyped,unused-ignore]
from asn1crypto import core as _core  # type: ignore[import-untyped,unused-ignore]
from asn1crypto import parser as _parser  # type: ignore[import-untyped,unused-ignore]
from asn1crypto import tsp as _tsp  # type: ignore[import-untyped,unused-ignore]

from santacore.errors import SignatureError
from santacore.identity.cms.certificates import (
    CertificateInfo,
    ParsedCertificate,
    certificate_info,
    load_certificate,
    unix_seconds,
)
from santacore.identity.cms.errors import ASN1_ERRORS, describe_error
from santacore.identity.codesign.cs_blobs import BLOB_HEADER, CSMAGIC_BLOBWRAPPER
from santacore.identity.plists import PLIST_ERRORS

CDHASHES_PLIST_OID = "1.2.840.113635.100.9.1"
"""Signed attribute: XML plist ``{"cdhashes": [<data>...]}``, each CodeDirectory's cdhash (20 bytes)."""

CDHASHES2_OID = "1.2.840.113635.100.9.2"
"""Signed attribute: one ``SEQUENCE {hashAlgorithm OID, digest OCTET STRING}`` per CodeDirectory (full digest)."""

TIMESTAMP_TOKEN_OID = "1.2.840.113549.1.9.16.2.14"
"""Unsigned attribute id-aa-timeStampToken (RFC 3161): a ContentInfo/SignedData over a TSTInfo."""

MAX_CMS_SIZE = 1 << 20
"""Largest CMS `parse_cms` accepts (1 MiB): Apple's are a few KiB (about 9 KiB with a timestamp)."""

MAX_HIGH_BIT_RUN = 511
"""Longest run of bytes with the high bit set `parse_cms` accepts: an OID sub-identifier asn1crypto decodes
is at most that run and its last byte (see below)."""

# asn1crypto decodes an OID sub-identifier into one Python int, byte by byte: quadratic in its
# length (a 64 KiB sub-identifier takes ~0.7 s, 1 MiB ~3 min). A sub-identifier is a run of bytes
# with the high bit set; real ones are a few bytes, and a run of 512 such bytes has probability
# 2^-512 in random data (keys, signatures), so refusing any such run costs no real signature.
_LONG_HIGH_BIT_RUN = re.compile(rb"[\x80-\xff]{%d}" % (MAX_HIGH_BIT_RUN + 1))

MAX_OID_BYTES = 64
"""Longest OID `parse_cms` reads a value from (the longest registered OIDs take about 30 bytes)."""


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


def _check_oid_size(oid_value: Any) -> None:
    size = len(oid_value.contents or b"")
    if size > MAX_OID_BYTES:
        raise SignatureError(f"an object identifier of {size} bytes (at most {MAX_OID_BYTES} are accepted)")


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
    except PLIST_ERRORS as exc:
        raise SignatureError(f"CDHashes attribute is not a plist: {describe_error(exc)}") from exc
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


def _match_signer(sid: Any, certs: Sequence[ParsedCertificate]) -> tuple[str, ParsedCertificate | None]:
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
    certs: list[ParsedCertificate] = []
    raw_certs = signed_data["certificates"]
    for index, choice in enumerate(raw_certs or []):
        if choice.name != "certificate":
            continue  # attribute certificates and other formats are not part of a code signature's chain
        der = bytes(choice.chosen.dump())
        if der not in source:
            raise SignatureError(f"embedded certificate #{index} is not DER-encoded")
        try:
            certs.append(load_certificate(der))
        except SignatureError as exc:
            raise SignatureError(f"embedded certificate #{index}: {exc}") from exc

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
                signing_time = unix_seconds(_single_value(attr, "signing-time").native)
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
        gen_time=unix_seconds(tst["gen_time"].native),
        hash_algorithm=_oid_name(imprint["hash_algorithm"]["algorithm"]),
        hashed_message=bytes(imprint["hashed_message"].native),
        serial=int(tst["serial_number"].native),
        policy=_oid_dotted(tst["policy"]),
        signed_data=signed,
    )


def _bounded(der: bytes) -> bytes:
    """The CMS bytes, blob header stripped, once they are within every limit asn1crypto needs."""
    if not isinstance(der, bytes | bytearray | memoryview):
        raise SignatureError(f"CMS must be bytes, not {type(der).__name__}")
    data = bytes(der)
    if len(data) >= BLOB_HEADER.size and int.from_bytes(data[:4], "big") == CSMAGIC_BLOBWRAPPER:
        length = int.from_bytes(data[4:8], "big")
        if length < BLOB_HEADER.size or length > len(data):
            raise SignatureError(f"CMS blob length {length} does not fit its {len(data)} bytes")
        data = data[BLOB_HEADER.size : length]
    if not data:
        raise SignatureError("empty CMS signature (ad-hoc signatures carry no CMS)")
    if len(data) > MAX_CMS_SIZE:
        raise SignatureError(f"CMS of {len(data)} bytes exceeds the {MAX_CMS_SIZE}-byte limit")
    if _LONG_HIGH_BIT_RUN.search(data):
        raise SignatureError(
            f"CMS holds {MAX_HIGH_BIT_RUN + 1} consecutive bytes with the high bit set (a runaway OID sub-identifier)"
        )
    if data[0] != 0x30:
        raise SignatureError(f"CMS does not start with a DER SEQUENCE (first byte 0x{data[0]:02x})")
    return data


def parse_cms(der: bytes) -> CMSSignature:
    """Parse the CMS blob of a code signature: the payload after the 8-byte blob header, or the
    whole blob (magic 0xfade0b01, which is then checked and stripped).

    Raises SignatureError for anything that is not a well-formed CMS SignedData (an ad-hoc
    signature's empty CMS blob included), with asn1crypto's error as its cause.
    """
    data = _bounded(der)
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
    except ASN1_ERRORS as exc:
        raise SignatureError(f"malformed CMS: {describe_error(exc)}") from exc
