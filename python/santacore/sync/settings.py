"""`TransportSettings`: everything the sync transport is configured with (spec §2), built from a Config.

`TransportSettings.from_config` is the one place a Config becomes transport settings."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from santacore._core import __version__
from santacore.errors import SyncError
from santacore.sync.retry import RetryPolicy
from santacore.sync.tls import ClientCert, StrPath

if TYPE_CHECKING:
    from santacore.config.settings import Config

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "DEFAULT_USER_AGENT", "TransportSettings"]

DEFAULT_USER_AGENT: Final = f"santactl-sync/{__version__}"
DEFAULT_MAX_RESPONSE_BYTES: Final = 32 * 1024 * 1024


@dataclass(frozen=True)
class TransportSettings:
    """How a `Transport` talks to the sync server. Change a field with `dataclasses.replace`.

    Trust (§2.6): system roots, unless `ca_file` (a PEM path; wins) or `ca_data` (PEM text) names the *only*
    trust anchors, or `ssl_context` is used as is (then the client certificate belongs in it). `client_cert`:
    ``(cert_pem, key_pem_or_None)``, or one path to a PKCS#12 file (or a PEM holding certificate and key),
    unlocked with `client_cert_password`. `timeout` is each attempt's one deadline, `xsrf_timeout` the XSRF
    request's; `max_response_bytes` bounds a response body, on the wire and decoded. The `Transport` validates
    the values (ValueError) and loads the TLS material (SyncError)."""

    base_url: str
    content_encoding: str = "deflate"
    extra_headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    user_agent: str = DEFAULT_USER_AGENT
    ca_file: StrPath | None = None
    ca_data: str | None = None
    ssl_context: ssl.SSLContext | None = None
    client_cert: ClientCert | None = None
    client_cert_password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    xsrf_timeout: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    proxy: str | None = None

    @classmethod
    def from_config(cls, config: Config) -> TransportSettings:
        """SyncBaseURL, SyncClientContentEncoding, SyncExtraHeaders, ServerAuthRootsFile (else ServerAuthRootsData)
        and ClientAuthCertificateFile/Password; the rest at Santa's defaults. SyncError when SyncBaseURL is unset."""
        if not config.sync_base_url:
            raise SyncError("SyncBaseURL is not set: there is no sync server to talk to")
        return cls(
            base_url=config.sync_base_url,
            content_encoding=str(config.sync_client_content_encoding),
            extra_headers=config.sync_extra_headers,
            ca_file=config.server_auth_roots_file,
            ca_data=config.server_auth_roots_data if config.server_auth_roots_file is None else None,
            client_cert=config.client_auth_certificate_file,
            client_cert_password=config.client_auth_certificate_password,
        )

    @property
    def custom_tls(self) -> bool:
        """Whether any trust or client-certificate setting departs from the system defaults."""
        return any(v is not None for v in (self.ca_file, self.ca_data, self.ssl_context, self.client_cert))
