"""One full sync as santasyncservice runs it (spec §1.1): the four stages in order, and its `SyncResult`.

The outcomes are Santa's (§1.5):

- preflight fails → PREFLIGHT_FAILED, nothing else happens;
- an event batch fails → the rest stay stored; the stage still "succeeds";
- any rule page fails → RULE_DOWNLOAD_FAILED; no rule from any page is applied (the pages are staged in a temporary
  table of rules.db's connection as they arrive, so memory stays bounded; the download is bounded in pages, rules
  and bytes by the TransportSettings, in time by the sync's budget);
- postflight's HTTP result is ignored; the preflight settings are applied and persisted.

Nothing is lost: events leave events.db only after the server answered 200 for them
(or, in a clean sync without SyncEnableCleanSyncEventUpload, by Santa's rule), and the
downloaded rules reach rules.db in one transaction.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from santacore.config.settings import Config
from santacore.errors import SyncError
from santacore.santad.event_store import EventRow
from santacore.santad.events import EventDecodeError, StoredEvent, Variant
from santacore.santad.rule_store import Cleanup
from santacore.santad.rules import Rule
from santacore.sync import protocol, responses
from santacore.sync.binary import JSON_TYPE, PROTOBUF_TYPE, encode_request
from santacore.sync.context import SyncContext
from santacore.sync.protocol import SyncType, WireSyncType
from santacore.sync.responses import PreflightResponse
from santacore.sync.settings import DEFAULT_MAX_RULE_BYTES, DEFAULT_MAX_RULE_PAGES, DEFAULT_MAX_RULES
from santacore.sync.state import SERVER_SWITCHES, SyncState, effective_config, load_state, save_state
from santacore.sync.wire import encode_json

__all__ = [
    "NotApplied",
    "SyncResult",
    "SyncStatus",
    "begin_sync",
    "download_and_apply",
    "download_rules",
    "full_sync",
    "post",
    "request_sync_type",
]


class SyncStatus(IntEnum):
    """`santactl sync`'s exit codes (§1.4)."""

    SUCCESS = 0
    PREFLIGHT_FAILED = 1
    EVENT_UPLOAD_FAILED = 2
    RULE_DOWNLOAD_FAILED = 3
    POSTFLIGHT_FAILED = 4
    TOO_MANY_SYNCS = 5
    MISSING_SYNC_BASE_URL = 6
    MISSING_MACHINE_ID = 7
    DAEMON_TIMEOUT = 8
    UNKNOWN = 10


@dataclass
class SyncResult:
    """What one full sync did, in figures, and why it stopped if it did."""

    status: SyncStatus = SyncStatus.SUCCESS
    performed: SyncType | None = None
    events_uploaded: int = 0
    events_dropped_clean: int = 0
    events_quarantined: int = 0
    events_dropped_unmapped: int = 0
    events_left: int = 0
    rules_received: int = 0
    rules_processed: int = 0
    rules_applied: int = 0
    error: str | None = None
    rules_not_applied: list[NotApplied] = field(default_factory=list)
    log: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class NotApplied:
    """A downloaded rule the client could not apply: where it was (page and position, from 1), its identifier
    when it had one, and why."""

    page: int
    index: int
    identifier: str | None
    reason: str

    def describe(self) -> str:
        what = f"rule {self.index} of page {self.page}" + (f" ({self.identifier})" if self.identifier else "")
        return f"{what}: {self.reason}"


def post(ctx: SyncContext, stage: str, body: dict[str, object]) -> bytes:
    """Send one stage body in the context's wire variant — protobuf-JSON, or binary protobuf when
    `ctx.proto_transfer` (SyncEnableProtoTransfer, addendum §3) —; the raw answer (SyncError when it fails). Within
    a full sync, every attempt ends at the sync's budget (`ctx.deadline`)."""
    if ctx.proto_transfer:
        data, kind = encode_request(stage, body), PROTOBUF_TYPE
    else:
        data, kind = encode_json(body, ctx.variant), JSON_TYPE
    extra: dict[str, Any] = {} if kind == JSON_TYPE else {"content_type": kind}  # a JSON post keeps its old call
    if ctx.deadline is None:
        return ctx.transport.post(stage, data, **extra)
    if time.monotonic() >= ctx.deadline:
        raise SyncError("not sent: the sync's time budget (SyncTimeBudget) is spent", stage=stage)
    return ctx.transport.post(stage, data, deadline=ctx.deadline, **extra)


