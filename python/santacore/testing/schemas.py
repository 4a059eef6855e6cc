"""Request-body validation of the testing sync server (§2.3, §3, §4.1, §4.3, §9.2).

Protobuf-JSON parse rules (§2.3), and Go encoding/json decoding into Moroz's structs (§9.2)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

_S, _U32, _I32, _F64, _BOOL, _ENUM = "str", "u32", "i32", "f64", "bool", "enum"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _msg(spec: Mapping[str, Any], **aliases: str) -> tuple[str, dict[str, Any]]:
    """A protobuf message schema: both the snake_case key and its lowerCamelCase form are accepted."""
    schema: dict[str, Any] = {}
    for key, kind in spec.items():
        schema[key] = schema[_camel(key)] = kind
    for alias, target in aliases.items():
        schema[alias] = spec[target]
    return ("msg", schema)


_COUNTS: Final = ("binary", "certificate", "compiler", "transitive", "teamid", "signingid", "cdhash")
_CERT: Final = _msg({"sha256": _S, "cn": _S, "org": _S, "ou": _S, "valid_from": _U32, "valid_until": _U32})
_EVENT_STRINGS: Final = (
    "file_sha256 file_path file_name executing_user file_bundle_id file_bundle_path file_bundle_executable_rel_path"
    " file_bundle_name file_bundle_version file_bundle_version_string file_bundle_hash parent_name team_id"
    " signing_id cdhash quarantine_data_url quarantine_referer_url quarantine_agent_bundle_id"
).split()
_EVENT: Final = _msg(
    {
        **dict.fromkeys(_EVENT_STRINGS, _S),
        "execution_time": _F64,
        "logged_in_users": ("list", _S),
        "current_sessions": ("list", _S),
        "decision": _ENUM,
        "file_bundle_hash_millis": _U32,
        "file_bundle_binary_count": _U32,
        "pid": _I32,
        "ppid": _I32,
        "quarantine_timestamp": _U32,
        "signing_chain": ("list", _CERT),
        "cs_flags": _U32,  # [N] 30
        "signing_status": _ENUM,  # [N] 31
        "static_rule": _BOOL,  # [N] 34
    }
)
PROTO_SCHEMAS: Final[dict[str, tuple[str, dict[str, Any]]]] = {
    "preflight": _msg(
        {
            **dict.fromkeys(
                "serial_num hostname os_version os_build model_identifier santa_version primary_user"
                " push_notification_token machine_id rules_hash".split(),
                _S,
            ),
            "client_mode": _ENUM,
            "request_clean_sync": _BOOL,
            **{f"{kind}_rule_count": _U32 for kind in _COUNTS},
            "push_notification_sync": _BOOL,
            "sip_status": _U32,
            "primary_user_groups": ("list", _S),
        },
        serial_number="serial_num",
    ),
    "eventupload": _msg({"events": ("list", _EVENT), "machine_id": _S}),
    "ruledownload": _msg({"cursor": _S, "machine_id": _S}),
    "postflight": _msg(
        {"rules_received": _U32, "rules_processed": _U32, "machine_id": _S, "sync_type": _ENUM, "rules_hash": _S}
    ),
}

# Moroz: Go encoding/json into santa.PreflightPayload, EventUploadRequest, PostflightPayload (§9.2).
_GO_SIGNING: Final = (
    "SigningEntry",
    {"cn": _S, "org": _S, "ou": _S, "sha256": _S, "valid_from": "int", "valid_until": "int"},
)
_GO_EVENT: Final = (
    "EventUploadEvent",
    {
        **dict.fromkeys(
            "decision executing_user file_bundle_executable_rel_path file_bundle_hash file_bundle_id file_bundle_name"
            " file_bundle_path file_bundle_version_string file_bundle_version file_name file_path file_sha256"
            " parent_name quarantine_agent_bundle_id quarantine_data_url quarantine_referer_url signing_id team_id"
            " cd_hash".split(),
            _S,
        ),
        "current_sessions": ("list", _S),
        "logged_in_users": ("list", _S),
        "execution_time": "float",
        "file_bundle_binary_count": "int",
        "file_bundle_hash_millis": "float",
        "quarantine_timestamp": "float",
        "pid": "int",
        "ppid": "int",
        "signing_chain": ("list", _GO_SIGNING),
    },
)
GO_SCHEMAS: Final[dict[str, tuple[str, dict[str, Any]]]] = {
    "preflight": (
        "PreflightPayload",
        {
            **dict.fromkeys(
                "serial_num hostname os_version os_build model_identifier santa_version primary_user".split(), _S
            ),
            **{f"{kind}_rule_count": "int" for kind in _COUNTS},
            "client_mode": "client_mode",
            "request_clean_sync": _BOOL,
        },
    ),
    "eventupload": ("EventUploadRequest", {"events": ("list", _GO_EVENT)}),
    "postflight": ("PostflightPayload", {"rules_received": "int", "rules_processed": "int"}),
}
_GO_TYPE_NAMES: Final = {_S: "string", "int": "int", "float": "float64", _BOOL: "bool"}


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _proto_int(value: Any, low: int, high: int) -> bool:
    """protobuf-JSON integers: a number, a quoted number, or an integral float, in range (§2.3)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            try:
                value = float(value)
            except ValueError:
                return False
    if isinstance(value, float):
        if not value.is_integer():
            return False
        value = int(value)
    return isinstance(value, int) and low <= value <= high


