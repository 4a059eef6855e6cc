"""santacore.config.settings: the TOML file (Santa's key names), defaults, errors, and importing Santa's profiles.

Profiles are built here with plistlib in the shapes Santa's deployments use: a .mobileconfig with a
`com.northpolesec.santa` / `com.google.santa` payload, the older `com.apple.ManagedClient.preferences`
payload with `Forced` → `mcx_preference_settings`, a plain plist of keys, and a CMS-signed profile.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import plistlib
import re
import stat
import tomllib
from pathlib import Path
from typing import Any, Protocol

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from santacore.config.keys import KEYS
from santacore.config.profile import ProfileImport, import_profile, read_profile
from santacore.config.settings import (
    CONFIG_ENV,
    PROTECTED_HEADERS,
    Config,
    ConfigError,
    ContentEncoding,
    default_state_directory,
    load_config,
)
from santacore.config.writer import render_toml, write_config
from santacore.errors import SantacoreError
from santacore.santad.decisions import ClientMode
from santacore.sync.in_force import Source, config_in_force
from santacore.sync.protocol import SyncType
from santacore.sync.state import SyncState


class Writer(Protocol):
    def __call__(self, text: str, name: str = "config.toml") -> Path: ...


PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
ENV: dict[str, str] = {"HOME": "/home/alice"}


@pytest.fixture(autouse=True)
def not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Default state directories depend on the euid; tests run as an ordinary user unless they say so."""
    monkeypatch.setattr(os, "geteuid", lambda: 1000)


@pytest.fixture
def write(tmp_path: Path) -> Writer:
    def _write(text: str, name: str = "config.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write


def load_text(write: Writer, text: str) -> Config:
    return load_config(write(text), environ=ENV)


# --- defaults and state paths --------------------------------------------------------------------


def test_defaults_without_a_file() -> None:
    config = load_config(environ=ENV)
    assert config == Config(state_directory=Path("/home/alice/.local/state/santacore"))
    assert config.client_mode is ClientMode.MONITOR
    assert config.sync_base_url is None
    assert config.machine_id is None and config.machine_owner is None
    assert not config.enable_bundles and not config.enable_transitive_rules
    assert not config.enable_all_event_upload and not config.disable_unknown_event_upload
    assert not config.enable_bad_signature_protection
    assert config.enable_page_zero_protection  # Santa's default is YES
    assert config.allowed_path_regex is None and config.blocked_path_regex is None
    assert config.static_rules == ()
    assert config.full_sync_interval == 600
    assert config.sync_enable_clean_sync_event_upload  # santacore keeps events through a clean sync
    assert config.server_auth_roots_file is None and config.server_auth_roots_data is None
    assert config.client_auth_certificate_file is None and config.client_auth_certificate_password is None
    assert config.sync_client_content_encoding is ContentEncoding.DEFLATE
    assert dict(config.sync_extra_headers) == {}
    assert dict(config.extra) == {}
    assert config.source is None


def test_empty_file_gives_defaults(write: Writer) -> None:
    path = write("")
    config = load_config(path, environ=ENV)
    assert config == load_config(environ=ENV)
    assert config.source == path


def test_state_paths() -> None:
    config = Config(state_directory=Path("/srv/sc"))
    assert config.events_db == Path("/srv/sc/events.db")
    assert config.rules_db == Path("/srv/sc/rules.db")
    assert config.sync_state_path == Path("/srv/sc/sync-state.json")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"HOME": "/home/alice"}, "/home/alice/.local/state/santacore"),
        ({"HOME": "/home/alice", "XDG_STATE_HOME": "/xdg/state"}, "/xdg/state/santacore"),
        ({"HOME": "/home/alice", "XDG_STATE_HOME": ""}, "/home/alice/.local/state/santacore"),
        # The XDG spec says a relative path is invalid and must be ignored.
        ({"HOME": "/home/alice", "XDG_STATE_HOME": "rel/state"}, "/home/alice/.local/state/santacore"),
    ],
)
def test_default_state_directory(environ: dict[str, str], expected: str) -> None:
    assert default_state_directory(environ) == Path(expected)
    assert load_config(environ=environ).state_directory == Path(expected)


def test_default_state_directory_as_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert default_state_directory({"HOME": "/root", "XDG_STATE_HOME": "/x"}) == Path("/var/db/santacore")


def test_state_directory_key(write: Writer, tmp_path: Path) -> None:
    assert load_text(write, 'StateDirectory = "/var/lib/sc"').state_directory == Path("/var/lib/sc")
    assert load_text(write, 'StateDirectory = "state"').state_directory == tmp_path / "state"
    assert load_text(write, 'StateDirectory = "~/sc"').state_directory == Path("/home/alice/sc")
    config = load_text(write, 'StateDirectory = "/var/lib/sc"')
    assert config.events_db == Path("/var/lib/sc/events.db")


# --- the environment variable ----------------------------------------------------------------------


def test_env_var_names_the_file(write: Writer) -> None:
    path = write("ClientMode = 2")
    assert load_config(environ={**ENV, CONFIG_ENV: str(path)}).client_mode is ClientMode.LOCKDOWN


def test_explicit_path_beats_env_var(write: Writer) -> None:
    explicit = write("ClientMode = 3", "explicit.toml")
    from_env = write("ClientMode = 2", "env.toml")
    config = load_config(explicit, environ={**ENV, CONFIG_ENV: str(from_env)})
    assert config.client_mode is ClientMode.STANDALONE
    assert config.source == explicit


def test_empty_env_var_means_unset() -> None:
    assert load_config(environ={**ENV, CONFIG_ENV: ""}) == load_config(environ=ENV)


def test_env_var_naming_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=f"^{re.escape(str(missing))}: no such configuration file$"):
        load_config(environ={**ENV, CONFIG_ENV: str(missing)})


def test_process_environment_is_the_default(write: Writer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(write("MachineID = 'from-env'")))
    assert load_config().machine_id == "from-env"


# --- file errors ---------------------------------------------------------------------------------


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file") as info:
        load_config(tmp_path / "missing.toml", environ=ENV)
    assert isinstance(info.value, SantacoreError) and isinstance(info.value, ValueError)


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path, environ=ENV)  # a directory


