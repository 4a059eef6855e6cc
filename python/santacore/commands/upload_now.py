"""`santacore eventupload`'s upload at once: store the events (durable first), then send them in batches, each
batch deleted from events.db after its 200; the first failure keeps it and the rest for the next sync."""

from __future__ import annotations

from santacore.commands.sync import say_err
from santacore.config.settings import Config
from santacore.errors import SyncError
from santacore.santad.event_store import EventStore
from santacore.santad.events import StoredEvent
from santacore.sync import protocol, responses
from santacore.sync.context import SyncContext, open_sync_context
from santacore.sync.stages import post
from santacore.sync.uploads import store_new_events

__all__ = ["upload_stored"]


def upload_stored(
    config: Config, store: EventStore, events: list[StoredEvent], *, batch_size: int = protocol.DEFAULT_BATCH_SIZE
) -> tuple[int, int]:
    """Store `events`, then upload them; (uploaded, kept queued). Failed attempts are said on stderr."""
    stored = store_new_events(store, events)
    try:
        with open_sync_context(config, events=store, log=say_err) as ctx:
            uploaded = _send(ctx, store, [e for e in stored if e.uploaded_in(ctx.variant)], batch_size)
    except SyncError as e:  # raised when the context cannot open: no MachineID, unusable TLS material
        say_err(f"Event upload not attempted: {e}")
        uploaded = 0
    return uploaded, len(stored) - uploaded


def _send(ctx: SyncContext, store: EventStore, events: list[StoredEvent], batch_size: int) -> int:
    uploaded = 0
    for start in range(0, len(events), max(1, batch_size)):
        chunk = events[start : start + batch_size]
        try:
            body = protocol.eventupload_request(chunk, ctx.machine_id, ctx.variant)
            responses.parse_eventupload_response(post(ctx, protocol.EVENTUPLOAD, body), ctx.variant)
        except SyncError as e:
            say_err(f"Event upload failed: {e}")
            break
        store.delete(e.idx for e in chunk)
        uploaded += len(chunk)
    return uploaded
