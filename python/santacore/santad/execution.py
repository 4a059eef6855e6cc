"""Storing events as santad does (spec §5.4): each event turned into its events.db row, a batch in one transaction.

The event model knows nothing of the store and the store nothing of events; this is where the two meet."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from santacore.santad.event_store import EventRow, EventStore
from santacore.santad.events import StoredEvent


def event_row(event: StoredEvent) -> EventRow:
    """The events.db row of an event: its idx, unique ID (file SHA-256), record and bundle hash."""
    return EventRow(idx=event.idx, unique_id=event.unique_id, data=event.to_record(), bundle_hash=event.bundle_hash)


def store_events(store: EventStore, events: Iterable[StoredEvent]) -> Sequence[StoredEvent]:
    """Store `events` in one transaction; once this returns they survive a crash."""
    stored = list(events)
    store.add(event_row(e) for e in stored)
    return stored
