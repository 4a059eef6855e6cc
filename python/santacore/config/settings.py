"""santacore's settings: one TOML file with Santa's configuration key names (spec §1.2, §2, §3.1, §8).

`load_config` reads the file named by its argument, else by ``$SANTACORE_CONFIG``, else uses the
defaults; `read_profile` / `import_profile` turn Santa's own configuration profile (a
``.mobileconfig`` or a plist of keys) into the values of such a file, `render_toml` writes them as
TOML and `write_config` saves them. Nothing here prints: problems are `ConfigError` (a ValueError
whose message starts ``<file>: <key>: ``) or are listed in the returned objects.

Keys (TOML key = Santa's key; "P" = Santa reads it from a profile, "S" = Santa takes it from the
sync server only, "-" = santacore's own):

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
SyncProtocol (santacore)          sync_protocol                              google                 -
SyncExtraHeaders                  sync_extra_headers (table of strings)      {}                     P
StateDirectory                    state_directory                            see below              -
================================  =========================================  =====================  ===

Decisions (where santacore is stricter than, or differs from, Santa):

* Santa silently ignores a value of the wrong type; `load_config` rejects it. `read_profile`
  stays lenient like Santa and lists what it skipped, and why, in `ProfileImport.ignored`.
* ClientMode also accepts the names ``"MONITOR"``, ``"LOCKDOWN"``, ``"STANDALONE"`` (any case).
* The deprecated aliases ``EnableTransitiveWhitelisting``, ``WhitelistRegex`` and ``BlacklistRegex``
  are accepted; giving an alias together with its new key is an error. Profiles follow Santa's
  precedence (the old transitive key wins, the new regex keys win) and are written with new names.
* Path regexes are compiled as Santa compiles profile regexes: ``^`` is prepended unless the
  pattern starts with it. They are compiled with Python's `re`, not ICU, so ICU-only syntax is an
  error. An empty pattern (which would match every path) is an error.
* An empty SyncBaseURL means "not set", as in Santa. It must be http(s) with a host and no query or
  fragment (the stage paths are resolved relative to it).
* SyncClientContentEncoding: ``deflate``/``gzip``/``none`` in any case; Santa turns anything else
  into deflate, santacore rejects it. SyncExtraHeaders may not set the headers Santa never lets
  them override (`PROTECTED_HEADERS`, compared case-insensitively as [N] does).
* FullSyncInterval below 60 s is an error (the floor of spec §1.2; clamping a server-sent value
  is the sync code's job).
* EnableBundles and FullSyncInterval are sync-server settings in Santa; here they are local
  defaults that the sync's preflight answer overrides. A profile's values for them are not
  imported (Santa ignores them there).
* MachineID, when set, must be usable verbatim in the stage URLs: non-empty, without ``/``,
  ``?``, ``#``, whitespace or control characters. `Config.configured_machine_id` and
  `Config.configured_machine_owner` apply the MachineIDPlist / MachineOwnerPlist fallbacks.
* Relative paths (and ``~``) in the file are resolved against the file's directory (and $HOME).
* `Config` is frozen; its tables are read-only mappings, StaticRules entries are plain dicts (for
  the rules module to validate), and ClientAuthCertificatePassword and SyncExtraHeaders are left
  out of its repr.
* Unknown keys are kept, untouched, in `Config.extra` (Santa ignores unknown keys too) and are
  not an error; `Config.unknown_key_notes` says which are Santa settings santacore does not use
  and which look like typos, for the CLI to show.
* StateDirectory (where events.db, rules.db and sync-state.json live) defaults to
  ``/var/db/santacore`` when running as root (next to Santa's ``/var/db/santa``, the same on macOS
  and Linux), else ``$XDG_STATE_HOME/santacore`` (if that is an absolute path), else
  ``~/.local/state/santacore``.
* Signed (CMS) profiles are unwrapped with asn1crypto; the signature is *not* verified
  (`ProfileImport.signed` says so). Only payloads for ``com.northpolesec.santa`` and
  ``com.google.santa`` are read, and of the older ManagedClient form only the ``Forced`` settings
  (the only ones Santa reads).
"""

from __future__ import annotations

import copy
import difflib
import json
import os
import plistlib
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import urlsplit

from santacore.errors import SantacoreError
from santacore.santad.decisions import ClientMode

