"""The protobuf-JSON response reader (spec §2.3): `JsonStringToMessage` and the response message schemas.

`ignore_unknown_fields`, as Santa's protobuf variants ([G] ≥ 2024.6, [N]) parse a sync response.

`protobuf_document(body, stage, schemas(variant).<stage>)` gives the known fields by proto name (absent ones
missing) or raises `SyncError(stage=...)`; the acceptance rules are listed in `santacore.sync.protocol`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from santacore.errors import SyncError
from santacore.santad.events import Variant
from santacore.sync.wire import reject_constant, strip_xssi

__all__ = ["Schemas", "protobuf_document", "schemas"]

_UINT32_MAX: Final = 0xFFFFFFFF
_INT32_MIN: Final = -(2**31)
_INT32_MAX: Final = 2**31 - 1


class _Invalid(Exception):
    """A value protobuf's JSON parser refuses; becomes SyncError."""


@dataclass(frozen=True)
class _Field:
    name: str
    """The proto field name; also the key of the parsed dict."""
    kind: str
    """"string", "bool", "uint32", "enum" or "message"."""
    json_name: str = ""
    repeated: bool = False
    optional: bool = False
    """Explicit presence: an unknown enum name leaves it unset instead of 0."""
    enum: Mapping[str, int] = field(default_factory=dict)
    message: _Message | None = None


def _camel(name: str) -> str:
    """protobuf's ToJsonName / camelcase_name: drop `_`, upper-case the letter after it."""
    out, upper = [], False
    for ch in name:
        if ch == "_":
            upper = True
        else:
            out.append(ch.upper() if upper else ch)
            upper = False
    return "".join(out)


class _Message:
    def __init__(self, name: str, fields: Sequence[_Field]) -> None:
        self.name = name
        by_camel = {_camel(f.name): f for f in fields}
        by_name = {f.name: f for f in fields}
        by_json = {(f.json_name or _camel(f.name)): f for f in fields}
        self._lookups = (by_camel, by_name, by_json)  # protobuf's FieldByName order

    def find(self, key: str) -> _Field | None:
        for table in self._lookups:
            if key in table:
                return table[key]
        return None


class _Object(list[tuple[str, Any]]):
    """A JSON object with its key/value pairs in order, duplicates kept (protobuf refuses a field set twice)."""


_WS: Final = frozenset(" \t\n\v\f\r")
_INT_TEXT: Final = re.compile(r"[+-]?[0-9]+")
_FLOAT_TEXT: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_MAX_DEPTH: Final = 100


def _integral(value: float, lo: float, hi: float) -> int:
    """protobuf's ParseFloatStringAsInt: finite, in range, no fractional part."""
    if not math.isfinite(value):
        raise _Invalid(f"invalid number {value!r}")
    if value < lo or value > hi:
        raise _Invalid(f"number {value!r} out of range")
    if value != math.floor(value):
        raise _Invalid(f"expected integer, but {value!r} has a fractional part")
    return int(value)


def _uint32(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _Invalid(f"expected number or string, got {_kind(value)}")
    if isinstance(value, int):
        n = value
    elif isinstance(value, float):
        n = _integral(value, 0, 2.0**54)
    else:
        if any(c in _WS for c in value):
            raise _Invalid("non-number characters in quoted number")
        if _INT_TEXT.fullmatch(value) and not value.startswith("-"):
            n = int(value)
        elif _FLOAT_TEXT.fullmatch(value):
            n = _integral(float(value), 0, 2.0**54)
        else:
            raise _Invalid(f"invalid number {value!r}")
    if not 0 <= n <= _UINT32_MAX:
        raise _Invalid(f"integer {n} out of range")
    return n


def _atoi32(text: str) -> int | None:
    """absl::SimpleAtoi into int32: surrounding whitespace ignored, optional sign, decimal digits."""
    text = text.strip(" \t\n\v\f\r")
    if not _INT_TEXT.fullmatch(text):
        return None
    n = int(text)
    return n if _INT32_MIN <= n <= _INT32_MAX else None


def _enum(value: object, names: Mapping[str, int]) -> int | None:
    """An enum number, or None for a name this schema does not know (ignore_unknown_fields)."""
    if isinstance(value, str):
        if value in names:
            return names[value]
        return _atoi32(value)  # quoted numbers; anything else is an unknown name
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid(f"expected number or string, got {_kind(value)}")
    n = value if isinstance(value, int) else _integral(value, -(2.0**53), 2.0**53)
    if not _INT32_MIN <= n <= _INT32_MAX:
        raise _Invalid(f"integer {n} out of range")
    return n


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, _Object):
        return "an object"
    return "an array"


