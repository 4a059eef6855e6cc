"""santacore's configuration: one TOML file with Santa's key names (`settings`), and the
import of Santa's configuration profiles (`profile`).

Imports: `santacore.santad.decisions` (client modes) and `santacore.errors` only."""
