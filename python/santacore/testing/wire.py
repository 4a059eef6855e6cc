"""Body codecs of the testing sync server: bounded inflate, JSON per response style, rules in wire form."""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from typing import Any, Final


class BodyTooLarge(Exception):
    pass


class BadBody(Exception):
    pass


def inflate(data: bytes, wbits: int, limit: int, *, strict: bool = True) -> bytes:
    """Decompress a zlib (wbits 15) or gzip (31) stream, refusing more than `limit` output bytes."""
    inflater = zlib.decompressobj(wbits)
    out = inflater.decompress(data, limit + 1)
    if len(out) > limit:
        raise BodyTooLarge(f"decompressed body larger than {limit} bytes")
    if strict and not inflater.eof:
        raise zlib.error("incomplete or truncated stream")
    if strict and inflater.unused_data:
        raise zlib.error("trailing data after the compressed stream")
    return out


def encode_json(obj: Any, style: str) -> tuple[bytes, str]:
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
    "celExpr",
    "event_detail_button_label",
)


def wire_rule(rule: Mapping[str, Any], style: str) -> dict[str, Any]:
    if style == "go":  # santa.Rule: rule_type, policy, identifier, custom_msg/custom_url omitempty
        out = {"rule_type": rule.get("rule_type"), "policy": rule.get("policy"), "identifier": rule_identifier(rule)}
        out.update({k: rule[k] for k in ("custom_msg", "custom_url") if rule.get(k)})
        return out
    if style == "django":
        return {k: v for k, v in rule.items() if v is not None}
    # protobuf-JSON: field-number order, defaults omitted
    ordered = [k for k in _RULE_ORDER if k in rule] + [k for k in rule if k not in _RULE_ORDER]
    return {k: rule[k] for k in ordered if rule[k] not in (None, "", 0, False, [])}


def rule_identifier(rule: Mapping[str, Any]) -> str:
    value = rule.get("identifier") or rule.get("sha256") or ""
    return str(value)


def rule_key(rule: Mapping[str, Any]) -> str:
    return f"{rule.get('rule_type', '')}\x1f{rule_identifier(rule)}"


def version_tuple(text: Any) -> tuple[int, int]:
    parts = str(text or "").split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        return (0, 0)


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def is_bundle_binary(decision: Any) -> bool:
    return decision in ("BUNDLE_BINARY", 15, "15")  # §4.2: BUNDLE_BINARY is enum 15
