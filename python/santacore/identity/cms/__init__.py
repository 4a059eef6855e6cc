"""The CMS signature of an Apple code signature, its certificate chain, and real verification.

An embedded code signature's SuperBlob slot 0x10000 (blob magic 0xfade0b01) holds, after the
8-byte blob header, a CMS ContentInfo/SignedData (BER with indefinite lengths, as Apple writes
it) whose content is *detached*: it is the CodeDirectory of slot 0, byte for byte. This package

* parses that SignedData (`parse`: `parse_cms`) into plain, immutable Python values — certificates,
  the signer, its algorithms, its signed attributes (content type, message digest, signing
  time, Apple's CDHashes plist ``1.2.840.113635.100.9.1`` and CDHashes2
  ``1.2.840.113635.100.9.2``) and an RFC 3161 timestamp token among its unsigned attributes;
* describes certificates the way Santa's MOLCertificate does (`certificates`: `CertificateInfo`,
  `certificate_info_from_file`) and orders them leaf → root (`signing_chain`, spec §7.3
  santacore guidance);
* verifies the signature for real (`verify`: `verify_cms`): the message digest against the
  CodeDirectory, the signer's signature over its signed attributes, every link of the chain,
  an anchor byte-identical to one of Apple's root certificates shipped in
  ``santacore/identity/apple_roots``, certificate validity at the signing time, the timestamp
  token and the CDHashes attribute.

The CMS structure is parsed with asn1crypto, certificates and signatures with ``cryptography``.
Malformed input raises `SignatureError` (a ValueError) whose cause is the library's own error; the
library errors that mean "malformed" are listed in `errors`, and anything else (a bug, a library
that changed) propagates unchanged rather than passing for a bad signature.
"""

from __future__ import annotations

from santacore.identity.cms.certificates import (
    APPLE_ROOTS_PACKAGE,
    DEVELOPMENT_SIGNING_OIDS,
    PRODUCTION_SIGNING_OIDS,
    AppleRoot,
    CertificateInfo,
    apple_roots,
    certificate_info,
    certificate_info_from_file,
    signing_chain,
)
from santacore.identity.cms.parse import (
    CDHASHES2_OID,
    CDHASHES_PLIST_OID,
    MAX_CMS_SIZE,
    TIMESTAMP_TOKEN_OID,
    CMSSignature,
    TimestampToken,
    parse_cms,
)
from santacore.identity.cms.verify import CMSVerification, verify_cms

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
