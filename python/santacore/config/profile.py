"""Santa's configuration profiles (`.mobileconfig` / `.plist`) read as the values of santacore's TOML configuration.

`santacore config import` is built on this; the keys, their parsing and validation live in
`santacore.config.keys`, the TOML writer in `santacore.config.writer`.

* Santa silently ignores a value of the wrong type, and so does `read_profile`: it lists what it
  skipped, and why, in `ProfileImport.ignored` (`load_config` rejects such a value instead).
* Deprecated key names follow Santa's precedence and are written with the new names.
* EnableBundles and FullSyncInterval are not imported: Santa takes them from the sync server only.
* Signed (CMS) profiles are unwrapped with asn1crypto; the signature is *not* verified
  (`ProfileImport.signed` says so). Only payloads for ``com.northpolesec.santa`` and
  ``com.google.santa`` are read, and of the older ManagedClient form only the ``Forced`` settings
  (the only ones Santa reads).
"""

from __future__ import annotations

import datetime as dt
import os
import plistlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from santacore.config.keys import (
    KEYS,
    MANAGED_CLIENT_PAYLOAD,
    SANTA_DOMAINS,
    InvalidValue,
    Key,
    KeyContext,
    parse_bool,
    parse_client_mode,
    unknown_key_reason,
)
from santacore.config.settings import ConfigError, read_bytes
from santacore.files import PROFILE_LIMIT

__all__ = ["ProfileImport", "import_profile", "read_profile"]


@dataclass(frozen=True)
class ProfileImport:
    """What `read_profile` found: `values` (TOML-ready, santacore's keys only) and what it skipped."""

    values: dict[str, Any]
    ignored: dict[str, str]  # key -> why it was not imported
    notes: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()  # the preference domains read (empty for a plain plist)
    signed: bool = False  # the file was a CMS-signed profile; its signature was NOT verified


