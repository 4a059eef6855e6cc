"""HTTP plumbing of the testing server: reads request bodies, writes replies, damages them as a fault says."""

from __future__ import annotations

import gzip
import socket
import sys
import threading
import traceback
import urllib.parse
import zlib
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Protocol

from santacore.testing.faults import WRONG_TYPES, Fault
from santacore.testing.records import Answer, RecordedRequest, Reply
from santacore.testing.wire import BadBody, BodyTooLarge

__all__ = ["Backend", "SyncHTTPServer"]

_DRAIN_LIMIT: Final = 64 * 1024 * 1024  # read and discard an oversized body up to this, so the 413 arrives


class Backend(Protocol):
    """What the handler needs from the server (`santacore.testing.responder.Responder`)."""

    @property
    def max_body_size(self) -> int: ...

    @property
    def stopping(self) -> threading.Event: ...

    def track(self, conn: socket.socket, *, add: bool) -> None:
        """Note a connection opening (`add`) or closing."""

    def route(self, path: str) -> tuple[str, str] | None:
        """(stage, machine ID) of a request path, None when it is no sync route."""

    def refuse(self, rec: RecordedRequest, status: int, message: str) -> Reply:
        """Record a request whose body could not be read; the error reply."""

    def answer(self, rec: RecordedRequest) -> Answer:
        """Record a request and decide what to send."""

    def render(self, reply: Reply) -> tuple[bytes, dict[str, str]]:
        """The body and headers of a reply."""

    def answered(self, rec: RecordedRequest, *, delivered: bool) -> None:
        """Note that a request was answered (or dropped): `delivered` is False when the client went away."""

    def failed(self, trace: str) -> None:
        """Note an unexpected exception in the HTTP plumbing (its traceback)."""


class SyncHTTPServer(ThreadingHTTPServer):
    """A threading HTTP/1.1 server (IPv4 or IPv6) whose requests `backend` answers."""

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], backend: Backend) -> None:
        self.backend = backend
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that disconnects (or a connection `stop()` shut down) is no error; anything else is kept in the
        backend's errors instead of being printed (socketserver's default prints a traceback on stderr)."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):  # ConnectionResetError, BrokenPipeError, TimeoutError, a closed socket, ...
            return
        self.backend.failed(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "santacore-testing"
    sys_version = ""
    timeout = 30
    server: SyncHTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # headers and body are two writes
        self.server.backend.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.backend.track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        return

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (a malformed request line, an unsupported method): logged, not recorded."""
        delivered = False
        try:
            super().send_error(code, message, explain)
            delivered = True
        finally:
            method, path = getattr(self, "command", None), getattr(self, "path", None)
            if not method or not path:  # the request line itself was bad
                method, path = "request", repr(getattr(self, "requestline", ""))
            error = message or self.responses.get(code, ("",))[0]
            rec = RecordedRequest(method, path, None, None, {}, b"", status=code, error=error)
            self.server.backend.answered(rec, delivered=delivered)

    def version_string(self) -> str:
        return self.server_version

    def do_POST(self) -> None:
        self._serve()

    do_GET = do_PUT = do_DELETE = do_PATCH = do_POST

    def _serve(self) -> None:
        backend = self.server.backend
        route = backend.route(urllib.parse.urlsplit(self.path).path)
        stage, machine_id = route if route else (None, None)
        rec = RecordedRequest(self.command, self.path, stage, machine_id, dict(self.headers.items()), b"")
        try:
            rec.raw_body = self._read_body(backend.max_body_size)
        except OSError:  # the client went away before its body arrived: nothing to answer
            self.close_connection = True
            rec.error = "client disconnected before sending its whole body"
            backend.answered(rec, delivered=False)
            return
        except (BodyTooLarge, BadBody) as exc:
            self.close_connection = True
            reply = backend.refuse(rec, 413 if isinstance(exc, BodyTooLarge) else 400, str(exc))
            backend.answered(rec, delivered=self._send(rec, reply))
            return
        answer = backend.answer(rec)
        if answer.reply is None:
            self.close_connection = True  # the "drop" fault: no answer at all
            backend.answered(rec, delivered=False)
            return
        backend.answered(rec, delivered=self._send(rec, answer.reply, answer.fault))

    def _read_body(self, limit: int) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise BadBody("invalid Content-Length") from None
        if length < 0:
            raise BadBody("invalid Content-Length")
        if length > limit:
            remaining = min(length, _DRAIN_LIMIT)
            while remaining > 0 and (chunk := self.rfile.read(min(remaining, 1 << 16))):
                remaining -= len(chunk)
            raise BodyTooLarge(f"request body of {length} bytes exceeds the limit of {limit}")
        body = self.rfile.read(length)
        if len(body) != length:
            raise BadBody("request body shorter than its Content-Length")
        return body

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(line, 16)
            except ValueError:
                raise BadBody("invalid chunk size") from None
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                return b"".join(parts)
            total += size
            if total > limit:
                raise BodyTooLarge(f"chunked request body exceeds the limit of {limit} bytes")
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _send(self, rec: RecordedRequest, reply: Reply, fault: Fault | None = None) -> bool:
        """Write the reply (damaged as `fault` says); False when the client went away before it was written."""
        backend = self.server.backend
        kind = fault.kind if fault else None
        if fault is not None and kind == "wrong_types":
            patch = fault.fields if fault.fields is not None else WRONG_TYPES.get(rec.stage or "", {})
            reply = replace(reply, obj={**(reply.obj if isinstance(reply.obj, dict) else {}), **patch}, body=None)
        body, headers = backend.render(reply)
        if fault is not None:
            if kind == "malformed_json":
                body = fault.body if fault.body is not None else b'{"rules": [{"identifier": "0a1b'
            elif kind == "xssi":
                body = fault.prefix.encode() + body
            elif kind == "compress":
                body = gzip.compress(body) if fault.encoding == "gzip" else zlib.compress(body)
                headers["Content-Encoding"] = fault.encoding
        rec.status = reply.status
        rec.error = reply.error
        declared = len(body)
        if kind == "truncate":
            declared, body = max(len(body), 16), body[: len(body) // 2]
            self.close_connection = True
        tail = b""
        if fault is not None and kind == "oversized":
            stripped = body.rstrip()
            body, tail = (stripped[:-1], b"}") if stripped.endswith(b"}") else (b"{", b"}")
            declared = max(fault.size, len(body) + len(tail))
        try:
            self.send_response(reply.status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(declared))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            if tail:
                padding = declared - len(body) - len(tail)
                block = b" " * (1 << 16)
                while padding > 0 and not backend.stopping.is_set():
                    self.wfile.write(block[:padding])
                    padding -= len(block)
                self.wfile.write(tail)
            self.wfile.flush()
        except OSError:  # the client went away (reset, broken pipe, timeout, socket shut down by stop())
            self.close_connection = True
            return False
        return True
