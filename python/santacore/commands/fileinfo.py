"""`santacore fileinfo` (santactl fileinfo): a file's identity, verified."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from santacore.commands import EXIT_ERROR, EXIT_OK
from santacore.errors import SantacoreError
from santacore.identity import report
from santacore.identity.fileinfo import FileInfoError, file_info


def run(args: argparse.Namespace) -> int:
    documents: list[dict[str, Any]] = []
    failed = False
    for path in args.paths:
        try:
            info = file_info(path, host=args.host, arch=args.arch)
        except (FileInfoError, OSError, SantacoreError) as e:
            print(str(e) if isinstance(e, FileInfoError) else f"{path}: {e}", file=sys.stderr)
            failed = True
            continue
        if args.json:
            documents.append(report.json_document(info))
        else:
            sys.stdout.write(report.render_text(info, args.key or report.KEYS))
    if args.json:
        json.dump(documents, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return EXIT_ERROR if failed else EXIT_OK
