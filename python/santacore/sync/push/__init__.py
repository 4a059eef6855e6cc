"""Push notifications of the sync service (addendum §1): a server tells the client to sync now.

What each module owns:

* `settings` — `PushSettings`, read from a decoded preflight answer; the server allowlist check;
* `messages` — subjects, payloads and delays: what a message means (§1.4, §1.7), the retry backoff (§1.5);
* `client` — the `PushClient` / `PushDelegate` interface the scheduler uses;
* `nats_client` — `NatsPushClient`, the NATS implementation (nats-py, the `push` extra, loaded only here).

May import: the standard library, `santacore.sync.push.*`; nats-py only in `nats_client`, inside the code that
connects. The scheduler (`santacore.sync.scheduler`) owns the timers the delegate calls re-arm.
"""
