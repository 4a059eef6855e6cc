"""santad's data: decisions, the event and rule models, the policy, and the two stores in the state directory.

Decisions and client modes (`decisions`), the event model and its codecs (`events`), events built
from files (`event_builders`), rules (`rules`), the policy that decides an execution (`policy`),
events.db (`event_store`, `event_store_schema`), rules.db (`rule_store`), the execution context
(`sessions`), the state directory (`statedir`) and the upload dedup (`upload_backoff`).

Imports: `santacore.identity` (events and identifiers are built from a file's identity),
`santacore.errors`. Never the network (`santacore.sync`), the commands or `santacore.testing`."""
