"""`santacore sync [--clean|--clean-all]` (santactl sync): one full sync now, against the
configured SyncBaseURL, with a line per stage and Santa's exit codes (§1.4)."""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from santacore.commands import EXIT_ERROR
from santacore.config.settings import Config, ConfigError, load_config
from santacore.errors import SantacoreError
from santacore.santad.event_store import EventStore
from santacore.santad.events import Variant
from santacore.santad.rule_store import RuleStore
from santacore.sync.host import HostFacts
from santacore.sync.protocol import SyncType
from santacore.sync.settings import TransportSettings
from santacore.sync.stages import SyncContext, SyncStatus, full_sync, request_sync_type
from santacore.sync.transport import Transport


def machine_id(config: Config) -> str | None:
    """Configured MachineID (or its plist), else /etc/machine-id (spec §2.1 santacore guidance)."""
    configured = config.configured_machine_id()
    if configured:
        return configured
    try:
        with open("/etc/machine-id", encoding="ascii") as f:
            return f.read().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


@contextmanager
def sync_lock(config: Config) -> Iterator[None]:
    """One sync at a time per state directory: a second `santacore sync` (or the daemon's)
    waits for the running one to finish, as santactl's request queues behind it."""
    os.makedirs(config.state_directory, mode=0o700, exist_ok=True)
    fd = os.open(os.path.join(config.state_directory, "sync.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def sync_settings(args: argparse.Namespace, command: str) -> tuple[Config, str] | int:
    """The configuration and machine ID a sync needs, or the exit code santactl gives without them."""
    try:
        config = load_config(args.config)
    except ConfigError as e:
        print(f"santacore {command}: {e}", file=sys.stderr)
        return EXIT_ERROR
    if not config.sync_base_url:
        print("Missing SyncBaseURL. Exiting.", file=sys.stderr)
        return EXIT_ERROR
    ident = machine_id(config)
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
        with sync_lock(config):
            if requested is not None:
                request_sync_type(os.fspath(config.sync_state_path), requested)
            with (
                Transport(TransportSettings.from_config(config), ident) as transport,
                EventStore(config.events_db) as events,
                RuleStore(config.rules_db) as rules,
            ):
                ctx = SyncContext(
                    config=config,
                    machine_id=ident,
                    transport=transport,
                    events=events,
                    rules=rules,
                    facts=HostFacts.current(),
                    variant=Variant(config.sync_protocol.value),
                    log=print,
                )
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
