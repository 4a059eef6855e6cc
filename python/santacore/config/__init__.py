"""santacore's configuration: one TOML file with Santa's key names — the keys and their parsers
(`keys`), the `Config` read from the file (`settings`), the TOML writer (`writer`) — the import
of Santa's configuration profiles (`profile`), and the configuration in force after a sync
(`in_force`: the file under the server's settings, each value with its source).

Imports: `santacore.santad.decisions` (client modes) and `santacore.errors`; `in_force` also reads
the sync state through `santacore.sync.state`'s public functions."""
