"""`SyncServer`: a conformant Santa sync server on loopback — lifecycle, configuration, what it received.

For tests, and for trying santacore without a server. An independent implementation of the *server* half of the
protocol (spec §2–§4, §9): nothing in `santacore.testing` imports `santacore.sync`, so a client bug cannot hide
behind a helper both sides share.

* Profiles give the wire behaviour of a protobuf-JSON server for [G] (`google`) or [N]
  (`northpolesec`), of Moroz (§9.2) and of Zentral (§9.4). Every behaviour that differs is a field of
  `Quirks`, so a test can toggle one quirk without taking the whole profile.
* `faults` injects transport and body faults (status, delay, dropped connection, truncated or
  oversized body, malformed JSON, wrong JSON types, anti-XSSI prefix, compressed response); each fires
  a given number of times, then clears.
* State (rules, machines, bundles, received preflights/events/postflights) lives in SQLite — in memory
  by default, in a file with `state_db` so it survives a restart. `requests` (every request as
  received) is kept in memory only.

A testing aid, not a production server: plain HTTP, no TLS, no client certificates. How a request is answered is
`santacore.testing.responder`; the HTTP plumbing is `santacore.testing.handler`.
"""

from __future__ import annotations

import socket
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from santacore.testing.faults import Fault, FaultKind, FaultList
from santacore.testing.handler import SyncHTTPServer
from santacore.testing.profiles import PreflightSettings
from santacore.testing.records import Bundle, RecordedRequest
from santacore.testing.responder import Responder, machine_key
from santacore.testing.server_state import ServerState
from santacore.testing.settings import ServerSettings
from santacore.testing.stages import Stages
from santacore.testing.wire import rule_key

if TYPE_CHECKING:
    from santacore.testing.push import PushSide

__all__ = ["SyncServer"]


