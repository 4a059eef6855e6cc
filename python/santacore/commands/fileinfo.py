"""`santacore fileinfo` (santactl fileinfo): a file's identity, verified, and the rule that would decide it."""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from santacore.commands import EXIT_ERROR, EXIT_OK, error_text
from santacore.errors import MachOError, SantacoreError
from santacore.identity import report
from santacore.identity.fileinfo import FileInfoError, file_info

if TYPE_CHECKING:
    from santacore.identity.fileinfo import FileInfo
    from santacore.santad.rules import Identifiers, Rule

DOWNLOAD_NOTE = (
    "santacore fileinfo: the Download keys are macOS quarantine data (extended attributes and "
    "LaunchServices), not available here; like any missing value they are not shown."
)
GREEN, RED, RESET = "\033[32m", "\033[31m", "\033[0m"


def _expand(path: str, recursive: bool) -> Iterator[str]:
    """`path`, or with --recursive every regular file under a directory (symlinks are not followed), in name order."""
    if not recursive or os.path.islink(path) or not os.path.isdir(path):
        yield path
        return
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            try:
                if stat.S_ISREG(os.lstat(full).st_mode):
                    yield full
            except OSError:
                continue


class _NoRules:
    """The lookup for a state directory without rules.db: no rule matches (nothing is created)."""

    def find(self, identifiers: Identifiers) -> Rule | None:
        return None


def _rule_lookup(config_path: str | None) -> tuple[Callable[[FileInfo], str], Callable[[], None]] | None:
    """How to get a file's `Rule` value (santad's decision under the configuration in force), and how
    to close what that opened; None, after saying why on stderr, when the configuration cannot be used."""
    from santacore.santad.policy import PolicySettings, decide_for_file
    from santacore.santad.rule_store import RuleStore
    from santacore.sync.in_force import load_config_in_force

    try:
        config = load_config_in_force(config_path).config
        settings = PolicySettings.from_config(config)
        store = RuleStore(config.rules_db, read_only=True) if os.path.lexists(config.rules_db) else None
    except (SantacoreError, OSError) as e:
        print(f"santacore fileinfo: Rule not shown: {e}", file=sys.stderr)
        return None
    lookup = store if store is not None else _NoRules()
    color = sys.stdout.isatty()

    def rule(fi: FileInfo) -> str:
        result = decide_for_file(fi, lookup, settings)
        text = report.rule_text(result.name)
        if color and text != "None":
            text = f"{GREEN if result.allowed else RED}{text}{RESET}"
        return text

    return rule, (store.close if store is not None else lambda: None)


def run(args: argparse.Namespace) -> int:
    keys: tuple[str, ...] = tuple(args.key or report.KEYS)
    if args.key and any(k in report.DOWNLOAD_KEYS for k in args.key):
        print(DOWNLOAD_NOTE, file=sys.stderr)
    lookup = _rule_lookup(args.config) if not args.json and "Rule" in keys else None
    documents: list[dict[str, Any]] = []
    failed = False
    try:
        for given in args.paths:
            for path in _expand(given, args.recursive):
                try:
                    info = file_info(path, host=args.host, arch=args.arch)
                    rule = lookup[0](info) if lookup is not None else None
                except (FileInfoError, OSError, SantacoreError) as e:
                    if isinstance(e, FileInfoError | MachOError):
                        why = str(e)  # santactl's own words, or a Mach-O problem that names the file
                    elif isinstance(e, OSError) and e.filename:
                        why = error_text(e)  # path: reason
                    else:
                        why = f"{path}: {e}"
                    print(why, file=sys.stderr)
                    failed = True
                    continue
                if args.json:
                    documents.append(report.json_document(info))
                else:
                    sys.stdout.write(report.render_text(info, keys, rule=rule))
    finally:
        if lookup is not None:
            lookup[1]()
    if args.json:
        json.dump(documents, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return EXIT_ERROR if failed else EXIT_OK
