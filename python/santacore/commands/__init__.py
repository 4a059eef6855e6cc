"""One module per `santacore` command, as santactl has one file per command. Each module's
`run(args) -> int` prints and returns the exit code; `cli.py` holds every command's arguments."""

EXIT_OK = 0
EXIT_ERROR = 1
