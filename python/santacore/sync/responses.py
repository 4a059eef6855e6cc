"""The stages' answers, parsed as Santa's JSON parsers do (spec §1.2, §1.6, §2.3, §3, §9.3).

`parse_*_response(body, variant)` gives what each response sets, its intervals at the variant's floors; the
readers are `santacore.sync.pbjson` and `santacore.sync.legacy_json`:

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
sync types (treated as NORMAL) and extra policies; santacore stores CEL rules (their `cel_expr`, compiled when
stored) but not SILENT_GUI / SILENT_TTY rules, which are skipped like unknown ones (counted as received, not
processed).

Decisions (santacore's, not Santa's):

* Rules are validated and normalised by `Rule.from_wire` (§8.1 santacore guidance); [G]'s protobuf path keeps
  enum names case-sensitive, [G-JSON] hands the dictionary to the rule initialiser as is.
* [G-JSON] rule pages continue while `cursor` is a string (even ""); Santa also continued on `null` (NSNull),
  which would only send `{"cursor":null}`: santacore stops there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Final

from santacore.errors import SyncError
from santacore.santad.decisions import ClientMode
from santacore.santad.events import DEFAULT_VARIANT, Variant
from santacore.santad.rules import Rule, RuleError
from santacore.sync.legacy_json import legacy_document, ns_bool, ns_string, ns_uint
from santacore.sync.pbjson import protobuf_document
from santacore.sync.protocol import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_FULL_SYNC_INTERVAL,
    DEFAULT_PUSH_FULL_SYNC_INTERVAL,
    DEFAULT_PUSH_GLOBAL_RULE_SYNC_DEADLINE,
    EVENTUPLOAD,
    MINIMUM_FULL_SYNC_INTERVAL,
    POSTFLIGHT,
    PREFLIGHT,
    RULEDOWNLOAD,
    SyncType,
)
from santacore.sync.push.settings import PushSettings, push_settings_from_preflight

__all__ = [
    "EventUploadResponse",
    "FileAccessAction",
    "PostflightResponse",
    "PreflightResponse",
    "RuleDownloadResponse",
    "SkippedRule",
    "effective_full_sync_interval",
    "effective_push_full_sync_interval",
    "effective_push_global_rule_sync_deadline",
    "parse_eventupload_response",
    "parse_postflight_response",
    "parse_preflight_response",
    "parse_ruledownload_response",
    "performed_sync_type",
]


class FileAccessAction(Enum):
    """`override_file_access_action` (§3.1 response field 15)."""

    NONE = 1
    AUDIT_ONLY = 2
    DISABLE = 3


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
    push: PushSettings = field(default_factory=PushSettings)
    """The push configuration (addendum §1.1; empty for [G-JSON], which has no such fields)."""


@dataclass(frozen=True)
class EventUploadResponse:
    """§3.2: the bundle hashes whose BUNDLE_BINARY events the server wants (exact, case-sensitive strings)."""

    event_upload_bundle_binaries: tuple[str, ...] = ()


@dataclass(frozen=True)
class SkippedRule:
    """A rule object of a page that was not turned into a `Rule`: its position, its identifier (when it had a
    non-empty string one) and why."""

    index: int
    reason: str
    identifier: str | None = None


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
        push=push_settings_from_preflight(p),
    )


def _rules_page(entries: Sequence[Any], cursor: str | None) -> RuleDownloadResponse:
    rules, skipped = [], []
    for i, entry in enumerate(entries):
        try:
            rules.append(Rule.from_wire(entry))
        except RuleError as e:
            skipped.append(SkippedRule(i, str(e), _identifier_of(entry)))
    return RuleDownloadResponse(tuple(rules), len(entries), tuple(skipped), cursor)


def _identifier_of(entry: Any) -> str | None:
    if not isinstance(entry, Mapping):
        return None
    for key in ("identifier", "sha256"):
        value = entry.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _rule_dict(r: Mapping[str, Any]) -> dict[str, Any]:
    """A parsed protobuf Rule as the dictionary `Rule.from_wire` validates (enum numbers, sha256 fallback)."""
    return {
        "identifier": r.get("identifier", ""),
        "sha256": r.get("deprecated_sha256", ""),
        "policy": r.get("policy", 0),
        "rule_type": r.get("rule_type", 0),
        "custom_msg": r.get("custom_msg", ""),
        "custom_url": r.get("custom_url", ""),
        "cel_expr": r.get("cel_expr", ""),
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


def _document(body: bytes, stage: str, message: type[Any], variant: Variant, binary: bool) -> dict[str, Any]:
    """The set fields of a protobuf-JSON or (`binary`, SyncEnableProtoTransfer) binary protobuf response."""
    if binary:
        from santacore.sync.binary import decode_response

        return decode_response(body, stage, message, variant)
    return protobuf_document(body, stage, message, variant)


def _pb() -> Any:
    """The generated santa.sync.v1 module, loaded (with protobuf) when a response is first parsed."""
    from santacore.syncv1 import santa_sync_v1_pb2

    return santa_sync_v1_pb2


def parse_preflight_response(
    body: bytes, variant: Variant = DEFAULT_VARIANT, *, binary: bool = False
) -> PreflightResponse:
    """The preflight answer (§3.1, §1.2, §2.3, §9.3); SyncError(stage="preflight") when Santa would fail."""
    if variant is Variant.GOOGLE_JSON:
        return _preflight_from_legacy(legacy_document(body))
    return _preflight_from_protobuf(_document(body, PREFLIGHT, _pb().PreflightResponse, variant, binary), variant)


def parse_eventupload_response(
    body: bytes, variant: Variant = DEFAULT_VARIANT, *, binary: bool = False
) -> EventUploadResponse:
    """The eventupload answer (§3.2, §4.5). Moroz's `{"Err": null}` and Zentral's `{}` are empty answers (§9.2,
    §9.4)."""
    if variant is Variant.GOOGLE_JSON:
        wanted = legacy_document(body).get("event_upload_bundle_binaries")
        return EventUploadResponse(tuple(h for h in wanted if isinstance(h, str)) if isinstance(wanted, list) else ())
    p = _document(body, EVENTUPLOAD, _pb().EventUploadResponse, variant, binary)
    return EventUploadResponse(tuple(p.get("event_upload_bundle_binaries", ())))


def parse_ruledownload_response(
    body: bytes, variant: Variant = DEFAULT_VARIANT, *, binary: bool = False
) -> RuleDownloadResponse:
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
    p = _document(body, RULEDOWNLOAD, _pb().RuleDownloadResponse, variant, binary)
    return _rules_page([_rule_dict(r) for r in p.get("rules", ())], p.get("cursor") or None)


def parse_postflight_response(
    body: bytes, variant: Variant = DEFAULT_VARIANT, *, binary: bool = False
) -> PostflightResponse:
    """The postflight answer, which Santa ignores (§3.4; Moroz sends `{"NoOp": {}}`): never raises."""
    if variant is Variant.GOOGLE_JSON:
        return PostflightResponse()
    try:
        _document(body, POSTFLIGHT, _pb().PostflightResponse, variant, binary)
    except SyncError as e:
        return PostflightResponse(error=str(e))
    return PostflightResponse()
