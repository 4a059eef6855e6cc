"""The sync stages' bodies (spec §2.3, §3, §9): request builders, the JSON encoder and lenient response parsers.

Pure functions and frozen dataclasses: nothing here opens a socket, reads a store or prints. The transport moves
the bytes; the stages decide what to do with the parsed answers. Only `HostFacts.current()` looks at the host.

Requests are built as ordered dicts (keys in protobuf field-number order) and serialised by `encode_json`:

* protobuf-JSON ([G] ≥ 2024.6, [N]; `MessageToJsonString` defaults, §2.3): compact, default values omitted by the
  builders, doubles printed `%.15g` (or `%.17g` when that does not read back: `1718035512.8042209`), `/` and `&`
  left alone, `<`, `>`, C0/C1 controls and protobuf's list of invisible code points written as lowercase
  `\\u003c` escapes (supplementary code points as surrogate pairs; lone surrogates become a space, as protobuf's
  writer does with undecodable input), non-finite doubles as the strings "NaN"/"Infinity"/"-Infinity".
* [G-JSON] (`NSJSONSerialization`): compact, `/` written `\\/`, controls as `\\b \\f \\n \\r \\t` or `\\u00xx`, doubles
  in their shortest round-trip form (integral ones without a fraction); non-finite numbers are refused. Key order
  is unspecified in Santa; the builders keep field order.

Responses are parsed as Santa's JSON parsers do (`parse_*_response(body, variant)`; the readers are
`santacore.sync.pbjson` and `santacore.sync.legacy_json`):

* protobuf variants (`JsonStringToMessage`, `ignore_unknown_fields`): the anti-XSSI prefix `)]}'\\n`, else `])}`,
  is removed once, but only from a non-empty body (an empty body means "all defaults"; a body that is only a
  prefix is then empty JSON and fails). Each key is looked up as the lowerCamelCase of the proto name, then the
  proto name, then the json_name (protobuf's `FieldByName`); unknown keys are skipped whatever they hold. `null`
  means "absent" everywhere (but `null` *inside* a list fails). Integers take numbers, quoted numbers and
  integral floats within range; bools only `true`/`false`; strings only strings; lists only arrays; an enum takes
  its exact value names, numbers and quoted numbers, and an unknown name leaves an `optional` enum unset and sets a
  plain enum to 0. A field given twice (e.g. `batch_size` and `batchSize`) fails, as in protobuf's parser (a later
  `null` is allowed). Invalid UTF-8, unparseable JSON, `NaN`/`Infinity` literals, unpaired `\\ud800` escapes, nesting
  deeper than 100, a non-object document and any type error fail the whole stage: `SyncError(stage=...)`.
* [G-JSON] (`NSJSONSerialization` + hand-written checks): anything unparseable is `{}`; numbers (and bools) are
  read loosely as NSNumber, strings where a number is expected are ignored; `sync_type` is compared lower-cased.

Variant-specific values (§1.2, §3.1, §9.1): [G]'s interval floors are "< 60 → 600" and "< 600 → 14400"; [N] keeps
the persisted interval on 0 (`None` here) and clamps 1–59 up to 60. [N] knows client mode STANDALONE, the extra
sync types (treated as NORMAL) and extra policies; santacore cannot store CEL / SILENT_GUI / SILENT_TTY rules, so
those are skipped like unknown ones (counted as received, not processed).

Decisions (santacore's, not Santa's):

* `santa_version` (preflight key 6, also fit for the User-Agent): `default_santa_version()`, `"2024.9.<build>"`.
  Servers gate on it (Zentral sends `sync_type` only to ≥ 2024.1 and old-style `sha256` rules to very old
  clients, and parses it as dot-separated integers), so it names the Santa release whose wire format santacore
  emits (2024.8+ protobuf-JSON; 2024.9 is the spec's own example) and carries santacore's version in the build
  number: `major * 1_000_000 + minor * 1_000 + patch` (santacore 0.1.0 → `2024.9.1000`). Pass `santa_version=`
  to override.
* Host facts on Linux: `serial_num` is the machine ID (no per-host serial is reliably readable without root, and
  DMI placeholders such as "To Be Filled By O.E.M." would merge hosts on servers keyed by serial); `os_version` is
  `/etc/os-release` VERSION_ID when it is dotted digits, else the numeric part of the kernel release (Zentral
  rejects non-numeric versions); `os_build` is the kernel release (`uname -r`); `model_identifier` is the DMI
  product name when readable, else empty (omitted). On macOS they are Santa's sources (SystemVersion.plist,
  `hw.model`, IOPlatformSerialNumber).
* GOOGLE_2024_6 builds requests as GOOGLE except the postflight counters (uint64 then) print as quoted strings;
  it keeps the 2024.7 key `serial_num` (2024.6 itself sent `serial_number`, which no server reads).
* `postflight_request(report_sync_type=...)` can add [N]'s `syncType` to other variants (Zentral reads only that
  key to confirm a clean sync, §9.4); by default only NORTHPOLESEC sends it.
* Rules are validated and normalised by `Rule.from_wire` (§8.1 santacore guidance); [G]'s protobuf path keeps
  enum names case-sensitive, [G-JSON] hands the dictionary to the rule initialiser as is.
* [G-JSON] rule pages continue while `cursor` is a string (even ""); Santa also continued on `null` (NSNull),
  which would only send `{"cursor":null}`: santacore stops there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Any, Final

from santacore.errors import SyncError
from santacore.santad.decisions import ClientMode
from santacore.santad.events import DEFAULT_VARIANT, StoredEvent, Variant, upload_body
from santacore.santad.rule_store import RuleCounts
from santacore.santad.rules import Rule, RuleError
from santacore.sync.host import HostFacts, default_santa_version, linux_host_facts, parse_os_release
from santacore.sync.legacy_json import legacy_document, ns_bool, ns_string, ns_uint
from santacore.sync.pbjson import protobuf_document, schemas
from santacore.sync.wire import encode_json, format_double, strip_xssi

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
    "EventUploadResponse",
    "FileAccessAction",
    "HostFacts",
    "PostflightResponse",
    "PreflightResponse",
    "RuleDownloadResponse",
    "SkippedRule",
    "SyncType",
    "default_santa_version",
    "effective_full_sync_interval",
    "effective_push_full_sync_interval",
    "effective_push_global_rule_sync_deadline",
    "encode_json",
    "eventupload_request",
    "format_double",
    "linux_host_facts",
    "parse_eventupload_response",
    "parse_os_release",
    "parse_postflight_response",
    "parse_preflight_response",
    "parse_ruledownload_response",
    "performed_sync_type",
    "postflight_request",
    "preflight_request",
    "ruledownload_request",
    "strip_xssi",
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

# The Santa release whose wire format santacore emits (see the module docstring).

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


class FileAccessAction(Enum):
    """`override_file_access_action` (§3.1 response field 15)."""

    NONE = 1
    AUDIT_ONLY = 2
    DISABLE = 3


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
) -> dict[str, Any]:
    """The preflight body (§3.1), keys in field order. The last three arguments are [N]-only fields 19–21;
    [N]'s `rulesHash` (22) is never sent (not reproducible)."""
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
) -> dict[str, Any]:
    """The postflight body (§3.4). `sync_type` is the type performed; it is sent as `syncType` by [N] (and by
    any variant with `report_sync_type=True`; Zentral reads only that key, §9.4). [N]'s `rulesHash` is never sent."""
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
        ]
    )