def _singular(f: _Field, value: object) -> Any:
    """One non-null value of field `f`; None means "leave unset" (unknown name of an optional enum)."""
    if f.kind == "string":
        if not isinstance(value, str):
            raise _Invalid(f"{f.name}: expected a string, got {_kind(value)}")
        return value
    if f.kind == "bool":
        if not isinstance(value, bool):
            raise _Invalid(f"{f.name}: expected 'true' or 'false', got {_kind(value)}")
        return value
    if f.kind == "uint32":
        try:
            return _uint32(value)
        except _Invalid as e:
            raise _Invalid(f"{f.name}: {e}") from None
    if f.kind == "enum":
        try:
            n = _enum(value, f.enum)
        except _Invalid as e:
            raise _Invalid(f"{f.name}: {e}") from None
        return n if n is not None or f.optional else 0
    assert f.message is not None
    if not isinstance(value, _Object):
        raise _Invalid(f"{f.name}: expected an object, got {_kind(value)}")
    return _read_message(value, f.message)


def _read_message(obj: _Object, message: _Message) -> dict[str, Any]:
    """The known fields of `obj` by proto name; absent fields are missing."""
    out: dict[str, Any] = {}
    seen: set[str] = set()
    for key, value in obj:
        f = message.find(key)
        if f is None or value is None:  # unknown field, or null = absent
            continue
        if f.name in seen:
            raise _Invalid(f"{message.name}.{key}: {f.name!r} has already been set")
        seen.add(f.name)
        if f.repeated:
            if not isinstance(value, list) or isinstance(value, _Object):
                raise _Invalid(f"{f.name}: expected an array, got {_kind(value)}")
            items = []
            for item in value:
                if item is None:
                    raise _Invalid(f"{f.name}: null cannot occur inside of repeated fields")
                items.append(_singular(f, item))
            out[f.name] = items
        else:
            parsed = _singular(f, value)
            if parsed is not None:
                out[f.name] = parsed
    return out


