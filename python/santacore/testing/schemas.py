"""Request-body validation of the testing sync server for Moroz's profile: Go encoding/json decoding into Moroz's
structs (§9.2). Protobuf-JSON requests are checked against the generated classes (`santacore.testing.proto`)."""

from __future__ import annotations

import json
from typing import Any, Final

_S, _BOOL = "str", "bool"


_COUNTS: Final = ("binary", "certificate", "compiler", "transitive", "teamid", "signingid", "cdhash")
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
