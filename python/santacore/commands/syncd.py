"""`santacore syncd`: the sync service in the foreground (santasyncservice's timer, spec §1.2–1.5).

Runs `SyncDaemon` until SIGTERM or SIGINT: the first full sync `--first-sync-delay` seconds after start (15),
then one every full-sync interval (the server's, else FullSyncInterval, at least 60 s). One timestamped line per
stage, failed attempt and outcome goes to stdout (with `-v` also one per HTTP exchange, `-vv` the JSON
bodies). A signal ends the request in flight within a second, aborts the rest of that sync cleanly and exits 0.
`--once`: one full sync after the delay, then exit with its status (§1.4's codes). Push notifications (addendum
§1) come with `SyncDaemon`: started after a preflight that configures them, stopped on SIGTERM before exit.

Arguments (on `args`): `config` (path or None), `once` (bool), `first_sync_delay` (float seconds, >= 0),
`verbose` (count).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any

from santacore.commands import EXIT_ERROR, EXIT_OK
from santacore.commands.sync import exchange_printer, sync_settings
from santacore.errors import SantacoreError
from santacore.sync.scheduler import DEFAULT_FIRST_SYNC_DELAY, SyncDaemon
from santacore.sync.stages import SyncStatus

_POLL = 0.2  # how often the main thread looks at the signal flag


def _say(line: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')} {line}", flush=True)


def run(args: argparse.Namespace) -> int:
    settings = sync_settings(args, "syncd")
    if isinstance(settings, int):
        return settings
    config, ident = settings
    delay = getattr(args, "first_sync_delay", None)
    delay = DEFAULT_FIRST_SYNC_DELAY if delay is None else float(delay)
    if delay < 0:
        print(f"santacore syncd: --first-sync-delay must not be negative, got {delay:g}", file=sys.stderr)
        return EXIT_ERROR
    once = bool(getattr(args, "once", False))

    received: list[int] = []  # the handler only records; the main thread acts on it

    def on_signal(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    trace = exchange_printer(int(getattr(args, "verbose", 0) or 0), _say)
    daemon = SyncDaemon(config, machine_id=ident, first_sync_delay=delay, log=_say, trace=trace)
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for wanted in (signal.SIGTERM, signal.SIGINT):
            previous[wanted] = signal.signal(wanted, on_signal)
    try:
        try:
            daemon.start(max_syncs=1 if once else None)
        except (SantacoreError, OSError) as e:
            print(f"santacore syncd: {e}", file=sys.stderr)
            return int(SyncStatus.UNKNOWN)
        asked_to_stop = False
        while not daemon.join(_POLL):
            if received and not asked_to_stop:
                _say(f"Received {signal.Signals(received[0]).name}, stopping")
                daemon.stop(wait=False)
                asked_to_stop = True
    finally:
        daemon.stop()
        daemon.close()
        for restored, handler in previous.items():
            signal.signal(restored, handler)
    if received or not once:
        return EXIT_OK
    result = daemon.last_result
    return int(result.status) if result is not None else int(SyncStatus.UNKNOWN)