def test_malformed_toml_names_the_line(write: Writer) -> None:
    path = write('ClientMode = 1\nSyncBaseURL = "https://x\nMachineID = "a"\n')
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: line 2: invalid TOML: .*column"):
        load_config(path, environ=ENV)


def test_truncated_toml_names_the_last_line(write: Writer) -> None:
    path = write("ClientMode = 1\nMachineID =")
    with pytest.raises(ConfigError, match=r": line 2: invalid TOML"):
        load_config(path, environ=ENV)


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'ClientMode = 1\nMachineOwner = "\xff"\n')
    with pytest.raises(ConfigError, match=r"line 2: not UTF-8"):
        load_config(path, environ=ENV)


def test_error_message_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("config.toml").write_text("ClientMode = 7\n")
    with pytest.raises(ConfigError) as info:
        load_config("config.toml", environ=ENV)
    assert str(info.value) == "config.toml: ClientMode: expected 1 (MONITOR), 2 (LOCKDOWN) or 3 (STANDALONE), got 7"


# --- every key: good values ----------------------------------------------------------------------

GOOD: list[tuple[str, str, Any]] = [
    ("ClientMode = 1", "client_mode", ClientMode.MONITOR),
    ("ClientMode = 2", "client_mode", ClientMode.LOCKDOWN),
    ("ClientMode = 3", "client_mode", ClientMode.STANDALONE),
    ('ClientMode = "LOCKDOWN"', "client_mode", ClientMode.LOCKDOWN),
    ('ClientMode = "monitor"', "client_mode", ClientMode.MONITOR),
    ('ClientMode = "Standalone"', "client_mode", ClientMode.STANDALONE),
    ('SyncBaseURL = "https://sync.example.com/v1/santa"', "sync_base_url", "https://sync.example.com/v1/santa/"),
    ('SyncBaseURL = "https://sync.example.com/v1/santa/"', "sync_base_url", "https://sync.example.com/v1/santa/"),
    ('SyncBaseURL = "http://127.0.0.1:8080"', "sync_base_url", "http://127.0.0.1:8080/"),
    ('SyncBaseURL = "HTTPS://[::1]:8443/x"', "sync_base_url", "HTTPS://[::1]:8443/x/"),
    ('SyncBaseURL = ""', "sync_base_url", None),
    ('MachineID = "9B0F3E52-6C1D-4E8A-B7F2-0D4C5A6E7F81"', "machine_id", "9B0F3E52-6C1D-4E8A-B7F2-0D4C5A6E7F81"),
    ('MachineIDPlist = "/etc/id.plist"', "machine_id_plist", Path("/etc/id.plist")),
    ('MachineIDKey = "uuid"', "machine_id_key", "uuid"),
    ('MachineOwner = "alice"', "machine_owner", "alice"),
    ('MachineOwner = ""', "machine_owner", ""),
    ('MachineOwnerPlist = "/etc/owner.plist"', "machine_owner_plist", Path("/etc/owner.plist")),
    ('MachineOwnerKey = "user"', "machine_owner_key", "user"),
    ("EnableBundles = true", "enable_bundles", True),
    ("EnableTransitiveRules = true", "enable_transitive_rules", True),
    ("EnableTransitiveWhitelisting = true", "enable_transitive_rules", True),
    ("EnableAllEventUpload = true", "enable_all_event_upload", True),
    ("DisableUnknownEventUpload = true", "disable_unknown_event_upload", True),
    ("EnableBadSignatureProtection = true", "enable_bad_signature_protection", True),
    ("EnablePageZeroProtection = false", "enable_page_zero_protection", False),
    ("FullSyncInterval = 60", "full_sync_interval", 60),
    ("FullSyncInterval = 3600", "full_sync_interval", 3600),
    ("SyncEnableCleanSyncEventUpload = false", "sync_enable_clean_sync_event_upload", False),
    ('ServerAuthRootsFile = "/etc/ssl/ca.pem"', "server_auth_roots_file", Path("/etc/ssl/ca.pem")),
    (f"ServerAuthRootsData = '''\n{PEM}'''", "server_auth_roots_data", PEM),
    ('ClientAuthCertificateFile = "/etc/id.p12"', "client_auth_certificate_file", Path("/etc/id.p12")),
    ('ClientAuthCertificatePassword = "s3cret"', "client_auth_certificate_password", "s3cret"),
    ('ClientAuthCertificatePassword = ""', "client_auth_certificate_password", ""),
    ('SyncClientContentEncoding = "deflate"', "sync_client_content_encoding", ContentEncoding.DEFLATE),
    ('SyncClientContentEncoding = "GZIP"', "sync_client_content_encoding", ContentEncoding.GZIP),
    ('SyncClientContentEncoding = "None"', "sync_client_content_encoding", ContentEncoding.NONE),
]


@pytest.mark.parametrize(("text", "attr", "expected"), GOOD, ids=[g[0].split(" =")[0] + ":" + g[0] for g in GOOD])
def test_good_value(write: Writer, text: str, attr: str, expected: Any) -> None:
    value = getattr(load_text(write, text), attr)
    assert value == expected
    assert type(value) is type(expected)


def test_relative_paths_are_relative_to_the_config_file(write: Writer, tmp_path: Path) -> None:
    config = load_text(
        write,
        'ServerAuthRootsFile = "certs/ca.pem"\nClientAuthCertificateFile = "~/id.p12"\nMachineIDPlist = "../id.plist"',
    )
    assert config.server_auth_roots_file == tmp_path / "certs/ca.pem"
    assert config.client_auth_certificate_file == Path("/home/alice/id.p12")
    assert config.machine_id_plist == tmp_path / "../id.plist"


def test_path_regexes_are_anchored_like_santa_profiles(write: Writer) -> None:
    config = load_text(write, "AllowedPathRegex = '/opt/tools/.*'\nBlockedPathRegex = '^/tmp/[^/]+$'")
    assert config.allowed_path_regex is not None and config.blocked_path_regex is not None
    assert config.allowed_path_regex.pattern == "^/opt/tools/.*"
    assert config.allowed_path_regex.search("/opt/tools/x")
    assert not config.allowed_path_regex.search("/home/opt/tools/x")
    assert config.blocked_path_regex.pattern == "^/tmp/[^/]+$"
    assert config.blocked_path_regex.search("/tmp/evil") and not config.blocked_path_regex.search("/tmp/a/b")


