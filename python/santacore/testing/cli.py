"""CLI of the testing sync server: `santacore testing serve`, its options turned into `ServerSettings`."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any

from santacore.testing.profiles import DEFAULT_MAX_BODY, PROFILES, PreflightSettings
from santacore.testing.server import SyncServer
from santacore.testing.settings import ServerSettings


def _parse_quirk(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        parsed: Any = json.loads(value)
    except ValueError:
        parsed = value
    if isinstance(parsed, list):
        parsed = frozenset(parsed) if name == "allowed_policies" else tuple(parsed)
    return name, parsed


def _load_rules(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    rules = data.get("rules") if isinstance(data, dict) else data
    if not isinstance(rules, list):
        raise ValueError(f'{path}: expected a JSON list of rules or {{"rules": [...]}}')
    return rules


def serve(argv: Sequence[str] | None = None) -> int:
    """Run a SyncServer until SIGINT/SIGTERM; print its base URL on the first line of stdout."""
    parser = argparse.ArgumentParser(
        prog="santacore testing serve", description="Run a conformant Santa sync server for testing (plain HTTP)."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--profile", choices=PROFILES, default="google")
    parser.add_argument("--rules", metavar="FILE", help='JSON: a list of wire rules, or {"rules": [...]}')
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--page-size", type=int, default=None, help="rules per ruledownload page (default: batch size)")
    parser.add_argument("--client-mode", default="MONITOR")
    parser.add_argument("--full-sync-interval", type=int, default=600)
    parser.add_argument("--enable-bundles", action="store_true")
    parser.add_argument("--enable-transitive-rules", action="store_true")
    parser.add_argument("--allowed-path-regex")
    parser.add_argument("--blocked-path-regex")
    parser.add_argument("--sync-type", choices=("NORMAL", "CLEAN", "CLEAN_ALL"))
    parser.add_argument("--state-db", metavar="PATH", help="SQLite file keeping state across restarts")
    parser.add_argument("--require-xsrf", action="store_true")
    parser.add_argument("--xsrf-header", help="custom XSRF header name announced in X-XSRF-TOKEN-HEADER")
    parser.add_argument("--enrollment-secret", help="Zentral: require 'Bearer <secret>' in Zentral-Authorization")
    parser.add_argument("--max-body-size", type=int, default=DEFAULT_MAX_BODY)
    parser.add_argument("--quirk", action="append", type=_parse_quirk, default=[], metavar="NAME=VALUE")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else 2
    try:
        settings = ServerSettings(
            host=args.host,
            port=args.port,
            profile=args.profile,
            quirks=dict(args.quirk),
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
            rules=_load_rules(args.rules) if args.rules else (),
            require_xsrf=args.require_xsrf,
            xsrf_header=args.xsrf_header,
            enrollment_secret=args.enrollment_secret,
            state_db=args.state_db,
            max_body_size=args.max_body_size,
        )
        server = SyncServer(settings).start()
    except (OSError, ValueError, TypeError) as exc:
        print(f"santacore testing serve: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
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
        for previous_signal, handler in previous.items():
            signal.signal(previous_signal, handler)
        server.close()
    return 0
