"""Santa's sync transport (spec §2): bytes in, bytes out, exactly as santasyncservice speaks HTTP.

`Transport.post(stage, body)` sends one stage request and returns the raw response body; it knows
nothing of what the bodies mean (that is `santacore.sync.protocol`). What it does, after Santa:

* URL (§2.1): ``<SyncBaseURL>`` + ``/`` if missing + ``<stage>/<machine_id>``, sent byte for byte:
  httpx would percent-encode some characters and drop ``.``/``..`` segments, so the request target
  is built here and handed to httpx untouched (`_VerbatimURL`).
* Request (§2.2): ``POST``, ``Content-Type: application/json``, the body compressed per
  SyncClientContentEncoding (deflate = zlib stream ``78 9c …`` from `zlib.compress`'s defaults,
  which are Santa's ``deflateInit2`` parameters; gzip = RFC 1952; an empty body is sent as is,
  without ``Content-Encoding``), ``User-Agent: santactl-sync/<version>``, SyncExtraHeaders minus
  Santa's deny-list (compared case-insensitively, as [N] does), and the XSRF header once a token
  exists.
* Status (§2.4): only 200 is success; redirects are not followed (a 3xx is a failure); up to
  `RetryPolicy.attempts` attempts with Santa's sleeps (4, 8, 16, 32 s) before attempts 2..5. [G]
  retries every failure; ``RetryPolicy(stop_on_4xx=True)`` gives [N]'s stop on a 4xx other than
  408/429. "No network" (ENETUNREACH/ENETDOWN, Santa's NSURLErrorNotConnectedToInternet) stops at once.
* Each attempt has one deadline (`timeout`, 30 s), as Santa cancels the task when its semaphore
  wait expires: httpx's per-operation timeouts are set to it and the body read is cut off at it.
* XSRF (§2.5): on a 403, a TLS "certificate required" alert or an unparseable response, and only
  while no token is held, ``POST <base>xsrf/<machine_id>`` (empty body, no Content-Type,
  `xsrf_timeout`); on 200 the token is the ``X-XSRF-TOKEN`` response header and the header to send
  it in is ``X-XSRF-TOKEN-HEADER`` (else ``X-XSRF-TOKEN``). The token lives as long as the Transport
  (Santa keeps it for the life of the sync service, across syncs) and is never refreshed.
* TLS (§2.6, `santacore.sync.tls`): system trust, or a CA bundle that *replaces* it; client certificate
  from PEM files or a PKCS#12 file (ClientAuthCertificateFile + ClientAuthCertificatePassword); TLS 1.2 or later.
* Responses: gzip/deflate (zlib-wrapped or raw) are decoded; the body is streamed and refused past
  `max_response_bytes` (decoded and on the wire), so a hostile server cannot exhaust memory.

Where santacore differs from Santa, deliberately:

* A 200 whose body is cut short, cannot be decoded or runs past the deadline is a failed attempt
  (retried), as in [N]; [G] could hand the partial body on.
* A response larger than `max_response_bytes`, or in a Content-Encoding santacore cannot decode,
  fails at once without retrying (Santa has no limit; repeating would only fetch it again).
* `from_config`: a ServerAuthRootsFile that cannot be read is an error; Santa logs it and falls back
  to system trust, silently dropping the pinning the administrator asked for.
* A machine ID that cannot go verbatim into an HTTP/1.1 request line (empty, non-ASCII, ``/``,
  ``?``, ``#``, whitespace, controls, or the dot segments ``.``/``..``) is refused up front.
* The XSRF request carries the User-Agent and the extra headers (so an authenticating proxy in
  front of the server sees them, as with [N]'s session-wide headers).

Errors: `SyncHTTPError` (``HTTP Response: 500 Internal Server Error``, with `.status`) when the last
attempt got a status other than 200; `SyncError` naming the cause for everything else (connection
refused, timeout, TLS, truncated or oversized response, unreadable TLS material). No httpx
exception escapes. One Transport may serve a full sync and an immediate event upload at once.
"""

from __future__ import annotations

import errno
import http
import logging
import re
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Final, Literal
from urllib.parse import urlsplit

import httpx