# ---------------------------------------------------------------------------------------------
# Response model


@dataclass(frozen=True)
class PreflightResponse:
    """What a preflight answer sets (§3.1). None means "absent: keep the current setting"; the interval fields
    are already clamped for the variant (§1.2)."""

    client_mode: ClientMode | None = None
    sync_type: int | None = None
    """The `SyncType` enum number received (0 UNSPECIFIED, 1 NORMAL, 2 CLEAN, 3 CLEAN_ALL, others kept as
    numbers); None when absent or an unrecognised name. Use `performed_sync_type`."""
    clean_sync: bool = False
    """The deprecated `clean_sync` key."""
    batch_size: int = DEFAULT_BATCH_SIZE
    enable_bundles: bool | None = None
    enable_transitive_rules: bool | None = None
    enable_all_event_upload: bool | None = None
    disable_unknown_event_upload: bool | None = None
    full_sync_interval: int | None = DEFAULT_FULL_SYNC_INTERVAL
    """Seconds; None ([N], 0 or absent) = keep the persisted interval."""
    push_notification_full_sync_interval: int | None = DEFAULT_PUSH_FULL_SYNC_INTERVAL
    """Seconds, used only while push notifications are active; None ([N], 0) = not set."""
    push_notification_global_rule_sync_deadline: int = DEFAULT_PUSH_GLOBAL_RULE_SYNC_DEADLINE
    allowed_path_regex: str | None = None
    """Present (even "") sets it; §9.3 santacore guidance: "" clears the sync-provided regex."""
    blocked_path_regex: str | None = None
    block_usb_mount: bool | None = None
    remount_usb_mode: tuple[str, ...] | None = None
    """Read only when `block_usb_mount` is present ([G])."""
    override_file_access_action: FileAccessAction | None = None


