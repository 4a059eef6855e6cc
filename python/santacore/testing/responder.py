"""How the testing sync server answers one request: route, gates, decoding, validation, stage, faults.

The HTTP handler's `Backend`."""

from __future__ import annotations

import json
import secrets
import socket
import threading
import traceback
import urllib.parse
import uuid
import zlib
from collections.abc import Callable
from typing import Any

from santacore.testing.faults import POST_FAULTS, PRE_FAULTS, Fault, FaultList
from santacore.testing.profiles import STAGES, XSRF_NAME_HEADER, XSRF_STAGE, XSRF_TOKEN_HEADER, Quirks
from santacore.testing.proto import PROTOBUF_TYPE, binary_reply, binary_request, is_protobuf, json_request_error
from santacore.testing.records import Answer, RecordedRequest, Reply, request_summary
from santacore.testing.replies import error_reply, method_not_allowed, not_found, render
from santacore.testing.schemas import GO_SCHEMAS, go_error, reject_constant
from santacore.testing.server_state import ServerState
from santacore.testing.settings import ServerSettings
from santacore.testing.stages import Stages
from santacore.testing.wire import BodyTooLarge, inflate

__all__ = ["Responder", "machine_key"]


def _binary(body: bytes) -> bool:
    """Whether a body that is not JSON looks like binary data (control bytes other than whitespace)."""
    return any(b < 0x20 and b not in (0x09, 0x0A, 0x0D) for b in body[:64])


def machine_key(machine_id: str, quirks: Quirks) -> str:
    """The server's key for a machine ID: Zentral's UUIDs in canonical form (§9.4), others as sent."""
    if quirks.uuid_machine_ids:
        try:
            return str(uuid.UUID(machine_id))
        except ValueError:
            return machine_id
    return machine_id


