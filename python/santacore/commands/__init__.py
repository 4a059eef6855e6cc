"""One module per `santacore` command, as santactl has one file per command. Each module's
`run(args) -> int` prints and returns the exit code; `cli.py` holds every command's arguments.

Commands may import every other subpackage; nothing outside `commands/` and `cli.py` imports them."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from santacore.config.settings import Config

EXIT_OK = 0
EXIT_ERROR = 1


def load_config_or_say_why(path: str | None, command: str) -> Config | None:
    """The configuration at `path` (or $SANTACORE_CONFIG); None after printing, on stderr, why it cannot be used."""
    from santacore.config.settings import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as e:
        print(f"santacore {command}: {e}", file=sys.stderr)
        return None