@dataclass(frozen=True)
class EventUploadResponse:
    """§3.2: the bundle hashes whose BUNDLE_BINARY events the server wants (exact, case-sensitive strings)."""

    event_upload_bundle_binaries: tuple[str, ...] = ()


@dataclass(frozen=True)
class SkippedRule:
    """A rule object of a page that was not turned into a `Rule`: its position and why."""

    index: int
    reason: str


@dataclass(frozen=True)
class RuleDownloadResponse:
    """One ruledownload page (§3.3). `received` counts every rule object (the postflight's `rules_received`),
    `rules` the valid ones (`rules_processed`); `cursor` None means "last page"."""

    rules: tuple[Rule, ...] = ()
    received: int = 0
    skipped: tuple[SkippedRule, ...] = ()
    cursor: str | None = None

    @property
    def processed(self) -> int:
        return len(self.rules)


@dataclass(frozen=True)
class PostflightResponse:
    """§3.4: the body is ignored; `error` says why protobuf would have refused it (logged, never fatal)."""

    error: str | None = None


def performed_sync_type(requested: SyncType, response: PreflightResponse) -> SyncType:
    """§1.6: the sync type performed for `requested` given the preflight answer. A present `sync_type` wins over
    `clean_sync`; CLEAN keeps a requested CLEAN_ALL; any other number (UNSPECIFIED, NORMAL, unknown) is NORMAL."""
    if response.sync_type is not None:
        if response.sync_type == SyncType.CLEAN.proto_number:
            return SyncType.CLEAN_ALL if requested is SyncType.CLEAN_ALL else SyncType.CLEAN
        if response.sync_type == SyncType.CLEAN_ALL.proto_number:
            return SyncType.CLEAN_ALL
        return SyncType.NORMAL
    if response.clean_sync:
        return SyncType.CLEAN_ALL if requested is SyncType.CLEAN_ALL else SyncType.CLEAN
    return SyncType.NORMAL


def effective_full_sync_interval(value: int, variant: Variant = DEFAULT_VARIANT) -> int | None:
    """§1.2: [G]/[G-JSON] `< 60` (absent/0 included) → 600; [N] 0 → None (keep), 1–59 → 60."""
    if variant is Variant.NORTHPOLESEC:
        return None if value == 0 else max(value, MINIMUM_FULL_SYNC_INTERVAL)
    return DEFAULT_FULL_SYNC_INTERVAL if value < MINIMUM_FULL_SYNC_INTERVAL else value


def effective_push_full_sync_interval(value: int, variant: Variant = DEFAULT_VARIANT) -> int | None:
    """§1.2: [G] `< 600` → 14400; [N] 0 → None (not set), else at least 60."""
    if variant is Variant.NORTHPOLESEC:
        return None if value == 0 else max(value, MINIMUM_FULL_SYNC_INTERVAL)
    return DEFAULT_PUSH_FULL_SYNC_INTERVAL if value < DEFAULT_FULL_SYNC_INTERVAL else value


def effective_push_global_rule_sync_deadline(value: int, variant: Variant = DEFAULT_VARIANT) -> int:
    """§1.2: [G]/[N] `< 600` → 600; [G-JSON] `< 60` → 600."""
    floor = MINIMUM_FULL_SYNC_INTERVAL if variant is Variant.GOOGLE_JSON else DEFAULT_PUSH_GLOBAL_RULE_SYNC_DEADLINE
    return DEFAULT_PUSH_GLOBAL_RULE_SYNC_DEADLINE if value < floor else value


_CLIENT_MODES: Final = {1: ClientMode.MONITOR, 2: ClientMode.LOCKDOWN, 3: ClientMode.STANDALONE}


def _first(p: Mapping[str, Any], *names: str) -> Any:
    """The value of the first of `names` that is present (new keys before deprecated ones)."""
    return next((p[n] for n in names if n in p), None)


