"""`Transport`: Santa's sync HTTP client (spec §2) — one stage request, its attempts, the XSRF retry.

`Transport(settings, machine_id).post(stage, body)` sends one stage request and returns the raw response body —
bytes in, bytes out; what the bodies mean is `santacore.sync.protocol` and `.responses`. The parts: `request`
(URL ``<SyncBaseURL>/<stage>/<machine_id>`` sent byte for byte, headers, compression), `response` (bounded,
decoded body read), `failures` (what a failed attempt means), `xsrf` (the handshake), `tls` (trust and client
certificates), `retry` (attempts and sleeps), `settings` (`TransportSettings`, built from a Config).

* Status (§2.4): only 200 is success; redirects are not followed (a 3xx is a failure); up to
  `RetryPolicy.attempts` attempts with Santa's sleeps (4, 8, 16, 32 s) before attempts 2..5. [G]
  retries every failure; ``RetryPolicy(stop_on_4xx=True)`` gives [N]'s stop on a 4xx other than
  408/429. "No network" (ENETUNREACH/ENETDOWN, Santa's NSURLErrorNotConnectedToInternet) stops at once.
* Each attempt has one deadline (`timeout`, 30 s), as Santa cancels the task when its semaphore
  wait expires. It bounds the whole exchange — connect, TLS, request, status line, headers and body —
  however slowly the server trickles bytes: every socket operation (httpcore network backend wrapper)
  waits at most until that deadline, in slices of 0.25 s, so that `Transport.cancelled` (a stopping
  daemon) also ends the attempt in flight within a fraction of a second. `post(..., deadline=)` adds
  the sync's overall budget: attempts end at it and no retry sleeps past it.
* XSRF (§2.5): on a 403, a TLS "certificate required" alert or an unparseable response, and only
  while no token is held, ``POST <base>xsrf/<machine_id>`` (empty body, no Content-Type, `xsrf_timeout`),
  then the request is tried again with the token (at once: see below; it still counts as an attempt).
  The token lives as long as the Transport.
* Reporting: `log` gets one line per failed attempt as it happens; `trace` one `Exchange` per HTTP
  exchange (XSRF included). The transport prints nothing itself.

Where santacore differs from Santa, deliberately:

* A 200 whose body is cut short, cannot be decoded or runs past the deadline is a failed attempt
  (retried), as in [N]; [G] could hand the partial body on.
* A response larger than `max_response_bytes`, or in a Content-Encoding santacore cannot decode,
  fails at once without retrying (Santa has no limit; repeating would only fetch it again).
* A ServerAuthRootsFile that cannot be read is an error; Santa logs it and falls back to system trust,
  silently dropping the pinning the administrator asked for.
* A machine ID that cannot go verbatim into an HTTP/1.1 request line (empty, non-ASCII, ``/``,
  ``?``, ``#``, whitespace, controls, or the dot segments ``.``/``..``) is refused up front.
* The retry that follows a successful XSRF fetch is sent at once; Santa's loop sleeps its backoff
  (4 s) first (§2.4's pseudo-code), which only delays a handshake the token has already fixed.
* The XSRF request carries the User-Agent and the extra headers (so an authenticating proxy in
  front of the server sees them, as with [N]'s session-wide headers).

Errors: `SyncHTTPError` (``HTTP Response: 500 Internal Server Error``, with `.status`) when the last
attempt got a status other than 200; `SyncError` naming the cause for everything else (connection
refused, timeout, TLS, truncated or oversized response, unreadable TLS material). No httpx
exception escapes. One Transport may serve a full sync and an immediate event upload at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

import httpcore
import httpx

from santacore.errors import SyncError, SyncHTTPError
from santacore.sync.failures import HTTPX_ERRORS, AttemptFailed, describe, reason_phrase
from santacore.sync.request import (
    BaseURL,
    Header,
    check_header_value,
    check_machine_id,
    check_stage,
    compress_body,
    content_encoding,
    filter_extra_headers,
    request_headers,
)
from santacore.sync.response import Reply, read_body
from santacore.sync.settings import TransportSettings
from santacore.sync.tls import ssl_context
from santacore.sync.xsrf import XSRF_STAGE, XsrfToken

__all__ = ["Exchange", "Transport"]

_log = logging.getLogger(__name__)

_SLICE = 0.25  # seconds: how often a blocked read looks at the deadline and the stop flag
_bound = threading.local()  # .deadline (time.monotonic() value) and .cancelled (callable) of this thread's attempt


def _remaining() -> float | None:
    """Seconds left before this thread's attempt deadline (None: unbounded); raises when the attempt is cancelled."""
    cancelled = getattr(_bound, "cancelled", None)
    if cancelled is not None and cancelled():
        raise httpcore.ReadError("cancelled: the sync is stopping")
    deadline: float | None = getattr(_bound, "deadline", None)
    return None if deadline is None else deadline - time.monotonic()


