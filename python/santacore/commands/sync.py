"""`santacore sync [--clean|--clean-all]` (santactl sync): one full sync now, against the
configured SyncBaseURL, with a line per stage and Santa's exit codes (§1.4)."""

from __future__ import annotations

import argparse
import os
import sys

from santacore.commands import EXIT_ERROR
from santacore.config.settings import Config, ConfigError, load_config
from santacore.errors import SantacoreError
from santacore.sync.context import open_sync_context
from santacore.sync.host import resolve_machine_id
from santacore.sync.lock import sync_lock
from santacore.sync.protocol import SyncType
from santacore.sync.stages import SyncStatus, full_sync, request_sync_type


def sync_settings(args: argparse.Namespace, command: str) -> tuple[Config, str] | int:
    """The configuration and machine ID a sync needs, or the exit code santactl gives without them:
    1 for an unreadable configuration, 6 without SyncBaseURL, 7 without a machine ID."""
    try:
        config = load_config(args.config)
    except ConfigError as e:
        print(f"santacore {command}: {e}", file=sys.stderr)
        return EXIT_ERROR
    if not config.sync_base_url:
        print("Missing SyncBaseURL. Exiting.", file=sys.stderr)
        return int(SyncStatus.MISSING_SYNC_BASE_URL)
    ident = resolve_machine_id(config)
    if not ident:
        print("Missing MachineID. Exiting.", file=sys.stderr)
        return int(SyncStatus.MISSING_MACHINE_ID)
    return config, ident


def run(args: argparse.Namespace) -> int:
    settings = sync_settings(args, "sync")
    if isinstance(settings, int):
        return settings
    config, ident = settings
    requested = SyncType.CLEAN_ALL if args.clean_all else SyncType.CLEAN if args.clean else None
    try:
        with sync_lock(config.state_directory):
            if requested is not None:
                request_sync_type(os.fspath(config.sync_state_path), requested)
            with open_sync_context(config, machine_id=ident, log=print) as ctx:
                result = full_sync(ctx, state_path=os.fspath(config.sync_state_path))
    except (SantacoreError, OSError) as e:
        print(f"santacore sync: {e}", file=sys.stderr)
        return int(SyncStatus.UNKNOWN)
    if result.error:
        print(result.error, file=sys.stderr)
    print(
        f"Summary: {result.status.name.lower()}; events uploaded {result.events_uploaded}, left {result.events_left}; "
        f"rules received {result.rules_received}, applied {result.rules_applied}"
    )
    return int(result.status)
