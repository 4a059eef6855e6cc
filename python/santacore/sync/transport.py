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
  wait expires: httpx's per-operation timeouts are set to it and the body read is cut off at it.
* XSRF (§2.5): on a 403, a TLS "certificate required" alert or an unparseable response, and only
  while no token is held, ``POST <base>xsrf/<machine_id>`` (empty body, no Content-Type, `xsrf_timeout`),
  then the request is tried again with the token. The token lives as long as the Transport.

Where santacore differs from Santa, deliberately:

* A 200 whose body is cut short, cannot be decoded or runs past the deadline is a failed attempt
  (retried), as in [N]; [G] could hand the partial body on.
* A response larger than `max_response_bytes`, or in a Content-Encoding santacore cannot decode,
  fails at once without retrying (Santa has no limit; repeating would only fetch it again).
* A ServerAuthRootsFile that cannot be read is an error; Santa logs it and falls back to system trust,
  silently dropping the pinning the administrator asked for.
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

import logging
import time
from types import TracebackType

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

__all__ = ["Transport"]

_log = logging.getLogger(__name__)


class Transport:
    """Santa's sync HTTP client for one server and one machine (see the module docstring)."""

    def __init__(self, settings: TransportSettings, machine_id: str, *, client: httpx.Client | None = None) -> None:
        """`client`: an httpx.Client to send with (then TLS and proxy are the client's, so `settings` must leave
        them at their defaults; it is not closed here). Bad settings raise ValueError; unusable TLS material
        raises SyncError."""
        self.settings = settings
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
        self._client = httpx.Client(verify=ctx, proxy=settings.proxy, follow_redirects=False, trust_env=False)
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

    def post(self, stage: str, body: bytes) -> bytes:
        """POST `body` to `stage` with Santa's headers, compression and retries; the raw
        (decoded, size-limited) response body of the HTTP 200."""
        if self._closed:
            raise SyncError("the transport has been closed", stage=stage)
        url = self.url(stage)
        content, encoding = compress_body(bytes(body), self.content_encoding)
        policy = self.settings.retry
        status: int | None = None
        reason = ""
        failure = ""
        for attempt in range(1, policy.attempts + 1):
            if attempt >= 2:
                policy.sleep(policy.delays(attempt))
            _log.debug("%s: performing request, attempt %d (of %d maximum)", stage, attempt, policy.attempts)
            sent_token = self._xsrf.header
            headers = self._headers(content_type=True, encoding=encoding, token=sent_token)
            try:
                reply = self._perform(url, content, headers, self.settings.timeout, with_body=True)
            except AttemptFailed as exc:
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
            if xsrf_trigger and self._xsrf.fetch(sent_token, self._xsrf_exchange):
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
        return f"Transport({self._base.text!r}, {self.machine_id!r}, content_encoding={self.content_encoding!r})"

    # -- internals -------------------------------------------------------------------------------

    def _headers(self, *, content_type: bool, encoding: str | None, token: Header | None) -> list[Header]:
        return request_headers(
            self.settings.user_agent, self._extra_headers, content_type=content_type, encoding=encoding, token=token
        )

    def _xsrf_exchange(self) -> Reply:
        headers = self._headers(content_type=False, encoding=None, token=None)
        return self._perform(self.url(XSRF_STAGE), b"", headers, self.settings.xsrf_timeout, with_body=False)

    def _perform(self, url: str, content: bytes, headers: list[Header], timeout: float, *, with_body: bool) -> Reply:
        """One HTTP exchange with one deadline; raises AttemptFailed for transport failures."""
        host = self._base.origin.netloc.decode("ascii")
        deadline = time.monotonic() + timeout
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
            body = b""
            if status == 200 and with_body:
                body = read_body(response, host, timeout, deadline, self.settings.max_response_bytes)
            return Reply(status, reason, response.headers, body)
        finally:
            try:
                response.close()
            except HTTPX_ERRORS:
                pass