__all__ = [
    "CONFIG_ENV",
    "PROTECTED_HEADERS",
    "SANTA_DOMAINS",
    "SANTA_KEYS_NOT_USED",
    "Config",
    "ConfigError",
    "ContentEncoding",
    "default_state_directory",
    "load_config",
]

CONFIG_ENV: Final = "SANTACORE_CONFIG"
SANTA_DOMAINS: Final = ("com.northpolesec.santa", "com.google.santa")
MANAGED_CLIENT_PAYLOAD: Final = "com.apple.ManagedClient.preferences"
ROOT_STATE_DIRECTORY: Final = Path("/var/db/santacore")

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
    EnableDebugLogging EnableForkAndExitLogging EnableMachineIDDecoration EnableNATS
    EnableNotificationSilences EnableSilentMode EnableSilentTTYMode EnableStandalonePasswordFallback
    EnableStatsCollection EnableSystemExtension EnableSysxCache EnableTelemetryExport EnabledProcessAnnotations
    EntitlementsPrefixFilter EntitlementsTeamIDFilter EventDetailText EventDetailURL EventLogPath
    EventLogType FCMAPIKey FCMEntity FCMProject FailClosed FileAccessBlockMessage FileAccessGlobalLogsPerSec
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


class ConfigError(SantacoreError, ValueError):
    """A configuration file, profile or value is unusable; the message names the file and the key."""


class SyncProtocol(StrEnum):
    """SyncProtocol (santacore's key): which Santa release's wire form to speak (spec §0, §9.1).
    The values name `santacore.santad.events.Variant`s."""

    GOOGLE = "google"  # final google/santa release: protobuf-JSON (default)
    GOOGLE_2024_6 = "google-2024.6"
    GOOGLE_JSON = "google-json"  # releases up to 2024.5: NSJSONSerialization bodies
    NORTHPOLESEC = "northpolesec"


class ContentEncoding(StrEnum):
    """SyncClientContentEncoding: how request bodies are compressed (spec §2.2)."""

    DEFLATE = "deflate"  # zlib (RFC 1950) stream, Santa's default
    GZIP = "gzip"
    NONE = "none"


