"""`santacore config`: show the configuration in force, or import Santa's own profile."""

from __future__ import annotations

import argparse
import json
import sys

from santacore.commands import EXIT_ERROR, EXIT_OK, config_if_readable, error_text
from santacore.config.profile import read_profile
from santacore.config.settings import CONFIG_ENV
from santacore.config.writer import render_toml, write_config
from santacore.errors import SantacoreError
from santacore.sync.in_force import ConfigInForce, load_config_in_force


def run_show(args: argparse.Namespace) -> int:
    """The configuration in force: the file's settings under those of the last sync, each with its source."""
    try:
        in_force = load_config_in_force(args.config)
    except (SantacoreError, OSError) as e:  # ConfigError for the file, StoreError for the sync state
        print(f"santacore config: {error_text(e, config_if_readable(args.config))}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        json.dump(in_force.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        settings = in_force.settings()
        values = {s.key: s.value for s in settings}
        sources = {s.key: s.source.value for s in settings}
        sys.stdout.write(render_toml(values, header=_show_header(in_force), comments=sources))
    for note in in_force.local.unknown_key_notes():
        print(f"note: {note}", file=sys.stderr)
    return EXIT_OK


def _show_header(in_force: ConfigInForce) -> str:
    local = in_force.local
    file = str(local.source) if local.source else f"none (${CONFIG_ENV} is not set): built-in defaults"
    if in_force.server_attributes:
        server = f"the settings of the last sync, in {local.sync_state_path} (they override the file)"
    else:
        server = "none (no sync has set any)"
    return (
        f"santacore configuration in force\nfile: {file}\nserver: {server}\n"
        "Each key ends with where its value comes from: file, server or default."
    )


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
