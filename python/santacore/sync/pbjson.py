"""The protobuf-JSON response reader (spec §2.3): Santa's `JsonStringToMessage(ignore_unknown_fields=true)`.

The messages are santacore's generated `santa.sync.v1` classes (`santacore.syncv1`), filled by protobuf's own
`json_format.ParseDict`. Python's parser and the C++ one Santa links differ in a few places; this module's adapter
(`_adapt`) runs first and changes exactly these, so the outcome is C++'s:

* the document: an anti-XSSI prefix is stripped, the bytes must be UTF-8 and one JSON object; `NaN`/`Infinity`
  literals, unpaired `\\ud800`-style escapes and nesting deeper than 100 fail (Python's `json` accepts them);
* keys: C++ also accepts the lowerCamelCase of the proto name where a json_name is declared
  (`fullSyncIntervalSeconds`); the adapter renames such a key to the proto name;
* `null` members are dropped before parsing (C++: absent; Python clears the field but counts it as set, so
  `{"batch_size":7,"batchSize":null}` would fail there); a field given twice under any spellings fails;
* enums: a bool or fractional number fails, a string that is neither a value name nor an int32 (absl
  `SimpleAtoi`: surrounding whitespace allowed) is an unknown name and the key is dropped — so an `optional` enum
  stays unset and a plain one is 0 —, and a number out of int32 range fails (Python's `int()` would take `"1_0"`
  and `2.5`);
* variant: a [G] client's schema lacks [N]'s additions, so for `Variant.GOOGLE*` the keys of [N]-only fields are
  dropped unread and [N]-only enum names count as unknown (§9.1).

`protobuf_document(body, stage, pb.PreflightResponse, variant)` gives the fields that are set, by proto name (enum
values as numbers, messages as dicts), or raises `SyncError(stage=...)`."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

from santacore.errors import SyncError
from santacore.santad.events import DEFAULT_VARIANT, Variant
from santacore.sync.wire import reject_constant, strip_xssi

__all__ = ["message_fields", "parse_message", "protobuf_document"]

_INT32_MIN: Final = -(2**31)
_INT32_MAX: Final = 2**31 - 1
_INT_TEXT: Final = re.compile(r"[+-]?[0-9]+")
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_MAX_DEPTH: Final = 100
_LIBRARY_PREFIX: Final = re.compile(r"Failed to parse (\w+) field: ")

# What a [G] client's syncv1.proto does not have (§9.1): fields by message, and enum value names.
N_ONLY_FIELDS: Final = {
    "PreflightResponse": frozenset(
        {"push_server", "push_token", "push_key", "push_deviceid", "push_tags", "push_hmac_key", "push_issuer_token"}
    ),
    "Rule": frozenset({"notification_app_name", "cel_expr", "event_detail_button_label"}),
}
_N_ONLY_ENUM_NAMES: Final = frozenset(
    {"STANDALONE", "CLEAN_STANDALONE", "CLEAN_RULES", "CLEAN_FILE_ACCESS_RULES", "CEL"}
    | {"SILENT_GUI_BLOCKLIST", "SILENT_TTY_BLOCKLIST"}
)


class _Invalid(Exception):
    """A document protobuf's C++ JSON parser refuses; becomes SyncError."""


class _Object(list[tuple[str, Any]]):
    """A JSON object with its key/value pairs in order, duplicates kept."""


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an object" if isinstance(value, _Object) else "an array"


def _check_document(tree: object) -> None:
    """Unpaired surrogates anywhere, and nesting past `ParseOptions::kDefaultDepth` (100, the document counted)."""
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


def _camel(name: str) -> str:
    """protobuf's ToCamelCase of a proto field name (`camelcase_name` gives the json_name where one is declared)."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _enum_value(value: object, where: str, names: Mapping[str, int], google: bool) -> int | None:
    """C++'s enum reading: a name, a number or a quoted int32; None = an unknown name (the key is dropped)."""
    if isinstance(value, str):
        if value in names and not (google and value in _N_ONLY_ENUM_NAMES):
            return names[value]
        text = value.strip(" \t\n\v\f\r")
        if not _INT_TEXT.fullmatch(text) or not _INT32_MIN <= int(text) <= _INT32_MAX:
            return None
        return int(text)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid(f"{where}: expected a number or string, got {_kind(value)}")
    if isinstance(value, float) and not value.is_integer():
        raise _Invalid(f"{where}: expected an integer, but {value!r} has a fractional part")
    number = int(value)
    if not _INT32_MIN <= number <= _INT32_MAX:
        raise _Invalid(f"{where}: integer {number} out of range")
    return number