from santacore._core import __version__
from santacore.config.settings import PROTECTED_HEADERS
from santacore.errors import SyncError, SyncHTTPError
from santacore.sync.tls import ClientCert, StrPath, os_reason, ssl_context

if TYPE_CHECKING:
    from santacore.config.settings import Config

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_USER_AGENT",
    "XSRF_HEADER",
    "XSRF_HEADER_NAME_HEADER",
    "ClientCert",
    "RetryPolicy",
    "Transport",
    "compress_body",
    "santa_backoff",
    "ssl_context",
    "strip_xssi_prefix",
]

_log = logging.getLogger(__name__)

DEFAULT_USER_AGENT: Final = f"santactl-sync/{__version__}"
DEFAULT_MAX_RESPONSE_BYTES: Final = 32 * 1024 * 1024
XSRF_HEADER: Final = "X-XSRF-TOKEN"  # Santa's kDefaultXSRFTokenHeader: the token, and its default header
XSRF_HEADER_NAME_HEADER: Final = "X-XSRF-TOKEN-HEADER"  # kXSRFTokenHeader: the server's header name
XSRF_STAGE: Final = "xsrf"

_ENCODINGS: Final = ("deflate", "gzip", "none")
_NO_RETRY_4XX: Final = frozenset({408, 429})  # [N] keeps retrying these client errors
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # an HTTP header name (RFC 9110 token)
_STAGE = re.compile(r"[A-Za-z0-9._~-]+")
_TARGET_UNSAFE = re.compile(r"[^\x21-\x7e]|[/?#]")  # what cannot go verbatim into a request-line path segment
_NO_NETWORK_ERRNOS: Final = frozenset({errno.ENETUNREACH, errno.ENETDOWN})


# --- small pure helpers ------------------------------------------------------------------------


def strip_xssi_prefix(data: bytes) -> bytes:
    """Remove Santa's anti-XSSI prefix (§2.3): ``)]}'\\n`` if present, else ``])}``; only one."""
    for prefix in (b")]}'\n", b"])}"):
        if data.startswith(prefix):
            return data[len(prefix) :]
    return data


def santa_backoff(attempt: int) -> float:
    """Seconds Santa sleeps before `attempt` (2..5): 2 ** attempt = 4, 8, 16, 32."""
    return float(2**attempt)


def compress_body(body: bytes, content_encoding: str) -> tuple[bytes, str | None]:
    """The bytes Santa sends for `body` and the Content-Encoding header value, if any (§2.2)."""
    encoding = _content_encoding(content_encoding)
    if not body or encoding == "none":
        return body, None  # Santa never compresses an empty body, so it carries no Content-Encoding
    if encoding == "deflate":
        # deflateInit2(Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15, 8, Z_DEFAULT_STRATEGY): RFC 1950, "78 9c ..."
        return zlib.compress(body), "deflate"
    gz = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 31, 8, zlib.Z_DEFAULT_STRATEGY)
    return gz.compress(body) + gz.flush(), "gzip"  # windowBits 31: RFC 1952, as Santa's gzipCompressed


def _content_encoding(value: str) -> Literal["deflate", "gzip", "none"]:
    text = str(value).lower()
    if text == "deflate":
        return "deflate"
    if text == "gzip":
        return "gzip"
    if text == "none":
        return "none"
    raise ValueError(f"content_encoding must be one of {', '.join(_ENCODINGS)}, got {value!r}")


def _size(n: int) -> str:
    mib = 1024 * 1024
    return f"{n // mib} MiB" if n and n % mib == 0 else f"{n} bytes"


# --- retry policy ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How often a stage request is tried and how long to wait in between (§2.4).

    `delays(attempt)` is the sleep before `attempt` (2..`attempts`); `sleep` performs it (inject a
    recorder in tests). `stop_on_4xx` is [N]'s rule: give up on a 4xx other than 408/429 (after the
    XSRF handshake had its chance); the default is [G]'s: retry every failure.
    """

    attempts: int = 5
    sleep: Callable[[float], None] = time.sleep
    delays: Callable[[int], float] = santa_backoff
    stop_on_4xx: bool = False

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be at least 1, got {self.attempts}")

    def gives_up_on(self, status: int) -> bool:
        """Whether [N]'s rule ends the retries after this status."""
        return self.stop_on_4xx and 400 <= status < 500 and status not in _NO_RETRY_4XX


