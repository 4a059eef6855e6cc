"""What a preflight answer says about push (addendum §1.1, §1.3): `PushSettings`, and the server allowlist.

`push_settings_from_preflight(doc)` reads the already-decoded PreflightResponse (a mapping of proto field names to
values, as `santacore.sync.pbjson` gives it) — fields 20 push_server, 21 push_token (user JWT), 22 push_key (user
NKey seed), 23 push_deviceid, 24 push_tags, 9/1003 the push full-sync interval, 10/1004 the global rule-sync
deadline — with [N]'s rules: the NATS configuration counts only when server, key, token and device ID are all
non-empty; the push interval only when > 0 (then at least 60 s); the deadline is at least (and by default) 600 s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_PUSH_FULL_SYNC_INTERVAL",
    "DEFAULT_PUSH_GLOBAL_RULE_SYNC_DEADLINE",
    "PushSettings",
    "push_server_host",
    "push_server_problem",
    "push_settings_from_preflight",
]

DEFAULT_PUSH_FULL_SYNC_INTERVAL: Final = 14400  # kDefaultPushNotificationsFullSyncInterval
DEFAULT_PUSH_GLOBAL_RULE_SYNC_DEADLINE: Final = 600  # kDefaultPushNotificationsGlobalRuleSyncDeadline
MINIMUM_INTERVAL: Final = 60
PUSH_SCHEMES: Final = ("nats", "tls")


@dataclass(frozen=True)
class PushSettings:
    """The push part of one preflight answer. `configured` says whether a NATS client can connect with it."""

    server: str = ""
    token: str = ""
    """The user JWT (push_token)."""
    key: str = ""
    """The user NKey seed (push_key)."""
    device_id: str = ""
    tags: tuple[str, ...] = ()
    full_sync_interval: int | None = None
    """Seconds, when the server sent #9/#1003 (> 0, at least 60); None when it did not."""
    global_rule_sync_deadline: int = DEFAULT_PUSH_GLOBAL_RULE_SYNC_DEADLINE

    @property
    def configured(self) -> bool:
        return bool(self.server and self.token and self.key and self.device_id)

    def missing(self) -> list[str]:
        """The preflight fields a NATS client needs that this answer lacks (Santa logs them)."""
        have = {"push_server": self.server, "push_key": self.key, "push_token": self.token}
        have["push_deviceid"] = self.device_id
        return [name for name, value in have.items() if not value]

    def credentials(self) -> str:
        """The NATS creds text block Santa builds from push_token and push_key (§1.3)."""
        return (
            f"-----BEGIN NATS USER JWT-----\n{self.token}\n------END NATS USER JWT------\n\n"
            f"-----BEGIN USER NKEY SEED-----\n{self.key}\n------END USER NKEY SEED------\n"
        )

    def __repr__(self) -> str:  # never print the seed or the JWT
        return (
            f"PushSettings(server={self.server!r}, device_id={self.device_id!r}, tags={self.tags!r}, "
            f"full_sync_interval={self.full_sync_interval!r}, "
            f"global_rule_sync_deadline={self.global_rule_sync_deadline!r})"
        )


def _uint(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def push_settings_from_preflight(doc: Mapping[str, Any]) -> PushSettings:
    """§1.1/§1.3/§1.8 from a decoded PreflightResponse (proto field names)."""
    interval = _uint(doc.get("push_notification_full_sync_interval_seconds")) or _uint(
        doc.get("deprecated_fcm_full_sync_interval_seconds")
    )
    deadline = _uint(doc.get("push_notification_global_rule_sync_deadline_seconds")) or _uint(
        doc.get("deprecated_fcm_global_rule_sync_deadline_seconds")
    )
    tags = doc.get("push_tags") or ()
    return PushSettings(
        server=_text(doc.get("push_server")),
        token=_text(doc.get("push_token")),
        key=_text(doc.get("push_key")),
        device_id=_text(doc.get("push_deviceid")),
        tags=tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list | tuple) else (),
        full_sync_interval=max(interval, MINIMUM_INTERVAL) if interval else None,
        global_rule_sync_deadline=max(deadline, DEFAULT_PUSH_GLOBAL_RULE_SYNC_DEADLINE),
    )


def push_server_host(server: str) -> str | None:
    """The host of a push server URL (`nats://host:port`, `tls://host:port`), lower-case; None if unusable."""
    try:
        parts = urlsplit(server)
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError:
        return None
    if parts.scheme.lower() not in PUSH_SCHEMES or not parts.hostname:
        return None
    return parts.hostname.lower()


def push_server_problem(server: str, allowlist: Iterable[str]) -> str | None:
    """Why santacore refuses to connect to `server`, or None. An allowlist entry is a host name (exact match,
    any case) or `.domain` (any host under it). Santa's release builds accept only
    `tls://….push.northpole.security:443`; santacore accepts whatever the configuration allows."""
    host = push_server_host(server)
    if host is None:
        return f"push server {server!r} is not a nats:// or tls:// URL with a host"
    allowed = [a.lower().rstrip(".") for a in allowlist if a]
    for entry in allowed:
        if host == entry or (entry.startswith(".") and host.endswith(entry)):
            return None
    shown = ", ".join(allowed) or "nothing"
    return f"push server host {host!r} is not in PushServerAllowlist ({shown})"
