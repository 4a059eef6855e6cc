"""What a push message means (addendum §1.4, §1.5, §1.7): subjects, payloads, delays. Pure functions.

* Subjects (§1.4): `santa.host.X` or `santa.tag.X` with X non-empty and free of `.` and `-`; others are skipped.
* A message on a `santa.tag.*` subject → a full sync after `randbelow(max_jitter)` seconds, `max_jitter` from a
  `santa.commands.v1.SyncRequest` payload when it has one, else 180; on `santa.host.*` → a full sync now.
* FCM's actions (§1.7), honoured when a payload is FCM-style JSON — the envelope
  `{"message": {"data": {"blob": "<json>"}}}` or the blob object itself — on any subscribed subject (santacore's
  choice: the FCM transport is Google-internal and out of scope, its message semantics ride on NATS here):
  `full_sync`, `config_sync`, `log_sync` → full sync now; `rule_sync` → rule-only sync now when `target_host_id`
  is this machine (any case), else after `randbelow(global rule-sync deadline)` seconds; anything else → nothing.
* Connection retry (§1.5): attempt n waits 2^min(n-1, 8) s × a factor in [0.75, 1.25]; past the 9th, 300–600 s.
  A reconnect → a full sync after `randbelow(601)` s.

`randbelow(n)` is arc4random_uniform: an integer in [0, n), 0 for n = 0. The random source is passed in.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = [
    "DEFAULT_TAG_JITTER",
    "RECONNECT_JITTER",
    "PushAction",
    "connect_retry_delay",
    "interpret",
    "parse_sync_request",
    "valid_subject",
]

DEFAULT_TAG_JITTER: Final = 180  # kDefaultPushNotificationTagSyncJitterSeconds
RECONNECT_JITTER: Final = 601  # arc4random_uniform(601): 0–600 s
FULL_SYNC_ACTIONS: Final = frozenset({"full_sync", "config_sync", "log_sync"})
RULE_SYNC_ACTION: Final = "rule_sync"
_PREFIXES: Final = ("santa.host.", "santa.tag.")

RandBelow = Callable[[int], int]


@dataclass(frozen=True)
class PushAction:
    """What to do about one message: `kind` "full" or "rule" (sync), after `delay` seconds, and why."""

    kind: str
    delay: int
    reason: str


def valid_subject(subject: str) -> bool:
    """§1.4 `-isValidNATSTopic:`."""
    for prefix in _PREFIXES:
        if subject.startswith(prefix):
            rest = subject[len(prefix) :]
            return bool(rest) and "." not in rest and "-" not in rest
    return False


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def parse_sync_request(payload: bytes) -> int | None:
    """`SyncRequest.max_jitter` (field 1, uint32) when present; None when absent or the payload is not a
    SyncRequest. Protobuf wire format read by hand: one optional field does not justify the runtime."""
    at, found = 0, None
    try:
        while at < len(payload):
            tag, at = _varint(payload, at)
            number, wire = tag >> 3, tag & 7
            if number == 0:
                return None
            if wire == 0:
                value, at = _varint(payload, at)
                if number == 1:
                    found = value & 0xFFFFFFFF
            elif wire == 1:
                at += 8
            elif wire == 2:
                size, at = _varint(payload, at)
                at += size
            elif wire == 5:
                at += 4
            else:
                return None
            if at > len(payload):
                return None
    except ValueError:
        return None
    return found


def fcm_fields(payload: bytes) -> dict[str, str] | None:
    """The FCM message's string fields (`action`, `file_hash`, `file_name`, `target_host_id`) when `payload` is
    FCM-style JSON with an action; None otherwise."""
    if not payload.lstrip().startswith(b"{"):
        return None
    try:
        doc = json.loads(payload)
    except ValueError:
        return None
    if isinstance(doc, dict) and isinstance(doc.get("message"), dict):
        data = doc["message"].get("data")
        blob = data.get("blob") if isinstance(data, dict) else None
        try:
            doc = json.loads(blob) if isinstance(blob, str) else None
        except ValueError:
            return None
    if not isinstance(doc, dict) or not isinstance(doc.get("action"), str):
        return None
    keys = ("action", "file_hash", "file_name", "target_host_id")
    return {k: doc[k] for k in keys if isinstance(doc.get(k), str)}


def interpret(
    subject: str, payload: bytes, *, machine_id: str, rule_sync_deadline: int, randbelow: RandBelow
) -> PushAction | None:
    """What a message on `subject` asks for (see the module docstring); None: nothing."""
    fcm = fcm_fields(payload)
    if fcm is not None:
        action = fcm["action"]
        if action in FULL_SYNC_ACTIONS:
            return PushAction("full", 0, f"{action} on {subject}")
        if action == RULE_SYNC_ACTION:
            target = fcm.get("target_host_id", "")
            if target and target.lower() == machine_id.lower():
                return PushAction("rule", 0, f"rule_sync for this machine on {subject}")
            delay = randbelow(rule_sync_deadline) if rule_sync_deadline > 0 else 0
            return PushAction("rule", delay, f"global rule_sync on {subject}")
        return None
    if subject.startswith("santa.tag."):
        jitter = parse_sync_request(payload)
        jitter = DEFAULT_TAG_JITTER if jitter is None else jitter
        delay = randbelow(jitter) if jitter > 0 else 0
        return PushAction("full", delay, f"message on {subject} (max jitter {jitter} s)")
    if subject.startswith("santa.host."):
        return PushAction("full", 0, f"message on {subject}")
    return None


def connect_retry_delay(attempt: int, *, uniform: Callable[[float, float], float], randbelow: RandBelow) -> float:
    """§1.5 `-scheduleConnectionRetry` for attempt `attempt` (1, 2, …)."""
    if attempt > 9:
        return 300.0 + randbelow(301)
    return float(2 ** min(attempt - 1, 8)) * uniform(0.75, 1.25)
