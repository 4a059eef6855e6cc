"""Which exceptions of asn1crypto and cryptography mean "malformed input", and how one reads in a SignatureError.

Only these are turned into `SignatureError` (with the library's exception as its cause). Anything else
raised while parsing or verifying — a bug of ours, or a library that changed — propagates as itself.
"""

from __future__ import annotations

from typing import Final

from cryptography.x509 import DuplicateExtension, InvalidVersion, UnsupportedGeneralNameType

# asn1crypto reports malformed or truncated BER/DER, unexpected tags, undecodable strings
# (UnicodeDecodeError) and its own limits (indefinite-length depth) as ValueError. Its TypeError and
# KeyError mean a caller misused its API, so they are not listed.
ASN1_ERRORS: Final = (ValueError,)

# cryptography's X.509 loader and its lazily parsed fields: ValueError for malformed DER;
# InvalidVersion, DuplicateExtension and UnsupportedGeneralNameType for DER it parses but refuses;
# TypeError from NameAttribute for a name value whose string type does not fit its OID. The
# asn1crypto half of a certificate fails with ASN1_ERRORS (ValueError), already listed.
CERTIFICATE_ERRORS: Final = (ValueError, TypeError, InvalidVersion, DuplicateExtension, UnsupportedGeneralNameType)


def describe_error(exc: BaseException) -> str:
    """The exception's type and first line, at most 200 characters (hostile input can make messages huge)."""
    text = str(exc).strip().splitlines()
    if not text:
        return type(exc).__name__
    first = text[0] if len(text[0]) <= 200 else text[0][:200] + "…"
    return f"{type(exc).__name__}: {first}"