def _preflight_from_protobuf(p: Mapping[str, Any], variant: Variant) -> PreflightResponse:
    mode = _CLIENT_MODES.get(p.get("client_mode", 0))
    if mode is ClientMode.STANDALONE and variant is not Variant.NORTHPOLESEC:
        mode = None  # an unknown number of [G]'s open enum: no change
    action = p.get("override_file_access_action")
    block_usb = p.get("block_usb_mount")
    push = p.get("push_notification_full_sync_interval_seconds", 0) or p.get(
        "deprecated_fcm_full_sync_interval_seconds", 0
    )
    deadline = p.get("push_notification_global_rule_sync_deadline_seconds", 0) or p.get(
        "deprecated_fcm_global_rule_sync_deadline_seconds", 0
    )
    return PreflightResponse(
        client_mode=mode,
        sync_type=p.get("sync_type"),
        clean_sync=bool(p.get("deprecated_clean_sync", False)),
        batch_size=p.get("batch_size", 0) or DEFAULT_BATCH_SIZE,
        enable_bundles=_first(p, "enable_bundles", "deprecated_bundles_enabled"),
        enable_transitive_rules=_first(
            p,
            "enable_transitive_rules",
            "deprecated_enabled_transitive_whitelisting",
            "deprecated_transitive_whitelisting_enabled",
        ),
        enable_all_event_upload=p.get("enable_all_event_upload"),
        disable_unknown_event_upload=p.get("disable_unknown_event_upload"),
        full_sync_interval=effective_full_sync_interval(p.get("full_sync_interval_seconds", 0), variant),
        push_notification_full_sync_interval=effective_push_full_sync_interval(push, variant),
        push_notification_global_rule_sync_deadline=effective_push_global_rule_sync_deadline(deadline, variant),
        allowed_path_regex=_first(p, "allowed_path_regex", "deprecated_whitelist_regex"),
        blocked_path_regex=_first(p, "blocked_path_regex", "deprecated_blacklist_regex"),
        block_usb_mount=block_usb,
        remount_usb_mode=None if block_usb is None else tuple(p.get("remount_usb_mode", ())),
        override_file_access_action=FileAccessAction(action) if action in (1, 2, 3) else None,
    )


def _rules_page(entries: Sequence[Any], cursor: str | None) -> RuleDownloadResponse:
    rules, skipped = [], []
    for i, entry in enumerate(entries):
        try:
            rules.append(Rule.from_wire(entry))
        except RuleError as e:
            skipped.append(SkippedRule(i, str(e)))
    return RuleDownloadResponse(tuple(rules), len(entries), tuple(skipped), cursor)


def _rule_dict(r: Mapping[str, Any]) -> dict[str, Any]:
    """A parsed protobuf Rule as the dictionary `Rule.from_wire` validates (enum numbers, sha256 fallback)."""
    return {
        "identifier": r.get("identifier", ""),
        "sha256": r.get("deprecated_sha256", ""),
        "policy": r.get("policy", 0),
        "rule_type": r.get("rule_type", 0),
        "custom_msg": r.get("custom_msg", ""),
        "custom_url": r.get("custom_url", ""),
    }


_LEGACY_SYNC_TYPES: Final = {"normal": 1, "clean": 2, "clean_all": 3}
_LEGACY_FILE_ACCESS: Final = {"none": 1, "audit_only": 2, "auditonly": 2, "disable": 3}


