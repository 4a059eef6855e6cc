"""The [G-JSON] response reader (spec §2.3): `NSJSONSerialization` and Santa's NSNumber/NSString checks.

Nothing here fails: unreadable is absent."""

from __future__ import annotations

import json
from typing import Any

from santacore.sync.wire import reject_constant, strip_xssi

__all__ = ["legacy_document", "ns_bool", "ns_number", "ns_string", "ns_uint"]


def legacy_document(body: bytes) -> dict[str, Any]:
    """§2.3 [G-JSON]: an empty or unparseable body (or a non-object) is `{}`."""
    try:
        tree = json.loads(strip_xssi(bytes(body)).decode("utf-8"), parse_constant=reject_constant)
    except (ValueError, RecursionError):
        return {}
    return tree if isinstance(tree, dict) else {}


def ns_number(value: object) -> int | float | None:
    """NSNumber or nil (`EnsureType(..., [NSNumber class])`): JSON numbers and bools."""
    return value if isinstance(value, int | float) else None


def ns_bool(value: object) -> bool | None:
    number = ns_number(value)
    return None if number is None else number != 0


def ns_uint(value: object) -> int:
    """`unsignedIntegerValue` of an NSNumber (nil → 0): truncated, negative values wrapped (best knowledge)."""
    number = ns_number(value)
    if number is None:
        return 0
    n = int(number)
    return min(n, 2**64 - 1) if n >= 0 else n % 2**64


def ns_string(value: object) -> str | None:
    return value if isinstance(value, str) else None