def default_state_directory(environ: Mapping[str, str] | None = None) -> Path:
    """Where events.db, rules.db and sync state live when StateDirectory is not set."""
    env = os.environ if environ is None else environ
    if os.geteuid() == 0:
        return ROOT_STATE_DIRECTORY
    xdg = env.get("XDG_STATE_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "santacore"
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".local" / "state" / "santacore"


@dataclass(frozen=True)
class Config:
    """Every setting santacore uses; build it with `load_config` or `Config.from_values`."""

    client_mode: ClientMode = ClientMode.MONITOR
    sync_base_url: str | None = None
    machine_id: str | None = None
    machine_id_plist: Path | None = None
    machine_id_key: str | None = None
    machine_owner: str | None = None
    machine_owner_plist: Path | None = None
    machine_owner_key: str | None = None
    enable_bundles: bool = False
    enable_transitive_rules: bool = False
    enable_all_event_upload: bool = False
    disable_unknown_event_upload: bool = False
    enable_bad_signature_protection: bool = False
    enable_page_zero_protection: bool = True
    allowed_path_regex: re.Pattern[str] | None = None
    blocked_path_regex: re.Pattern[str] | None = None
    static_rules: tuple[dict[str, Any], ...] = ()
    full_sync_interval: int = 600
    # Santa's default is false: a clean sync deletes queued events unsent (§1.6). santacore keeps
    # them and uploads them unless told otherwise, so a first (clean) sync never loses events.
    sync_enable_clean_sync_event_upload: bool = True
    server_auth_roots_file: Path | None = None
    server_auth_roots_data: str | None = None
    client_auth_certificate_file: Path | None = None
    client_auth_certificate_password: str | None = field(default=None, repr=False)
    sync_client_content_encoding: ContentEncoding = ContentEncoding.DEFLATE
    sync_protocol: SyncProtocol = SyncProtocol.GOOGLE
    sync_extra_headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), repr=False)
    state_directory: Path = field(default_factory=default_state_directory)
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    source: Path | None = field(default=None, compare=False)

    @property
    def events_db(self) -> Path:
        return self.state_directory / "events.db"

    @property
    def rules_db(self) -> Path:
        return self.state_directory / "rules.db"

    @property
    def sync_state_path(self) -> Path:
        return self.state_directory / "sync-state.json"

    @classmethod
    def from_values(
        cls,
        values: Mapping[str, Any],
        *,
        source: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Config:
        """Validate parsed TOML values (Santa key names) into a Config; `source` names the file."""
        env = os.environ if environ is None else environ
        ctx = _Context(str(source) if source is not None else "config", _base_dir(source), env)
        kwargs: dict[str, Any] = {}
        for spec in _KEYS:
            present = [name for name in (spec.name, *spec.aliases) if name in values]
            if len(present) > 1:
                raise ConfigError(f"{ctx.where}: {present[1]}: deprecated name of {spec.name}; give only one of them")
            if present:
                kwargs[spec.attr] = _parse(spec, present[0], values[present[0]], ctx)
        if "state_directory" not in kwargs:
            kwargs["state_directory"] = default_state_directory(env)
        extra = {k: copy.deepcopy(v) for k, v in values.items() if k not in _KNOWN_NAMES}
        src = Path(source) if source is not None else None
        return cls(**kwargs, extra=MappingProxyType(extra), source=src)

    def to_values(self) -> dict[str, Any]:
        """The TOML values of this Config (non-default settings, StateDirectory, extra keys)."""
        out: dict[str, Any] = {}
        defaults = Config(state_directory=Path())
        for spec in _KEYS:
            value = getattr(self, spec.attr)
            if spec.attr != "state_directory" and value == getattr(defaults, spec.attr):
                continue
            out[spec.name] = _dump(value)
        out.update(copy.deepcopy(dict(self.extra)))
        return out

    def unknown_key_notes(self) -> tuple[str, ...]:
        """One line per key in `extra`: a Santa setting santacore does not use, or an unknown key."""
        return tuple(f"{key}: {_unknown_key_reason(key)}" for key in self.extra)

    def configured_machine_id(self) -> str | None:
        """MachineID, else the string at MachineIDKey in the MachineIDPlist file (Santa's order, §2.1).
        None means "use the platform's ID"; that fallback is not a setting."""
        if self.machine_id:
            return self.machine_id
        return _plist_string(self.machine_id_plist, self.machine_id_key) or None

    def configured_machine_owner(self) -> str:
        """MachineOwner, else the string at MachineOwnerKey in MachineOwnerPlist, else "" (§2.1)."""
        if self.machine_owner is not None:
            return self.machine_owner
        return _plist_string(self.machine_owner_plist, self.machine_owner_key) or ""


# --- value parsing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    where: str
    base_dir: Path | None
    environ: Mapping[str, str]


class _Invalid(Exception):
    """A bad value; `sub` extends the key name (".Header", "[2]")."""

    def __init__(self, message: str, sub: str = "") -> None:
        super().__init__(message)
        self.sub = sub


def _base_dir(source: str | os.PathLike[str] | None) -> Path | None:
    return Path(source).parent if source is not None else None


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
        raise _Invalid(f"expected {what}, got {_show(value)}")
    return value


def _p_bool(value: Any, ctx: _Context) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"expected true or false, got {_show(value)}")
    return value


def _p_str(value: Any, ctx: _Context) -> str:
    return _expect_str(value)


def _p_nonempty(value: Any, ctx: _Context) -> str:
    text = _expect_str(value)
    if not text:
        raise _Invalid("must not be empty (leave the key out instead)")
    return text


def _p_client_mode(value: Any, ctx: _Context) -> ClientMode:
    if isinstance(value, int) and not isinstance(value, bool) and value in {int(m) for m in ClientMode}:
        return ClientMode(value)
    if isinstance(value, str) and value.upper() in ClientMode.__members__:
        return ClientMode[value.upper()]
    raise _Invalid(f"expected 1 (MONITOR), 2 (LOCKDOWN) or 3 (STANDALONE), got {_show(value)}")


def _p_url(value: Any, ctx: _Context) -> str | None:
    url = _expect_str(value, "an http(s) URL")
    if not url:
        return None  # Santa: an empty SyncBaseURL is no SyncBaseURL
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError as exc:
        raise _Invalid(f"not a valid URL: {url!r} ({exc})") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or re.search(r"\s", url):
        raise _Invalid(f"expected an http(s) URL with a host, got {url!r}")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise _Invalid(f"must not have a query or fragment (stage paths are appended to it), got {url!r}")
    return url if url.endswith("/") else url + "/"


