"""`santacore catalog export`: the catalog as JSON Lines, Parquet, santactl fileinfo JSON, or rules
(santactl's import JSON, Moroz's TOML)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import sys
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING

from santacore.commands import EXIT_ERROR, EXIT_OK, error_text
from santacore.errors import SantacoreError

if TYPE_CHECKING:
    from santacore.catalog.export import ExportCount
    from santacore.catalog.model import ArtifactResult
    from santacore.catalog.store import CatalogStore
    from santacore.santad.rules import RuleType

# What a binary lacks when it has no identifier of the rule type (for the summary line).
LACKING = {
    "binary": "a SHA-256",
    "cdhash": "a verified CDHash",
    "signingid": "a verified Signing ID",
    "teamid": "a verified Team ID",
    "certificate": "a verified signing certificate",
}


def open_catalog(path: str, command: str) -> CatalogStore | None:
    """The catalog at `path`, or None after saying on stderr why not (a missing file is not
    created: reading a catalog that is not there is a mistake, not an empty catalog)."""
    from santacore.catalog.store import CatalogError, CatalogStore

    if not os.path.lexists(path):
        print(
            f"santacore catalog {command}: {path}: no such catalog (make one with `santacore catalog scan`)",
            file=sys.stderr,
        )
        return None
    try:
        return CatalogStore.open(path)
    except (CatalogError, sqlite3.Error, OSError) as e:
        print(f"santacore catalog {command}: {error_text(e)}", file=sys.stderr)
        return None


def stored_results(store: CatalogStore) -> Iterator[ArtifactResult]:
    """Every artifact of the catalog, one at a time, as a scan result."""
    for artifact in store.artifacts():
        yield store.result(artifact)


@contextlib.contextmanager
def replaced_whole(path: str, force: bool) -> Iterator[str]:
    """A temporary name for FILE, renamed into place when the block ends well, removed otherwise:
    FILE is written whole or not at all."""
    if os.path.lexists(path) and not force:
        raise FileExistsError(f"{path} exists (use --force to replace it)")
    temporary = f"{path}.tmp{os.getpid()}"
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def text_output(path: str | None, force: bool) -> Iterator[IO[str]]:
    if path is None:
        yield sys.stdout
        return
    with replaced_whole(path, force) as temporary, open(temporary, "w", encoding="utf-8") as f:
        yield f


@contextlib.contextmanager
def binary_output(path: str | None, force: bool) -> Iterator[IO[bytes]]:
    if path is None:
        yield sys.stdout.buffer
        return
    with replaced_whole(path, force) as temporary, open(temporary, "wb") as f:
        yield f


def run(args: argparse.Namespace) -> int:
    store = open_catalog(args.db, "export")
    if store is None:
        return EXIT_ERROR
    try:
        with store:
            count, what = _export(args, store)
    except BrokenPipeError:
        raise  # `| head`: main() ends quietly
    except (SantacoreError, FileExistsError) as e:
        print(f"santacore catalog export: {e}", file=sys.stderr)
        return EXIT_ERROR
    except (OSError, sqlite3.Error) as e:
        print(f"santacore catalog export: {error_text(e)}", file=sys.stderr)
        return EXIT_ERROR
    print(_summary(args, count, what), file=sys.stderr)
    return EXIT_OK


def _export(args: argparse.Namespace, store: CatalogStore) -> tuple[ExportCount, str]:
    from santacore.catalog import export
    from santacore.santad.rules import RuleState

    results = stored_results(store)
    if args.format in ("rules-json", "moroz-toml"):
        args.rule_type, args.policy = args.rule_type or "binary", args.policy or "ALLOWLIST"
        rule_type: RuleType = export.RULE_TYPES[args.rule_type]
        state = RuleState.from_policy(args.policy)
        rules, count = export.catalog_rules(
            results, rule_type, state, custom_msg=args.message, executables_only=not args.all_macho
        )
        if args.format == "moroz-toml":
            export.moroz_rules(rules)  # refuse a policy Moroz has no name for before touching FILE
        with text_output(args.output, args.force) as out:
            writer = export.write_rules_json if args.format == "rules-json" else export.write_moroz_toml
            writer(rules, out)
        return count, f"{rule_type.wire} {args.policy} rules"
    if args.format == "parquet":
        with binary_output(args.output, args.force) as binary_out:
            return export.write_parquet(results, binary_out), "binaries (Parquet rows)"
    with text_output(args.output, args.force) as out:
        if args.format == "jsonl":
            return export.write_jsonl(results, out), "artifacts (JSON lines)"
        return export.write_santactl_fileinfo(results, out), "binaries (santactl fileinfo objects)"


def _summary(args: argparse.Namespace, count: ExportCount, what: str) -> str:
    where = f" to {args.output}" if args.output else ""
    parts = [f"Exported {count.written} {what}{where}"]
    if count.duplicates:
        parts.append(f"{count.duplicates} duplicate identifiers merged")
    if count.lacking:
        parts.append(
            f"{count.lacking} binaries skipped without {LACKING[args.rule_type]} (unsigned, ad-hoc without one, "
            "or a signature that does not verify)"
        )
    if count.not_executables:
        parts.append(f"{count.not_executables} non-executable Mach-O files left out (--all-macho includes them)")
    return "; ".join(parts) + "."
