"""One module per `santacore` command, as santactl has one file per command. Each module's
`run(args) -> int` prints and returns the exit code; `cli.py` holds every command's arguments.

Commands may import every other subpackage; nothing outside `commands/` and `cli.py` imports them."""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: start-up stays cheap
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


def error_text(e: BaseException, config: Config | None = None) -> str:
    """What went wrong, for a person: an OSError as `path: reason` (the errno's own words, so a
    symlink loop says so), and one about the state directory naming the `StateDirectory` key."""
    if not isinstance(e, OSError) or e.filename is None or not e.strerror:
        return str(e)
    text = f"{os.fsdecode(e.filename)}: {e.strerror}"
    if config is not None:
        state = os.path.abspath(config.state_directory)
        where = os.path.abspath(os.fsdecode(e.filename))
        if os.path.commonpath([state, where]) in (state, where):  # one is the other or inside it
            return f"StateDirectory {config.state_directory} cannot be used: {text}"
    return text


def config_if_readable(path: str | None) -> Config | None:
    """The configuration at `path`, or None when it cannot be read: for naming StateDirectory in
    an error that came before the configuration in force was built."""
    from santacore.config.settings import ConfigError, load_config

    try:
        return load_config(path)
    except (ConfigError, OSError):
        return None
