"""`TransportSettings`: everything the sync transport is configured with (spec §2), built from a Config.

`TransportSettings.from_config` is the one place a Config becomes transport settings."""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from santacore._core import __version__
from santacore.config.keys import (
    DEFAULT_RULE_DOWNLOAD_MAX_BYTES,
    DEFAULT_RULE_DOWNLOAD_MAX_PAGES,
    DEFAULT_RULE_DOWNLOAD_MAX_RULES,
    DEFAULT_SYNC_TIME_BUDGET,
)
from santacore.errors import SyncError
from santacore.sync.retry import RetryPolicy, santa_backoff
from santacore.sync.tls import ClientCert, StrPath

if TYPE_CHECKING:
    from santacore.config.settings import Config

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_MAX_RULES",
    "DEFAULT_MAX_RULE_BYTES",
    "DEFAULT_MAX_RULE_PAGES",
    "DEFAULT_SYNC_BUDGET",
    "DEFAULT_USER_AGENT",
    "RETRY_SCALE_ENV",
    "TransportSettings",
    "retry_policy_for",
]

DEFAULT_USER_AGENT: Final = f"santactl-sync/{__version__}"
DEFAULT_MAX_RESPONSE_BYTES: Final = 32 * 1024 * 1024
# The bounds' defaults live with their configuration keys (SyncTimeBudget, RuleDownloadMax*).
DEFAULT_SYNC_BUDGET: Final = float(DEFAULT_SYNC_TIME_BUDGET)
DEFAULT_MAX_RULE_PAGES: Final = DEFAULT_RULE_DOWNLOAD_MAX_PAGES
DEFAULT_MAX_RULES: Final = DEFAULT_RULE_DOWNLOAD_MAX_RULES
DEFAULT_MAX_RULE_BYTES: Final = DEFAULT_RULE_DOWNLOAD_MAX_BYTES
RETRY_SCALE_ENV: Final = "SANTACORE_SYNC_RETRY_SCALE"
"""For tests only: a factor (0..1) applied to Santa's retry sleeps, e.g. 0.001 turns 4–32 s into 4–32 ms."""


def retry_policy_for(config: Config, environ: Mapping[str, str] | None = None) -> RetryPolicy:
    """Santa's retry schedule for the configuration's SyncProtocol (§2.4): five attempts, sleeps of 4, 8, 16 and
    32 s; "northpolesec" stops at once on a 4xx other than 408/429, the google variants retry every failure.
    `SANTACORE_SYNC_RETRY_SCALE` (tests only; a number from 0 to 1) shortens the sleeps; SyncError for anything else."""
    env = os.environ if environ is None else environ
    stop_on_4xx = str(config.sync_protocol.value) == "northpolesec"
    text = env.get(RETRY_SCALE_ENV, "").strip()
    if not text:
        return RetryPolicy(stop_on_4xx=stop_on_4xx)
    try:
        scale = float(text)
    except ValueError:
        scale = -1.0
    if not 0 <= scale <= 1:
        raise SyncError(f"{RETRY_SCALE_ENV} must be a number from 0 to 1, got {text!r}")
    return RetryPolicy(stop_on_4xx=stop_on_4xx, delays=lambda attempt: santa_backoff(attempt) * scale)


@dataclass(frozen=True)
class TransportSettings:
    """How a `Transport` talks to the sync server. Change a field with `dataclasses.replace`.

    Trust (§2.6): system roots, unless `ca_file` (a PEM path; wins) or `ca_data` (PEM text) names the *only*
    trust anchors, or `ssl_context` is used as is (then the client certificate belongs in it). `client_cert`:
    ``(cert_pem, key_pem_or_None)``, or one path to a PKCS#12 file (or a PEM holding certificate and key),
    unlocked with `client_cert_password`. `timeout` is each attempt's one deadline, `xsrf_timeout` the XSRF
    request's; `max_response_bytes` bounds a response body, on the wire and decoded. `sync_budget` (seconds) bounds
    one whole full sync; `max_rule_pages`, `max_rules` and `max_rule_bytes` bound one rule download (a bound hit
    fails the stage and applies nothing). The `Transport` validates
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
    sync_budget: float = DEFAULT_SYNC_BUDGET
    max_rule_pages: int = DEFAULT_MAX_RULE_PAGES
    max_rules: int = DEFAULT_MAX_RULES
    max_rule_bytes: int = DEFAULT_MAX_RULE_BYTES

    @classmethod
    def from_config(cls, config: Config) -> TransportSettings:
        """SyncBaseURL, SyncClientContentEncoding, SyncExtraHeaders, ServerAuthRootsFile (else ServerAuthRootsData),
        ClientAuthCertificateFile/Password, the retry policy of SyncProtocol (`retry_policy_for`), santacore's
        bounds (SyncTimeBudget, RuleDownloadMaxPages/Rules/Bytes); the rest at Santa's defaults. SyncError when
        SyncBaseURL is unset."""
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
            retry=retry_policy_for(config),
            sync_budget=float(config.sync_time_budget),
            max_rule_pages=config.rule_download_max_pages,
            max_rules=config.rule_download_max_rules,
            max_rule_bytes=config.rule_download_max_bytes,
        )

    @property
    def custom_tls(self) -> bool:
        """Whether any trust or client-certificate setting departs from the system defaults."""
        return any(v is not None for v in (self.ca_file, self.ca_data, self.ssl_context, self.client_cert))
