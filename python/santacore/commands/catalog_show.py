"""`santacore catalog show`: what a catalog holds — counts, signers, unsigned binaries, failures —
as text, JSON, or a one-page HTML report."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys

from santacore.commands import EXIT_ERROR, EXIT_OK, error_text
from santacore.commands.catalog_export import open_catalog, replaced_whole

HTML_ROWS = 10_000


def run(args: argparse.Namespace) -> int:
    from santacore.catalog.report import render_html, render_text, summarise, summary_document

    store = open_catalog(args.db, "show")
    if store is None:
        return EXIT_ERROR
    try:
        with store:
            # The text shows `limit` rows per list; JSON every row; the page at most HTML_ROWS
            # (a person reads it in a browser; past that it says how many more there are).
            limit = None if args.json else HTML_ROWS if args.html else args.limit
            summary = summarise(store, limit=limit)
        if args.html is not None:
            with (
                replaced_whole(args.html, force=True) as temporary,
                open(temporary, "w", encoding="utf-8", errors="replace") as f,
            ):
                f.write(render_html(summary, title=f"santacore catalog: {args.db}"))
    except (OSError, sqlite3.Error) as e:
        print(f"santacore catalog show: {error_text(e)}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        json.dump(summary_document(summary), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(summary, max(args.limit, 0)))
    if args.html is not None:
        print(f"Wrote {args.html}", file=sys.stderr)
    return EXIT_OK