def _say(ctx: SyncContext, result: SyncResult, line: str) -> None:
    result.log.append(line)
    ctx.log(line)


def _fail(
    ctx: SyncContext, result: SyncResult, status: SyncStatus, stage: str, line: str, error: SyncError
) -> SyncResult:
    """The sync's final outcome: kept in the result (`error`, and `log`) for the caller to report once; the
    events still queued are counted."""
    result.status, result.error = status, f"{stage}: {error}"
    result.log.append(line)
    result.events_left = ctx.events.count()
    return result


def begin_sync(ctx: SyncContext, result: SyncResult) -> bool:
    """What every kind of sync does first: start its time budget (SyncTimeBudget) unless the caller set a
    deadline, and refuse (False, with `result` saying why) when there is no SyncBaseURL."""
    if ctx.deadline is None:
        budget = getattr(ctx.transport.settings, "sync_budget", None)
        if budget:
            ctx.deadline = time.monotonic() + budget
    if not ctx.config.sync_base_url:
        result.status, result.error = SyncStatus.MISSING_SYNC_BASE_URL, "Missing SyncBaseURL"
        return False
    return True


def full_sync(ctx: SyncContext, *, state_path: str) -> SyncResult:
    """Run one full sync. Never raises for server or network trouble: the result says what
    happened. Store failures (a corrupt database) do raise, as nothing can be done safely."""
    result = SyncResult()
    if not begin_sync(ctx, result):
        return result
    if not ctx.machine_id:
        result.status, result.error = SyncStatus.MISSING_MACHINE_ID, "Missing MachineID"
        return result
    state = load_state(state_path)
    if state.sync_type_required is not SyncType.CLEAN_ALL and _rules_db_is_new(ctx, state):
        # §1.6/§8.7: a rules database created from scratch asks for a CLEAN_ALL sync.
        state = dataclasses.replace(state, sync_type_required=SyncType.CLEAN_ALL)
        save_state(state_path, state)
    config = effective_config(ctx.config, state)

    # 1. preflight (required)
    try:
        body = protocol.preflight_request(
            machine_id=ctx.machine_id,
            facts=ctx.facts,
            rule_counts=ctx.rules.counts(),
            client_mode=config.client_mode,
            requested_sync_type=state.sync_type_required,
            primary_user=ctx.config.configured_machine_owner() or "",
            variant=ctx.variant,
            rules_hash=_rules_hash(ctx),  # before upload and download (addendum §4)
            push_notification_token=ctx.push_token,
        )
        preflight = responses.parse_preflight_response(
            post(ctx, protocol.PREFLIGHT, body), ctx.variant, binary=ctx.proto_transfer
        )
    except SyncError as e:
        return _fail(ctx, result, SyncStatus.PREFLIGHT_FAILED, "preflight", f"Preflight failed: {e}", e)
    performed = responses.performed_sync_type(state.sync_type_required, preflight)
    result.performed = performed
    _say(ctx, result, f"Preflight complete ({performed.name.lower()} sync{_sync_type_note(preflight)})")

    # 2. eventupload (never fails the sync, §1.1 step 3)
    _upload_events(ctx, result, preflight.batch_size or protocol.DEFAULT_BATCH_SIZE, performed, config)

    # 3. ruledownload (required; all pages, then one transaction)
    cleanup = {SyncType.NORMAL: Cleanup.NONE, SyncType.CLEAN: Cleanup.NON_TRANSITIVE}.get(performed, Cleanup.ALL)
    try:
        download_and_apply(ctx, result, cleanup)
    except SyncError as e:
        return _fail(ctx, result, SyncStatus.RULE_DOWNLOAD_FAILED, "ruledownload", f"Rule download failed: {e}", e)
    for skipped in result.rules_not_applied:
        line = f"Rule not applied: {skipped.describe()}"
        result.log.append(line)
        (ctx.warn or ctx.log)(line)
    not_applied = len(result.rules_not_applied)
    _say(
        ctx,
        result,
        f"Rule download complete: {result.rules_processed} of {result.rules_received} rules applied"
        + (f" ({not_applied} not applied, named above)" if not_applied else ""),
    )

    # 4. postflight: the HTTP outcome is ignored; the preflight settings are applied regardless
    try:
        body = protocol.postflight_request(
            rules_received=result.rules_received,
            rules_processed=result.rules_processed,
            machine_id=ctx.machine_id,
            sync_type=performed,
            variant=ctx.variant,
            # A clean sync is reported as [N] does, so servers that wait for it (Zentral, §9.4) see it done.
            report_sync_type=True if performed is not SyncType.NORMAL else None,
            rules_hash=_rules_hash(ctx),  # after the download (addendum §4)
        )
        responses.parse_postflight_response(
            post(ctx, protocol.POSTFLIGHT, body), ctx.variant, binary=ctx.proto_transfer
        )
    except SyncError as e:
        _say(ctx, result, f"Postflight failed (ignored, as Santa ignores it): {e}")
    save_state(state_path, _apply_preflight(state, preflight, performed, ctx.clock()))
    result.events_left = ctx.events.count()
    _say(ctx, result, "Sync complete")
    return result


