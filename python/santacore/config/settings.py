"""santacore's configuration: the `Config` every command reads, and `load_config` that reads it from one TOML file.

`load_config` reads the file named by its argument, else by ``$SANTACORE_CONFIG``, else uses the
defaults. The keys, their parsers and the checks on each value are `santacore.config.keys`;
Santa's profiles are imported by `santacore.config.profile`, TOML is written by
`santacore.config.writer`, and the configuration in force after a sync (the server's settings on
top of this one) is `santacore.sync.in_force`. Nothing here prints: problems are `ConfigError`
(a ValueError whose message starts ``<file>: <key>: ``) or are listed in the returned objects.

* `Config` is frozen; its tables are read-only mappings, StaticRules entries are plain dicts (for
  the rules module to validate), and ClientAuthCertificatePassword and SyncExtraHeaders are left
  out of its repr. `Config.given_keys` names the settings the file gave; the rest are defaults.
* Relative paths (and ``~``) in the file are resolved against the file's directory (and $HOME).
* EnableBundles and FullSyncInterval are sync-server settings in Santa; here they are local
  defaults that the sync's preflight answer overrides (as it overrides ClientMode, the path
  regexes and the event-upload switches, spec §3.4).
* `Config.configured_machine_id` and `Config.configured_machine_owner` apply the MachineIDPlist /
  MachineOwnerPlist fallbacks.
* Unknown keys are kept, untouched, in `Config.extra` (Santa ignores unknown keys too) and are
  not an error; `Config.unknown_key_notes` says which are Santa settings santacore does not use
  and which look like typos, for the CLI to show.
* StateDirectory (where events.db, rules.db and sync-state.json live) defaults to
  ``/var/db/santacore`` when running as root (next to Santa's ``/var/db/santa``, the same on macOS
  and Linux), else ``$XDG_STATE_HOME/santacore`` (if that is an absolute path), else
  ``~/.local/state/santacore``.
"""

from __future__ import annotations

import copy
import os
import plistlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from santacore.config.keys import (
    DEFAULT_RULE_DOWNLOAD_MAX_BYTES,
    DEFAULT_RULE_DOWNLOAD_MAX_PAGES,
    DEFAULT_RULE_DOWNLOAD_MAX_RULES,
    DEFAULT_SYNC_TIME_BUDGET,
    KEYS,
    KNOWN_NAMES,
    PROTECTED_HEADERS,
    SANTA_DOMAINS,
    SANTA_KEYS_NOT_USED,
    ContentEncoding,
    InvalidValue,
    KeyContext,
    SyncProtocol,
    toml_value,
    unknown_key_reason,
)
from santacore.errors import SantacoreError
from santacore.files import CONFIG_LIMIT, PROFILE_LIMIT, read_regular_file
from santacore.identity.plists import PLIST_ERRORS
from santacore.santad.decisions import ClientMode

__all__ = [
    "CONFIG_ENV",
    "PROTECTED_HEADERS",
    "SANTA_DOMAINS",
    "SANTA_KEYS_NOT_USED",
    "Config",
    "ConfigError",
    "ContentEncoding",
    "SyncProtocol",
    "default_state_directory",
    "load_config",
]

CONFIG_ENV: Final = "SANTACORE_CONFIG"
ROOT_STATE_DIRECTORY: Final = Path("/var/db/santacore")


