"""A conformant Santa sync server on loopback, for tests and for trying santacore without a server.

An independent implementation of the *server* half of the protocol (spec §2–§4, §9): it imports
nothing from `santacore.sync`, so a client bug cannot hide behind a helper both sides share.

* Profiles give the wire behaviour of a protobuf-JSON server for [G] (`google`) or [N]
  (`northpolesec`), of Moroz (§9.2) and of Zentral (§9.4). Every behaviour that differs is a field of
  `Quirks`, so a test can toggle one quirk without taking the whole profile.
* `faults` injects transport and body faults (status, delay, dropped connection, truncated or
  oversized body, malformed JSON, wrong JSON types, anti-XSSI prefix, compressed response); each fires
  a given number of times, then clears.
* State (rules, machines, bundles, received preflights/events/postflights) lives in SQLite — in memory
  by default, in a file with `state_db` so it survives a restart. `requests` (every request as
  received) is kept in memory only.

A testing aid, not a production server: plain HTTP, no TLS, no client certificates.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import secrets
import signal
import socket
import sqlite3
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
import weakref
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any, Final, Literal, cast, get_args

__all__ = ["Fault", "FaultList", "Quirks", "RecordedRequest", "Settings", "SyncServer", "serve"]

Profile = Literal["google", "northpolesec", "moroz", "zentral"]
FaultKind = Literal[
    "status", "delay", "drop", "truncate", "malformed_json", "wrong_types", "oversized", "xssi", "compress"
]

STAGES: Final = ("preflight", "eventupload", "ruledownload", "postflight")
XSRF_STAGE: Final = "xsrf"
PROFILES: Final[tuple[str, ...]] = get_args(Profile)
FAULT_KINDS: Final[tuple[str, ...]] = get_args(FaultKind)
_PRE_FAULTS: Final = frozenset({"status", "delay", "drop"})  # applied before the request is handled
_POST_FAULTS: Final = frozenset(FAULT_KINDS) - _PRE_FAULTS  # applied to a 200 answer

XSSI_PREFIX: Final = ")]}'\n"  # §2.3: the 5-byte prefix; the 3-byte alternative is "])}"
XSSI_SHORT_PREFIX: Final = "])}"
XSRF_TOKEN_HEADER: Final = "X-XSRF-TOKEN"  # §2.5
XSRF_NAME_HEADER: Final = "X-XSRF-TOKEN-HEADER"
CLEAN_TYPES: Final = frozenset({"CLEAN", "CLEAN_ALL"})
MOROZ_POLICIES: Final = frozenset({"ALLOWLIST", "ALLOWLIST_COMPILER", "BLOCKLIST", "REMOVE"})  # §9.2
ZENTRAL_EMPTY_REGEX: Final = "(?!)"  # §9.4: an empty path regex is sent as a regex matching nothing
DEFAULT_MAX_BODY: Final = 8 * 1024 * 1024
_DRAIN_LIMIT: Final = 64 * 1024 * 1024  # read and discard an oversized body up to this, so the 413 arrives
_MAX_CURSORS: Final = 4096


# --------------------------------------------------------------------------------------------------
# Profiles, quirks and settings


@dataclass
class Quirks:
    """Every server behaviour the profiles differ in; `Quirks.for_profile` gives a profile's set."""

    path_prefix: str = ""  # Moroz routes live under /v1/santa (§9.2)
    # "http": decode per Content-Encoding (deflate = zlib stream, gzip, none; §2.2). "zlib": always zlib,
    # whatever the headers say (Moroz). "zentral": zlib if labelled deflate/zlib, else raw JSON (§9.4).
    request_decoding: Literal["http", "zlib", "zentral"] = "http"
    read_ruledownload_body: bool = True  # Moroz never reads it (§9.2)
    # "proto": protobuf-JSON parse rules (§2.3) → 400; "go": Go encoding/json into Moroz's structs → 500.
    validation: Literal["proto", "go", "none"] = "proto"
    response_style: Literal["proto", "go", "django"] = "proto"  # compact / Go pretty+newline / Django
    preflight_style: Literal["proto", "moroz", "zentral"] = "proto"
    paginate: bool = True  # Moroz: one page, no cursor (§9.2)
    trailing_empty_page: bool = False  # Zentral: a cursor after every non-empty page, so one empty last page
    null_empty_rules: bool = False  # Moroz: a Go nil slice, `{"rules": null}`
    rule_delta: bool = False  # Zentral: a normal sync sends only changes (new, changed, REMOVE) (§9.4)
    allowed_policies: frozenset[str] | None = None  # Moroz knows 4 policies (§9.2)
    xsrf_route: bool = True  # Moroz and Zentral have no /xsrf/ route
    enrollment: bool = False  # Zentral: stages other than preflight get 403 until preflight enrolled (§9.4)
    enrollment_header: str = "Zentral-Authorization"  # carries "Bearer <secret>" (§9.4)
    uuid_machine_ids: bool = False  # Zentral: the machine ID must be a UUID, any case/format (§9.4)
    clean_on_enrollment: bool = False  # Zentral: a newly enrolled machine gets a clean sync
    honour_clean_request: bool = True  # answer `request_clean_sync: true` with CLEAN (Moroz ignores it)
    default_clean_sync: bool = False  # Moroz's sample config sets clean_sync = true (§9.2)
    sync_type_min_version: tuple[int, int] | None = None  # Zentral: older santa_version gets clean_sync
    # Keys a postflight must carry (with CLEAN/CLEAN_ALL) to confirm a clean sync; () = any postflight does.
    postflight_sync_type_keys: tuple[str, ...] = ()
    bundle_requests: Literal["never", "enabled", "always"] = "enabled"  # ask for bundle binaries when...
    zentral_checks: bool = False  # Zentral's 500s: no santa_version, non-numeric os_version, ... (§9.4)

    @classmethod
    def for_profile(cls, profile: str) -> Quirks:
        if profile == "google":
            return cls()
        if profile == "northpolesec":
            return cls(postflight_sync_type_keys=("syncType", "sync_type"))  # §3.4: [N] reports syncType
        if profile == "moroz":
            return cls(
                path_prefix="/v1/santa",
                request_decoding="zlib",
                read_ruledownload_body=False,
                validation="go",
                response_style="go",
                preflight_style="moroz",
                paginate=False,
                null_empty_rules=True,
                allowed_policies=MOROZ_POLICIES,
                xsrf_route=False,
                honour_clean_request=False,
                default_clean_sync=True,
                bundle_requests="never",
            )
        if profile == "zentral":
            return cls(
                request_decoding="zentral",
                validation="none",
                response_style="django",
                preflight_style="zentral",
                trailing_empty_page=True,
                rule_delta=True,
                xsrf_route=False,
                enrollment=True,
                uuid_machine_ids=True,
                clean_on_enrollment=True,
                sync_type_min_version=(2024, 1),
                postflight_sync_type_keys=("syncType",),
                bundle_requests="always",
                zentral_checks=True,
            )
        raise ValueError(f"unknown profile {profile!r} (one of {', '.join(PROFILES)})")