def _p_machine_id(value: Any, ctx: _Context) -> str:
    mid = _p_nonempty(value, ctx)
    if _URL_UNSAFE.search(mid):
        raise _Invalid(f"must not contain '/', '?', '#', whitespace or control characters, got {_show(mid)}")
    return mid


def _p_regex(value: Any, ctx: _Context) -> re.Pattern[str]:
    pattern = _expect_str(value, "a regular expression string")
    if not pattern:
        raise _Invalid("an empty pattern would match every path; leave the key out instead")
    if not pattern.startswith("^"):
        pattern = "^" + pattern  # what Santa does to every profile regex
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise _Invalid(f"invalid regular expression {value!r}: {exc}") from None


def _p_static_rules(value: Any, ctx: _Context) -> tuple[dict[str, Any], ...]:
    if not isinstance(value, list):
        raise _Invalid(f"expected an array of tables ([[StaticRules]]), got {_show(value)}")
    for i, rule in enumerate(value):
        if not isinstance(rule, dict):
            raise _Invalid(f"expected a table, got {_show(rule)}", f"[{i}]")
    return tuple(copy.deepcopy(rule) for rule in value)


def _p_interval(value: Any, ctx: _Context) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Invalid(f"expected a whole number of seconds, got {_show(value)}")
    if not 60 <= value <= _UINT32_MAX:
        raise _Invalid(f"expected at least 60 seconds (and at most {_UINT32_MAX}), got {value}")
    return value


def _p_path(value: Any, ctx: _Context) -> Path:
    text = _p_nonempty(value, ctx)
    if "\x00" in text:
        raise _Invalid("must not contain a NUL character")
    if text == "~" or text.startswith("~/"):
        home = ctx.environ.get("HOME") or str(Path.home())
        text = home + text[1:]
    path = Path(text)
    if not path.is_absolute() and ctx.base_dir is not None:
        path = ctx.base_dir / path
    return path


def _p_pem(value: Any, ctx: _Context) -> str:
    text = _expect_str(value, "PEM text")
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise _Invalid("expected PEM text with at least one -----BEGIN CERTIFICATE----- block")
    return text


def _p_encoding(value: Any, ctx: _Context) -> ContentEncoding:
    text = _expect_str(value, '"deflate", "gzip" or "none"')
    try:
        return ContentEncoding(text.lower())
    except ValueError:
        raise _Invalid(f'expected "deflate", "gzip" or "none", got {_show(value)}') from None


def _p_protocol(value: Any, ctx: _Context) -> SyncProtocol:
    choices = ", ".join(f'"{p.value}"' for p in SyncProtocol)
    text = _expect_str(value, choices)
    try:
        return SyncProtocol(text.lower())
    except ValueError:
        raise _Invalid(f"expected one of {choices}, got {_show(value)}") from None


def _p_headers(value: Any, ctx: _Context) -> Mapping[str, str]:
    if not isinstance(value, dict):
        raise _Invalid(f"expected a table of header names to strings, got {_show(value)}")
    for name, text in value.items():
        if not _HEADER_NAME.fullmatch(name):
            raise _Invalid(f"not a valid HTTP header name: {name!r}", f".{name}")
        if name.lower() in PROTECTED_HEADERS:
            raise _Invalid("Santa never lets SyncExtraHeaders set this header", f".{name}")
        if not isinstance(text, str):
            raise _Invalid(f"expected a string, got {_show(text)}", f".{name}")
        if any(ch in text for ch in "\r\n\x00"):
            raise _Invalid("header values must not contain CR, LF or NUL", f".{name}")
    return MappingProxyType(dict(value))


@dataclass(frozen=True)
class _Key:
    name: str
    attr: str
    parse: Callable[[Any, _Context], Any]
    santa_type: type | tuple[type, ...] | None  # what Santa reads from a profile; None: not a profile key
    aliases: tuple[str, ...] = ()
    alias_wins: bool = False  # Santa's precedence when a profile has both names