def import_profile(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The santacore settings in Santa's profile at `path` (see `read_profile` for what was skipped)."""
    return read_profile(path).values


def read_profile(path: str | os.PathLike[str]) -> ProfileImport:
    """Read a ``.mobileconfig`` (signed or not) or a plain plist of Santa keys.

    Keys are imported the way Santa reads them (a number for a boolean, data for
    ServerAuthRootsData, deprecated names); keys Santa would ignore, keys santacore does not
    use and values santacore would reject are listed in `ignored` with the reason."""
    where = str(path)
    raw = read_bytes(path, "profile", PROFILE_LIMIT)
    notes: list[str] = []
    signed = raw[:1] == b"\x30" or raw.lstrip().startswith(b"-----BEGIN")  # DER or PEM CMS
    if signed:
        raw = _unwrap_cms(raw, where)
        notes.append("signed profile: the signature was not verified")
    try:
        top = plistlib.loads(raw)
    except Exception as exc:  # plistlib raises InvalidFileException, ExpatError, ValueError...
        raise ConfigError(f"{where}: not a property list: {exc}") from None
    if not isinstance(top, dict):
        raise ConfigError(f"{where}: expected a dictionary at the top of the property list")
    if "PayloadContent" in top or top.get("PayloadType") in (*SANTA_DOMAINS, MANAGED_CLIENT_PAYLOAD):
        settings, domains = _profile_settings(top, where, notes)
    else:
        settings, domains = dict(top), ()
    values, ignored = _import_settings(settings, notes)
    return ProfileImport(values, ignored, tuple(notes), domains, signed)


def _unwrap_cms(raw: bytes, where: str) -> bytes:
    from asn1crypto import cms, pem  # type: ignore[import-untyped,unused-ignore]

    try:
        if pem.detect(raw):
            _, _, raw = pem.unarmor(raw)
        info = cms.ContentInfo.load(raw)
        if info["content_type"].native != "signed_data":
            raise ValueError(f"CMS content type {info['content_type'].native}")
        content = info["content"]["encap_content_info"]["content"].native
    except Exception as exc:  # asn1crypto raises ValueError, TypeError...
        raise ConfigError(f"{where}: neither a property list nor a signed (CMS) profile: {exc}") from None
    if not isinstance(content, bytes):
        raise ConfigError(f"{where}: signed profile without embedded content (detached signature)")
    return content


def _profile_settings(top: dict[str, Any], where: str, notes: list[str]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Merge the Santa settings of every matching payload, in document order."""
    payloads = top.get("PayloadContent")
    if not isinstance(payloads, list):
        payloads = [top]  # a bare payload dictionary
    settings: dict[str, Any] = {}
    domains: list[str] = []

    def merge(found: Mapping[str, Any], domain: str) -> None:
        for key, value in found.items():
            if key.startswith("Payload") or key == "_manualProfile":
                continue
            if key in settings and settings[key] != value:
                notes.append(f"{key}: set by more than one payload; the later one ({domain}) is used")
            settings[key] = value
        if domain not in domains:
            domains.append(domain)

    for payload in payloads:
        if not isinstance(payload, dict):
            continue
        kind = payload.get("PayloadType")
        if kind in SANTA_DOMAINS:
            merge(payload, kind)
        elif kind == MANAGED_CLIENT_PAYLOAD and isinstance(payload.get("PayloadContent"), dict):
            for domain, body in payload["PayloadContent"].items():
                if domain not in SANTA_DOMAINS or not isinstance(body, dict):
                    continue
                for level, entries in body.items():
                    if level != "Forced":
                        notes.append(f"{domain}: {level} settings skipped (Santa reads only forced settings)")
                        continue
                    for entry in entries if isinstance(entries, list) else []:
                        mcx = entry.get("mcx_preference_settings") if isinstance(entry, dict) else None
                        if isinstance(mcx, dict):
                            merge(mcx, domain)
    if not domains:
        raise ConfigError(f"{where}: no {' or '.join(SANTA_DOMAINS)} payload in this profile")
    if len(domains) > 1:
        notes.append(f"settings merged from {', '.join(domains)}")
    return settings, tuple(domains)


def _import_settings(settings: Mapping[str, Any], notes: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    values: dict[str, Any] = {}
    ignored: dict[str, str] = {}
    ctx = KeyContext("profile", None, {"HOME": "~"})  # values are checked, not resolved
    by_name = {name: spec for spec in KEYS for name in (spec.name, *spec.aliases)}
    for spec in KEYS:
        names = [n for n in (spec.name, *spec.aliases) if n in settings]
        if not names:
            continue
        if spec.santa_type is None:
            for n in names:
                ignored[n] = "Santa does not read this key from a profile"
            continue
        if len(names) > 1:
            chosen = names[-1] if spec.alias_wins else names[0]
            for n in names:
                if n != chosen:
                    ignored[n] = f"Santa uses {chosen} when both are set"
            names = [chosen]
        name = names[0]
        try:
            value = _from_plist(spec, settings[name])
            spec.parse(value, ctx)
        except InvalidValue as exc:
            ignored[name] = f"{name}{exc.sub}: {exc}"
            continue
        if name != spec.name:
            notes.append(f"{name} imported as {spec.name}")
        values[spec.name] = value
    for key in settings:
        if key not in by_name:
            ignored[key] = unknown_key_reason(key)
    return values, ignored


def _from_plist(spec: Key, value: Any) -> Any:
    """A profile value as Santa reads it, converted to a TOML value."""
    assert spec.santa_type is not None
    if not isinstance(value, spec.santa_type):
        wanted = spec.santa_type[0] if isinstance(spec.santa_type, tuple) else spec.santa_type
        raise InvalidValue(f"Santa ignores it: expected {_plist_kind(wanted)}, got {_plist_kind(type(value))}")
    if spec.parse is parse_bool:
        return bool(value)  # NSNumber boolValue
    if spec.parse is parse_client_mode and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidValue("expected PEM text, got binary data") from None
    return _plain(value)


_PLIST_KINDS: Final[Mapping[type, str]] = {
    bool: "a number",
    int: "a number",
    float: "a number",
    str: "a string",
    bytes: "data",
    list: "an array",
    dict: "a dictionary",
    dt.datetime: "a date",
}


def _plist_kind(kind: type) -> str:
    return _PLIST_KINDS.get(kind, kind.__name__)


def _plain(value: Any) -> Any:
    """A plist value as a TOML value (data has no TOML form)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        raise InvalidValue("data values cannot be written to TOML")
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        raise InvalidValue(f"{value} is too large for TOML")
    return value