def test_deprecated_regex_names(write: Writer) -> None:
    config = load_text(write, "WhitelistRegex = '/a'\nBlacklistRegex = '/b'")
    assert config.allowed_path_regex is not None and config.allowed_path_regex.pattern == "^/a"
    assert config.blocked_path_regex is not None and config.blocked_path_regex.pattern == "^/b"
    assert dict(config.extra) == {}


def test_static_rules_stay_plain_dicts(write: Writer) -> None:
    config = load_text(
        write,
        """
[[StaticRules]]
identifier = "ff2a99cdd0d9b8d2d3f9d3ec0c6b8e4fa7f1e4f7b3d7c8e9a0b1c2d3e4f5a6b7"
policy = "BLOCKLIST"
rule_type = "BINARY"
custom_msg = "Not here"
custom_url = "https://example.com/why"

[[StaticRules]]
identifier = "EQHXZ8M8AV"
policy = "ALLOWLIST"
rule_type = "TEAMID"
""",
    )
    assert len(config.static_rules) == 2
    assert all(type(rule) is dict for rule in config.static_rules)
    assert config.static_rules[0]["custom_msg"] == "Not here"
    assert config.static_rules[1] == {"identifier": "EQHXZ8M8AV", "policy": "ALLOWLIST", "rule_type": "TEAMID"}
    # Validated at load with the rules module's validation, but kept as written.
    lower = load_text(
        write, "StaticRules = [{ identifier = 'eqhxz8m8av', policy = 'BLOCKLIST', rule_type = 'TEAMID' }]"
    )
    assert lower.static_rules == ({"identifier": "eqhxz8m8av", "policy": "BLOCKLIST", "rule_type": "TEAMID"},)
    assert load_text(write, "StaticRules = []").static_rules == ()


def test_extra_headers(write: Writer) -> None:
    config = load_text(write, '[SyncExtraHeaders]\nAuthorization = "Bearer t"\nZentral-Authorization = "Bearer z"\n')
    assert dict(config.sync_extra_headers) == {"Authorization": "Bearer t", "Zentral-Authorization": "Bearer z"}
    with pytest.raises(TypeError):
        config.sync_extra_headers["X"] = "y"  # type: ignore[index]


# --- every key: bad values -----------------------------------------------------------------------

BAD: list[tuple[str, str, str]] = [
    ("ClientMode = 0", "ClientMode", "got 0"),
    ("ClientMode = 4", "ClientMode", "got 4"),
    ("ClientMode = true", "ClientMode", "got true"),
    ('ClientMode = "2"', "ClientMode", 'got "2"'),
    ('ClientMode = "PARANOID"', "ClientMode", 'got "PARANOID"'),
    ("ClientMode = 1.0", "ClientMode", "got 1.0"),
    ("SyncBaseURL = 1", "SyncBaseURL", "expected an http(s) URL, got 1"),
    ('SyncBaseURL = "ftp://x/"', "SyncBaseURL", "expected an http(s) URL with a host"),
    ('SyncBaseURL = "sync.example.com/santa"', "SyncBaseURL", "expected an http(s) URL with a host"),
    ('SyncBaseURL = "https:///santa"', "SyncBaseURL", "with a host"),
    ('SyncBaseURL = "https://a b/"', "SyncBaseURL", "with a host"),
    ('SyncBaseURL = "https://x:99999/"', "SyncBaseURL", "not a valid URL"),
    ('SyncBaseURL = "https://x/santa?a=1"', "SyncBaseURL", "query or fragment"),
    ('SyncBaseURL = "https://x/santa#f"', "SyncBaseURL", "query or fragment"),
    ('MachineID = ""', "MachineID", "must not be empty"),
    ("MachineID = 5", "MachineID", "expected a string, got 5"),
    ('MachineID = "a/b"', "MachineID", "must not contain"),
    ('MachineID = "a b"', "MachineID", "must not contain"),
    ('MachineIDPlist = ""', "MachineIDPlist", "must not be empty"),
    ("MachineIDKey = []", "MachineIDKey", "expected a string, got an array"),
    ("MachineOwner = false", "MachineOwner", "expected a string, got false"),
    ("MachineOwnerPlist = 3", "MachineOwnerPlist", "expected a string"),
    ('MachineOwnerKey = ""', "MachineOwnerKey", "must not be empty"),
    ("EnableBundles = 1", "EnableBundles", "expected true or false, got 1"),
    ('EnableTransitiveRules = "yes"', "EnableTransitiveRules", 'expected true or false, got "yes"'),
    ("EnableTransitiveWhitelisting = 0", "EnableTransitiveWhitelisting", "expected true or false"),
    ("EnableAllEventUpload = {}", "EnableAllEventUpload", "expected true or false, got a table"),
    ('DisableUnknownEventUpload = "false"', "DisableUnknownEventUpload", "expected true or false"),
    ("EnableBadSignatureProtection = 1", "EnableBadSignatureProtection", "expected true or false"),
    ("EnablePageZeroProtection = 0", "EnablePageZeroProtection", "expected true or false"),
    ("AllowedPathRegex = '(unclosed'", "AllowedPathRegex", "invalid regular expression '(unclosed'"),
    ("AllowedPathRegex = ''", "AllowedPathRegex", "match every path"),
    ("BlockedPathRegex = 3", "BlockedPathRegex", "expected a regular expression string, got 3"),
    (r"BlockedPathRegex = '\p{L}'", "BlockedPathRegex", "invalid regular expression"),  # ICU-only syntax
    ("WhitelistRegex = '['", "WhitelistRegex", "invalid regular expression"),
    ("BlacklistRegex = ''", "BlacklistRegex", "match every path"),
    ('StaticRules = "rule"', "StaticRules", "expected an array of tables"),
    ("StaticRules = [1]", "StaticRules[0]", "expected a table, got 1"),
    (
        "StaticRules = [{identifier = 'EQHXZ8M8AV', policy = 'BLOCKLIST', rule_type = 'TEAMID'}, 'b']",
        "StaticRules[1]",
        'expected a table, got "b"',
    ),
    (
        "StaticRules = [{identifier = 5, policy = 'BLOCKLIST', rule_type = 'BINARY'}]",
        "StaticRules[0]",
        'invalid rule {identifier = 5, policy = "BLOCKLIST", rule_type = "BINARY"}: '
        "Rule received with missing/invalid identifier 5",
    ),
    (
        "StaticRules = [{identifier = 'aa', policy = 'BLOCKLIST', rule_type = 'BINARY'}]",
        "StaticRules[0]",
        'invalid rule {identifier = "aa", policy = "BLOCKLIST", rule_type = "BINARY"}: '
        "BINARY or CERTIFICATE rules require a valid SHA-256",
    ),
    ("StaticRules = [{ policy = 42 }]", "StaticRules[0]", "missing/invalid identifier"),
    ("FullSyncInterval = 59", "FullSyncInterval", "expected at least 60 seconds"),
    ("FullSyncInterval = 0", "FullSyncInterval", "expected at least 60 seconds"),
    ("FullSyncInterval = -600", "FullSyncInterval", "expected at least 60 seconds"),
    ("FullSyncInterval = 4294967296", "FullSyncInterval", "at most 4294967295"),
    ("FullSyncInterval = 600.0", "FullSyncInterval", "expected a whole number of seconds, got 600.0"),
    ('FullSyncInterval = "600"', "FullSyncInterval", "expected a whole number of seconds"),
    ("FullSyncInterval = true", "FullSyncInterval", "expected a whole number of seconds, got true"),
    ("SyncEnableCleanSyncEventUpload = 1", "SyncEnableCleanSyncEventUpload", "expected true or false"),
    ('ServerAuthRootsFile = ""', "ServerAuthRootsFile", "must not be empty"),
    ("ServerAuthRootsFile = 1", "ServerAuthRootsFile", "expected a string"),
    ('ServerAuthRootsData = "not pem"', "ServerAuthRootsData", "BEGIN CERTIFICATE"),
    ("ServerAuthRootsData = 1", "ServerAuthRootsData", "expected PEM text, got 1"),
    ('ClientAuthCertificateFile = ""', "ClientAuthCertificateFile", "must not be empty"),
    ("ClientAuthCertificatePassword = 1234", "ClientAuthCertificatePassword", "expected a string, got 1234"),
    ('SyncClientContentEncoding = "br"', "SyncClientContentEncoding", 'expected "deflate", "gzip" or "none", got "br"'),
    ("SyncClientContentEncoding = false", "SyncClientContentEncoding", "got false"),
    ('SyncExtraHeaders = "Authorization: x"', "SyncExtraHeaders", "expected a table"),
    ("SyncExtraHeaders = { X-Count = 1 }", "SyncExtraHeaders.X-Count", "expected a string, got 1"),
    ('SyncExtraHeaders = { "Bad Name" = "v" }', "SyncExtraHeaders.Bad Name", "not a valid HTTP header name"),
    ('SyncExtraHeaders = { X-A = "a\\r\\nX-B: b" }', "SyncExtraHeaders.X-A", "CR, LF or NUL"),
    ('SyncExtraHeaders = { content-type = "text/plain" }', "SyncExtraHeaders.content-type", "never lets"),
    ('SyncExtraHeaders = { Host = "evil" }', "SyncExtraHeaders.Host", "never lets"),
    ('StateDirectory = ""', "StateDirectory", "must not be empty"),
    ("StateDirectory = false", "StateDirectory", "expected a string"),
    ('StateDirectory = "a\\u0000b"', "StateDirectory", "NUL"),
]


