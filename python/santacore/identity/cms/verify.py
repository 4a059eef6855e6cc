"""santacore's own verdict on a CMS code signature: message digest, signer signature, chain links,
anchor (a shipped Apple root), validity at the signing time, timestamp token and CDHashes attributes.

It is not Santa's (Santa asks the Security framework, which may complete chains from the system
keychain, check revocation and apply policies); it never claims more than it checked, and says why
in ``problems`` and ``notes``.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from asn1crypto import algos as _algos  # type: ignore[import-untyped,unused-ignore]
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa

from santacore.identity.cms.certificates import (
    CertificateInfo,
    ParsedCertificate,
    build_chain,
    iso_utc,
    shipped_roots,
)
from santacore.identity.cms.errors import ASN1_ERRORS, describe_error
from santacore.identity.cms.parse import CMSSignature
from santacore.identity.codesign.cs_blobs import (
    CDHASH_LEN,
    CS_HASHTYPE_SHA256_TRUNCATED,
    CSMAGIC_CODEDIRECTORY,
    HASH_TYPE_NAMES,
    digest,
)

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


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


@dataclass(frozen=True)
class _SignerAlgorithm:
    scheme: str
    """asn1crypto's name: rsassa_pkcs1v15, rsassa_pss, ecdsa, dsa, ed25519 or ed448."""
    hash_name: str
    pss: tuple[str, int] | None = None
    """RSASSA-PSS: (MGF1 hash, salt length)."""


def _signer_algorithm(sig: CMSSignature) -> _SignerAlgorithm:
    """The signer's signature algorithm; ValueError (asn1crypto's or ours) when it is unknown or malformed."""
    algorithm = _algos.SignedDigestAlgorithm.load(sig.signature_algorithm_der, strict=True)
    scheme = str(algorithm.signature_algo)
    if scheme != "rsassa_pss":
        try:
            return _SignerAlgorithm(scheme, str(algorithm.hash_algo))
        except ValueError:  # e.g. plain rsaEncryption: the hash is the SignerInfo's digest algorithm
            return _SignerAlgorithm(scheme, sig.digest_algorithm)
    # asn1crypto's hash_algo subscripts the parameters even when they are absent (a TypeError):
    # read them here, refusing what is not there.
    params = algorithm["parameters"]
    if not isinstance(params, _algos.RSASSAPSSParams):
        raise ValueError("RSASSA-PSS without its parameters")
    mgf = params["mask_gen_algorithm"]
    if mgf["algorithm"].native != "mgf1" or not isinstance(mgf["parameters"], _algos.DigestAlgorithm):
        raise ValueError("RSASSA-PSS without an MGF1 mask generation function")
    mgf_hash = str(mgf["parameters"]["algorithm"].native)
    return _SignerAlgorithm(
        scheme, str(params["hash_algorithm"]["algorithm"].native), (mgf_hash, int(params["salt_length"].native))
    )


def _verify_signer_signature(sig: CMSSignature, leaf: x509.Certificate, data: bytes) -> str | None:
    """None when the signature over ``data`` verifies with the leaf key, else the reason."""
    try:
        algorithm = _signer_algorithm(sig)
    except ASN1_ERRORS as exc:
        return f"unsupported signature algorithm {sig.signature_algorithm!r}: {describe_error(exc)}"
    scheme, hash_name = algorithm.scheme, algorithm.hash_name
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
        elif scheme == "rsassa_pss" and isinstance(key, rsa.RSAPublicKey) and algorithm.pss is not None:
            mgf_hash, salt_length = algorithm.pss
            if mgf_hash not in _HASHES:
                return f"unsupported PSS mask hash {mgf_hash!r}"
            pss = padding.PSS(mgf=padding.MGF1(_HASHES[mgf_hash]()), salt_length=salt_length)
            key.verify(sig.signature, data, pss, hash_algorithm)
        elif scheme == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(sig.signature, data, ec.ECDSA(hash_algorithm))
        elif scheme == "dsa" and isinstance(key, dsa.DSAPublicKey):
            key.verify(sig.signature, data, hash_algorithm)
        else:
            return f"signature algorithm {sig.signature_algorithm!r} does not match the leaf's {type(key).__name__}"
    except InvalidSignature:
        return "the signer's signature does not verify with the leaf certificate's key"
    except (UnsupportedAlgorithm, ValueError) as exc:  # a key or parameters cryptography cannot use
        return f"the signer's signature cannot be checked: {describe_error(exc)}"
    return None