def proto_error(kind: Any, value: Any, where: str) -> str | None:
    """Why protobuf's JSON parser (ignore_unknown_fields) would reject `value`, or None."""
    if value is None:
        return None  # null = absent
    ok: bool
    if isinstance(kind, tuple) and kind[0] == "list":
        if not isinstance(value, list):
            return f"{where}: expected a list, got {_json_kind(value)}"
        for i, item in enumerate(value):
            if item is None:
                return f"{where}[{i}]: null in a repeated field"
            if problem := proto_error(kind[1], item, f"{where}[{i}]"):
                return problem
        return None
    if isinstance(kind, tuple):
        if not isinstance(value, dict):
            return f"{where or 'body'}: expected an object, got {_json_kind(value)}"
        for key, item in value.items():
            if key in kind[1] and (problem := proto_error(kind[1][key], item, f"{where}.{key}" if where else key)):
                return problem
        return None
    if kind == _S:
        ok = isinstance(value, str)
    elif kind == _BOOL:
        ok = isinstance(value, bool)  # §2.3: bools accept only true/false
    elif kind == _U32:
        ok = _proto_int(value, 0, 2**32 - 1)
    elif kind == _I32 or kind == _ENUM:
        ok = _proto_int(value, -(2**31), 2**31 - 1) or (kind == _ENUM and isinstance(value, str))
    else:  # _F64
        ok = (isinstance(value, int | float) and not isinstance(value, bool)) or (
            isinstance(value, str) and _is_number(value)
        )
    return None if ok else f"{where}: invalid {kind} value {json.dumps(value)}"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def go_error(kind: Any, value: Any, where: str, struct: str) -> str | None:
    """Why Go's encoding/json would fail to decode `value` into Moroz's struct field, or None."""
    if value is None:
        return None  # null leaves the Go zero value
    if isinstance(kind, tuple) and kind[0] == "list":
        if not isinstance(value, list):
            return f"json: cannot unmarshal {_json_kind(value)} into Go struct field {struct}.{where} of type []"
        for item in value:
            if problem := go_error(kind[1], item, where, struct):
                return problem
        return None
    if isinstance(kind, tuple):
        name, schema = kind
        if not isinstance(value, dict):
            return f"json: cannot unmarshal {_json_kind(value)} into Go value of type santa.{name}"
        by_lower = {key.lower(): key for key in schema}  # Go matches keys case-insensitively
        for key, item in value.items():
            target = by_lower.get(key.lower())
            if target is not None and (problem := go_error(schema[target], item, target, name)):
                return problem
        return None
    if kind == "client_mode":
        if not isinstance(value, str):
            kind_name = _json_kind(value)
            return f"json: cannot unmarshal {kind_name} into Go struct field {struct}.{where} of type santa.ClientMode"
        if value not in ("MONITOR", "LOCKDOWN"):  # santa.ClientMode.UnmarshalText (§9.2)
            return f'unknown client_mode value "{value}"'
        return None
    ok = {
        _S: isinstance(value, str),
        _BOOL: isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
    }[kind]
    if ok:
        return None
    shown = "number " + json.dumps(value) if _json_kind(value) == "number" else _json_kind(value)
    return f"json: cannot unmarshal {shown} into Go struct field {struct}.{where} of type {_GO_TYPE_NAMES[kind]}"


def reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON literal {name}")