@pytest.mark.parametrize(("text", "key", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_value_names_file_and_key(write: Writer, text: str, key: str, message: str) -> None:
    path = write(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=ENV)
    assert str(info.value).startswith(f"{path}: {key}: ")
    assert message in str(info.value)


def test_every_key_has_a_bad_value_test() -> None:
    tested = {key.split(".")[0].split("[")[0] for _, key, _ in BAD}
    keys = {"ClientMode", "SyncBaseURL", "MachineID", "MachineIDPlist", "MachineIDKey", "MachineOwner"}
    keys |= {"MachineOwnerPlist", "MachineOwnerKey", "EnableBundles", "EnableTransitiveRules", "EnableAllEventUpload"}
    keys |= {"DisableUnknownEventUpload", "EnableBadSignatureProtection", "EnablePageZeroProtection"}
    keys |= {"AllowedPathRegex", "BlockedPathRegex", "StaticRules", "FullSyncInterval", "SyncExtraHeaders"}
    keys |= {"SyncEnableCleanSyncEventUpload", "ServerAuthRootsFile", "ServerAuthRootsData", "StateDirectory"}
    keys |= {"ClientAuthCertificateFile", "ClientAuthCertificatePassword", "SyncClientContentEncoding"}
    assert keys <= tested
    assert set(Config().to_values()) | keys == keys  # to_values of the defaults names only known keys


def test_every_protected_header_is_refused(write: Writer) -> None:
    for name in PROTECTED_HEADERS:
        with pytest.raises(ConfigError, match="never lets"):
            load_text(write, f'[SyncExtraHeaders]\n{name.upper()} = "x"')


@pytest.mark.parametrize(
    ("text", "alias"),
    [
        ("EnableTransitiveRules = true\nEnableTransitiveWhitelisting = true", "EnableTransitiveWhitelisting"),
        ("AllowedPathRegex = '/a'\nWhitelistRegex = '/a'", "WhitelistRegex"),
        ("BlacklistRegex = '/a'\nBlockedPathRegex = '/b'", "BlacklistRegex"),
    ],
)
def test_alias_and_new_name_together_is_an_error(write: Writer, text: str, alias: str) -> None:
    with pytest.raises(ConfigError, match=f": {alias}: deprecated name of "):
        load_text(write, text)


# --- unknown keys --------------------------------------------------------------------------------


def test_unknown_keys_are_kept_in_extra(write: Writer) -> None:
    config = load_text(
        write, 'ClientMdoe = 2\nEnableSilentMode = true\nMyOwnThing = "x"\n[SyncProxyConfiguration]\nHTTPSEnable = 1\n'
    )
    assert config.client_mode is ClientMode.MONITOR
    assert dict(config.extra) == {
        "ClientMdoe": 2,
        "EnableSilentMode": True,
        "MyOwnThing": "x",
        "SyncProxyConfiguration": {"HTTPSEnable": 1},
    }
    assert config.unknown_key_notes() == (
        "ClientMdoe: not a Santa or santacore setting (did you mean ClientMode?)",
        "EnableSilentMode: a Santa setting santacore does not use",
        "MyOwnThing: not a Santa or santacore setting",
        "SyncProxyConfiguration: a Santa setting santacore does not use",
    )


def test_keys_are_case_sensitive_like_santa(write: Writer) -> None:
    config = load_text(write, "clientmode = 2")
    assert config.client_mode is ClientMode.MONITOR
    assert config.unknown_key_notes() == ("clientmode: not a Santa or santacore setting (did you mean ClientMode?)",)


# --- the Config object ---------------------------------------------------------------------------


def test_config_is_frozen_and_hides_secrets(write: Writer) -> None:
    config = load_text(write, 'ClientAuthCertificatePassword = "hunter2"\nSyncExtraHeaders = { Authorization = "tok" }')
    with pytest.raises(AttributeError):
        config.client_mode = ClientMode.LOCKDOWN  # type: ignore[misc]
    assert "hunter2" not in repr(config) and "tok" not in repr(config)


def test_source_does_not_affect_equality(write: Writer) -> None:
    a = load_config(write("ClientMode = 2", "a.toml"), environ=ENV)
    b = load_config(write("ClientMode = 2", "b.toml"), environ=ENV)
    assert a == b and a.source != b.source


def test_to_values_round_trip(write: Writer) -> None:
    text = f"""
ClientMode = "lockdown"
SyncBaseURL = "https://sync.example.com/santa"
MachineID = "m-1"
MachineOwner = ""
EnablePageZeroProtection = false
AllowedPathRegex = '/opt/.*\\.app/'
FullSyncInterval = 120
ServerAuthRootsData = '''
{PEM}'''
ServerAuthRootsFile = "ca.pem"
SyncClientContentEncoding = "GZIP"
Unknown = [1, 2]
[SyncExtraHeaders]
X-Token = "t"
[[StaticRules]]
identifier = "EQHXZ8M8AV"
policy = "BLOCKLIST"
rule_type = "TEAMID"
"""
    config = load_text(write, text)
    values = config.to_values()
    assert values["ClientMode"] == 2 and values["SyncClientContentEncoding"] == "gzip"
    assert "EnableBundles" not in values  # defaults are left out
    again = load_config(write(render_toml(values), "again.toml"), environ=ENV)
    assert again == config


def test_configured_machine_id_and_owner(tmp_path: Path) -> None:
    plist = tmp_path / "ids.plist"
    plist.write_bytes(plistlib.dumps({"uuid": "PLIST-ID", "owner": "bob", "n": 3}))
    base = {"MachineIDPlist": str(plist), "MachineIDKey": "uuid", "MachineOwnerPlist": str(plist)}
    config = Config.from_values({**base, "MachineOwnerKey": "owner"}, environ=ENV)
    assert config.configured_machine_id() == "PLIST-ID"
    assert config.configured_machine_owner() == "bob"
    explicit = Config.from_values({**base, "MachineID": "CFG", "MachineOwner": "", "MachineOwnerKey": "o"}, environ=ENV)
    assert explicit.configured_machine_id() == "CFG"
    assert explicit.configured_machine_owner() == ""
    odd = Config.from_values({**base, "MachineIDKey": "n", "MachineOwnerKey": "missing"}, environ=ENV)
    assert odd.configured_machine_id() is None  # not a string: the platform ID applies
    assert odd.configured_machine_owner() == ""
    unreadable = Config.from_values({"MachineIDPlist": str(tmp_path / "no"), "MachineIDKey": "uuid"}, environ=ENV)
    assert unreadable.configured_machine_id() is None
    assert Config().configured_machine_id() is None


# --- render_toml and write_config ----------------------------------------------------------------


def test_render_toml_layout() -> None:
    values = {
        "SyncExtraHeaders": {"Authorization": "Bearer t", "x.odd key": "v"},
        "StaticRules": [{"identifier": "a", "policy": "BLOCKLIST"}, {"identifier": "b", "custom_msg": 'say "hi"'}],
        "Zzz": {"nested": {"a": [1, 2]}},
        "ClientMode": 2,
        "AllowedPathRegex": r"^/opt/.*\.app",
        "ServerAuthRootsData": PEM,
        "SyncBaseURL": "https://x/",
        "Other": dt.datetime(2024, 6, 1, 12, 30),
    }
    text = render_toml(values, header="Imported from santa.mobileconfig\n\nby santacore")
    assert text.startswith("# Imported from santa.mobileconfig\n#\n# by santacore\nClientMode = 2\n")
    assert "AllowedPathRegex = '^/opt/.*\\.app'\n" in text  # literal string: backslashes stay readable
    assert "ServerAuthRootsData = '''\n-----BEGIN CERTIFICATE-----\n" in text
    assert text.index("[[StaticRules]]") < text.index("[SyncExtraHeaders]") < text.index("[Zzz]")
    assert '"x.odd key" = "v"' in text
    assert tomllib.loads(text) == values


def test_render_toml_rejects_what_toml_cannot_hold() -> None:
    with pytest.raises(ConfigError, match=r"^ServerAuthRootsData: cannot be written as TOML"):
        render_toml({"ServerAuthRootsData": b"\x00"})
    with pytest.raises(ConfigError, match="surrogate"):
        render_toml({"MachineOwner": "a\udcffb"})


_TOML_SCALARS = (
    st.text()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.datetimes()
)


@given(
    st.dictionaries(
        st.text(min_size=1),
        _TOML_SCALARS
        | st.lists(_TOML_SCALARS, max_size=3)
        | st.dictionaries(st.text(), _TOML_SCALARS, max_size=3)
        | st.lists(st.dictionaries(st.text(), _TOML_SCALARS, max_size=3), min_size=1, max_size=2),
        max_size=5,
    )
)
def test_render_toml_round_trips(values: dict[str, Any]) -> None:
    assert tomllib.loads(render_toml(values)) == values


def test_write_config(tmp_path: Path) -> None:
    path = tmp_path / "santacore.toml"
    values = {
        "ClientMode": 2,
        "ClientAuthCertificatePassword": "pw",
        "StaticRules": [{"identifier": "EQHXZ8M8AV", "rule_type": "TEAMID", "policy": "BLOCKLIST"}],
    }
    assert write_config(path, values, header="hello", environ=ENV) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_config(path, environ=ENV).client_mode is ClientMode.LOCKDOWN
    with pytest.raises(FileExistsError):
        write_config(path, {"ClientMode": 1}, environ=ENV)
    assert load_config(path, environ=ENV).client_mode is ClientMode.LOCKDOWN
    write_config(path, {"ClientMode": 1}, overwrite=True, environ=ENV)
    assert load_config(path, environ=ENV).client_mode is ClientMode.MONITOR
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["santacore.toml"]


def test_write_config_refuses_bad_values(tmp_path: Path) -> None:
    path = tmp_path / "santacore.toml"
    with pytest.raises(ConfigError, match=f"^{re.escape(str(path))}: FullSyncInterval: "):
        write_config(path, {"FullSyncInterval": 5}, environ=ENV)
    assert not path.exists()


# --- Santa profiles ------------------------------------------------------------------------------

SANTA_SETTINGS: dict[str, Any] = {
    "ClientMode": 2,
    "SyncBaseURL": "https://sync.example.com/v1/santa",
    "MachineOwnerPlist": "/Library/Preferences/com.example.owner.plist",
    "MachineOwnerKey": "Owner",
    "EnableAllEventUpload": True,
    "DisableUnknownEventUpload": 1,  # Santa reads booleans as NSNumber
    "EnableBadSignatureProtection": False,
    "EnablePageZeroProtection": 0,
    "AllowedPathRegex": "/Users/[^/]+/bin/",
    "BlockedPathRegex": "^/private/tmp/",
    "SyncEnableCleanSyncEventUpload": True,
    "ServerAuthRootsData": PEM.encode(),
    "ServerAuthRootsFile": "/Library/Santa/ca.pem",
    "ClientAuthCertificateFile": "/Library/Santa/client.p12",
    "ClientAuthCertificatePassword": "p12-pass",
    "SyncClientContentEncoding": "gzip",
    "SyncExtraHeaders": {"Zentral-Authorization": "Bearer secret"},
    "StaticRules": [
        {"identifier": "platform:com.apple.curl", "policy": "BLOCKLIST", "rule_type": "SIGNINGID", "custom_msg": "no"},
        {"identifier": "EQHXZ8M8AV", "policy": "ALLOWLIST", "rule_type": "TEAMID", "custom_url": "https://x/"},
    ],
    # Santa settings santacore does not use, and a stranger:
    "EnableSilentMode": True,
    "EventDetailURL": "https://x/%file_sha%",
    "ModeNotificationLockdown": "Lockdown!",
    "SomethingElse": 1,
}

EXPECTED_VALUES: dict[str, Any] = {
    "ClientMode": 2,
    "SyncBaseURL": "https://sync.example.com/v1/santa",
    "MachineOwnerPlist": "/Library/Preferences/com.example.owner.plist",
    "MachineOwnerKey": "Owner",
    "EnableAllEventUpload": True,
    "DisableUnknownEventUpload": True,
    "EnableBadSignatureProtection": False,
    "EnablePageZeroProtection": False,
    "AllowedPathRegex": "/Users/[^/]+/bin/",
    "BlockedPathRegex": "^/private/tmp/",
    "StaticRules": SANTA_SETTINGS["StaticRules"],
    "SyncEnableCleanSyncEventUpload": True,
    "ServerAuthRootsFile": "/Library/Santa/ca.pem",
    "ServerAuthRootsData": PEM,
    "ClientAuthCertificateFile": "/Library/Santa/client.p12",
    "ClientAuthCertificatePassword": "p12-pass",
    "SyncClientContentEncoding": "gzip",
    "SyncExtraHeaders": {"Zentral-Authorization": "Bearer secret"},
}

EXPECTED_IGNORED = {
    "EnableSilentMode": "a Santa setting santacore does not use",
    "EventDetailURL": "a Santa setting santacore does not use",
    "ModeNotificationLockdown": "a Santa setting santacore does not use",
    "SomethingElse": "not a Santa or santacore setting",
}


def payload(kind: str, settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "PayloadType": kind,
        "PayloadIdentifier": f"{kind}.payload",
        "PayloadUUID": "6C3A7D2E-0000-4000-8000-000000000001",
        "PayloadVersion": 1,
        "PayloadDisplayName": "Santa",
        **settings,
    }


def mobileconfig(*payloads: dict[str, Any]) -> dict[str, Any]:
    return {
        "PayloadType": "Configuration",
        "PayloadIdentifier": "com.example.santa",
        "PayloadUUID": "6C3A7D2E-0000-4000-8000-000000000000",
        "PayloadVersion": 1,
        "PayloadDisplayName": "Santa",
        "PayloadScope": "System",
        "PayloadContent": list(payloads),
    }


def mcx(domain: str, settings: dict[str, Any], level: str = "Forced") -> dict[str, Any]:
    body = {level: [{"mcx_preference_settings": settings}]}
    return payload("com.apple.ManagedClient.preferences", {"PayloadContent": {domain: body}})


def save(
    tmp_path: Path, data: Any, name: str = "santa.mobileconfig", fmt: plistlib.PlistFormat = plistlib.FMT_XML
) -> Path:
    path = tmp_path / name
    path.write_bytes(plistlib.dumps(data, fmt=fmt))
    return path


@pytest.mark.parametrize("domain", ["com.northpolesec.santa", "com.google.santa"])
def test_mobileconfig_payload(tmp_path: Path, domain: str) -> None:
    path = save(
        tmp_path, mobileconfig(payload("com.apple.security.pem", {"Other": 1}), payload(domain, SANTA_SETTINGS))
    )
    result = read_profile(path)
    assert result.values == EXPECTED_VALUES
    assert result.ignored == EXPECTED_IGNORED
    assert result.domains == (domain,) and not result.signed
    assert import_profile(path) == EXPECTED_VALUES


@pytest.mark.parametrize("domain", ["com.northpolesec.santa", "com.google.santa"])
def test_managed_client_mcx_payload(tmp_path: Path, domain: str) -> None:
    path = save(tmp_path, mobileconfig(mcx(domain, SANTA_SETTINGS), mcx("com.example.other", {"ClientMode": 1})))
    result = read_profile(path)
    assert result.values == EXPECTED_VALUES
    assert result.ignored == EXPECTED_IGNORED
    assert result.domains == (domain,)


def test_mcx_non_forced_settings_are_skipped(tmp_path: Path) -> None:
    forced = mcx("com.northpolesec.santa", {"ClientMode": 2})
    forced["PayloadContent"]["com.northpolesec.santa"]["Set-Once"] = [{"mcx_preference_settings": {"MachineID": "x"}}]
    result = read_profile(save(tmp_path, mobileconfig(forced)))
    assert result.values == {"ClientMode": 2}
    assert "com.northpolesec.santa: Set-Once settings skipped (Santa reads only forced settings)" in result.notes


def test_bare_payload_and_binary_plist(tmp_path: Path) -> None:
    path = save(tmp_path, payload("com.northpolesec.santa", {"ClientMode": 1}), "p.plist", plistlib.FMT_BINARY)
    assert import_profile(path) == {"ClientMode": 1}


def test_plain_plist_of_keys(tmp_path: Path) -> None:
    path = save(tmp_path, SANTA_SETTINGS, "com.northpolesec.santa.plist", plistlib.FMT_BINARY)
    result = read_profile(path)
    assert result.values == EXPECTED_VALUES
    assert result.ignored == EXPECTED_IGNORED
    assert result.domains == ()


def test_payloads_are_merged_in_order(tmp_path: Path) -> None:
    path = save(
        tmp_path,
        mobileconfig(
            payload("com.google.santa", {"ClientMode": 1, "MachineOwner": "alice"}),
            payload("com.northpolesec.santa", {"ClientMode": 2}),
        ),
    )
    result = read_profile(path)
    assert result.values == {"ClientMode": 2, "MachineOwner": "alice"}
    assert result.domains == ("com.google.santa", "com.northpolesec.santa")
    assert any(note.startswith("ClientMode: set by more than one payload") for note in result.notes)


def test_profile_values_santa_would_ignore_are_reported(tmp_path: Path) -> None:
    settings = {
        "ClientMode": "LOCKDOWN",  # Santa wants a number and ignores a string
        "EnableBundles": True,  # sync-server only
        "FullSyncInterval": 300,  # sync-server only
        "SyncBaseURL": 42,
        "ServerAuthRootsData": PEM,  # Santa wants data
        "SyncClientContentEncoding": "brotli",  # santacore rejects what Santa turns into deflate
        "AllowedPathRegex": r"\p{Lu}",  # ICU-only
        "SyncExtraHeaders": {"Host": "x"},
        "MachineID": "",
    }
    result = read_profile(save(tmp_path, payload("com.northpolesec.santa", settings)))
    assert result.values == {}
    assert result.ignored["ClientMode"] == "ClientMode: Santa ignores it: expected a number, got a string"
    assert result.ignored["EnableBundles"] == "Santa does not read this key from a profile"
    assert result.ignored["FullSyncInterval"] == "Santa does not read this key from a profile"
    assert result.ignored["SyncBaseURL"] == "SyncBaseURL: Santa ignores it: expected a string, got a number"
    assert result.ignored["ServerAuthRootsData"].endswith("expected data, got a string")
    assert 'got "brotli"' in result.ignored["SyncClientContentEncoding"]
    assert "invalid regular expression" in result.ignored["AllowedPathRegex"]
    assert result.ignored["SyncExtraHeaders"].startswith("SyncExtraHeaders.Host: ")
    assert "must not be empty" in result.ignored["MachineID"]
    assert set(result.ignored) == set(settings)


def test_profile_deprecated_keys_follow_santa_precedence(tmp_path: Path) -> None:
    settings = {
        "EnableTransitiveRules": False,
        "EnableTransitiveWhitelisting": True,  # Santa checks the old key first
        "AllowedPathRegex": "/new",
        "WhitelistRegex": "/old",  # the new regex key wins
        "BlacklistRegex": "/blocked",
    }
    result = read_profile(save(tmp_path, payload("com.northpolesec.santa", settings)))
    assert result.values == {"EnableTransitiveRules": True, "AllowedPathRegex": "/new", "BlockedPathRegex": "/blocked"}
    assert result.ignored == {
        "EnableTransitiveRules": "Santa uses EnableTransitiveWhitelisting when both are set",
        "WhitelistRegex": "Santa uses AllowedPathRegex when both are set",
    }
    assert "EnableTransitiveWhitelisting imported as EnableTransitiveRules" in result.notes
    assert "BlacklistRegex imported as BlockedPathRegex" in result.notes


def test_profile_data_and_dates_in_static_rules(tmp_path: Path) -> None:
    rules = [{"identifier": "x", "blob": b"\x00"}]
    result = read_profile(save(tmp_path, payload("com.northpolesec.santa", {"StaticRules": rules, "ClientMode": 2.0})))
    assert result.values == {"ClientMode": 2}
    assert result.ignored == {"StaticRules": "StaticRules: data values cannot be written to TOML"}


def test_profile_without_santa_payload(tmp_path: Path) -> None:
    path = save(tmp_path, mobileconfig(payload("com.apple.wifi.managed", {"SSID_STR": "x"})))
    with pytest.raises(ConfigError, match=r"no com\.northpolesec\.santa or com\.google\.santa payload"):
        read_profile(path)


def test_profile_read_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such profile"):
        read_profile(tmp_path / "missing.mobileconfig")
    garbage = tmp_path / "garbage.mobileconfig"
    garbage.write_bytes(b"<?xml version='1.0'?><plist><dict><key>a</key>")
    with pytest.raises(ConfigError, match=f"^{re.escape(str(garbage))}: not a property list"):
        read_profile(garbage)
    not_dict = save(tmp_path, [1, 2], "list.plist")
    with pytest.raises(ConfigError, match="expected a dictionary"):
        read_profile(not_dict)
    der_garbage = tmp_path / "bad-signed.mobileconfig"
    der_garbage.write_bytes(b"\x30\x03\x02\x01\x01")
    with pytest.raises(ConfigError, match="neither a property list nor a signed"):
        read_profile(der_garbage)


def _signed(data: bytes, *, detached: bool = False) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "MDM Signing")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    options = [pkcs7.PKCS7Options.DetachedSignature] if detached else []
    builder = pkcs7.PKCS7SignatureBuilder().set_data(data).add_signer(cert, key, hashes.SHA256())
    return builder.sign(Encoding.DER, options)


def test_signed_mobileconfig_is_unwrapped(tmp_path: Path) -> None:
    inner = plistlib.dumps(mobileconfig(payload("com.northpolesec.santa", SANTA_SETTINGS)))
    path = tmp_path / "signed.mobileconfig"
    path.write_bytes(_signed(inner))
    result = read_profile(path)
    assert result.signed
    assert result.values == EXPECTED_VALUES
    assert "signed profile: the signature was not verified" in result.notes


def test_detached_signature_has_no_profile(tmp_path: Path) -> None:
    path = tmp_path / "detached.mobileconfig"
    path.write_bytes(_signed(b"whatever", detached=True))
    with pytest.raises(ConfigError, match="detached"):
        read_profile(path)


@pytest.mark.parametrize("form", ["payload", "mcx", "plain"])
def test_import_render_load_round_trip(tmp_path: Path, form: str) -> None:
    if form == "payload":
        data: dict[str, Any] = mobileconfig(payload("com.northpolesec.santa", SANTA_SETTINGS))
    elif form == "mcx":
        data = mobileconfig(mcx("com.google.santa", SANTA_SETTINGS))
    else:
        data = SANTA_SETTINGS
    values = import_profile(save(tmp_path, data))
    direct = Config.from_values(values, environ=ENV)
    toml_path = tmp_path / "santacore.toml"
    toml_path.write_text(render_toml(values, header="imported"), encoding="utf-8")
    loaded = load_config(toml_path, environ=ENV)
    assert loaded == direct
    assert dict(loaded.extra) == {}
    assert loaded.client_mode is ClientMode.LOCKDOWN
    assert loaded.sync_base_url == "https://sync.example.com/v1/santa/"
    assert loaded.allowed_path_regex is not None and loaded.allowed_path_regex.pattern == "^/Users/[^/]+/bin/"
    assert loaded.server_auth_roots_data == PEM
    assert loaded.sync_client_content_encoding is ContentEncoding.GZIP
    assert loaded.static_rules == tuple(SANTA_SETTINGS["StaticRules"])
    assert not loaded.enable_page_zero_protection and loaded.disable_unknown_event_upload
    # ...and write_config produces the same file contents load_config accepts.
    written = write_config(tmp_path / "written.toml", values, environ=ENV)
    assert load_config(written, environ=ENV) == direct


def test_profile_import_is_a_dataclass_with_plain_values(tmp_path: Path) -> None:
    result = read_profile(save(tmp_path, payload("com.northpolesec.santa", {"ClientMode": 3})))
    assert isinstance(result, ProfileImport)
    assert type(result.values) is dict and result.ignored == {} and result.notes == ()


def test_sync_protocol_key(tmp_path: Path) -> None:
    """santacore's SyncProtocol picks the Santa release whose wire form the sync speaks."""
    from santacore.config.settings import SyncProtocol
    from santacore.santad.events import Variant

    path = tmp_path / "c.toml"
    assert load_config(None, environ={}).sync_protocol is SyncProtocol.NORTHPOLESEC  # the maintained Santa
    for value in ("google-json", "NorthPoleSec", "google-2024.6"):
        path.write_text(f'SyncProtocol = "{value}"\n')
        protocol = load_config(path, environ={}).sync_protocol
        assert Variant(protocol.value).value == value.lower()
    path.write_text('SyncProtocol = "moroz"\n')
    with pytest.raises(ConfigError, match="SyncProtocol: expected one of"):
        load_config(path, environ={})


# --- the configuration in force -----------------------------------------------------------------------------


_SERVER_VALUES: dict[str, Any] = {  # a value of each sync-state field type, unlike every Config default
    "SyncType": SyncType.CLEAN_ALL,
    "ClientMode | None": ClientMode.LOCKDOWN,
    "str | None": "^/x/",
    "bool | None": True,
    "int | None": 120,
    "float | None": 1718035512.5,
}


def test_in_force_sources_follow_the_sync_merge(tmp_path: Path) -> None:
    """Each sync-state field the sync's `effective_config` applies is reported as the server's, and only those:
    set one field at a time, the attribute that changes is the one `settings()` marks "server"."""
    local = Config.from_values({"StateDirectory": str(tmp_path), "ClientMode": 1}, source=tmp_path / "c.toml")
    by_attr = {spec.attr: spec.name for spec in KEYS}
    assert config_in_force(local, SyncState()).config == local
    applied = set()
    for f in dataclasses.fields(SyncState):
        state = dataclasses.replace(SyncState(), **{f.name: _SERVER_VALUES[str(f.type)]})
        in_force = config_in_force(local, state)
        changed = {a for a in by_attr if getattr(in_force.config, a) != getattr(local, a)}
        sources = {s.key: s.source for s in in_force.settings()}
        assert {by_attr[a] for a in changed} == {k for k, v in sources.items() if v is Source.SERVER}, f.name
        applied |= changed
    assert applied == {
        "client_mode",
        "allowed_path_regex",
        "blocked_path_regex",
        "enable_bundles",
        "enable_transitive_rules",
        "enable_all_event_upload",
        "disable_unknown_event_upload",
        "full_sync_interval",
    }
    untouched = config_in_force(local, SyncState())
    assert {s.key: s.source for s in untouched.settings()}["ClientMode"] is Source.FILE
    assert {s.key: s.source for s in untouched.settings()}["EnableBundles"] is Source.DEFAULT
