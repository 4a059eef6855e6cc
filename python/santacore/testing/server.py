"""A conformant Santa sync server on loopback, for tests and for trying santacore without a server.

An independent implementation of the *server* half of the protocol (spec §2–§4, §9): it imports
nothing from `santacore.sync`, so a client bug cannot hide behind a helper both sides share.

* Profiles give the wire behaviour of a protobuf-JSON server for [G] (`google`) or [N]
  (`northpolesec`), of Moroz (§9.2) and of Zentral (§9.4). Every behaviour that differs is a field of
  `Quirks`, so a test can toggle one quirk without taking the whole profile.
* `faults` injects transport and body faults (status, delay, dropped connection, truncated or
  oversized body, malformed JSON, wrong JSON types, anti-XSSI prefix, compressed response); each fires
  a given number of times, then clears.
* State (rules, machines, bundles, received preflights/events/postflights) lives in SQLite — in memory
  by default, in a file with `state_db` so it survives a restart. `requests` (every request as
  received) is kept in memory only.

A testing aid, not a production server: plain HTTP, no TLS, no client certificates.

This module holds `SyncServer` (lifecycle, configuration, inspection, routing, decoding, replies); the stage
handlers, faults, profiles, schemas, state, HTTP plumbing and CLI live in sibling modules and are re-exported here.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import urllib.parse
import uuid
import weakref
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import fields, replace
from typing import Any

from santacore.testing.cli import serve
from santacore.testing.faults import FAULT_KINDS as FAULT_KINDS
from santacore.testing.faults import Fault, FaultList
from santacore.testing.faults import FaultKind as FaultKind
from santacore.testing.handler import _HTTPServer
from santacore.testing.profiles import CLEAN_TYPES as CLEAN_TYPES
from santacore.testing.profiles import DEFAULT_MAX_BODY as DEFAULT_MAX_BODY
from santacore.testing.profiles import MOROZ_POLICIES as MOROZ_POLICIES
from santacore.testing.profiles import PROFILES as PROFILES
from santacore.testing.profiles import STAGES as STAGES
from santacore.testing.profiles import XSRF_NAME_HEADER as XSRF_NAME_HEADER
from santacore.testing.profiles import XSRF_STAGE as XSRF_STAGE
from santacore.testing.profiles import XSRF_TOKEN_HEADER as XSRF_TOKEN_HEADER
from santacore.testing.profiles import XSSI_PREFIX as XSSI_PREFIX
from santacore.testing.profiles import XSSI_SHORT_PREFIX as XSSI_SHORT_PREFIX
from santacore.testing.profiles import ZENTRAL_EMPTY_REGEX as ZENTRAL_EMPTY_REGEX
from santacore.testing.profiles import Profile as Profile
from santacore.testing.profiles import Quirks, Settings
from santacore.testing.records import Bundle as Bundle
from santacore.testing.records import RecordedRequest
from santacore.testing.records import _Reply as _Reply
from santacore.testing.schemas import _GO_SCHEMAS, _PROTO_SCHEMAS, _go_error, _proto_error, _reject_constant
from santacore.testing.server_state import _State
from santacore.testing.stages import _Stages
from santacore.testing.wire import _encode_json, _inflate, _rule_key, _TooLarge

# Imports written `X as X` are re-exports: every name importable from here before the split still is.
__all__ = ["Fault", "FaultList", "Quirks", "RecordedRequest", "Settings", "SyncServer", "serve"]


class SyncServer(_Stages):
    """A Santa sync server on loopback. Use as a context manager, or `start()`/`stop()`.

    >>> with SyncServer(profile="google", rules=[{"identifier": "ab" * 32, "rule_type": "BINARY",
    ...                 "policy": "BLOCKLIST"}]) as server:       # doctest: +SKIP
    ...     sync_base_url = server.base_url
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        profile: Profile = "google",
        batch_size: int = 50,
        client_mode: str | None = "MONITOR",
        rules: Sequence[Mapping[str, Any]] = (),
        page_size: int | None = None,
        full_sync_interval: int = 600,
        enable_bundles: bool = False,
        enable_transitive_rules: bool = False,
        allowed_path_regex: str | None = None,
        blocked_path_regex: str | None = None,
        sync_type: str | None = None,
        preflight_extra: Mapping[str, Any] | None = None,
        require_xsrf: bool = False,
        xsrf_header: str | None = None,
        enrollment_secret: str | None = None,
        state_db: str | os.PathLike[str] | None = None,
        max_body_size: int = DEFAULT_MAX_BODY,
        quirks: Mapping[str, Any] | Quirks | None = None,
    ) -> None:
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r} (one of {', '.join(PROFILES)})")
        self._profile: str = profile
        self.quirks = quirks if isinstance(quirks, Quirks) else Quirks.for_profile(profile)
        if isinstance(quirks, Mapping):
            unknown = set(quirks) - {f.name for f in fields(Quirks)}
            if unknown:
                raise ValueError(f"unknown quirks: {', '.join(sorted(unknown))}")
            self.quirks = replace(self.quirks, **quirks)
        self.settings = Settings(
            client_mode=client_mode,
            batch_size=batch_size,
            full_sync_interval=full_sync_interval,
            enable_bundles=enable_bundles,
            enable_transitive_rules=enable_transitive_rules,
            allowed_path_regex=allowed_path_regex,
            blocked_path_regex=blocked_path_regex,
            sync_type=sync_type,
            page_size=page_size,
            preflight_extra=dict(preflight_extra or {}),
        )
        self.require_xsrf = require_xsrf
        self.xsrf_header = xsrf_header
        self.enrollment_secret = enrollment_secret
        self.max_body_size = max_body_size
        self.faults = FaultList()
        self.errors: list[str] = []  # tracebacks of unexpected handler exceptions (a test should see none)
        self._host = host
        self._port = port
        self._lock = threading.RLock()
        self._requests: list[RecordedRequest] = []
        self._cursors: dict[str, tuple[str, list[dict[str, Any]], int]] = {}
        self._xsrf_tokens: dict[str, str] = {}
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._state = _State(None if state_db is None else str(state_db))
        self._finalizer = weakref.finalize(self, self._state.close)
        if rules:
            self.add_rules(rules)

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> SyncServer:
        if self._httpd is not None:
            raise RuntimeError("server already running")
        self._stopping.clear()
        self._httpd = _HTTPServer((self._host, self._port), self)
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
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            connections = list(self._connections)
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
        return self._profile

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
            key = _rule_key({"identifier": identifier, "rule_type": rule_type})
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
            return self._desired_rules(self._machine_key(machine_id))

    def set_sync_type(self, sync_type: str | None, *, machine_id: str | None = None) -> None:
        """Without machine_id: answer every preflight with `sync_type` (None: per profile). With one:
        ask that machine until a postflight confirms (§1.6; Zentral and [N] read its `syncType`)."""
        with self._lock:
            if machine_id is None:
                self.settings.sync_type = sync_type
                return
            key = self._machine_key(machine_id)
            state = self._state.machine(key)
            state["pending_sync_type"] = sync_type
            self._state.save_machine(key, state)

    def add_fault(self, kind: FaultKind, **options: Any) -> Fault:
        return self.faults.add(kind, **options)

    # -- what was received --------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_for(self, stage: str, machine_id: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if r.stage == stage and machine_id in (None, r.machine_id)]

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

    # -- request handling ---------------------------------------------------------------------------

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _record(self, rec: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(rec)

    def _route(self, path: str) -> tuple[str, str] | None:
        prefix = self.quirks.path_prefix.rstrip("/")
        if prefix:
            if not path.startswith(prefix + "/"):
                return None
            path = path[len(prefix) :]
        parts = path.split("/")
        if len(parts) != 3 or parts[0] or parts[1] not in (*STAGES, XSRF_STAGE) or not parts[2]:
            return None
        return parts[1], urllib.parse.unquote(parts[2])

    def _scope(self, machine_id: str | None) -> str:
        return "" if machine_id is None else "m:" + self._machine_key(machine_id)

    def _machine_key(self, machine_id: str) -> str:
        if self.quirks.uuid_machine_ids:
            try:
                return str(uuid.UUID(machine_id))
            except ValueError:
                return machine_id
        return machine_id

    def _dispatch(self, rec: RecordedRequest) -> _Reply:
        stage, raw_id = rec.stage or "", rec.machine_id or ""
        q = self.quirks
        if q.enrollment and (denied := self._enrollment_gate(rec)):
            return denied
        machine_id = self._machine_key(raw_id)
        if stage == XSRF_STAGE:
            return self._xsrf(machine_id)
        if self.require_xsrf:
            with self._lock:
                expected = self._xsrf_tokens.get(machine_id)
            if expected is None or rec.header(self.xsrf_header or XSRF_TOKEN_HEADER) != expected:
                return self._error(403, "missing or invalid XSRF token")
        if stage == "ruledownload" and not q.read_ruledownload_body:
            data: Any = {}
        else:
            decoded = self._decode(rec)
            if isinstance(decoded, _Reply):
                return decoded
            data = decoded
        rec.data = data
        if q.enrollment and stage != "preflight":
            with self._lock:
                if not self._state.machine(machine_id).get("enrolled"):
                    return self._error(403, "Machine not enrolled")  # §9.4
        if problem := self._validate(stage, data):
            return problem
        with self._lock:
            if stage == "preflight":
                return self._preflight(machine_id, data)
            if stage == "eventupload":
                return self._eventupload(machine_id, data)
            if stage == "ruledownload":
                return self._ruledownload(machine_id, data)
            return self._postflight(machine_id, data)

    def _enrollment_gate(self, rec: RecordedRequest) -> _Reply | None:
        if self.enrollment_secret is not None:
            scheme, _, secret = (rec.header(self.quirks.enrollment_header) or "").strip().partition(" ")
            if scheme != "Bearer" or not secret.strip():
                return self._error(401, "Unauthorized")
            if secret.strip() != self.enrollment_secret:
                return self._error(403, "Wrong enrollment secret")
        if self.quirks.uuid_machine_ids:
            try:
                uuid.UUID(rec.machine_id or "")
            except ValueError:
                return self._error(403, "Invalid machine id")
        return None

    def _xsrf(self, machine_id: str) -> _Reply:
        with self._lock:
            token = self._xsrf_tokens.setdefault(machine_id, secrets.token_urlsafe(24))
        headers = {XSRF_TOKEN_HEADER: token}
        if self.xsrf_header:
            headers[XSRF_NAME_HEADER] = self.xsrf_header
        return _Reply(200, body=b"", headers=headers)

    def _decode(self, rec: RecordedRequest) -> Any:
        """The request's JSON value, or an error reply, as the profile's server would decode it."""
        mode = self.quirks.request_decoding
        encoding = (rec.header("Content-Encoding") or "").strip().lower()
        limit = self.max_body_size * 8
        raw = rec.raw_body
        try:
            if mode == "zlib":  # Moroz: zlib.NewReader(r.Body) whatever the headers say (§9.2)
                body = _inflate(raw, 15, limit, strict=False)
            elif mode == "zentral":  # §9.4
                body = _inflate(raw, 15, limit) if encoding in ("deflate", "zlib") else raw
            elif "protobuf" in (rec.header("Content-Type") or ""):
                return self._error(415, "binary protobuf (SyncEnableProtoTransfer) is not supported")
            elif encoding in ("", "identity"):
                body = raw
            elif encoding == "deflate":  # §2.2: a zlib (RFC 1950) stream, not raw deflate
                body = _inflate(raw, 15, limit)
            elif encoding in ("gzip", "x-gzip"):
                body = _inflate(raw, 31, limit)
            else:
                return self._error(415, f"unsupported Content-Encoding {encoding!r}")
        except _TooLarge as exc:
            return self._error(413, str(exc))
        except zlib.error as exc:
            if mode == "zlib" and (len(raw) < 2 or raw[0] & 0x0F != 8 or (raw[0] << 8 | raw[1]) % 31):
                return self._error(500, "zlib: invalid header")  # Go's compress/zlib wording
            return self._error(400 if mode == "http" else 500, f"zlib: {exc}")
        rec.body = body
        try:
            text = body.decode("utf-8")
            if mode == "zlib":  # json.NewDecoder(zr).Decode: the first JSON value; empty → EOF
                if not text.strip():
                    return self._error(500, "EOF")
                return json.JSONDecoder(parse_constant=_reject_constant).raw_decode(text.lstrip())[0]
            if mode == "zentral" and not text:
                return self._error(500, "empty request body")  # request_data is None → AttributeError
            if not text:
                return {}  # protobuf: an empty body is all defaults
            return json.loads(text, parse_constant=_reject_constant)
        except ValueError as exc:
            return self._error(500 if mode == "zlib" else 400, f"invalid JSON: {exc}")

    def _validate(self, stage: str, data: Any) -> _Reply | None:
        q = self.quirks
        if q.validation == "proto" and (problem := _proto_error(_PROTO_SCHEMAS[stage], data, "")):
            return self._error(400, problem)
        if q.validation == "go" and stage in _GO_SCHEMAS and (problem := _go_error(_GO_SCHEMAS[stage], data, "", "")):
            return self._error(500, problem)
        if q.zentral_checks:
            if not isinstance(data, dict):
                return self._error(500, "request body is not a JSON object")
            if stage == "preflight":
                if "santa_version" not in data:
                    return self._error(500, "KeyError: 'santa_version'")
                try:
                    [int(part) for part in str(data["os_version"]).split(".")]
                except (KeyError, ValueError):
                    return self._error(500, f"invalid os_version {data.get('os_version')!r}")
            if stage == "eventupload":
                for event in data.get("events") or []:
                    if not isinstance(event, dict) or "file_sha256" not in event:
                        return self._error(500, "KeyError: 'file_sha256'")
                    decision = event.get("decision")
                    if isinstance(decision, int | float) and not isinstance(decision, bool):
                        return self._error(500, f"unknown decision {decision!r}")
        return None

    # -- replies ------------------------------------------------------------------------------------

    def _render(self, reply: _Reply) -> tuple[bytes, dict[str, str]]:
        headers = dict(reply.headers)
        if reply.body is not None:
            if reply.content_type:
                headers["Content-Type"] = reply.content_type
            return reply.body, headers
        body, content_type = _encode_json(reply.obj if reply.obj is not None else {}, self.quirks.response_style)
        headers["Content-Type"] = reply.content_type or content_type
        return body, headers

    def _error(self, status: int, message: str) -> _Reply:
        style = self.quirks.response_style
        if style == "go":  # go-kit errorEncoder; decode errors carry Go's sniffed text/plain type (§9.2)
            body, _ = _encode_json({"error": message}, "go")
            return _Reply(status, body=body, content_type="text/plain; charset=utf-8", error=message)
        if style == "django":  # §9.4: HTML error pages, except 401
            if status == 401:
                return _Reply(401, {"detail": "Unauthorized"}, error=message)
            title = {400: "Bad Request (400)", 403: "403 Forbidden", 404: "Not Found", 413: "Request Entity Too Large"}
            heading = title.get(status, f"Server Error ({status})")
            html = f'<!doctype html>\n<html lang="en">\n<head>\n  <title>{heading}</title>\n</head>\n<body>\n'
            html += f"  <h1>{heading}</h1><p>{message}</p>\n</body>\n</html>\n"
            return _Reply(status, body=html.encode(), content_type="text/html; charset=utf-8", error=message)
        return _Reply(status, {"error": message}, error=message)

    def _not_found(self) -> _Reply:
        if self.quirks.response_style == "go":  # gorilla/mux → http.NotFound
            return _Reply(404, body=b"404 page not found\n", content_type="text/plain; charset=utf-8")
        return self._error(404, "not found")

    def _method_not_allowed(self) -> _Reply:
        reply = _Reply(405, body=b"") if self.quirks.response_style == "go" else self._error(405, "use POST")
        reply.headers["Allow"] = "POST"
        return reply

    def _fault_reply(self, fault: Fault) -> _Reply:
        headers = dict(fault.headers)
        if 300 <= fault.status < 400:
            headers.setdefault("Location", self.base_url + "redirected")
        if fault.body is not None:
            return _Reply(fault.status, body=fault.body, headers=headers, error="injected fault")
        reply = self._error(fault.status, f"injected fault: HTTP {fault.status}")
        reply.headers.update(headers)
        return reply