# --- verbatim request targets --------------------------------------------------------------------


class _VerbatimURL(httpx.URL):
    """An httpx.URL whose request target is sent exactly as given (§2.1: no percent-encoding).

    httpx's transports send ``request.url.raw_path``; httpx itself would have percent-encoded
    ``"<>{}`` and backquotes and removed dot segments. Only the origin (scheme, host, port) is httpx's.
    """

    def __init__(self, origin: httpx.URL, raw_path: bytes, text: str) -> None:
        super().__init__(origin)
        self._verbatim_path = raw_path
        self._verbatim_text = text

    @property
    def raw_path(self) -> bytes:
        return self._verbatim_path

    def __str__(self) -> str:
        return self._verbatim_text


# --- response bodies -------------------------------------------------------------------------------


class _AttemptFailed(Exception):
    """One attempt failed without an HTTP status (transport error); `final` ends the retries."""

    def __init__(self, message: str, *, xsrf_trigger: bool = False, no_network: bool = False, final: bool = False):
        super().__init__(message)
        self.message = message
        self.xsrf_trigger = xsrf_trigger
        self.no_network = no_network
        self.final = final


class _Inflater:
    """One Content-Encoding layer, decoded incrementally with bounded output."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._pending = b""  # deflate: bytes held until the zlib-vs-raw question is settled
        self._fed = False
        self._z: zlib._Decompress | None = (
            zlib.decompressobj(16 + zlib.MAX_WBITS) if coding in ("gzip", "x-gzip") else None
        )

    def feed(self, data: bytes, limit: int) -> bytes:
        """Decode `data`; more than `limit` bytes of output raises the oversize error."""
        self._fed = self._fed or bool(data)
        if self._z is None:  # deflate: zlib-wrapped (RFC 1950, what Santa sends) or raw (RFC 1951)
            self._pending += data
            if len(self._pending) < 2:
                return b""
            head = self._pending[0] << 8 | self._pending[1]
            zlib_wrapped = self._pending[0] & 0x0F == 8 and head % 31 == 0
            self._z = zlib.decompressobj(zlib.MAX_WBITS if zlib_wrapped else -zlib.MAX_WBITS)
            data, self._pending = self._pending, b""
        if self._z.eof:
            return b""  # trailing bytes after the stream are ignored, as httpx and browsers do
        out = self._z.decompress(data, limit + 1)
        if len(out) > limit:
            raise _Oversize
        return out

    def finish(self) -> None:
        """Raise zlib.error when the compressed stream did not end (a cut-short response)."""
        started = self._pending or (self._z is not None and self._fed)
        if started and (self._z is None or not self._z.eof):  # an empty body is fine, as in httpx
            raise zlib.error(f"incomplete {self.coding} stream")


class _Oversize(Exception):
    pass


def _decoders(content_encoding: str) -> list[_Inflater]:
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    layers: list[_Inflater] = []
    for coding in reversed(codings):  # the last coding applied is the first to undo
        if coding == "identity":
            continue
        if coding not in ("gzip", "x-gzip", "deflate"):
            raise _AttemptFailed(
                f"the server sent Content-Encoding {content_encoding!r}, which cannot be decoded", final=True
            )
        layers.append(_Inflater(coding))
    return layers


# --- the transport ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Reply:
    status: int
    reason: str
    headers: httpx.Headers
    body: bytes


@dataclass(frozen=True)
class _Token:
    header: bytes
    value: bytes


class Transport:
    """Santa's sync HTTP client for one server and one machine (see the module docstring)."""

    def __init__(
        self,
        base_url: str,
        machine_id: str,
        *,
        content_encoding: str = "deflate",
        extra_headers: Mapping[str, str] | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        verify: bool | StrPath | ssl.SSLContext = True,
        client_cert: ClientCert | None = None,
        client_cert_password: str | None = None,
        timeout: float = 30.0,
        xsrf_timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        proxy: str | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        """`verify`: True (system trust), a PEM bundle path (the only trust anchors) or an SSLContext
        (used as is). `client_cert`: ``(cert_pem, key_pem_or_None)``, or one path to a PKCS#12 file
        (or a PEM with certificate and key), unlocked with `client_cert_password`. `client`: an
        httpx.Client to send with (then TLS and proxy are the client's; it is not closed here).
        Bad arguments raise ValueError; unusable TLS files raise SyncError."""
        self._base, self._origin, self._base_path = _split_base(base_url)
        _check_machine_id(machine_id)
        self.machine_id = machine_id
        self.content_encoding = _content_encoding(content_encoding)
        self.user_agent = user_agent
        _check_header_value("User-Agent", user_agent)
        self._extra_headers = _filter_extra_headers(extra_headers or {})
        if timeout <= 0 or xsrf_timeout <= 0:
            raise ValueError("timeout and xsrf_timeout must be positive")
        if max_response_bytes < 0:
            raise ValueError("max_response_bytes must not be negative")
        self.timeout = float(timeout)
        self.xsrf_timeout = float(xsrf_timeout)
        self.retry = retry if retry is not None else RetryPolicy()
        self.max_response_bytes = max_response_bytes
        self._xsrf: _Token | None = None
        self._xsrf_lock = threading.Lock()
        self._closed = False
        if client is not None:
            if verify is not True or client_cert is not None or proxy is not None:
                raise ValueError("with client=..., TLS and proxy settings belong to that client")
            self._client, self._owns_client = client, False
            return
        if verify is False:
            raise ValueError("santacore never disables server verification; pass a CA bundle or an SSLContext")
        if isinstance(verify, ssl.SSLContext):
            if client_cert is not None:
                raise ValueError("load the client certificate into your SSLContext, or pass a CA bundle path")
            ctx = verify
        else:
            ctx = ssl_context(
                ca_file=None if verify is True else verify,
                client_cert=client_cert,
                client_cert_password=client_cert_password,
            )
        self._client = httpx.Client(verify=ctx, proxy=proxy, follow_redirects=False, trust_env=False)
        self._owns_client = True

    @classmethod
    def from_config(
        cls,
        config: Config,
        machine_id: str,
        *,
        user_agent: str = DEFAULT_USER_AGENT,
        timeout: float = 30.0,
        xsrf_timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        proxy: str | None = None,
        client: httpx.Client | None = None,
    ) -> Transport:
        """A Transport for SyncBaseURL, SyncClientContentEncoding, SyncExtraHeaders,
        ServerAuthRootsFile/Data and ClientAuthCertificateFile/Password. SyncError when
        SyncBaseURL is unset or the TLS material cannot be used."""
        if not config.sync_base_url:
            raise SyncError("SyncBaseURL is not set: there is no sync server to talk to")
        verify: ssl.SSLContext | bool = True
        if client is None:
            verify = ssl_context(
                ca_file=config.server_auth_roots_file,
                ca_data=config.server_auth_roots_data if config.server_auth_roots_file is None else None,
                client_cert=config.client_auth_certificate_file,
                client_cert_password=config.client_auth_certificate_password,
            )
        return cls(
            config.sync_base_url,
            machine_id,
            content_encoding=str(config.sync_client_content_encoding),
            extra_headers=config.sync_extra_headers,
            user_agent=user_agent,
            verify=verify,
            timeout=timeout,
            xsrf_timeout=xsrf_timeout,
            retry=retry,
            max_response_bytes=max_response_bytes,
            proxy=proxy,
            client=client,
        )

    # -- public API ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """SyncBaseURL, ending with ``/``."""
        return self._base

    @property
    def extra_headers(self) -> dict[str, str]:
        """The extra headers sent with every request (SyncExtraHeaders minus the deny-list)."""
        return {name.decode("ascii"): value.decode("utf-8") for name, value in self._extra_headers}

    @property
    def xsrf_token(self) -> tuple[str, str] | None:
        """(header name, token) once the XSRF handshake has succeeded, else None."""
        with self._xsrf_lock:
            token = self._xsrf
        if token is None:
            return None
        return token.header.decode("latin-1"), token.value.decode("latin-1")

    def url(self, stage: str) -> str:
        """``<base>/<stage>/<machine_id>`` (§2.1), the machine ID verbatim."""
        _check_stage(stage)
        return f"{self._base}{stage}/{self.machine_id}"

    def post(self, stage: str, body: bytes) -> bytes:
        """POST `body` to `stage` with Santa's headers, compression and retries; the raw
        (decoded, size-limited) response body of the HTTP 200."""
        if self._closed:
            raise SyncError("the transport has been closed", stage=stage)
        url = self.url(stage)
        content, encoding = compress_body(bytes(body), self.content_encoding)
        policy = self.retry
        status: int | None = None
        reason = ""
        failure = ""
        for attempt in range(1, policy.attempts + 1):
            if attempt >= 2:
                policy.sleep(policy.delays(attempt))
            _log.debug("%s: performing request, attempt %d (of %d maximum)", stage, attempt, policy.attempts)
            with self._xsrf_lock:
                sent_token = self._xsrf
            headers = self._headers(content_type=True, content_encoding=encoding, token=sent_token)
            try:
                reply = self._perform(url, content, headers, self.timeout, read_body=True)
            except _AttemptFailed as exc:
                status, failure = None, exc.message
                _log.debug("%s: attempt %d failed: %s", stage, attempt, failure)
                if exc.final:
                    raise SyncError(failure, stage=stage) from None
                if exc.no_network:
                    break  # Santa: retrying without a network is pointless
                xsrf_trigger = exc.xsrf_trigger
            else:
                if reply.status == 200:
                    return reply.body
                status, reason = reply.status, reply.reason
                _log.debug("%s: attempt %d: HTTP %d %s", stage, attempt, status, reason)
                xsrf_trigger = status == 403
            if xsrf_trigger and self._fetch_xsrf_token(sent_token):
                continue
            if status is not None and policy.gives_up_on(status):
                break
        if status is not None:
            raise SyncHTTPError(f"HTTP Response: {status} {reason}".rstrip(), stage=stage, status=status)
        raise SyncError(failure, stage=stage)

    def close(self) -> None:
        """Close the connection pool (unless the httpx.Client was passed in)."""
        self._closed = True
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Transport({self._base!r}, {self.machine_id!r}, content_encoding={self.content_encoding!r})"

    # -- internals -------------------------------------------------------------------------------

    def _headers(
        self, *, content_type: bool, content_encoding: str | None, token: _Token | None
    ) -> list[tuple[bytes, bytes]]:
        headers: dict[bytes, tuple[bytes, bytes]] = {}  # lower-case name -> (name, value); last one wins

        def put(name: bytes, value: bytes) -> None:
            headers[name.lower()] = (name, value)

        put(b"User-Agent", self.user_agent.encode("utf-8"))
        for name, value in self._extra_headers:
            put(name, value)
        put(b"Accept-Encoding", b"gzip, deflate")  # what _Inflater decodes; not overridable
        if content_type:
            put(b"Content-Type", b"application/json")
        if content_encoding:
            put(b"Content-Encoding", content_encoding.encode("ascii"))
        if token is not None:
            put(token.header, token.value)
        return list(headers.values())

    def _perform(
        self,
        url: str,
        content: bytes,
        headers: list[tuple[bytes, bytes]],
        timeout: float,
        *,
        read_body: bool,
    ) -> _Reply:
        """One HTTP exchange with one deadline; raises _AttemptFailed for transport failures."""
        host = self._origin.netloc.decode("ascii")
        deadline = time.monotonic() + timeout
        request = self._client.build_request(
            "POST", self._origin, content=content, headers=headers, timeout=httpx.Timeout(timeout)
        )
        raw_path = (self._base_path + url[len(self._base) :]).encode("ascii")
        request.url = _VerbatimURL(self._origin, raw_path, url)
        try:
            response = self._client.send(request, stream=True, follow_redirects=False)
        except _HTTPX_ERRORS as exc:
            raise _describe(exc, host, timeout, reading_body=False) from None
        try:
            reply_headers = response.headers
            status = response.status_code
            reason = _reason(status, response.reason_phrase)
            if status != 200 or not read_body:
                return _Reply(status, reason, reply_headers, b"")
            body = self._read_body(response, host, timeout, deadline)
            return _Reply(status, reason, reply_headers, body)
        finally:
            try:
                response.close()
            except _HTTPX_ERRORS:
                pass

    def _read_body(self, response: httpx.Response, host: str, timeout: float, deadline: float) -> bytes:
        limit = self.max_response_bytes
        too_big = _AttemptFailed(
            f"the response from {host} is larger than {_size(limit)} (max_response_bytes)", final=True
        )
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_big  # refused before reading a byte
        layers = _decoders(response.headers.get("Content-Encoding", ""))
        parts: list[bytes] = []
        raw_total = total = 0
        chunks: Iterator[bytes] = response.iter_raw()  # as received: the deadline is checked per read
        try:
            for chunk in chunks:
                raw_total += len(chunk)
                if raw_total > limit:
                    raise too_big
                for layer in layers:
                    chunk = layer.feed(chunk, limit - total)
                total += len(chunk)
                if total > limit:
                    raise too_big
                parts.append(chunk)
                if time.monotonic() > deadline:
                    raise _AttemptFailed(f"timed out after {timeout:g} s reading the response from {host}")
            for layer in layers:
                layer.finish()
        except _Oversize:
            raise too_big from None
        except zlib.error as exc:
            raise _AttemptFailed(
                f"cannot decode the {'/'.join(layer.coding for layer in layers)} response from {host}: {exc}"
            ) from None
        except _HTTPX_ERRORS as exc:
            raise _describe(exc, host, timeout, reading_body=True) from None
        return b"".join(parts)

    def _fetch_xsrf_token(self, sent: _Token | None) -> bool:
        """Santa's fetchXSRFToken: only while no token is held. True when the request should be
        retried with a token (fetched now, or by another thread since this attempt was sent)."""
        with self._xsrf_lock:
            if self._xsrf is not None:
                return self._xsrf != sent
            url = self.url(XSRF_STAGE)
            headers = self._headers(content_type=False, content_encoding=None, token=None)
            try:
                reply = self._perform(url, b"", headers, self.xsrf_timeout, read_body=False)
            except _AttemptFailed as exc:
                _log.debug("failed to retrieve XSRF token: %s", exc.message)
                return False
            if reply.status != 200:
                _log.debug("failed to retrieve XSRF token: HTTP %d", reply.status)
                return False
            raw = {name.lower(): value for name, value in reply.headers.raw}
            value = raw.get(XSRF_HEADER.lower().encode(), b"")
            name = raw.get(XSRF_HEADER_NAME_HEADER.lower().encode(), b"") or XSRF_HEADER.encode()
            if not value or not _TOKEN.fullmatch(name) or any(c in value for c in b"\r\n\x00"):
                _log.debug("XSRF response had no usable token")
                return False
            self._xsrf = _Token(name, value)
            _log.debug("retrieved new XSRF token")
            return True


_HTTPX_ERRORS: Final = (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, httpx.CookieConflict, OSError)


def _reason(status: int, server_reason: str) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return server_reason


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def _describe(exc: BaseException, host: str, timeout: float, *, reading_body: bool) -> _AttemptFailed:
    """A transport failure as a sentence naming its cause, with Santa's retry classification."""
    chain = list(_causes(exc))
    if isinstance(exc, httpx.TimeoutException) or any(isinstance(e, TimeoutError) for e in chain):
        phases: dict[type[BaseException], str] = {
            httpx.ConnectTimeout: "connecting to",
            httpx.WriteTimeout: "sending the request to",
            httpx.PoolTimeout: "waiting for a free connection to",
        }
        doing = phases.get(type(exc), "reading the response from" if reading_body else "waiting for a response from")
        return _AttemptFailed(f"timed out after {timeout:g} s {doing} {host}")
    for cause in chain:
        if isinstance(cause, ssl.SSLCertVerificationError):
            detail = cause.verify_message or os_reason(cause)
            return _AttemptFailed(f"TLS certificate verification failed for {host}: {detail}")
        if isinstance(cause, ssl.SSLError):
            reason = str(cause.reason or "")
            # NSURLErrorClientCertificateRequired: Santa tries the XSRF handshake on it
            return _AttemptFailed(
                f"TLS error with {host}: {os_reason(cause)}", xsrf_trigger="CERTIFICATE_REQUIRED" in reason
            )
        if isinstance(cause, ConnectionRefusedError):
            return _AttemptFailed(f"connection refused by {host}")
        if isinstance(cause, socket.gaierror):
            return _AttemptFailed(f"cannot resolve {host}: {cause.strerror or cause}")
        if isinstance(cause, OSError) and cause.errno in _NO_NETWORK_ERRNOS:
            return _AttemptFailed(f"cannot reach {host}: {cause.strerror}", no_network=True)
    if isinstance(exc, httpx.RemoteProtocolError):
        text = str(exc)
        if reading_body:
            return _AttemptFailed(f"the response from {host} was cut short: {text}")
        if "without sending" in text:  # httpcore: "Server disconnected without sending a response."
            return _AttemptFailed(f"{host} closed the connection without a response")
        # NSURLErrorCannotParseResponse: Santa tries the XSRF handshake on it
        return _AttemptFailed(f"cannot parse the response from {host}: {text}", xsrf_trigger=True)
    if isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.ConnectError):
        what = {httpx.ReadError: "reading from", httpx.WriteError: "sending to", httpx.ConnectError: "connecting to"}
        root = chain[-1]
        detail = os_reason(root) if isinstance(root, OSError) else str(exc)
        return _AttemptFailed(f"connection error {what[type(exc)]} {host}: {detail or type(exc).__name__}")
    return _AttemptFailed(f"request to {host} failed: {type(exc).__name__}: {exc}")