def _adapt(obj: _Object, descriptor: Any, google: bool) -> dict[str, Any]:
    """`obj` as the plain dict ParseDict reads the way C++ reads `obj` (see the module docstring)."""
    fields = descriptor.fields_by_name
    by_key: dict[str, Any] = {}
    for f in descriptor.fields:  # C++ FieldByName order: camelCase of the proto name, proto name, json_name
        by_key.setdefault(f.json_name, f)
        by_key[f.name] = f
        by_key[_camel(f.name)] = f
    skipped = N_ONLY_FIELDS.get(descriptor.name, frozenset()) if google else frozenset()
    out: dict[str, Any] = {}
    for key, value in obj:
        f = by_key.get(key)
        if f is None or value is None or f.name in skipped:
            continue
        if f.name in out:
            raise _Invalid(f"{descriptor.name}.{key}: field {f.name!r} has already been set")
        where = f.name
        repeated = f.is_repeated
        items = value if repeated and isinstance(value, list) and not isinstance(value, _Object) else None
        if f.message_type is not None:
            if repeated:
                if items is None:
                    raise _Invalid(f"{where}: expected an array, got {_kind(value)}")
                if any(not isinstance(item, _Object) for item in items):
                    raise _Invalid(f"{where}: expected objects in the array")
                out[f.name] = [_adapt(item, f.message_type, google) for item in items]
            elif isinstance(value, _Object):
                out[f.name] = _adapt(value, f.message_type, google)
            else:
                raise _Invalid(f"{where}: expected an object, got {_kind(value)}")
        elif f.enum_type is not None:
            names = {v.name: v.number for v in f.enum_type.values}
            if repeated:
                if items is None:
                    raise _Invalid(f"{where}: expected an array, got {_kind(value)}")
                out[f.name] = [n for item in items if (n := _enum_value(item, where, names, google)) is not None]
            elif (number := _enum_value(value, where, names, google)) is not None:
                out[f.name] = number
        else:
            for item in items if items is not None else [value]:
                if isinstance(item, _Object) or (f.type == f.TYPE_STRING and not isinstance(item, str)):
                    expected = "a string" if f.type == f.TYPE_STRING else "a scalar"
                    raise _Invalid(f"{where}: expected {expected}, got {_kind(item)}")  # clearer than json_format's
            out[f.name] = value
    assert set(out) <= set(fields)
    return out


def parse_message(body: bytes, stage: str, message_class: type[Any], variant: Variant = DEFAULT_VARIANT) -> Any:
    """`body` (protobuf-JSON) as a `message_class` instance; `SyncError(stage=stage)` where Santa's parser fails.
    An empty body is the empty message (Santa does not parse it)."""
    from google.protobuf import json_format

    message = message_class()
    if not body:
        return message
    try:
        text = strip_xssi(bytes(body)).decode("utf-8")
        tree = json.loads(text, object_pairs_hook=_Object, parse_constant=reject_constant)
        if not isinstance(tree, _Object):
            raise _Invalid(f"expected a JSON object, got {_kind(tree)}")
        _check_document(tree)
        google = variant is not Variant.NORTHPOLESEC
        json_format.ParseDict(_adapt(tree, message.DESCRIPTOR, google), message, ignore_unknown_fields=True)
    except (_Invalid, json_format.ParseError, ValueError, TypeError, RecursionError) as e:
        # JSONDecodeError and UnicodeDecodeError are ValueErrors; json_format's "Failed to parse x field: " → "x: "
        reason = _LIBRARY_PREFIX.sub(r"\1: ", str(e)).rstrip(".")
        raise SyncError(f"Failed to parse {stage} response JSON: {reason}", stage=stage) from None
    return message


def message_fields(message: Any) -> dict[str, Any]:
    """The set fields of `message` by proto name: scalars and enum numbers as they are, lists as lists, messages
    as dicts. Explicit-presence fields appear when present (even at their default), others when not default."""
    out: dict[str, Any] = {}
    for f, value in message.ListFields():
        if f.message_type is not None:
            out[f.name] = [message_fields(v) for v in value] if f.is_repeated else message_fields(value)
        else:
            out[f.name] = list(value) if f.is_repeated else value
    return out


def protobuf_document(
    body: bytes, stage: str, message_class: type[Any], variant: Variant = DEFAULT_VARIANT
) -> dict[str, Any]:
    """`message_fields(parse_message(...))`."""
    return message_fields(parse_message(body, stage, message_class, variant))
