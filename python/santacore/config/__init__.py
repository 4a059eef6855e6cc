"""santacore's configuration: one TOML file with Santa's key names — the keys and their parsers
(`keys`), the `Config` read from the file (`settings`), the TOML writer (`writer`) — and the import
of Santa's configuration profiles (`profile`). What a sync server sets on top of the file is the
sync's business (`santacore.sync.in_force`).

Imports: `santacore.santad.decisions` (the client-mode vocabulary, a leaf module) and `santacore.errors`."""
