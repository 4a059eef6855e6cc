"""`santacore sync [--clean|--clean-all] [-v|-vv]` (santactl sync): one full sync now, against the
configured SyncBaseURL, with a line per stage and Santa's exit codes (§1.4).

stdout: a line per stage and the summary. stderr: each failed attempt as it happens (stage, cause, attempt n of
5, the wait before the next), each rule the client could not apply and why, the final failure once; `--json`
puts the stage lines on stderr too and prints the outcome as one JSON document (`result_document`); with `-v`
one line per HTTP exchange, with `-vv` also the decoded JSON bodies (`exchange_printer`, shared with `syncd`
and `check --upload`).

Waiting for another sync (the daemon's, another `santacore sync`) is said on stderr, naming the lock holder's
pid and since when; `args.timeout` (seconds; `--timeout`) gives up the wait with exit code 8 (DAEMON_TIMEOUT).
`args.budget` (seconds; `--budget`) is the whole sync's time budget (default `DEFAULT_SYNC_BUDGET`, 30 min).
`args.rules_only` (`--rules-only`, santacore's addition: santactl has none) runs the rule-download-only sync of a
push `rule_sync` (`santacore.sync.rule_sync`) instead of a full sync."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from santacore.commands import EXIT_ERROR
from santacore.config.settings import Config, ConfigError, load_config
from santacore.errors import SantacoreError
from santacore.sync.context import open_sync_context
from santacore.sync.host import resolve_machine_id
from santacore.sync.lock import SYNC_LOCK_NAME, lock_holder, sync_lock
from santacore.sync.protocol import SyncType
from santacore.sync.rule_sync import rule_sync
from santacore.sync.settings import TransportSettings
from santacore.sync.stages import SyncResult, SyncStatus, full_sync, request_sync_type
from santacore.sync.transport import Exchange

_XSSI_PREFIXES = (b")]}'\n", b"])}")


def say_err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _size(n: int | None) -> str:
    return "?" if n is None else f"{n} B"


def describe_exchange(x: Exchange) -> str:
    """One line for one HTTP exchange: method, URL, outcome, sizes before/after compression, time."""
    outcome = f"{x.status} {x.reason}".rstrip() if x.status is not None else f"failed: {x.error}"
    sent = _size(x.request_size)
    if x.request_encoding:
        sent += f" ({x.request_encoding} {_size(x.request_wire_size)})"
    if x.response_size is None and x.response_wire_size is None:
        got = "-"
    elif x.response_size is None:
        got = f"{_size(x.response_wire_size)} (not read)"
    else:
        got = _size(x.response_size)
        if x.response_encoding:
            got += f" ({x.response_encoding} {_size(x.response_wire_size)})"
    return f"HTTP {x.method} {x.url} -> {outcome}; sent {sent}, received {got}; {x.elapsed_ms:.0f} ms"


def _body_text(body: bytes) -> str:
    data = body
    for prefix in _XSSI_PREFIXES:
        if data.startswith(prefix):
            data = data[len(prefix) :]
            break
    try:
        return json.dumps(json.loads(data), indent=2, sort_keys=True)
    except ValueError:
        return repr(body[:2000]) + (" ..." if len(body) > 2000 else "")


def exchange_printer(verbosity: int, out: Callable[[str], None] = say_err) -> Callable[[Exchange], None] | None:
    """`-v`: one line per HTTP exchange; `-vv`: and the decoded JSON request and response bodies. None at 0."""
    if verbosity <= 0:
        return None

    def show(x: Exchange) -> None:
        out(describe_exchange(x))
        if verbosity >= 2:
            if x.request_body:
                out("  request body: " + _body_text(x.request_body).replace("\n", "\n  "))
            if x.response_body:
                out("  response body: " + _body_text(x.response_body).replace("\n", "\n  "))

    return show


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


def result_document(result: SyncResult) -> dict[str, Any]:
    """`sync --json`: the outcome, the figures and the rules not applied (page, position, identifier, reason)."""
    return {
        "status": result.status.name.lower(),
        "exit_code": int(result.status),
        "error": result.error,
        "sync_type": result.performed.name.lower() if result.performed is not None else None,
        "events_uploaded": result.events_uploaded,
        "events_left": result.events_left,
        "rules_received": result.rules_received,
        "rules_processed": result.rules_processed,
        "rules_applied": result.rules_applied,
        "rules_not_applied": [dataclasses.asdict(r) for r in result.rules_not_applied],
    }


def run(args: argparse.Namespace) -> int:
    settings = sync_settings(args, "sync")
    if isinstance(settings, int):
        return settings
    config, ident = settings
    requested = SyncType.CLEAN_ALL if args.clean_all else SyncType.CLEAN if args.clean else None
    as_json = args.json
    timeout = args.timeout  # how long to wait for another sync's lock
    budget = args.budget  # the whole sync's time budget
    give_up = None if timeout is None else time.monotonic() + float(timeout)
    lock_path = os.path.join(os.fspath(config.state_directory), SYNC_LOCK_NAME)

    def waiting() -> None:
        limit = "" if timeout is None else f" (for at most {float(timeout):g} s)"
        say_err(f"Waiting for another sync to finish: {lock_holder(config.state_directory)} holds {lock_path}{limit}")

    try:
        with sync_lock(
            config.state_directory,
            stop=lambda: give_up is not None and time.monotonic() >= give_up,
            waiting=waiting,
        ) as held:
            if not held:
                print(
                    f"santacore sync: gave up after {float(timeout or 0):g} s waiting for the sync lock "
                    f"({lock_holder(config.state_directory)} holds {lock_path})",
                    file=sys.stderr,
                )
                return int(SyncStatus.DAEMON_TIMEOUT)
            if requested is not None:
                request_sync_type(os.fspath(config.sync_state_path), requested)
            with open_sync_context(
                config,
                machine_id=ident,
                log=say_err if as_json else print,
                attempt_log=say_err,
                warn=say_err,
                trace=exchange_printer(args.verbose),
                settings=None
                if budget is None
                else dataclasses.replace(TransportSettings.from_config(config), sync_budget=float(budget)),
            ) as ctx:
                run_sync = rule_sync if getattr(args, "rules_only", False) else full_sync
                result = run_sync(ctx, state_path=os.fspath(config.sync_state_path))
    except (SantacoreError, OSError) as e:
        print(f"santacore sync: {e}", file=sys.stderr)
        return int(SyncStatus.UNKNOWN)
    if result.error:
        print(f"Sync failed: {result.error}", file=sys.stderr)
    if as_json:
        json.dump(result_document(result), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return int(result.status)
    print(
        f"Summary: {result.status.name.lower()}; events uploaded {result.events_uploaded}, left {result.events_left}; "
        f"rules received {result.rules_received}, applied {result.rules_applied}"
    )
    return int(result.status)