def _rules_hash(ctx: SyncContext) -> str | None:
    """[N]'s `rulesHash` of rules.db now (addendum §4); None for the google variants, which have no such field."""
    if ctx.variant is not Variant.NORTHPOLESEC:
        return None
    hasher = getattr(ctx.rules, "rules_hash", None)
    return hasher() if hasher is not None else None


def _sync_type_note(preflight: PreflightResponse) -> str:
    """Why a server's CLEAN_STANDALONE / CLEAN_RULES / CLEAN_FILE_ACCESS_RULES led to a normal sync (addendum §5)."""
    number = preflight.sync_type
    if number is None or not 0 <= number <= max(WireSyncType) or not WireSyncType(number).treated_as_normal:
        return ""
    return f": the server sent {WireSyncType(number).name}, which Santa's v1 client treats as NORMAL"


def _rules_db_is_new(ctx: SyncContext, state: SyncState) -> bool:
    """Santa requests CLEAN_ALL when it creates rules.db. santacore may create it earlier (a
    `santacore check`), so an empty database that never completed a sync counts as new too."""
    if getattr(ctx.rules, "created_fresh", False):
        return True
    return state.full_sync_last_success is None and ctx.rules.counts().total == 0


def _upload_events(ctx: SyncContext, result: SyncResult, batch_size: int, performed: SyncType, config: Config) -> None:
    """§4.6–4.7: batches of the server's size; each batch deleted right after its 200; the first
    failing batch ends the stage; a clean sync drops events unsent unless configured otherwise."""
    if ctx.events.count() == 0:
        return
    problem = ctx.events.writable() if hasattr(ctx.events, "writable") else None
    if problem is not None:
        # An uploaded batch must then be deleted; one that cannot be would be sent again at every sync.
        _say(
            ctx, result, f"Event upload skipped, {ctx.events.count()} events kept: events.db is not writable: {problem}"
        )
        return
    send = performed is SyncType.NORMAL or config.sync_enable_clean_sync_event_upload
    for rows in ctx.events.pending(batch_size):
        events: list[StoredEvent] = []
        sendable: list[EventRow] = []
        undecodable: list[int] = []
        unmapped: list[int] = []
        for row in rows:
            try:
                event = StoredEvent.from_record(row.data)
            except EventDecodeError:
                undecodable.append(row.idx)
                continue
            if not event.uploaded_in(ctx.variant):
                unmapped.append(row.idx)  # no v1 mapping in this variant: Santa deletes it unsent (§4.7)
                continue
            events.append(event)
            sendable.append(row)
        if undecodable:
            result.events_quarantined += ctx.events.quarantine(undecodable, "record could not be decoded")
        if unmapped:
            result.events_dropped_unmapped += ctx.events.delete(unmapped)
        if not sendable:
            continue
        if not send:
            result.events_dropped_clean += ctx.events.delete(r.idx for r in sendable)
            continue
        try:
            body = protocol.eventupload_request(events, ctx.machine_id, ctx.variant)
            # The bundle-binaries request is parsed but ignored during a full sync (§4.5 step 5).
            responses.parse_eventupload_response(
                post(ctx, protocol.EVENTUPLOAD, body), ctx.variant, binary=ctx.proto_transfer
            )
        except SyncError as e:
            _say(ctx, result, f"Event upload failed, {ctx.events.count()} events kept for the next sync: {e}")
            return
        ctx.events.delete(r.idx for r in sendable)
        result.events_uploaded += len(sendable)
    _say(ctx, result, f"Event upload complete: {result.events_uploaded} events uploaded")


