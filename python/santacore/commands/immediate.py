"""santad's immediate upload from the command line (spec §4.5, §5.4), shared by `check --record --upload`.

`upload_recorded(config, store, event)` does what santad does after a denial: store the event (durable first),
then either upload it alone, or — a denial inside a bundle while bundles are enabled (the server's EnableBundles,
else the configuration's) — mark it as needing the bundle hash, hash the bundle (a progress bar on a terminal),
and run the §4.5 round trip: the event with its bundle fields, then the BUNDLE_BINARY events the server asks for
(SendEvents), or none (DropEvents), or all kept for the next sync when the upload fails (StoreEvents). Each step's
outcome is returned (and said on stderr as it happens) for `--json`."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

from santacore.commands.progress import with_progress
from santacore.commands.sync import exchange_printer, say_err
from santacore.config.settings import Config
from santacore.errors import NotABundleError
from santacore.identity.bundle import hash_bundle
from santacore.santad.event_store import EventStore
from santacore.santad.events import StoredEvent
from santacore.santad.upload_backoff import UploadBackoff
from santacore.sync.context import open_sync_context
from santacore.sync.host import resolve_machine_id
from santacore.sync.uploads import UploadOutcome, record_event, upload_bundle_event

__all__ = ["upload_recorded"]


def upload_recorded(config: Config, store: EventStore, event: StoredEvent, *, verbosity: int = 0) -> dict[str, Any]:
    """Store `event` and upload it as santad would; the document of what happened (`outcomes`, in order,
    `bundle_hash`, `bundle_binaries`, `events_queued`). Each failed attempt and outcome is printed on stderr."""
    report: dict[str, Any] = {"outcomes": [], "bundle_hash": None, "bundle_binaries": None, "events_queued": None}

    def outcome(value: str, detail: str = "") -> None:
        report["outcomes"].append(value)
        print(f"Immediate upload: {value}{detail}", file=sys.stderr)

    ident = resolve_machine_id(config)
    if not ident:
        store.add([_row(event)])
        outcome(UploadOutcome.STORED, " (no MachineID; kept for the next sync)")
        report["events_queued"] = store.count()
        return report
    with open_sync_context(
        config, machine_id=ident, events=store, log=say_err, trace=exchange_printer(verbosity)
    ) as ctx:
        backoff = UploadBackoff()
        first = record_event(ctx, event, backoff, bundles_enabled=config.enable_bundles)
        outcome(first)
        if first == UploadOutcome.NEEDS_BUNDLE_HASH:
            stored = dataclasses.replace(event, needs_bundle_hash=True)
            try:
                bh = with_progress(lambda progress: hash_bundle(event.file_path, progress=progress))
            except (NotABundleError, OSError) as e:
                outcome(UploadOutcome.NO_BUNDLE_HASH, f" ({e}); the event goes up with the next sync")
            else:
                report["bundle_hash"], report["bundle_binaries"] = bh.bundle_hash, bh.binary_count
                print(
                    f"Bundle {bh.bundle_root}: hash {bh.bundle_hash}, {bh.binary_count} binaries, "
                    f"{int(bh.hash_millis)} ms",
                    file=sys.stderr,
                )
                stored = _as_stored(store, stored)
                outcome(upload_bundle_event(ctx, stored, bh, backoff))
    report["events_queued"] = store.count()
    print(f"Events queued in {config.events_db}: {report['events_queued']}", file=sys.stderr)
    return report


def _row(event: StoredEvent) -> Any:
    from santacore.santad.execution import event_row

    return event_row(event)


def _as_stored(store: EventStore, event: StoredEvent) -> StoredEvent:
    """The event as `record_event` stored it (its idx may have been changed on a collision)."""
    found = store.get(event.idx)
    return StoredEvent.from_record(found.data) if found is not None else event