class SyncServer:
    """A Santa sync server on loopback. Use as a context manager, or `start()`/`stop()`.

    `SyncServer(settings)` with a `ServerSettings`, and/or keyword overrides of its fields (`profile="moroz"`) or
    of its `PreflightSettings` (`batch_size=2`). `preflight` and `quirks` may be changed while it runs.

    >>> with SyncServer(profile="google", rules=[{"identifier": "ab" * 32, "rule_type": "BINARY",
    ...                 "policy": "BLOCKLIST"}]) as server:       # doctest: +SKIP
    ...     sync_base_url = server.base_url
    """

    def __init__(self, settings: ServerSettings | None = None, /, **overrides: Any) -> None:
        self.settings = (settings or ServerSettings()).with_overrides(**overrides)
        self.quirks = self.settings.make_quirks()
        self.preflight: PreflightSettings = self.settings.make_preflight()
        self.faults = FaultList()
        self._host = self.settings.host
        self._port = self.settings.port
        self._lock = threading.RLock()
        self._state = ServerState(None if self.settings.state_db is None else str(self.settings.state_db))
        self._finalizer = weakref.finalize(self, self._state.close)
        self._stages = Stages(self._state, self.quirks, self.preflight, self.settings.new_cursor)
        self._responder = Responder(
            self.settings,
            quirks=self.quirks,
            state=self._state,
            stages=self._stages,
            faults=self.faults,
            lock=self._lock,
            base_url=lambda: self.base_url,
        )
        self._httpd: SyncHTTPServer | None = None
        self._thread: threading.Thread | None = None
        if self.settings.rules:
            self.add_rules(self.settings.rules)

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> SyncServer:
        if self._httpd is not None:
            raise RuntimeError("server already running")
        self._responder.stopping.clear()
        self._httpd = SyncHTTPServer((self._host, self._port), self._responder)
        self._port = self._httpd.server_address[1]  # a restart reuses the port, so base_url stays valid
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="santacore-sync-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._responder.stopping.set()
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            connections = list(self._responder.connections)
        for conn in connections:  # end idle keep-alive connections, so their threads finish
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def close(self) -> None:
        """Stop and release the state database."""
        self.stop()
        self._finalizer()

    def __enter__(self) -> SyncServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def profile(self) -> str:
        return self.settings.profile

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        """The SyncBaseURL a client should use (with Moroz's /v1/santa/ prefix under that profile)."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}{self.quirks.path_prefix.rstrip('/')}/"

    def url(self, stage: str, machine_id: str) -> str:
        return f"{self.base_url}{stage}/{machine_id}"

    # -- configuration ----------------------------------------------------------------------------

    def add_rules(self, rules: Sequence[Mapping[str, Any]], *, machine_id: str | None = None) -> None:
        """Add or replace (by identifier and rule_type) wire-format rules, for all machines or one."""
        for rule in rules:
            if not isinstance(rule, Mapping) or not isinstance(rule.get("rule_type"), str):
                raise ValueError(f"a rule needs a rule_type string: {rule!r}")
            if not isinstance(rule.get("identifier", rule.get("sha256")), str):
                raise ValueError(f"a rule needs an identifier string: {rule!r}")
            allowed = self.quirks.allowed_policies
            if allowed is not None and rule.get("policy") not in allowed:
                raise ValueError(f"policy {rule.get('policy')!r} is not served by the {self.profile} profile")
        with self._lock:
            self._state.upsert_rules(self._scope(machine_id), rules)

    def remove_rule(self, identifier: str, rule_type: str, *, machine_id: str | None = None) -> bool:
        """Delete a rule from the server's set (Zentral then sends REMOVE to machines holding it)."""
        with self._lock:
            key = rule_key({"identifier": identifier, "rule_type": rule_type})
            return self._state.delete_rules(self._scope(machine_id), key) > 0

    def clear_rules(self, *, machine_id: str | None = None) -> None:
        with self._lock:
            self._state.delete_rules(self._scope(machine_id), None)

    @property
    def rules(self) -> list[dict[str, Any]]:
        """The rules served to every machine."""
        with self._lock:
            return self._state.rules("")

    def rules_for(self, machine_id: str) -> list[dict[str, Any]]:
        """Everything one machine is served: the global rules, then its own (which override)."""
        with self._lock:
            return self._stages.desired_rules(machine_key(machine_id, self.quirks))

    def set_sync_type(self, sync_type: str | None, *, machine_id: str | None = None) -> None:
        """Without machine_id: answer every preflight with `sync_type` (None: per profile). With one:
        ask that machine until a postflight confirms (§1.6; Zentral and [N] read its `syncType`)."""
        with self._lock:
            if machine_id is None:
                self.preflight.sync_type = sync_type
                return
            key = machine_key(machine_id, self.quirks)
            state = self._state.machine(key)
            state["pending_sync_type"] = sync_type
            self._state.save_machine(key, state)

    @property
    def push(self) -> PushSide | None:
        """The push side (`santacore.testing.push.PushSide`): what preflight hands out about push, and the
        publisher of tag/host/FCM-style messages. None: preflight says nothing about push."""
        side: PushSide | None = self.preflight.push
        return side

    @push.setter
    def push(self, side: PushSide | None) -> None:
        with self._lock:
            self.preflight.push = side

    def add_fault(self, kind: FaultKind, **options: Any) -> Fault:
        return self.faults.add(kind, **options)

    def _scope(self, machine_id: str | None) -> str:
        return "" if machine_id is None else "m:" + machine_key(machine_id, self.quirks)

    # -- what was received --------------------------------------------------------------------------

    @property
    def errors(self) -> list[str]:
        """Tracebacks of unexpected exceptions while answering (a test should see none)."""
        return self._responder.errors

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._responder.requests)

    def requests_for(self, stage: str, machine_id: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if r.stage == stage and machine_id in (None, r.machine_id)]

    def answers(self, stage: str, machine_id: str | None = None) -> list[Any]:
        """The JSON values of the 200 answers to `stage`, in order (as the stage built them, before any fault)."""
        return [r.answer for r in self.requests_for(stage, machine_id) if r.status == 200]

    @property
    def events(self) -> dict[str, list[dict[str, Any]]]:
        """Uploaded events per machine, in arrival order."""
        with self._lock:
            return self._state.received("event")

    @property
    def preflights(self) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            return self._state.received("preflight")

    @property
    def postflights(self) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            return self._state.received("postflight")

    @property
    def bundles(self) -> dict[str, Bundle]:
        with self._lock:
            return self._state.bundles()

    @property
    def machines(self) -> dict[str, dict[str, Any]]:
        """Per-machine server state: enrolled, pending_sync_type, session, committed rules (Zentral)."""
        with self._lock:
            return self._state.machines()