def download_and_apply(ctx: SyncContext, result: SyncResult, cleanup: Cleanup) -> None:
    """The rule download of every kind of sync: all pages (`download_rules`), then one transaction. SyncError, with
    nothing applied, when rules.db cannot be written (asked before the first request) or the download fails."""
    problem = ctx.rules.writable() if hasattr(ctx.rules, "writable") else None
    if problem is not None:
        raise SyncError(f"rules.db is not writable: {problem}; no rules downloaded", stage=protocol.RULEDOWNLOAD)
    staging = getattr(ctx.rules, "staging", None)
    if staging is None:
        rules: list[Rule] = []
        download_rules(ctx, result, rules.extend)
        if rules:
            result.rules_applied = ctx.rules.add_rules(rules, cleanup=cleanup)
        return
    with staging() as staged:  # rules.db: the pages are staged on disk as they arrive, memory stays bounded
        download_rules(ctx, result, staged.add)
        if staged.count:
            result.rules_applied = staged.apply(cleanup=cleanup)
        # CEL rules whose expression does not compile: skipped on insert, still counted as processed (addendum §6)
        result.rules_not_applied.extend(
            NotApplied(r.batch, r.position, r.rule.identifier, r.reason) for r in getattr(staged, "rejected", ())
        )


def download_rules(ctx: SyncContext, result: SyncResult, keep: Callable[[Iterable[Rule]], None]) -> None:
    """Every page, within the transport settings' bounds (pages, rules, bytes; time is the sync's budget): a
    bound hit fails the stage and nothing is applied."""
    settings = getattr(ctx.transport, "settings", None)
    max_pages = int(getattr(settings, "max_rule_pages", DEFAULT_MAX_RULE_PAGES))
    max_rules = int(getattr(settings, "max_rules", DEFAULT_MAX_RULES))
    max_bytes = int(getattr(settings, "max_rule_bytes", DEFAULT_MAX_RULE_BYTES))
    cursor: str | None = None
    seen: set[str] = set()
    number = 0
    size = 0
    while True:
        number += 1
        if number > max_pages:
            raise SyncError(
                f"the server sent more than {max_pages} pages of rules (RuleDownloadMaxPages); nothing applied",
                stage=protocol.RULEDOWNLOAD,
            )
        body = protocol.ruledownload_request(cursor, ctx.machine_id, ctx.variant)
        raw = post(ctx, protocol.RULEDOWNLOAD, body)
        size += len(raw)
        if size > max_bytes:
            raise SyncError(
                f"the rule download passed {max_bytes} bytes (RuleDownloadMaxBytes) at page {number}; nothing applied",
                stage=protocol.RULEDOWNLOAD,
            )
        page = responses.parse_ruledownload_response(raw, ctx.variant, binary=ctx.proto_transfer)
        if result.rules_received + page.received > max_rules:
            raise SyncError(
                f"the server sent more than {max_rules} rules (RuleDownloadMaxRules) by page {number}; nothing applied",
                stage=protocol.RULEDOWNLOAD,
            )
        result.rules_received += page.received
        result.rules_processed += page.processed
        keep(page.rules)
        result.rules_not_applied.extend(NotApplied(number, s.index + 1, s.identifier, s.reason) for s in page.skipped)
        if not page.cursor:
            return
        if page.cursor in seen:  # a server repeating a cursor would page for ever
            raise SyncError(f"the server repeated cursor {page.cursor!r}", stage=protocol.RULEDOWNLOAD)
        seen.add(page.cursor)
        cursor = page.cursor


def _apply_preflight(state: SyncState, p: PreflightResponse, performed: SyncType, now: float) -> SyncState:
    """§3.4's order of application, into the persisted state."""
    changes: dict[str, Any] = {"full_sync_last_success": now}
    if p.client_mode is not None:
        changes["client_mode"] = p.client_mode
    if performed is not SyncType.NORMAL:
        changes["sync_type_required"] = SyncType.NORMAL
    for name in ("allowed_path_regex", "blocked_path_regex", *SERVER_SWITCHES):
        value = getattr(p, name)
        if value is not None:
            changes[name] = value
    if p.full_sync_interval is not None:
        changes["full_sync_interval"] = p.full_sync_interval
    return dataclasses.replace(state, **changes)


def request_sync_type(state_path: str, sync_type: SyncType) -> None:
    """`santactl sync --clean/--clean-all`: persist the requested type before syncing (§1.4)."""
    state = load_state(state_path)
    if sync_type > state.sync_type_required:
        save_state(state_path, dataclasses.replace(state, sync_type_required=sync_type))
