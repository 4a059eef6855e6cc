"""`santacore doctor` (santactl doctor's sync check): reachability, TLS chain, authentication, XSRF, and which
compression and body format the sync server accepts, one line each (`--json`: one document)."""

from __future__ import annotations

import argparse
import json
import sys

from santacore.commands import EXIT_ERROR, EXIT_OK, load_config_or_say_why
from santacore.errors import SantacoreError
from santacore.sync.doctor import diagnose
from santacore.sync.host import resolve_machine_id

_MARK = {"ok": "ok", "problem": "PROBLEM", "info": "note"}


def run(args: argparse.Namespace) -> int:
    config = load_config_or_say_why(args.config, "doctor")
    if config is None:
        return EXIT_ERROR
    try:
        report = diagnose(config, machine_id=resolve_machine_id(config), extra_probes=not args.santa_only)
    except (SantacoreError, OSError) as e:
        print(f"santacore doctor: {e}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        json.dump(report.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(f"Sync server: {report.server or '(none)'}")
        for finding in report.findings:
            print(f"{_MARK[finding.status]:<8}{finding.check}: {finding.text}")
    return EXIT_OK if report.ok else EXIT_ERROR
