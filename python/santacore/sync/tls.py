"""TLS material for the sync transport (spec §2.6): the client `ssl.SSLContext` and the client certificate.

Trust: system roots, or a CA bundle that replaces them; TLS 1.2 or later. The client certificate: PEM files or a
PKCS#12 identity. Unreadable or invalid material is a `SyncError` naming the file."""

from __future__ import annotations

import os
import secrets
import ssl
import tempfile
from pathlib import Path

from santacore.errors import SyncError

__all__ = ["ClientCert", "StrPath", "os_reason", "ssl_context"]

StrPath = str | os.PathLike[str]
# (certificate PEM, key PEM or None when the certificate file holds the key), or one file:
# PKCS#12 (Santa's ClientAuthCertificateFile) or a PEM holding certificate and key.
ClientCert = tuple[StrPath, StrPath | None] | StrPath


def ssl_context(
    *,
    ca_file: StrPath | None = None,
    ca_data: str | None = None,
    client_cert: ClientCert | None = None,
    client_cert_password: str | None = None,
) -> ssl.SSLContext:
    """A client TLS context as Santa's session evaluates trust (§2.6).

    With `ca_file` (PEM path; wins over `ca_data`) or `ca_data` (PEM text) those certificates are
    the *only* trust anchors; otherwise the system's (OpenSSL's default paths, else certifi's bundle
    where the platform has none). `client_cert` is presented when the server asks. Unreadable or
    invalid material raises `SyncError` naming the file.
    """
    try:
        if ca_file is not None:
            ctx = ssl.create_default_context(cafile=os.fspath(ca_file))
        elif ca_data is not None:
            ctx = ssl.create_default_context(cadata=ca_data)
        else:
            ctx = _system_trust_context()
    except (OSError, ssl.SSLError, ValueError) as exc:
        what = f"server CA bundle {os.fspath(ca_file)}" if ca_file is not None else "server CA certificates (PEM data)"
        raise SyncError(f"cannot load {what}: {os_reason(exc)}") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # MOLAuthenticatingURLSession: kTLSProtocol12
    if client_cert is not None:
        _load_client_cert(ctx, client_cert, client_cert_password)
    return ctx


def _system_trust_context() -> ssl.SSLContext:
    paths = ssl.get_default_verify_paths()
    if (paths.cafile and os.path.isfile(paths.cafile)) or (paths.capath and os.path.isdir(paths.capath)):
        return ssl.create_default_context()
    import certifi  # a dependency of httpx; used only where OpenSSL has no system store

    return ssl.create_default_context(cafile=certifi.where())


def _load_client_cert(ctx: ssl.SSLContext, client_cert: ClientCert, password: str | None) -> None:
    if isinstance(client_cert, tuple):
        cert_path, key_path = client_cert
        _load_pem_chain(ctx, cert_path, key_path, password)
        return
    path = os.fspath(client_cert)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SyncError(f"cannot read client certificate {path}: {os_reason(exc)}") from None
    if b"-----BEGIN" in data:
        _load_pem_chain(ctx, path, None, password)
    else:
        _load_pkcs12(ctx, path, data, password)


def _load_pem_chain(ctx: ssl.SSLContext, cert: StrPath, key: StrPath | None, password: str | None) -> None:
    try:
        # An empty password instead of None: OpenSSL would otherwise prompt on the terminal for an encrypted key.
        ctx.load_cert_chain(os.fspath(cert), os.fspath(key) if key is not None else None, password=password or "")
    except (OSError, ssl.SSLError) as exc:
        names = os.fspath(cert) + (f" / {os.fspath(key)}" if key is not None else "")
        raise SyncError(f"cannot load client certificate {names}: {os_reason(exc)}") from None


def _load_pkcs12(ctx: ssl.SSLContext, path: str, data: bytes, password: str | None) -> None:
    """Load a PKCS#12 identity (key, certificate, chain) into `ctx` via a private temporary PEM
    whose key is encrypted with a one-off password, so no plaintext key ever touches the disk."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    candidates = [password.encode("utf-8")] if password is not None else [None, b""]
    last: Exception | None = None
    for secret in candidates:
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, secret)
            break
        except (ValueError, TypeError) as exc:
            last = exc
    else:
        raise SyncError(f"cannot load client certificate {path}: wrong password or not PKCS#12 ({last})") from None
    if key is None or cert is None:
        missing = "private key" if key is None else "certificate"
        raise SyncError(f"cannot load client certificate {path}: the PKCS#12 file holds no {missing}")
    one_off = secrets.token_hex(16)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(one_off.encode("ascii")),
    )
    pem += cert.public_bytes(serialization.Encoding.PEM)
    pem += b"".join(c.public_bytes(serialization.Encoding.PEM) for c in extra)  # intermediates go along
    with tempfile.TemporaryDirectory(prefix="santacore-p12-") as tmp:  # created 0700
        pem_path = os.path.join(tmp, "identity.pem")
        fd = os.open(pem_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        try:
            ctx.load_cert_chain(pem_path, password=one_off)
        except ssl.SSLError as exc:
            raise SyncError(f"cannot load client certificate {path}: {os_reason(exc)}") from None


def os_reason(exc: BaseException) -> str:
    """A short human reason for an OSError or ssl.SSLError (also used for transport errors)."""
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).replace("_", " ").lower()
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
