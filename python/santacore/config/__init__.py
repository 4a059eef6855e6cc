"""santacore's configuration: one TOML file with Santa's key names — the keys and their parsers
(`keys`), the `Config` read from the file (`settings`), the TOML writer (`writer`) — and the
import of Santa's configuration profiles (`profile`).

Imports: `santacore.santad.decisions` (client modes) and `santacore.errors` only."""