@dataclass
class Settings:
    """What preflight hands out (§3.1) and how rules are paged; mutable while the server runs."""

    client_mode: str | None = "MONITOR"
    batch_size: int = 50
    full_sync_interval: int = 600
    enable_bundles: bool = False
    enable_transitive_rules: bool = False
    enable_all_event_upload: bool = False
    disable_unknown_event_upload: bool = False
    allowed_path_regex: str | None = None
    blocked_path_regex: str | None = None
    sync_type: str | None = None  # sent at every preflight; per-machine ones: `set_sync_type(..., machine_id=)`
    page_size: int | None = None  # rules per ruledownload page; None = batch_size
    preflight_extra: dict[str, Any] = field(default_factory=dict)  # merged last into every preflight answer


# --------------------------------------------------------------------------------------------------
# Faults


@dataclass(eq=False)
class Fault:
    """One injected fault. It applies to requests matching `stage`/`machine_id` (None = any), lets the
    first `skip` of them through, fires `times` times, then leaves the list. `fired` counts firings.

    kinds: status (`status`, `headers`, `body`; 3xx default Location), delay (`delay` seconds, then the
    normal answer), drop (close without answering), truncate (Content-Length larger than what is sent),
    malformed_json (`body`), wrong_types (`fields` merged into the answer), oversized (`size` bytes of
    valid JSON), xssi (`prefix`), compress (`encoding` gzip|deflate).
    """

    kind: FaultKind
    stage: str | None = None
    times: int = 1
    machine_id: str | None = None
    skip: int = 0
    status: int = 500
    delay: float = 1.0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    fields: dict[str, Any] | None = None
    prefix: str = XSSI_PREFIX
    encoding: Literal["gzip", "deflate"] = "gzip"
    size: int = 16 * 1024 * 1024
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r} (one of {', '.join(FAULT_KINDS)})")
        if self.stage is not None and self.stage not in (*STAGES, XSRF_STAGE):
            raise ValueError(f"unknown stage {self.stage!r}")
        if self.times < 1 or self.skip < 0:
            raise ValueError("times must be >= 1 and skip >= 0")

    @property
    def done(self) -> bool:
        return self.fired >= self.times


# Per-stage defaults of `wrong_types`: values of the wrong JSON type for fields the client must parse.
_WRONG_TYPES: Final[dict[str, dict[str, Any]]] = {
    "preflight": {"batch_size": "fifty", "client_mode": True, "enable_bundles": "yes", "full_sync_interval": [600]},
    "eventupload": {"event_upload_bundle_binaries": "not-a-list"},
    "ruledownload": {"rules": {"identifier": "not-a-list"}, "cursor": 7},
    "postflight": {"NoOp": 1},
    "xsrf": {"token": 1},
}


