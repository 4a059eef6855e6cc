"""santad's immediate uploads outside a full sync (spec §4.5, §5.2–5.4): dedup, one event, bundle round trip.

Store the event, ask the dedup cache, upload a denial alone, and the bundle round trip (SendEvents / DropEvents /
StoreEvents)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from enum import StrEnum
from typing import TYPE_CHECKING

from santacore.errors import SyncError
from santacore.identity.bundle import BundleHash
from santacore.santad.event_store import EventStore, IdxCollisionError
from santacore.santad.events import StoredEvent, new_idx, with_bundle_fields
from santacore.santad.execution import event_row
from santacore.santad.upload_backoff import UploadBackoff
from santacore.sync import protocol, responses
from santacore.sync.context import SyncContext
from santacore.sync.stages import post

if TYPE_CHECKING:
    from santacore.identity.fileinfo import Host

__all__ = [
    "UploadOutcome",
    "dedup_key",
    "needs_bundle_hash",
    "record_event",
    "store_new_events",
    "upload_bundle_event",
    "upload_event_now",
]


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
    return responses.parse_eventupload_response(
        post(ctx, protocol.EVENTUPLOAD, body), ctx.variant, binary=ctx.proto_transfer
    )


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
    # Building BUNDLE_BINARY events reads each binary's signature (LIEF): loaded only when a bundle was hashed.
    from santacore.santad.event_builders import bundle_events

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


def needs_bundle_hash(event: StoredEvent, *, bundles_enabled: bool) -> bool:
    """§4.5 step 1: a denial of a binary inside a bundle (`file_bundle_path`) while bundles are enabled."""
    return bundles_enabled and event.decision.is_block and bool(event.file_bundle_path)


def record_event(ctx: SyncContext, event: StoredEvent, backoff: UploadBackoff, *, bundles_enabled: bool) -> str:
    """santad after a decision (§5.4 steps 2–3): store the event (durable when this returns), then

    * not a denial → `STORED`: it goes up with the next full sync;
    * a denial that `needs_bundle_hash` → stored flagged, `NEEDS_BUNDLE_HASH`: no upload until its bundle is hashed
      and `upload_bundle_event` runs (§4.5 step 1);
    * any other denial → `upload_event_now`: dedup on the file SHA-256, one-event upload, row deleted on 200.

    Returns an `UploadOutcome`; never raises for server or network trouble (store failures do raise)."""
    flagged = needs_bundle_hash(event, bundles_enabled=bundles_enabled)
    if event.needs_bundle_hash != flagged:
        event = dataclasses.replace(event, needs_bundle_hash=flagged)
    (stored,) = store_new_events(ctx.events, [event])
    if not stored.decision.is_block:
        return UploadOutcome.STORED
    if stored.needs_bundle_hash:
        ctx.log(f"Event for {stored.file_name} stored; waiting for its bundle hash")
        return UploadOutcome.NEEDS_BUNDLE_HASH
    return upload_event_now(ctx, stored, backoff)
