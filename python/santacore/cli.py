"""The `santacore` command (santactl's counterpart). Every command's arguments are here;
the commands print, the library underneath only returns values and raises."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from importlib import import_module

from santacore import __version__
from santacore.identity.constants import FILEINFO_KEYS

# bundleinfo --threads: the hashing is bounded by the disk long before 256 threads, and each thread
# costs a stack and a read buffer; 100000 threads ran for minutes, 2**32 hung. A fixed bound (not a
# multiple of this machine's cores) keeps a command line valid on every machine.
MAX_THREADS = 256


def _thread_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= MAX_THREADS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_THREADS}, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="santacore",
        description="Santa's identifiers and sync, from the files alone.",
        epilog="Each command's --help ends with its exit status; 2 is always a usage error.",
    )
    parser.add_argument("--version", action="version", version=f"santacore {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Commands that read settings take --config (default: $SANTACORE_CONFIG, else built-in defaults).
    settings = argparse.ArgumentParser(add_help=False)
    settings.add_argument("--config", metavar="FILE", help="santacore TOML configuration (default: $SANTACORE_CONFIG)")

    bundleinfo_cmd = commands.add_parser(
        "bundleinfo",
        help="hash the bundle Santa would hash for PATH (santactl bundleinfo)",
        description="Find the bundle Santa hashes for PATH (the bundle, its main executable, or anything "
        "inside it), hash every MH_EXECUTE in it and print the bundle hash.",
        epilog='Exit status (Santa\'s): 0 hashed; 1 PATH cannot be used; 2 not a bundle ("Not a bundle" on '
        "stderr), or a usage error.",
    )
    bundleinfo_cmd.add_argument("path", metavar="PATH")
    bundleinfo_cmd.add_argument("--json", action="store_true", help="print one JSON document with every detail")
    bundleinfo_cmd.add_argument(
        "--threads",
        type=_thread_count,
        default=None,
        help=f"worker threads, 1 to {MAX_THREADS} (default: one per core)",
    )
    bundleinfo_cmd.add_argument(
        "--blake3", action="store_true", help="with --json: also compute BLAKE3 of every binary, same read pass"
    )
    bundleinfo_cmd.set_defaults(run="bundleinfo:run")

    fileinfo_cmd = commands.add_parser(
        "fileinfo",
        parents=[settings],
        help="describe files as santactl fileinfo does: hashes, type, signing identity, verified",
        description="SHA-256, SHA-1, type, architectures, bundle metadata and the code signature (cdhash, "
        "Team ID, Signing ID, certificate chain), verified from the file itself, and the rule that would "
        "decide it (from rules.db and StaticRules of the --config configuration).",
        epilog="Exit status: 0 every path described; 1 any path failed (the others are still described); "
        "2 usage error.",
    )
    fileinfo_cmd.add_argument("paths", nargs="+", metavar="PATH")
    fileinfo_cmd.add_argument(
        "--json", action="store_true", help="print a JSON array with one object per file (snake_case keys)"
    )
    fileinfo_cmd.add_argument(
        "--recursive", "-r", action="store_true", help="describe every regular file under a directory (no symlinks)"
    )
    fileinfo_cmd.add_argument(
        "--key", action="append", choices=FILEINFO_KEYS, metavar="KEY", help="print only this key (repeatable)"
    )
    fileinfo_cmd.add_argument("--arch", help="report this slice of a universal binary")
    fileinfo_cmd.add_argument(
        "--host",
        choices=("apple-silicon", "intel"),
        default="apple-silicon",
        help="the Mac whose slice choice to follow for universal binaries (default: apple-silicon)",
    )
    fileinfo_cmd.set_defaults(run="fileinfo:run")

    rule_cmd = commands.add_parser(
        "rule",
        parents=[settings],
        help="add, remove, check, list, import or export rules (santactl rule)",
        description="santactl rule's options. Exactly one of --allow/--block/--silent-block/--compiler/--cel/"
        "--remove, or --check, for one identifier (--identifier/--sha256, or --path to compute it); "
        "or --list / --import / --export / --hash. Refused when SyncBaseURL or StaticRules manage rules (--force).",
        epilog="Exit status: 0 done; 1 error or refused (centrally managed rules, an existing --export "
        "file without --force, a bad identifier, a CEL expression that does not compile; --import stores the "
        "other rules then); 2 usage error.",
    )
    states = rule_cmd.add_mutually_exclusive_group()
    for flag, what in (
        ("--allow", "allow"),
        ("--block", "block"),
        ("--silent-block", "block without notifying the user"),
        ("--compiler", "allow, as a compiler (transitive rules)"),
        ("--remove", "remove the rule"),
        ("--check", "print the rule for the identifier"),
    ):
        states.add_argument(flag, action="store_true", help=what)
    states.add_argument(
        "--cel",
        metavar="EXPR",
        help="a CEL rule: EXPR (Santa's cel.v1 environment) decides; compiled now, refused if it does not compile",
    )
    kinds = rule_cmd.add_mutually_exclusive_group()
    kinds.add_argument("--certificate", action="store_true", help="a leaf-certificate SHA-256 rule")
    kinds.add_argument("--teamid", action="store_true", help="a Team ID rule")
    kinds.add_argument("--signingid", action="store_true", help="a Signing ID rule (TEAMID:id or platform:id)")
    kinds.add_argument("--cdhash", action="store_true", help="a CDHash rule")
    rule_cmd.add_argument("--identifier", "--sha256", dest="identifier", metavar="ID", help="the rule's identifier")
    rule_cmd.add_argument("--path", metavar="FILE", help="compute the identifier from FILE (fileinfo)")
    rule_cmd.add_argument("--message", metavar="TEXT", help="custom message shown when the rule blocks")
    rule_cmd.add_argument("--list", action="store_true", help="list every rule")
    rule_cmd.add_argument(
        "--hash",
        action="store_true",
        help="print the rules hash sent in preflight/postflight (XXH3-128 of the execution rules; "
        "santacore's addition, santactl has no such option)",
    )
    rule_cmd.add_argument("--json", action="store_true", help='with --list: santactl\'s {"rules": [...]} JSON')
    rule_cmd.add_argument("--import", dest="import_file", metavar="FILE", help="add the rules of a JSON file")
    rule_cmd.add_argument("--export", metavar="FILE", help="write every non-transitive rule to a JSON file")
    rule_cmd.add_argument("--clean", action="store_true", help="with --import: first remove non-transitive rules")
    rule_cmd.add_argument("--clean-all", action="store_true", help="with --import: first remove every rule")
    rule_cmd.add_argument(
        "--force", action="store_true", help="modify rules even when managed centrally; replace an --export FILE"
    )
    rule_cmd.set_defaults(run="rule:run")

    check_cmd = commands.add_parser(
        "check",
        parents=[settings],
        help="what santad would decide for PATH now, and the rule that decides",
        description="Evaluate PATH as santad would on execution: client mode, rules (static, then rules.db; CEL "
        "rules evaluated for the execution the CEL options describe), protections and path scopes. --record "
        "stores the event santad would create.",
        epilog="Exit status: 0 allowed; 3 blocked; 1 error (nothing decided, or --record failed); 2 usage error.",
    )
    check_cmd.add_argument("path", metavar="PATH")
    check_cmd.add_argument("--record", action="store_true", help="store the event santad would create")
    check_cmd.add_argument(
        "--upload", action="store_true", help="with --record: upload a denial at once, as santad does"
    )
    check_cmd.add_argument("--json", action="store_true", help="print the decision as JSON")
    cel_inputs = check_cmd.add_argument_group(
        "CEL rules",
        "what a CEL rule sees of the execution (argv[0] is PATH; defaults: no environment, this "
        "process's effective user and working directory)",
    )
    cel_inputs.add_argument("--arg", action="append", metavar="ARG", help="an argument after argv[0] (repeatable)")
    cel_inputs.add_argument("--env", action="append", metavar="NAME=VALUE", help="an environment variable (repeatable)")
    cel_inputs.add_argument("--euid", type=int, metavar="UID", help="the effective user ID")
    cel_inputs.add_argument("--cwd", metavar="DIR", help="the working directory")
    check_cmd.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="with --upload: one line per HTTP exchange on stderr; -vv adds the JSON bodies",
    )
    check_cmd.set_defaults(run="check:run")

    upload = commands.add_parser(
        "eventupload",
        parents=[settings],
        help="upload non-execution events for files and bundles now (santactl eventupload)",
        description="Build Santa's events for files, glob patterns and, unless --binary-only and when bundles "
        "are enabled (the server's setting, else EnableBundles; --bundles forces it), every executable of their "
        "bundles, store them in events.db and upload them at once; what cannot be uploaded stays queued for the "
        "next sync. --queue-only only queues; --dry-run --json prints the exact upload body instead.",
        epilog="Exit status: 0 every event uploaded (or queued with --queue-only, or built with --dry-run); 1 any "
        "path or pattern failed, an event is left queued, or no SyncBaseURL; 2 usage error.",
    )
    upload.add_argument("paths", nargs="+", metavar="PATH", help="files, bundles or glob patterns")
    upload.add_argument(
        "--bundles",
        action="store_true",
        help="hash each file's bundle even when bundles are not enabled (server setting, else EnableBundles)",
    )
    upload.add_argument(
        "--binary-only", action="store_true", help="only each file's own event: no bundle hashing (santactl's)"
    )
    upload.add_argument(
        "--queue-only",
        action="store_true",
        help="queue the events in events.db for the next sync instead of uploading now (santacore's)",
    )
    upload.add_argument("--dry-run", action="store_true", help="store nothing; report what would be queued")
    upload.add_argument("--json", action="store_true", help="with --dry-run: print the eventupload request body")
    upload.set_defaults(run="eventupload:run")

    sync = commands.add_parser(
        "sync",
        parents=[settings],
        help="run a full sync now (santactl sync)",
        description="Preflight, event upload, rule download and postflight against SyncBaseURL. Waits for a "
        "sync already running in this state directory. Exit codes are santactl's: 0 success, 1 preflight "
        "failed, 3 rule download failed, 6 no SyncBaseURL, 7 no MachineID, 10 unknown. Each request is tried up to "
        "5 times, sleeping 4, 8, 16 and 32 s in between (Santa's schedule); every failed attempt is printed on "
        "stderr as it happens. SyncProtocol google, google-2024.6 and google-json retry every failure (any "
        "non-200 status, connection, DNS, TLS and timeout errors); northpolesec stops at once on a 4xx other than "
        "408/429. No network at all stops at once in every variant. A 403 that an XSRF token fixes is retried at "
        "once, without a sleep. Rules the client cannot apply are named on stderr with the reason.",
    )
    sync.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="one line per HTTP exchange on stderr (method, URL, status, sizes, time); -vv adds the JSON bodies",
    )
    sync.add_argument(
        "--json",
        action="store_true",
        help="print the outcome as JSON (status, figures, rules not applied and why); stage lines go to stderr",
    )
    sync.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="give up waiting for another sync's lock after SECONDS (exit 8); default: wait",
    )
    sync.add_argument(
        "--budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="time budget for the whole sync, retries included (default: SyncTimeBudget, else 1800)",
    )
    clean = sync.add_mutually_exclusive_group()
    clean.add_argument("--clean", action="store_true", help="ask the server for a clean sync (keep transitive rules)")
    clean.add_argument("--clean-all", action="store_true", help="ask for a clean sync that removes every rule")
    clean.add_argument(
        "--rules-only",
        action="store_true",
        help="download rules only (every page, one transaction; no preflight, event upload or postflight), as a "
        "push rule_sync does; santacore's addition, santactl has no such flag",
    )
    sync.set_defaults(run="sync:run")

    syncd_cmd = commands.add_parser(
        "syncd",
        parents=[settings],
        help="run the sync service in the foreground until SIGTERM/SIGINT",
        description="santasyncservice: a full sync FIRST-SYNC-DELAY seconds after start, then every "
        "full-sync interval (the server's, else FullSyncInterval, floor 60 s); on-demand syncs from "
        "`santacore sync` wait their turn. When a preflight configures push notifications (NATS; the push "
        "extra), messages trigger full or rule-only syncs and the interval becomes the server's push interval "
        "(default 4 h). Exit 0 on SIGTERM/SIGINT.",
    )
    syncd_cmd.add_argument(
        "--once", action="store_true", help="one full sync after the delay, then exit with its status"
    )
    syncd_cmd.add_argument(
        "--first-sync-delay",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="seconds before the first full sync (default: 15, as Santa)",
    )
    syncd_cmd.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="also log one line per HTTP exchange (method, URL, status, sizes, time); -vv adds the JSON bodies",
    )
    syncd_cmd.set_defaults(run="syncd:run")

    doctor_cmd = commands.add_parser(
        "doctor",
        parents=[settings],
        help="check the sync server: reachable, TLS, authentication, XSRF, compression, format (santactl doctor)",
        description="Santa's doctor probe, POST <SyncBaseURL>preflight/santactl-doctor-test with an empty body and "
        "the configured headers, TLS trust and client certificate, then one request per compression (deflate, gzip, "
        "none) and body format (JSON, binary protobuf) with a small preflight body. One line per finding, saying "
        "what to do.",
        epilog="Exit status: 0 no problem found (notes may remain); 1 a problem found, or the configuration cannot "
        "be read; 2 usage error.",
    )
    doctor_cmd.add_argument("--json", action="store_true", help='print {"server", "ok", "checks": [...]} JSON')
    doctor_cmd.add_argument(
        "--santa-only", action="store_true", help="send Santa's probe alone (no compression or format probes)"
    )
    doctor_cmd.set_defaults(run="doctor:run")

    testing = commands.add_parser("testing", help="testing aids: a conformant sync server on loopback")
    testing_commands = testing.add_subparsers(dest="testing_command", required=True, metavar="ACTION")
    serve = testing_commands.add_parser(
        "serve",
        add_help=False,
        help="run a conformant Santa sync server on loopback (its options: santacore testing serve --help)",
    )
    serve.add_argument("serve_args", nargs=argparse.REMAINDER)
    serve.set_defaults(run="testing:run")

    config = commands.add_parser("config", help="show the configuration, or import Santa's profile")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    show = config_commands.add_parser(
        "show",
        parents=[settings],
        help="print the configuration in force (the file under the last sync's settings) as TOML",
        description="Every setting's value in force and where it comes from: the file, the server (the "
        "last sync's settings, which override the file) or the default.",
        epilog="Exit status: 0 shown; 1 the configuration cannot be read; 2 usage error.",
    )
    show.add_argument("--json", action="store_true", help='print {"Key": {"value": ..., "source": ...}} JSON')
    show.set_defaults(run="config:run_show")
    imp = config_commands.add_parser(
        "import",
        help="convert Santa's .mobileconfig / .plist into santacore's TOML",
        description="Read Santa's configuration profile (com.northpolesec.santa or com.google.santa payloads, "
        "or a plain preferences plist) and print the TOML santacore reads, or write it with --output.",
        epilog="Exit status: 0 converted; 1 the profile cannot be read, or FILE exists without --force; 2 usage error.",
    )
    imp.add_argument("profile", metavar="PROFILE")
    imp.add_argument("--output", "-o", metavar="FILE", help="write the TOML here (mode 0600) instead of stdout")
    imp.add_argument("--force", action="store_true", help="replace FILE if it exists")
    imp.set_defaults(run="config:run_import")

    catalog = commands.add_parser("catalog", help="Santa's identifiers for a whole software catalog")
    catalog_commands = catalog.add_subparsers(dest="catalog_command", required=True, metavar="ACTION")
    _add_catalog_scan(catalog_commands)
    _add_catalog_export(catalog_commands)
    _add_catalog_show(catalog_commands)
    return parser


# The catalog's read side (export, show); the names match santacore.catalog.export, which is not
# imported here so that `santacore --help` stays cheap.
EXPORT_FORMATS = ("jsonl", "parquet", "santactl-fileinfo", "rules-json", "moroz-toml")
EXPORT_RULE_TYPES = ("binary", "cdhash", "signingid", "teamid", "certificate")
EXPORT_POLICIES = ("ALLOWLIST", "ALLOWLIST_COMPILER", "BLOCKLIST", "SILENT_BLOCKLIST", "REMOVE")


def _add_catalog_export(catalog_commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = catalog_commands.add_parser(
        "export",
        help="write the catalog as JSON Lines, Parquet, santactl fileinfo JSON, or Santa rules",
        description="jsonl: one line per artifact (bundles and binaries nested, failures included); parquet: "
        "one row per binary (needs pyarrow: pip install 'santacore[export]'); santactl-fileinfo: santactl "
        "fileinfo --json's array, one object per binary (what Zentral's fileinfo ingestion takes); rules-json: "
        "santactl rule --import's document; moroz-toml: [[rules]] for Moroz's configuration. Rules: one per "
        "distinct identifier of --rule-type, from every executable (--all-macho: every Mach-O).",
        epilog="Exit status: 0 exported (a summary on stderr); 1 the catalog cannot be read, FILE exists "
        "without --force, or the policy is not one the format knows; 2 usage error.",
    )
    export.add_argument("--db", required=True, metavar="CATALOG", help="the catalog (SQLite) to read")
    export.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    export.add_argument("--rule-type", choices=EXPORT_RULE_TYPES, help="rules: the identifier (default binary)")
    export.add_argument(
        "--policy",
        type=str.upper,
        choices=EXPORT_POLICIES,
        help="rules: the policy (default ALLOWLIST; Moroz has no SILENT_BLOCKLIST)",
    )
    export.add_argument("--message", metavar="TEXT", help="rules: custom message shown when a rule blocks")
    export.add_argument(
        "--all-macho", action="store_true", help="rules: also dylibs and plug-ins, which Santa never executes"
    )
    export.add_argument("--output", "-o", metavar="FILE", help="write here (whole or not at all), not stdout")
    export.add_argument("--force", action="store_true", help="replace FILE if it exists")
    export.set_defaults(run="catalog_export:run")


def _add_catalog_show(catalog_commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    show = catalog_commands.add_parser(
        "show",
        help="summarise a catalog: artifacts, bundles, binaries, signers, failures",
        description="Counts (artifacts done and failed, bundles, binaries, signers), signers by binary "
        "count, unsigned and ad-hoc binaries, and failures with their reasons. --html writes the same as one "
        "self-contained page.",
        epilog="Exit status: 0 shown; 1 the catalog cannot be read, or FILE cannot be written; 2 usage error.",
    )
    show.add_argument("--db", required=True, metavar="CATALOG", help="the catalog (SQLite) to read")
    show.add_argument("--json", action="store_true", help="print the summary as one JSON document")
    show.add_argument("--html", metavar="FILE", help="also write a one-page HTML report to FILE")
    show.add_argument("--limit", type=int, default=50, metavar="N", help="rows per list in the text (default 50)")
    show.set_defaults(run="catalog_show:run")


def _add_catalog_scan(catalog_commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    scan = catalog_commands.add_parser(
        "scan",
        help="record every bundle and Mach-O of many artifacts (archives read in place) in a catalog",
        description="Each PATH that is a file, or a folder that is a bundle, is one artifact; other folders are "
        "searched for archives (zip, tar[.gz|.bz2|.xz|.zst], .pkg), bundles and Mach-O files. Archives are read "
        "in place, never unpacked. A re-run skips what the catalog already holds (same path, size and mtime, or "
        "same content); an interrupted scan resumes where it stopped.",
        epilog="Exit status: 0 scanned (artifacts that could not be read are recorded as failed, with the "
        "reason); 1 the catalog cannot be opened, or a PATH does not exist (the others are still scanned); "
        "2 usage error.",
    )
    scan.add_argument("paths", nargs="+", metavar="PATH")
    scan.add_argument("--db", required=True, metavar="CATALOG", help="the catalog (SQLite) to write; created if absent")
    scan.add_argument(
        "--threads",
        type=_thread_count,
        default=None,
        help=f"artifacts scanned at once, each in its own process, 1 to {MAX_THREADS} (default: one per core)",
    )
    scan.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on this Dask scheduler (tcp://HOST:PORT; workers read the paths themselves; needs "
        "pip install 'santacore[cluster]')",
    )
    scan.add_argument("--retry-failed", action="store_true", help="scan again artifacts that failed before")
    scan.set_defaults(run="catalog_scan:run")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit status. A closed stdout (`santacore fileinfo ... | head -1`) ends the
    command quietly with 141, as SIGPIPE ends Unix tools (128 + 13); Ctrl-C ends it with
    "interrupted" on stderr and 130 (128 + SIGINT), without a traceback."""
    try:
        try:
            status = _main(argv)
            sys.stdout.flush()  # a pipe closed after the last write fails here, not at exit
            return status
        except BrokenPipeError:
            _silence_stdout()
            return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print("santacore: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


EXIT_BROKEN_PIPE = 141
EXIT_INTERRUPTED = 130


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's flush at exit cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _main(argv: Sequence[str] | None) -> int:
    # Paths that are not UTF-8 reach us as surrogate escapes; print them back as the same bytes.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:2] == ["testing", "serve"]:
        # The server has its own options (`santacore testing serve --help`); hand them over untouched.
        return _command("testing:run")(argparse.Namespace(serve_args=arguments[2:]))
    parser = build_parser()
    _refuse_unknown_top_level_options(parser, arguments)
    args, extras = parser.parse_known_args(arguments)
    usage = _command_parser(parser, arguments)
    if extras:
        usage.error(f"unrecognized arguments: {' '.join(extras)}")
    _check_combinations(args, usage)
    return _command(args.run)(args)


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _command_parser(parser: argparse.ArgumentParser, arguments: Sequence[str]) -> argparse.ArgumentParser:
    """The (sub)command's own parser, so that a usage error shows its usage, not the top level's."""
    for token in arguments:
        chosen = _subcommands(parser).get(token)
        if chosen is not None:
            parser = chosen
    return parser


def _refuse_unknown_top_level_options(parser: argparse.ArgumentParser, arguments: Sequence[str]) -> None:
    """`santacore --bogus` names the option, not the missing COMMAND argparse would complain about first."""
    known = {s for action in parser._actions for s in action.option_strings}
    for token in arguments:
        if not token.startswith("-"):
            return
        if token.split("=", 1)[0] not in known:
            parser.error(f"unrecognized arguments: {token}")


def _check_combinations(args: argparse.Namespace, usage: argparse.ArgumentParser) -> None:
    """Options that mean nothing without another: a usage error (exit 2) rather than a silent no-op."""
    if args.command == "eventupload" and args.json and not args.dry_run:
        usage.error("--json prints the upload body and needs --dry-run")
    if args.command == "check" and any("=" not in e or e.startswith("=") for e in args.env or ()):
        usage.error("--env takes NAME=VALUE")
    if args.command == "check" and args.upload and not args.record:
        usage.error("--upload uploads the recorded event and needs --record")
    if args.command == "bundleinfo" and args.blake3 and not args.json:
        usage.error("--blake3 needs --json (the text output is santactl's, which has no BLAKE3)")
    if args.command == "rule" and (args.clean or args.clean_all) and args.import_file is None:
        usage.error("--clean and --clean-all go with --import FILE")
    actions = ("list", "import_file", "export", "check", "allow", "block", "silent_block", "compiler", "remove", "cel")
    if args.command == "rule" and args.hash and any(getattr(args, a) not in (None, False) for a in actions):
        usage.error("--hash prints the rules hash alone; it goes with no other action")
    if args.command == "rule" and args.json and not args.list:
        usage.error("--json goes with --list")
    if args.command == "fileinfo" and args.json and args.key:
        usage.error("--key chooses lines of the text output; --json prints every field")
    if args.command == "rule" and args.clean and args.clean_all:
        usage.error("choose one of --clean and --clean-all")
    if args.command == "catalog" and args.catalog_command == "export":
        if args.format == "parquet" and args.output is None:
            usage.error("--format parquet writes a file: give -o FILE")
        if args.format not in ("rules-json", "moroz-toml") and (
            args.rule_type or args.policy or args.message is not None or args.all_macho
        ):
            usage.error("--rule-type, --policy, --message and --all-macho go with --format rules-json or moroz-toml")


def _command(run: str) -> Callable[[argparse.Namespace], int]:
    """A command's `run`, named "module:function" under santacore.commands and imported only now,
    so that `santacore --help` or `bundleinfo` never load what `fileinfo` or `sync` need."""
    module, function = run.split(":")
    command: Callable[[argparse.Namespace], int] = getattr(import_module(f"santacore.commands.{module}"), function)
    return command


if __name__ == "__main__":
    sys.exit(main())