def _check_document(tree: object) -> None:
    """What protobuf's lexer refuses but Python's json accepts: unpaired `\\ud800`-style escapes (the only way a
    lone surrogate gets into decoded JSON) and nesting past `ParseOptions::kDefaultDepth` (100; whether the
    document's own object counts is unverified, so it is counted)."""
    stack: list[tuple[object, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if _SURROGATE.search(node):
                raise _Invalid("invalid unicode escape: unpaired surrogate")
        elif isinstance(node, list):
            if depth > _MAX_DEPTH:
                raise _Invalid("JSON content was too deeply nested")
            if isinstance(node, _Object):
                for key, value in node:
                    stack.append((key, depth))
                    stack.append((value, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in node)


def protobuf_document(body: bytes, stage: str, message: _Message) -> dict[str, Any]:
    """`body` read as `message` by proto field name; `SyncError(stage=stage)` where protobuf's parser fails."""
    if not body:
        return {}  # Santa skips parsing an empty body: all defaults
    try:
        text = strip_xssi(bytes(body)).decode("utf-8")
        tree = json.loads(text, object_pairs_hook=_Object, parse_constant=reject_constant)
        if not isinstance(tree, _Object):
            raise _Invalid(f"expected a JSON object, got {_kind(tree)}")
        _check_document(tree)
        return _read_message(tree, message)
    except (_Invalid, ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise SyncError(f"Failed to parse {stage} response JSON: {e}", stage=stage) from None


class Schemas(NamedTuple):
    """The response message of each stage."""

    preflight: _Message
    eventupload: _Message
    ruledownload: _Message
    postflight: _Message


def schemas(variant: Variant) -> Schemas:
    """The response messages `variant`'s sync client parses ([N] knows more enum values and rule fields)."""
    return _N_SCHEMAS if variant is Variant.NORTHPOLESEC else _G_SCHEMAS


def _build_schemas(northpolesec: bool) -> Schemas:
    client_modes = {"UNKNOWN_CLIENT_MODE": 0, "MONITOR": 1, "LOCKDOWN": 2}
    sync_types = {"SYNC_TYPE_UNSPECIFIED": 0, "NORMAL": 1, "normal": 1, "CLEAN": 2, "clean": 2}
    sync_types |= {"CLEAN_ALL": 3, "clean_all": 3}
    policies = {"POLICY_UNKNOWN": 0, "ALLOWLIST": 1, "ALLOWLIST_COMPILER": 2, "BLOCKLIST": 3}
    policies |= {"SILENT_BLOCKLIST": 4, "REMOVE": 5, "WHITELIST": 1, "WHITELIST_COMPILER": 2, "BLACKLIST": 3}
    policies |= {"SILENT_BLACKLIST": 4}
    if northpolesec:  # §9.1
        client_modes |= {"STANDALONE": 3}
        sync_types |= {"CLEAN_STANDALONE": 4, "CLEAN_RULES": 5, "CLEAN_FILE_ACCESS_RULES": 6}
        policies |= {"CEL": 6, "SILENT_GUI_BLOCKLIST": 8, "SILENT_TTY_BLOCKLIST": 9}
    rule_types = {"RULETYPE_UNKNOWN": 0, "BINARY": 1, "CERTIFICATE": 2, "TEAMID": 3, "SIGNINGID": 4, "CDHASH": 5}
    file_access = {"FILE_ACCESS_ACTION_UNSPECIFIED": 0, "NONE": 1, "None": 1, "AUDIT_ONLY": 2, "AuditOnly": 2}
    file_access |= {"DISABLE": 3, "Disable": 3}

    def b(name: str, json_name: str = "") -> _Field:
        return _Field(name, "bool", json_name, optional=True)

    preflight = _Message(
        "PreflightResponse",
        [
            _Field("client_mode", "enum", enum=client_modes),
            _Field("sync_type", "enum", optional=True, enum=sync_types),
            _Field("batch_size", "uint32"),
            b("enable_bundles"),
            b("enable_transitive_rules"),
            b("enable_all_event_upload"),
            b("disable_unknown_event_upload"),
            _Field("full_sync_interval_seconds", "uint32", "full_sync_interval"),
            _Field("push_notification_full_sync_interval_seconds", "uint32", "push_notification_full_sync_interval"),
            _Field(
                "push_notification_global_rule_sync_deadline_seconds",
                "uint32",
                "push_notification_global_rule_sync_deadline",
            ),
            _Field("allowed_path_regex", "string", optional=True),
            _Field("blocked_path_regex", "string", optional=True),
            b("block_usb_mount"),
            _Field("remount_usb_mode", "string", repeated=True),
            _Field("override_file_access_action", "enum", optional=True, enum=file_access),
            b("deprecated_enabled_transitive_whitelisting", "enabled_transitive_whitelisting"),
            b("deprecated_transitive_whitelisting_enabled", "transitive_whitelisting_enabled"),
            b("deprecated_bundles_enabled", "bundles_enabled"),
            _Field("deprecated_fcm_full_sync_interval_seconds", "uint32", "fcm_full_sync_interval", optional=True),
            _Field(
                "deprecated_fcm_global_rule_sync_deadline_seconds",
                "uint32",
                "fcm_global_rule_sync_deadline",
                optional=True,
            ),
            _Field("deprecated_whitelist_regex", "string", "whitelist_regex", optional=True),
            _Field("deprecated_blacklist_regex", "string", "blacklist_regex", optional=True),
            b("deprecated_clean_sync", "clean_sync"),
            # Push (addendum §1.1), read by santacore.sync.push.settings.
            _Field("push_server", "string"),
            _Field("push_token", "string"),
            _Field("push_key", "string"),
            _Field("push_deviceid", "string"),
            _Field("push_tags", "string", repeated=True),
            _Field("push_issuer_token", "string"),
        ],
    )
    rule_fields = [
        _Field("identifier", "string"),
        _Field("policy", "enum", enum=policies),
        _Field("rule_type", "enum", enum=rule_types),
        _Field("custom_msg", "string"),
        _Field("custom_url", "string"),
        _Field("file_bundle_hash", "string"),
        _Field("file_bundle_binary_count", "uint32"),
        _Field("deprecated_sha256", "string", "sha256"),
    ]
    if northpolesec:
        rule_fields += [
            _Field("notification_app_name", "string"),
            _Field("cel_expr", "string"),
            _Field("event_detail_button_label", "string"),
        ]
    rule = _Message("Rule", rule_fields)
    return Schemas(
        preflight=preflight,
        eventupload=_Message("EventUploadResponse", [_Field("event_upload_bundle_binaries", "string", repeated=True)]),
        ruledownload=_Message(
            "RuleDownloadResponse",
            [_Field("rules", "message", repeated=True, message=rule), _Field("cursor", "string")],
        ),
        postflight=_Message("PostflightResponse", []),
    )


_G_SCHEMAS: Final = _build_schemas(northpolesec=False)
_N_SCHEMAS: Final = _build_schemas(northpolesec=True)