def _cap(timeout: float | None, exc: type[Exception]) -> float | None:
    left = _remaining()
    if left is None:
        return timeout
    if left <= 0:
        raise exc("the attempt's deadline has passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every operation ends at the attempt's one deadline (connect, headers and body alike,
    however slowly the server trickles bytes) or within `_SLICE` seconds of the sync being stopped."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        started = time.monotonic()
        while True:
            limit = _cap(None if timeout is None else timeout - (time.monotonic() - started), httpcore.ReadTimeout)
            if limit is not None and limit <= 0:
                raise httpcore.ReadTimeout("timed out")
            try:
                return self._inner.read(max_bytes, _SLICE if limit is None else min(limit, _SLICE))
            except httpcore.ReadTimeout:
                continue  # a slice ended: look at the deadline and the stop flag again

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _cap(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):  # type: ignore[no-untyped-def]
        return _DeadlineStream(
            self._inner.start_tls(ssl_context, server_hostname, _cap(timeout, httpcore.ConnectTimeout))
        )

    def get_extra_info(self, info: str) -> object:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):  # type: ignore[no-untyped-def]
        stream = self._inner.connect_tcp(
            host, port, _cap(timeout, httpcore.ConnectTimeout), local_address, socket_options
        )
        return _DeadlineStream(stream)

    def connect_unix_socket(self, path, timeout=None, socket_options=None):  # type: ignore[no-untyped-def]
        return _DeadlineStream(
            self._inner.connect_unix_socket(path, _cap(timeout, httpcore.ConnectTimeout), socket_options)
        )

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _deadline_transport(verify: object, proxy: str | None) -> httpx.HTTPTransport:
    transport = httpx.HTTPTransport(verify=verify, proxy=proxy)  # type: ignore[arg-type]
    transport._pool._network_backend = _DeadlineBackend()  # httpx has no public knob for httpcore's backend
    return transport


def _quiet(line: str) -> None:
    pass


