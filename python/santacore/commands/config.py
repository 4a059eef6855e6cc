"""`santacore config`: show the configuration in force, or import Santa's own profile."""

from __future__ import annotations

import argparse
import sys

from santacore.commands import EXIT_ERROR, EXIT_OK
from santacore.config.profile import read_profile
from santacore.config.settings import ConfigError, load_config
from santacore.config.writer import render_toml, write_config
from santacore.errors import SantacoreError


def run_show(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as e:
        print(f"santacore config: {e}", file=sys.stderr)
        return EXIT_ERROR
    header = f"santacore configuration from {config.source or 'defaults'}"
    sys.stdout.write(render_toml(config.to_values(), header=header))
    for note in config.unknown_key_notes():
        print(f"note: {note}", file=sys.stderr)
    return EXIT_OK


def run_import(args: argparse.Namespace) -> int:
    try:
        imported = read_profile(args.profile)
    except (SantacoreError, OSError) as e:
        print(f"santacore config import: {e}", file=sys.stderr)
        return EXIT_ERROR
    for key, why in sorted(imported.ignored.items()):
        print(f"not imported: {key}: {why}", file=sys.stderr)
    for note in imported.notes:
        print(f"note: {note}", file=sys.stderr)
    header = f"imported by santacore from {args.profile}"
    if args.output is None:
        sys.stdout.write(render_toml(imported.values, header=header))
        return EXIT_OK
    try:
        write_config(args.output, imported.values, overwrite=args.force, header=header)
    except FileExistsError:
        print(f"santacore config import: {args.output} exists (use --force to replace it)", file=sys.stderr)
        return EXIT_ERROR
    except (SantacoreError, OSError) as e:
        print(f"santacore config import: {e}", file=sys.stderr)
        return EXIT_ERROR
    print(f"Wrote {len(imported.values)} settings to {args.output}")
    return EXIT_OK
