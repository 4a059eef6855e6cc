"""santad's data: decisions and client modes, the event and rule models, the policy that
decides an execution, and the two stores (events.db, rules.db) in the state directory.

Imports: `santacore.identity` (events and identifiers are built from a file's identity),
`santacore.errors`. Never the network (`santacore.sync`), the commands or `santacore.testing`."""
