"""CLI of the testing sync server: `santacore testing serve`, its options checked and turned into `ServerSettings`.

Options and the rules file are checked before the server starts: a mistake is one clear message on stderr and exit
status 2, never a traceback. While it runs, the server logs one line per request on stderr."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sqlite3
import sys
import threading
import time
import types
import typing
from collections.abc import Sequence
from dataclasses import fields
from typing import Any, Final

from santacore.testing.profiles import DEFAULT_MAX_BODY, PROFILES, PreflightSettings, Quirks
from santacore.testing.rule_format import rule_problems
from santacore.testing.server import SyncServer
from santacore.testing.settings import ServerSettings

PROG: Final = "santacore testing serve"
EXIT_OK: Final = 0
EXIT_START_FAILED: Final = 1
EXIT_USAGE: Final = 2
CLIENT_MODES: Final = ("MONITOR", "LOCKDOWN", "STANDALONE")
SYNC_TYPES: Final = ("NORMAL", "CLEAN", "CLEAN_ALL")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP token
_MAX_PROBLEMS: Final = 20

EPILOG: Final = """\
The server's base URL is printed on the first line of stdout (point Santa's SyncBaseURL at it); it runs until
Ctrl-C or SIGTERM, logging one line per request on stderr: the stage, the machine ID, the HTTP status and what it
received or served (events received, rules served, the sync type asked for, ...).

Rules file: a JSON list of rules as the server sends them, or {"rules": [...]}, e.g.
  [{"identifier": "<64 hex>", "rule_type": "BINARY", "policy": "BLOCKLIST", "custom_msg": "no"}]
Each rule is checked as Santa would check it: rule_type one of BINARY, CERTIFICATE, TEAMID, SIGNINGID, CDHASH;
a known policy; an identifier that fits its rule type.

Exit status:
  0  stopped by Ctrl-C or SIGTERM
  1  the server could not start (address in use, state database not usable, ...)
  2  invalid option, or a rules file that cannot be read or holds an invalid rule

With --push, commands typed on stdin publish push messages (one per line):
  tag [SUBJECT] [MAX_JITTER]    a SyncRequest on a tag subject (default santa.tag.global; no MAX_JITTER: 180 s)
  host                          a message on santa.host.<device id> (a full sync at once)
  fcm ACTION [TARGET_HOST_ID]   an FCM-style JSON action: full_sync, config_sync, log_sync, rule_sync
  restart                       restart the broker (the client reconnects and syncs within 0–600 s)
  off | on                      stop or resume sending the push fields in preflight
"""


class _UsageError(Exception):
    """A bad option or rules file: the message, printed as is."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _int_at_least(minimum: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def _port(text: str) -> int:
    value: int = _int_at_least(0)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be 0 to 65535, got {value}")
    return value


def _upper_choice(text: str) -> str:
    return text.strip().upper()


def _regex(text: str) -> str:
    try:
        re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a valid regular expression: {exc}") from None
    return text


def _header_name(text: str) -> str:
    if not _HEADER_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a valid HTTP header name")
    return text


