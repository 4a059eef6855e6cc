"""Failed attempts as Santa classifies them (spec §2.4–2.5): `AttemptFailed`, its cause, retry or not.

Each cause is named in a sentence (timeout, TLS, refused, unresolvable, no network, cut short), with whether it
ends the retries or triggers the XSRF handshake."""

from __future__ import annotations

import errno
import http
import socket
import ssl
from collections.abc import Iterator
from typing import Final

import httpx

from santacore.sync.tls import os_reason

__all__ = ["HTTPX_ERRORS", "AttemptFailed", "describe", "reason_phrase"]

HTTPX_ERRORS: Final = (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, httpx.CookieConflict, OSError)
_NO_NETWORK_ERRNOS: Final = frozenset({errno.ENETUNREACH, errno.ENETDOWN})


class AttemptFailed(Exception):
    """One attempt failed without an HTTP status. `xsrf_trigger`: Santa tries the XSRF handshake on it;
    `no_network`: retrying is pointless (Santa stops); `final`: santacore stops (repeating cannot help)."""

    def __init__(self, message: str, *, xsrf_trigger: bool = False, no_network: bool = False, final: bool = False):
        super().__init__(message)
        self.message = message
        self.xsrf_trigger = xsrf_trigger
        self.no_network = no_network
        self.final = final


def reason_phrase(status: int, server_reason: str) -> str:
    """The standard reason phrase of `status`, else the server's."""
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


def describe(exc: BaseException, host: str, timeout: float, *, reading_body: bool) -> AttemptFailed:
    """A transport failure as a sentence naming its cause, with Santa's retry classification."""
    chain = list(_causes(exc))
    if isinstance(exc, httpx.TimeoutException) or any(isinstance(e, TimeoutError) for e in chain):
        phases: dict[type[BaseException], str] = {
            httpx.ConnectTimeout: "connecting to",
            httpx.WriteTimeout: "sending the request to",
            httpx.PoolTimeout: "waiting for a free connection to",
        }
        doing = phases.get(type(exc), "reading the response from" if reading_body else "waiting for a response from")
        return AttemptFailed(f"timed out after {timeout:g} s {doing} {host}")
    for cause in chain:
        if isinstance(cause, ssl.SSLCertVerificationError):
            detail = cause.verify_message or os_reason(cause)
            return AttemptFailed(f"TLS certificate verification failed for {host}: {detail}")
        if isinstance(cause, ssl.SSLError):
            reason = str(cause.reason or "")
            # NSURLErrorClientCertificateRequired: Santa tries the XSRF handshake on it
            return AttemptFailed(
                f"TLS error with {host}: {os_reason(cause)}", xsrf_trigger="CERTIFICATE_REQUIRED" in reason
            )
        if isinstance(cause, ConnectionRefusedError):
            return AttemptFailed(f"connection refused by {host}")
        if isinstance(cause, socket.gaierror):
            return AttemptFailed(f"cannot resolve {host}: {cause.strerror or cause}")
        if isinstance(cause, OSError) and cause.errno in _NO_NETWORK_ERRNOS:
            return AttemptFailed(f"cannot reach {host}: {cause.strerror}", no_network=True)
    if isinstance(exc, httpx.RemoteProtocolError):
        text = str(exc)
        if reading_body:
            return AttemptFailed(f"the response from {host} was cut short: {text}")
        if "without sending" in text:  # httpcore: "Server disconnected without sending a response."
            return AttemptFailed(f"{host} closed the connection without a response")
        # NSURLErrorCannotParseResponse: Santa tries the XSRF handshake on it
        return AttemptFailed(f"cannot parse the response from {host}: {text}", xsrf_trigger=True)
    if isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.ConnectError):
        what = {httpx.ReadError: "reading from", httpx.WriteError: "sending to", httpx.ConnectError: "connecting to"}
        root = chain[-1]
        detail = os_reason(root) if isinstance(root, OSError) else str(exc)
        return AttemptFailed(f"connection error {what[type(exc)]} {host}: {detail or type(exc).__name__}")
    return AttemptFailed(f"request to {host} failed: {type(exc).__name__}: {exc}")