def _preflight_from_legacy(d: Mapping[str, Any]) -> PreflightResponse:
    mode = d.get("client_mode")
    sync_type = ns_string(d.get("sync_type"))
    action = ns_string(d.get("override_file_access_action"))
    remount = d.get("remount_usb_mode")
    block_usb = ns_bool(d.get("block_usb_mount"))
    return PreflightResponse(
        client_mode={"MONITOR": ClientMode.MONITOR, "LOCKDOWN": ClientMode.LOCKDOWN}.get(mode)
        if isinstance(mode, str)
        else None,
        # Any case; a non-empty unknown string is present and means NORMAL (§1.6).
        sync_type=_LEGACY_SYNC_TYPES.get(sync_type.lower(), 0) if sync_type else None,
        clean_sync=bool(ns_bool(d.get("clean_sync"))),
        batch_size=ns_uint(d.get("batch_size")) or DEFAULT_BATCH_SIZE,
        enable_bundles=_first_not_none(ns_bool(d.get("enable_bundles")), ns_bool(d.get("bundles_enabled"))),
        enable_transitive_rules=_first_not_none(
            ns_bool(d.get("enable_transitive_rules")),
            ns_bool(d.get("enabled_transitive_whitelisting")),
            ns_bool(d.get("transitive_whitelisting_enabled")),
        ),
        enable_all_event_upload=ns_bool(d.get("enable_all_event_upload")),
        disable_unknown_event_upload=ns_bool(d.get("disable_unknown_event_upload")),
        full_sync_interval=effective_full_sync_interval(ns_uint(d.get("full_sync_interval")), Variant.GOOGLE_JSON),
        # [G-JSON] read only the fcm_* keys (§3.1 #9).
        push_notification_full_sync_interval=effective_push_full_sync_interval(
            ns_uint(d.get("fcm_full_sync_interval")), Variant.GOOGLE_JSON
        ),
        push_notification_global_rule_sync_deadline=effective_push_global_rule_sync_deadline(
            ns_uint(d.get("fcm_global_rule_sync_deadline")), Variant.GOOGLE_JSON
        ),
        allowed_path_regex=_first_not_none(ns_string(d.get("allowed_path_regex")), ns_string(d.get("whitelist_regex"))),
        blocked_path_regex=_first_not_none(ns_string(d.get("blocked_path_regex")), ns_string(d.get("blacklist_regex"))),
        block_usb_mount=block_usb,
        remount_usb_mode=tuple(m for m in remount if isinstance(m, str)) if isinstance(remount, list) else None,
        override_file_access_action=FileAccessAction(_LEGACY_FILE_ACCESS[action.lower()])
        if action and action.lower() in _LEGACY_FILE_ACCESS
        else None,
    )


def _first_not_none(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


# ---------------------------------------------------------------------------------------------
# Response parsers


def parse_preflight_response(body: bytes, variant: Variant = DEFAULT_VARIANT) -> PreflightResponse:
    """The preflight answer (§3.1, §1.2, §2.3, §9.3); SyncError(stage="preflight") when Santa would fail."""
    if variant is Variant.GOOGLE_JSON:
        return _preflight_from_legacy(legacy_document(body))
    return _preflight_from_protobuf(protobuf_document(body, PREFLIGHT, schemas(variant).preflight), variant)


def parse_eventupload_response(body: bytes, variant: Variant = DEFAULT_VARIANT) -> EventUploadResponse:
    """The eventupload answer (§3.2, §4.5). Moroz's `{"Err": null}` and Zentral's `{}` are empty answers (§9.2,
    §9.4)."""
    if variant is Variant.GOOGLE_JSON:
        wanted = legacy_document(body).get("event_upload_bundle_binaries")
        return EventUploadResponse(tuple(h for h in wanted if isinstance(h, str)) if isinstance(wanted, list) else ())
    p = protobuf_document(body, EVENTUPLOAD, schemas(variant).eventupload)
    return EventUploadResponse(tuple(p.get("event_upload_bundle_binaries", ())))


def parse_ruledownload_response(body: bytes, variant: Variant = DEFAULT_VARIANT) -> RuleDownloadResponse:
    """One ruledownload page (§3.3, §9.3 items 6–7): invalid rules (empty identifier — Moroz's legacy `sha256`
    rules, §3.3 —, unknown policy or type, bad identifier) are skipped and counted. `{"rules": null}` and a missing,
    `null` or `""` cursor (Moroz: one page, no cursor, §9.2) end the download. [G-JSON] fails the stage unless
    `rules` is an array, and continues while `cursor` is a string (§3.3)."""
    if variant is Variant.GOOGLE_JSON:
        d = legacy_document(body)
        entries = d.get("rules")
        if not isinstance(entries, list):
            raise SyncError("ruledownload response has no rules array", stage=RULEDOWNLOAD)
        return _rules_page(entries, ns_string(d.get("cursor")))
    p = protobuf_document(body, RULEDOWNLOAD, schemas(variant).ruledownload)
    return _rules_page([_rule_dict(r) for r in p.get("rules", ())], p.get("cursor") or None)


def parse_postflight_response(body: bytes, variant: Variant = DEFAULT_VARIANT) -> PostflightResponse:
    """The postflight answer, which Santa ignores (§3.4; Moroz sends `{"NoOp": {}}`): never raises."""
    if variant is Variant.GOOGLE_JSON:
        return PostflightResponse()
    try:
        protobuf_document(body, POSTFLIGHT, schemas(variant).postflight)
    except SyncError as e:
        return PostflightResponse(error=str(e))
    return PostflightResponse()
