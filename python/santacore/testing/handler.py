"""HTTP plumbing of the testing sync server: the threading HTTP server and the request handler that reads bodies,
applies faults, and writes replies."""

from __future__ import annotations

import gzip
import socket
import traceback
import urllib.parse
import zlib
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Final

from santacore.testing.faults import _POST_FAULTS, _PRE_FAULTS, _WRONG_TYPES, Fault
from santacore.testing.profiles import XSRF_STAGE
from santacore.testing.records import RecordedRequest, _Reply
from santacore.testing.wire import _BadBody, _TooLarge

if TYPE_CHECKING:
    from santacore.testing.server import SyncServer

_DRAIN_LIMIT: Final = 64 * 1024 * 1024  # read and discard an oversized body up to this, so the 413 arrives


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], sync: SyncServer) -> None:
        self.sync = sync
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "santacore-testing"
    sys_version = ""
    timeout = 30
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # headers and body are two writes
        self.server.sync._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.sync._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        return

    def version_string(self) -> str:
        return self.server_version

    def do_POST(self) -> None:
        self._serve()

    do_GET = do_PUT = do_DELETE = do_PATCH = do_POST

    def _serve(self) -> None:
        sync = self.server.sync
        route = sync._route(urllib.parse.urlsplit(self.path).path)
        stage, machine_id = route if route else (None, None)
        rec = RecordedRequest(self.command, self.path, stage, machine_id, dict(self.headers.items()), b"")
        try:
            rec.raw_body = self._read_body(sync.max_body_size)
        except _TooLarge as exc:
            sync._record(rec)
            self.close_connection = True
            self._send(rec, sync._error(413, str(exc)))
            return
        except _BadBody as exc:
            sync._record(rec)
            self.close_connection = True
            self._send(rec, sync._error(400, str(exc)))
            return
        sync._record(rec)
        try:
            if route is None or (stage == XSRF_STAGE and not sync.quirks.xsrf_route):
                reply = sync._not_found()
            elif self.command != "POST":
                reply = sync._method_not_allowed()
            else:
                fault = sync.faults._take(stage, machine_id, _PRE_FAULTS)
                if fault is not None:
                    rec.fault = fault.kind
                    if fault.kind == "drop":
                        self.close_connection = True
                        return
                    if fault.kind == "status":
                        self._send(rec, sync._fault_reply(fault))
                        return
                    sync._stopping.wait(fault.delay)
                reply = sync._dispatch(rec)
                if reply.status == 200 and (fault := sync.faults._take(stage, machine_id, _POST_FAULTS)):
                    rec.fault = f"{rec.fault}+{fault.kind}" if rec.fault else fault.kind
                    self._send(rec, reply, fault)
                    return
        except Exception:
            sync.errors.append(traceback.format_exc())
            reply = sync._error(500, "internal server error")
        self._send(rec, reply)

    def _read_body(self, limit: int) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise _BadBody("invalid Content-Length") from None
        if length < 0:
            raise _BadBody("invalid Content-Length")
        if length > limit:
            remaining = min(length, _DRAIN_LIMIT)
            while remaining > 0 and (chunk := self.rfile.read(min(remaining, 1 << 16))):
                remaining -= len(chunk)
            raise _TooLarge(f"request body of {length} bytes exceeds the limit of {limit}")
        body = self.rfile.read(length)
        if len(body) != length:
            raise _BadBody("request body shorter than its Content-Length")
        return body

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(line, 16)
            except ValueError:
                raise _BadBody("invalid chunk size") from None
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                return b"".join(parts)
            total += size
            if total > limit:
                raise _TooLarge(f"chunked request body exceeds the limit of {limit} bytes")
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _send(self, rec: RecordedRequest, reply: _Reply, fault: Fault | None = None) -> None:
        sync = self.server.sync
        kind = fault.kind if fault else None
        if fault is not None and kind == "wrong_types":
            patch = fault.fields if fault.fields is not None else _WRONG_TYPES.get(rec.stage or "", {})
            reply = replace(reply, obj={**(reply.obj if isinstance(reply.obj, dict) else {}), **patch}, body=None)
        body, headers = sync._render(reply)
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
                while padding > 0 and not sync._stopping.is_set():
                    self.wfile.write(block[:padding])
                    padding -= len(block)
                self.wfile.write(tail)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True