class FaultList:
    """The server's pending faults (thread-safe). `add(kind, ...)` queues one and returns it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.fired: list[tuple[Fault, str | None, str | None]] = []  # (fault, stage, machine_id) per firing

    def add(self, kind: FaultKind, **options: Any) -> Fault:
        return self.append(Fault(kind, **options))

    def append(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._faults)

    def __iter__(self) -> Iterator[Fault]:
        with self._lock:
            return iter(list(self._faults))

    def _take(self, stage: str | None, machine_id: str | None, kinds: frozenset[str]) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.kind not in kinds or fault.stage not in (None, stage):
                    continue
                if fault.machine_id is not None and fault.machine_id != machine_id:
                    continue
                if fault.skip:
                    fault.skip -= 1
                    continue
                fault.fired += 1
                if fault.done:
                    self._faults.remove(fault)
                self.fired.append((fault, stage, machine_id))
                return fault
        return None


# --------------------------------------------------------------------------------------------------
# Records


@dataclass
class RecordedRequest:
    """One request as received: `raw_body` is the wire bytes, `body` the decoded bytes, `data` the JSON."""

    method: str
    path: str
    stage: str | None
    machine_id: str | None
    headers: dict[str, str]
    raw_body: bytes
    body: bytes | None = None
    data: Any = None
    status: int | None = None  # None: no answer was sent (dropped)
    error: str | None = None
    fault: str | None = None
    received_at: float = field(default_factory=time.time)

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)


@dataclass(frozen=True)
class Bundle:
    """What the server knows of one bundle hash (§4.5)."""

    hash: str
    binary_count: int | None
    binaries: frozenset[str]
    complete: bool


@dataclass
class _Reply:
    status: int
    obj: Any = None  # JSON value, encoded in the profile's style
    body: bytes | None = None  # verbatim body (wins over obj)
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None


class _TooLarge(Exception):
    pass


class _BadBody(Exception):
    pass


# --------------------------------------------------------------------------------------------------
# Request schemas (§3, §4.1, §4.3; §9.2 for Moroz's Go structs)

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
_PROTO_SCHEMAS: Final[dict[str, tuple[str, dict[str, Any]]]] = {
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
_GO_SCHEMAS: Final[dict[str, tuple[str, dict[str, Any]]]] = {
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


def _proto_error(kind: Any, value: Any, where: str) -> str | None:
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
            if problem := _proto_error(kind[1], item, f"{where}[{i}]"):
                return problem
        return None
    if isinstance(kind, tuple):
        if not isinstance(value, dict):
            return f"{where or 'body'}: expected an object, got {_json_kind(value)}"
        for key, item in value.items():
            if key in kind[1] and (problem := _proto_error(kind[1][key], item, f"{where}.{key}" if where else key)):
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


def _go_error(kind: Any, value: Any, where: str, struct: str) -> str | None:
    """Why Go's encoding/json would fail to decode `value` into Moroz's struct field, or None."""
    if value is None:
        return None  # null leaves the Go zero value
    if isinstance(kind, tuple) and kind[0] == "list":
        if not isinstance(value, list):
            return f"json: cannot unmarshal {_json_kind(value)} into Go struct field {struct}.{where} of type []"
        for item in value:
            if problem := _go_error(kind[1], item, where, struct):
                return problem
        return None
    if isinstance(kind, tuple):
        name, schema = kind
        if not isinstance(value, dict):
            return f"json: cannot unmarshal {_json_kind(value)} into Go value of type santa.{name}"
        by_lower = {key.lower(): key for key in schema}  # Go matches keys case-insensitively
        for key, item in value.items():
            target = by_lower.get(key.lower())
            if target is not None and (problem := _go_error(schema[target], item, target, name)):
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


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON literal {name}")


# --------------------------------------------------------------------------------------------------
# Bodies


def _inflate(data: bytes, wbits: int, limit: int, *, strict: bool = True) -> bytes:
    """Decompress a zlib (wbits 15) or gzip (31) stream, refusing more than `limit` output bytes."""
    inflater = zlib.decompressobj(wbits)
    out = inflater.decompress(data, limit + 1)
    if len(out) > limit:
        raise _TooLarge(f"decompressed body larger than {limit} bytes")
    if strict and not inflater.eof:
        raise zlib.error("incomplete or truncated stream")
    if strict and inflater.unused_data:
        raise zlib.error("trailing data after the compressed stream")
    return out


def _encode_json(obj: Any, style: str) -> tuple[bytes, str]:
    if style == "go":  # Go json.Encoder with SetIndent("", "  "): HTML-safe escapes, trailing newline
        text = json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
        for char, escape in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"), ("\u2028", "\\u2028")):
            text = text.replace(char, escape)
        return text.replace("\u2029", "\\u2029").encode(), "application/json; charset=utf-8"
    if style == "django":  # JsonResponse: json.dumps defaults
        return json.dumps(obj).encode(), "application/json"
    # protobuf MessageToJsonString: compact, '/' unescaped, '<' and '>' escaped (§2.3)
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").encode(), "application/json"


_RULE_ORDER: Final = (
    "identifier",
    "policy",
    "rule_type",
    "custom_msg",
    "custom_url",
    "file_bundle_hash",
    "file_bundle_binary_count",
    "notification_app_name",
    "cel_expr",
    "event_detail_button_label",
)


def _wire_rule(rule: Mapping[str, Any], style: str) -> dict[str, Any]:
    if style == "go":  # santa.Rule: rule_type, policy, identifier, custom_msg/custom_url omitempty
        out = {"rule_type": rule.get("rule_type"), "policy": rule.get("policy"), "identifier": _identifier(rule)}
        out.update({k: rule[k] for k in ("custom_msg", "custom_url") if rule.get(k)})
        return out
    if style == "django":
        return {k: v for k, v in rule.items() if v is not None}
    # protobuf-JSON: field-number order, defaults omitted
    ordered = [k for k in _RULE_ORDER if k in rule] + [k for k in rule if k not in _RULE_ORDER]
    return {k: rule[k] for k in ordered if rule[k] not in (None, "", 0, False, [])}


def _identifier(rule: Mapping[str, Any]) -> str:
    value = rule.get("identifier") or rule.get("sha256") or ""
    return str(value)


def _rule_key(rule: Mapping[str, Any]) -> str:
    return f"{rule.get('rule_type', '')}\x1f{_identifier(rule)}"


def _santa_version(text: Any) -> tuple[int, int]:
    parts = str(text or "").split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        return (0, 0)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _is_bundle_binary(decision: Any) -> bool:
    return decision in ("BUNDLE_BINARY", 15, "15")  # §4.2: BUNDLE_BINARY is enum 15


# --------------------------------------------------------------------------------------------------
# State (SQLite; ":memory:" unless a path is given)

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS rules (scope TEXT NOT NULL, rule_key TEXT NOT NULL, seq INTEGER NOT NULL,
                                  body TEXT NOT NULL, PRIMARY KEY (scope, rule_key));
CREATE TABLE IF NOT EXISTS machines (machine_id TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bundles (hash TEXT PRIMARY KEY, binary_count INTEGER, complete INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS bundle_binaries (hash TEXT NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY (hash, sha256));
CREATE TABLE IF NOT EXISTS received (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
                                     machine_id TEXT NOT NULL, body TEXT NOT NULL);
"""


class _State:
    """Persistent server state. Callers hold the server lock; each method is one transaction."""

    def __init__(self, path: str | None) -> None:
        self.db = sqlite3.connect(path or ":memory:", check_same_thread=False, timeout=10)
        with self.db:
            self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def upsert_rules(self, scope: str, rules: Sequence[Mapping[str, Any]]) -> None:
        with self.db:
            (top,) = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM rules").fetchone()
            for offset, rule in enumerate(rules, 1):
                self.db.execute(
                    "INSERT INTO rules (scope, rule_key, seq, body) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (scope, rule_key) DO UPDATE SET body = excluded.body",
                    (scope, _rule_key(rule), top + offset, json.dumps(dict(rule))),
                )

    def delete_rules(self, scope: str, key: str | None) -> int:
        with self.db:
            if key is None:
                return self.db.execute("DELETE FROM rules WHERE scope = ?", (scope,)).rowcount
            return self.db.execute("DELETE FROM rules WHERE scope = ? AND rule_key = ?", (scope, key)).rowcount

    def rules(self, scope: str) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT body FROM rules WHERE scope = ? ORDER BY seq", (scope,))
        return [json.loads(body) for (body,) in rows]

    def machine(self, machine_id: str) -> dict[str, Any]:
        row = self.db.execute("SELECT state FROM machines WHERE machine_id = ?", (machine_id,)).fetchone()
        return cast(dict[str, Any], json.loads(row[0])) if row else {}

    def save_machine(self, machine_id: str, state: Mapping[str, Any]) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO machines (machine_id, state) VALUES (?, ?)", (machine_id, json.dumps(state))
            )

    def machines(self) -> dict[str, dict[str, Any]]:
        return {mid: json.loads(state) for mid, state in self.db.execute("SELECT machine_id, state FROM machines")}

    def receive(self, kind: str, machine_id: str, bodies: Sequence[Any]) -> None:
        with self.db:
            self.db.executemany(
                "INSERT INTO received (kind, machine_id, body) VALUES (?, ?, ?)",
                [(kind, machine_id, json.dumps(body)) for body in bodies],
            )

    def received(self, kind: str) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        rows = self.db.execute("SELECT machine_id, body FROM received WHERE kind = ? ORDER BY id", (kind,))
        for machine_id, body in rows:
            out.setdefault(machine_id, []).append(json.loads(body))
        return out

    def note_bundle(self, bundle_hash: str, count: int | None, binary: str | None) -> None:
        with self.db:
            self.db.execute(
                "INSERT INTO bundles (hash, binary_count, complete) VALUES (?, ?, 0)"
                " ON CONFLICT (hash) DO UPDATE SET binary_count = COALESCE(excluded.binary_count, binary_count)",
                (bundle_hash, count),
            )
            if binary:
                self.db.execute("INSERT OR IGNORE INTO bundle_binaries VALUES (?, ?)", (bundle_hash, binary))

    def settle_bundle(self, bundle_hash: str) -> None:
        """After an upload: complete once exactly `file_bundle_binary_count` distinct binaries are held
        (§9.4; more than that leaves the bundle incomplete for ever). Never undone."""
        with self.db:
            self.db.execute(
                "UPDATE bundles SET complete = 1 WHERE hash = ? AND complete = 0 AND binary_count ="
                " (SELECT COUNT(*) FROM bundle_binaries WHERE hash = bundles.hash)",
                (bundle_hash,),
            )

    def bundles(self) -> dict[str, Bundle]:
        binaries: dict[str, set[str]] = {}
        for bundle_hash, sha in self.db.execute("SELECT hash, sha256 FROM bundle_binaries"):
            binaries.setdefault(bundle_hash, set()).add(sha)
        return {
            h: Bundle(h, count, frozenset(binaries.get(h, ())), bool(complete))
            for h, count, complete in self.db.execute("SELECT hash, binary_count, complete FROM bundles")
        }

    def bundle_complete(self, bundle_hash: str) -> bool:
        row = self.db.execute("SELECT complete FROM bundles WHERE hash = ?", (bundle_hash,)).fetchone()
        return bool(row and row[0])


