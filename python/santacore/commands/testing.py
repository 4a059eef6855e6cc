"""`santacore testing serve`: the conformant sync server on loopback (santacore.testing)."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from santacore.testing.cli import serve  # a testing aid: imported only when asked for

    return serve(list(args.serve_args))
