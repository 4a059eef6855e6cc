"""sync/transport.py (spec §2) against a real HTTP(S) server on loopback that records every request.

The server here is the transport's own harness: each test scripts its answers (`Stub.handler`)
and inspects the raw request line, headers and body bytes that arrived. Retries use an injected
sleep that records the delays, so Santa's 60 s of backoff costs nothing.
"""

from __future__ import annotations

import datetime
import errno
import gzip
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from santacore import __version__
from santacore.config.settings import Config
from santacore.errors import SyncError, SyncHTTPError
from santacore.sync.request import compress_body
from santacore.sync.retry import RetryPolicy, santa_backoff
from santacore.sync.settings import DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_USER_AGENT, TransportSettings
from santacore.sync.tls import ssl_context
from santacore.sync.transport import Transport

MID = "4A2F7C1E-0B6D-4E55-9C1A-3D2B1F0E9A87"

# --- the recording server ------------------------------------------------------------------------


@dataclass
class Seen:
    """One request as it arrived: the raw request target, headers in order, body bytes."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    peer_cn: str | None = None

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def names(self) -> set[str]:
        return {k.lower() for k, _ in self.headers}


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"{}"
    headers: Sequence[tuple[str, str]] = ()
    reason: str | None = None
    chunked: bool = False


Raw = Callable[["_Handler"], None]  # writes the response bytes itself
Answer = Reply | Raw


def _common_name(subject: Any) -> str | None:
    """The CN of an `ssl` certificate dict's subject (a tuple of RDNs of (key, value) pairs)."""
    return next((value for rdn in subject for key, value in rdn if key == "commonName"), None)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    stub: Stub

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        self.stub.errors.append(sys.exc_info()[1])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        stub = self.server.stub
        try:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            peer_cn = None
            if isinstance(self.connection, ssl.SSLSocket):
                cert = self.connection.getpeercert()
                if cert:
                    peer_cn = _common_name(cert["subject"])
            seen = Seen(self.command, self.path, list(self.headers.items()), body, peer_cn)
            with stub.lock:
                stub.seen.append(seen)
            answer = stub.handler(seen)
            if isinstance(answer, Reply):
                self._reply(answer)
            else:
                self.close_connection = True
                answer(self)
            self.wfile.flush()
        except OSError as exc:  # the client went away (as several tests intend)
            stub.errors.append(exc)
            self.close_connection = True

    do_GET = do_POST

    def _reply(self, r: Reply) -> None:
        self.send_response(r.status, r.reason)
        for name, value in r.headers:
            self.send_header(name, value)
        if r.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif r.status not in (204, 304):
            self.send_header("Content-Length", str(len(r.body)))
        self.end_headers()
        if r.chunked:
            for i in range(0, len(r.body), 7):
                piece = r.body[i : i + 7]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        elif r.status not in (204, 304):
            self.wfile.write(r.body)