class ConfigError(SantacoreError, ValueError):
    """A configuration file, profile or value is unusable; the message names the file and the key."""


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
    fail_closed: bool = False
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
    sync_enable_proto_transfer: bool = False  # binary protobuf bodies (addendum §3)
    sync_protocol: SyncProtocol = SyncProtocol.NORTHPOLESEC  # the maintained Santa (issue 11)
    sync_extra_headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), repr=False)
    sync_time_budget: int = DEFAULT_SYNC_TIME_BUDGET
    rule_download_max_pages: int = DEFAULT_RULE_DOWNLOAD_MAX_PAGES
    rule_download_max_rules: int = DEFAULT_RULE_DOWNLOAD_MAX_RULES
    rule_download_max_bytes: int = DEFAULT_RULE_DOWNLOAD_MAX_BYTES
    enable_push_notifications: bool = True
    push_server_allowlist: tuple[str, ...] | None = None
    state_directory: Path = field(default_factory=default_state_directory)
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    source: Path | None = field(default=None, compare=False)
    given_keys: frozenset[str] = field(default=frozenset(), compare=False, repr=False)
    """The settings `source` gave (Santa key names, an alias as its key's name); the others are defaults."""

    @property
    def sync_base_url_host(self) -> str:
        """SyncBaseURL's host, lower-case ("" without one): PushServerAllowlist's default."""
        from urllib.parse import urlsplit

        return (urlsplit(self.sync_base_url).hostname or "") if self.sync_base_url else ""

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
        where = str(source) if source is not None else "config"
        ctx = KeyContext(where, Path(source).parent if source is not None else None, env)
        kwargs: dict[str, Any] = {}
        given = set()
        for spec in KEYS:
            present = [name for name in (spec.name, *spec.aliases) if name in values]
            if len(present) > 1:
                raise ConfigError(f"{where}: {present[1]}: deprecated name of {spec.name}; give only one of them")
            if present:
                try:
                    kwargs[spec.attr] = spec.parse(values[present[0]], ctx)
                except InvalidValue as exc:
                    raise ConfigError(f"{where}: {present[0]}{exc.sub}: {exc}") from None
                given.add(spec.name)
        if "state_directory" not in kwargs:
            kwargs["state_directory"] = default_state_directory(env)
        extra = {k: copy.deepcopy(v) for k, v in values.items() if k not in KNOWN_NAMES}
        src = Path(source) if source is not None else None
        return cls(**kwargs, extra=MappingProxyType(extra), source=src, given_keys=frozenset(given))

    def to_values(self) -> dict[str, Any]:
        """The TOML values of this Config (non-default settings, StateDirectory, extra keys)."""
        out: dict[str, Any] = {}
        defaults = Config(state_directory=Path())
        for spec in KEYS:
            value = getattr(self, spec.attr)
            if spec.attr != "state_directory" and value == getattr(defaults, spec.attr):
                continue
            out[spec.name] = toml_value(value)
        out.update(copy.deepcopy(dict(self.extra)))
        return out

    def unknown_key_notes(self) -> tuple[str, ...]:
        """One line per key in `extra`: a Santa setting santacore does not use, or an unknown key."""
        return tuple(f"{key}: {unknown_key_reason(key)}" for key in self.extra)

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


def _plist_string(path: Path | None, key: str | None) -> str | None:
    if path is None or not key:
        return None
    try:
        data = plistlib.loads(read_regular_file(path, PROFILE_LIMIT))
    except (OSError, *PLIST_ERRORS):
        return None
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def load_config(path: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None) -> Config:
    """Read the TOML file at `path`, else at ``$SANTACORE_CONFIG``, else return the defaults."""
    env = os.environ if environ is None else environ
    if path is None and env.get(CONFIG_ENV):
        path = env[CONFIG_ENV]
    if path is None:
        return Config.from_values({}, environ=env)
    return Config.from_values(_read_toml(path), source=path, environ=env)


def read_bytes(path: str | os.PathLike[str], what: str, limit: int) -> bytes:
    """The contents of the `what` (e.g. "configuration file") at `path`, a regular file of at most
    `limit` bytes, or a ConfigError naming the file."""
    try:
        return read_regular_file(path, limit)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def _read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    raw = read_bytes(path, "configuration file", CONFIG_LIMIT)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: line {bad_line}: not UTF-8 text") from None
    try:
        return tomllib.loads(text)
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise ConfigError(f"{path}: invalid TOML: arrays or tables nested too deeply") from None
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        m = re.search(r" \(at line (\d+), column (\d+)\)$", message)
        if m:
            line, where = m.group(1), f"{message[: m.start()]} (column {m.group(2)})"
        else:
            line, where = str(text.count("\n") + 1), message
        raise ConfigError(f"{path}: line {line}: invalid TOML: {where}") from None