# --------------------------------------------------------------------------------------------------
# HTTP plumbing


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], sync: SyncServer) -> None:
        self.sync = sync
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "santacore-testing"
    sys_version = ""
    timeout = 30
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # headers and body are two writes
        self.server.sync._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.sync._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        return

    def version_string(self) -> str:
        return self.server_version

    def do_POST(self) -> None:
        self._serve()

    do_GET = do_PUT = do_DELETE = do_PATCH = do_POST

    def _serve(self) -> None:
        sync = self.server.sync
        route = sync._route(urllib.parse.urlsplit(self.path).path)
        stage, machine_id = route if route else (None, None)
        rec = RecordedRequest(self.command, self.path, stage, machine_id, dict(self.headers.items()), b"")
        try:
            rec.raw_body = self._read_body(sync.max_body_size)
        except _TooLarge as exc:
            sync._record(rec)
            self.close_connection = True
            self._send(rec, sync._error(413, str(exc)))
            return
        except _BadBody as exc:
            sync._record(rec)
            self.close_connection = True
            self._send(rec, sync._error(400, str(exc)))
            return
        sync._record(rec)
        try:
            if route is None or (stage == XSRF_STAGE and not sync.quirks.xsrf_route):
                reply = sync._not_found()
            elif self.command != "POST":
                reply = sync._method_not_allowed()
            else:
                fault = sync.faults._take(stage, machine_id, _PRE_FAULTS)
                if fault is not None:
                    rec.fault = fault.kind
                    if fault.kind == "drop":
                        self.close_connection = True
                        return
                    if fault.kind == "status":
                        self._send(rec, sync._fault_reply(fault))
                        return
                    sync._stopping.wait(fault.delay)
                reply = sync._dispatch(rec)
                if reply.status == 200 and (fault := sync.faults._take(stage, machine_id, _POST_FAULTS)):
                    rec.fault = f"{rec.fault}+{fault.kind}" if rec.fault else fault.kind
                    self._send(rec, reply, fault)
                    return
        except Exception:
            sync.errors.append(traceback.format_exc())
            reply = sync._error(500, "internal server error")
        self._send(rec, reply)

    def _read_body(self, limit: int) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise _BadBody("invalid Content-Length") from None
        if length < 0:
            raise _BadBody("invalid Content-Length")
        if length > limit:
            remaining = min(length, _DRAIN_LIMIT)
            while remaining > 0 and (chunk := self.rfile.read(min(remaining, 1 << 16))):
                remaining -= len(chunk)
            raise _TooLarge(f"request body of {length} bytes exceeds the limit of {limit}")
        body = self.rfile.read(length)
        if len(body) != length:
            raise _BadBody("request body shorter than its Content-Length")
        return body

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(line, 16)
            except ValueError:
                raise _BadBody("invalid chunk size") from None
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                return b"".join(parts)
            total += size
            if total > limit:
                raise _TooLarge(f"chunked request body exceeds the limit of {limit} bytes")
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _send(self, rec: RecordedRequest, reply: _Reply, fault: Fault | None = None) -> None:
        sync = self.server.sync
        kind = fault.kind if fault else None
        if fault is not None and kind == "wrong_types":
            patch = fault.fields if fault.fields is not None else _WRONG_TYPES.get(rec.stage or "", {})
            reply = replace(reply, obj={**(reply.obj if isinstance(reply.obj, dict) else {}), **patch}, body=None)
        body, headers = sync._render(reply)
        if fault is not None:
            if kind == "malformed_json":
                body = fault.body if fault.body is not None else b'{"rules": [{"identifier": "0a1b'
            elif kind == "xssi":
                body = fault.prefix.encode() + body
            elif kind == "compress":
                body = gzip.compress(body) if fault.encoding == "gzip" else zlib.compress(body)
                headers["Content-Encoding"] = fault.encoding
        rec.status = reply.status
        rec.error = reply.error
        declared = len(body)
        if kind == "truncate":
            declared, body = max(len(body), 16), body[: len(body) // 2]
            self.close_connection = True
        tail = b""
        if fault is not None and kind == "oversized":
            stripped = body.rstrip()
            body, tail = (stripped[:-1], b"}") if stripped.endswith(b"}") else (b"{", b"}")
            declared = max(fault.size, len(body) + len(tail))
        try:
            self.send_response(reply.status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(declared))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            if tail:
                padding = declared - len(body) - len(tail)
                block = b" " * (1 << 16)
                while padding > 0 and not sync._stopping.is_set():
                    self.wfile.write(block[:padding])
                    padding -= len(block)
                self.wfile.write(tail)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True


# --------------------------------------------------------------------------------------------------
# The server


class SyncServer:
    """A Santa sync server on loopback. Use as a context manager, or `start()`/`stop()`.

    >>> with SyncServer(profile="google", rules=[{"identifier": "ab" * 32, "rule_type": "BINARY",
    ...                 "policy": "BLOCKLIST"}]) as server:       # doctest: +SKIP
    ...     sync_base_url = server.base_url
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        profile: Profile = "google",
        batch_size: int = 50,
        client_mode: str | None = "MONITOR",
        rules: Sequence[Mapping[str, Any]] = (),
        page_size: int | None = None,
        full_sync_interval: int = 600,
        enable_bundles: bool = False,
        enable_transitive_rules: bool = False,
        allowed_path_regex: str | None = None,
        blocked_path_regex: str | None = None,
        sync_type: str | None = None,
        preflight_extra: Mapping[str, Any] | None = None,
        require_xsrf: bool = False,
        xsrf_header: str | None = None,
        enrollment_secret: str | None = None,
        state_db: str | os.PathLike[str] | None = None,
        max_body_size: int = DEFAULT_MAX_BODY,
        quirks: Mapping[str, Any] | Quirks | None = None,
    ) -> None:
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r} (one of {', '.join(PROFILES)})")
        self._profile: str = profile
        self.quirks = quirks if isinstance(quirks, Quirks) else Quirks.for_profile(profile)
        if isinstance(quirks, Mapping):
            unknown = set(quirks) - {f.name for f in fields(Quirks)}
            if unknown:
                raise ValueError(f"unknown quirks: {', '.join(sorted(unknown))}")
            self.quirks = replace(self.quirks, **quirks)
        self.settings = Settings(
            client_mode=client_mode,
            batch_size=batch_size,
            full_sync_interval=full_sync_interval,
            enable_bundles=enable_bundles,
            enable_transitive_rules=enable_transitive_rules,
            allowed_path_regex=allowed_path_regex,
            blocked_path_regex=blocked_path_regex,
            sync_type=sync_type,
            page_size=page_size,
            preflight_extra=dict(preflight_extra or {}),
        )
        self.require_xsrf = require_xsrf
        self.xsrf_header = xsrf_header
        self.enrollment_secret = enrollment_secret
        self.max_body_size = max_body_size
        self.faults = FaultList()
        self.errors: list[str] = []  # tracebacks of unexpected handler exceptions (a test should see none)
        self._host = host
        self._port = port
        self._lock = threading.RLock()
        self._requests: list[RecordedRequest] = []
        self._cursors: dict[str, tuple[str, list[dict[str, Any]], int]] = {}
        self._xsrf_tokens: dict[str, str] = {}
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._state = _State(None if state_db is None else str(state_db))
        self._finalizer = weakref.finalize(self, self._state.close)
        if rules:
            self.add_rules(rules)

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> SyncServer:
        if self._httpd is not None:
            raise RuntimeError("server already running")
        self._stopping.clear()
        self._httpd = _HTTPServer((self._host, self._port), self)
        self._port = self._httpd.server_address[1]  # a restart reuses the port, so base_url stays valid
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="santacore-sync-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:  # end idle keep-alive connections, so their threads finish
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def close(self) -> None:
        """Stop and release the state database."""
        self.stop()
        self._finalizer()

    def __enter__(self) -> SyncServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def profile(self) -> str:
        return self._profile

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        """The SyncBaseURL a client should use (with Moroz's /v1/santa/ prefix under that profile)."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}{self.quirks.path_prefix.rstrip('/')}/"

    def url(self, stage: str, machine_id: str) -> str:
        return f"{self.base_url}{stage}/{machine_id}"

    # -- configuration ----------------------------------------------------------------------------

    def add_rules(self, rules: Sequence[Mapping[str, Any]], *, machine_id: str | None = None) -> None:
        """Add or replace (by identifier and rule_type) wire-format rules, for all machines or one."""
        for rule in rules:
            if not isinstance(rule, Mapping) or not isinstance(rule.get("rule_type"), str):
                raise ValueError(f"a rule needs a rule_type string: {rule!r}")
            if not isinstance(rule.get("identifier", rule.get("sha256")), str):
                raise ValueError(f"a rule needs an identifier string: {rule!r}")
            allowed = self.quirks.allowed_policies
            if allowed is not None and rule.get("policy") not in allowed:
                raise ValueError(f"policy {rule.get('policy')!r} is not served by the {self.profile} profile")
        with self._lock:
            self._state.upsert_rules(self._scope(machine_id), rules)

    def remove_rule(self, identifier: str, rule_type: str, *, machine_id: str | None = None) -> bool:
        """Delete a rule from the server's set (Zentral then sends REMOVE to machines holding it)."""
        with self._lock:
            key = _rule_key({"identifier": identifier, "rule_type": rule_type})
            return self._state.delete_rules(self._scope(machine_id), key) > 0

    def clear_rules(self, *, machine_id: str | None = None) -> None:
        with self._lock:
            self._state.delete_rules(self._scope(machine_id), None)

    @property
    def rules(self) -> list[dict[str, Any]]:
        """The rules served to every machine."""
        with self._lock:
            return self._state.rules("")

    def rules_for(self, machine_id: str) -> list[dict[str, Any]]:
        """Everything one machine is served: the global rules, then its own (which override)."""
        with self._lock:
            return self._desired_rules(self._machine_key(machine_id))

    def set_sync_type(self, sync_type: str | None, *, machine_id: str | None = None) -> None:
        """Without machine_id: answer every preflight with `sync_type` (None: per profile). With one:
        ask that machine until a postflight confirms (§1.6; Zentral and [N] read its `syncType`)."""
        with self._lock:
            if machine_id is None:
                self.settings.sync_type = sync_type
                return
            key = self._machine_key(machine_id)
            state = self._state.machine(key)
            state["pending_sync_type"] = sync_type
            self._state.save_machine(key, state)

    def add_fault(self, kind: FaultKind, **options: Any) -> Fault:
        return self.faults.add(kind, **options)

    # -- what was received --------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_for(self, stage: str, machine_id: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if r.stage == stage and machine_id in (None, r.machine_id)]

    @property
    def events(self) -> dict[str, list[dict[str, Any]]]:
        """Uploaded events per machine, in arrival order."""
        with self._lock:
            return self._state.received("event")

    @property
    def preflights(self) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            return self._state.received("preflight")

    @property
    def postflights(self) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            return self._state.received("postflight")

    @property
    def bundles(self) -> dict[str, Bundle]:
        with self._lock:
            return self._state.bundles()

    @property
    def machines(self) -> dict[str, dict[str, Any]]:
        """Per-machine server state: enrolled, pending_sync_type, session, committed rules (Zentral)."""
        with self._lock:
            return self._state.machines()

    # -- request handling ---------------------------------------------------------------------------

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _record(self, rec: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(rec)

    def _route(self, path: str) -> tuple[str, str] | None:
        prefix = self.quirks.path_prefix.rstrip("/")
        if prefix:
            if not path.startswith(prefix + "/"):
                return None
            path = path[len(prefix) :]
        parts = path.split("/")
        if len(parts) != 3 or parts[0] or parts[1] not in (*STAGES, XSRF_STAGE) or not parts[2]:
            return None
        return parts[1], urllib.parse.unquote(parts[2])

    def _scope(self, machine_id: str | None) -> str:
        return "" if machine_id is None else "m:" + self._machine_key(machine_id)

    def _machine_key(self, machine_id: str) -> str:
        if self.quirks.uuid_machine_ids:
            try:
                return str(uuid.UUID(machine_id))
            except ValueError:
                return machine_id
        return machine_id

    def _dispatch(self, rec: RecordedRequest) -> _Reply:
        stage, raw_id = rec.stage or "", rec.machine_id or ""
        q = self.quirks
        if q.enrollment and (denied := self._enrollment_gate(rec)):
            return denied
        machine_id = self._machine_key(raw_id)
        if stage == XSRF_STAGE:
            return self._xsrf(machine_id)
        if self.require_xsrf:
            with self._lock:
                expected = self._xsrf_tokens.get(machine_id)
            if expected is None or rec.header(self.xsrf_header or XSRF_TOKEN_HEADER) != expected:
                return self._error(403, "missing or invalid XSRF token")
        if stage == "ruledownload" and not q.read_ruledownload_body:
            data: Any = {}
        else:
            decoded = self._decode(rec)
            if isinstance(decoded, _Reply):
                return decoded
            data = decoded
        rec.data = data
        if q.enrollment and stage != "preflight":
            with self._lock:
                if not self._state.machine(machine_id).get("enrolled"):
                    return self._error(403, "Machine not enrolled")  # §9.4
        if problem := self._validate(stage, data):
            return problem
        with self._lock:
            if stage == "preflight":
                return self._preflight(machine_id, data)
            if stage == "eventupload":
                return self._eventupload(machine_id, data)
            if stage == "ruledownload":
                return self._ruledownload(machine_id, data)
            return self._postflight(machine_id, data)

    def _enrollment_gate(self, rec: RecordedRequest) -> _Reply | None:
        if self.enrollment_secret is not None:
            scheme, _, secret = (rec.header(self.quirks.enrollment_header) or "").strip().partition(" ")
            if scheme != "Bearer" or not secret.strip():
                return self._error(401, "Unauthorized")
            if secret.strip() != self.enrollment_secret:
                return self._error(403, "Wrong enrollment secret")
        if self.quirks.uuid_machine_ids:
            try:
                uuid.UUID(rec.machine_id or "")
            except ValueError:
                return self._error(403, "Invalid machine id")
        return None

    def _xsrf(self, machine_id: str) -> _Reply:
        with self._lock:
            token = self._xsrf_tokens.setdefault(machine_id, secrets.token_urlsafe(24))
        headers = {XSRF_TOKEN_HEADER: token}
        if self.xsrf_header:
            headers[XSRF_NAME_HEADER] = self.xsrf_header
        return _Reply(200, body=b"", headers=headers)

    def _decode(self, rec: RecordedRequest) -> Any:
        """The request's JSON value, or an error reply, as the profile's server would decode it."""
        mode = self.quirks.request_decoding
        encoding = (rec.header("Content-Encoding") or "").strip().lower()
        limit = self.max_body_size * 8
        raw = rec.raw_body
        try:
            if mode == "zlib":  # Moroz: zlib.NewReader(r.Body) whatever the headers say (§9.2)
                body = _inflate(raw, 15, limit, strict=False)
            elif mode == "zentral":  # §9.4
                body = _inflate(raw, 15, limit) if encoding in ("deflate", "zlib") else raw
            elif "protobuf" in (rec.header("Content-Type") or ""):
                return self._error(415, "binary protobuf (SyncEnableProtoTransfer) is not supported")
            elif encoding in ("", "identity"):
                body = raw
            elif encoding == "deflate":  # §2.2: a zlib (RFC 1950) stream, not raw deflate
                body = _inflate(raw, 15, limit)
            elif encoding in ("gzip", "x-gzip"):
                body = _inflate(raw, 31, limit)
            else:
                return self._error(415, f"unsupported Content-Encoding {encoding!r}")
        except _TooLarge as exc:
            return self._error(413, str(exc))
        except zlib.error as exc:
            if mode == "zlib" and (len(raw) < 2 or raw[0] & 0x0F != 8 or (raw[0] << 8 | raw[1]) % 31):
                return self._error(500, "zlib: invalid header")  # Go's compress/zlib wording
            return self._error(400 if mode == "http" else 500, f"zlib: {exc}")
        rec.body = body
        try:
            text = body.decode("utf-8")
            if mode == "zlib":  # json.NewDecoder(zr).Decode: the first JSON value; empty → EOF
                if not text.strip():
                    return self._error(500, "EOF")
                return json.JSONDecoder(parse_constant=_reject_constant).raw_decode(text.lstrip())[0]
            if mode == "zentral" and not text:
                return self._error(500, "empty request body")  # request_data is None → AttributeError
            if not text:
                return {}  # protobuf: an empty body is all defaults
            return json.loads(text, parse_constant=_reject_constant)
        except ValueError as exc:
            return self._error(500 if mode == "zlib" else 400, f"invalid JSON: {exc}")

    def _validate(self, stage: str, data: Any) -> _Reply | None:
        q = self.quirks
        if q.validation == "proto" and (problem := _proto_error(_PROTO_SCHEMAS[stage], data, "")):
            return self._error(400, problem)
        if q.validation == "go" and stage in _GO_SCHEMAS and (problem := _go_error(_GO_SCHEMAS[stage], data, "", "")):
            return self._error(500, problem)
        if q.zentral_checks:
            if not isinstance(data, dict):
                return self._error(500, "request body is not a JSON object")
            if stage == "preflight":
                if "santa_version" not in data:
                    return self._error(500, "KeyError: 'santa_version'")
                try:
                    [int(part) for part in str(data["os_version"]).split(".")]
                except (KeyError, ValueError):
                    return self._error(500, f"invalid os_version {data.get('os_version')!r}")
            if stage == "eventupload":
                for event in data.get("events") or []:
                    if not isinstance(event, dict) or "file_sha256" not in event:
                        return self._error(500, "KeyError: 'file_sha256'")
                    decision = event.get("decision")
                    if isinstance(decision, int | float) and not isinstance(decision, bool):
                        return self._error(500, f"unknown decision {decision!r}")
        return None

    # -- stages (called with the lock held) ---------------------------------------------------------

    def _preflight(self, machine_id: str, data: Any) -> _Reply:
        q, s = self.quirks, self.settings
        body = data if isinstance(data, dict) else {}
        state = self._state.machine(machine_id)
        pending = state.get("pending_sync_type")
        if q.clean_on_enrollment and not state.get("enrolled"):
            pending = pending or "CLEAN"
        if q.honour_clean_request and body.get("request_clean_sync") is True:
            pending = pending or "CLEAN"  # kept until a postflight confirms it
        sync_type = pending or s.sync_type
        state.update(
            enrolled=True,
            pending_sync_type=pending,
            santa_version=body.get("santa_version"),
            session={"clean": sync_type in CLEAN_TYPES, "sync_type": sync_type},
        )
        self._state.save_machine(machine_id, state)
        self._state.receive("preflight", machine_id, [data])

        out: dict[str, Any]
        if q.preflight_style == "moroz":  # every field of santa.Preflight, in struct order (§9.2)
            clean = sync_type in CLEAN_TYPES if sync_type is not None else q.default_clean_sync
            out = {
                "client_mode": s.client_mode or "MONITOR",
                "blocked_path_regex": s.blocked_path_regex or "",
                "allowed_path_regex": s.allowed_path_regex or "",
                "batch_size": s.batch_size,
                "enable_all_event_upload": s.enable_all_event_upload,
                "enable_bundles": s.enable_bundles,
                "enable_transitive_rules": s.enable_transitive_rules,
                "clean_sync": clean,
                "full_sync_interval": s.full_sync_interval,
            }
        elif q.preflight_style == "zentral":  # §9.4
            out = {
                "client_mode": s.client_mode or "MONITOR",
                "batch_size": s.batch_size,
                "full_sync_interval": s.full_sync_interval,
                "enable_bundles": s.enable_bundles,
                "enable_transitive_rules": s.enable_transitive_rules,
                "enable_all_event_upload": s.enable_all_event_upload,
                "allowed_path_regex": s.allowed_path_regex or ZENTRAL_EMPTY_REGEX,
                "blocked_path_regex": s.blocked_path_regex or ZENTRAL_EMPTY_REGEX,
            }
            minimum = q.sync_type_min_version
            if minimum is not None and _santa_version(body.get("santa_version")) < minimum:
                out["clean_sync"] = sync_type in CLEAN_TYPES
            else:
                out["sync_type"] = sync_type or "NORMAL"
        else:  # protobuf-JSON PreflightResponse: field-number order, defaults omitted (§2.3, §3.1)
            candidates: list[tuple[str, Any]] = [
                ("client_mode", s.client_mode),
                ("sync_type", sync_type),
                ("batch_size", s.batch_size),
                ("enable_bundles", s.enable_bundles),
                ("enable_transitive_rules", s.enable_transitive_rules),
                ("enable_all_event_upload", s.enable_all_event_upload),
                ("disable_unknown_event_upload", s.disable_unknown_event_upload),
                ("full_sync_interval", s.full_sync_interval),
            ]
            out = {k: v for k, v in candidates if v not in (None, 0, False, "")}
            regexes = (("allowed_path_regex", s.allowed_path_regex), ("blocked_path_regex", s.blocked_path_regex))
            out.update((key, value) for key, value in regexes if value is not None)  # even "" sets it (§3.1)
        out.update(s.preflight_extra)
        return _Reply(200, out)

    def _eventupload(self, machine_id: str, data: Any) -> _Reply:
        q, s = self.quirks, self.settings
        events = data.get("events") if isinstance(data, dict) else None
        events = [e for e in events if isinstance(e, dict)] if isinstance(events, list) else []
        self._state.receive("event", machine_id, events)
        wanted: list[str] = []
        for event in events:
            bundle_hash = event.get("file_bundle_hash")
            if not isinstance(bundle_hash, str) or not bundle_hash:
                continue
            count = _as_int(event.get("file_bundle_binary_count"))
            if _is_bundle_binary(event.get("decision")):
                sha = event.get("file_sha256")
                self._state.note_bundle(bundle_hash, count, sha if isinstance(sha, str) and sha else None)
            else:
                self._state.note_bundle(bundle_hash, count, None)
                if bundle_hash not in wanted:
                    wanted.append(bundle_hash)
        for bundle_hash in {e.get("file_bundle_hash") for e in events}:
            if isinstance(bundle_hash, str) and bundle_hash:
                self._state.settle_bundle(bundle_hash)
        asking = q.bundle_requests == "always" or (q.bundle_requests == "enabled" and s.enable_bundles)
        ask = [h for h in wanted if not self._state.bundle_complete(h)] if asking else []
        if q.response_style == "go":
            return _Reply(200, {"Err": None})  # §9.2
        return _Reply(200, {"event_upload_bundle_binaries": ask} if ask else {})

    def _desired_rules(self, machine_id: str) -> list[dict[str, Any]]:
        merged = {_rule_key(r): r for r in self._state.rules("")}
        merged.update((_rule_key(r), r) for r in self._state.rules("m:" + machine_id))
        return list(merged.values())

    def _ruledownload(self, machine_id: str, data: Any) -> _Reply:
        q, s = self.quirks, self.settings
        style = q.response_style
        if not q.paginate:  # Moroz: the full rule set, one page, no cursor (§9.2)
            rules = [_wire_rule(r, style) for r in self._desired_rules(machine_id)]
            return _Reply(200, {"rules": rules or (None if q.null_empty_rules else [])})
        cursor = data.get("cursor") if isinstance(data, dict) else None
        if cursor:
            entry = self._cursors.pop(str(cursor), None)
            if entry is None or entry[0] != machine_id:
                return self._error(400, f"unknown cursor {cursor!r}")
            _, snapshot, offset = entry
        else:
            snapshot, offset = self._download_set(machine_id), 0
        page_size = max(1, s.page_size or s.batch_size or 50)
        page = snapshot[offset : offset + page_size]
        after = offset + len(page)
        out: dict[str, Any] = {"rules": [_wire_rule(r, style) for r in page]}
        if page if q.trailing_empty_page else after < len(snapshot):
            token = secrets.token_urlsafe(12)
            while len(self._cursors) >= _MAX_CURSORS:
                self._cursors.pop(next(iter(self._cursors)))
            self._cursors[token] = (machine_id, snapshot, after)
            out["cursor"] = token
        return _Reply(200, out)

    def _download_set(self, machine_id: str) -> list[dict[str, Any]]:
        rules = self._desired_rules(machine_id)
        if not self.quirks.rule_delta:
            return rules
        # Zentral (§9.4): stage what this sync sends; a postflight commits it.
        state = self._state.machine(machine_id)
        session = state.get("session") or {"clean": False}
        desired = {_rule_key(r): r for r in rules if r.get("policy") != "REMOVE"}
        if session.get("clean"):
            staged = list(desired.values())
        else:
            committed: dict[str, dict[str, Any]] = state.get("committed") or {}
            staged = [r for key, r in desired.items() if committed.get(key) != r]
            staged += [
                {"identifier": _identifier(r), "policy": "REMOVE", "rule_type": r.get("rule_type")}
                for key, r in committed.items()
                if key not in desired
            ]
        state["session"] = {**session, "staged": staged}
        self._state.save_machine(machine_id, state)
        return staged

    def _postflight(self, machine_id: str, data: Any) -> _Reply:
        q = self.quirks
        body = data if isinstance(data, dict) else {}
        self._state.receive("postflight", machine_id, [data])
        state = self._state.machine(machine_id)
        session = state.pop("session", None) or {}
        if q.postflight_sync_type_keys:
            reported = next((body[k] for k in q.postflight_sync_type_keys if body.get(k) is not None), None)
            confirmed_clean = reported in CLEAN_TYPES
            if confirmed_clean:
                state["pending_sync_type"] = None
        else:  # [G] sends no sync type: the postflight itself confirms what preflight asked
            confirmed_clean = bool(session.get("clean"))
            state["pending_sync_type"] = None
        if q.rule_delta:
            staged = session.get("staged") or []
            committed = {} if confirmed_clean and staged else dict(state.get("committed") or {})
            for rule in staged:
                if rule.get("policy") == "REMOVE":
                    committed.pop(_rule_key(rule), None)
                else:
                    committed[_rule_key(rule)] = rule
            state["committed"] = committed
        self._state.save_machine(machine_id, state)
        return _Reply(200, {"NoOp": {}} if q.response_style == "go" else {})

    # -- replies ------------------------------------------------------------------------------------

    def _render(self, reply: _Reply) -> tuple[bytes, dict[str, str]]:
        headers = dict(reply.headers)
        if reply.body is not None:
            if reply.content_type:
                headers["Content-Type"] = reply.content_type
            return reply.body, headers
        body, content_type = _encode_json(reply.obj if reply.obj is not None else {}, self.quirks.response_style)
        headers["Content-Type"] = reply.content_type or content_type
        return body, headers

    def _error(self, status: int, message: str) -> _Reply:
        style = self.quirks.response_style
        if style == "go":  # go-kit errorEncoder; decode errors carry Go's sniffed text/plain type (§9.2)
            body, _ = _encode_json({"error": message}, "go")
            return _Reply(status, body=body, content_type="text/plain; charset=utf-8", error=message)
        if style == "django":  # §9.4: HTML error pages, except 401
            if status == 401:
                return _Reply(401, {"detail": "Unauthorized"}, error=message)
            title = {400: "Bad Request (400)", 403: "403 Forbidden", 404: "Not Found", 413: "Request Entity Too Large"}
            heading = title.get(status, f"Server Error ({status})")
            html = f'<!doctype html>\n<html lang="en">\n<head>\n  <title>{heading}</title>\n</head>\n<body>\n'
            html += f"  <h1>{heading}</h1><p>{message}</p>\n</body>\n</html>\n"
            return _Reply(status, body=html.encode(), content_type="text/html; charset=utf-8", error=message)
        return _Reply(status, {"error": message}, error=message)

    def _not_found(self) -> _Reply:
        if self.quirks.response_style == "go":  # gorilla/mux → http.NotFound
            return _Reply(404, body=b"404 page not found\n", content_type="text/plain; charset=utf-8")
        return self._error(404, "not found")

    def _method_not_allowed(self) -> _Reply:
        reply = _Reply(405, body=b"") if self.quirks.response_style == "go" else self._error(405, "use POST")
        reply.headers["Allow"] = "POST"
        return reply

    def _fault_reply(self, fault: Fault) -> _Reply:
        headers = dict(fault.headers)
        if 300 <= fault.status < 400:
            headers.setdefault("Location", self.base_url + "redirected")
        if fault.body is not None:
            return _Reply(fault.status, body=fault.body, headers=headers, error="injected fault")
        reply = self._error(fault.status, f"injected fault: HTTP {fault.status}")
        reply.headers.update(headers)
        return reply


# --------------------------------------------------------------------------------------------------
# CLI: `santacore testing serve`


def _parse_quirk(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        parsed: Any = json.loads(value)
    except ValueError:
        parsed = value
    if isinstance(parsed, list):
        parsed = frozenset(parsed) if name == "allowed_policies" else tuple(parsed)
    return name, parsed


def _load_rules(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    rules = data.get("rules") if isinstance(data, dict) else data
    if not isinstance(rules, list):
        raise ValueError(f'{path}: expected a JSON list of rules or {{"rules": [...]}}')
    return rules


def serve(argv: Sequence[str] | None = None) -> int:
    """Run a SyncServer until SIGINT/SIGTERM; print its base URL on the first line of stdout."""
    parser = argparse.ArgumentParser(
        prog="santacore testing serve", description="Run a conformant Santa sync server for testing (plain HTTP)."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--profile", choices=PROFILES, default="google")
    parser.add_argument("--rules", metavar="FILE", help='JSON: a list of wire rules, or {"rules": [...]}')
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--page-size", type=int, default=None, help="rules per ruledownload page (default: batch size)")
    parser.add_argument("--client-mode", default="MONITOR")
    parser.add_argument("--full-sync-interval", type=int, default=600)
    parser.add_argument("--enable-bundles", action="store_true")
    parser.add_argument("--enable-transitive-rules", action="store_true")
    parser.add_argument("--allowed-path-regex")
    parser.add_argument("--blocked-path-regex")
    parser.add_argument("--sync-type", choices=("NORMAL", "CLEAN", "CLEAN_ALL"))
    parser.add_argument("--state-db", metavar="PATH", help="SQLite file keeping state across restarts")
    parser.add_argument("--require-xsrf", action="store_true")
    parser.add_argument("--xsrf-header", help="custom XSRF header name announced in X-XSRF-TOKEN-HEADER")
    parser.add_argument("--enrollment-secret", help="Zentral: require 'Bearer <secret>' in Zentral-Authorization")
    parser.add_argument("--max-body-size", type=int, default=DEFAULT_MAX_BODY)
    parser.add_argument("--quirk", action="append", type=_parse_quirk, default=[], metavar="NAME=VALUE")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else 2
    try:
        server = SyncServer(
            host=args.host,
            port=args.port,
            profile=args.profile,
            rules=_load_rules(args.rules) if args.rules else (),
            batch_size=args.batch_size,
            page_size=args.page_size,
            client_mode=args.client_mode,
            full_sync_interval=args.full_sync_interval,
            enable_bundles=args.enable_bundles,
            enable_transitive_rules=args.enable_transitive_rules,
            allowed_path_regex=args.allowed_path_regex,
            blocked_path_regex=args.blocked_path_regex,
            sync_type=args.sync_type,
            state_db=args.state_db,
            require_xsrf=args.require_xsrf,
            xsrf_header=args.xsrf_header,
            enrollment_secret=args.enrollment_secret,
            max_body_size=args.max_body_size,
            quirks=dict(args.quirk),
        ).start()
    except (OSError, ValueError, TypeError) as exc:
        print(f"santacore testing serve: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, _on_signal)
    print(server.base_url, flush=True)
    print(f"santacore testing server ({server.profile}) on {server.base_url}; Ctrl-C to stop", file=sys.stderr)
    try:
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        for previous_signal, handler in previous.items():
            signal.signal(previous_signal, handler)
        server.close()
    return 0
