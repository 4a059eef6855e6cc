"""Testing aids: a conformant Santa sync server on loopback (`SyncServer`). Nothing at run time imports this.

What each module owns:

* `server` — `SyncServer`: lifecycle, configuration, what was received; `settings` — `ServerSettings`;
* `responder` — how one request is answered (routing, gates, decoding, validation, faults);
* `stages` — what each stage does; `server_state` — the SQLite state; `records` — requests, bundles, replies;
* `handler` — the HTTP plumbing; `replies` — replies in each profile's style; `wire` — body codecs;
* `profiles` — `Quirks` and `PreflightSettings`; `faults` — injected faults; `schemas` — request validation;
* `rule_format` — what a well-formed wire rule is (checks `--rules` files); `cli` — `santacore testing serve`;
* `push` — the push side: a real nats-server on loopback (`NatsBroker`), its JWT credentials, `PushSide` (the
  preflight push fields and a publisher); `push_cli` — `serve --push` and its stdin commands.

May import: the standard library only (and nats-py / nkeys in `push`, when a push side is used), and nothing
of santacore outside `santacore.testing` — above all not the client (`santacore.sync`), so that a client bug
cannot hide behind code both sides share.
"""

from santacore.testing.cli import serve
from santacore.testing.faults import Fault, FaultKind, FaultList
from santacore.testing.profiles import PreflightSettings, Quirks
from santacore.testing.records import RecordedRequest
from santacore.testing.server import SyncServer
from santacore.testing.settings import ServerSettings

__all__ = [
    "Fault",
    "FaultKind",
    "FaultList",
    "PreflightSettings",
    "Quirks",
    "RecordedRequest",
    "ServerSettings",
    "SyncServer",
    "serve",
]
