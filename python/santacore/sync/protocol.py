"""The stages' request bodies (spec §3, §9) and the protocol's constants: stage names, intervals, `SyncType`.

Pure functions: nothing here opens a socket, reads a store or prints; `santacore.sync.responses` reads the answers.

Requests are built as ordered dicts (keys in protobuf field-number order) and serialised by
`santacore.sync.wire.encode_json`:

* protobuf-JSON ([G] ≥ 2024.6, [N]; `MessageToJsonString` defaults, §2.3): compact, default values omitted by the
  builders, doubles printed `%.15g` (or `%.17g` when that does not read back: `1718035512.8042209`), `/` and `&`
  left alone, `<`, `>`, C0/C1 controls and protobuf's list of invisible code points written as lowercase
  `\\u003c` escapes (supplementary code points as surrogate pairs; lone surrogates become a space, as protobuf's
  writer does with undecodable input), non-finite doubles as the strings "NaN"/"Infinity"/"-Infinity".
* [G-JSON] (`NSJSONSerialization`): compact, `/` written `\\/`, controls as `\\b \\f \\n \\r \\t` or `\\u00xx`, doubles
  in their shortest round-trip form (integral ones without a fraction); non-finite numbers are refused. Key order
  is unspecified in Santa; the builders keep field order.

Decisions (santacore's, not Santa's; `santa_version` and the host facts: `santacore.sync.host`):

* GOOGLE_2024_6 builds requests as GOOGLE except the postflight counters (uint64 then) print as quoted strings;
  it keeps the 2024.7 key `serial_num` (2024.6 itself sent `serial_number`, which no server reads).
* `postflight_request(report_sync_type=...)` can add [N]'s `syncType` to other variants (Zentral reads only that
  key to confirm a clean sync, §9.4); by default only NORTHPOLESEC sends it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import IntEnum
from typing import Any, Final

from santacore.santad.decisions import ClientMode
from santacore.santad.events import DEFAULT_VARIANT, StoredEvent, Variant, upload_body
from santacore.santad.rule_store import RuleCounts
from santacore.sync.host import HostFacts, default_santa_version

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_FULL_SYNC_INTERVAL",
    "DEFAULT_PUSH_FULL_SYNC_INTERVAL",
    "DEFAULT_PUSH_GLOBAL_RULE_SYNC_DEADLINE",
    "EVENTUPLOAD",
    "MINIMUM_FULL_SYNC_INTERVAL",
    "POSTFLIGHT",
    "PREFLIGHT",
    "RULEDOWNLOAD",
    "SyncType",
    "WireSyncType",
    "eventupload_request",
    "postflight_request",
    "preflight_request",
    "ruledownload_request",
]

PREFLIGHT: Final = "preflight"
EVENTUPLOAD: Final = "eventupload"
RULEDOWNLOAD: Final = "ruledownload"
POSTFLIGHT: Final = "postflight"

# §1.2 constants.
DEFAULT_BATCH_SIZE: Final = 50
DEFAULT_FULL_SYNC_INTERVAL: Final = 600
MINIMUM_FULL_SYNC_INTERVAL: Final = 60
DEFAULT_PUSH_FULL_SYNC_INTERVAL: Final = 14400
DEFAULT_PUSH_GLOBAL_RULE_SYNC_DEADLINE: Final = 600

_UINT32_MAX: Final = 0xFFFFFFFF


class SyncType(IntEnum):
    """A requested or performed sync type: Santa's SNTSyncType, the persisted `SyncTypeRequired` values (§1.6)."""

    NORMAL = 0
    CLEAN = 1
    CLEAN_ALL = 2

    @property
    def wire(self) -> str:
        """The enum name on the wire ([N] postflight `syncType`)."""
        return self.name

    @property
    def proto_number(self) -> int:
        """The `SyncType` enum number (0 is SYNC_TYPE_UNSPECIFIED)."""
        return int(self) + 1


class WireSyncType(IntEnum):
    """`santa.sync.v1.SyncType` as it is on the wire (addendum §5; lower-case aliases of 1–3 omitted)."""

    SYNC_TYPE_UNSPECIFIED = 0
    NORMAL = 1
    CLEAN = 2
    CLEAN_ALL = 3
    CLEAN_STANDALONE = 4
    CLEAN_RULES = 5
    CLEAN_FILE_ACCESS_RULES = 6

    @property
    def treated_as_normal(self) -> bool:
        """4–6 exist in [N]'s proto but its v1 client has no case for them: they fall to NORMAL (addendum §5)."""
        return self >= WireSyncType.CLEAN_STANDALONE


# ---------------------------------------------------------------------------------------------
# Requests


def _u32(value: int) -> int:
    """A count stored into a uint32 proto field (`uint32(count)`): wrapped."""
    return value & _UINT32_MAX