def _split_base(base_url: str) -> tuple[str, httpx.URL, str]:
    """(base with trailing "/", origin URL, base path ending with "/")."""
    if not isinstance(base_url, str) or not base_url:
        raise ValueError("base_url must be a non-empty http(s) URL")
    base = base_url if base_url.endswith("/") else base_url + "/"
    try:
        parts = urlsplit(base)
        parts.port  # noqa: B018 -- validates the port
    except ValueError as exc:
        raise ValueError(f"not a valid base URL {base_url!r}: {exc}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base_url must be an http(s) URL with a host, got {base_url!r}")
    if parts.query or parts.fragment or "?" in base or "#" in base:
        raise ValueError(f"base_url must not have a query or fragment, got {base_url!r}")
    path = parts.path or "/"
    if re.search(r"[^\x21-\x7e]", path):
        raise ValueError(f"base_url path must be ASCII without spaces (percent-encode it), got {base_url!r}")
    try:
        origin = httpx.URL(f"{parts.scheme}://{parts.netloc}/")
    except httpx.InvalidURL as exc:
        raise ValueError(f"not a valid base URL {base_url!r}: {exc}") from None
    return base, origin, path


def _check_machine_id(machine_id: str) -> None:
    if not isinstance(machine_id, str) or not machine_id:
        raise ValueError("machine_id must be a non-empty string")
    if _TARGET_UNSAFE.search(machine_id) or machine_id in (".", ".."):
        raise ValueError(
            "machine_id must go verbatim into the URL: printable ASCII without '/', '?', '#' or spaces, "
            f"and not '.' or '..'; got {machine_id!r}"
        )


def _check_stage(stage: str) -> None:
    if not _STAGE.fullmatch(stage):
        raise ValueError(f"not a stage name: {stage!r}")


def _check_header_value(name: str, value: str) -> None:
    if not isinstance(value, str) or any(c in value for c in "\r\n\x00"):
        raise ValueError(f"header {name}: the value must be a string without CR, LF or NUL")


def _filter_extra_headers(extra: Mapping[str, str]) -> tuple[tuple[bytes, bytes], ...]:
    """SyncExtraHeaders minus Santa's deny-list (case-insensitive), as (name, value) bytes."""
    kept: list[tuple[bytes, bytes]] = []
    for name, value in extra.items():
        if not isinstance(name, str) or not _TOKEN.fullmatch(name.encode("utf-8", "replace")):
            raise ValueError(f"not a valid HTTP header name: {name!r}")
        _check_header_value(name, value)
        if name.lower() in PROTECTED_HEADERS:
            _log.debug("SyncExtraHeaders: ignoring protected header %s", name)
            continue
        kept.append((name.encode("ascii"), value.encode("utf-8")))
    return tuple(kept)
