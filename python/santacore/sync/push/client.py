"""The push client interface of the sync service (addendum §1.2): what the scheduler sees of any push transport.

A `PushClient` is configured from each successful preflight (`configure`), asks its `PushDelegate` for syncs when
messages arrive, reports whether it is connected, and is closed when a preflight drops push or the service stops.
`NatsPushClient` (`santacore.sync.push.nats_client`) is the NATS implementation; FCM's transport (Google-internal)
is not implemented, its message semantics are (`santacore.sync.push.messages`).
"""

from __future__ import annotations

from typing import Protocol

from santacore.sync.push.settings import PushSettings

__all__ = ["PushClient", "PushDelegate"]


class PushDelegate(Protocol):
    """What a push client asks of the sync service (Santa's SNTSyncManager)."""

    def push_full_sync(self, delay: float, reason: str) -> None:
        """Re-arm the full-sync timer to fire `delay` seconds from now (`syncSecondsFromNow:`)."""

    def push_rule_sync(self, delay: float, reason: str) -> None:
        """Arm the rule-sync timer `delay` seconds from now; the last one armed wins (`ruleSyncSecondsFromNow:`)."""


class PushClient(Protocol):
    """A push transport, as the sync service uses it."""

    @property
    def connected(self) -> bool: ...

    @property
    def full_sync_interval(self) -> int:
        """T_push: DEFAULT_PUSH_FULL_SYNC_INTERVAL until a preflight with the full push configuration sent one."""
        ...

    @property
    def token(self) -> str | None:
        """What preflight reports as `push_notification_token` (NATS: the machine ID once configured)."""
        ...

    def configure(self, settings: PushSettings) -> None:
        """Apply one successful preflight's push settings: connect, reconnect on new credentials, resubscribe on
        new tags or device ID. Returns at once; connecting happens in the background."""

    def close(self, timeout: float = 5.0) -> None:
        """Disconnect and stop; no callback runs after this returns."""
