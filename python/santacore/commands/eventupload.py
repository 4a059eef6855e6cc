"""`santacore eventupload` (northpolesec's santactl eventupload): non-execution events for
files and bundles, queued in events.db for the next sync — or, with --dry-run, printed as
the exact upload body."""

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
            events.extend(_events_for(path, bundles=args.bundles, quiet=args.json))
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
            store_events(store, events)
            pending = store.count()
    except (SantacoreError, OSError) as e:
        print(f"santacore eventupload: {error_text(e, config)}", file=sys.stderr)
        return EXIT_ERROR
    print(f"Queued {len(events)} events in {config.events_db} ({pending} pending upload)")
    return EXIT_ERROR if failed else EXIT_OK
