"""The settings santacore reads: each TOML key (Santa's key names, spec §1.2, §2, §3.1, §8), its parser and its checks.

Keys ("P" = Santa reads it from a profile, "S" = Santa takes it from the sync server only,
"-" = santacore's own):

================================  =========================================  =====================  ===
TOML key                          `Config` attribute                         default                src
================================  =========================================  =====================  ===
ClientMode                        client_mode (`ClientMode`)                 1 (MONITOR)            P
SyncBaseURL                       sync_base_url (ends with "/")              None                   P
MachineID                         machine_id                                 None                   P
MachineIDPlist / MachineIDKey     machine_id_plist / machine_id_key          None                   P
MachineOwner                      machine_owner                              None                   P
MachineOwnerPlist / ...Key        machine_owner_plist / machine_owner_key    None                   P
EnableBundles                     enable_bundles                             false                  S
EnableTransitiveRules             enable_transitive_rules                    false                  P
EnableAllEventUpload              enable_all_event_upload                    false                  P
DisableUnknownEventUpload         disable_unknown_event_upload               false                  P
EnableBadSignatureProtection      enable_bad_signature_protection            false                  P
EnablePageZeroProtection          enable_page_zero_protection                true                   P
FailClosed                        fail_closed                                false                  P
AllowedPathRegex                  allowed_path_regex (compiled)              None                   P
BlockedPathRegex                  blocked_path_regex (compiled)              None                   P
StaticRules                       static_rules (tuple of plain dicts)        ()                     P
FullSyncInterval                  full_sync_interval (seconds, >= 60)        600                    S
SyncEnableCleanSyncEventUpload    sync_enable_clean_sync_event_upload        true                   P
ServerAuthRootsFile               server_auth_roots_file                     None                   P
ServerAuthRootsData               server_auth_roots_data (PEM text)          None                   P
ClientAuthCertificateFile         client_auth_certificate_file               None                   P
ClientAuthCertificatePassword     client_auth_certificate_password           None                   P
SyncClientContentEncoding         sync_client_content_encoding               deflate                P
SyncEnableProtoTransfer           sync_enable_proto_transfer                 false                  P
SyncProtocol (santacore)          sync_protocol                              northpolesec           -
SyncExtraHeaders                  sync_extra_headers (table of strings)      {}                     P
SyncTimeBudget (santacore)        sync_time_budget (seconds, >= 1)           1800                   -
RuleDownloadMaxPages (santacore)  rule_download_max_pages                    20000                  -
RuleDownloadMaxRules (santacore)  rule_download_max_rules                    2000000                -
RuleDownloadMaxBytes (santacore)  rule_download_max_bytes                    1073741824 (1 GiB)     -
EnablePushNotifications           enable_push_notifications                  true                   P
PushServerAllowlist (santacore)   push_server_allowlist (tuple of hosts)     None: SyncBaseURL host -
StateDirectory                    state_directory                            see below              -
================================  =========================================  =====================  ===

Decisions (where santacore is stricter than, or differs from, Santa):

* Santa silently ignores a value of the wrong type; a parser here rejects it (`InvalidValue`,
  which `Config.from_values` turns into a `ConfigError` naming the file and the key).
* ClientMode also accepts the names ``"MONITOR"``, ``"LOCKDOWN"``, ``"STANDALONE"`` (any case).
* The deprecated aliases ``EnableTransitiveWhitelisting``, ``WhitelistRegex`` and ``BlacklistRegex``
  are accepted (`Key.aliases`); giving an alias together with its new key is an error. Profiles
  follow Santa's precedence (`Key.alias_wins`: the old transitive key wins, the new regex keys win).
* Path regexes are compiled as Santa compiles profile regexes: ``^`` is prepended unless the
  pattern starts with it. They are compiled with Python's `re`, not ICU, so ICU-only syntax is an
  error. An empty pattern (which would match every path) is an error. They are matched with a
  time limit (`santacore.santad.policy.PATH_REGEX_TIMEOUT`; a match that runs out counts as none).
* StaticRules entries are validated here as santad validates rules (`Rule.from_wire`): a bad one
  is an error naming the file, ``StaticRules[i]`` and the entry. They are kept as written.
* An empty SyncBaseURL means "not set", as in Santa. It must be http(s) with a host and no query or
  fragment (the stage paths are resolved relative to it).
* SyncClientContentEncoding: ``deflate``/``gzip``/``none`` in any case; Santa turns anything else
  into deflate, santacore rejects it. SyncExtraHeaders may not set the headers Santa never lets
  them override (`PROTECTED_HEADERS`, compared case-insensitively as [N] does).
* FullSyncInterval below 60 s is an error (the floor of spec §1.2; clamping a server-sent value
  is the sync code's job).
* MachineID, when set, must be usable verbatim in the stage URLs: non-empty, without ``/``,
  ``?``, ``#``, whitespace or control characters.
* SyncTimeBudget bounds one whole sync (every stage, attempt and retry sleep); the RuleDownloadMax* keys
  bound one rule download (pages, rules, decoded response bytes). A bound hit fails the sync with a
  message naming the key, and nothing is applied. The defaults take 1,000,000 real rules (1,000 pages,
  ~250 MB of JSON) with room to spare.
* EnablePushNotifications (alias ``EnableNATS``, [N]'s older name) lets a preflight start push notifications.
  PushServerAllowlist names the push servers santacore may connect to: host names (exact, any case) or
  ``.domain`` entries (any host under it); without it, only SyncBaseURL's host. Santa's release builds accept
  only ``tls://….push.northpole.security:443``; santacore accepts whatever this key allows.
* Relative paths (and ``~``) are resolved against the file's directory (and $HOME).
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import urlsplit

from santacore.santad.decisions import ClientMode

__all__ = [
    "DEFAULT_RULE_DOWNLOAD_MAX_BYTES",
    "DEFAULT_RULE_DOWNLOAD_MAX_PAGES",
    "DEFAULT_RULE_DOWNLOAD_MAX_RULES",
    "DEFAULT_SYNC_TIME_BUDGET",
    "KEYS",
    "KNOWN_NAMES",
    "MANAGED_CLIENT_PAYLOAD",
    "PROTECTED_HEADERS",
    "SANTA_DOMAINS",
    "SANTA_KEYS_NOT_USED",
    "ContentEncoding",
    "InvalidValue",
    "Key",
    "KeyContext",
    "SyncProtocol",
    "parse_bool",
    "parse_client_mode",
    "toml_value",
    "unknown_key_reason",
]

SANTA_DOMAINS: Final = ("com.northpolesec.santa", "com.google.santa")
MANAGED_CLIENT_PAYLOAD: Final = "com.apple.ManagedClient.preferences"

# Headers SyncExtraHeaders may not set (spec §2.2).
PROTECTED_HEADERS: Final = frozenset(
    h.lower()
    for h in (
        "Content-Encoding",
        "Content-Length",
        "Content-Type",
        "Connection",
        "Host",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "WWW-Authenticate",
    )
)

# Santa's profile keys ([G] and [N] SNTConfigurator) that santacore reads but does not use.
SANTA_KEYS_NOT_USED: Final = frozenset(
    """AboutText BannedBlockMessage BannedUSBBlockMessage BlockUSBMount ClientAuthCertificateCN
    ClientAuthCertificateIssuerCN DismissText EnableAPNS EnableBackwardsCompatibleContentEncoding
    EnableDebugLogging EnableForkAndExitLogging EnableMachineIDDecoration
    EnableNotificationSilences EnableSilentMode EnableSilentTTYMode EnableStandalonePasswordFallback
    EnableStatsCollection EnableSystemExtension EnableSysxCache EnableTelemetryExport EnabledProcessAnnotations
    EntitlementsPrefixFilter EntitlementsTeamIDFilter EventDetailText EventDetailURL EventLogPath
    EventLogType FCMAPIKey FCMEntity FCMProject FileAccessBlockMessage FileAccessGlobalLogsPerSec
    FileAccessGlobalWindowSizeSec FileAccessPolicy FileAccessPolicyPlist FileAccessPolicyUpdateIntervalSec
    FileChangesPrefixFilters FileChangesRegex FunFontsOnSpecificDays IgnoreOtherEndpointSecurityClients
    MachineOwnerGroups MachineOwnerGroupsKey MetricExportInterval MetricExportTimeout MetricExtraLabels
    MetricFormat MetricURL ModeNotificationLockdown ModeNotificationMonitor ModeNotificationStandalone
    MoreInfoURL OnStartUSBOptions OverrideFileAccessAction RemountUSBBlockMessage RemountUSBMode
    SpoolDirectory SpoolDirectoryEventMaxFlushTimeSec SpoolDirectoryFileSizeThresholdKB
    SpoolDirectorySizeThresholdMB StatsOrganizationID SyncEnableProtoTransfer SyncProxyConfiguration
    Telemetry TelemetryExportBatchThresholdSizeMB TelemetryExportIntervalSec TelemetryExportMaxFilesPerBatch
    TelemetryExportTimeoutSec UnknownBlockMessage""".split()
)

_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_URL_UNSAFE = re.compile(r"[\s/?#\x00-\x1f\x7f]")
_UINT32_MAX = 2**32 - 1

# santacore's own bounds on one sync (issue: no hostile server may hold a sync for ever or fill memory).
DEFAULT_SYNC_TIME_BUDGET: Final = 1800
"""Seconds one whole sync may take, every stage, attempt and retry sleep included: 30 minutes."""
DEFAULT_RULE_DOWNLOAD_MAX_PAGES: Final = 20_000
DEFAULT_RULE_DOWNLOAD_MAX_RULES: Final = 2_000_000
DEFAULT_RULE_DOWNLOAD_MAX_BYTES: Final = 1024 * 1024 * 1024
"""One rule download's bounds: 1,000,000 real rules take 1,000 pages of Santa's 1,000 and ~250 MB of JSON."""


class SyncProtocol(StrEnum):
    """SyncProtocol (santacore's key): which Santa release's wire form to speak (spec §0, §9.1).
    The values name `santacore.santad.events.Variant`s."""

    GOOGLE = "google"  # final google/santa release (archived): protobuf-JSON
    GOOGLE_2024_6 = "google-2024.6"
    GOOGLE_JSON = "google-json"  # releases up to 2024.5: NSJSONSerialization bodies
    NORTHPOLESEC = "northpolesec"  # the maintained Santa: the default


class ContentEncoding(StrEnum):
    """SyncClientContentEncoding: how request bodies are compressed (spec §2.2)."""

    DEFLATE = "deflate"  # zlib (RFC 1950) stream, Santa's default
    GZIP = "gzip"
    NONE = "none"


@dataclass(frozen=True)
class KeyContext:
    """Where a value comes from: `where` names it in errors, relative paths resolve against `base_dir`."""

    where: str
    base_dir: Path | None
    environ: Mapping[str, str]


class InvalidValue(Exception):
    """A bad value; `sub` extends the key name (".Header", "[2]")."""

    def __init__(self, message: str, sub: str = "") -> None:
        super().__init__(message)
        self.sub = sub


def _show(value: Any) -> str:
    """A value as the TOML text a person wrote, for error messages."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return repr(value)
    return type(value).__name__


def _expect_str(value: Any, what: str = "a string") -> str:
    if not isinstance(value, str):
        raise InvalidValue(f"expected {what}, got {_show(value)}")
    return value


def parse_bool(value: Any, ctx: KeyContext) -> bool:
    if not isinstance(value, bool):
        raise InvalidValue(f"expected true or false, got {_show(value)}")
    return value


def _p_str(value: Any, ctx: KeyContext) -> str:
    return _expect_str(value)


def _p_nonempty(value: Any, ctx: KeyContext) -> str:
    text = _expect_str(value)
    if not text:
        raise InvalidValue("must not be empty (leave the key out instead)")
    return text


def parse_client_mode(value: Any, ctx: KeyContext) -> ClientMode:
    if isinstance(value, int) and not isinstance(value, bool) and value in {int(m) for m in ClientMode}:
        return ClientMode(value)
    if isinstance(value, str) and value.upper() in ClientMode.__members__:
        return ClientMode[value.upper()]
    raise InvalidValue(f"expected 1 (MONITOR), 2 (LOCKDOWN) or 3 (STANDALONE), got {_show(value)}")


def _p_url(value: Any, ctx: KeyContext) -> str | None:
    url = _expect_str(value, "an http(s) URL")
    if not url:
        return None  # Santa: an empty SyncBaseURL is no SyncBaseURL
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError as exc:
        raise InvalidValue(f"not a valid URL: {url!r} ({exc})") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or re.search(r"\s", url):
        raise InvalidValue(f"expected an http(s) URL with a host, got {url!r}")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise InvalidValue(f"must not have a query or fragment (stage paths are appended to it), got {url!r}")
    return url if url.endswith("/") else url + "/"


def _p_machine_id(value: Any, ctx: KeyContext) -> str:
    mid = _p_nonempty(value, ctx)
    if _URL_UNSAFE.search(mid):
        raise InvalidValue(f"must not contain '/', '?', '#', whitespace or control characters, got {_show(mid)}")
    return mid


def _p_regex(value: Any, ctx: KeyContext) -> re.Pattern[str]:
    pattern = _expect_str(value, "a regular expression string")
    if not pattern:
        raise InvalidValue("an empty pattern would match every path; leave the key out instead")
    if not pattern.startswith("^"):
        pattern = "^" + pattern  # what Santa does to every profile regex
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InvalidValue(f"invalid regular expression {value!r}: {exc}") from None


def _p_static_rules(value: Any, ctx: KeyContext) -> tuple[dict[str, Any], ...]:
    if not isinstance(value, list):
        raise InvalidValue(f"expected an array of tables ([[StaticRules]]), got {_show(value)}")
    from santacore.santad.rules import Rule, RuleError

    for i, rule in enumerate(value):
        if not isinstance(rule, dict):
            raise InvalidValue(f"expected a table, got {_show(rule)}", f"[{i}]")
        # Validated as santad validates them (`Rule.from_wire`), so a bad entry is named here
        # rather than failing later in `check` without naming the file or the key.
        try:
            Rule.from_wire(rule)
        except RuleError as exc:
            entry = ", ".join(f"{k} = {_show(v)}" for k, v in rule.items())
            raise InvalidValue(f"invalid rule {{{entry}}}: {exc}", f"[{i}]") from None
    return tuple(copy.deepcopy(rule) for rule in value)


def _p_interval(value: Any, ctx: KeyContext) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidValue(f"expected a whole number of seconds, got {_show(value)}")
    if not 60 <= value <= _UINT32_MAX:
        raise InvalidValue(f"expected at least 60 seconds (and at most {_UINT32_MAX}), got {value}")
    return value


def _positive_int(value: Any, low: int, high: int, unit: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidValue(f"expected a whole number of {unit}, got {_show(value)}")
    if not low <= value <= high:
        raise InvalidValue(f"expected {low} to {high} {unit}, got {value}")
    return value


def _p_budget(value: Any, ctx: KeyContext) -> int:
    return _positive_int(value, 1, 7 * 24 * 3600, "seconds")


def _p_max_pages(value: Any, ctx: KeyContext) -> int:
    return _positive_int(value, 1, _UINT32_MAX, "pages")


def _p_max_rules(value: Any, ctx: KeyContext) -> int:
    return _positive_int(value, 1, _UINT32_MAX, "rules")


def _p_max_bytes(value: Any, ctx: KeyContext) -> int:
    return _positive_int(value, 1024, 2**40, "bytes")


def _p_hosts(value: Any, ctx: KeyContext) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise InvalidValue(f"expected an array of host names, got {_show(value)}")
    hosts = []
    for i, item in enumerate(value):
        host = _expect_str(item, "a host name")
        if not host or re.search(r"[\s/:@?#]", host):
            raise InvalidValue(f"expected a host name or .domain, got {_show(item)}", f"[{i}]")
        hosts.append(host.lower())
    return tuple(hosts)


def _p_path(value: Any, ctx: KeyContext) -> Path:
    text = _p_nonempty(value, ctx)
    if "\x00" in text:
        raise InvalidValue("must not contain a NUL character")
    if text == "~" or text.startswith("~/"):
        home = ctx.environ.get("HOME") or str(Path.home())
        text = home + text[1:]
    path = Path(text)
    if not path.is_absolute() and ctx.base_dir is not None:
        path = ctx.base_dir / path
    return path


def _p_pem(value: Any, ctx: KeyContext) -> str:
    text = _expect_str(value, "PEM text")
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise InvalidValue("expected PEM text with at least one -----BEGIN CERTIFICATE----- block")
    return text


def _p_encoding(value: Any, ctx: KeyContext) -> ContentEncoding:
    text = _expect_str(value, '"deflate", "gzip" or "none"')
    try:
        return ContentEncoding(text.lower())
    except ValueError:
        raise InvalidValue(f'expected "deflate", "gzip" or "none", got {_show(value)}') from None


def _p_protocol(value: Any, ctx: KeyContext) -> SyncProtocol:
    choices = ", ".join(f'"{p.value}"' for p in SyncProtocol)
    text = _expect_str(value, choices)
    try:
        return SyncProtocol(text.lower())
    except ValueError:
        raise InvalidValue(f"expected one of {choices}, got {_show(value)}") from None


def _p_headers(value: Any, ctx: KeyContext) -> Mapping[str, str]:
    if not isinstance(value, dict):
        raise InvalidValue(f"expected a table of header names to strings, got {_show(value)}")
    for name, text in value.items():
        if not _HEADER_NAME.fullmatch(name):
            raise InvalidValue(f"not a valid HTTP header name: {name!r}", f".{name}")
        if name.lower() in PROTECTED_HEADERS:
            raise InvalidValue("Santa never lets SyncExtraHeaders set this header", f".{name}")
        if not isinstance(text, str):
            raise InvalidValue(f"expected a string, got {_show(text)}", f".{name}")
        if any(ch in text for ch in "\r\n\x00"):
            raise InvalidValue("header values must not contain CR, LF or NUL", f".{name}")
    return MappingProxyType(dict(value))


@dataclass(frozen=True)
class Key:
    """One setting: its TOML key (Santa's name), its `Config` attribute and its parser."""

    name: str
    attr: str
    parse: Callable[[Any, KeyContext], Any]
    santa_type: type | tuple[type, ...] | None  # what Santa reads from a profile; None: not a profile key
    aliases: tuple[str, ...] = ()
    alias_wins: bool = False  # Santa's precedence when a profile has both names


_NUMBER = (bool, int, float)
KEYS: Final = (
    Key("ClientMode", "client_mode", parse_client_mode, _NUMBER),
    Key("SyncBaseURL", "sync_base_url", _p_url, str),
    Key("MachineID", "machine_id", _p_machine_id, str),
    Key("MachineIDPlist", "machine_id_plist", _p_path, str),
    Key("MachineIDKey", "machine_id_key", _p_nonempty, str),
    Key("MachineOwner", "machine_owner", _p_str, str),
    Key("MachineOwnerPlist", "machine_owner_plist", _p_path, str),
    Key("MachineOwnerKey", "machine_owner_key", _p_nonempty, str),
    Key("EnableBundles", "enable_bundles", parse_bool, None),
    Key(
        "EnableTransitiveRules", "enable_transitive_rules", parse_bool, _NUMBER, ("EnableTransitiveWhitelisting",), True
    ),
    Key("EnableAllEventUpload", "enable_all_event_upload", parse_bool, _NUMBER),
    Key("DisableUnknownEventUpload", "disable_unknown_event_upload", parse_bool, _NUMBER),
    Key("EnableBadSignatureProtection", "enable_bad_signature_protection", parse_bool, _NUMBER),
    Key("EnablePageZeroProtection", "enable_page_zero_protection", parse_bool, _NUMBER),
    Key("FailClosed", "fail_closed", parse_bool, _NUMBER),  # a CEL rule that fails blocks (addendum §6)
    Key("AllowedPathRegex", "allowed_path_regex", _p_regex, str, ("WhitelistRegex",)),
    Key("BlockedPathRegex", "blocked_path_regex", _p_regex, str, ("BlacklistRegex",)),
    Key("StaticRules", "static_rules", _p_static_rules, list),
    Key("FullSyncInterval", "full_sync_interval", _p_interval, None),
    Key("SyncEnableCleanSyncEventUpload", "sync_enable_clean_sync_event_upload", parse_bool, _NUMBER),
    Key("ServerAuthRootsFile", "server_auth_roots_file", _p_path, str),
    Key("ServerAuthRootsData", "server_auth_roots_data", _p_pem, bytes),
    Key("ClientAuthCertificateFile", "client_auth_certificate_file", _p_path, str),
    Key("ClientAuthCertificatePassword", "client_auth_certificate_password", _p_str, str),
    Key("SyncClientContentEncoding", "sync_client_content_encoding", _p_encoding, str),
    Key("SyncEnableProtoTransfer", "sync_enable_proto_transfer", parse_bool, _NUMBER),  # addendum §3
    Key("SyncProtocol", "sync_protocol", _p_protocol, None),  # santacore's own: not in profiles
    Key("SyncExtraHeaders", "sync_extra_headers", _p_headers, dict),
    Key("SyncTimeBudget", "sync_time_budget", _p_budget, None),  # santacore's own bounds: not in profiles
    Key("RuleDownloadMaxPages", "rule_download_max_pages", _p_max_pages, None),
    Key("RuleDownloadMaxRules", "rule_download_max_rules", _p_max_rules, None),
    Key("RuleDownloadMaxBytes", "rule_download_max_bytes", _p_max_bytes, None),
    Key("EnablePushNotifications", "enable_push_notifications", parse_bool, _NUMBER, ("EnableNATS",)),
    Key("PushServerAllowlist", "push_server_allowlist", _p_hosts, None),
    Key("StateDirectory", "state_directory", _p_path, None),
)
KNOWN_NAMES: Final = frozenset(name for spec in KEYS for name in (spec.name, *spec.aliases))


def toml_value(value: Any) -> Any:
    """A `Config` attribute's value as its TOML value (None stays None: TOML has no null)."""
    if isinstance(value, ClientMode):
        return int(value)
    if isinstance(value, re.Pattern):
        return value.pattern
    if isinstance(value, ContentEncoding | Path):
        return str(value)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):
        return [copy.deepcopy(v) for v in value]
    return value


def unknown_key_reason(key: str) -> str:
    """Why `key` is not a setting: a Santa key santacore does not use, or unknown (maybe a typo)."""
    if key in SANTA_KEYS_NOT_USED:
        return "a Santa setting santacore does not use"
    names = {n.lower(): n for n in (*KNOWN_NAMES, *SANTA_KEYS_NOT_USED)}
    close = difflib.get_close_matches(key.lower(), names, n=1, cutoff=0.8)
    hint = f" (did you mean {names[close[0]]}?)" if close else ""
    return f"not a Santa or santacore setting{hint}"
