"""`santacore check`: what santad would decide if PATH were executed now (mode, rules,
protections, scopes), the rule that decided, and with --record the event it would store."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from santacore.commands import EXIT_ERROR, EXIT_OK, config_if_readable, error_text
from santacore.commands.immediate import upload_recorded
from santacore.config.settings import Config
from santacore.errors import SantacoreError
from santacore.identity.fileinfo import FileInfo, file_info
from santacore.santad.cel import CELInputs
from santacore.santad.decisions import ClientMode
from santacore.santad.event_builders import execution_event
from santacore.santad.event_store import EventStore
from santacore.santad.execution import store_events
from santacore.santad.policy import DecisionResult, PolicySettings, decide_for_file
from santacore.santad.rule_store import RuleStore
from santacore.santad.rules import check_message
from santacore.santad.sessions import ExecutionContext
from santacore.sync.in_force import load_config_in_force

EXIT_BLOCKED = 3
"""`check`'s status when santad would block PATH (0: allowed; 1: error; 2 is argparse's usage error)."""


def _document(fi: FileInfo, result: DecisionResult, config: Config) -> dict[str, Any]:
    return {
        "path": fi.path,
        "sha256": fi.sha256,
        "mode": ClientMode(config.client_mode).wire,
        "decision": result.name,
        "allowed": result.allowed,
        "silent": result.silent,
        "rule": result.rule.listing() if result.rule else None,
        "rule_text": check_message(result.rule) if result.rule else None,
        "custom_msg": result.custom_msg,
        "custom_url": result.custom_url,
        "explanation": result.explanation,
        "lockdown_would_block": result.would_block_in_lockdown,
    }


def _cel_inputs(fi: FileInfo, args: argparse.Namespace) -> CELInputs:
    """What a CEL rule reads about this execution: argv is PATH then the `--arg`s, the environment the `--env`s
    only, the euid and cwd this process's unless given."""
    envs: dict[str, str] = {}
    for item in getattr(args, "env", None) or ():
        name, _, value = item.partition("=")
        envs[name] = value
    return CELInputs.for_file(
        fi,
        args=[fi.path, *(getattr(args, "arg", None) or ())],
        envs=envs,
        euid=getattr(args, "euid", None),
        cwd=getattr(args, "cwd", None),
    )


def run(args: argparse.Namespace) -> int:
    config: Config | None = None
    try:
        # santad decides with the settings the last sync applied on top of the local ones (§3.4).
        config = load_config_in_force(args.config).config
        settings = PolicySettings.from_config(config)
        fi = file_info(args.path)
        cel = _cel_inputs(fi, args)
        with RuleStore(config.rules_db, read_only=os.path.lexists(config.rules_db)) as rules:  # deciding only reads
            result = decide_for_file(fi, rules, settings, cel=cel)
    except (SantacoreError, OSError) as e:  # ConfigError, FileInfoError, StoreError, RuleError (StaticRules)
        print(f"santacore check: {error_text(e, config or config_if_readable(args.config))}", file=sys.stderr)
        return EXIT_ERROR
    doc = _document(fi, result, config)
    # With --record --upload, --json waits for the upload's outcome (the document's "upload").
    json_later = args.json and args.record and args.upload and result.blocked
    if args.json and not json_later:
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif not args.json:
        print(f"{'Path':<9}: {fi.path}")
        print(f"{'Mode':<9}: {doc['mode']}")
        print(f"{'Decision':<9}: {doc['decision']}" + (" (silent)" if result.silent else ""))
        print(f"{'Rule':<9}: {doc['rule_text'] or 'None'}" + (f" ({result.rule.identifier})" if result.rule else ""))
        print(f"{'Reason':<9}: {result.explanation}")
        if result.would_block_in_lockdown:
            print("Note     : allowed only because of MONITOR mode; LOCKDOWN would block it (BLOCK_UNKNOWN).")
    decided = EXIT_OK if result.allowed else EXIT_BLOCKED
    if not args.record:
        return decided
    if not settings.creates_event(result):
        print("Not recorded: santad creates no event for this decision.", file=sys.stderr)
        return _json_last(doc, json_later, decided)
    if not config.sync_base_url:
        print("Not recorded: SyncBaseURL is not set, so santad would not store the event.", file=sys.stderr)
        return _json_last(doc, json_later, decided)
    static = result.rule is not None and result.rule in settings.static_rules  # [N] event field 34
    event = execution_event(fi, result.decision, context=ExecutionContext.current(), static_rule=static)
    try:
        with EventStore(config.events_db) as store:
            if result.blocked and args.upload:  # santad's path: stored first, then uploaded (§4.5 for a bundle)
                print(f"Recording event {event.idx} ({event.decision.value}) in {config.events_db}", file=sys.stderr)
                doc["upload"] = upload_recorded(config, store, event, verbosity=args.verbose)
            else:
                store_events(store, [event])
                print(f"Recorded event {event.idx} ({event.decision.value}) in {config.events_db}", file=sys.stderr)
    except (SantacoreError, OSError) as e:
        print(f"santacore check: {error_text(e, config)}", file=sys.stderr)
        return EXIT_ERROR
    return _json_last(doc, json_later, decided)


def _json_last(doc: dict[str, Any], show: bool, code: int) -> int:
    if show:
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return code
