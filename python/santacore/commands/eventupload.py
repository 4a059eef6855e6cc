"""`santacore eventupload` (northpolesec's santactl eventupload): non-execution events for files and their
bundles, uploaded at once.

As santactl: each file's own BUNDLE_BINARY event, and — unless `--binary-only`, when bundles are enabled (the
server's EnableBundles, else the configuration's; `--bundles` forces it) — the BUNDLE_BINARY events of every
executable in its bundle, hashed (a progress bar on stderr on a terminal). The events are stored in events.db
first, then uploaded in batches (santactl's `fromBundle`: more than one event goes up in the server's batch
size, here the default 50 as no preflight is run); each batch leaves events.db after its 200. What cannot be
uploaded stays queued for the next sync, and the count is said (santactl drops it). `--queue-only` (santacore's)
only queues; `--dry-run --json` prints the exact upload body and stores nothing."""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys

from santacore.commands import EXIT_ERROR, EXIT_OK, error_text, load_config_or_say_why
from santacore.commands.progress import with_progress
from santacore.errors import NotABundleError, SantacoreError
from santacore.identity.bundle import hash_bundle
from santacore.identity.fileinfo import FileInfoError, file_info
from santacore.santad.event_builders import bundle_events, file_event
from santacore.santad.event_store import EventStore
from santacore.santad.events import StoredEvent, upload_body
from santacore.santad.execution import store_events
from santacore.sync.in_force import load_config_in_force


def expand(patterns: list[str]) -> tuple[list[str], list[str]]:
    """Paths as given, with glob patterns (quoted past the shell) expanded; unmatched patterns returned apart."""
    paths: list[str] = []
    unmatched: list[str] = []
    for pattern in patterns:
        if os.path.lexists(pattern) or not glob.has_magic(pattern):
            paths.append(pattern)
            continue
        matches = sorted(glob.glob(pattern, recursive=True))
        if matches:
            paths.extend(matches)
        else:
            unmatched.append(pattern)
    return paths, unmatched


def _events_for(path: str, *, bundles: bool, quiet: bool) -> list[StoredEvent]:
    fi = file_info(path)
    events = [file_event(fi)]
    if bundles and fi.bundle is not None:
        try:
            bh = with_progress(lambda progress: hash_bundle(path, progress=progress))
        except NotABundleError:
            return events  # nearest bundle without an accepted ancestor: nothing to hash (§6.2)
        generated = bundle_events(bh)
        if not quiet:
            print(f"Hashing {bh.bundle_root}")
            print(f"\tHashing time: {int(bh.hash_millis)} ms")
            print(f"\tEvents found: {len(generated)}")
            print(f"\tBundleHash: {bh.bundle_hash}")
        events = generated + events
    return events


def run(args: argparse.Namespace) -> int:
    config = load_config_or_say_why(args.config, "eventupload")
    if config is None:
        return EXIT_ERROR
    try:  # bundles enabled: the server's EnableBundles (last sync), else the configuration's
        in_force = load_config_in_force(args.config).config
    except (SantacoreError, OSError):
        in_force = config
    binary_only = bool(getattr(args, "binary_only", False))
    hash_bundles = not binary_only and (args.bundles or in_force.enable_bundles)
    if not args.dry_run and not config.sync_base_url:
        print("Missing SyncBaseURL. Exiting.", file=sys.stderr)  # santactl's words: events need a server
        return EXIT_ERROR
    paths, unmatched = expand(args.paths)
    failed = bool(unmatched)
    for pattern in unmatched:
        print(f"Skipping {pattern}: no file matches", file=sys.stderr)
    events: list[StoredEvent] = []
    for path in paths:
        try:
            events.extend(_events_for(path, bundles=hash_bundles, quiet=args.json))
        except (FileInfoError, SantacoreError, OSError) as e:
            print(f"Skipping {path}: {error_text(e)}", file=sys.stderr)
            failed = True
    if args.dry_run:
        body = upload_body(events, config.configured_machine_id() or "")
        if args.json:
            json.dump(body, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            print(f"Would queue {len(events)} events (no store written: --dry-run)")
        return EXIT_ERROR if failed else EXIT_OK
    try:
        with EventStore(config.events_db) as store:
            if getattr(args, "queue_only", False) or not events:
                store_events(store, events)
                print(f"Queued {len(events)} events in {config.events_db} ({store.count()} pending upload)")
                return EXIT_ERROR if failed else EXIT_OK
            from santacore.commands.upload_now import upload_stored

            print(f"Uploading {len(events)} events...")
            uploaded, kept = upload_stored(config, store, events)
            pending = store.count()
    except (SantacoreError, OSError) as e:
        print(f"santacore eventupload: {error_text(e, config)}", file=sys.stderr)
        return EXIT_ERROR
    if kept:
        print(
            f"{kept} of {len(events)} events not uploaded: kept in {config.events_db} for the next sync",
            file=sys.stderr,
        )
    print(f"Done: {uploaded} events uploaded, {pending} pending upload in {config.events_db}")
    return EXIT_ERROR if failed or kept else EXIT_OK