def _verify_link(child: ParsedCertificate, parent: ParsedCertificate) -> str | None:
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
    except (UnsupportedAlgorithm, ValueError) as exc:  # a key, algorithm or parameters cryptography cannot use
        return f"cannot check that {_label(parent.info)} signed {_label(child.info)}: {describe_error(exc)}"
    return None


@dataclass
class _Checks:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _check_chain(chain: Sequence[ParsedCertificate], checks: _Checks) -> tuple[bool, str | None]:
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
    roots = shipped_roots()
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


def _check_validity(chain: Sequence[ParsedCertificate], when: int, source: str, checks: _Checks) -> bool:
    ok = True
    for cert in chain:
        if not cert.info.valid_at(when):
            ok = False
            checks.problems.append(
                f"{_label(cert.info)} was not valid at the {_TIME_SOURCES.get(source, source)} {iso_utc(when)} "
                f"(valid {cert.info.valid_from_iso} to {cert.info.valid_until_iso})"
            )
    return ok


def _digest(name: str, data: bytes) -> bytes | None:
    if name not in _HASHES:
        return None
    return hashlib.new(name, data).digest()


def _check_core(
    sig: CMSSignature, content: bytes, checks: _Checks, what: str
) -> tuple[bool, bool, list[ParsedCertificate]]:
    """Message digest and signer signature of ``sig`` over ``content``: (digest_ok, signature_ok, chain)."""
    chain = build_chain(sig.signer_certificate, sig.certificates)
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
    if len(code_directory) < 38 or int.from_bytes(code_directory[:4], "big") != CSMAGIC_CODEDIRECTORY:
        checks.notes.append("CDHashes attributes not checked: the content is not a CodeDirectory")
        return None
    hash_type = code_directory[37]
    if hash_type not in HASH_TYPE_NAMES:
        checks.notes.append(f"CDHashes attributes not checked: unknown CodeDirectory hash type {hash_type}")
        return None
    length = int.from_bytes(code_directory[4:8], "big")
    full = digest(hash_type, code_directory[:length])
    cdhash = full[:CDHASH_LEN]
    ok = True
    if sig.cdhashes is not None and cdhash not in sig.cdhashes:
        ok = False
        checks.problems.append(f"the CDHashes attribute does not list this CodeDirectory's cdhash {cdhash.hex()}")
    # CDHashes2 is not checked for a SHA-256-truncated CodeDirectory; its 20-byte cdhash is (CDHashes above).
    hash_name = HASH_TYPE_NAMES[hash_type]
    listed = sig.cdhashes2 is None or hash_type == CS_HASHTYPE_SHA256_TRUNCATED or (hash_name, full) in sig.cdhashes2
    if not listed:
        ok = False
        checks.problems.append(f"the CDHashes2 attribute does not list this CodeDirectory's {hash_name} {full.hex()}")
    return ok


def verify_cms(sig: CMSSignature, code_directory: bytes, *, at: int | None = None) -> CMSVerification:
    """Verify a code signature's CMS against its CodeDirectory (the bytes of SuperBlob slot 0).

    Certificate validity is checked at ``at`` when given, else at the timestamp token's
    genTime when the token verifies, else at the signing-time attribute; with none of these it
    is not checked (``validity_ok`` None, and a note). Never raises for a `CMSSignature` from
    `parse_cms`; SignatureError for a CMSSignature whose certificates cannot be parsed.
    """
    checks = _Checks()
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