def _parse_quirk(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        parsed: Any = json.loads(value)
    except ValueError:
        parsed = value
    if isinstance(parsed, list):
        if any(isinstance(item, list | dict) for item in parsed):
            raise argparse.ArgumentTypeError(f"{name}: a list of plain values expected, got {value}")
        parsed = frozenset(parsed) if name == "allowed_policies" else tuple(parsed)
    return name, parsed


def _check_quirk(name: str, value: Any) -> str | None:
    """Why `value` cannot be quirk `name`, or None."""
    hints = typing.get_type_hints(Quirks)
    if name not in hints:
        known = ", ".join(f.name for f in fields(Quirks))
        return f"unknown quirk {name!r} (known: {known})"
    hint = hints[name]
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    for option in options:
        origin = typing.get_origin(option) or option
        if option is type(None) and value is None:
            return None
        if origin is typing.Literal and value in typing.get_args(option):
            return None
        if option is bool and isinstance(value, bool):
            return None
        if option is str and isinstance(value, str):
            return None
        if origin is tuple and isinstance(value, tuple):
            args = [a for a in typing.get_args(option) if a is not Ellipsis]
            if all(isinstance(v, args[0]) for v in value) and (
                ... in typing.get_args(option) or len(value) == len(args)
            ):
                return None
        if origin is frozenset and isinstance(value, frozenset) and all(isinstance(v, str) for v in value):
            return None
    shown = typing.get_args(hint) if typing.get_origin(hint) is typing.Literal else None
    plain = {bool: "true or false", str: "a string"}
    expected = f"one of {', '.join(map(str, shown))}" if shown else plain.get(hint) or str(hint).replace("typing.", "")
    return f"{name}={json.dumps(value, default=sorted)} does not fit (expected {expected})"


def _load_rules(path: str, policies: frozenset[str] | None, *, check: bool) -> list[Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        raise _UsageError(f"--rules {path}: cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise _UsageError(f"--rules {path}: not UTF-8 text") from None
    except ValueError as exc:
        raise _UsageError(f"--rules {path}: not valid JSON: {exc}") from None
    rules = data.get("rules") if isinstance(data, dict) else data
    if not isinstance(rules, list):
        raise _UsageError(f'--rules {path}: expected a JSON list of rules or {{"rules": [...]}}')
    if check:
        problems = [f"rules[{i}].{p}" for i, rule in enumerate(rules) for p in rule_problems(rule, policies=policies)]
        if problems:
            shown = problems[:_MAX_PROBLEMS]
            if len(problems) > len(shown):
                shown.append(f"... and {len(problems) - len(shown)} more")
            lines = "\n  ".join(shown)
            raise _UsageError(
                f"--rules {path}: {len(problems)} problem(s) in the rules (--allow-invalid-rules serves them "
                f"anyway):\n  {lines}"
            )
    else:  # the server still needs a rule_type and an identifier string to store a rule by
        for i, rule in enumerate(rules):
            if not isinstance(rule, dict) or not isinstance(rule.get("rule_type"), str):
                raise _UsageError(f"--rules {path}: rules[{i}].rule_type: a rule needs a rule_type string")
            if not isinstance(rule.get("identifier", rule.get("sha256")), str):
                raise _UsageError(f"--rules {path}: rules[{i}].identifier: a rule needs an identifier string")
    return rules


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Run a Santa sync server on this machine for testing (plain HTTP, no TLS): it answers "
        "preflight, eventupload, ruledownload and postflight as a real server of the chosen kind would, and serves "
        "the rules you give it.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = parser.add_argument_group("where it listens")
    where.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    where.add_argument("--port", type=_port, default=0, help="port to listen on; 0 picks a free one (default)")
    what = parser.add_argument_group("what kind of server")
    what.add_argument(
        "--profile",
        choices=PROFILES,
        default="google",
        help="which server to behave like: google or northpolesec (a Santa protobuf-JSON server), moroz or "
        "zentral (their wire quirks, URL layout and error replies) (default: google)",
    )
    what.add_argument(
        "--quirk",
        action="append",
        type=_parse_quirk,
        default=[],
        metavar="NAME=VALUE",
        help="override one behaviour of the profile (VALUE is JSON, or a plain string), e.g. paginate=false; "
        "repeatable. Unknown names are refused with the list of known ones",
    )
    what.add_argument(
        "--max-body-size",
        type=_int_at_least(1),
        default=DEFAULT_MAX_BODY,
        metavar="BYTES",
        help=f"largest request body accepted; larger ones get HTTP 413 (default: {DEFAULT_MAX_BODY})",
    )
    what.add_argument(
        "--state-db",
        metavar="PATH",
        help="keep the server's state (rules, machines, received events) in this SQLite file, so it survives a "
        "restart (default: in memory)",
    )
    what.add_argument("-q", "--quiet", action="store_true", help="do not log a line per request on stderr")
    rules = parser.add_argument_group("rules")
    rules.add_argument(
        "--rules",
        metavar="FILE",
        help='rules to serve to every machine: a JSON list of rules, or {"rules": [...]} (see below)',
    )
    rules.add_argument(
        "--allow-invalid-rules",
        action="store_true",
        help="serve the rules file even when rules in it are invalid (to test how a client rejects them)",
    )
    rules.add_argument(
        "--page-size",
        type=_int_at_least(1),
        default=None,
        metavar="N",
        help="rules per ruledownload page (default: the batch size)",
    )
    pre = parser.add_argument_group("what preflight tells the client")
    pre.add_argument(
        "--client-mode",
        type=_upper_choice,
        choices=CLIENT_MODES,
        default="MONITOR",
        help="the mode the client is told to run in: MONITOR, LOCKDOWN or STANDALONE (northpolesec clients only) "
        "(default: MONITOR)",
    )
    pre.add_argument(
        "--sync-type",
        type=_upper_choice,
        choices=SYNC_TYPES,
        help="the sync type asked for at every preflight: NORMAL, CLEAN (replace the client's rules) or CLEAN_ALL "
        "(also drop its local rules) (default: as the profile does)",
    )
    pre.add_argument(
        "--batch-size",
        type=_int_at_least(1),
        default=50,
        metavar="N",
        help="events the client uploads per eventupload request (default: 50)",
    )
    pre.add_argument(
        "--full-sync-interval",
        type=_int_at_least(1),
        default=600,
        metavar="SECONDS",
        help="seconds between the client's full syncs (default: 600)",
    )
    pre.add_argument(
        "--enable-bundles",
        action="store_true",
        help="ask the client to hash bundles and upload their binaries' events",
    )
    pre.add_argument(
        "--enable-transitive-rules",
        action="store_true",
        help="let the client allow what allowlisted compilers write",
    )
    pre.add_argument(
        "--allowed-path-regex",
        type=_regex,
        metavar="REGEX",
        help="paths the client allows without a rule",
    )
    pre.add_argument(
        "--blocked-path-regex",
        type=_regex,
        metavar="REGEX",
        help="paths the client blocks without a rule",
    )
    auth = parser.add_argument_group("authentication")
    auth.add_argument(
        "--require-xsrf",
        action="store_true",
        help="refuse stage requests (HTTP 403) without the XSRF token the /xsrf/ route hands out",
    )
    auth.add_argument(
        "--xsrf-header",
        type=_header_name,
        metavar="NAME",
        help="tell the client to send the XSRF token in this header instead of X-XSRF-TOKEN (the header "
        "checked with --require-xsrf)",
    )
    auth.add_argument(
        "--enrollment-secret",
        metavar="SECRET",
        help="zentral profile: require 'Bearer SECRET' in the Zentral-Authorization header (HTTP 401 without it, "
        "403 when wrong)",
    )
    from santacore.testing.push_cli import add_push_arguments  # push: nats-py only when --push is given

    add_push_arguments(parser, _int_at_least)
    return parser


def _settings(args: argparse.Namespace, log: Any) -> ServerSettings:
    quirks: dict[str, Any] = {}
    for name, value in args.quirk:
        if problem := _check_quirk(name, value):
            raise _UsageError(f"--quirk: {problem}")
        quirks[name] = value
    effective = Quirks.for_profile(args.profile)
    for name, value in quirks.items():
        setattr(effective, name, value)
    if args.require_xsrf and not effective.xsrf_route:
        raise _UsageError(
            f"--require-xsrf: the {args.profile} profile has no /xsrf/ route (use google or northpolesec)"
        )
    if args.enrollment_secret is not None:
        if not effective.enrollment:
            raise _UsageError(f"--enrollment-secret: only the zentral profile enrolls machines, not {args.profile}")
        if not args.enrollment_secret.strip() or any(c.isspace() for c in args.enrollment_secret):
            raise _UsageError("--enrollment-secret: must be non-empty, without spaces")
    if args.state_db is not None:
        parent = os.path.dirname(os.path.abspath(args.state_db))
        if not os.path.isdir(parent):
            raise _UsageError(f"--state-db {args.state_db}: directory {parent} does not exist")
        if os.path.isdir(args.state_db):
            raise _UsageError(f"--state-db {args.state_db}: is a directory")
    rules = (
        _load_rules(args.rules, effective.allowed_policies, check=not args.allow_invalid_rules) if args.rules else []
    )
    return ServerSettings(
        host=args.host,
        port=args.port,
        profile=args.profile,
        quirks=quirks,
        preflight=PreflightSettings(
            client_mode=args.client_mode,
            batch_size=args.batch_size,
            full_sync_interval=args.full_sync_interval,
            enable_bundles=args.enable_bundles,
            enable_transitive_rules=args.enable_transitive_rules,
            allowed_path_regex=args.allowed_path_regex,
            blocked_path_regex=args.blocked_path_regex,
            sync_type=args.sync_type,
            page_size=args.page_size,
        ),
        rules=rules,
        require_xsrf=args.require_xsrf,
        xsrf_header=args.xsrf_header,
        enrollment_secret=args.enrollment_secret,
        state_db=args.state_db,
        max_body_size=args.max_body_size,
        request_log=log,
    )


def serve(argv: Sequence[str] | None = None) -> int:
    """Run a SyncServer until SIGINT/SIGTERM; print its base URL on the first line of stdout. Exit status: 0
    stopped, 1 could not start, 2 bad options or rules file."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    log_lock = threading.Lock()

    def log(line: str) -> None:
        with log_lock:
            try:
                print(f"{time.strftime('%H:%M:%S')} {line}", file=sys.stderr, flush=True)
            except (OSError, ValueError):
                pass

    try:
        settings = _settings(args, None if args.quiet else log)
    except _UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:  # whatever ServerSettings refuses
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        server = SyncServer(settings)
    except (sqlite3.Error, OSError) as exc:
        print(f"{PROG}: error: --state-db {args.state_db}: cannot use it: {exc}", file=sys.stderr)
        return EXIT_START_FAILED
    except ValueError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        server.start()
    except OSError as exc:
        server.close()
        print(f"{PROG}: error: cannot listen on {args.host} port {args.port}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_START_FAILED
    stop = threading.Event()
    broker = None
    if args.push:
        from santacore.testing.push_cli import run_commands, start_push

        try:
            broker, server.push = start_push(args, args.host)
        except (RuntimeError, OSError, ImportError) as exc:
            server.close()
            print(f"{PROG}: error: --push: {exc}", file=sys.stderr)
            return EXIT_START_FAILED
        log(f"push: nats-server on {broker.url}; type tag, host, fcm ACTION, restart, off or on")
        run_commands(broker, server.push, stop, log)

    def _on_signal(signum: int, frame: types.FrameType | None) -> None:
        stop.set()

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, _on_signal)
    print(server.base_url, flush=True)
    print(f"santacore testing server ({server.profile}) on {server.base_url}; Ctrl-C to stop", file=sys.stderr)
    try:
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.close()  # a second Ctrl-C while it stops only sets `stop` again
        if broker is not None:
            broker.close()
        for previous_signal, handler in previous.items():
            signal.signal(previous_signal, handler)
    for trace in server.errors:  # unexpected exceptions: one line each, the details are for the Python API
        last = trace.strip().splitlines()[-1] if trace.strip() else "unknown error"
        print(f"{PROG}: internal error while serving: {last}", file=sys.stderr)
    return EXIT_OK