class Responder:
    """Answers the requests of one `SyncServer`: what `santacore.testing.handler.Backend` asks for. Shares the
    server's lock, state, stage handlers, quirks and faults; keeps the requests as received and the connections
    open (for `stop()`). `errors` collects the tracebacks of unexpected exceptions (a test should see none)."""

    def __init__(
        self,
        settings: ServerSettings,
        *,
        quirks: Quirks,
        state: ServerState,
        stages: Stages,
        faults: FaultList,
        lock: threading.RLock,
        base_url: Callable[[], str],
    ) -> None:
        self.settings = settings
        self.quirks = quirks
        self.state = state
        self.stages = stages
        self.faults = faults
        self.lock = lock
        self.base_url = base_url
        self.max_body_size = settings.max_body_size
        self.stopping = threading.Event()
        self.errors: list[str] = []
        self.requests: list[RecordedRequest] = []  # guarded by `lock`
        self.connections: set[socket.socket] = set()  # guarded by `lock`
        self._xsrf_tokens: dict[str, str] = {}

    # -- the handler's Backend -----------------------------------------------------------------------

    def track(self, conn: socket.socket, *, add: bool) -> None:
        with self.lock:
            if add:
                self.connections.add(conn)
            else:
                self.connections.discard(conn)

    def route(self, path: str) -> tuple[str, str] | None:
        """(stage, machine ID) of a request path under the profile's prefix, else None."""
        prefix = self.quirks.path_prefix.rstrip("/")
        if prefix:
            if not path.startswith(prefix + "/"):
                return None
            path = path[len(prefix) :]
        parts = path.split("/")
        if len(parts) != 3 or parts[0] or parts[1] not in (*STAGES, XSRF_STAGE) or not parts[2]:
            return None
        return parts[1], urllib.parse.unquote(parts[2])

    def refuse(self, rec: RecordedRequest, status: int, message: str) -> Reply:
        """Record a request whose body could not be read, and the error to answer it with."""
        self._record(rec)
        return self.error(status, message)

    def answer(self, rec: RecordedRequest) -> Answer:
        """Record `rec` and decide its answer: 404/405, a fault before or after the stage, or the stage's reply."""
        self._record(rec)
        try:
            if rec.stage is None or (rec.stage == XSRF_STAGE and not self.quirks.xsrf_route):
                return Answer(not_found(self.quirks.response_style))
            if rec.method != "POST":
                return Answer(method_not_allowed(self.quirks.response_style))
            fault = self.faults.take(rec.stage, rec.machine_id, PRE_FAULTS)
            if fault is not None:
                rec.fault = fault.kind
                if fault.kind == "drop":
                    return Answer(None)
                if fault.kind == "status":
                    return Answer(self._fault_reply(fault))
                self.stopping.wait(fault.delay)
            reply = self._dispatch(rec)
            rec.answer = reply.obj
            if rec.wire_format == "protobuf" and reply.status == 200 and reply.body is None and rec.stage in STAGES:
                # Answered in the request's format (addendum §3: Santa parses the answer as it sent the request).
                body = binary_reply(rec.stage, reply.obj)
                reply = Reply(200, reply.obj, body=body, content_type=PROTOBUF_TYPE, headers=reply.headers)
            if reply.status == 200 and (fault := self.faults.take(rec.stage, rec.machine_id, POST_FAULTS)):
                rec.fault = f"{rec.fault}+{fault.kind}" if rec.fault else fault.kind
                return Answer(reply, fault)
            return Answer(reply)
        except Exception:
            self.errors.append(traceback.format_exc())
            return Answer(self.error(500, "internal server error"))

    def render(self, reply: Reply) -> tuple[bytes, dict[str, str]]:
        return render(reply, self.quirks.response_style)

    def answered(self, rec: RecordedRequest, *, delivered: bool) -> None:
        """Hand `settings.request_log` its line on the request (never lets the log break the server)."""
        log = self.settings.request_log
        if log is None:
            return
        try:
            log(request_summary(rec, delivered=delivered))
        except Exception:
            self.errors.append(traceback.format_exc())

    def failed(self, trace: str) -> None:
        self.errors.append(trace)
        if self.settings.request_log is not None:
            last = trace.strip().splitlines()[-1] if trace.strip() else "unknown error"
            try:
                self.settings.request_log(f"internal error: {last}")
            except Exception:
                pass

    def error(self, status: int, message: str) -> Reply:
        return error_reply(self.quirks.response_style, status, message)

    # -- one stage request --------------------------------------------------------------------------

    def _record(self, rec: RecordedRequest) -> None:
        with self.lock:
            self.requests.append(rec)

    def _dispatch(self, rec: RecordedRequest) -> Reply:
        stage, raw_id = rec.stage or "", rec.machine_id or ""
        q = self.quirks
        if q.enrollment and (denied := self._enrollment_gate(rec)):
            return denied
        machine_id = machine_key(raw_id, q)
        if stage == XSRF_STAGE:
            return self._xsrf(machine_id)
        if self.settings.require_xsrf:
            with self.lock:
                expected = self._xsrf_tokens.get(machine_id)
            if expected is None or rec.header(self.settings.xsrf_header or XSRF_TOKEN_HEADER) != expected:
                return self.error(403, "missing or invalid XSRF token")
        if stage == "ruledownload" and not q.read_ruledownload_body:
            data: Any = {}
        else:
            decoded = self._decode(rec)
            if isinstance(decoded, Reply):
                return decoded
            data = decoded
        rec.data = data
        if q.enrollment and stage != "preflight":
            with self.lock:
                if not self.state.machine(machine_id).get("enrolled"):
                    return self.error(403, "Machine not enrolled")  # §9.4
        if problem := self._validate(stage, data):
            return problem
        with self.lock:
            return self.stages.handle(stage, machine_id, data)

    def _enrollment_gate(self, rec: RecordedRequest) -> Reply | None:
        secret_expected = self.settings.enrollment_secret
        if secret_expected is not None:
            scheme, _, secret = (rec.header(self.quirks.enrollment_header) or "").strip().partition(" ")
            if scheme != "Bearer" or not secret.strip():
                return self.error(401, "Unauthorized")
            if secret.strip() != secret_expected:
                return self.error(403, "Wrong enrollment secret")
        if self.quirks.uuid_machine_ids:
            try:
                uuid.UUID(rec.machine_id or "")
            except ValueError:
                return self.error(403, "Invalid machine id")
        return None

    def _xsrf(self, machine_id: str) -> Reply:
        with self.lock:
            token = self._xsrf_tokens.setdefault(machine_id, secrets.token_urlsafe(24))
        headers = {XSRF_TOKEN_HEADER: token}
        if self.settings.xsrf_header:
            headers[XSRF_NAME_HEADER] = self.settings.xsrf_header
        return Reply(200, body=b"", headers=headers)

    def _decode(self, rec: RecordedRequest) -> Any:
        """The request's JSON value, or an error reply, as the profile's server would decode it."""
        mode = self.quirks.request_decoding
        encoding = (rec.header("Content-Encoding") or "").strip().lower()
        limit = self.max_body_size * 8
        raw = rec.raw_body
        protobuf = is_protobuf(rec.header("Content-Type"))
        if protobuf and not self.quirks.proto_transfer:
            return self.error(415, "this server takes JSON bodies only: turn SyncEnableProtoTransfer off")
        try:
            if mode == "zlib":  # Moroz: zlib.NewReader(r.Body) whatever the headers say (§9.2)
                body = inflate(raw, 15, limit, strict=False)
            elif mode == "zentral":  # §9.4
                body = inflate(raw, 15, limit) if encoding in ("deflate", "zlib") else raw
            elif encoding in ("", "identity"):
                body = raw
            elif encoding == "deflate":  # §2.2: a zlib (RFC 1950) stream, not raw deflate
                body = inflate(raw, 15, limit)
            elif encoding in ("gzip", "x-gzip"):
                body = inflate(raw, 31, limit)
            else:
                return self.error(415, f"unsupported Content-Encoding {encoding!r}")
        except BodyTooLarge as exc:
            return self.error(413, str(exc))
        except zlib.error as exc:
            if mode == "zlib" and (len(raw) < 2 or raw[0] & 0x0F != 8 or (raw[0] << 8 | raw[1]) % 31):
                return self.error(500, "zlib: invalid header")  # Go's compress/zlib wording
            return self.error(400 if mode == "http" else 500, f"zlib: {exc}")
        rec.body = body
        if protobuf:
            rec.wire_format = "protobuf"
            try:
                return binary_request(rec.stage or "", body)
            except ValueError as exc:
                return self.error(400, f"{exc} (Content-Type says {PROTOBUF_TYPE})")
        try:
            text = body.decode("utf-8")
            if mode == "zlib":  # json.NewDecoder(zr).Decode: the first JSON value; empty → EOF
                if not text.strip():
                    return self.error(500, "EOF")
                return json.JSONDecoder(parse_constant=reject_constant).raw_decode(text.lstrip())[0]
            if mode == "zentral" and not text:
                return self.error(500, "empty request body")  # request_data is None → AttributeError
            if not text:
                return {}  # protobuf: an empty body is all defaults
            return json.loads(text, parse_constant=reject_constant)
        except ValueError as exc:
            hint = f" (a binary protobuf body needs Content-Type: {PROTOBUF_TYPE})" if _binary(body) else ""
            return self.error(500 if mode == "zlib" else 400, f"invalid JSON: {exc}{hint}")

    def _validate(self, stage: str, data: Any) -> Reply | None:
        q = self.quirks
        if q.validation == "proto" and (problem := json_request_error(stage, data)):
            return self.error(400, problem)
        if q.validation == "go" and stage in GO_SCHEMAS and (problem := go_error(GO_SCHEMAS[stage], data, "", "")):
            return self.error(500, problem)
        if q.zentral_checks:
            if not isinstance(data, dict):
                return self.error(500, "request body is not a JSON object")
            if stage == "preflight":
                if "santa_version" not in data:
                    return self.error(500, "KeyError: 'santa_version'")
                try:
                    [int(part) for part in str(data["os_version"]).split(".")]
                except (KeyError, ValueError):
                    return self.error(500, f"invalid os_version {data.get('os_version')!r}")
            if stage == "eventupload":
                for event in data.get("events") or []:
                    if not isinstance(event, dict) or "file_sha256" not in event:
                        return self.error(500, "KeyError: 'file_sha256'")
                    decision = event.get("decision")
                    if isinstance(decision, int | float) and not isinstance(decision, bool):
                        return self.error(500, f"unknown decision {decision!r}")
        return None

    def _fault_reply(self, fault: Fault) -> Reply:
        headers = dict(fault.headers)
        if 300 <= fault.status < 400:
            headers.setdefault("Location", self.base_url() + "redirected")
        if fault.body is not None:
            return Reply(fault.status, body=fault.body, headers=headers, error="injected fault")
        reply = self.error(fault.status, f"injected fault: HTTP {fault.status}")
        reply.headers.update(headers)
        return reply
