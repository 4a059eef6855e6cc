"""The rules hash northpolesec/santa sends in preflight and postflight (`rules_hash`, addendum §4).

XXH3-128 (seed 0), streamed over the execution rules in storage order, transitive rules left out. Per row, with no
separators or length prefixes: the identifier's UTF-8 bytes, `cel_expr`'s and `seatbelt_policy`'s (NULL → no bytes),
then `state` and `type` as 4-byte little-endian ints (a C `int` on Apple's little-endian targets). The digest is
printed canonically (XXH128_canonicalFromHash: high 64 bits then low, big-endian) as 32 lower-case hex characters.

The hashing is the `xxhash` PyPI binding's (the reference C library, wheels for every platform): one small C
extension, imported only when a hash is computed, rather than a second copy of XXH3 in the Rust engine.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import NamedTuple

# SNTRuleStateAllowTransitive: rows in this state are never hashed.
TRANSITIVE_STATE = 6
_INTS = struct.Struct("<ii")


class HashedRow(NamedTuple):
    """The columns of one `execution_rules` row the hash reads, in santad's SELECT order of use."""

    identifier: str
    cel_expr: str | None
    seatbelt_policy: str | None
    state: int
    type: int


def rules_hash(rows: Iterable[HashedRow | tuple[str, str | None, str | None, int, int]]) -> str:
    """The lower-case hex XXH3-128 of `rows` (in storage order); transitive rows are skipped here, as santad's
    `WHERE state != 6` does, so callers may pass every row."""
    import xxhash  # a C extension only hashing needs: `import santacore` stays cheap

    digest = xxhash.xxh3_128()
    for identifier, cel_expr, seatbelt_policy, state, rule_type in rows:
        if state == TRANSITIVE_STATE:
            continue
        digest.update(identifier.encode("utf-8"))
        if cel_expr:
            digest.update(cel_expr.encode("utf-8"))
        if seatbelt_policy:
            digest.update(seatbelt_policy.encode("utf-8"))
        digest.update(_INTS.pack(state, rule_type))
    return digest.hexdigest()
