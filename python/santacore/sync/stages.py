"""A full sync, as santasyncservice runs it (spec §1.1): preflight, eventupload,
ruledownload, postflight, in that order, with Santa's outcomes (§1.5):

- preflight fails → PREFLIGHT_FAILED, nothing else happens;
- an event batch fails → the rest stay stored; the stage still "succeeds";
- any rule page fails → RULE_DOWNLOAD_FAILED; no rule from any page is applied;
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
from enum import IntEnum, StrEnum
from typing import Any

from santacore.config.settings import Config
from santacore.errors import SyncError
from santacore.identity.bundle import BundleHash
from santacore.identity.fileinfo import Host
from santacore.santad.event_store import EventRow, EventStore, IdxCollisionError
from santacore.santad.events import (
    DEFAULT_VARIANT,
    EventDecodeError,
    StoredEvent,
    Variant,
    bundle_events,
    new_idx,
    with_bundle_fields,
)
from santacore.santad.execution import event_row
from santacore.santad.rule_store import Cleanup, RuleStore
from santacore.santad.rules import Rule
from santacore.santad.upload_backoff import UploadBackoff
from santacore.sync import protocol, responses
from santacore.sync.host import HostFacts
from santacore.sync.protocol import SyncType
from santacore.sync.responses import PreflightResponse
from santacore.sync.state import SyncState, effective_config, load_state, save_state
from santacore.sync.transport import Transport
from santacore.sync.wire import encode_json


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
    log: list[str] = field(default_factory=list)


@dataclass
class SyncContext:
    """Everything a sync needs; the caller owns (opens and closes) the stores and the transport."""

    config: Config
    machine_id: str
    transport: Transport
    events: EventStore
    rules: RuleStore
    facts: HostFacts
    variant: Variant = DEFAULT_VARIANT
    log: Callable[[str], None] = lambda line: None
    clock: Callable[[], float] = time.time


def _post(ctx: SyncContext, stage: str, body: dict[str, object]) -> bytes:
    return ctx.transport.post(stage, encode_json(body, ctx.variant))


def _say(ctx: SyncContext, result: SyncResult, line: str) -> None:
    result.log.append(line)
    ctx.log(line)


def full_sync(ctx: SyncContext, *, state_path: str) -> SyncResult:
    """Run one full sync. Never raises for server or network trouble: the result says what
    happened. Store failures (a corrupt database) do raise, as nothing can be done safely."""
    result = SyncResult()
    if not ctx.config.sync_base_url:
        result.status, result.error = SyncStatus.MISSING_SYNC_BASE_URL, "Missing SyncBaseURL"
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
        )
        preflight = responses.parse_preflight_response(_post(ctx, protocol.PREFLIGHT, body), ctx.variant)
    except SyncError as e:
        result.status, result.error = SyncStatus.PREFLIGHT_FAILED, f"preflight: {e}"
        _say(ctx, result, f"Preflight failed: {e}")
        return result
    performed = responses.performed_sync_type(state.sync_type_required, preflight)
    result.performed = performed
    _say(ctx, result, f"Preflight complete ({performed.name.lower()} sync)")

    # 2. eventupload (never fails the sync, §1.1 step 3)
    _upload_events(ctx, result, preflight.batch_size or protocol.DEFAULT_BATCH_SIZE, performed, config)

    # 3. ruledownload (required; all pages, then one transaction)
    try:
        rules = _download_rules(ctx, result)
    except SyncError as e:
        result.status, result.error = SyncStatus.RULE_DOWNLOAD_FAILED, f"ruledownload: {e}"
        _say(ctx, result, f"Rule download failed: {e}")
        return result
    if rules:
        cleanup = {SyncType.NORMAL: Cleanup.NONE, SyncType.CLEAN: Cleanup.NON_TRANSITIVE}.get(performed, Cleanup.ALL)
        result.rules_applied = ctx.rules.add_rules(rules, cleanup=cleanup)
    _say(ctx, result, f"Rule download complete: {result.rules_processed} of {result.rules_received} rules applied")

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
        )
        responses.parse_postflight_response(_post(ctx, protocol.POSTFLIGHT, body), ctx.variant)
    except SyncError as e:
        _say(ctx, result, f"Postflight failed (ignored, as Santa ignores it): {e}")
    save_state(state_path, _apply_preflight(state, preflight, performed, ctx.clock()))
    result.events_left = ctx.events.count()
    _say(ctx, result, "Sync complete")
    return result


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
            responses.parse_eventupload_response(_post(ctx, protocol.EVENTUPLOAD, body), ctx.variant)
        except SyncError as e:
            _say(ctx, result, f"Event upload failed, {ctx.events.count()} events kept for the next sync: {e}")
            return
        ctx.events.delete(r.idx for r in sendable)
        result.events_uploaded += len(sendable)
    _say(ctx, result, f"Event upload complete: {result.events_uploaded} events uploaded")


def _download_rules(ctx: SyncContext, result: SyncResult) -> list[Rule]:
    rules: list[Rule] = []
    cursor: str | None = None
    seen: set[str] = set()
    while True:
        body = protocol.ruledownload_request(cursor, ctx.machine_id, ctx.variant)
        page = responses.parse_ruledownload_response(_post(ctx, protocol.RULEDOWNLOAD, body), ctx.variant)
        result.rules_received += page.received
        result.rules_processed += page.processed
        rules.extend(page.rules)
        if not page.cursor:
            return rules
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
    for name in (
        "allowed_path_regex",
        "blocked_path_regex",
        "enable_bundles",
        "enable_transitive_rules",
        "enable_all_event_upload",
        "disable_unknown_event_upload",
    ):
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


# ---------------------------------------------------------------------------------------------
# Immediate (out-of-sync) uploads: santad's SNTSyncdQueue (§5.3–5.4) and the bundle round trip (§4.5)


class UploadOutcome(StrEnum):
    """What an immediate upload did: the value `upload_event_now` and `upload_bundle_event` return."""

    UPLOADED = "uploaded"
    """Sent and answered 200; its row deleted (§4.7)."""
    SUPPRESSED = "suppressed"
    """The dedup cache (§5.3) skipped it; the event stays stored for the next full sync."""
    FAILED = "failed"
    """The upload failed (no 200, or an answer Santa cannot parse); the event stays stored (§1.5, §4.7)."""
    NOT_SENDABLE = "not-sendable"
    """The variant uploads no such event ([N]: no v1 decision); left for the full sync, which deletes it (§4.7)."""
    NO_BUNDLE_HASH = "no-bundle-hash"
    """§4.5 step 2: hashing gave no bundle hash; nothing more happens, the stored event goes up unchanged."""
    SEND_EVENTS = "send-events"
    """§4.5 step 4: the server asked for the bundle; its BUNDLE_BINARY events were stored and sent."""
    DROP_EVENTS = "drop-events"
    """§4.5 step 4: the server did not ask; the BUNDLE_BINARY events were discarded unstored."""
    STORE_EVENTS = "store-events"
    """§4.5 step 4: the upload failed; the BUNDLE_BINARY events were stored for the next full sync."""
    STORED = "stored"
    """Stored only (not a denial, §5.4 step 3): it goes up with the next full sync."""
    NEEDS_BUNDLE_HASH = "needs-bundle-hash"
    """A denial inside a bundle with bundles enabled: stored, marked, not sent (§4.5 step 1)."""


def dedup_key(event: StoredEvent) -> str:
    """The dedup-cache key of an immediate upload (§5.3): the bundle hash for bundle events, else the file
    SHA-256 (for a batch, its first event's key)."""
    return event.file_bundle_hash or event.file_sha256


def store_new_events(store: EventStore, events: Iterable[StoredEvent]) -> list[StoredEvent]:
    """Store freshly made events in one transaction and return them as stored. Their random `idx` (§5.1) may
    collide with a stored event's: Santa then silently drops the rest of the call; here the colliding events get
    fresh idxs and the whole call is retried, so nothing is lost."""
    pending = list(events)
    for _ in range(7):
        try:
            store.add(event_row(e) for e in pending)
            return pending
        except IdxCollisionError as e:
            taken = set(e.idxs)
            pending = [dataclasses.replace(ev, idx=new_idx()) if ev.idx in taken else ev for ev in pending]
    store.add(event_row(e) for e in pending)  # 2^-32 odds seven times over: let the collision error speak
    return pending


def _send_batch(ctx: SyncContext, events: list[StoredEvent]) -> responses.EventUploadResponse:
    """One eventupload request outside a full sync; SyncError when it fails or its answer cannot be parsed."""
    body = protocol.eventupload_request(events, ctx.machine_id, ctx.variant)
    return responses.parse_eventupload_response(_post(ctx, protocol.EVENTUPLOAD, body), ctx.variant)


def upload_event_now(ctx: SyncContext, event: StoredEvent, backoff: UploadBackoff) -> str:
    """santad's immediate upload of one denied execution event (§5.4 step 3), outside any full sync.

    The event is stored first if its `idx` is not in the store yet (it must survive a failed upload, §5.4 step 2).
    Then the dedup cache (§5.3) is asked with `dedup_key(event)` (the file SHA-256; the bundle hash for a bundle
    event): suppressed → not sent, the event stays stored (§4.7 "suppressed by dedup: stays; sent at next full
    sync"); otherwise one eventupload request with this one event (§4.6): 200 → its row is deleted (§4.7); failure
    → the row stays (§1.5) and, for a plain event, the key is forgotten so the next attempt is not suppressed
    ([N] column of §5.3; a bundle event's key is kept). The response's `event_upload_bundle_binaries` is not
    acted on here: that is `upload_bundle_event`'s round trip. Returns an `UploadOutcome`; never raises for server
    or network trouble (store failures do raise)."""
    if ctx.events.get(event.idx) is None:
        ctx.events.add([event_row(event)])
    if not event.uploaded_in(ctx.variant):
        ctx.log(f"Event for {event.file_name} has no v1 decision in {ctx.variant}: left for the next full sync")
        return UploadOutcome.NOT_SENDABLE
    key = dedup_key(event)
    if not backoff.should_upload(key):
        ctx.log(
            f"Event for {event.file_name} not uploaded now: an upload for {key} started less than "
            f"{backoff.window:g} s ago; kept for the next full sync"
        )
        return UploadOutcome.SUPPRESSED
    try:
        _send_batch(ctx, [event])
    except SyncError as e:
        if not event.file_bundle_hash:
            backoff.forget(key)  # §5.3 [N]: a failed plain upload removes its entry
        ctx.log(f"Event upload for {event.file_name} failed, kept for the next full sync: {e}")
        return UploadOutcome.FAILED
    ctx.events.delete([event.idx])
    ctx.log(f"Event for {event.file_name} uploaded")
    return UploadOutcome.UPLOADED


def upload_bundle_event(
    ctx: SyncContext,
    event: StoredEvent,
    bundle_hash: BundleHash,
    backoff: UploadBackoff,
    *,
    batch_size: int = protocol.DEFAULT_BATCH_SIZE,
    host: Host = "apple-silicon",
) -> str:
    """§4.5 steps 3–4: the blocking `event` (as stored, flagged "needs bundle hash") after its bundle was hashed.

    * No bundle hash → `NO_BUNDLE_HASH`: nothing more happens; the stored event goes up with the next full sync
      without bundle fields (step 2).
    * The event with the bundle fields (`with_bundle_fields`) replaces the stored row under the same `idx`
      (`EventStore.replace`: Santa's delete + re-insert, atomically) — step 3.
    * Dedup on the bundle hash (§5.3). Suppressed → `SUPPRESSED`: the BUNDLE_BINARY events are discarded and the
      updated blocking event stays stored for the next full sync (step 3).
    * Otherwise only that one event is uploaded; then step 4's table decides the BUNDLE_BINARY events' fate:

      - upload succeeded, bundle hash in `event_upload_bundle_binaries` → `SEND_EVENTS`: stored, then uploaded in
        chunks of `batch_size` (the server's preflight value), each chunk's rows deleted after its 200;
      - upload succeeded, hash not asked for → `DROP_EVENTS`: discarded, never stored or uploaded;
      - upload failed → `STORE_EVENTS`: stored; they go up with the next full sync whether or not the server
        wants them.

      A successful upload deletes the blocking event's row (§4.7). Dedup bookkeeping per §5.3: SendEvents first
      forgets the bundle-hash key so its batch (same key) passes; a failed SendEvents chunk forgets it again ([N])
      and leaves that chunk and the rest stored; StoreEvents keeps the key. The membership test is exact,
      case-sensitive string equality (§3.2).

    `host` picks the slice whose signature each BUNDLE_BINARY event reports (`bundle_events`). Returns an
    `UploadOutcome`; never raises for server or network trouble."""
    digest = bundle_hash.bundle_hash
    if digest is None:
        ctx.log(f"No bundle hash for {event.file_name}: its event goes up with the next full sync as it is")
        return UploadOutcome.NO_BUNDLE_HASH
    updated = with_bundle_fields(event, bundle_hash)
    ctx.events.replace([event_row(updated)])
    generated = bundle_events(bundle_hash, host=host)
    if not backoff.should_upload(digest):
        ctx.log(
            f"Bundle {digest}: an upload started less than {backoff.window:g} s ago; {len(generated)} bundle "
            "binary events discarded, the blocking event kept for the next full sync"
        )
        return UploadOutcome.SUPPRESSED
    try:
        response = _send_batch(ctx, [updated])
    except SyncError as e:
        store_new_events(ctx.events, generated)  # StoreEvents; the dedup entry is kept (§5.3)
        ctx.log(
            f"Bundle {digest}: event upload failed, the event and {len(generated)} bundle binary events kept "
            f"for the next full sync: {e}"
        )
        return UploadOutcome.STORE_EVENTS
    ctx.events.delete([updated.idx])
    if digest not in response.event_upload_bundle_binaries:
        ctx.log(f"Bundle {digest}: event uploaded; the server did not ask for its {len(generated)} binaries")
        return UploadOutcome.DROP_EVENTS
    backoff.forget(digest)  # §5.3: so the BUNDLE_BINARY batch, keyed on the same hash, passes
    stored = store_new_events(ctx.events, generated)
    if not backoff.should_upload(digest):  # only if another upload for this bundle started in between
        ctx.log(f"Bundle {digest}: {len(stored)} bundle binary events kept for the next full sync (dedup)")
        return UploadOutcome.SEND_EVENTS
    size = max(1, batch_size)
    sent = 0
    for start in range(0, len(stored), size):
        chunk = stored[start : start + size]
        try:
            _send_batch(ctx, chunk)
        except SyncError as e:
            backoff.forget(digest)  # §5.3 [N]: a failed SendEvents upload removes the entry
            ctx.log(
                f"Bundle {digest}: {sent} of {len(stored)} bundle binary events uploaded, the rest kept for the "
                f"next full sync: {e}"
            )
            return UploadOutcome.SEND_EVENTS
        ctx.events.delete(e.idx for e in chunk)
        sent += len(chunk)
    ctx.log(f"Bundle {digest}: event and {sent} bundle binary events uploaded")
    return UploadOutcome.SEND_EVENTS