class Stub:
    """A threaded HTTP(S) server on 127.0.0.1:0; `handler(seen)` answers each request."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.seen: list[Seen] = []
        self.errors: list[BaseException | None] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.handler: Callable[[Seen], Answer] = lambda seen: Reply()
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.stub = self
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True, do_handshake_on_connect=False)
        self.port = self.httpd.server_address[1]
        self.base = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def paths(self) -> list[str]:
        with self.lock:
            return [s.path for s in self.seen]

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def script(*answers: Answer) -> Callable[[Seen], Answer]:
    """Answer requests in order, repeating the last answer."""
    it = iter(answers)
    last = [answers[-1]]

    def handler(seen: Seen) -> Answer:
        last[0] = next(it, last[0])
        return last[0]

    return handler


@pytest.fixture
def stub() -> Iterator[Stub]:
    server = Stub()
    yield server
    server.close()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make(sleeps: list[float]) -> Iterator[Callable[..., Transport]]:
    """Build Transports (closed at teardown) whose retries sleep into `sleeps`."""
    made: list[Transport] = []

    def factory(base: str, machine_id: str = MID, *, client: httpx.Client | None = None, **settings: Any) -> Transport:
        settings.setdefault("retry", RetryPolicy(sleep=sleeps.append))
        transport = Transport(TransportSettings(base, **settings), machine_id, client=client)
        made.append(transport)
        return transport

    yield factory
    for transport in made:
        transport.close()


# --- pure helpers --------------------------------------------------------------------------------


def test_retry_policy_defaults_are_santas() -> None:
    policy = RetryPolicy()
    assert policy.attempts == 5 and policy.sleep is time.sleep and not policy.stop_on_4xx
    assert [policy.delays(a) for a in range(2, 6)] == [4, 8, 16, 32] == [santa_backoff(a) for a in range(2, 6)]
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
    n = RetryPolicy(stop_on_4xx=True)
    assert [s for s in (400, 401, 403, 404, 408, 429, 499, 500, 302) if n.gives_up_on(s)] == [400, 401, 403, 404, 499]
    assert not any(policy.gives_up_on(s) for s in (400, 404, 500))


def test_compress_body() -> None:
    body = b'{"serial_num":"C02XYZ","hostname":"mac"}' * 20
    deflated, enc = compress_body(body, "deflate")
    assert enc == "deflate" and deflated[:2] == b"\x78\x9c" and deflated == zlib.compress(body)
    gzipped, enc = compress_body(body, "GZIP")
    assert enc == "gzip" and gzipped[:2] == b"\x1f\x8b" and gzip.decompress(gzipped) == body
    assert compress_body(body, "None") == (body, None)
    for encoding in ("deflate", "gzip", "none"):
        assert compress_body(b"", encoding) == (b"", None)
    with pytest.raises(ValueError, match="content_encoding"):
        compress_body(body, "br")


# --- URL layout ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "path_prefix"),
    [("", "/"), ("/", "/"), ("/v1/santa", "/v1/santa/"), ("/v1/santa/", "/v1/santa/"), ("/a%20b/x", "/a%20b/x/")],
)
@pytest.mark.parametrize(
    "machine_id",
    [
        MID,
        "4a2f7c1e-0b6d-4e55-9c1a-3d2b1f0e9a87",
        "host.example.com",
        "a+b=c&d;e,f:g@h!$'()*",
        "%41%zz%",  # httpx would turn the stray % into %25 and keep %41
        '{x}"<y>`|^\\[z]',  # httpx would percent-encode {, }, ", <, >, `
        "...",
    ],
)
def test_url_layout_is_verbatim(
    stub: Stub, make: Callable[..., Transport], suffix: str, path_prefix: str, machine_id: str
) -> None:
    transport = make(stub.base + suffix, machine_id)
    assert transport.base_url == stub.base + path_prefix
    assert transport.url("preflight") == f"{stub.base}{path_prefix}preflight/{machine_id}"
    for stage in ("preflight", "eventupload", "ruledownload", "postflight"):
        assert transport.post(stage, b"{}") == b"{}"
    assert stub.paths() == [
        f"{path_prefix}{stage}/{machine_id}" for stage in ("preflight", "eventupload", "ruledownload", "postflight")
    ]


@pytest.mark.parametrize("machine_id", ["", "a/b", "a b", "a?b", "a#b", "a\tb", "a\nb", "mäc", ".", ".."])
def test_machine_ids_that_cannot_go_verbatim_are_refused(machine_id: str) -> None:
    with pytest.raises(ValueError, match="machine_id"):
        Transport(TransportSettings("https://sync.example.com/"), machine_id)


@pytest.mark.parametrize(
    "base",
    ["", "sync.example.com", "ftp://sync.example.com/", "https:///x", "https://h/?q=1", "https://h/#f", "https://h/ä/"],
)
def test_bad_base_urls_are_refused(base: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        Transport(TransportSettings(base), MID)


def test_stage_names_are_checked(stub: Stub, make: Callable[..., Transport]) -> None:
    transport = make(stub.base)
    with pytest.raises(ValueError, match="stage"):
        transport.post("pre/flight", b"")
    assert stub.seen == []


def test_proxy_gets_the_verbatim_absolute_url(stub: Stub, make: Callable[..., Transport]) -> None:
    machine_id = '{id}"%zz'
    transport = make("http://sync.invalid:8080/v1/santa", machine_id, proxy=stub.base)
    assert transport.post("preflight", b"{}") == b"{}"
    assert stub.paths() == [f"http://sync.invalid:8080/v1/santa/preflight/{machine_id}"]
    assert stub.seen[0].header("Host") == "sync.invalid:8080"


# --- request headers and bodies ------------------------------------------------------------------


def test_default_headers(stub: Stub, make: Callable[..., Transport]) -> None:
    body = b'{"serial_num":"C02XYZ"}'
    make(stub.base).post("preflight", body)
    (seen,) = stub.seen
    assert seen.method == "POST"
    assert seen.header("Content-Type") == "application/json"
    assert seen.header("Content-Encoding") == "deflate"
    assert seen.header("User-Agent") == DEFAULT_USER_AGENT == f"santactl-sync/{__version__}"
    assert seen.header("Accept-Encoding") == "gzip, deflate"
    assert seen.header("Content-Length") == str(len(seen.body))
    assert seen.header("Host") == f"127.0.0.1:{stub.port}"
    assert "x-xsrf-token" not in seen.names()


def test_user_agent_and_extra_headers_minus_santas_deny_list(stub: Stub, make: Callable[..., Transport]) -> None:
    extra = {
        "X-Extra": "one",
        "zentral-authorization": "Bearer s3cr3t",
        "X-Unicode": "café",
        "content-type": "text/plain",
        "CONTENT-ENCODING": "br",
        "Content-Length": "5",
        "connection": "close",
        "HOST": "evil.example.com",
        "Proxy-Authenticate": "x",
        "proxy-authorization": "Basic eA==",
        "Www-Authenticate": "y",
    }
    transport = make(stub.base, extra_headers=extra, user_agent="santactl-sync/2024.9.12345")
    assert transport.extra_headers == {
        "X-Extra": "one",
        "zentral-authorization": "Bearer s3cr3t",
        "X-Unicode": "café",
    }
    transport.post("preflight", b"{}")
    (seen,) = stub.seen
    assert seen.header("User-Agent") == "santactl-sync/2024.9.12345"
    assert seen.header("X-Extra") == "one"
    assert seen.header("Zentral-Authorization") == "Bearer s3cr3t"
    assert seen.header("X-Unicode") is not None
    assert seen.header("Content-Type") == "application/json"
    assert seen.header("Content-Encoding") == "deflate"
    assert seen.header("Content-Length") == str(len(seen.body))
    assert seen.header("Connection") != "close"
    assert seen.header("Host") == f"127.0.0.1:{stub.port}"
    assert not {"proxy-authenticate", "proxy-authorization", "www-authenticate"} & seen.names()
    assert [k.lower() for k, _ in seen.headers].count("content-type") == 1


@pytest.mark.parametrize("extra", [{"Bad Name": "x"}, {"X-A": "a\r\nInjected: 1"}, {"X-A": "a\x00"}])
def test_malformed_extra_headers_are_refused(extra: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="header"):
        Transport(TransportSettings("https://sync.example.com/", extra_headers=extra), MID)


BODY = '{"machine_id":"x","events":[{"file_path":"/Applications/Ünïcode.app","file_name":"a b"}]}'.encode() * 50


@pytest.mark.parametrize("encoding", ["deflate", "gzip", "none", "Deflate", "GZIP", "NONE"])
def test_body_arrives_compressed_per_encoding(stub: Stub, make: Callable[..., Transport], encoding: str) -> None:
    make(stub.base, content_encoding=encoding).post("eventupload", BODY)
    (seen,) = stub.seen
    kind = encoding.lower()
    if kind == "deflate":
        assert seen.header("Content-Encoding") == "deflate"
        assert seen.body[:2] == b"\x78\x9c"  # zlib (RFC 1950), not raw deflate
        assert zlib.decompress(seen.body) == BODY and seen.body == zlib.compress(BODY)
    elif kind == "gzip":
        assert seen.header("Content-Encoding") == "gzip"
        assert seen.body[:2] == b"\x1f\x8b" and gzip.decompress(seen.body) == BODY
    else:
        assert seen.header("Content-Encoding") is None and seen.body == BODY
    assert seen.header("Content-Type") == "application/json"


@pytest.mark.parametrize("encoding", ["deflate", "gzip", "none"])
def test_empty_body_is_never_compressed(stub: Stub, make: Callable[..., Transport], encoding: str) -> None:
    make(stub.base, content_encoding=encoding).post("ruledownload", b"")
    (seen,) = stub.seen
    assert seen.body == b"" and seen.header("Content-Length") == "0"
    assert seen.header("Content-Encoding") is None
    assert seen.header("Content-Type") == "application/json"


def test_unknown_content_encoding_is_refused() -> None:
    with pytest.raises(ValueError, match="content_encoding"):
        Transport(TransportSettings("https://sync.example.com/", content_encoding="br"), MID)


# --- response bodies -----------------------------------------------------------------------------

PAYLOAD = b'{"client_mode":"MONITOR","batch_size":50,"full_sync_interval":600}' * 40


def _raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-15)
    return c.compress(data) + c.flush()


@pytest.mark.parametrize(
    ("encoding", "wire"),
    [
        ("gzip", gzip.compress(PAYLOAD)),
        ("x-gzip", gzip.compress(PAYLOAD)),
        ("deflate", zlib.compress(PAYLOAD)),  # zlib-wrapped, as Santa itself sends
        ("deflate", _raw_deflate(PAYLOAD)),  # raw RFC 1951, which some servers send
        ("identity", PAYLOAD),
        ("", PAYLOAD),
        ("gzip, deflate", zlib.compress(gzip.compress(PAYLOAD))),
    ],
)
@pytest.mark.parametrize("chunked", [False, True])
def test_compressed_responses_are_decoded(
    stub: Stub, make: Callable[..., Transport], encoding: str, wire: bytes, chunked: bool
) -> None:
    headers = [("Content-Encoding", encoding)] if encoding else []
    stub.handler = lambda seen: Reply(body=wire, headers=headers, chunked=chunked)
    assert make(stub.base).post("preflight", b"{}") == PAYLOAD


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_empty_compressed_response_is_empty(stub: Stub, make: Callable[..., Transport], encoding: str) -> None:
    stub.handler = lambda seen: Reply(body=b"", headers=[("Content-Encoding", encoding)])
    assert make(stub.base).post("postflight", b"{}") == b""


def test_xssi_prefix_is_returned_raw(stub: Stub, make: Callable[..., Transport]) -> None:
    stub.handler = lambda seen: Reply(body=b')]}\'\n{"rules":[]}')
    assert make(stub.base).post("ruledownload", b"{}") == b')]}\'\n{"rules":[]}'


def test_undecodable_content_encoding_fails_without_retrying(
    stub: Stub, make: Callable[..., Transport], sleeps: list[float]
) -> None:
    stub.handler = lambda seen: Reply(body=b"\x1b\x00", headers=[("Content-Encoding", "br")])
    with pytest.raises(SyncError, match="Content-Encoding 'br'") as info:
        make(stub.base).post("preflight", b"{}")
    assert info.value.stage == "preflight" and len(stub.seen) == 1 and sleeps == []


def test_corrupt_compressed_response_is_a_retried_failure(
    stub: Stub, make: Callable[..., Transport], sleeps: list[float]
) -> None:
    stub.handler = script(
        Reply(body=b"\x1f\x8b\x08\x00garbage", headers=[("Content-Encoding", "gzip")]),
        Reply(body=gzip.compress(b"{}")[:-6], headers=[("Content-Encoding", "gzip")]),  # stream cut short
        Reply(body=gzip.compress(b"{}"), headers=[("Content-Encoding", "gzip")]),
    )
    assert make(stub.base).post("preflight", b"{}") == b"{}"
    assert len(stub.seen) == 3 and sleeps == [4, 8]


def test_corrupt_response_message(stub: Stub, make: Callable[..., Transport]) -> None:
    stub.handler = lambda seen: Reply(body=b"\x1f\x8b\x08\x00garbage", headers=[("Content-Encoding", "gzip")])
    with pytest.raises(SyncError, match=r"cannot decode the gzip response from 127\.0\.0\.1"):
        make(stub.base, retry=RetryPolicy(attempts=1)).post("preflight", b"{}")


# --- status handling and retries -----------------------------------------------------------------


def test_repeated_500_retries_five_times_with_santas_backoff(
    stub: Stub, make: Callable[..., Transport], sleeps: list[float]
) -> None:
    stub.handler = lambda seen: Reply(500, b'{"error": "boom"}')
    with pytest.raises(SyncHTTPError) as info:
        make(stub.base).post("preflight", b"{}")
    err = info.value
    assert str(err) == "HTTP Response: 500 Internal Server Error"
    assert (err.status, err.stage) == (500, "preflight")
    assert isinstance(err, SyncError) and err.__cause__ is None
    assert len(stub.seen) == 5 and sleeps == [4, 8, 16, 32]


def test_200_after_two_500s_succeeds(stub: Stub, make: Callable[..., Transport], sleeps: list[float]) -> None:
    stub.handler = script(Reply(500), Reply(503), Reply(200, b'{"ok":true}'))
    assert make(stub.base).post("postflight", b"{}") == b'{"ok":true}'
    assert len(stub.seen) == 3 and sleeps == [4, 8]
    assert {s.body for s in stub.seen} == {zlib.compress(b"{}")}  # the same request each time


@pytest.mark.parametrize(
    ("status", "reason"), [(302, "Found"), (301, "Moved Permanently"), (307, "Temporary Redirect")]
)
def test_redirects_are_failures_and_never_followed(
    stub: Stub, make: Callable[..., Transport], sleeps: list[float], status: int, reason: str
) -> None:
    stub.handler = lambda seen: Reply(status, b"", headers=[("Location", f"{stub.base}/elsewhere")])
    with pytest.raises(SyncHTTPError) as info:
        make(stub.base).post("preflight", b"{}")
    assert (info.value.status, str(info.value)) == (status, f"HTTP Response: {status} {reason}")
    assert stub.paths() == [f"/preflight/{MID}"] * 5 and sleeps == [4, 8, 16, 32]


def test_redirects_are_not_followed_even_by_a_following_client(
    stub: Stub, make: Callable[..., Transport], sleeps: list[float]
) -> None:
    stub.handler = lambda seen: Reply(302, b"", headers=[("Location", "/elsewhere")])
    with httpx.Client(follow_redirects=True) as client:
        with pytest.raises(SyncHTTPError):
            make(stub.base, client=client, retry=RetryPolicy(attempts=2, sleep=sleeps.append)).post("preflight", b"")
    assert stub.paths() == [f"/preflight/{MID}"] * 2


@pytest.mark.parametrize(("status", "reason"), [(201, "Created"), (204, "No Content"), (202, "Accepted")])
def test_only_200_is_success(
    stub: Stub, make: Callable[..., Transport], sleeps: list[float], status: int, reason: str
) -> None:
    stub.handler = lambda seen: Reply(status, b"{}")
    with pytest.raises(SyncHTTPError, match=f"^HTTP Response: {status} {reason}$"):
        make(stub.base).post("eventupload", b"{}")
    assert len(stub.seen) == 5


def test_unknown_status_uses_the_servers_reason(stub: Stub, make: Callable[..., Transport]) -> None:
    stub.handler = lambda seen: Reply(599, b"", reason="Custom Trouble")
    with pytest.raises(SyncHTTPError, match=r"^HTTP Response: 599 Custom Trouble$"):
        make(stub.base, retry=RetryPolicy(attempts=1)).post("preflight", b"")


def test_google_retries_every_4xx(stub: Stub, make: Callable[..., Transport], sleeps: list[float]) -> None:
    stub.handler = lambda seen: Reply(404, b"not found")
    with pytest.raises(SyncHTTPError, match="404 Not Found"):
        make(stub.base).post("preflight", b"{}")
    assert len(stub.seen) == 5 and sleeps == [4, 8, 16, 32]


@pytest.mark.parametrize("status", [400, 401, 404, 410])
def test_northpole_stops_on_4xx(stub: Stub, make: Callable[..., Transport], sleeps: list[float], status: int) -> None:
    stub.handler = lambda seen: Reply(status)
    transport = make(stub.base, retry=RetryPolicy(sleep=sleeps.append, stop_on_4xx=True))
    with pytest.raises(SyncHTTPError) as info:
        transport.post("preflight", b"{}")
    assert info.value.status == status and len(stub.seen) == 1 and sleeps == []


@pytest.mark.parametrize("status", [408, 429, 500, 302])
def test_northpole_still_retries_408_429_and_non_4xx(
    stub: Stub, make: Callable[..., Transport], sleeps: list[float], status: int
) -> None:
    stub.handler = script(Reply(status), Reply(200, b"{}"))
    transport = make(stub.base, retry=RetryPolicy(sleep=sleeps.append, stop_on_4xx=True))
    assert transport.post("preflight", b"{}") == b"{}"
    assert len(stub.seen) == 2 and sleeps == [4]


def test_northpole_403_stops_once_the_xsrf_handshake_fails(
    stub: Stub, make: Callable[..., Transport], sleeps: list[float]
) -> None:
    stub.handler = lambda seen: Reply(404) if "/xsrf/" in seen.path else Reply(403)
    transport = make(stub.base, retry=RetryPolicy(sleep=sleeps.append, stop_on_4xx=True))
    with pytest.raises(SyncHTTPError, match="403 Forbidden"):
        transport.post("preflight", b"{}")
    assert stub.paths() == [f"/preflight/{MID}", f"/xsrf/{MID}"] and sleeps == []


# --- XSRF ----------------------------------------------------------------------------------------


def xsrf_server(stub: Stub, token: str = "tok-123", header: str | None = "X-Custom-Token") -> None:
    """Stage requests need `token` in `header` (default X-XSRF-TOKEN); /xsrf/ hands it out."""
    expect = header or "X-XSRF-TOKEN"

    def handler(seen: Seen) -> Answer:
        if "/xsrf/" in seen.path:
            headers = [("X-XSRF-TOKEN", token)]
            if header is not None:
                headers.append(("X-XSRF-TOKEN-HEADER", header))
            return Reply(200, b"", headers=headers)
        return Reply(200, b'{"ok":1}') if seen.header(expect) == token else Reply(403, b"no token")

    stub.handler = handler


def test_xsrf_handshake_with_server_chosen_header(
    stub: Stub, make: Callable[..., Transport], sleeps: list[float]
) -> None:
    xsrf_server(stub)
    transport = make(stub.base + "/v1/santa", extra_headers={"X-Extra": "1"})
    assert transport.xsrf_token is None
    assert transport.post("preflight", b'{"a":1}') == b'{"ok":1}'
    assert stub.paths() == [f"/v1/santa/preflight/{MID}", f"/v1/santa/xsrf/{MID}", f"/v1/santa/preflight/{MID}"]
    first, xsrf, retried = stub.seen
    assert first.header("X-Custom-Token") is None and first.header("X-XSRF-TOKEN") is None
    assert xsrf.method == "POST" and xsrf.body == b""
    assert xsrf.header("Content-Type") is None and xsrf.header("Content-Encoding") is None
    assert xsrf.header("Content-Length") in (None, "0")
    assert xsrf.header("User-Agent") == DEFAULT_USER_AGENT and xsrf.header("X-Extra") == "1"
    assert retried.header("X-Custom-Token") == "tok-123" and retried.header("X-XSRF-TOKEN") is None
    assert retried.body == first.body == zlib.compress(b'{"a":1}')
    assert sleeps == []  # the token is the fix: retried at once (santacore; Santa sleeps 4 s first)
    assert transport.xsrf_token == ("X-Custom-Token", "tok-123")

    # The token is reused by every later request (later stages, later syncs); never fetched again.
    assert transport.post("eventupload", b"{}") == b'{"ok":1}'
    assert transport.post("preflight", b"{}") == b'{"ok":1}'
    assert stub.paths()[3:] == [f"/v1/santa/eventupload/{MID}", f"/v1/santa/preflight/{MID}"]
    assert all(s.header("X-Custom-Token") == "tok-123" for s in stub.seen[3:])
    assert stub.paths().count(f"/v1/santa/xsrf/{MID}") == 1 and sleeps == []


@pytest.mark.parametrize("header", [None, ""])
def test_xsrf_default_header_name(stub: Stub, make: Callable[..., Transport], header: str | None) -> None:
    xsrf_server(stub, token="abc", header=header)
    transport = make(stub.base)
    assert transport.post("preflight", b"{}") == b'{"ok":1}'
    assert stub.seen[-1].header("X-XSRF-TOKEN") == "abc"
    assert transport.xsrf_token == ("X-XSRF-TOKEN", "abc")


def test_xsrf_token_is_never_refreshed(stub: Stub, make: Callable[..., Transport], sleeps: list[float]) -> None:
    xsrf_server(stub, token="old")
    transport = make(stub.base)
    transport.post("preflight", b"{}")
    xsrf_server(stub, token="new")  # the server rotates its token; Santa keeps the old one
    with pytest.raises(SyncHTTPError, match="403 Forbidden"):
        transport.post("postflight", b"{}")
    assert stub.paths().count(f"/xsrf/{MID}") == 1
    assert transport.xsrf_token == ("X-Custom-Token", "old")
    assert len(stub.seen) == 3 + 5


def test_failed_xsrf_fetch_is_tried_again_on_each_403(
    stub: Stub, make: Callable[..., Transport], sleeps: list[float]
) -> None:
    stub.handler = lambda seen: Reply(500) if "/xsrf/" in seen.path else Reply(403)
    transport = make(stub.base)
    with pytest.raises(SyncHTTPError, match="403"):
        transport.post("preflight", b"{}")
    assert stub.paths() == [f"/preflight/{MID}", f"/xsrf/{MID}"] * 5
    assert transport.xsrf_token is None and sleeps == [4, 8, 16, 32]


def test_xsrf_200_without_a_token_is_no_token(stub: Stub, make: Callable[..., Transport]) -> None:
    stub.handler = lambda seen: Reply(200) if "/xsrf/" in seen.path else Reply(403)
    transport = make(stub.base, retry=RetryPolicy(attempts=2, sleep=lambda s: None))
    with pytest.raises(SyncHTTPError):
        transport.post("preflight", b"{}")
    assert transport.xsrf_token is None and stub.paths().count(f"/xsrf/{MID}") == 2


def test_unparseable_response_triggers_the_xsrf_handshake(
    stub: Stub, make: Callable[..., Transport], sleeps: list[float]
) -> None:
    """Santa fetches a token on NSURLErrorCannotParseResponse too (some servers answer so instead of 403)."""

    def garbage(h: _Handler) -> None:
        h.wfile.write(b"THIS IS NOT HTTP\r\n\r\n")

    xsrf_server(stub)
    normal = stub.handler
    first = [True]

    def handler(seen: Seen) -> Answer:
        if "/preflight/" in seen.path and first[0]:
            first[0] = False
            return garbage
        return normal(seen)

    stub.handler = handler
    assert make(stub.base).post("preflight", b"{}") == b'{"ok":1}'
    assert stub.paths() == [f"/preflight/{MID}", f"/xsrf/{MID}", f"/preflight/{MID}"]
    assert sleeps == []  # retried at once with the token


def test_concurrent_posts_fetch_the_xsrf_token_once(stub: Stub, make: Callable[..., Transport]) -> None:
    """A full sync and an immediate event upload share one Transport; the token is fetched once."""
    xsrf_server(stub)
    plain = stub.handler

    def slow_xsrf(seen: Seen) -> Answer:
        if "/xsrf/" in seen.path:
            stub.stop.wait(0.3)  # both posts have had their 403 by now
        return plain(seen)

    stub.handler = slow_xsrf
    transport = make(stub.base, retry=RetryPolicy(sleep=lambda s: None))
    barrier = threading.Barrier(4)
    results: list[bytes | BaseException] = []

    def run(stage: str) -> None:
        barrier.wait()
        try:
            results.append(transport.post(stage, b"{}"))
        except BaseException as exc:
            results.append(exc)

    threads = [
        threading.Thread(target=run, args=(s,)) for s in ("preflight", "eventupload", "ruledownload", "postflight")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [b'{"ok":1}'] * 4
    assert stub.paths().count(f"/xsrf/{MID}") == 1
    tokens = [s.header("X-Custom-Token") for s in stub.seen if "/xsrf/" not in s.path]
    assert tokens.count(None) >= 2  # the posts really overlapped: several were refused before the fetch
    assert tokens.count("tok-123") == 4


# --- transport failures --------------------------------------------------------------------------


def test_connection_refused(make: Callable[..., Transport], sleeps: list[float]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SyncError, match=f"connection refused by 127.0.0.1:{port}") as info:
        make(f"http://127.0.0.1:{port}/").post("preflight", b"{}")
    assert not isinstance(info.value, SyncHTTPError) and info.value.stage == "preflight"
    assert info.value.__cause__ is None and not isinstance(info.value.__context__, httpx.HTTPError)
    assert sleeps == [4, 8, 16, 32]  # Santa retries transport errors too


def test_no_network_stops_retrying(make: Callable[..., Transport], sleeps: list[float]) -> None:
    """Santa breaks out on NSURLErrorNotConnectedToInternet; here ENETUNREACH / ENETDOWN."""
    calls: list[httpx.Request] = []

    def unreachable(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        try:
            raise OSError(errno.ENETUNREACH, "Network is unreachable")
        except OSError as exc:
            raise httpx.ConnectError("[Errno 101] Network is unreachable", request=request) from exc

    with httpx.Client(transport=httpx.MockTransport(unreachable)) as client:
        with pytest.raises(SyncError, match=r"cannot reach sync\.example\.com: Network is unreachable"):
            make("https://sync.example.com/v1/", client=client).post("preflight", b"{}")
    assert len(calls) == 1 and sleeps == []
    assert calls[0].url.raw_path == f"/v1/preflight/{MID}".encode()


def test_timeout_waiting_for_the_response(stub: Stub, make: Callable[..., Transport], sleeps: list[float]) -> None:
    def slow(seen: Seen) -> Answer:
        stub.stop.wait(5)
        return Reply()

    stub.handler = slow  # answers 200 after 5 s: a client without the deadline would get it and not raise
    with pytest.raises(SyncError, match=r"timed out after 0\.2 s waiting for a response from 127\.0\.0\.1"):
        make(stub.base, timeout=0.2, retry=RetryPolicy(attempts=3, sleep=sleeps.append)).post("preflight", b"{}")
    assert sleeps == [4, 8] and len(stub.seen) == 3


def test_one_deadline_per_attempt_even_for_a_trickling_body(
    stub: Stub, make: Callable[..., Transport], sleeps: list[float]
) -> None:
    """Santa cancels the task when its 30 s are up, however busy the connection is."""

    def trickle(h: _Handler) -> None:
        h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(100):
            h.wfile.write(b" ")
            h.wfile.flush()
            if stub.stop.wait(0.05):
                return

    stub.handler = lambda seen: trickle  # 5 s of trickle, then cut short: without the deadline, "cut short"
    with pytest.raises(SyncError, match=r"timed out after 0\.4 s reading the response from"):
        make(stub.base, timeout=0.4, retry=RetryPolicy(attempts=1)).post("preflight", b"{}")


def test_xsrf_request_has_its_own_timeout(stub: Stub, make: Callable[..., Transport], sleeps: list[float]) -> None:
    def handler(seen: Seen) -> Answer:
        if "/xsrf/" in seen.path:
            stub.stop.wait(5)
            return Reply(200, b"", headers=[("X-XSRF-TOKEN", "late")])
        return Reply(403)

    stub.handler = handler
    transport = make(stub.base, timeout=30, xsrf_timeout=0.2, retry=RetryPolicy(attempts=2, sleep=sleeps.append))
    with pytest.raises(SyncHTTPError, match="403"):
        transport.post("preflight", b"{}")
    # With the stage's 30 s instead of its own 0.2 s, the XSRF request would have waited for the late token.
    assert transport.xsrf_token is None and sleeps == [4]


def test_truncated_response_is_a_retried_failure(
    stub: Stub, make: Callable[..., Transport], sleeps: list[float]
) -> None:
    def truncated(h: _Handler) -> None:
        h.wfile.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"rules": [')

    stub.handler = lambda seen: truncated
    with pytest.raises(SyncError, match=r"response from 127\.0\.0\.1:\d+ was cut short") as info:
        make(stub.base, retry=RetryPolicy(attempts=3, sleep=sleeps.append)).post("ruledownload", b"{}")
    assert "received 11 bytes, expected 100" in str(info.value)
    assert len(stub.seen) == 3 and sleeps == [4, 8]

    stub.seen.clear()
    stub.handler = script(truncated, Reply(body=b'{"rules":[]}'))
    assert make(stub.base).post("ruledownload", b"{}") == b'{"rules":[]}'
    assert len(stub.seen) == 2


def test_server_closing_without_a_response(stub: Stub, make: Callable[..., Transport]) -> None:
    stub.handler = lambda seen: lambda h: None
    with pytest.raises(SyncError, match="closed the connection without a response"):
        make(stub.base, retry=RetryPolicy(attempts=2, sleep=lambda s: None)).post("preflight", b"{}")
    assert stub.paths() == [f"/preflight/{MID}"] * 2  # not taken for an unparseable answer: no XSRF fetch


def test_declared_oversized_response_is_refused_before_reading(
    stub: Stub, make: Callable[..., Transport], sleeps: list[float]
) -> None:
    def huge(h: _Handler) -> None:
        h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (10 * 2**30))
        h.wfile.flush()
        stub.stop.wait(5)  # never sends the body: reading it would hang

    stub.handler = lambda seen: huge  # reading the body would wait 5 s, then fail as "cut short"
    with pytest.raises(SyncError, match=r"larger than 32 MiB \(max_response_bytes\)"):
        make(stub.base).post("ruledownload", b"{}")
    assert len(stub.seen) == 1 and sleeps == []
    assert DEFAULT_MAX_RESPONSE_BYTES == 32 * 2**20


def test_endless_response_is_cut_off_at_the_limit(stub: Stub, make: Callable[..., Transport]) -> None:
    sent = [0]

    def endless(h: _Handler) -> None:
        h.wfile.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 65536
        while sent[0] < 256 * 2**20 and not stub.stop.is_set():
            h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent[0] += len(chunk)

    stub.handler = lambda seen: endless
    with pytest.raises(SyncError, match=r"larger than 1 MiB"):
        make(stub.base, max_response_bytes=2**20).post("ruledownload", b"{}")
    time.sleep(0.2)
    assert sent[0] < 32 * 2**20 and len(stub.seen) == 1


def test_decompression_bomb_is_cut_off(stub: Stub, make: Callable[..., Transport]) -> None:
    bomb = gzip.compress(b"\0" * (64 * 2**20))
    assert len(bomb) < 2**20
    stub.handler = lambda seen: Reply(body=bomb, headers=[("Content-Encoding", "gzip")])
    with pytest.raises(SyncError, match=r"larger than 1 MiB"):
        make(stub.base, max_response_bytes=2**20).post("ruledownload", b"{}")


def test_response_exactly_at_the_limit_is_fine(stub: Stub, make: Callable[..., Transport]) -> None:
    stub.handler = lambda seen: Reply(body=gzip.compress(b"y" * 4096), headers=[("Content-Encoding", "gzip")])
    assert make(stub.base, max_response_bytes=4096).post("preflight", b"{}") == b"y" * 4096
    with pytest.raises(SyncError, match="larger than 4095 bytes"):
        make(stub.base, max_response_bytes=4095).post("preflight", b"{}")


def test_closed_transport(stub: Stub) -> None:
    with Transport(TransportSettings(stub.base), MID) as transport:
        transport.post("preflight", b"{}")
    with pytest.raises(SyncError, match="closed"):
        transport.post("preflight", b"{}")


def test_argument_checks() -> None:
    with pytest.raises(ValueError):
        Transport(TransportSettings("https://h/", timeout=0), MID)
    with pytest.raises(ValueError):
        Transport(TransportSettings("https://h/", xsrf_timeout=-1), MID)
    with pytest.raises(ValueError):
        Transport(TransportSettings("https://h/", max_response_bytes=-1), MID)
    with httpx.Client() as client, pytest.raises(ValueError, match="client"):
        Transport(TransportSettings("https://h/", ca_file="/some/ca.pem"), MID, client=client)
    with pytest.raises(ValueError, match="ssl_context"):
        Transport(TransportSettings("https://h/", ssl_context=ssl.create_default_context(), ca_file="/x.pem"), MID)


# --- configuration -------------------------------------------------------------------------------


def test_from_config(stub: Stub, sleeps: list[float], tmp_path: Path) -> None:
    config = Config.from_values(
        {
            "SyncBaseURL": stub.base + "/v1/santa",
            "SyncClientContentEncoding": "GZIP",
            "SyncExtraHeaders": {"Zentral-Authorization": "Bearer abc"},
            "StateDirectory": str(tmp_path),
        }
    )
    settings = replace(TransportSettings.from_config(config), retry=RetryPolicy(sleep=sleeps.append), timeout=7)
    with Transport(settings, MID) as transport:
        assert transport.url("preflight") == f"{stub.base}/v1/santa/preflight/{MID}"
        assert (transport.content_encoding, transport.timeout) == ("gzip", 7.0)
        transport.post("preflight", b'{"a":1}')
    (seen,) = stub.seen
    assert seen.header("Content-Encoding") == "gzip" and gzip.decompress(seen.body) == b'{"a":1}'
    assert seen.header("Zentral-Authorization") == "Bearer abc"


def test_from_config_without_a_base_url() -> None:
    with pytest.raises(SyncError, match="SyncBaseURL is not set"):
        TransportSettings.from_config(Config(state_directory=Path("/nonexistent")))


def test_from_config_with_unreadable_roots_file(tmp_path: Path) -> None:
    config = Config(
        sync_base_url="https://sync.example.com/",
        server_auth_roots_file=tmp_path / "missing.pem",
        state_directory=tmp_path,
    )
    with pytest.raises(SyncError, match=r"cannot load server CA bundle .*missing\.pem"):
        Transport(TransportSettings.from_config(config), MID)


# --- TLS -----------------------------------------------------------------------------------------


@dataclass
class PKI:
    dir: Path
    ca_pem: Path
    other_ca_pem: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_combined: Path
    client_p12: Path
    p12_password: str = "hunter2"
    files: dict[str, Path] = field(default_factory=dict)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    **kw: Any,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, issuer_key = issuer if issuer else (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is None:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    if kw.get("server"):
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]
            ),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    if kw.get("client"):
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    d = tmp_path_factory.mktemp("pki")
    ca_key, other_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(4))
    ca = _issue("santacore test CA", ca_key, None)
    other = _issue("some other CA", other_key, None)
    server = _issue("localhost", server_key, (ca.subject, ca_key), server=True)
    client = _issue("santacore-test-client", client_key, (ca.subject, ca_key), client=True)
    pem = serialization.Encoding.PEM
    pki = PKI(
        d, d / "ca.pem", d / "other.pem", d / "server.pem", d / "server.key",
        d / "client.pem", d / "client.key", d / "client-combined.pem", d / "client.p12",
    )  # fmt: skip
    pki.ca_pem.write_bytes(ca.public_bytes(pem))
    pki.other_ca_pem.write_bytes(other.public_bytes(pem))
    pki.server_cert.write_bytes(server.public_bytes(pem))
    pki.server_key.write_bytes(_pem_key(server_key))
    pki.client_cert.write_bytes(client.public_bytes(pem))
    pki.client_key.write_bytes(_pem_key(client_key))
    pki.client_combined.write_bytes(client.public_bytes(pem) + _pem_key(client_key))
    pki.client_p12.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"client", client_key, client, [ca], serialization.BestAvailableEncryption(pki.p12_password.encode())
        )
    )
    return pki


def _server_tls(pki: PKI, *, require_client_cert: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    if require_client_cert:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(pki.ca_pem)
    return ctx


@pytest.fixture
def https(pki: PKI) -> Iterator[Stub]:
    server = Stub(_server_tls(pki, require_client_cert=False))
    yield server
    server.close()


@pytest.fixture
def mtls(pki: PKI) -> Iterator[Stub]:
    server = Stub(_server_tls(pki, require_client_cert=True))
    yield server
    server.close()


def test_https_with_a_ca_bundle(https: Stub, make: Callable[..., Transport], pki: PKI) -> None:
    assert make(https.base + "/v1/", ca_file=str(pki.ca_pem)).post("preflight", b"{}") == b"{}"
    assert https.paths() == [f"/v1/preflight/{MID}"]


def test_ca_bundle_replaces_the_system_roots(pki: PKI) -> None:
    ctx = ssl_context(ca_file=pki.ca_pem)
    assert [_common_name(c["subject"]) for c in ctx.get_ca_certs()] == ["santacore test CA"]
    assert ctx.cert_store_stats()["x509_ca"] == 1
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    data_ctx = ssl_context(ca_data=pki.ca_pem.read_text())
    assert data_ctx.cert_store_stats()["x509_ca"] == 1


def test_system_roots_reject_a_private_ca(https: Stub, make: Callable[..., Transport], sleeps: list[float]) -> None:
    with pytest.raises(
        SyncError, match=r"TLS certificate verification failed for 127\.0\.0\.1:\d+: .*(issuer|self.signed)"
    ):
        make(https.base).post("preflight", b"{}")
    assert https.seen == [] and sleeps == [4, 8, 16, 32]


def test_the_wrong_bundle_rejects_the_server(https: Stub, make: Callable[..., Transport], pki: PKI) -> None:
    with pytest.raises(SyncError, match="TLS certificate verification failed"):
        make(https.base, ca_file=pki.other_ca_pem, retry=RetryPolicy(attempts=1)).post("preflight", b"{}")
    assert https.seen == []


def test_an_sslcontext_is_used_as_is(https: Stub, make: Callable[..., Transport], pki: PKI) -> None:
    ctx = ssl.create_default_context(cafile=str(pki.ca_pem))
    assert make(https.base, ssl_context=ctx).post("preflight", b"{}") == b"{}"


@pytest.mark.parametrize("form", ["pem-pair", "pem-combined", "pem-combined-tuple", "pkcs12"])
def test_client_certificate_is_presented(mtls: Stub, make: Callable[..., Transport], pki: PKI, form: str) -> None:
    cert: Any = {
        "pem-pair": (pki.client_cert, pki.client_key),
        "pem-combined": str(pki.client_combined),
        "pem-combined-tuple": (str(pki.client_combined), None),
        "pkcs12": pki.client_p12,
    }[form]
    password = pki.p12_password if form == "pkcs12" else None
    transport = make(mtls.base, ca_file=pki.ca_pem, client_cert=cert, client_cert_password=password)
    assert transport.post("preflight", b"{}") == b"{}"
    assert [s.peer_cn for s in mtls.seen] == ["santacore-test-client"]


def test_missing_client_certificate_fails(mtls: Stub, make: Callable[..., Transport], pki: PKI) -> None:
    with pytest.raises(SyncError, match=r"TLS error with 127\.0\.0\.1:\d+: .*(certificate required|handshake failure)"):
        make(mtls.base, ca_file=pki.ca_pem, retry=RetryPolicy(attempts=2, sleep=lambda s: None)).post(
            "preflight", b"{}"
        )
    assert mtls.seen == []


def test_encrypted_pem_key_needs_its_password(mtls: Stub, make: Callable[..., Transport], pki: PKI) -> None:
    key = serialization.load_pem_private_key(pki.client_key.read_bytes(), None)
    encrypted = pki.dir / "client-encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
        )
    )
    transport = make(mtls.base, ca_file=pki.ca_pem, client_cert=(pki.client_cert, encrypted), client_cert_password="pw")
    assert transport.post("preflight", b"{}") == b"{}"
    with pytest.raises(SyncError, match=r"cannot load client certificate .*client-encrypted\.key"):
        Transport(
            TransportSettings(mtls.base, client_cert=(pki.client_cert, encrypted)), MID
        )  # no password: an error, never a prompt


@pytest.mark.parametrize("password", ["wrong", None])
def test_pkcs12_with_the_wrong_password(pki: PKI, password: str | None) -> None:
    with pytest.raises(SyncError, match=r"cannot load client certificate .*client\.p12"):
        Transport(
            TransportSettings("https://sync.example.com/", client_cert=pki.client_p12, client_cert_password=password),
            MID,
        )


def test_missing_client_certificate_file(tmp_path: Path) -> None:
    with pytest.raises(SyncError, match=r"cannot read client certificate .*nope\.p12"):
        Transport(TransportSettings("https://sync.example.com/", client_cert=tmp_path / "nope.p12"), MID)
    with pytest.raises(SyncError, match=r"cannot load client certificate .*nope\.pem"):
        Transport(TransportSettings("https://sync.example.com/", client_cert=(tmp_path / "nope.pem", None)), MID)


def test_from_config_with_pinned_roots_and_pkcs12(mtls: Stub, pki: PKI, tmp_path: Path) -> None:
    config = Config.from_values(
        {
            "SyncBaseURL": mtls.base + "/santa/",
            "ServerAuthRootsData": pki.ca_pem.read_text(),
            "ClientAuthCertificateFile": str(pki.client_p12),
            "ClientAuthCertificatePassword": pki.p12_password,
            "StateDirectory": str(tmp_path),
        }
    )
    with Transport(replace(TransportSettings.from_config(config), retry=RetryPolicy(attempts=1)), MID) as transport:
        assert transport.post("preflight", b"{}") == b"{}"
    assert [(s.path, s.peer_cn) for s in mtls.seen] == [(f"/santa/preflight/{MID}", "santacore-test-client")]


def test_from_config_roots_file_wins_over_data(https: Stub, pki: PKI, tmp_path: Path) -> None:
    config = Config(
        sync_base_url=https.base + "/",
        server_auth_roots_file=pki.ca_pem,
        server_auth_roots_data=pki.other_ca_pem.read_text(),
        state_directory=tmp_path,
    )
    with Transport(replace(TransportSettings.from_config(config), retry=RetryPolicy(attempts=1)), MID) as transport:
        assert transport.post("preflight", b"{}") == b"{}"
