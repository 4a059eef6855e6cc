"""santasyncservice: the sync client (spec §1–§5, §9).

What each module owns:

* `context` — `SyncContext` and `open_sync_context`, the one builder of it from a Config;
* `stages` — one full sync: preflight, eventupload, ruledownload, postflight, and the outcome (`SyncResult`);
* `uploads` — santad's immediate uploads outside a full sync (dedup, one-event upload, bundle round trip);
* `scheduler` — `SyncDaemon`: the full-sync and rule-sync timers, the sync queue, the reachability monitor;
  `daemon_transport` — its view of the transport;
* `rule_sync` — a rule-download-only sync (addendum §2);
* `push/` — push notifications (addendum §1): settings from preflight, message semantics, the client interface,
  the NATS client, and `PushService` (the daemon's push lifecycle and §1.8 interval);
* `lock` — the per-state-directory sync lock; `reachability` — the server reachability probe;
* `state` — what a sync leaves behind (sync-state.json) and the effective configuration;
* `in_force` — the configuration in force: the file under the last sync's settings, each value's source;
* `host` — the machine ID, the host facts and `santa_version`;
* `protocol` — request bodies and the protocol's constants; `responses` — parsed answers;
* `wire`, `pbjson`, `legacy_json` — the JSON encoder and the protobuf-JSON / [G-JSON] readers; `binary` — binary
  protobuf bodies (SyncEnableProtoTransfer); both use the generated `santacore.syncv1` classes;
* `transport` — `Transport`, one stage request with its attempts; its parts: `settings` (`TransportSettings`),
  `retry`, `request`, `response`, `failures`, `xsrf`, `tls`.

May import: the standard library, httpx (only `transport`, `request`, `response`, `failures`, `xsrf`), protobuf
and `santacore.syncv1` (inside the functions that encode or parse a body), nats-py (only `push.nats_client`, when a
preflight configures push),
cryptography (only `tls`, for PKCS#12, when asked), `santacore._core`, `santacore.errors`, `santacore.config`,
`santacore.santad` and `santacore.identity.bundle`. Never `santacore.commands`, `santacore.testing`, or the
LIEF-backed `santacore.identity` modules (fileinfo, macho, codesign, cms) at module level.
"""
