"""The XSRF handshake (spec §2.5): when Santa fetches the token, where it reads it, the header it goes back in.

Fetched once, on a 403, a "certificate required" TLS alert or an unparseable response, while no token is held;
the token comes in ``X-XSRF-TOKEN`` and goes back in the header the server names in ``X-XSRF-TOKEN-HEADER``.
Santa keeps it for the life of the sync service and never refreshes it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Final

import httpx

from santacore.sync.failures import AttemptFailed
from santacore.sync.request import Header, is_header_name
from santacore.sync.response import Reply

__all__ = ["XSRF_HEADER", "XSRF_HEADER_NAME_HEADER", "XSRF_STAGE", "XsrfToken"]

_log = logging.getLogger(__name__)

XSRF_HEADER: Final = "X-XSRF-TOKEN"  # Santa's kDefaultXSRFTokenHeader: the token, and its default header
XSRF_HEADER_NAME_HEADER: Final = "X-XSRF-TOKEN-HEADER"  # kXSRFTokenHeader: the server's header name
XSRF_STAGE: Final = "xsrf"


def _token_from(headers: httpx.Headers) -> Header | None:
    raw = {name.lower(): value for name, value in headers.raw}
    value = raw.get(XSRF_HEADER.lower().encode(), b"")
    name = raw.get(XSRF_HEADER_NAME_HEADER.lower().encode(), b"") or XSRF_HEADER.encode()
    if not value or not is_header_name(name) or any(c in value for c in b"\r\n\x00"):
        return None
    return name, value


class XsrfToken:
    """The token one transport holds (thread-safe): None until a handshake succeeds, then kept."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._header: Header | None = None

    @property
    def header(self) -> Header | None:
        """(header name, token) as bytes, to send with every request; None before the handshake."""
        with self._lock:
            return self._header

    def fetch(self, sent: Header | None, exchange: Callable[[], Reply]) -> bool:
        """Santa's fetchXSRFToken, only while no token is held: `exchange` performs the XSRF request (raising
        AttemptFailed on a transport failure). True when the stage request should be retried with a token
        (fetched now, or by another thread since the failed attempt sent `sent`)."""
        with self._lock:
            if self._header is not None:
                return self._header != sent
            try:
                reply = exchange()
            except AttemptFailed as exc:
                _log.debug("failed to retrieve XSRF token: %s", exc.message)
                return False
            if reply.status != 200:
                _log.debug("failed to retrieve XSRF token: HTTP %d", reply.status)
                return False
            token = _token_from(reply.headers)
            if token is None:
                _log.debug("XSRF response had no usable token")
                return False
            self._header = token
            _log.debug("retrieved new XSRF token")
            return True