def _protobuf(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """protobuf-JSON omits fields at their default: "", 0, false, empty lists (None: not set)."""
    return {k: v for k, v in pairs if v not in (None, "", 0, False, [], ())}


def preflight_request(
    *,
    machine_id: str,
    facts: HostFacts,
    rule_counts: RuleCounts,
    client_mode: ClientMode | None,
    requested_sync_type: SyncType = SyncType.NORMAL,
    primary_user: str = "",
    push_notification_token: str | None = None,
    santa_version: str | None = None,
    variant: Variant = DEFAULT_VARIANT,
    push_notification_sync: bool = False,
    sip_status: int = 0,
    primary_user_groups: Sequence[str] = (),
    rules_hash: str | None = None,
) -> dict[str, Any]:
    """The preflight body (§3.1), keys in field order. The last four arguments are [N]-only fields 19–22
    (`rules_hash`: `RuleStore.rules_hash()` taken before upload and download, addendum §4)."""
    version = default_santa_version() if santa_version is None else santa_version
    serial = facts.serial_number if facts.serial_number is not None else machine_id
    modes: tuple[ClientMode, ...] = (ClientMode.MONITOR, ClientMode.LOCKDOWN)
    if variant is Variant.NORTHPOLESEC:
        modes += (ClientMode.STANDALONE,)
    mode = client_mode.wire if client_mode in modes else None  # "omitted if unknown" (§3.1 #9)
    clean = requested_sync_type in (SyncType.CLEAN, SyncType.CLEAN_ALL)  # §1.6
    c = rule_counts
    counters = [
        ("binary_rule_count", c.binary),
        ("certificate_rule_count", c.certificate),
        ("compiler_rule_count", c.compiler),
        ("transitive_rule_count", c.transitive),
        ("teamid_rule_count", c.teamid),
        ("signingid_rule_count", c.signingid),
        ("cdhash_rule_count", c.cdhash),
    ]
    if variant is Variant.GOOGLE_JSON:
        # NSDictionary: nil values left out, everything else sent (counters 0 included, primary_user "").
        body: dict[str, Any] = {
            "serial_num": serial,
            "hostname": facts.hostname,
            "os_version": facts.os_version,
            "os_build": facts.os_build,
            "model_identifier": facts.model_identifier,
            "santa_version": version,
            "primary_user": primary_user,
        }
        if push_notification_token:
            body["fcm_token"] = push_notification_token  # [G-JSON] key (§3.1 #8)
        if mode is not None:
            body["client_mode"] = mode
        if clean:
            body["request_clean_sync"] = True
        body.update(counters)
        return body
    pairs: list[tuple[str, Any]] = [
        ("serial_num", serial),
        ("hostname", facts.hostname),
        ("os_version", facts.os_version),
        ("os_build", facts.os_build),
        ("model_identifier", facts.model_identifier),
        ("santa_version", version),
        ("primary_user", primary_user),
        ("push_notification_token", push_notification_token),
        ("client_mode", mode),
        ("request_clean_sync", clean),
        *((k, _u32(v)) for k, v in counters),
        ("machine_id", machine_id),
    ]
    if variant is Variant.NORTHPOLESEC:
        pairs += [
            ("push_notification_sync", push_notification_sync),
            ("sipStatus", _u32(sip_status)),  # no json_name: lowerCamelCase (§3.1 #20)
            ("primary_user_groups", list(primary_user_groups)),
            ("rulesHash", rules_hash),  # no json_name: lowerCamelCase (addendum §4)
        ]
    return _protobuf(pairs)


def eventupload_request(
    events: Iterable[StoredEvent], machine_id: str, variant: Variant = DEFAULT_VARIANT
) -> dict[str, Any]:
    """The eventupload body (§3.2): `santacore.santad.events.upload_body`, the one serialiser of events."""
    return upload_body(events, machine_id, variant=variant)


def ruledownload_request(cursor: str | None, machine_id: str, variant: Variant = DEFAULT_VARIANT) -> dict[str, Any]:
    """The ruledownload body (§3.3): `cursor` (None on the first page), then `machine_id`.
    [G-JSON]: `{}` first, then `{"cursor": ...}` (a "" cursor is sent, as the loop continued on it)."""
    if variant is Variant.GOOGLE_JSON:
        return {} if cursor is None else {"cursor": cursor}
    return _protobuf([("cursor", cursor), ("machine_id", machine_id)])


def postflight_request(
    *,
    rules_received: int,
    rules_processed: int,
    machine_id: str,
    sync_type: SyncType = SyncType.NORMAL,
    variant: Variant = DEFAULT_VARIANT,
    report_sync_type: bool | None = None,
    rules_hash: str | None = None,
) -> dict[str, Any]:
    """The postflight body (§3.4). `sync_type` is the type performed; it is sent as `syncType` by [N] (and by
    any variant with `report_sync_type=True`; Zentral reads only that key, §9.4). `rules_hash` ([N] only, field 5):
    the rules hash after the download (addendum §4)."""
    report = variant is Variant.NORTHPOLESEC if report_sync_type is None else report_sync_type
    if variant is Variant.GOOGLE_JSON:
        body: dict[str, Any] = {"rules_received": rules_received, "rules_processed": rules_processed}
        if report:
            body["syncType"] = sync_type.wire
        return body
    received: int | str = _u32(rules_received)
    processed: int | str = _u32(rules_processed)
    if variant is Variant.GOOGLE_2024_6:  # uint64 counters: protobuf-JSON quotes 64-bit integers
        received, processed = (str(received) if received else 0), (str(processed) if processed else 0)
    return _protobuf(
        [
            ("rules_received", received),
            ("rules_processed", processed),
            ("machine_id", machine_id),
            ("syncType", sync_type.wire if report else None),  # enum NORMAL (1) is non-zero: printed
            ("rulesHash", rules_hash if variant is Variant.NORTHPOLESEC else None),
        ]
    )
