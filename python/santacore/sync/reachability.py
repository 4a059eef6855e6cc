"""Whether the sync server can be reached (spec §1.5): a TCP connect to SyncBaseURL's host and port.

The portable stand-in for the network path Santa's reachability monitor watches."""

from __future__ import annotations

import socket
import urllib.parse

__all__ = ["server_reachable"]


def server_reachable(base_url: str, *, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to `base_url`'s host and port (default 443 for https, else 80) opens."""
    url = urllib.parse.urlsplit(base_url)
    try:
        port = url.port or (443 if url.scheme == "https" else 80)
        with socket.create_connection((url.hostname or "", port), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False