_NUMBER = (bool, int, float)
_KEYS: Final = (
    _Key("ClientMode", "client_mode", _p_client_mode, _NUMBER),
    _Key("SyncBaseURL", "sync_base_url", _p_url, str),
    _Key("MachineID", "machine_id", _p_machine_id, str),
    _Key("MachineIDPlist", "machine_id_plist", _p_path, str),
    _Key("MachineIDKey", "machine_id_key", _p_nonempty, str),
    _Key("MachineOwner", "machine_owner", _p_str, str),
    _Key("MachineOwnerPlist", "machine_owner_plist", _p_path, str),
    _Key("MachineOwnerKey", "machine_owner_key", _p_nonempty, str),
    _Key("EnableBundles", "enable_bundles", _p_bool, None),
    _Key("EnableTransitiveRules", "enable_transitive_rules", _p_bool, _NUMBER, ("EnableTransitiveWhitelisting",), True),
    _Key("EnableAllEventUpload", "enable_all_event_upload", _p_bool, _NUMBER),
    _Key("DisableUnknownEventUpload", "disable_unknown_event_upload", _p_bool, _NUMBER),
    _Key("EnableBadSignatureProtection", "enable_bad_signature_protection", _p_bool, _NUMBER),
    _Key("EnablePageZeroProtection", "enable_page_zero_protection", _p_bool, _NUMBER),
    _Key("AllowedPathRegex", "allowed_path_regex", _p_regex, str, ("WhitelistRegex",)),
    _Key("BlockedPathRegex", "blocked_path_regex", _p_regex, str, ("BlacklistRegex",)),
    _Key("StaticRules", "static_rules", _p_static_rules, list),
    _Key("FullSyncInterval", "full_sync_interval", _p_interval, None),
    _Key("SyncEnableCleanSyncEventUpload", "sync_enable_clean_sync_event_upload", _p_bool, _NUMBER),
    _Key("ServerAuthRootsFile", "server_auth_roots_file", _p_path, str),
    _Key("ServerAuthRootsData", "server_auth_roots_data", _p_pem, bytes),
    _Key("ClientAuthCertificateFile", "client_auth_certificate_file", _p_path, str),
    _Key("ClientAuthCertificatePassword", "client_auth_certificate_password", _p_str, str),
    _Key("SyncClientContentEncoding", "sync_client_content_encoding", _p_encoding, str),
    _Key("SyncProtocol", "sync_protocol", _p_protocol, None),  # santacore's own: not in profiles
    _Key("SyncExtraHeaders", "sync_extra_headers", _p_headers, dict),
    _Key("StateDirectory", "state_directory", _p_path, None),
)
_KNOWN_NAMES: Final = frozenset(name for spec in _KEYS for name in (spec.name, *spec.aliases))


def _parse(spec: _Key, name: str, value: Any, ctx: _Context) -> Any:
    try:
        return spec.parse(value, ctx)
    except _Invalid as exc:
        raise ConfigError(f"{ctx.where}: {name}{exc.sub}: {exc}") from None


def _dump(value: Any) -> Any:
    """A Config attribute as its TOML value."""
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


def _unknown_key_reason(key: str) -> str:
    if key in SANTA_KEYS_NOT_USED:
        return "a Santa setting santacore does not use"
    names = {n.lower(): n for n in (*_KNOWN_NAMES, *SANTA_KEYS_NOT_USED)}
    close = difflib.get_close_matches(key.lower(), names, n=1, cutoff=0.8)
    hint = f" (did you mean {names[close[0]]}?)" if close else ""
    return f"not a Santa or santacore setting{hint}"


def _plist_string(path: Path | None, key: str | None) -> str | None:
    if path is None or not key:
        return None
    try:
        with open(path, "rb") as fh:
            data = plistlib.load(fh)
    except (OSError, ValueError, plistlib.InvalidFileException):
        return None
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


# --- loading -------------------------------------------------------------------------------------


def load_config(path: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None) -> Config:
    """Read the TOML file at `path`, else at ``$SANTACORE_CONFIG``, else return the defaults."""
    env = os.environ if environ is None else environ
    if path is None and env.get(CONFIG_ENV):
        path = env[CONFIG_ENV]
    if path is None:
        return Config.from_values({}, environ=env)
    return Config.from_values(_read_toml(path), source=path, environ=env)


def _read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: line {bad_line}: not UTF-8 text") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        m = re.search(r" \(at line (\d+), column (\d+)\)$", message)
        if m:
            line, where = m.group(1), f"{message[: m.start()]} (column {m.group(2)})"
        else:
            line, where = str(text.count("\n") + 1), message
        raise ConfigError(f"{path}: line {line}: invalid TOML: {where}") from None


# --- Santa profiles ------------------------------------------------------------------------------
