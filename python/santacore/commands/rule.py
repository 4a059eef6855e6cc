"""`santacore rule` (santactl rule): add, remove, check, list, import and export rules."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from santacore.commands import EXIT_ERROR, EXIT_OK, error_text, load_config_or_say_why
from santacore.config.settings import Config
from santacore.errors import SantacoreError
from santacore.files import IMPORT_LIMIT, read_regular_file
from santacore.identity.fileinfo import FileInfoError, file_info
from santacore.santad.rule_store import RejectedRule, RuleStore
from santacore.santad.rules import (
    Identifiers,
    Rule,
    RuleError,
    RuleState,
    RuleType,
    check_message,
    identifier_for_path,
    modify_message,
)

IDENTIFIER_FIELD = {
    RuleType.CDHASH: "cdhash",
    RuleType.BINARY: "binary",
    RuleType.SIGNINGID: "signing_id",
    RuleType.CERTIFICATE: "certificate",
    RuleType.TEAMID: "team_id",
}
CENTRALLY_MANAGED = "(SyncBaseURL/StaticRules is set, rules are managed centrally.)"


def _rule_type(args: argparse.Namespace) -> RuleType:
    for flag, rule_type in (
        ("certificate", RuleType.CERTIFICATE),
        ("teamid", RuleType.TEAMID),
        ("signingid", RuleType.SIGNINGID),
        ("cdhash", RuleType.CDHASH),
    ):
        if getattr(args, flag):
            return rule_type
    return RuleType.BINARY


def _state(args: argparse.Namespace) -> RuleState | None:
    for flag, state in (
        ("allow", RuleState.ALLOW),
        ("block", RuleState.BLOCK),
        ("silent_block", RuleState.SILENT_BLOCK),
        ("compiler", RuleState.ALLOW_COMPILER),
        ("remove", RuleState.REMOVE),
    ):
        if getattr(args, flag):
            return state
    if getattr(args, "cel", None) is not None:
        return RuleState.CEL
    return None


def _identifier(args: argparse.Namespace, rule_type: RuleType) -> str:
    if args.path is not None:
        fi = file_info(args.path)
        found = identifier_for_path(fi, rule_type)
        if found is None:
            raise RuleError(f"{args.path} has no {rule_type.kind} (unsigned, or its signature does not verify)")
        return found
    if not args.identifier:
        raise RuleError("an identifier is required: --identifier ID (or --sha256 ID), or --path FILE")
    return str(args.identifier)


def _import_document(path: str) -> Mapping[str, Any]:
    """The `{"rules": [...]}` document of `rule --import FILE`: a regular file (a FIFO or /dev/zero
    is refused, not waited on or read without end) of at most IMPORT_LIMIT bytes."""
    data = read_regular_file(path, IMPORT_LIMIT)
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise RuleError(f"Failed to parse {path}: {e}") from None
    except RecursionError:  # json recurses once per nested array or object
        raise RuleError(f"Failed to parse {path}: arrays or objects nested too deeply") from None
    if not isinstance(document, Mapping):
        raise RuleError(f'Failed to parse {path}: expected a JSON object {{"rules": [...]}}')
    return document


def _managed_centrally(config: Config) -> bool:
    return bool(config.sync_base_url or config.static_rules)


def run(args: argparse.Namespace) -> int:
    config = load_config_or_say_why(args.config, "rule")
    if config is None:
        return EXIT_ERROR
    state = _state(args)
    listing = args.list or args.hash or args.export is not None or args.import_file is not None
    if not args.check and not listing and state is None:
        print(
            "santacore rule: choose --allow, --block, --silent-block, --compiler, --cel, --remove or --check",
            file=sys.stderr,
        )
        return EXIT_ERROR
    changes = state is not None or args.import_file is not None or args.export is not None
    if changes and _managed_centrally(config) and not args.force:
        print(CENTRALLY_MANAGED, file=sys.stderr)
        return EXIT_ERROR
    try:
        # Listing, checking and exporting only read: a read-only state directory must not stop them.
        writes = state is not None or args.import_file is not None
        with RuleStore(config.rules_db, read_only=not writes and os.path.lexists(config.rules_db)) as store:
            return _run(args, store, state)
    except (RuleError, FileInfoError) as e:
        what = "Failed to modify rules" if state is not None or args.import_file is not None else "santacore rule"
        print(f"{what}: {e}", file=sys.stderr)
        return EXIT_ERROR
    except (SantacoreError, OSError) as e:
        print(f"santacore rule: {error_text(e, config)}", file=sys.stderr)
        return EXIT_ERROR


def _run(args: argparse.Namespace, store: RuleStore, state: RuleState | None) -> int:
    if args.import_file is not None:
        rejected: list[RejectedRule] = []
        document = _import_document(args.import_file)
        count = store.import_json(document, clean=args.clean, clean_all=args.clean_all, rejected=rejected)
        for skipped in rejected:  # santad skips a CEL rule that does not compile and stores the rest
            what = f"{skipped.rule.type.wire} {skipped.rule.identifier}"
            print(f"Skipped rule #{skipped.position} ({what}): {skipped.reason}", file=sys.stderr)
        if rejected:
            print(
                f"Imported {count - len(rejected)} of {count} rules from {args.import_file} ({len(rejected)} skipped)."
            )
            return EXIT_ERROR
        print(f"Imported {count} rules from {args.import_file}.")
        return EXIT_OK
    if args.export is not None:
        if os.path.lexists(args.export) and not args.force:
            print(f"santacore rule: {args.export} exists (use --force to replace it)", file=sys.stderr)
            return EXIT_ERROR
        document = store.export_json(args.export)
        print(f"Exported {len(document['rules'])} rules to {args.export}.")
        return EXIT_OK
    if args.hash:
        print(store.rules_hash())
        return EXIT_OK
    if args.list:
        rules = store.rules()
        if args.json:
            json.dump({"rules": [r.listing() for r in rules]}, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            for r in rules:
                print(
                    f"{r.type.wire:<11}  {r.state.label:<20}  {r.identifier}"
                    + (f"  {r.cel_expr}" if r.cel_expr is not None else "")
                    + (f"  {r.custom_msg}" if r.custom_msg else "")
                )
        return EXIT_OK
    rule_type = _rule_type(args)
    identifier = _identifier(args, rule_type)
    if args.check:
        probe = Rule.create(identifier, rule_type, RuleState.ALLOW)  # normalised as stored
        print(check_message(store.find(Identifiers(**{IDENTIFIER_FIELD[rule_type]: probe.identifier}))))
        return EXIT_OK
    assert state is not None
    rule = Rule.create(identifier, rule_type, state, custom_msg=args.message, cel_expr=getattr(args, "cel", None))
    store.add_rules([rule])
    print(modify_message(rule))
    return EXIT_OK