class Transport:
    """Santa's sync HTTP client for one server and one machine (see the module docstring)."""

    def __init__(
        self,
        settings: TransportSettings,
        machine_id: str,
        *,
        client: httpx.Client | None = None,
        log: Callable[[str], None] | None = None,
        trace: Callable[[Exchange], None] | None = None,
    ) -> None:
        """`client`: an httpx.Client to send with (then TLS and proxy are the client's, so `settings` must leave
        them at their defaults; it is not closed here). `log` receives one line per failed attempt, as it happens
        (stage, cause, attempt n of N, what happens next); `trace` one `Exchange` per HTTP exchange. Both may be
        set later as attributes; the transport itself prints nothing. Bad settings raise ValueError; unusable TLS
        material raises SyncError."""
        self.settings = settings
        self.log: Callable[[str], None] = log or _quiet
        self.trace: Callable[[Exchange], None] | None = trace
        self._base = BaseURL.parse(settings.base_url)
        check_machine_id(machine_id)
        self.machine_id = machine_id
        self.content_encoding = content_encoding(settings.content_encoding)
        check_header_value("User-Agent", settings.user_agent)
        self._extra_headers = filter_extra_headers(settings.extra_headers)
        if settings.timeout <= 0 or settings.xsrf_timeout <= 0:
            raise ValueError("timeout and xsrf_timeout must be positive")
        if settings.max_response_bytes < 0:
            raise ValueError("max_response_bytes must not be negative")
        self._xsrf = XsrfToken()
        self._closed = False
        self.cancelled: Callable[[], bool] | None = None
        """When set and true, the attempt in flight ends within a fraction of a second and no other is made."""
        if client is not None:
            if settings.custom_tls or settings.proxy is not None:
                raise ValueError("with client=..., TLS and proxy settings belong to that client")
            self._client, self._owns_client = client, False
            return
        ctx = settings.ssl_context
        if ctx is None:
            ctx = ssl_context(
                ca_file=settings.ca_file,
                ca_data=settings.ca_data,
                client_cert=settings.client_cert,
                client_cert_password=settings.client_cert_password,
            )
        elif settings.client_cert is not None or settings.ca_file is not None or settings.ca_data is not None:
            raise ValueError("with ssl_context=..., the trust anchors and the client certificate belong in it")
        self._client = httpx.Client(
            transport=_deadline_transport(ctx, settings.proxy), follow_redirects=False, trust_env=False
        )
        self._owns_client = True

    # -- public API ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """SyncBaseURL, ending with ``/``."""
        return self._base.text

    @property
    def timeout(self) -> float:
        return float(self.settings.timeout)

    @property
    def extra_headers(self) -> dict[str, str]:
        """The extra headers sent with every request (SyncExtraHeaders minus the deny-list)."""
        return {name.decode("ascii"): value.decode("utf-8") for name, value in self._extra_headers}

    @property
    def xsrf_token(self) -> tuple[str, str] | None:
        """(header name, token) once the XSRF handshake has succeeded, else None."""
        token = self._xsrf.header
        if token is None:
            return None
        return token[0].decode("latin-1"), token[1].decode("latin-1")

    def url(self, stage: str) -> str:
        """``<base>/<stage>/<machine_id>`` (§2.1), the machine ID verbatim."""
        check_stage(stage)
        return f"{self._base.text}{stage}/{self.machine_id}"

    def post(
        self, stage: str, body: bytes, *, deadline: float | None = None, content_type: str = "application/json"
    ) -> bytes:
        """POST `body` to `stage` with Santa's headers, compression and retries; the raw
        (decoded, size-limited) response body of the HTTP 200. `deadline` (a `time.monotonic()` value, e.g. the
        end of the sync's budget) cuts every attempt short at it and ends the retries. `content_type`:
        application/x-protobuf for a binary body (SyncEnableProtoTransfer)."""
        if self._closed:
            raise SyncError("the transport has been closed", stage=stage)
        url = self.url(stage)
        raw = bytes(body)
        content, encoding = compress_body(raw, self.content_encoding)
        policy = self.settings.retry
        status: int | None = None
        reason = ""
        failure = ""
        wait_first = False
        for attempt in range(1, policy.attempts + 1):
            if attempt >= 2 and wait_first:
                pause = policy.delays(attempt)
                if deadline is not None and time.monotonic() + pause >= deadline:
                    self.log(f"{stage}: not retried: the sync's time budget would run out during the {pause:g} s wait")
                    break
                policy.sleep(pause)
            self._check_live(stage, deadline)
            wait_first = True
            _log.debug("%s: performing request, attempt %d (of %d maximum)", stage, attempt, policy.attempts)
            sent_token = self._xsrf.header
            headers = self._headers(content_type=content_type, encoding=encoding, token=sent_token)
            try:
                reply = self._perform(
                    url, content, headers, self.settings.timeout, with_body=True, sent=raw, limit=deadline
                )
            except AttemptFailed as exc:
                status, failure = None, exc.message
                self._check_live(stage, deadline, failure)
                _log.debug("%s: attempt %d failed: %s", stage, attempt, failure)
                if exc.final:
                    self._say_attempt(stage, attempt, failure, "not retried")
                    raise SyncError(failure, stage=stage) from None
                if exc.no_network:
                    self._say_attempt(stage, attempt, failure, "not retried: no network")
                    break  # Santa: retrying without a network is pointless
                xsrf_trigger = exc.xsrf_trigger
            else:
                if reply.status == 200:
                    return reply.body
                status, reason = reply.status, reply.reason
                failure = f"HTTP {status} {reason}".rstrip()
                _log.debug("%s: attempt %d: HTTP %d %s", stage, attempt, status, reason)
                xsrf_trigger = status == 403
            if xsrf_trigger and self._xsrf.fetch(sent_token, self._xsrf_exchange):
                # §2.5: the token is the fix, so the request goes again at once, without the backoff sleep.
                if attempt < policy.attempts:
                    self._say_attempt(stage, attempt, failure, "got an XSRF token, retrying at once")
                    wait_first = False
                    continue
            if status is not None and policy.gives_up_on(status):
                self._say_attempt(stage, attempt, failure, "not retried (SyncProtocol northpolesec stops on this 4xx)")
                break
            if attempt < policy.attempts:
                self._say_attempt(stage, attempt, failure, f"retrying in {policy.delays(attempt + 1):g} s")
            else:
                self._say_attempt(stage, attempt, failure, "giving up")
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
        return f"Transport({self._base.text!r}, {self.machine_id!r}, content_encoding={self.content_encoding!r})"

    # -- internals -------------------------------------------------------------------------------

    def _check_live(self, stage: str, deadline: float | None, failure: str = "") -> None:
        """SyncError (not retried) once the sync is stopping or its time budget is spent."""
        if self.cancelled is not None and self.cancelled():
            self.log(f"{stage}: stopped: the sync is stopping" + (f" ({failure})" if failure else ""))
            raise SyncError("not completed: the sync is stopping", stage=stage)
        if deadline is not None and time.monotonic() >= deadline:
            raise SyncError(
                "the sync's time budget (SyncTimeBudget) is spent" + (f" ({failure})" if failure else ""), stage=stage
            )

    def _say_attempt(self, stage: str, attempt: int, failure: str, then: str) -> None:
        self.log(f"{stage}: attempt {attempt} of {self.settings.retry.attempts} failed: {failure}; {then}")

    def _headers(self, *, content_type: bool | str, encoding: str | None, token: Header | None) -> list[Header]:
        return request_headers(
            self.settings.user_agent, self._extra_headers, content_type=content_type, encoding=encoding, token=token
        )

    def _xsrf_exchange(self) -> Reply:
        headers = self._headers(content_type=False, encoding=None, token=None)
        return self._perform(self.url(XSRF_STAGE), b"", headers, self.settings.xsrf_timeout, with_body=False)

    def _perform(
        self,
        url: str,
        content: bytes,
        headers: list[Header],
        timeout: float,
        *,
        with_body: bool,
        sent: bytes = b"",
        limit: float | None = None,
    ) -> Reply:
        """One HTTP exchange with one deadline; raises AttemptFailed for transport failures. Each exchange, failed
        or not, is reported to `trace` (when set)."""
        started = time.monotonic()
        reply: Reply | None = None
        error: str | None = None
        try:
            reply = self._exchange(url, content, headers, timeout, with_body=with_body, limit=limit)
            return reply
        except AttemptFailed as exc:
            error = exc.message
            raise
        finally:
            if self.trace is not None:
                self.trace(
                    Exchange(
                        method="POST",
                        url=url,
                        status=reply.status if reply else None,
                        reason=reply.reason if reply else "",
                        error=error,
                        request_size=len(sent),
                        request_wire_size=len(content),
                        request_encoding=_header(headers, b"content-encoding"),
                        response_size=len(reply.body) if reply and reply.wire_size is not None else None,
                        response_wire_size=_response_wire_size(reply),
                        response_encoding=reply.headers.get("Content-Encoding") if reply else None,
                        elapsed_ms=(time.monotonic() - started) * 1000.0,
                        request_body=sent,
                        response_body=reply.body if reply else b"",
                    )
                )

    def _exchange(
        self, url: str, content: bytes, headers: list[Header], timeout: float, *, with_body: bool, limit: float | None
    ) -> Reply:
        deadline = time.monotonic() + timeout
        if limit is not None:
            deadline = min(deadline, limit)
        saved = getattr(_bound, "deadline", None), getattr(_bound, "cancelled", None)
        _bound.deadline, _bound.cancelled = deadline, self.cancelled
        try:
            return self._exchange_bounded(url, content, headers, timeout, with_body=with_body, deadline=deadline)
        finally:
            _bound.deadline, _bound.cancelled = saved

    def _exchange_bounded(
        self, url: str, content: bytes, headers: list[Header], timeout: float, *, with_body: bool, deadline: float
    ) -> Reply:
        host = self._base.origin.netloc.decode("ascii")
        request = self._client.build_request(
            "POST", self._base.origin, content=content, headers=headers, timeout=httpx.Timeout(timeout)
        )
        request.url = self._base.target(url)
        try:
            response = self._client.send(request, stream=True, follow_redirects=False)
        except HTTPX_ERRORS as exc:
            raise describe(exc, host, timeout, reading_body=False) from None
        try:
            status = response.status_code
            reason = reason_phrase(status, response.reason_phrase)
            body, wire = b"", None
            if status == 200 and with_body:
                body, wire = read_body(response, host, timeout, deadline, self.settings.max_response_bytes)
            return Reply(status, reason, response.headers, body, wire)
        finally:
            try:
                response.close()
            except HTTPX_ERRORS:
                pass


def _header(headers: list[Header], name: bytes) -> str | None:
    return next((value.decode("latin-1") for key, value in headers if key.lower() == name), None)


def _response_wire_size(reply: Reply | None) -> int | None:
    if reply is None:
        return None
    if reply.wire_size is not None:
        return reply.wire_size
    declared = reply.headers.get("Content-Length", "")
    return int(declared) if declared.isdigit() else None


@dataclass(frozen=True)
class Exchange:
    """One HTTP exchange as `Transport.trace` sees it: what went out, what came back, how long it took.

    Sizes are in bytes; `request_size` before compression and `request_wire_size` as sent; `response_wire_size`
    as received (the Content-Length when the body was not read) and `response_size` decoded (None when not read).
    `status` is None when the exchange failed (`error` says why). The bodies are the uncompressed request and the
    decoded response (empty when not read)."""

    method: str
    url: str
    status: int | None
    reason: str
    error: str | None
    request_size: int
    request_wire_size: int
    request_encoding: str | None
    response_size: int | None
    response_wire_size: int | None
    response_encoding: str | None
    elapsed_ms: float
    request_body: bytes
    response_body: bytes
